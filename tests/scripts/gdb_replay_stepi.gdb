# gdb script for crates/cli/tests/gdb.rs (replay): stepi / reverse-stepi. From leaf(2)'s entry,
# one step forward and back, then back over the call into tick, five steps forward (through the call
# into leaf, where a0 changes) and five reverse steps, which must revisit the same pcs and a0 values.
set pagination off
set confirm off
set width 0
break leaf
continue
continue
delete
printf "MARK entry pc=%#lx a0=%#lx\n", $pc, $a0
stepi
printf "MARK one pc=%#lx a0=%#lx\n", $pc, $a0
reverse-stepi
printf "MARK back pc=%#lx a0=%#lx\n", $pc, $a0
reverse-stepi
printf "MARK s0 pc=%#lx a0=%#lx\n", $pc, $a0
echo MARK s0sym\040
info symbol $pc
stepi
printf "MARK s1 pc=%#lx a0=%#lx\n", $pc, $a0
stepi
printf "MARK s2 pc=%#lx a0=%#lx\n", $pc, $a0
stepi
printf "MARK s3 pc=%#lx a0=%#lx\n", $pc, $a0
stepi
printf "MARK s4 pc=%#lx a0=%#lx\n", $pc, $a0
stepi
printf "MARK s5 pc=%#lx a0=%#lx\n", $pc, $a0
reverse-stepi
printf "MARK r4 pc=%#lx a0=%#lx\n", $pc, $a0
reverse-stepi
printf "MARK r3 pc=%#lx a0=%#lx\n", $pc, $a0
reverse-stepi
printf "MARK r2 pc=%#lx a0=%#lx\n", $pc, $a0
reverse-stepi
printf "MARK r1 pc=%#lx a0=%#lx\n", $pc, $a0
reverse-stepi
printf "MARK r0 pc=%#lx a0=%#lx\n", $pc, $a0
printf "MARK done\n"
kill
