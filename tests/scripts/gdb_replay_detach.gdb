# gdb script for crates/cli/tests/gdb.rs (replay): stop at tick(1), then detach; rewind replays
# on to the end of the recording and prints its verdict.
set pagination off
set confirm off
break tick
continue
printf "MARK stopped\n"
detach
printf "MARK detached\n"
