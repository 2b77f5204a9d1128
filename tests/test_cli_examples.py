"""Every example in the help runs, as a user who installed truecount with pip would run it.

The examples name only files that ``truecount demo`` writes (no ``examples/`` or ``bench/``
paths from the source tree); each runs in a fresh copy of one demo folder, through the same
entry point as the console script, and must end with exit 0 or 1 (1 is a finding, such as the
demo invoice being beyond tolerance), never a usage error or a traceback.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from truecount.cli import main
from truecount.cli.app import _load_verbs, app

_load_verbs()
ROOT: Any = typer.main.get_command(app)
EXAMPLE = re.compile(
    r"Example, in the folder that 'truecount demo' writes:\s*\n\s*(truecount [^\n]+)"
)


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, cmd in group.commands.items():
        found.append((*prefix, name))
        if getattr(cmd, "commands", None):
            found.extend(_commands(cmd, (*prefix, name)))
    return found


def _examples() -> list[str]:
    runner = CliRunner()
    found = []
    for words in _commands(ROOT):
        text = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200"}).output
        found.extend(m.group(1).strip() for m in EXAMPLE.finditer(text))
    return found


EXAMPLES = _examples()


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _run(args: list[str], folder: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["truecount", *args]
    code = 0
    try:
        with _in(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0
    finally:
        sys.argv = argv
    return code, out.getvalue() + err.getvalue()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("demo")
    code, said = _run(["demo", "-o", "truecount-demo"], base)
    assert code == 0, said
    return base / "truecount-demo"


def test_the_main_verbs_show_an_example() -> None:
    verbs = {shlex.split(e)[1] for e in EXAMPLES}
    assert {"count", "check", "reconcile", "drift", "sql", "price", "demo"} <= verbs


@pytest.mark.parametrize("example", EXAMPLES)
def test_help_example_runs(example: str, demo: Path, tmp_path: Path) -> None:
    words = shlex.split(example)
    assert words[0] == "truecount"
    for word in words[1:]:
        assert not word.startswith(("examples/", "bench/", "tests/", "docs/")), word
    folder = tmp_path / "demo"
    shutil.copytree(demo, folder)
    code, said = _run(words[1:], folder)
    assert code in (0, 1), f"{example} exited {code}: {said}"
    assert "Traceback" not in said


def test_demo_again_replaces_only_its_own_work(demo: Path, tmp_path: Path) -> None:
    """Run again over its own folder, the demo starts over; once the user has added to its
    workspace, it stops and says what would be lost, and --replace is needed to go on."""
    import duckdb

    from truecount.watch.store import SNAPSHOT_TABLE

    folder = tmp_path / "demo"
    shutil.copytree(demo, folder)
    code, said = _run(["demo", "-o", "."], folder)
    assert code == 0, said
    (folder / "page.html").write_text("<p>What counts as a resolution</p>", encoding="utf-8")
    code, said = _run(["watch", "add", "resolution", "page.html", "-w", "workspace"], folder)
    assert code == 0, said
    code, said = _run(["demo", "-o", "."], folder)
    assert code == 2 and "1 watch snapshot(s) added after the demo" in said, said
    assert "--replace" in said
    code, said = _run(["demo", "-o", ".", "--replace"], folder)
    assert code == 0, said
    with duckdb.connect(str(folder / "workspace" / "truecount.duckdb"), read_only=True) as con:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        kept = (
            con.execute(f"SELECT count(*) FROM {SNAPSHOT_TABLE}").fetchone()
            if SNAPSHOT_TABLE in tables  # made on the first 'watch add'
            else (0,)
        )
    assert kept == (0,)
