#!/bin/sh
# virtio-blk: mount the ext4 disk the test built, read its known file, write new ones, sync.
# Block completions are derived from virtual time: nothing about the disk is in the trace.
modprobe virtio_mmio || exit 1
modprobe virtio_blk || exit 1
modprobe crc32c_generic || exit 1
modprobe ext4 || exit 1
echo "blk size: $(cat /sys/block/vda/size)"
echo "blk ro: $(cat /sys/block/vda/ro)"
mount -t ext4 /dev/vda /mnt || exit 1
echo "known sha256: $(sha256sum < /mnt/known.txt)"
echo "rewind disk test" > /mnt/hello.txt || exit 1
dd if=/dev/urandom of=/mnt/random.bin bs=64k count=64 2>/dev/null || exit 1
sync || exit 1
echo "random sha256: $(sha256sum < /mnt/random.bin)"
echo 3 > /proc/sys/vm/drop_caches
echo "reread sha256: $(sha256sum < /mnt/random.bin)"
echo "hello: $(cat /mnt/hello.txt)"
umount /mnt || exit 1
echo "blk done"
