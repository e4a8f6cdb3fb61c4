"""The rewind package on the demo guest's recording: open, events, replay, memory, hooks,
analyses (against the CLI and against independent single-step replays), errors."""

import json
import subprocess

import pytest
import rewind

from conftest import DEMO_ELF, ROOT, cli_error, run_rewind, target_dir

DEMO_INSTRUCTIONS = 1548854
# The demo's `ticks` counter (riscv64-unknown-elf-nm guests/prebuilt/demo.elf), incremented
# by the timer handler; and the pc of its store (docs/analysis.md).
TICKS = 0x800012D0


def test_header_facts(demo):
    t = rewind.open(demo)
    assert t.instructions == DEMO_INSTRUCTIONS
    assert t.snapshots == [300000, 600000, 900000, 1200000, 1500000]
    [img] = t.images
    assert img["role"] == "kernel"
    assert img["size"] == DEMO_ELF.stat().st_size
    assert len(img["blake3"]) == 64
    assert isinstance(t.config, dict) and t.config == t.header["machine_config"]
    assert t.exit == {"kind": "pass", "code": 0, "icount": DEMO_INSTRUCTIONS}
    assert t.header["images"] == t.images


def test_events_without_replay(demo):
    t = rewind.open(demo)
    events = list(t.events())
    assert len(events) == t.events_count
    counts = {}
    for kind, icount, payload in events:
        counts[kind] = counts.get(kind, 0) + 1
        assert isinstance(payload, dict)
    assert counts == t.event_counts
    assert [icount for _, icount, _ in events] == sorted(icount for _, icount, _ in events)
    assert events[-1][0] == "End" and events[-1][1] == DEMO_INSTRUCTIONS
    marks = [(i, p["seq"]) for k, i, p in t.events(kinds=["SnapshotMark"])]
    # Mark 0 is the machine at reset (the base of the stored snapshots).
    assert marks[0] == (0, 0)
    assert [i for i, _ in marks[1:]] == t.snapshots
    # The same facts as `rewind dump`.
    dump = run_rewind("dump", demo, "--kind", "exit").stdout
    assert "GuestExit" in dump


def test_full_replay_and_console(demo):
    t = rewind.open(demo)
    r = t.replay()
    assert r.icount == 0 and r.pc == 0x1000 and r.privilege == "M"  # the reset ROM
    s = r.run()
    assert (s.reason, s.icount, r.icount) == ("end", DEMO_INSTRUCTIONS, DEMO_INSTRUCTIONS)
    assert s.outcome == "guest exit status 0"
    assert "the 2000th prime is 17389, checksum 0x7525e9cfe9c2eda0" in r.console()
    # The console analysis has the same text line by line.
    lines = rewind.analyze(t, "console")
    assert "\n".join(l["text"] for l in lines) == r.console().rstrip("\n").replace("\r\n", "\n")
    # Past the end, nothing more happens.
    assert r.step(10).reason == "end"


def test_replay_from_a_snapshot_matches_a_replay_from_reset(demo):
    t = rewind.open(demo)
    a = t.replay()
    assert a.run_until(700000).reason == "limit"
    b = t.replay(start=700000)
    assert b.icount == 700000 == a.icount
    assert (b.pc, b.regs, b.state_hash) == (a.pc, a.regs, a.state_hash)
    assert b.csr("mstatus") == a.csr("mstatus") == a.csr(0x300)
    assert b.read_mem(TICKS, 8) == a.read_mem(TICKS, 8)
    for r in (a, b):
        assert r.step(1234).icount == 701234
    assert a.state_hash == b.state_hash
    # Bare metal in M mode: virtual = physical; the code at the pc is the pc's instruction.
    assert a.read_mem(a.pc, 64) == a.read_mem(a.pc, 64, virtual=False)
    elf = DEMO_ELF.read_bytes()
    assert a.read_mem(0x80000000, 16) in elf
    assert a.reg("x2") == a.reg("sp") == a.regs["sp"]
    assert b.console() == ""  # output before the start is not replayed


