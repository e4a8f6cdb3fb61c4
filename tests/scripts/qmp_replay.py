#!/usr/bin/env python3
"""QMP against `rewind replay TRACE --qmp ... -S` (run by crates/cli/tests/qmp.rs).

Usage: qmp_replay.py (--unix PATH | --tcp HOST:PORT) --trace TRACE --total N
where N is the number of instructions in TRACE (`rewind record` prints it).

Checks: greeting; paused at instruction 0 in play mode with the trace's filename; replay-break + cont
stops at exactly that instruction with RESUME then STOP events; replay-seek backwards and forwards
land exactly; a break in the past and a seek past the end fail with a description and leave the
session usable; a deleted break does not stop the guest, which runs to its end while the process
stays alive and seekable; quit ends the process (the cargo test checks it exits 0).
"""

import asyncio
import os

from qmp_common import (check, connect, execute, execute_error, fail, new_listener, next_event,
                        parse_args, quit_and_close)


async def replay_state(qmp):
    r = await execute(qmp, "query-replay")
    print(f"query-replay: {r}", flush=True)
    return r


async def status(qmp):
    s = await execute(qmp, "query-status")
    print(f"query-status: {s}", flush=True)
    return s


async def main():
    args = parse_args(__doc__)
    if args.trace is None or args.total is None:
        fail("--trace and --total are required")
    total = args.total
    check(total > 1000, f"the trace is long enough to seek in ({total} instructions)")
    brk = total * 4 // 10
    half = brk // 2
    ahead = brk + (total - brk) // 2

    qmp = await connect(args)
    # The library already rejected a greeting without a QMP object; look inside it too.
    greeting = qmp.greeting._asdict() if qmp.greeting is not None else {}
    print(f"greeting: {greeting}", flush=True)
    inner = greeting.get("QMP", {})
    check("qemu" in inner.get("version", {}) and isinstance(inner.get("capabilities"), list),
          "greeting has QMP.version.qemu and QMP.capabilities")
    # connect() already negotiated capabilities (qmp_capabilities); a command now works.

    runstate = new_listener(qmp, ("STOP", "RESUME"))
    shutdown = new_listener(qmp, ("SHUTDOWN",))

    s = await status(qmp)
    check(s["running"] is False, "started paused (-S)")
    check(s["status"] in ("paused", "prelaunch"), f"status is paused or prelaunch ({s['status']})")

    r = await replay_state(qmp)
    check(r["mode"] == "play", "query-replay mode is play")
    check(os.path.realpath(r["filename"]) == os.path.realpath(args.trace),
          f"query-replay filename is the trace ({r['filename']})")
    check(r["icount"] == 0, "paused at instruction 0")

    # Break at a future instruction and run to it.
    await execute(qmp, "replay-break", {"icount": brk})
    await execute(qmp, "cont")
    ev = await next_event(runstate, ("STOP", "RESUME"), "after cont")
    check(ev["event"] == "RESUME", "cont sends RESUME")
    ev = await next_event(runstate, ("STOP", "RESUME"), "waiting for the replay break")
    check(ev["event"] == "STOP", "the replay break sends STOP")
    s = await status(qmp)
    check(s["running"] is False, "paused at the replay break")
    r = await replay_state(qmp)
    check(r["icount"] == brk, f"stopped at exactly instruction {brk} (at {r['icount']})")

    # Seek backwards, then forwards past the old position.
    await execute(qmp, "replay-seek", {"icount": half})
    r = await replay_state(qmp)
    check(r["icount"] == half, f"replay-seek back to {half} (at {r['icount']})")
    s = await status(qmp)
    check(s["running"] is False, "paused after replay-seek")
    await execute(qmp, "replay-seek", {"icount": ahead})
    r = await replay_state(qmp)
    check(r["icount"] == ahead, f"replay-seek forward to {ahead} (at {r['icount']})")

    # Errors: a break in the past, a seek beyond the end of the trace.
    cls, desc = await execute_error(qmp, "replay-break", {"icount": half})
    check(bool(desc.strip()), f"replay-break in the past fails with a description ({cls}: {desc})")
    cls, desc = await execute_error(qmp, "replay-seek", {"icount": total + 1_000_000})
    check(bool(desc.strip()), f"replay-seek beyond the end fails with a description ({cls}: {desc})")
    s = await status(qmp)
    check(s["running"] is False, "still paused after the failed seek")
    r = await replay_state(qmp)
    check(r["icount"] == ahead, f"the failed seek left the position unchanged (at {r['icount']})")

    # The human monitor, through QMP as QEMU's clients send it.
    regs = await execute(qmp, "human-monitor-command", {"command-line": "info registers"})
    print(f"info registers:\n{regs}", flush=True)
    check(" pc " in regs and " x10/a0 " in regs and "mstatus" in regs,
          "HMP info registers shows pc, the integer registers and the CSRs")
    info = await execute(qmp, "human-monitor-command", {"command-line": "info replay"})
    check(info.startswith("Replaying execution") and f"instruction count = {ahead}" in info,
          f"HMP info replay ({info.strip()!r})")
    st = await execute(qmp, "human-monitor-command", {"command-line": "info status"})
    check(st.startswith("VM status: paused"), f"HMP info status ({st.strip()!r})")
    out = await execute(qmp, "human-monitor-command", {"command-line": f"replay_seek {brk}"})
    r = await replay_state(qmp)
    check(out == "" and r["icount"] == brk, f"HMP replay_seek {brk} (at {r['icount']}, {out!r})")
    snaps = await execute(qmp, "human-monitor-command", {"command-line": "info snapshots"})
    check("ICOUNT" in snaps, f"HMP info snapshots lists the snapshots ({snaps.splitlines()[:2]})")
    out = await execute(qmp, "human-monitor-command", {"command-line": "system_reset"})
    check(out.startswith("Error:") and "replay" in out, f"HMP system_reset refused in replay ({out.strip()!r})")
    out = await execute(qmp, "human-monitor-command", {"command-line": "frobnicate"})
    check("unknown command" in out, f"an unknown HMP command says so ({out.strip()!r})")
    await execute(qmp, "replay-seek", {"icount": ahead})
    await execute(qmp, "replay-seek", {"icount": half})
    r = await replay_state(qmp)
    check(r["icount"] == half and r["mode"] == "play", "the session is usable after the errors")

    # A deleted break does not stop the guest: it runs to its end; the process stays up.
    await execute(qmp, "replay-break", {"icount": brk})
    await execute(qmp, "replay-delete-break")
    runstate.clear()
    await execute(qmp, "cont")
    ev = await next_event(runstate, ("STOP", "RESUME"), "after cont")
    check(ev["event"] == "RESUME", "cont sends RESUME")
    try:
        ev = await asyncio.wait_for(shutdown.get(), 15.0)
    except asyncio.TimeoutError:
        fail("no SHUTDOWN event when the replayed guest ended")
    print(f"event: {ev['event']} {ev.get('data', {})}", flush=True)
    check(ev.get("data", {}).get("guest") is True, "the guest's own exit sends SHUTDOWN with guest: true")
    r = await replay_state(qmp)
    check(brk < r["icount"] <= total,
          f"ran past the deleted break to the end ({brk} < {r['icount']} <= {total})")
    s = await status(qmp)
    check(s["running"] is False, f"not running after the guest ended ({s['status']})")
    # The recording can still be revisited after the end.
    await execute(qmp, "replay-seek", {"icount": brk})
    r = await replay_state(qmp)
    check(r["icount"] == brk, f"replay-seek to {brk} after the end (at {r['icount']})")

    shutdown.clear()
    await quit_and_close(qmp, shutdown)
    print("qmp_replay: all checks passed", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
