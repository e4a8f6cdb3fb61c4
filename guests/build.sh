#!/usr/bin/env bash
# Build every rewind test guest into guests/build/*.elf.
#   guests/build.sh                    build all guests (with debug info) into guests/build/
#   guests/build.sh --prebuilt         also rebuild the embedded guests (demo, bench) into guests/prebuilt/
#   guests/build.sh --prebuilt-to DIR  rebuild only the embedded guests into DIR (used to check reproducibility)
# Idempotent: always rebuilds from source; outputs are replaced atomically.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CC="${RISCV_CC:-riscv64-unknown-elf-gcc}"
EMBEDDED=(demo bench)

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "guests/build.sh: error: RISC-V toolchain '$CC' not found on PATH." >&2
    echo "  install it (Debian: apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)" >&2
    echo "  or point RISCV_CC at a riscv64 bare-metal gcc." >&2
    exit 2
fi

PREBUILT_DIR=""
BUILD_ALL=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prebuilt) PREBUILT_DIR="$HERE/prebuilt" ;;
        --prebuilt-to) shift; PREBUILT_DIR="$1"; BUILD_ALL=0 ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "guests/build.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done

# Paths inside the ELFs are relative to guests/ so that a rebuild anywhere gives identical bytes.
BASE_FLAGS=(-march=rv64gc -mabi=lp64d -mcmodel=medany -nostdlib -ffreestanding -fno-builtin
    -fno-pic -static -O2 -Wall -Wextra -Wno-unused-parameter
    "-ffile-prefix-map=$HERE=guests" -I "$HERE/common"
    -T "$HERE/common/link.ld" -Wl,--build-id=none -Wl,--no-warn-rwx-segments)
COMMON_SRC=("$HERE/common/start.S" "$HERE/common/lib.c")
# guests named smp_*: every hart runs main (start_smp.S), hart count from the device tree (fdt.c).
SMP_COMMON_SRC=("$HERE/common/start_smp.S" "$HERE/common/lib.c" "$HERE/common/fdt.c")

# build NAME OUT_DIR DEBUG_FLAG SRC_DIR [extra cflags...]
build() {
    local name="$1" out="$2" dbg="$3" src="$4"
    shift 4
    local srcs=()
    local f
    local common=("${COMMON_SRC[@]}")
    case "$name" in smp_*) common=("${SMP_COMMON_SRC[@]}") ;; esac
    for f in "$src"/*.c "$src"/*.S; do
        [ -e "$f" ] && srcs+=("$f")
    done
    mkdir -p "$out"
    local tmp="$out/.$name.elf.tmp.$$"
    # Sources are compiled from inside guests/ with relative names so no absolute path reaches the ELF.
    (cd "$HERE" && "$CC" "${BASE_FLAGS[@]}" "$dbg" "$@" \
        "${common[@]#"$HERE/"}" "${srcs[@]#"$HERE/"}" -o "$tmp")
    mv -f "$tmp" "$out/$name.elf"
}

if [ "$BUILD_ALL" = 1 ]; then
    for dir in "$HERE"/*/; do
        name="$(basename "$dir")"
        compgen -G "$dir*.[cS]" >/dev/null || continue
        case "$name" in
            common|build|prebuilt|expected|firmware) continue ;;  # firmware: payloads built by their own tests
            exit_codes)
                for code in 0 1 42; do
                    build "exit_$code" "$HERE/build" -g "$dir" "-DEXIT_CODE=$code"
                done
                build exit_uart "$HERE/build" -g "$dir" -DEXIT_FROM_UART
                ;;
            # One guest per PRNG seed: a seed read at run time (mtime, the device tree) would differ
            # between runs, a build-time one does not.
            hostile)
                for seed in 0x1 0x5eed 0xdeadbeef; do
                    build "hostile_$seed" "$HERE/build" -g "$dir" "-DSEED=${seed}UL"
                done
                ;;
            # A race that loses updates often, and one where a lost update is rare and fails the guest
            # (the knobs ITERS, WORK, WINDOW can be overridden with RACE_FLAGS / RACE_ASSERT_FLAGS).
            smp_race)
                # shellcheck disable=SC2086
                build smp_race "$HERE/build" -g "$dir" ${RACE_FLAGS:-}
                # shellcheck disable=SC2086
                build smp_race_assert "$HERE/build" -g "$dir" -DRACE_ASSERT -DITERS=50 -DWORK=2000 -DWINDOW=0 \
                    ${RACE_ASSERT_FLAGS:-}
                ;;
            # -Og: the gdb tests need its variables and frames as written (a later -O wins).
            debugme) build debugme "$HERE/build" -g "$dir" -Og ;;
            smp_debug) build smp_debug "$HERE/build" -g "$dir" -Og ;;
            # The extensions of QEMU 10's rv64 that binutils 2.40 knows (Zfa, Zicond: .insn).
            bitmanip) build bitmanip "$HERE/build" -g "$dir" \
                -march=rv64gc_zba_zbb_zbc_zbs_zicbom_zicboz_zicbop_zawrs_zihintpause ;;
            bench)
                build bench "$HERE/build" -g "$dir"
                build bench_long "$HERE/build" -g "$dir" -DROUND_SETS=154
                ;;
            *) build "$name" "$HERE/build" -g "$dir" ;;
        esac
    done
    echo "guests/build.sh: built $(ls "$HERE"/build/*.elf | wc -l) guests into guests/build/"
fi

if [ -n "$PREBUILT_DIR" ]; then
    for name in "${EMBEDDED[@]}"; do
        build "$name" "$PREBUILT_DIR" -g0 "$HERE/$name"
    done
    echo "guests/build.sh: embedded guests (${EMBEDDED[*]}) written to $PREBUILT_DIR"
fi
