# gdb script for crates/cli/tests/gdb.rs (replay of guests/smp_debug with 4 harts): harts are
# threads; a breakpoint only hart 2 reaches stops thread 3; registers are per thread; stepi and
# reverse-stepi of thread 1 move hart 0 by one instruction; reverse-continue goes back to earlier
# hits on the hart that hit them. Lines starting "MARK " are parsed.
set pagination off
set confirm off
set width 0
printf "MARK threads\n"
info threads
printf "MARK threads-end\n"
break hart2_round
continue
printf "MARK hit0 thread=%d pc=%#lx round=%lu hartid=%lu\n", $_thread, $pc, $a0, $mhartid
thread 1
printf "MARK t1 thread=%d hartid=%lu sp=%#lx\n", $_thread, $mhartid, $sp
thread 3
printf "MARK t3 thread=%d hartid=%lu sp=%#lx\n", $_thread, $mhartid, $sp
thread 1
continue
printf "MARK hit1 thread=%d pc=%#lx round=%lu hartid=%lu\n", $_thread, $pc, $a0, $mhartid
# gdb steps RISC-V in software (a breakpoint after the instruction): hold the other threads'
# stops to the stepped one.
set scheduler-locking step
thread 1
printf "MARK before thread=%d pc=%#lx minstret=%lu\n", $_thread, $pc, $minstret
stepi
printf "MARK after thread=%d pc=%#lx minstret=%lu\n", $_thread, $pc, $minstret
reverse-stepi
printf "MARK back thread=%d pc=%#lx minstret=%lu\n", $_thread, $pc, $minstret
set scheduler-locking replay
# From hart 0's position: back to hart 2's hits.
reverse-continue
printf "MARK rev1 thread=%d pc=%#lx round=%lu hartid=%lu\n", $_thread, $pc, $a0, $mhartid
reverse-continue
printf "MARK rev0 thread=%d pc=%#lx round=%lu hartid=%lu\n", $_thread, $pc, $a0, $mhartid
delete
# Every hart calls visit(hart, round): the stop names the hart that hit, with its registers.
break visit
continue
printf "MARK v1 thread=%d hart=%lu hartid=%lu round=%lu\n", $_thread, $a0, $mhartid, $a1
continue
printf "MARK v2 thread=%d hart=%lu hartid=%lu round=%lu\n", $_thread, $a0, $mhartid, $a1
continue
printf "MARK v3 thread=%d hart=%lu hartid=%lu round=%lu\n", $_thread, $a0, $mhartid, $a1
reverse-continue
printf "MARK rv2 thread=%d hart=%lu hartid=%lu round=%lu\n", $_thread, $a0, $mhartid, $a1
reverse-continue
printf "MARK rv1 thread=%d hart=%lu hartid=%lu round=%lu\n", $_thread, $a0, $mhartid, $a1
delete
# A watchpoint is on every hart: only hart 2 writes work[2].
watch work[2]
continue
printf "MARK w1 thread=%d hartid=%lu value=%lu\n", $_thread, $mhartid, work[2]
continue
printf "MARK w2 thread=%d hartid=%lu value=%lu\n", $_thread, $mhartid, work[2]
reverse-continue
printf "MARK rw1 thread=%d hartid=%lu value=%lu\n", $_thread, $mhartid, work[2]
printf "MARK done\n"
kill
