"""rewind's Ray engine: segment tasks (and hunt tries) of a recording on a Ray cluster.

Pure Python: only ``ray`` and the standard library. Two ways in:

* ``run_tasks(tasks, address=None, rewind_bin=None, pack=None)`` -> list of dicts: the
  function the ``rewind`` Python package calls (``rewind.analyze(..., engine="ray")``).
  Each task is ``{"args": [...], "artifact": PATH?}``: a command line of the rewind binary
  run on a worker, where the word ``{pack}`` stands for the worker's copy of ``pack`` (a
  ``rewind pack`` file, shipped once through Ray's object store) and ``{artifact}`` for a
  file the task may write, copied to ``PATH`` here. Each result is ``{"ok": STDOUT}`` or
  ``{"error": ONE_LINE}``, plus ``"artifact": True`` when the file came back. For an
  analysis the args are ``["segment-task", "{pack}", "--spec", SPEC_JSON, "--segment",
  K]`` and STDOUT is the segment's partial result as JSON (rewind_machine::task::TaskResult);
  the merge is the library's (``rewind_machine::task::merge``), so results are the same
  bytes as with ``--jobs N``.
* ``python3 ray_engine.py --serve``: the driver of ``rewind ... --engine ray[:ADDRESS]``
  (the CLI embeds this file). JSON lines on stdin/stdout: first
  ``{"address": A|null, "bin": PATH, "pack": PATH|null}`` -> ``{"cpus": N}``; then
  ``{"tasks": [...]}`` -> ``{"results": [...]}``, until end of input. Any failure is
  ``{"error": "..."}`` (one line); Ray's own logs go to stderr.

``address``: ``None`` starts a local Ray instance (or joins ``$RAY_ADDRESS``), ``"auto"``
finds a running one, ``"HOST:PORT"`` is a head node's GCS address (``ray start --head``).
The rewind binary must be at ``rewind_bin`` on every worker (``$REWIND_RAY_BIN``).
"""

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile

# Object store of a local instance this driver starts (bytes): a pack is stored once.
LOCAL_OBJECT_STORE = 256 * 1024 * 1024


def _one_line(text):
    lines = [l.strip() for l in str(text).splitlines() if l.strip()]
    return lines[-1] if lines else "no message"


class EngineError(Exception):
    """The engine cannot run (no ray, cluster unreachable): a one-line message."""


def _connect(address):
    try:
        import ray  # type: ignore  # noqa: F401
    except ImportError as e:
        raise EngineError(
            "the Ray engine needs the `ray` Python package for %s (pip install ray, "
            "or set REWIND_PYTHON to a Python that has it): %s" % (sys.executable, e)
        )
    import ray  # type: ignore

    if ray.is_initialized():
        return ray
    # ray.init waits a long time for a head node that is not there: ask its port first.
    if address not in (None, "auto") and ":" in address:
        import socket

        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except (OSError, ValueError) as e:
            raise EngineError("cannot reach the Ray cluster at %s: %s" % (address, e))
    kwargs = dict(logging_level=logging.ERROR, log_to_driver=False)
    try:
        if address is None and not os.environ.get("RAY_ADDRESS"):
            ray.init(
                object_store_memory=LOCAL_OBJECT_STORE,
                include_dashboard=False,
                **kwargs
            )
        else:
            ray.init(address=address, **kwargs)
    except Exception as e:  # Ray raises ConnectionError, RuntimeError, ValueError...
        raise EngineError(
            "cannot reach the Ray cluster at %s: %s"
            % (address or os.environ.get("RAY_ADDRESS") or "a new local instance", _one_line(e))
        )
    return ray


