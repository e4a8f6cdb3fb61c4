"""The Python tutorial of docs/analysis.md runs as written, against the demo recording."""

import contextlib
import io
import os
import re

from conftest import DEMO_ELF, ROOT, run_rewind


def test_the_tutorial_runs(tmp_path):
    text = (ROOT / "docs" / "analysis.md").read_text()
    part = text.split("### Tutorial", 1)[1].split("### Reference", 1)[0]
    [record] = re.findall(r"```sh\n(rewind record [^\n]*)\n```", part)
    [code] = re.findall(r"```python\n(.*?)```", part, re.S)
    args = record.split()[1:]
    args = [str(DEMO_ELF) if a == "guests/prebuilt/demo.elf" else a for a in args]
    run_rewind(*args, cwd=tmp_path)
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "docs/analysis.md", "exec"), {})
    finally:
        os.chdir(cwd)
    # The values the comments show are the ones printed.
    printed = out.getvalue()
    lines = code.splitlines()
    for k, line in enumerate(lines):
        if "print(" not in line:
            continue
        # The output a print shows: in a comment on its line, or on the line after it.
        if "  # " in line:
            shown = line.split("  # ", 1)[1].strip()
        elif k + 1 < len(lines) and lines[k + 1].startswith("# "):
            shown = lines[k + 1][2:].strip()
        else:
            continue
        assert shown in printed, f"{shown!r} not in:\n{printed}"
