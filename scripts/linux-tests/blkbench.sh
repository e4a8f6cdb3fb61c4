#!/bin/sh
# `rewind bench disk`: sequential 64 MiB write then read of the raw virtio-blk disk with dd,
# bypassing the page cache (O_DIRECT), between two console markers the bench times.
modprobe virtio_mmio || exit 1
modprobe virtio_blk || exit 1
[ -b /dev/vda ] || exit 1
echo "--- blkbench dd start ---"
dd if=/dev/zero of=/dev/vda bs=1M count=64 oflag=direct 2>/dev/null || exit 1
dd if=/dev/vda of=/dev/null bs=1M count=64 iflag=direct 2>/dev/null || exit 1
echo "--- blkbench dd end ---"
