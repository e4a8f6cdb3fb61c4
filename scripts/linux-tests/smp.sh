#!/bin/sh
# SMP: the harts the kernel brought up, then four sha256sum loops in the background at once (the
# scheduler spreads them over the harts). Each loop chains its hashes over a generated file, so its
# result is fixed; the loops finish in a schedule-dependent order, so results are printed sorted.
# QEMU reference: boot with -smp 4 and no -icount. With -icount (or thread=single) QEMU runs the harts
# round-robin in long slices: hart 0 finishes OpenSBI 1.5's cold boot before hart 1 runs at all, hart 1's
# boot lottery (amoswap.w 1 on _boot_status) then overwrites BOOT_HART_DONE (2) and it waits forever for
# 2, so Linux reports "CPU1: failed to come online" and nproc 1.
echo "nproc: $(nproc)"
procs=$(grep -c '^processor' /proc/cpuinfo)
echo "processors: $procs"
grep '^hart[[:space:]]*:' /proc/cpuinfo | sed 's/[[:space:]]*:[[:space:]]*/: /'
echo "online: $(cat /sys/devices/system/cpu/online)"
[ "$(nproc)" = "$procs" ] || exit 1

seq 1 30000 > /tmp/smp.data || exit 1
for w in 1 2 3 4; do
    (
        h="worker $w"
        for round in 1 2 3 4; do
            h=$({ echo "$h"; cat /tmp/smp.data; } | sha256sum | cut -d' ' -f1)
        done
        echo "worker $w: $h" > "/tmp/smp.out.$w"
    ) &
done
wait
cat /tmp/smp.out.* | sort
[ "$(cat /tmp/smp.out.* | wc -l)" = 4 ] || exit 1