def test_last_write_matches_a_single_step_replay(demo):
    t = rewind.open(demo)
    w = rewind.analyze(t, "last-write", addr=TICKS, len=8, jobs=2)
    prev = rewind.analyze(t, "last-write", addr=TICKS, len=8, before=w["icount"], jobs=2)
    assert prev["icount"] < w["icount"]
    # Independently: step one instruction at a time from a snapshot before both writes and
    # note where the bytes change (ticks only grows, so every write changes them).
    start = max(s for s in t.snapshots if s <= prev["icount"])
    r = t.replay(start=start)
    changes = []
    before = r.read_mem(TICKS, 8)
    while True:
        icount, pc = r.icount, r.pc
        if r.step(1).reason == "end":
            break
        now = r.read_mem(TICKS, 8)
        if now != before:
            changes.append((icount, pc, now))
        before = now
    assert changes[-1] == (w["icount"], w["pc"], w["bytes"])
    assert changes[-2] == (prev["icount"], prev["pc"], prev["bytes"])
    assert w["value"] == int.from_bytes(w["bytes"], "little")
    assert w["mode"] == "M" and w["addr"] == TICKS
    # The CLI's answer, byte for byte.
    cli = run_rewind("analyze", "last-write", demo, "--addr", hex(TICKS), "--len", "8", "--json")
    assert rewind.analyze(demo, "last-write", addr=TICKS, len=8, json=True) == cli.stdout
    assert json.loads(cli.stdout)["icount"] == w["icount"]
    assert rewind.analyze(demo, "last-write", addr=0x80FFFF00, len=8) is None


def test_coverage_equals_a_single_step_replay(demo):
    t = rewind.open(demo)
    cov = rewind.analyze(t, "coverage", jobs=4)
    assert cov["instructions"] == DEMO_INSTRUCTIONS
    # Step one instruction at a time; a trap hook stops before each handler's first
    # instruction, so the instruction that retires in the next step is the one at the pc.
    r = t.replay()
    r.on_trap(lambda r, e: True)
    seen = {}
    while True:
        pc, mode, icount = r.pc, r.privilege, r.icount
        s = r.step(1)
        if s.reason == "trap":
            continue  # stopped before the handler: nothing retired
        if r.icount == icount:
            break  # the end, with nothing more retired
        m = seen.setdefault(mode, {})
        m[pc] = m.get(pc, 0) + 1
        if s.reason == "end":
            break
    assert seen == cov["modes"]


def test_analyses_do_not_depend_on_jobs_and_equal_the_cli(demo):
    one = rewind.analyze(demo, "coverage", jobs=1, json=True)
    four = rewind.analyze(demo, "coverage", jobs=4, json=True)
    assert one == four
    out = demo.parent / "cov.json"
    run_rewind("analyze", "coverage", demo, "--out", out, "-j", "2")
    assert out.read_text() == one
    assert json.loads(one)["instructions"] == DEMO_INSTRUCTIONS
    console = run_rewind("analyze", "console", demo, "--json").stdout
    assert rewind.analyze(demo, "console", json=True) == console
    lw = [rewind.analyze(demo, "last-write", addr=TICKS, len=8, before=1000000, jobs=j) for j in (1, 4)]
    assert lw[0] == lw[1]
    assert rewind.analyze(demo, "syscalls", jobs=1) == rewind.analyze(demo, "syscalls", jobs=4) == []
    checks = rewind.analyze(demo, "verify", jobs=2)
    assert [c["ok"] for c in checks] == [True] * 6


