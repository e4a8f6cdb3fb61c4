#!/usr/bin/env python3
"""QMP against `rewind run --qmp ... -S` with a guest that runs until told to stop (run by
crates/cli/tests/qmp.rs).

Usage: qmp_run.py (--unix PATH | --tcp HOST:PORT)

Checks: query-replay says mode none; cont / stop send RESUME / STOP and query-status follows;
replay commands fail (nothing is being replayed) and the session stays usable; quit ends the process.
"""

import asyncio

from qmp_common import (check, connect, execute, execute_error, new_listener, next_event,
                        parse_args, quit_and_close)


async def main():
    args = parse_args(__doc__)
    qmp = await connect(args)
    runstate = new_listener(qmp, ("STOP", "RESUME"))
    shutdown = new_listener(qmp, ("SHUTDOWN",))

    r = await execute(qmp, "query-replay")
    print(f"query-replay: {r}", flush=True)
    check(r["mode"] == "none", "query-replay mode is none outside record/replay")

    s = await execute(qmp, "query-status")
    check(s["running"] is False, f"started paused (-S) ({s})")

    for round_ in (1, 2):
        await execute(qmp, "cont")
        ev = await next_event(runstate, ("STOP", "RESUME"), "after cont")
        check(ev["event"] == "RESUME", f"cont sends RESUME (round {round_})")
        s = await execute(qmp, "query-status")
        check(s["running"] is True and s["status"] == "running", f"running after cont ({s})")
        await asyncio.sleep(0.2)
        await execute(qmp, "stop")
        ev = await next_event(runstate, ("STOP", "RESUME"), "after stop")
        check(ev["event"] == "STOP", f"stop sends STOP (round {round_})")
        s = await execute(qmp, "query-status")
        check(s["running"] is False and s["status"] == "paused", f"paused after stop ({s})")

    cls, desc = await execute_error(qmp, "replay-seek", {"icount": 1000})
    check(bool(desc.strip()), f"replay-seek fails when not replaying ({cls}: {desc})")
    cls, desc = await execute_error(qmp, "replay-break", {"icount": 1000})
    check(bool(desc.strip()), f"replay-break fails when not replaying ({cls}: {desc})")
    cls, desc = await execute_error(qmp, "no-such-command")
    check(cls == "CommandNotFound", f"an unknown command is CommandNotFound ({cls}: {desc})")
    s = await execute(qmp, "query-status")
    check(s["running"] is False, "still usable and paused after the errors")

    info = await execute(qmp, "human-monitor-command", {"command-line": "info replay"})
    check(info == "Record/replay is not active\n", f"HMP info replay in run mode ({info!r})")
    v = await execute(qmp, "query-version")
    check("qemu" in v and "package" in v, f"query-version has QEMU's shape ({v})")
    names = {c["name"] for c in await execute(qmp, "query-commands")}
    check({"human-monitor-command", "system_reset", "query-status"} <= names,
          "query-commands lists human-monitor-command and system_reset")
    reset = new_listener(qmp, ("RESET", "POWERDOWN"))
    await execute(qmp, "system_reset")
    ev = await next_event(reset, ("RESET", "POWERDOWN"), "after system_reset")
    check(ev["event"] == "RESET" and ev["data"]["reason"] == "host-qmp-system-reset",
          f"system_reset sends RESET ({ev})")
    await execute(qmp, "system_powerdown")
    ev = await next_event(reset, ("RESET", "POWERDOWN"), "after system_powerdown")
    check(ev["event"] == "POWERDOWN", "system_powerdown sends POWERDOWN")

    await quit_and_close(qmp, shutdown)
    print("qmp_run: all checks passed", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
