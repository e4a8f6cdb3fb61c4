"""Ask questions of rewind recordings from Python.

``rewind.open(path)`` opens a trace (``rewind record -o t.rwtrace``) or a pack
(``rewind pack``): header facts, the log's events, and replays with hooks
(``Trace.replay``). ``rewind.analyze(trace, kind, ...)`` runs the built-in analyses
(coverage, console, last-write, syscalls, verify): the code ``rewind analyze`` runs, with
Python objects out, or the CLI's JSON text with ``json=True``.

Every error is a ``rewind.Error`` with the message the CLI prints after ``rewind:``;
a replay that diverges from its recording raises ``rewind.DivergenceError`` with the
divergence report. A hook stops the replay by returning True or raising
``rewind.StopReplay``. See docs/analysis.md.
"""

from __future__ import annotations

import builtins
import os
import shutil
import sys
from typing import Any, Optional, Union

from ._native import (
    CutShortError,
    DivergenceError,
    Error,
    Events,
    Replay,
    RequestError,
    Stop,
    StopReplay,
    Trace,
    TraceError,
    __version__,
)
from ._native import analyze as _analyze_local
from ._native import open

__all__ = [
    "open",
    "analyze",
    "ENGINES",
    "Trace",
    "Events",
    "Replay",
    "Stop",
    "Error",
    "TraceError",
    "DivergenceError",
    "CutShortError",
    "RequestError",
    "StopReplay",
    "__version__",
]

#: The engines ``analyze`` runs segments on: "local" (threads of this process), "ray"
#: (a local Ray instance), "ray:auto" or "ray:HOST:PORT" (a Ray cluster).
ENGINES = ("local", "ray", "ray:auto", "ray:HOST:PORT")


def analyze(
    trace: Union[str, "os.PathLike[str]", Trace],
    kind: str,
    jobs: Optional[int] = None,
    *,
    engine: str = "local",
    json: bool = False,
    snapshots: Optional[Union[str, "os.PathLike[str]"]] = None,
    images: Optional[dict] = None,
    **options: Any,
) -> Any:
    """Run the built-in analysis ``kind`` on ``trace`` (a path to a trace or pack, or a Trace).

    kind: "coverage" (``symbols=ELF`` adds a per-function table), "console",
    "last-write" (``addr=``, ``len=1``, ``before=None``), "syscalls" or "verify".
    jobs: segments replayed at once (default: the number of cores); the result does not
    depend on it. engine: where the segments run: "local", or "ray[:ADDRESS]" — the segments
    then run as Ray tasks of the ``rewind`` binary (``$REWIND_BIN``, else ``rewind`` on PATH;
    the same path on every worker, see docs/analysis.md), merged by the same code, so the
    result is the same. json=True returns the text ``rewind analyze KIND --json`` prints (for
    coverage: the ``--out`` file's text).
    """
    if engine == "ray" or engine.startswith("ray:"):
        return _analyze_ray(trace, kind, jobs, engine, json, snapshots, images, options)
    if engine != "local":
        raise RequestError(f"unknown engine '{engine}' (engines: {', '.join(ENGINES)})")
    return _analyze_local(
        trace, kind, jobs=jobs, json=json, snapshots=snapshots, images=images, **options
    )


def _rewind_binary() -> str:
    exe = os.environ.get("REWIND_BIN") or shutil.which("rewind")
    if not exe:
        raise RequestError(
            "the Ray engine runs the rewind binary on its workers: set REWIND_BIN to it "
            "or put `rewind` on PATH"
        )
    return exe