def test_breakpoint_hits_equal_coverage_counts(demo):
    t = rewind.open(demo)
    w = rewind.analyze(t, "last-write", addr=TICKS, len=8)
    cov = rewind.analyze(t, "coverage")
    pc = w["pc"]
    # Without a callback a breakpoint stops the replay before the instruction.
    r = t.replay()
    s = r.add_breakpoint(pc)
    first = r.run()
    assert (first.reason, first.pc, r.pc) == ("breakpoint", pc, pc)
    assert first.event["pc"] == pc and first.event["hook"] == s
    # Going on does not stop at the same instruction again.
    second = r.run()
    assert second.reason == "breakpoint" and second.icount > first.icount
    # With a callback that returns nothing, it counts.
    r = t.replay()
    hits = []
    r.add_breakpoint(pc, lambda r, e: hits.append(r.icount))
    assert r.run().reason == "end"
    assert len(hits) == cov["modes"]["M"][pc]
    assert hits[-1] == w["icount"]


def test_watchpoint_stops_before_the_write_the_analysis_finds(demo):
    t = rewind.open(demo)
    r = t.replay()
    r.add_watchpoint(TICKS, 8, "write")
    # The first write zeroes .bss; the next ones are the timer handler's increments.
    for _ in range(3):
        s = r.run()
        assert s.reason == "watchpoint" and s.event["access"] == "write"
        w = rewind.analyze(t, "last-write", addr=TICKS, len=8, before=s.icount + 1)
        assert (w["icount"], w["pc"]) == (s.icount, s.pc) == (r.icount, r.pc)
        r.step(1)
        assert r.read_mem(TICKS, 8) == w["bytes"]
    assert w["value"] == 1
    # A read watchpoint with a callback raising StopReplay.
    r = t.replay()

    def stop(r, e):
        raise rewind.StopReplay()

    r.add_watchpoint(TICKS, 8, "read", stop)
    s = r.run()
    assert s.reason == "watchpoint" and s.event["access"] == "read"


def test_instruction_block_and_stop_hooks(demo):
    t = rewind.open(demo)
    cov = rewind.analyze(t, "coverage")["modes"]["M"]
    # A per-instruction hook on a pc range sees exactly the covered instructions there.
    lo, hi = 0x80000000, 0x80000200
    r = t.replay()
    n = []
    r.on_instruction(lambda r, e: n.append(e["pc"]), start=lo, end=hi)
    r.run()
    assert len(n) == sum(c for pc, c in cov.items() if lo <= pc < hi)
    # A callback returning True stops the replay there, before the instruction.
    r = t.replay()
    r.on_instruction(lambda r, e: r.icount == 123456)
    s = r.run()
    assert (s.reason, s.icount, r.icount) == ("instruction", 123456, 123456)
    s = r.step(10)
    assert (s.reason, s.icount) == ("limit", 123466)
    # Blocks: the first one starts at the reset pc (the ROM); then the firmware's entry.
    r = t.replay()
    blocks = []

    def block(r, e):
        blocks.append((r.icount, e["pc"]))
        return len(blocks) == 50

    r.on_block(block)
    s = r.run()
    assert blocks[0] == (0, 0x1000) and blocks[1][1] == 0x80000000
    assert s.reason == "block" and s.icount == blocks[-1][0] and r.pc == blocks[-1][1]
    assert len(blocks) == 50
    # Removing the hook lets the replay run to its end.
    r.clear_hooks()
    assert r.run().reason == "end"


