#!/usr/bin/env bash
# Builds the `rewind` Python package (crates/py, pyo3 + maturin) into the project venv
# target/py-venv with pip, from the source tree, and runs its tests (tests/python) with pytest.
# `.ci/run` calls it after `cargo test`, which built the `rewind` binary and the `tamper`
# example the tests run; alone, it builds them if they are missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="$(realpath -m "${REWIND_PY_VENV:-target/py-venv}")"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    # Debian's python3 needs python3-venv for `-m venv` with pip (pyenv's has it).
    if ! "$PYTHON" -c "import venv, ensurepip" 2>/dev/null; then
        SUDO=""
        if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
        $SUDO apt-get update
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends python3-venv python3-pip
    fi
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# maturin (the build backend) runs from the venv.
export PATH="$VENV/bin:$PATH"
"$PY" -m pip install --quiet --disable-pip-version-check "maturin>=1.9.4,<2" "pytest>=7" mypy

# What the tests run besides the package.
[ -x target/debug/rewind ] || cargo build -p rewind
[ -x target/debug/examples/tamper ] || cargo build -p rewind-log --example tamper

# The package, built from the source tree (maturin, cargo profile `py`, the workspace's
# target directory) and installed into the venv.
echo "python-tests: pip install ./crates/py"
"$PY" -m pip install --quiet --disable-pip-version-check --no-build-isolation --force-reinstall ./crates/py

# The stubs and the pure-Python part type-check.
MYPYPATH=crates/py/python "$PY" -m mypy --no-incremental crates/py/python/rewind

set +e
"$PY" -m pytest tests/python -p no:cacheprovider -ra "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
    echo "python-tests: pytest collected no tests: failing" >&2
    exit 1
fi
exit "$rc"