def _analyze_ray(
    trace: Any,
    kind: str,
    jobs: Optional[int],
    engine: str,
    json: bool,
    snapshots: Any,
    images: Optional[dict],
    options: dict,
) -> Any:
    """``analyze`` on Ray: ``rewind analyze KIND --engine ENGINE`` (or ``verify``), whose
    driver is ``rewind.ray_engine``; its JSON is turned into what the local engine returns."""
    import json as _json
    import subprocess
    import tempfile

    if isinstance(trace, Trace):
        raise RequestError("engine ray takes the trace's path, not an opened Trace")
    known = {
        "coverage": set(),
        "console": set(),
        "syscalls": set(),
        "verify": set(),
        "last-write": {"addr", "len", "before"},
    }
    if kind not in known:
        raise RequestError(f"unknown analysis '{kind}'")
    bad = sorted(set(options) - known[kind])
    if bad:
        raise RequestError(
            f"analysis '{kind}' takes no option '{bad[0]}' with engine {engine}"
            + (" (symbols= is local only)" if bad[0] == "symbols" else "")
        )
    if jobs is not None and jobs < 1:
        raise RequestError("jobs must be at least 1")
    argv = [_rewind_binary()]
    argv += ["verify"] if kind == "verify" else ["analyze", kind]
    argv += [os.fspath(trace), "--engine", engine]
    if snapshots is not None:
        argv += ["--snapshots", os.fspath(snapshots)]
    for name, path in (images or {}).items():
        argv += ["--image", f"{name}={os.fspath(path)}"]
    if kind in ("console", "syscalls", "last-write"):
        argv.append("--json")
    if kind == "last-write":
        if "addr" not in options:
            raise RequestError("last-write needs addr= (the first byte of the range)")
        argv += ["--addr", hex(int(options["addr"]))]
        argv += ["--len", str(int(options.get("len", 1)))]
        if options.get("before") is not None:
            argv += ["--before", str(int(options["before"]))]
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "coverage.json")
        if kind == "coverage":
            argv += ["--out", out_path]
        env = dict(os.environ)
        env.setdefault("REWIND_PYTHON", sys.executable)
        p = subprocess.run(argv, capture_output=True, text=True, env=env)
        stdout = p.stdout
        if kind == "coverage" and p.returncode == 0:
            with builtins.open(out_path, encoding="utf-8") as f:
                stdout = f.read()
    lines = [l for l in p.stderr.splitlines() if l.startswith("rewind: ")]
    if kind == "last-write" and p.returncode == 1:
        return None
    if p.returncode != 0 and not (kind == "verify" and p.returncode == 3):
        msg = lines[-1][len("rewind: ") :] if lines else (p.stderr.strip() or "failed")
        if p.returncode == 3:
            raise DivergenceError("\n".join(l[len("rewind: ") :] for l in lines) or msg)
        raise RequestError(msg)
    if json:
        return stdout
    if kind == "coverage":
        cov = _json.loads(stdout)
        return {
            "instructions": cov["instructions"],
            "modes": {m: {int(pc, 16): n for pc, n in pcs.items()} for m, pcs in cov["modes"].items()},
        }
    if kind == "console":
        return [_json.loads(l) for l in stdout.splitlines() if l.strip()]
    if kind == "last-write":
        w = _json.loads(stdout)
        return {
            "icount": w["icount"],
            "pc": int(w["pc"], 16),
            "mode": w["mode"],
            "hart": w["hart"],
            "addr": int(w["addr"], 16),
            "bytes": bytes.fromhex(w["bytes"]),
            "value": w["value"],
        }
    if kind == "syscalls":
        return [_syscall_from_json(_json.loads(l)) for l in stdout.splitlines() if l.strip()]
    return _verify_from_text(stdout)


def _syscall_from_json(c: dict) -> dict:
    return {
        "icount": c["icount"],
        "hart": c["hart"],
        "pc": int(c["pc"], 16),
        "satp": int(c["satp"], 16),
        "nr": c["nr"],
        "name": c["name"],
        "args": c["args"],
        "ret": c["ret"],
        "ret_icount": c["ret_icount"],
    }


def _verify_from_text(text: str) -> list:
    """``rewind verify``'s lines as the local engine's dicts (a failure's ``error`` is the
    first line of its report: the CLI prints the rest on standard error)."""
    import re

    line_re = re.compile(
        r"^segment (\d+) \(instructions (\d+)\.\.(\d+|the end)\): "
        r"(?:ok, state ([0-9a-f]+)|FAILED: (.*))$"
    )
    out = []
    for line in text.splitlines():
        m = line_re.match(line)
        if not m:
            continue
        d: dict = {
            "segment": int(m.group(1)),
            "start": int(m.group(2)),
            "end": None if m.group(3) == "the end" else int(m.group(3)),
        }
        if m.group(4) is not None:
            d["ok"] = True
            d["state"] = int(m.group(4), 16)
        else:
            d["ok"] = False
            d["error"] = m.group(5)
        out.append(d)
    return out
