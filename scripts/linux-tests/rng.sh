#!/bin/sh
# virtio-rng: the kernel's hwrng reads the device; its bytes go through the replay boundary.
modprobe virtio_mmio || exit 1
modprobe virtio-rng || exit 1
echo "hwrng: $(cat /sys/class/misc/hw_random/rng_current)"
echo "hwrng sha256: $(head -c 64 /dev/hwrng | sha256sum)"
