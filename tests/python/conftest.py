"""Fixtures of the Python package's tests: the `rewind` binary and recordings made with it.

The recordings are made by the test run (as crates/cli/tests do): the demo guest, and the
scripted Linux boot when assets/linux/ is there (REWIND_REQUIRE_LINUX=1 turns its absence
into a failure, as in CI).
"""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_ELF = ROOT / "guests" / "prebuilt" / "demo.elf"
LINUX = ROOT / "assets" / "linux"
LINUX_APPEND = "console=ttyS0 earlycon rdinit=/init"


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def rewind_bin() -> Path:
    p = Path(os.environ.get("REWIND_BIN", target_dir() / "debug" / "rewind"))
    if not p.is_file():
        pytest.fail(f"{p}: no rewind binary (run `cargo build -p rewind` or set REWIND_BIN)")
    return p


def run_rewind(*args, check=True, timeout=600, cwd=None):
    """Runs the rewind binary; returns the CompletedProcess (text)."""
    r = subprocess.run(
        [str(rewind_bin()), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    if check and r.returncode != 0:
        pytest.fail(f"rewind {' '.join(map(str, args))}: exit {r.returncode}\n{r.stderr}")
    return r


def cli_error(*args) -> str:
    """The one-line error the CLI prints, without its `rewind: ` prefix."""
    r = run_rewind(*args, check=False)
    assert r.returncode != 0, r.stdout
    line = r.stderr.strip()
    assert line.startswith("rewind: "), r.stderr
    return line[len("rewind: ") :]


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """The demo guest recorded with a snapshot every 300,000 instructions (6 segments)."""
    d = tmp_path_factory.mktemp("demo")
    t = d / "demo.rwtrace"
    run_rewind(
        "record", "-o", t, "--kernel", DEMO_ELF, "--serial", "null",
        "--snapshot-every", "300000", "--check-interval", "100000",
    )
    return t


@pytest.fixture(scope="session")
def linux(tmp_path_factory) -> Path:
    """The scripted Linux boot (OpenSBI, kernel, busybox initrd, test script, poweroff)."""
    files = ["fw_jump.bin", "Image", "initrd.cpio.gz"]
    if not all((LINUX / f).is_file() for f in files):
        if os.environ.get("REWIND_REQUIRE_LINUX"):
            pytest.fail(f"{LINUX}: Linux assets missing (scripts/linux-guest.sh makes them)")
        pytest.skip("no assets/linux (scripts/linux-guest.sh)")
    d = tmp_path_factory.mktemp("linux")
    t = d / "l.rwd"
    r = run_rewind(
        "record", "-o", t, "-q", "-m", "512M",
        "--bios", LINUX / "fw_jump.bin", "--kernel", LINUX / "Image",
        "--initrd", LINUX / "initrd.cpio.gz",
        "--append", f"{LINUX_APPEND} rewind.test=1",
        "--serial", "stdio", "--snapshot-every", "400000000",
    )
    assert "--- rewind.test end ---" in r.stdout, r.stdout[-2000:]
    return t
