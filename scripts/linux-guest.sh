#!/usr/bin/env bash
# Prepare the Linux guest assets for rewind (and QEMU): Debian's OpenSBI fw_jump, Debian 13
# (trixie) riscv64 kernel, and a busybox initramfs with our own /init.
#
# Idempotent: every step is skipped when its output already exists. Everything lands under
# assets/linux/ at the repo root (git-ignored). The host's dpkg architectures are never
# touched: riscv64 packages are fetched with a private apt configuration.
#
# Usage: scripts/linux-guest.sh [--force]   (--force: rebuild the initramfs only)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ASSETS="$ROOT/assets/linux"
APT="$ASSETS/apt"
DEBS="$ASSETS/debs"
ROOTS="$ASSETS/root"
SUITE="trixie"
FORCE_INITRD=0
[[ "${1:-}" == "--force" ]] && FORCE_INITRD=1

log() { printf '[linux-guest] %s\n' "$*" >&2; }
die() { printf '[linux-guest] error: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "missing tool '$1'"; }

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

mkdir -p "$ASSETS" "$DEBS" "$ROOTS"

# Host tools: depmod (kmod) regenerates modules.dep, which Debian's package leaves to postinst.
for pair in depmod:kmod cpio:cpio xz:xz-utils strings:binutils file:file; do
    if ! command -v "${pair%%:*}" >/dev/null 2>&1; then
        log "installing ${pair#*:}"
        $SUDO apt-get install -y --no-install-recommends "${pair#*:}" >&2
    fi
done

# --- 1. OpenSBI (host package; arch: all) ------------------------------------------------
OPENSBI_DIR=/usr/lib/riscv64-linux-gnu/opensbi/generic
if [[ ! -f "$OPENSBI_DIR/fw_jump.bin" ]]; then
    log "installing opensbi"
    $SUDO apt-get install -y --no-install-recommends opensbi >&2
fi
[[ -f "$OPENSBI_DIR/fw_jump.bin" ]] || die "opensbi installed but $OPENSBI_DIR/fw_jump.bin missing"
cp -u "$OPENSBI_DIR/fw_jump.bin" "$OPENSBI_DIR/fw_jump.elf" "$ASSETS/"
OPENSBI_VER=$(dpkg-query -W -f='${Version}' opensbi 2>/dev/null || echo unknown)

# --- 2. private apt configuration for riscv64 trixie ---------------------------------------
# Use the same mirror host as the machine's own Debian source.
mirror_uri() {
    local u=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        # deb822: first URIs line of a stanza that is a Debian archive (not -security).
        u=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
            | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
    fi
    if [[ -z "$u" && -f /etc/apt/sources.list ]]; then
        u=$(grep -E '^deb ' /etc/apt/sources.list | awk '{for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' \
            | grep -E '/debian/?$' | head -n1 || true)
    fi
    echo "${u:-http://deb.debian.org/debian}"
}
MIRROR=$(mirror_uri)
MIRROR=${MIRROR%/}

mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/etc/preferences.d" "$APT/etc/trusted.gpg.d"
: >"$APT/status"
echo "deb [arch=riscv64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main" \
    >"$APT/sources.list"
APT_OPTS=(
    -o "Dir::Etc::sourcelist=$APT/sources.list"
    -o "Dir::Etc::sourceparts=-"
    -o "Dir::Etc::preferencesparts=$APT/etc/preferences.d"
    -o "Dir::State::Lists=$APT/lists"
    -o "Dir::Cache::Archives=$APT/archives"
    -o "Dir::Cache=$APT/cache"
    -o "Dir::State::status=$APT/status"
    -o "APT::Architecture=riscv64"
    -o "APT::Architectures=riscv64"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
)
mkdir -p "$APT/cache"

if ! compgen -G "$APT/lists/*Packages*" >/dev/null; then
    log "apt-get update ($MIRROR $SUITE riscv64)"
    apt-get "${APT_OPTS[@]}" update >&2
fi

# Resolve linux-image-riscv64 -> the real versioned kernel package.
KPKG=$(apt-cache "${APT_OPTS[@]}" depends linux-image-riscv64 2>/dev/null \
    | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[[ -n "$KPKG" ]] || die "cannot resolve linux-image-riscv64's kernel package"
KVER=${KPKG#linux-image-}
log "kernel package: $KPKG"

fetch() { # fetch PKG: download its .deb into $DEBS unless present; prints the path
    local pkg=$1 f
    f=$(compgen -G "$DEBS/${pkg}_*_riscv64.deb" | head -n1 || true)
    if [[ -z "$f" ]]; then
        log "downloading $pkg"
        (cd "$DEBS" && apt-get "${APT_OPTS[@]}" download "$pkg" >&2)
        f=$(compgen -G "$DEBS/${pkg}_*_riscv64.deb" | head -n1 || true)
    fi
    [[ -n "$f" ]] || die "download of $pkg failed"
    echo "$f"
}
KDEB=$(fetch "$KPKG")
BDEB=$(fetch busybox-static)

extract() { # extract DEB DIR
    if [[ ! -f "$2/.done" ]]; then
        rm -rf "$2"; mkdir -p "$2"
        dpkg-deb -x "$1" "$2"
        touch "$2/.done"
    fi
}
extract "$KDEB" "$ROOTS/kernel"
extract "$BDEB" "$ROOTS/busybox"
KROOT="$ROOTS/kernel"

# --- 3. kernel image ------------------------------------------------------------------------
# Debian's riscv64 kernel ships /boot/vmlinux-<ver>? Record what is actually there.
KIMG_SRC=""
for c in "$KROOT/boot/vmlinux-$KVER" "$KROOT/boot/vmlinuz-$KVER"; do
    [[ -f "$c" ]] && { KIMG_SRC=$c; break; }
done
[[ -n "$KIMG_SRC" ]] || die "no kernel image in $KDEB (looked in /boot)"
log "kernel image in package: ${KIMG_SRC#"$KROOT"}: $(file -b "$KIMG_SRC" | cut -c1-100)"

IMAGE="$ASSETS/Image"
if [[ ! -f "$IMAGE" ]]; then
    magic=$(head -c 4 "$KIMG_SRC" | od -An -tx1 | tr -d ' \n')
    # EFI zboot: "MZ" + at 4 "zimg", payload offset (le32 @8), size (le32 @12), comp name @24.
    zmagic=$(od -An -c -j4 -N4 "$KIMG_SRC" | tr -d ' ')
    if [[ "$zmagic" == "zimg" ]]; then
        off=$(od -An -tu4 -j8 -N4 "$KIMG_SRC" | tr -d ' ')
        size=$(od -An -tu4 -j12 -N4 "$KIMG_SRC" | tr -d ' ')
        comp=$(dd if="$KIMG_SRC" bs=1 skip=24 count=8 status=none | tr -d '\0')
        log "EFI zboot image: payload at $off, $size bytes, compression '$comp'"
        case "$comp" in
            gzip) dec=(gzip -dc) ;;
            zstd|zstd22) need zstd; dec=(zstd -dc) ;;
            xzkern|xz) dec=(xz -dc) ;;
            lzma) dec=(xz --format=lzma -dc) ;;
            lz4) need lz4; dec=(lz4 -dc) ;;
            lzo) need lzop; dec=(lzop -dc) ;;
            bzip2) dec=(bzip2 -dc) ;;
            *) die "unknown zboot compression '$comp'" ;;
        esac
        tail -c +"$((off + 1))" "$KIMG_SRC" | head -c "$size" | "${dec[@]}" >"$IMAGE.tmp"
    elif [[ "$magic" == 1f8b* ]]; then
        log "gzip-compressed Image"
        gzip -dc "$KIMG_SRC" >"$IMAGE.tmp"
    elif [[ "$magic" == 7f454c46 ]]; then
        log "ELF vmlinux (kept as-is; also usable with --kernel)"
        cp "$KIMG_SRC" "$IMAGE.tmp"
    elif [[ "$(dd if="$KIMG_SRC" bs=1 skip=56 count=3 status=none)" == "RSC" ]]; then
        log "raw RISC-V Image (with EFI stub PE header 'MZ'): used as-is"
        cp "$KIMG_SRC" "$IMAGE.tmp"
    else
        log "assuming raw Image"
        cp "$KIMG_SRC" "$IMAGE.tmp"
    fi
    # A RISC-V Image has "RISCV\0\0\0" at 48 and "RSC\x05" at 56.
    if [[ "$(dd if="$IMAGE.tmp" bs=1 skip=56 count=3 status=none)" != "RSC" ]] \
        && [[ "$(head -c 4 "$IMAGE.tmp" | od -An -tx1 | tr -d ' \n')" != 7f454c46 ]]; then
        die "extracted kernel is not a RISC-V Image (no RSC magic at 56)"
    fi
    mv "$IMAGE.tmp" "$IMAGE"
