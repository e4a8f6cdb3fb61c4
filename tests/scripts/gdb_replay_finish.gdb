# gdb script for crates/cli/tests/gdb.rs (replay): source-level reverse execution. In tick(3):
# next x3 (to the printf line), reverse-next (back to the line that writes counter: not yet written),
# reverse-step (back into leaf, called on the line before), reverse-finish (back to the call in
# tick); then forward into leaf(3) and reverse-finish again, to the same call.
set pagination off
set confirm off
set width 0
break tick
continue
continue
continue
delete
python print("MARK at3 line=%d func=%s" % (gdb.selected_frame().find_sal().line, gdb.selected_frame().name()))
next
python print("MARK n1 line=%d func=%s" % (gdb.selected_frame().find_sal().line, gdb.selected_frame().name()))
printf "MARK n1c counter=%lu\n", counter
next
python print("MARK n2 line=%d func=%s" % (gdb.selected_frame().find_sal().line, gdb.selected_frame().name()))
printf "MARK n2c counter=%lu\n", counter
next
python print("MARK n3 line=%d func=%s" % (gdb.selected_frame().find_sal().line, gdb.selected_frame().name()))
printf "MARK n3c counter=%lu\n", counter
reverse-next
python print("MARK rn line=%d func=%s" % (gdb.selected_frame().find_sal().line, gdb.selected_frame().name()))
printf "MARK rnc counter=%lu\n", counter
reverse-step
python print("MARK rs line=%d func=%s" % (gdb.selected_frame().find_sal().line, gdb.selected_frame().name()))
reverse-finish
python print("MARK rf1 line=%d func=%s" % (gdb.selected_frame().find_sal().line, gdb.selected_frame().name()))
printf "MARK rf1pc pc=%#lx i=%d\n", $pc, i
echo MARK rf1insn\040
x/i $pc
break leaf
continue
python print("MARK leaf line=%d func=%s" % (gdb.selected_frame().find_sal().line, gdb.selected_frame().name()))
printf "MARK leafx x=%lu\n", x
reverse-finish
python print("MARK rf2 line=%d func=%s" % (gdb.selected_frame().find_sal().line, gdb.selected_frame().name()))
printf "MARK rf2pc pc=%#lx i=%d\n", $pc, i
printf "MARK done\n"
kill
