"""Console markup and terminal escapes in the data are printed as text, by every command.

An entity id ``[/]`` once crashed the printer (an unmatched closing tag), ``[bold]`` or
``[link=…]`` restyled the output, and an escape character in a reason reached the terminal and
was obeyed. Each command below reads such values from the data and must print them as written,
with control characters shown as ``\\x1b``, and exit cleanly.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from truecount.cli import main
from truecount.cli.app import stdout_console
from truecount.cli.terminal import clean, guarded

ESC = "\x1b"
IDS = ["T-[/]", "T-[bold]b", "T-[link=http://x]l", f"T-{ESC}[31mred"]

DEFINITION = """\
truecount: 1
name: closed_by_ai
version: 1
description: "[bold]Closed[/] by the AI [link=http://x]agent[/link] \\e[31m"
unit: ticket
period: {every: month, timezone: UTC}
anchor: {type: closed, actor: ai, pick: first}
conditions:
  not_reopened:
    absent: {type: reopened, within: 14d}
quantity: 1
"""


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def run(folder: Path, *args: str) -> tuple[int, str]:
    """``truecount ARGS`` in this process: exit code and stdout + stderr."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["truecount", *args]
    code = 0
    try:
        with _in(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return code, out.getvalue() + err.getvalue()


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("markup")
    rows = ["event_id,entity_id,ts,type,actor"]
    for i, entity in enumerate(IDS):
        rows.append(f"c{i},{_quote(entity)},2026-01-0{i + 1}T10:00:00Z,closed,ai")
    # a row quarantined for its timestamp: the reason quotes the cell, markup and escape included
    rows.append(f"bad,T-9,{_quote('[/][bold]' + ESC + '[2J')},closed,ai")
    (root / "events.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "def.yaml").write_text(DEFINITION, encoding="utf-8")
    assert run(root, "init", "ws")[0] == 0
    code, said = run(root, "ingest", "events.csv", "-w", "ws")
    assert code == 0, said
    return root


def assert_plain(said: str) -> None:
    assert "Traceback" not in said
    assert ESC not in said, "an escape character reached the terminal"


def test_count_prints_the_description_and_notes_as_text(folder: Path) -> None:
    code, said = run(folder, "count", "def.yaml", "-w", "ws")
    assert code == 0, said
    assert_plain(said)


def test_explain_prints_ids_and_descriptions_as_written(folder: Path) -> None:
    for entity in IDS:
        code, said = run(folder, "explain", "def.yaml", entity, "-w", "ws")
        assert code == 0, said
        assert_plain(said)
        assert clean(entity) in said.replace("\n", "")
    code, said = run(folder, "explain", "def.yaml", IDS[2], "-w", "ws")
    assert "events of T-[link=http://x]l" in said


def test_quarantine_prints_the_reason_as_text(folder: Path) -> None:
    code, said = run(folder, "quarantine", "-w", "ws")
    assert code == 0, said
    assert_plain(said)
    assert "\\x1b" in said


def test_check_prints_the_description_as_text(folder: Path) -> None:
    code, said = run(folder, "check", "def.yaml", "-w", "ws")
    assert code in (0, 1), said
    assert_plain(said)


def test_versions_print_the_description_as_text(folder: Path) -> None:
    code, said = run(folder, "versions", "add", "def.yaml", "--effective", "2026-01-01", "-w", "ws")
    assert code == 0, said
    assert_plain(said)
    code, said = run(folder, "versions", "-w", "ws")
    assert code == 0, said
    assert_plain(said)


def test_a_workspace_named_like_markup(folder: Path) -> None:
    code, said = run(folder, "init", "ws[/]")
    assert code == 0, said
    assert "ws[/]" in said


def test_the_consoles_show_control_characters() -> None:
    console = stdout_console()
    with console.capture() as captured:
        console.print(f"a{ESC}[31mb [bold]c[/] \x07 \x9b")
    text = captured.get()
    assert ESC not in text and "\x07" not in text and "\x9b" not in text
    assert "a\\x1b[31mb [bold]c[/]" in text


def test_styles_the_program_chooses_still_apply() -> None:
    console = guarded(Console(force_terminal=True, color_system="standard", markup=True))
    with console.capture() as captured:
        console.print("[bold]ok[/]")
    assert ESC in captured.get(), "the program's own colours are kept"


def test_clean_keeps_tabs_and_newlines() -> None:
    assert clean("a\tb\nc\x1bd\x00") == "a\tb\nc\\x1bd\\x00"
