#!/usr/bin/env bash
# Regenerate guests/expected/*.txt from QEMU (the behavioural oracle). Inputs must match
# crates/cli/tests/guests.rs. Usage: guests/gen_expected.sh   (after guests/build.sh)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$HERE/expected"
run() {
    local name="$1" input="$2" want="$3"
    shift 3
    local rc=0
    printf '%b' "$input" | timeout 60 qemu-system-riscv64 -machine virt -cpu rv64,h=false -bios none -serial stdio \
        -monitor none -display none -icount shift=0 "$@" -kernel "$HERE/build/$name.elf" \
        >"$HERE/expected/$name.txt" || rc=$?
    if [ "$rc" != "$want" ]; then
        echo "gen_expected: $name exited $rc, expected $want" >&2
        exit 1
    fi
    echo "$name: $(wc -l <"$HERE/expected/$name.txt") lines, exit $rc"
}
run demo "" 0
run rv64i "" 0
run rv64m "" 0
run rv64a "" 0
run rv64c "" 0
run fpu "" 0
run bitmanip "" 0
run csr "" 0
run traps "" 0
run priv10 "" 0
run vm "" 0
run pmp "" 0
run timer "" 0
run uart_irq "hello world\nRewind 123\nabc\nquit\n" 0
run exit_0 "" 0
run exit_1 "" 1
run exit_42 "" 42
run exit_uart "7" 7
run interactive "hello world\nRewind 123\n\nfail x\n\r\nquit\n" 0
run compute_timer "" 0
# The random bytes (lines "entropy: ...") differ from run to run: the reference leaves them out.
run virtio_rng "" 0 -device virtio-rng-device -global virtio-mmio.force-legacy=false
grep -v '^entropy:' "$HERE/expected/virtio_rng.txt" >"$HERE/expected/virtio_rng.txt.tmp"
mv "$HERE/expected/virtio_rng.txt.tmp" "$HERE/expected/virtio_rng.txt"
# QEMU's wav audiodev has no capture: the guest gives up after a second (exit 5). The elapsed
# time (audio clock) and the capture lines are left out of the reference.
SOUND_WAV="$(mktemp)"
run virtio_sound "" 5 -device virtio-sound-device,audiodev=a0 -audiodev "wav,id=a0,path=$SOUND_WAV" \
    -global virtio-mmio.force-legacy=false
rm -f "$SOUND_WAV"
grep -v -e '^elapsed:' -e '^capture:' "$HERE/expected/virtio_sound.txt" >"$HERE/expected/virtio_sound.txt.tmp"
mv "$HERE/expected/virtio_sound.txt.tmp" "$HERE/expected/virtio_sound.txt"
