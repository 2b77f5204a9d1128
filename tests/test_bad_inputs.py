"""The bad-input corpus: every case a file in ``tests/bad_inputs/<area>/``, run through the
command line as a user runs it, must end with its expected exit code and message, and never
with a traceback.

A case is YAML::

    why: what a user did
    files:                      # written into a fresh folder (text, or {base64: ...}, or
      def.yaml: |               #  {repeat: TEXT, times: N} for large inputs)
        truecount: 1
    setup:                      # commands run first; each must exit 0
      - [init, ws]
    run: [count, def.yaml, -w, ws]
    exit: 2
    says: "a fragment of the message"   # in stdout or stderr, case-insensitive
    not_says: ["Traceback"]             # optional

The CLI runs in this process (``truecount.cli.main`` with its own argv), so the whole corpus
takes seconds; anything but a clean exit — an exception escaping ``main`` — fails the case and
shows the exception.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from truecount.cli import main

CORPUS = Path(__file__).parent / "bad_inputs"
CASES = sorted(CORPUS.rglob("*.yaml"))


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def run_cli(args: list[str], folder: Path) -> tuple[int, str, str]:
    """Run ``truecount ARGS`` in ``folder``: exit code, stdout, stderr. An exception that
    escapes the CLI propagates: that is the traceback a user would have seen."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["truecount", *[str(a) for a in args]]
    code = 0
    try:
        with _in(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def _write(folder: Path, files: dict[str, Any]) -> None:
    for name, content in (files or {}).items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict) and "base64" in content:
            target.write_bytes(base64.b64decode(content["base64"]))
        elif isinstance(content, dict) and "repeat" in content:
            target.write_text(str(content["repeat"]) * int(content["times"]), encoding="utf-8")
        else:
            target.write_text(str(content), encoding="utf-8")


def test_the_corpus_is_there() -> None:
    assert CASES, "tests/bad_inputs holds no case"


def run_case(case: Path, folder: Path) -> tuple[int, str]:
    """Write the case's files into ``folder``, run its setup and its command: exit code and
    everything printed. An exception escaping the CLI propagates (a traceback)."""
    spec = yaml.safe_load(case.read_text(encoding="utf-8"))
    assert {"why", "run", "exit", "says"} <= set(spec), f"{case}: needs why, run, exit, says"
    _write(folder, spec.get("files") or {})
    for step in spec.get("setup") or []:
        code, out, err = run_cli(list(step), folder)
        assert code == 0, f"setup {step} exited {code}: {err or out}"
    code, out, err = run_cli(list(spec["run"]), folder)
    return code, out + err


@pytest.mark.parametrize("case", CASES, ids=[str(c.relative_to(CORPUS)) for c in CASES])
def test_bad_input(case: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load(case.read_text(encoding="utf-8"))
    code, said = run_case(case, tmp_path)
    lowered = said.lower()
    assert code == spec["exit"], f"exit {code}, expected {spec['exit']}: {said}"
    assert str(spec["says"]).lower() in lowered, f"expected {spec['says']!r} in: {said}"
    for word in spec.get("not_says") or []:
        assert str(word).lower() not in lowered, f"{word!r} in: {said}"
    assert "traceback" not in lowered


def census() -> dict[str, dict[str, int]]:
    """Run every case and count, per class (folder): cases, each exit code, and tracebacks
    (an exception escaping the CLI, or "Traceback" printed). For docs/reliability.md::

        .venv/bin/python tests/test_bad_inputs.py
    """
    import tempfile
    import traceback

    table: dict[str, dict[str, int]] = {}
    for case in CASES:
        row = table.setdefault(case.parent.name, {"cases": 0, "tracebacks": 0})
        row["cases"] += 1
        with tempfile.TemporaryDirectory() as tmp:
            try:
                code, said = run_case(case, Path(tmp))
            except Exception:  # counting exactly these
                traceback.print_exc()
                row["tracebacks"] += 1
                continue
        if "traceback" in said.lower():
            row["tracebacks"] += 1
        row[f"exit {code}"] = row.get(f"exit {code}", 0) + 1
    return table


if __name__ == "__main__":
    rows = census()
    total: dict[str, int] = {}
    for name, row in sorted(rows.items()):
        print(name, " ".join(f"{k}={v}" for k, v in sorted(row.items())))
        for k, v in row.items():
            total[k] = total.get(k, 0) + v
    print("all", " ".join(f"{k}={v}" for k, v in sorted(total.items())))
