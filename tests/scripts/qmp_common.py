"""Helpers shared by the QMP test scripts (qmp_replay.py, qmp_run.py), run by crates/cli/tests/qmp.rs.

Each check prints one "ok: ..." line; the first failed check prints "FAIL: ..." and exits 1, so the
cargo test shows exactly which expectation broke. Every wait has a timeout: a server that never
answers fails the script instead of hanging it.
"""

import argparse
import asyncio
import sys

from qemu.qmp import ConnectError, EventListener, ExecInterruptedError, ExecuteError, QMPClient

#: Seconds any single command, event or connection attempt may take.
TIMEOUT = 15.0


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print(f"ok: {msg}", flush=True)


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--unix", metavar="PATH", help="QMP unix socket")
    g.add_argument("--tcp", metavar="HOST:PORT", help="QMP TCP address")
    p.add_argument("--trace", metavar="FILE", help="the trace being replayed")
    p.add_argument("--total", metavar="N", type=int, help="instructions in the trace")
    return p.parse_args()


def address(args):
    if args.unix:
        return args.unix
    host, _, port = args.tcp.rpartition(":")
    return (host, int(port))


async def connect(args):
    """Connect (the server may still be starting: retry for TIMEOUT seconds) and negotiate."""
    qmp = QMPClient("rewind-test")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:
        try:
            await asyncio.wait_for(qmp.connect(address(args)), TIMEOUT)
            return qmp
        except (ConnectError, OSError) as e:
            if loop.time() > deadline:
                fail(f"cannot connect to QMP at {address(args)}: {e}")
            await asyncio.sleep(0.1)


async def execute(qmp, cmd, arguments=None):
    """Run a command that must succeed; returns its result."""
    try:
        return await asyncio.wait_for(qmp.execute(cmd, arguments), TIMEOUT)
    except ExecuteError as e:
        fail(f"{cmd} {arguments or ''} failed: {e.error_class}: {e}")
    except asyncio.TimeoutError:
        fail(f"{cmd} {arguments or ''}: no answer within {TIMEOUT}s")


async def execute_error(qmp, cmd, arguments=None):
    """Run a command that must fail; returns (class, desc) of the error."""
    try:
        result = await asyncio.wait_for(qmp.execute(cmd, arguments), TIMEOUT)
    except ExecuteError as e:
        return e.error_class, str(e)
    except asyncio.TimeoutError:
        fail(f"{cmd} {arguments or ''}: no answer within {TIMEOUT}s")
    fail(f"{cmd} {arguments or ''} succeeded ({result}) but should have failed")


async def next_event(listener, names, what):
    """The next event from `listener` (which hears only `names`)."""
    try:
        ev = await asyncio.wait_for(listener.get(), TIMEOUT)
    except asyncio.TimeoutError:
        fail(f"no {'/'.join(names)} event within {TIMEOUT}s ({what})")
    print(f"event: {ev['event']} {ev.get('data', {})}", flush=True)
    return ev


def new_listener(qmp, names):
    listener = EventListener(names)
    qmp.register_listener(listener)
    return listener


async def quit_and_close(qmp, listener):
    """`quit`: the answer may be lost when the server closes first; either way the connection ends."""
    try:
        await asyncio.wait_for(qmp.execute("quit"), TIMEOUT)
        print("ok: quit answered", flush=True)
    except (ExecInterruptedError, ConnectionError, EOFError) as e:
        print(f"ok: quit closed the connection ({type(e).__name__})", flush=True)
    except asyncio.TimeoutError:
        fail(f"quit: no answer within {TIMEOUT}s")
    # A SHUTDOWN event is welcome but not required (the connection may close first).
    try:
        ev = await asyncio.wait_for(listener.get(), 2.0)
        check(ev["event"] == "SHUTDOWN", f"the event after quit is SHUTDOWN ({ev.get('data')})")
    except asyncio.TimeoutError:
        print("note: no SHUTDOWN event before the connection closed", flush=True)
    try:
        await asyncio.wait_for(qmp.disconnect(), TIMEOUT)
    except Exception as e:  # the server is gone: disconnect() reports how the session ended
        print(f"note: disconnect: {type(e).__name__}: {e}", flush=True)
