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

import os
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

#: The engines ``analyze`` runs segments on: "local" (threads of this process).
ENGINES = ("local",)


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
    depend on it. engine: where the segments run ("local"). json=True returns the text
    ``rewind analyze KIND --json`` prints (for coverage: the ``--out`` file's text).
    """
    if engine != "local":
        raise RequestError(
            f"engine '{engine}' is not available in this build (engines: {', '.join(ENGINES)})"
        )
    return _analyze_local(
        trace, kind, jobs=jobs, json=json, snapshots=snapshots, images=images, **options
    )
