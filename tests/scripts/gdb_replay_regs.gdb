# gdb script for crates/cli/tests/gdb.rs (replay): registers and CSRs read at tick(1); writes to
# memory and registers are refused (the replay must stay faithful to the trace); then `kill`.
set pagination off
set confirm off
set width 0
break tick
continue
echo MARK inforeg\040
info registers pc
printf "MARK regs pc=%#lx sp=%#lx x2=%#lx a0=%#lx x10=%#lx ra=%#lx\n", $pc, $sp, $x2, $a0, $x10, $ra
python
# One line per register, "missing" instead of aborting the script when the target lacks one.
for r in ("fcsr", "mstatus", "misa", "mtvec", "f0", "ft0", "fa0"):
    v = gdb.parse_and_eval("$" + r)
    if v.type.code == gdb.TYPE_CODE_VOID:
        print("MARK reg %s missing" % r)
    elif v.type.code == gdb.TYPE_CODE_UNION or v.type.code == gdb.TYPE_CODE_FLT:
        print("MARK reg %s present" % r)
    else:
        print("MARK reg %s=%#x" % (r, int(v) & 0xffffffffffffffff))
end
echo MARK infomstatus\040
info registers mstatus
printf "MARK counter0 counter=%lu\n", counter
python
try:
    gdb.execute("set var counter = 5", to_string=True)
    print("MARK writemem accepted")
except gdb.error as e:
    print("MARK writemem refused: %s" % e)
end
printf "MARK counter1 counter=%lu\n", counter
python
try:
    gdb.execute("set $a0 = 0x77", to_string=True)
    print("MARK writereg accepted")
except gdb.error as e:
    print("MARK writereg refused: %s" % e)
end
maintenance flush register-cache
printf "MARK a0after a0=%#lx\n", $a0
# The monitor answers the human monitor's commands.
python
print("MARK monreplay %s" % gdb.execute("monitor info replay", to_string=True).replace("\n", " | "))
print("MARK monsnap %s" % gdb.execute("monitor snapshots", to_string=True).replace("\n", " | "))
print("MARK moncont %s" % gdb.execute("monitor cont", to_string=True).replace("\n", " | "))
end
# The replay still runs on unchanged: tick(2) sees counter == 1.
continue
printf "MARK hit2 i=%d counter=%lu\n", i, counter
printf "MARK kill\n"
kill
