#!/usr/bin/env bash
# Install what rewind's tests need from Debian: the RISC-V cross toolchain for the test guests,
# gdb-multiarch, dtc, and QEMU 10.0 (the behavioural oracle) with its OpenSBI.
#
# On Debian bookworm QEMU 10 comes from bookworm-backports through a private apt configuration
# (sources list, lists and cache under target/apt-oracle/), so the machine's own apt sources are
# left as they are; on trixie or later the plain package is that version.
# Idempotent: packages already installed are not fetched again.
# Usage: scripts/install-deps.sh            (root, or sudo available)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORACLE_VERSION="10.0"
# e2fsprogs: mkfs.ext4 and debugfs build and read the disk images of the virtio-blk tests.
# chromium (+ fonts-dejavu-core): the headless browser that renders `rewind timeline` pages in
# crates/cli/tests/timeline.rs.
# u-boot-qemu: Debian's U-Boot for QEMU's virt board (crates/cli/tests/uboot.rs boots its S-mode
# build on OpenSBI under both engines and QEMU).
PACKAGES=(gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf device-tree-compiler gdb-multiarch e2fsprogs chromium fonts-dejavu-core u-boot-qemu)

log() { printf '[install-deps] %s\n' "$*" >&2; }
die() { printf '[install-deps] error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
qemu_version() { qemu-system-riscv64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9.]*\).*/\1/p'; }

# --- QEMU (oracle) ----------------------------------------------------------------------------
if [[ "$(qemu_version)" != "$ORACLE_VERSION".* ]]; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ "$codename" = bookworm ]; then
        APT="$ROOT/target/apt-oracle"
        mkdir -p "$APT/lists/partial" "$APT/archives/partial"
        {
            echo "deb http://deb.debian.org/debian bookworm main"
            echo "deb http://deb.debian.org/debian bookworm-updates main"
            echo "deb http://deb.debian.org/debian-security bookworm-security main"
            echo "deb http://deb.debian.org/debian bookworm-backports main"
        } >"$APT/sources.list"
        APT_OPTS=(
            -o "Dir::Etc::sourcelist=$APT/sources.list"
            -o "Dir::Etc::sourceparts=-"
            -o "Dir::State::Lists=$APT/lists"
            -o "Dir::Cache::Archives=$APT/archives"
        )
        log "apt-get update (bookworm + bookworm-backports, private lists in $APT)"
        $SUDO apt-get "${APT_OPTS[@]}" update >&2
        log "installing qemu-system-misc from bookworm-backports"
        $SUDO apt-get "${APT_OPTS[@]}" install -y --no-install-recommends \
            -t bookworm-backports qemu-system-misc >&2
    else
        log "installing qemu-system-misc ($codename)"
        $SUDO apt-get update >&2
        $SUDO apt-get install -y --no-install-recommends qemu-system-misc opensbi >&2
    fi
fi
got=$(qemu_version)
if [[ "$got" != "$ORACLE_VERSION".* ]]; then
    die "the oracle must be QEMU $ORACLE_VERSION.x, but qemu-system-riscv64 is '${got:-missing}' ($(command -v qemu-system-riscv64 || echo 'not on PATH'))"
fi
log "oracle: QEMU $got"

# --- the rest -----------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
if ! installed opensbi; then missing+=(opensbi); fi
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
        $SUDO apt-get update >&2
        $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >&2
    fi
fi
