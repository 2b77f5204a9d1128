"""The help a user reads: the version, verbs grouped by task, values named in words, and
``--format`` offering only what each verb prints.

The verbs are walked from the Click tree Typer builds, so a verb or option added later is held
to the same rules without editing this file.
"""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from truecount.cli.app import PANELS, _load_verbs, app

_load_verbs()
runner = CliRunner()
ROOT = typer.main.get_command(app)

#: The panel each verb belongs to: what a user does with it in a month's work.
EXPECTED_PANEL = {
    "demo": "Start",
    "init": "Start",
    "definitions": "Start",
    "new": "Start",
    "schema": "Start",
    "ingest": "Data",
    "sources": "Data",
    "quarantine": "Data",
    "check": "Data",
    "invoices": "Data",
    "count": "Count",
    "explain": "Count",
    "sql": "Count",
    "reconcile": "Bill",
    "report": "Bill",
    "serve": "Bill",
    "evidence": "Audit",
    "verify": "Audit",
    "prove": "Audit",
    "keygen": "Audit",
    "sample": "Audit",
    "drift": "Audit",
    "watch": "Audit",
    "replay": "Audit",
    "versions": "Audit",
    "clauses": "Contract",
    "price": "Contract",
}

#: What Typer and Click print when a value has no metavar: Python types, not words.
PYTHON_NAMES = re.compile(
    r"<(?:path|str|int|float|bool|file|list\[[^\]]*\]|int range|float range|datetime)>"
    r"|\b(?:PATH|TEXT|INTEGER|FLOAT|BOOLEAN)\b"
)


def _leaves(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every verb and sub-verb (Typer's own Click copy: its classes are duck-typed here)."""
    found: list[tuple[str, ...]] = []
    for name, cmd in group.commands.items():
        found.append((*prefix, name))
        if getattr(cmd, "commands", None):
            found.extend(_leaves(cmd, (*prefix, name)))
    return found


COMMANDS = _leaves(ROOT)


def _help(*words: str) -> str:
    result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_package_version(flag: str) -> None:
    result = runner.invoke(app, [flag])
    assert result.exit_code == 0
    assert result.output == f"truecount {importlib.metadata.version('truecount')}\n"


def test_every_verb_is_listed_once_under_its_panel() -> None:
    text = _help()
    panel = None
    seen: dict[str, str] = {}
    order: list[str] = []
    for line in text.splitlines():
        header = re.match(r"\s*╭─ (\w+) ─", line)
        if header:
            panel = header.group(1)
            order.append(panel)
            continue
        row = re.match(r"│ (\w[\w-]*)\s{2,}", line)
        if row and panel not in (None, "Options"):
            name = row.group(1)
            assert name not in seen, f"{name} listed twice ({seen[name]}, {panel})"
            assert panel is not None
            seen[name] = panel
    assert seen == EXPECTED_PANEL
    assert [p for p in order if p != "Options"] == list(PANELS)


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_help_names_values_in_words(words: tuple[str, ...]) -> None:
    text = _help(*words)
    found = sorted({m.group(0) for m in PYTHON_NAMES.finditer(text)})
    assert not found, f"truecount {' '.join(words)} --help shows {found}"


def _format_choices(words: tuple[str, ...]) -> list[str] | None:
    cmd: Any = ROOT
    for w in words:
        cmd = cmd.commands[w]
    for p in cmd.params:
        if "--format" in getattr(p, "opts", ()):
            text = _help(*words)
            shown = re.search(r"--format\s+(?:-f\s+)?<([\w|]+)>", text)
            assert shown, text
            return shown.group(1).split("|")
    return None


#: The formats each verb really prints; anything else must not be offered.
ACCEPTED = {
    ("count",): ["table", "json", "csv"],
    ("clauses",): ["md", "html", "json"],
    ("watch", "add"): ["text", "json"],
    ("watch", "diff"): ["text", "json"],
}


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_format_offers_only_what_the_verb_prints(words: tuple[str, ...]) -> None:
    choices = _format_choices(words)
    if choices is None:
        return  # this verb has no --format
    assert choices == ACCEPTED.get(words, ["table", "json"])


def test_format_csv_is_refused_by_click_where_not_printed() -> None:
    result = runner.invoke(app, ["quarantine", "--format", "csv"])
    assert result.exit_code == 2
    assert "'csv' is not one of" in result.output or "Invalid value" in result.output
