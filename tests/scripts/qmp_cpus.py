#!/usr/bin/env python3
"""query-cpus-fast and HMP `info cpus` against `rewind replay --qmp ... -S` of a machine with
several harts (run by crates/cli/tests/qmp.rs).

Usage: qmp_cpus.py --unix PATH --harts N [--reference PATH]

Checks: query-cpus-fast has one entry per hart in QEMU 10's shape (cpu-index, qom-path, props,
target, one thread-id for all: they run on one host thread); `info cpus` has one line per hart,
the one whose turn it is starred, and the star moves as the replay seeks to other harts' turns.
With --reference (the QMP socket of `qemu-system-riscv64 -M virt -smp N -S`), the entries equal
QEMU's except for the thread ids.
"""

import argparse
import asyncio
import re

from qmp_common import check, connect, execute, new_listener, quit_and_close


def parse():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--unix", metavar="PATH", required=True, help="rewind's QMP unix socket")
    p.add_argument("--harts", type=int, required=True)
    p.add_argument("--reference", metavar="PATH", help="QEMU's QMP unix socket")
    return p.parse_args()


def starred(text):
    """The CPU index of the starred line of `info cpus` (checks the format of every line)."""
    lines = text.splitlines()
    stars = []
    for i, line in enumerate(lines):
        m = re.fullmatch(r"([* ]) CPU #(\d+): thread_id=(\d+)", line)
        check(m is not None and int(m.group(2)) == i, f"info cpus line {i} in QEMU's format ({line!r})")
        if m.group(1) == "*":
            stars.append(i)
    check(len(stars) == 1, f"exactly one CPU is starred ({text!r})")
    return stars[0], len(lines)


async def main():
    args = parse()
    n = args.harts
    qmp = await connect(argparse.Namespace(unix=args.unix, tcp=None))
    shutdown = new_listener(qmp, ("SHUTDOWN",))

    cpus = await execute(qmp, "query-cpus-fast")
    print(f"query-cpus-fast: {cpus}", flush=True)
    check(isinstance(cpus, list) and len(cpus) == n, f"query-cpus-fast lists {n} harts")
    for i, c in enumerate(cpus):
        want = {"cpu-index": i, "qom-path": f"/machine/soc0/harts[{i}]", "props": {"core-id": i},
                "target": "riscv64"}
        got = {k: v for k, v in c.items() if k != "thread-id"}
        check(got == want, f"hart {i}: {got} is QEMU 10's {want}")
        check(isinstance(c.get("thread-id"), int) and c["thread-id"] > 0, f"hart {i} has a thread id")
    check(len({c["thread-id"] for c in cpus}) == 1, "all harts run on one host thread")

    info = await execute(qmp, "human-monitor-command", {"command-line": "info cpus"})
    star, lines = starred(info)
    check(lines == n, f"info cpus has {n} lines")
    check(star == 0, "hart 0 runs first")
    check(f"thread_id={cpus[0]['thread-id']}" in info, "info cpus and query-cpus-fast agree on the thread id")

    # Turns of 10,000 instructions: seeking through the first turns shows other harts' turns.
    seen = {star}
    for icount in (5000, 15000, 25000, 35000, 45000):
        await execute(qmp, "replay-seek", {"icount": icount})
        star, _ = starred(await execute(qmp, "human-monitor-command", {"command-line": "info cpus"}))
        print(f"at {icount}: hart {star}'s turn", flush=True)
        seen.add(star)
    check(len(seen) > 1, f"the star follows the turns ({sorted(seen)})")

    if args.reference:
        ref = await connect(argparse.Namespace(unix=args.reference, tcp=None))
        theirs = await execute(ref, "query-cpus-fast")
        print(f"QEMU's query-cpus-fast: {theirs}", flush=True)
        strip = lambda l: [{k: v for k, v in c.items() if k != "thread-id"} for c in l]
        check(strip(theirs) == strip(cpus), "the entries are QEMU's (thread ids aside)")
        check(all(isinstance(c["thread-id"], int) for c in theirs), "QEMU's thread ids are numbers too")
        await ref.disconnect()

    await quit_and_close(qmp, shutdown)
    print("all checks passed", flush=True)


asyncio.run(main())
