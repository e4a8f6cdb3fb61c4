"""rewind.analyze(..., engine="ray:ADDRESS") on a local Ray cluster started here: the same
results as the local engine, for every analysis; errors as exceptions.

Skipped when this Python cannot import ray, unless REWIND_REQUIRE_RAY is set (.ci/run sets it
and installs ray into the venv that runs these tests)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import rewind

from conftest import rewind_bin


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_cli() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.is_file() else (shutil.which("ray") or "ray")


@pytest.fixture(scope="module")
def cluster():
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("REWIND_REQUIRE_RAY"):
            pytest.fail(f"{sys.executable} cannot import ray (REWIND_REQUIRE_RAY is set)")
        pytest.skip("ray is not installed")
    port = _free_port()
    # Short: Ray's socket paths live under it.
    temp = tempfile.mkdtemp(prefix="rwpy-")
    log = open(os.path.join(temp, "start.log"), "w")
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    # Its own process group, which is killed at the end (`ray stop` would stop every Ray
    # on the machine).
    proc = subprocess.Popen(
        [
            _ray_cli(), "start", "--head", "--block", "--num-cpus=2", f"--port={port}",
            "--include-dashboard=false", "--disable-usage-stats",
            "--object-store-memory=100000000",
            f"--dashboard-agent-listen-port={_free_port()}", f"--temp-dir={temp}",
        ],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            text = Path(log.name).read_text(errors="replace")
            if "Ray runtime started" in text:
                break
            if proc.poll() is not None:
                pytest.fail(f"ray start exited {proc.returncode}:\n{text[-2000:]}")
            if time.time() > deadline:
                pytest.fail("the Ray cluster did not come up in 120 s")
            time.sleep(1)
        os.environ["REWIND_BIN"] = str(rewind_bin())
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        yield f"ray:{address}"
    finally:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


TICKS = 0x800012D0  # the demo guest's `ticks` (docs/analysis.md)


def test_every_analysis_on_ray_equals_the_local_engine(demo, cluster):
    for kind, options in [
        ("coverage", {}),
        ("console", {}),
        ("syscalls", {}),
        ("verify", {}),
        ("last-write", {"addr": TICKS, "len": 8}),
        ("last-write", {"addr": TICKS, "len": 8, "before": 1548410}),
    ]:
        local = rewind.analyze(demo, kind, jobs=2, **options)
        remote = rewind.analyze(demo, kind, engine=cluster, **options)
        assert remote == local, (kind, options)
        if kind != "verify":
            assert rewind.analyze(demo, kind, engine=cluster, json=True, **options) == \
                rewind.analyze(demo, kind, jobs=1, json=True, **options), (kind, options)
    w = rewind.analyze(demo, "last-write", engine=cluster, addr=TICKS, len=8)
    assert w["icount"] == 1548410 and w["value"] == 3, w
    # Nothing wrote the range: None, as locally.
    assert rewind.analyze(demo, "last-write", engine=cluster, addr=TICKS, len=8, before=10) is None


def test_ray_engine_errors_are_exceptions(demo, cluster, tmp_path):
    with pytest.raises(rewind.RequestError, match="unknown engine"):
        rewind.analyze(demo, "coverage", engine="dask")
    with pytest.raises(rewind.RequestError, match="symbols"):
        rewind.analyze(demo, "coverage", engine=cluster, symbols="x.elf")
    with pytest.raises(rewind.Error, match="missing.rwtrace"):
        rewind.analyze(tmp_path / "missing.rwtrace", "coverage", engine=cluster)
    # A cluster that is not there: one line naming the address.
    port = _free_port()
    with pytest.raises(rewind.Error, match=f"127.0.0.1:{port}"):
        rewind.analyze(demo, "console", engine=f"ray:127.0.0.1:{port}")
