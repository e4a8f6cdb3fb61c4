#!/bin/sh
# virtio-net on user-mode networking: DHCP, HTTP from the host's loopback through 10.0.2.2
# (port from rewind.port=N), then one connection the host makes through hostfwd to port 8080.
port=$(sed -n 's/.*rewind\.port=\([0-9]*\).*/\1/p' /proc/cmdline)
[ -n "$port" ] || { echo "no rewind.port= on the command line"; exit 1; }
modprobe virtio_mmio || exit 1
modprobe virtio_net || exit 1
ip link set lo up
udhcpc -i eth0 -n -q -T 1 -t 10 2>&1 || exit 1
echo "eth0: $(ip -4 -o addr show eth0 | awk '{print $4}')"
echo "gateway: $(ip route | awk '/^default/ {print $3}')"
echo "mac: $(cat /sys/class/net/eth0/address)"
sum=$(wget -q -O - "http://10.0.2.2:$port/file" | sha256sum)
echo "http sha256: ${sum%% *}"
echo "hostfwd: listening"
echo "pong from guest" | nc -l -p 8080 >/tmp/got
echo "hostfwd got: $(cat /tmp/got)"
