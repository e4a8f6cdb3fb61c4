# gdb script for crates/cli/tests/gdb.rs (`rewind run`): breakpoints and continue, and writes work
# outside replay. At tick(2) counter (1) becomes 100, so tick(2) computes 100*3+2 = 302 and prints it.
# Then forward watch/rwatch stops (the test compares every MARK line with QEMU's gdbstub).
set pagination off
set confirm off
set width 0
break tick
continue
continue
printf "MARK hit2 pc=%#lx i=%d counter=%lu\n", $pc, i, counter
set var counter = 100
printf "MARK set counter=%lu\n", counter
set $t0 = 0x1234
maintenance flush register-cache
printf "MARK t0 t0=%#lx\n", $t0
delete
finish
printf "MARK after counter=%lu\n", counter
# Forward watchpoints: tick(3) stores 302 * 3 + 3; the next read is printf's argument, in tick(3).
watch counter
continue
printf "MARK watch pc=%#lx i=%d counter=%lu\n", $pc, i, counter
delete
rwatch counter
continue
printf "MARK rwatch pc=%#lx i=%d counter=%lu\n", $pc, i, counter
delete
printf "MARK done\n"
kill