def test_trap_and_console_hooks(demo):
    t = rewind.open(demo)
    r = t.replay()
    r.on_trap(lambda r, e: True)
    s = r.run()
    assert s.reason == "trap"
    e = s.event
    assert e["interrupt"] and e["cause"] == 7  # the machine timer
    assert r.pc == r.csr("mtvec") & ~3 == e["pc"]
    assert r.csr("mcause") == (1 << 63) | 7 and r.csr("mepc") == e["epc"]
    r = t.replay()
    seen = []
    stop_at = [0]  # the offset of the byte whose hook stops the replay
    r.on_console(lambda r, e: seen.append(e) or e["offset"] == stop_at[0])
    s = r.run()
    assert s.reason == "console"
    lines = rewind.analyze(t, "console")
    # The bytes were shown up to the stopping one, with the icount the console analysis gives
    # the line it ends; the replay stops at most 1,000 instructions later.
    assert seen[-1]["data"] == b"\n" and seen[-1]["offset"] == 0
    assert seen[-1]["icount"] == lines[0]["icount"] <= s.icount <= lines[0]["icount"] + 1000
    # Going on shows the rest, none twice, none lost.
    stop_at[0] = lines[2]["offset"] + len(lines[2]["text"])
    s = r.run()
    assert [e["offset"] for e in seen] == list(range(len(seen)))
    assert seen[-1]["icount"] == lines[2]["icount"]
    assert b"".join(e["data"] for e in seen).decode().splitlines()[:3] == [l["text"] for l in lines[:3]]


def test_errors_are_the_cli_messages(demo, tmp_path):
    missing = tmp_path / "missing.rwtrace"
    with pytest.raises(rewind.TraceError) as e:
        rewind.open(missing)
    assert str(e.value) == cli_error("verify", missing)
    t = rewind.open(demo)
    with pytest.raises(rewind.RequestError) as e:
        t.replay(start=DEMO_INSTRUCTIONS + 1)
    assert str(e.value) == cli_error("replay", demo, "--from", DEMO_INSTRUCTIONS + 1, "--serial", "null")
    not_a_trace = tmp_path / "x.rwtrace"
    not_a_trace.write_bytes(b"hello, this is not a trace at all" * 4)
    with pytest.raises(rewind.Error) as e:
        rewind.open(not_a_trace)
    assert str(e.value) == cli_error("verify", not_a_trace)
    with pytest.raises(rewind.RequestError, match="unknown engine 'dask'"):
        rewind.analyze(demo, "coverage", engine="dask")
    with pytest.raises(rewind.RequestError, match="unknown analysis"):
        rewind.analyze(demo, "nothing")
    with pytest.raises(rewind.RequestError, match="takes no option 'adr'"):
        rewind.analyze(demo, "last-write", adr=1)
    r = t.replay()
    with pytest.raises(rewind.RequestError, match="not mapped|not RAM"):
        r.read_mem(0x10, 4)
    with pytest.raises(rewind.RequestError, match="unknown CSR"):
        r.csr("nonsense")
    # A callback's own exception comes out of the run, where it was raised.
    r.on_instruction(lambda r, e: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        r.run()


def test_a_diverging_replay_raises_the_divergence_report(demo, tmp_path):
    tamper = target_dir() / "debug" / "examples" / "tamper"
    if not tamper.is_file():
        pytest.fail(f"{tamper}: missing (cargo build -p rewind-log --examples)")
    bad = tmp_path / "bad.rwtrace"
    at = int(subprocess.run([tamper, demo, bad], check=True, capture_output=True, text=True).stdout)
    t = rewind.open(bad)
    r = t.replay()
    with pytest.raises(rewind.DivergenceError) as e:
        r.run()
    cli = run_rewind("replay", bad, "--serial", "null", check=False)
    assert cli.returncode == 3
    assert f"replay diverged at instruction {at}" in str(e.value)
    assert cli.stderr.startswith("rewind: " + str(e.value).splitlines()[0])
    assert str(e.value) in cli.stderr


def test_a_pack_opens_and_replays(demo, tmp_path):
    pack = tmp_path / "demo.rwpack"
    run_rewind("pack", demo, "-o", pack)
    t = rewind.open(pack)
    assert t.instructions == DEMO_INSTRUCTIONS
    assert t.snapshots == rewind.open(demo).snapshots
    r = t.replay(start=1200000)
    assert r.run().reason == "end"
    assert rewind.analyze(pack, "coverage", json=True) == rewind.analyze(demo, "coverage", json=True)
