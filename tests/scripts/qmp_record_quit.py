#!/usr/bin/env python3
"""QMP against `rewind record ... --qmp ... -S` with a guest that idles in wfi (run by
crates/cli/tests/qmp.rs).

Usage: qmp_record_quit.py (--unix PATH | --tcp HOST:PORT)

Lets the guest run for a while (it waits for console input in wfi, with a timer ticking), then
quits; the cargo test replays the trace and checks it ends in the recorded state.
"""

import asyncio

from qmp_common import connect, execute, new_listener, parse_args, quit_and_close


async def main():
    args = parse_args(__doc__)
    qmp = await connect(args)
    shutdown = new_listener(qmp, ("SHUTDOWN",))
    await execute(qmp, "cont")
    await asyncio.sleep(0.3)
    await quit_and_close(qmp, shutdown)
    print("qmp_record_quit: all checks passed", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
