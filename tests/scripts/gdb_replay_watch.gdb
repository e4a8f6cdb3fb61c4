# gdb script for crates/cli/tests/gdb.rs (replay): watchpoints backwards and forwards. At tick(3)
# (counter = 5) `watch counter` + reverse-continue must stop where tick(2) stored it (5, was 1);
# continuing stops right after that store again; rwatch then finds the very next read (printf's
# argument, still in tick(2)); awatch + reverse-continue finds an access in tick(2) too.
set pagination off
set confirm off
set width 0
break tick
continue
continue
continue
printf "MARK at3 pc=%#lx i=%d counter=%lu\n", $pc, i, counter
delete
watch counter
printf "MARK reverse\n"
reverse-continue
printf "MARK wrev pc=%#lx counter=%lu\n", $pc, counter
echo MARK wrevsym\040
info symbol $pc
printf "MARK forward\n"
continue
printf "MARK wfwd pc=%#lx i=%d counter=%lu\n", $pc, i, counter
echo MARK wfwdsym\040
info symbol $pc
# The stop is right after the store: one instruction back undoes it.
reverse-stepi
printf "MARK wstore counter=%lu\n", counter
stepi
printf "MARK wagain counter=%lu\n", counter
delete
rwatch counter
printf "MARK rforward\n"
continue
printf "MARK rfwd pc=%#lx i=%d counter=%lu\n", $pc, i, counter
echo MARK rfwdsym\040
info symbol $pc
delete
awatch counter
printf "MARK areverse\n"
reverse-continue
printf "MARK arev pc=%#lx i=%d counter=%lu\n", $pc, i, counter
echo MARK arevsym\040
info symbol $pc
printf "MARK done\n"
kill