def _worker(rewind_bin, args, digest, pack_ref, want_artifact):
    """On a worker: fetch the pack once per node, run the rewind binary."""
    pack_path = None
    if digest is not None:
        import ray  # type: ignore

        cache = os.path.join(tempfile.gettempdir(), "rewind-ray-packs")
        os.makedirs(cache, exist_ok=True)
        pack_path = os.path.join(cache, digest + ".rwpack")
        if not os.path.exists(pack_path):
            data = ray.get(pack_ref[0])
            fd, tmp = tempfile.mkstemp(dir=cache, suffix=".part")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, pack_path)
    work = tempfile.mkdtemp(prefix="rewind-task-")
    artifact = os.path.join(work, "artifact")
    argv = [rewind_bin]
    for a in args:
        if a == "{pack}":
            if pack_path is None:
                return {"error": "the task needs a pack and none was handed over"}
            a = pack_path
        elif a == "{artifact}":
            a = artifact
        argv.append(a)
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work)
    except OSError as e:
        return {"error": "cannot run %s on %s: %s" % (rewind_bin, os.uname().nodename, e)}
    out = {}
    try:
        if p.returncode != 0:
            msg = _one_line(p.stderr.decode("utf-8", "replace"))
            if msg.startswith("rewind: "):
                msg = msg[len("rewind: "):]
            out["error"] = "%s (exit status %d on %s)" % (msg, p.returncode, os.uname().nodename)
        else:
            out["ok"] = p.stdout.decode("utf-8", "replace")
        if want_artifact and os.path.exists(artifact):
            with open(artifact, "rb") as f:
                out["artifact_bytes"] = f.read()
    finally:
        for name in os.listdir(work):
            path = os.path.join(work, name)
            if os.path.isfile(path):
                os.remove(path)
        try:
            os.rmdir(work)
        except OSError:
            pass
    return out


class Engine:
    """A connection to a cluster with one pack in its object store."""

    def __init__(self, address=None, rewind_bin=None, pack=None):
        self.ray = _connect(address)
        self.rewind_bin = rewind_bin or os.environ.get("REWIND_RAY_BIN") or "rewind"
        self.digest = None
        self.pack_ref = None
        if pack is not None:
            try:
                with open(pack, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise EngineError("%s: cannot read the pack: %s" % (pack, e.strerror))
            self.digest = hashlib.blake2b(data, digest_size=16).hexdigest()
            self.pack_ref = self.ray.put(data)
        self.remote = self.ray.remote(num_cpus=1, max_retries=1)(_worker)

    def cpus(self):
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def run(self, tasks):
        refs = [
            self.remote.remote(
                self.rewind_bin,
                list(t["args"]),
                self.digest,
                # In a list: the worker fetches the pack only when it has no copy yet.
                [self.pack_ref],
                bool(t.get("artifact")),
            )
            for t in tasks
        ]
        results = []
        for t, ref in zip(tasks, refs):
            try:
                r = self.ray.get(ref)
            except Exception as e:  # a worker lost, a node gone
                r = {"error": "the task was lost: %s" % _one_line(e)}
            data = r.pop("artifact_bytes", None)
            if data is not None and t.get("artifact"):
                with open(t["artifact"], "wb") as f:
                    f.write(data)
                r["artifact"] = True
            results.append(r)
        return results

    def close(self):
        self.ray.shutdown()


def run_tasks(tasks, address=None, rewind_bin=None, pack=None):
    """Run rewind tasks on the cluster at ``address``; see the module's documentation."""
    engine = Engine(address, rewind_bin, pack)
    try:
        return engine.run(tasks)
    finally:
        engine.close()


def _serve():
    out = os.fdopen(os.dup(1), "w")
    # Whatever Ray prints goes to stderr: stdout carries the protocol only.
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    engine = None
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                req = json.loads(line)
                if engine is None:
                    engine = Engine(req.get("address"), req.get("bin"), req.get("pack"))
                    reply({"cpus": engine.cpus()})
                else:
                    reply({"results": engine.run(req["tasks"])})
            except EngineError as e:
                reply({"error": str(e)})
                return 1
            except Exception as e:
                reply({"error": "the Ray driver failed: %s: %s" % (type(e).__name__, _one_line(e))})
                return 1
    finally:
        if engine is not None:
            engine.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        sys.exit(_serve())
    sys.stderr.write("usage: ray_engine.py --serve (JSON lines on stdin; see the docstring)\n")
    sys.exit(2)
