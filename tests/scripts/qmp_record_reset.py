#!/usr/bin/env python3
"""QMP against `rewind record ... --qmp ... -S` with a guest that runs until told to stop (run by
crates/cli/tests/qmp.rs).

Usage: qmp_record_reset.py (--unix PATH | --tcp HOST:PORT)

Lets the guest run, resets it with system_reset (the reset is an event of the recording), lets it
run again, then quits; the cargo test replays the trace and checks it matches.
"""

import asyncio

from qmp_common import check, connect, execute, new_listener, next_event, parse_args, quit_and_close


async def main():
    args = parse_args(__doc__)
    qmp = await connect(args)
    reset = new_listener(qmp, ("RESET",))
    shutdown = new_listener(qmp, ("SHUTDOWN",))
    info = await execute(qmp, "human-monitor-command", {"command-line": "info replay"})
    check(info.startswith("Recording execution"), f"HMP info replay in record mode ({info!r})")
    await execute(qmp, "cont")
    await asyncio.sleep(0.5)
    await execute(qmp, "system_reset")
    ev = await next_event(reset, ("RESET",), "after system_reset")
    check(ev["data"]["guest"] is False, "RESET comes from the host")
    await asyncio.sleep(0.5)
    await quit_and_close(qmp, shutdown)
    print("qmp_record_reset: all checks passed", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
