#!/bin/sh
# `rewind bench net`: DHCP, then receive one stream through hostfwd (port 8080) and hash it.
modprobe virtio_mmio || exit 1
modprobe virtio_net || exit 1
ip link set lo up
udhcpc -i eth0 -n -q -T 1 -t 10 >/dev/null 2>&1 || exit 1
echo "netbench: listening"
sum=$(nc -l -p 8080 | sha256sum)
echo "netbench sha256: ${sum%% *}"
