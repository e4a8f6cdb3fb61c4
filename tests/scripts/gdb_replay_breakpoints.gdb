# gdb script for crates/cli/tests/gdb.rs (replay): breakpoint hits going forward, then
# reverse-continue back to earlier hits, which must show the same pc, `i` and `counter`.
# The test passes `set architecture` and `target remote` with -ex; lines starting "MARK " are parsed.
set pagination off
set confirm off
set width 0
break tick
continue
printf "MARK fwd1 pc=%#lx i=%d counter=%lu\n", $pc, i, counter
continue
printf "MARK fwd2 pc=%#lx i=%d counter=%lu\n", $pc, i, counter
continue
printf "MARK fwd3 pc=%#lx i=%d counter=%lu\n", $pc, i, counter
reverse-continue
printf "MARK rev2 pc=%#lx i=%d counter=%lu\n", $pc, i, counter
reverse-continue
printf "MARK rev1 pc=%#lx i=%d counter=%lu\n", $pc, i, counter
# Forward again after going back: the same future.
continue
printf "MARK again2 pc=%#lx i=%d counter=%lu\n", $pc, i, counter
continue
printf "MARK again3 pc=%#lx i=%d counter=%lu\n", $pc, i, counter
printf "MARK done\n"
kill
