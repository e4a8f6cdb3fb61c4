#!/bin/sh
# virtio-input: QEMU's virtio keyboard and tablet. The host sends keys and pointer events over
# QMP once "input ready" is printed; they are read from /dev/input/eventN and printed. Linux's
# software autorepeat stays on: send-key holds keys 10 ms of virtual time, as QEMU, so no repeat
# (after 250 ms) shows up however fast the idle guest's time runs.
modprobe virtio_mmio || exit 1
modprobe virtio_input || exit 1
modprobe evdev || exit 1
grep -E '^(I|N|P|H|B):' /proc/bus/input/devices | sed 's/^/devices: /'
node() {
    awk -v name="N: Name=\"$1\"" '$0 == name {f = 1}
        f && /^H:/ {for (i = 1; i <= NF; i++) if ($i ~ /^event/) print $i; exit}' /proc/bus/input/devices
}
kbd=$(node "QEMU Virtio Keyboard")
tab=$(node "QEMU Virtio Tablet")
[ -n "$kbd" ] && [ -n "$tab" ] || exit 1
echo "keyboard: $kbd tablet: $tab"
# struct input_event is 24 bytes on rv64: 16 of time, then type, code (u16) and value (s32).
dd if="/dev/input/$kbd" of=/tmp/kbd.bin bs=24 count=11 2>/dev/null &
k=$!
dd if="/dev/input/$tab" of=/tmp/tab.bin bs=24 count=8 2>/dev/null &
t=$!
sleep 1
echo "input ready"
wait $k || exit 1
wait $t || exit 1
show() {
    od -A n -v -t u2 "$2" | awk -v dev="$1" '{for (i = 1; i <= NF; i++) w[n++] = $i}
        END {for (r = 0; r + 12 <= n; r += 12) {
            v = w[r + 10] + 65536 * w[r + 11]; if (v >= 2147483648) v -= 4294967296
            printf "event %s type=%d code=%d value=%d\n", dev, w[r + 8], w[r + 9], v
            us[r / 12] = (w[r] + 65536 * w[r + 1]) * 1000000 + w[r + 4] + 65536 * w[r + 5]}
        # Guest timestamps of the 2nd and 3rd report (a, b pressed): the send-key hold time.
        if (dev == "kbd") printf "kbd hold: %d us\n", us[5] - us[3]}'
}
show kbd /tmp/kbd.bin
show tab /tmp/tab.bin
