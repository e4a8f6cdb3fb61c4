#!/bin/sh
# virtio-input as the guest sees it, for comparison with QEMU: /proc/bus/input/devices of a
# virtio keyboard, mouse and tablet.
modprobe virtio_mmio || exit 1
modprobe virtio_input || exit 1
modprobe evdev || exit 1
sed 's/^/devices: /' /proc/bus/input/devices
