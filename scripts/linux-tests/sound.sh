#!/bin/sh
# virtio-sound: Linux's virtio_snd driver probes the device; through the OSS emulation
# (/dev/dsp: 8 kHz, mono, unsigned 8 bits) the guest plays a 500 Hz square wave for one second
# and captures 16000 bytes (two seconds), whose hash depends on the capture source.
modprobe virtio_mmio || exit 1
modprobe virtio_snd || exit 1
modprobe snd-pcm-oss || exit 1
echo "cards: $(cat /proc/asound/cards | head -n1)"
echo "pcm: $(cat /proc/asound/pcm)"
[ -e /dev/dsp ] || exit 1
i=0
while [ $i -lt 500 ]; do
    printf '\300\300\300\300\300\300\300\300\100\100\100\100\100\100\100\100'
    i=$((i + 1))
done >/tmp/tone.u8
echo "tone: $(wc -c </tmp/tone.u8) bytes"
cat /tmp/tone.u8 >/dev/dsp || exit 1
echo "played"
echo "captured sha256: $(head -c 16000 /dev/dsp | sha256sum)"
