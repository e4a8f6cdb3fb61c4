# gdb script for crates/cli/tests/gdb.rs (`rewind record`): a breakpoint while recording, a read of
# memory that does not exist (must be an error), then `kill`.
set pagination off
set confirm off
set width 0
break tick
continue
continue
continue
printf "MARK hit3 pc=%#lx i=%d counter=%lu\n", $pc, i, counter
python
try:
    gdb.execute("x/xg 0x100000000000", to_string=True)
    print("MARK badread accepted")
except gdb.error as e:
    print("MARK badread error: %s" % e)
end
printf "MARK done\n"
kill
