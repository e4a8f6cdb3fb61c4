"""The rewind package on a recorded Linux session (the scripted boot to poweroff)."""

import rewind

from conftest import run_rewind


def test_open_iterate_replay_and_read_memory(linux):
    t = rewind.open(linux)
    n = t.instructions
    assert n > 1_000_000_000
    assert {i["role"] for i in t.images} == {"bios", "kernel", "initrd"}
    assert t.exit is not None and t.exit["icount"] == n
    counts = {}
    for kind, _, _ in t.events():
        counts[kind] = counts.get(kind, 0) + 1
    assert counts == t.event_counts
    marks = [i for _, i, _ in t.events(kinds=["SnapshotMark"]) if i > 0]
    snaps = t.snapshots
    assert len(snaps) >= 3 and snaps == sorted(snaps) == marks
    # From the last snapshot: Linux runs in S and U mode with paging on.
    r = t.replay(start=snaps[-1])
    assert r.icount == snaps[-1]
    seen = set()
    while len(seen) < 2 and r.step(100_000).reason == "limit":
        seen.add(r.privilege)
        if r.privilege == "S":
            satp = r.csr("satp")
            assert satp >> 60 in (8, 9, 10)  # Sv39/48/57
            # The kernel's code at its pc, read through its page tables, is an instruction
            # of the kernel image... and its stack pointer is mapped.
            code = r.read_mem(r.pc, 4)
            assert len(code) == 4
            assert len(r.read_mem(r.regs["sp"] - 64, 64)) == 64
    # Two replays reach the same state at the same instruction.
    a = t.replay(start=snaps[-2])
    a.run_until(snaps[-1] + 5000)
    b = t.replay(start=snaps[-1])
    b.run_until(snaps[-1] + 5000)
    assert (a.pc, a.regs, a.state_hash) == (b.pc, b.regs, b.state_hash)
    end = b.run()
    assert end.reason == "end" and end.icount == n
    assert "--- rewind.test end ---" in b.console()


def test_syscalls_from_python_equal_the_cli(linux):
    one = rewind.analyze(linux, "syscalls", jobs=1, json=True)
    assert one == rewind.analyze(linux, "syscalls", jobs=4, json=True)
    assert one == run_rewind("analyze", "syscalls", linux, "--json", "-j", "2").stdout
    calls = rewind.analyze(linux, "syscalls", jobs=2)
    writes = [c for c in calls if c["name"] == "write" and c["args"][0] in (1, 2)]
    assert writes and all(c["ret"] == c["args"][2] for c in writes)