fi
cp -u "$KROOT/boot/config-$KVER" "$ASSETS/config-$KVER" 2>/dev/null || true
cp -u "$KROOT/boot/System.map-$KVER" "$ASSETS/System.map-$KVER" 2>/dev/null || true

# --- 4. initramfs ---------------------------------------------------------------------------
INITRD="$ASSETS/initrd.cpio.gz"
TESTS_SRC="$ROOT/scripts/linux-tests"
stale_tests() { [[ -d "$TESTS_SRC" ]] && [[ -n "$(find "$TESTS_SRC" -newer "$INITRD" -print -quit)" ]]; }
if [[ ! -f "$INITRD" || $FORCE_INITRD -eq 1 || "$0" -nt "$INITRD" ]] || stale_tests; then
    log "building initramfs"
    IR="$ASSETS/initramfs"
    rm -rf "$IR"
    mkdir -p "$IR"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc,mnt}
    BB=$(find "$ROOTS/busybox" -type f -path '*bin/busybox' | head -n1)
    [[ -n "$BB" ]] || die "busybox binary not found in $BDEB"
    cp "$BB" "$IR/bin/busybox"
    # The applet list: busybox is a riscv64 binary we cannot run here, so use a fixed list of
    # applets this package is built with (checked against its strings below).
    APPLETS=(sh ash ls cat echo mount umount poweroff reboot halt dmesg date sha256sum md5sum
        uname sleep seq grep tail head ps mkdir rm cp mv ln true false test printf wc sort
        uniq cut tr sed awk find xargs dd od hexdump free uptime insmod modprobe lsmod rmmod
        mdev ip ifconfig hostname env stat sync df du kill chmod chown touch basename dirname
        readlink cmp diff tee expr time yes cttyhack setsid udhcpc wget nc httpd route
        sha1sum base64 mkfifo timeout pidof pkill killall usleep nproc)
    for a in "${APPLETS[@]}"; do
        # Only link applets that actually exist in this busybox build.
        if grep -aqx -- "$a" <(strings -n 2 "$IR/bin/busybox"); then
            ln -sf busybox "$IR/bin/$a"
        fi
    done
    ln -sf ../bin/busybox "$IR/sbin/init.busybox"

    # Kernel modules for the devices the next issues add: copy only what is modular (=m).
    # The package ships no modules.dep (its postinst runs depmod), so generate it here.
    # crc32c_generic: ext4 loads the crc32c hash at every mount.
    # snd-pcm-oss: /dev/dsp, so busybox (no aplay) can play and capture with cat/head.
    MODS=(virtio_mmio virtio_blk virtio_net virtio-rng virtio_input evdev ext4 crc32c_generic virtio_snd snd-pcm-oss)
    MDIR="$KROOT/usr/lib/modules/$KVER"
    [[ -d "$MDIR" ]] || MDIR="$KROOT/lib/modules/$KVER"
    if [[ ! -f "$MDIR/modules.dep" ]]; then
        [[ -e "$KROOT/lib" ]] || ln -s usr/lib "$KROOT/lib"
        depmod -b "$KROOT" "$KVER"
    fi
    CFG="$KROOT/boot/config-$KVER"
    : >"$ASSETS/modules.txt"
    declare -A want=()
    for m in "${MODS[@]}"; do
        case $m in
            evdev) sym=CONFIG_INPUT_EVDEV ;;
            ext4) sym=CONFIG_EXT4_FS ;;
            crc32c_generic) sym=CONFIG_CRYPTO_CRC32C ;;
            virtio-rng) sym=CONFIG_HW_RANDOM_VIRTIO ;;
            virtio_snd) sym=CONFIG_SND_VIRTIO ;;
            snd-pcm-oss) sym=CONFIG_SND_PCM_OSS ;;
            *) sym="CONFIG_${m^^}" ;;
        esac
        state=$(grep -E "^$sym=" "$CFG" | cut -d= -f2 || true)
        echo "$m $sym=${state:-n}" >>"$ASSETS/modules.txt"
        [[ "$state" == "m" ]] || continue
        # modules.dep line: "kernel/…/x.ko.xz: dep1.ko.xz dep2.ko.xz"
        line=$(grep -E "/${m}\.ko(\.[a-z]+)?:" "$MDIR/modules.dep" | head -n1 || true)
        [[ -n "$line" ]] || { log "module $m not in modules.dep"; continue; }
        for f in ${line/:/ }; do want[$f]=1; done
    done
    if (( ${#want[@]} )); then
        # Stored uncompressed so busybox's insmod/modprobe need no xz support.
        IMD="$IR/lib/modules/$KVER"
        mkdir -p "$IMD"
        for f in "${!want[@]}"; do
            mkdir -p "$IMD/$(dirname "$f")"
            case $f in
                *.xz) xz -dc "$MDIR/$f" >"$IMD/${f%.xz}" ;;
                *.zst) zstd -qdc "$MDIR/$f" >"$IMD/${f%.zst}" ;;
                *.gz) gzip -dc "$MDIR/$f" >"$IMD/${f%.gz}" ;;
                *) cp "$MDIR/$f" "$IMD/$f" ;;
            esac
        done
        cp "$MDIR"/modules.{builtin,builtin.modinfo,order} "$IMD/" 2>/dev/null || true
        depmod -b "$IR" "$KVER"
        rm -f "$IMD"/*.bin
    fi
    printf '%s\n' "${!want[@]}" | sort >>"$ASSETS/modules.txt"

    # Device tests: kernel cmdline rewind.test=NAME runs /tests/NAME.sh (from
    # scripts/linux-tests/NAME.sh), then the guest powers off.
    mkdir -p "$IR/tests" "$IR/usr/share/udhcpc"
    if [[ -d "$TESTS_SRC" ]]; then
        for t in "$TESTS_SRC"/*.sh; do
            [[ -e "$t" ]] || continue
            install -m 755 "$t" "$IR/tests/$(basename "$t")"
        done
    fi
    # busybox udhcpc configures nothing by itself: this is the usual minimal default.script.
    cat >"$IR/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip addr add "$ip/${mask:-24}" dev "$interface"
        for r in $router; do ip route add default via "$r" dev "$interface"; done
        : >/etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
        ;;
esac
exit 0
EOF
    chmod 755 "$IR/usr/share/udhcpc/default.script"
    # Debian's busybox looks for it in /etc/udhcpc/.
    mkdir -p "$IR/etc/udhcpc"
    ln -sf /usr/share/udhcpc/default.script "$IR/etc/udhcpc/default.script"

    cat >"$IR/init" <<'EOF'
#!/bin/sh
# rewind test init: mount the pseudo file systems, print a banner, then either run the
# scripted checks (kernel cmdline rewind.test=1) and power off, or start a shell.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null
echo
echo "=== rewind linux guest: $(uname -srm) ==="
echo "cmdline: $(cat /proc/cmdline)"
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        rewind.test=1) ;;
        rewind.test=*)
            name=${arg#rewind.test=}
            echo "--- rewind.test $name begin ---"
            if [ -x "/tests/$name.sh" ]; then
                if "/tests/$name.sh"; then
                    echo "--- rewind.test $name passed ---"
                else
                    echo "--- rewind.test $name FAILED ---"
                fi
            else
                echo "--- rewind.test $name: no /tests/$name.sh ---"
            fi
            poweroff -f
            ;;
    esac
done
if grep -qw 'rewind.test=1' /proc/cmdline; then
    echo "--- rewind.test begin ---"
    uname -a
    cat /proc/cpuinfo | head -n 12
    grep -E 'MemTotal|MemFree' /proc/meminfo
    cat /proc/interrupts
    date
    echo "seq sha256: $(seq 1 10000 | sha256sum)"
    if [ -d /lib/modules ]; then
        modprobe virtio_mmio && echo "modprobe virtio_mmio: ok" || echo "modprobe virtio_mmio: FAILED"
        lsmod
    fi
    dmesg | tail -n 5
    sleep 1
    echo "uptime: $(cat /proc/uptime)"
    echo "--- rewind.test end ---"
    poweroff -f
fi
echo "type 'poweroff -f' to stop"
exec setsid cttyhack sh
EOF
    chmod 755 "$IR/init"
    # Fixed mtimes and owners: the same inputs give a byte-identical initrd.
    find "$IR" -exec touch -h -d @0 {} +
    (cd "$IR" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --reproducible --quiet) \
        | gzip -9n >"$INITRD.tmp"
    mv "$INITRD.tmp" "$INITRD"
fi

# --- 5. summary -----------------------------------------------------------------------------
REL=${ASSETS#"$ROOT"/}
cat >"$ASSETS/versions.txt" <<EOF
opensbi $OPENSBI_VER (host package)
kernel  $KPKG $(basename "$KDEB")
image   ${KIMG_SRC#"$KROOT"} -> Image ($(stat -c %s "$IMAGE") bytes)
busybox $(basename "$BDEB")
mirror  $MIRROR $SUITE main [arch=riscv64]
EOF
log "assets ready in $REL:"
sed 's/^/    /' "$ASSETS/versions.txt" >&2
APPEND="console=ttyS0 earlycon rdinit=/init"
cat <<EOF

# rewind (scripted test run; drop rewind.test=1 for an interactive shell):
rewind run -m 512M --bios $REL/fw_jump.bin --kernel $REL/Image --initrd $REL/initrd.cpio.gz \\
    --append "$APPEND rewind.test=1"

# QEMU 10.0 (the same CPU as rewind's default):
qemu-system-riscv64 -M virt -m 512M -smp 1 -nographic -cpu rv64,h=false \\
    -bios $REL/fw_jump.bin -kernel $REL/Image -initrd $REL/initrd.cpio.gz \\
    -append "$APPEND rewind.test=1"
EOF
