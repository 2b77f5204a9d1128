"""The ``watch`` verbs: keep the vendor's documentation of an outcome under watch.

``add`` stores a saved copy, ``diff`` shows what changed, ``status`` is the quarter-end check
(exit code 1 when any name has an unread change or is stale), ``ack`` marks a change as read,
``log`` and ``show`` look back. Every piece of page text is printed through rich ``Text``
objects or with markup off, so a page cannot style or rewrite the terminal.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from truecount import jsonout
from truecount.cli.app import (
    EXIT_FINDING,
    EXIT_OK,
    PANEL_AUDIT,
    app,
    fail,
    stderr_console,
    stdout_console,
)
from truecount.cli.values import output_file
from truecount.watch import (
    DEFAULT_STALE_DAYS,
    AddResult,
    Snapshot,
    StatusReport,
    TextDiff,
    acknowledge,
    add_file,
    checks,
    diff_texts,
    pair,
    select,
    snapshot_bytes,
    snapshots,
    status,
)
from truecount.watch.store import iso
from truecount.workspace import Workspace

watch_app = typer.Typer(
    name="watch",
    help="Keep the vendor's documentation of an outcome under watch: snapshots, diffs, acks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(watch_app, name="watch", rich_help_panel=PANEL_AUDIT)


class TextFormat(enum.StrEnum):
    text = "text"
    json = "json"


class TableFormat(enum.StrEnum):
    table = "table"
    json = "json"


NameArg = Annotated[
    str,
    typer.Argument(
        help="The watched name: a letter, then letters, digits, '_', '-' or '.'.",
        show_default=False,
        metavar="NAME",
    ),
]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", help="Workspace folder (default: here).", metavar="WORKSPACE"
    ),
]
NoteOpt = Annotated[
    str | None, typer.Option("--note", help="A note kept with the entry.", metavar="NOTE")
]
SNAPSHOT_HELP = "A snapshot number (-1 = latest) or a date or time (the latest snapshot by then)."


def _print_json(data: Any) -> None:
    sys.stdout.write(jsonout.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _short(sha: str) -> str:
    return sha[:12]


def _describe(s: Snapshot) -> str:
    source = f", {s.source_file}" if s.source_file else ""
    return f"snapshot {s.seq} ({s.taken_at:%Y-%m-%d}{source}, sha256 {_short(s.sha256)})"


@watch_app.command("add")
def add_cmd(
    name: NameArg,
    file: Annotated[
        Path,
        typer.Argument(
            help="The saved page: HTML or plain text.", show_default=False, metavar="FILE"
        ),
    ],
    note: NoteOpt = None,
    fmt: Annotated[TextFormat, typer.Option("--format", "-f", help="text or json.")] = (
        TextFormat.text
    ),
    workspace: WorkspaceOpt = None,
) -> None:
    """Store a saved copy of the vendor's documentation; say whether it changed.

    Prints new, changed, same_text (bytes differ, readable text identical) or unchanged (the
    same bytes as the latest snapshot: only the check is recorded). Exit code 0 whatever the
    outcome; 'watch status' is the check that fails.
    """
    with Workspace.open(workspace).connect() as con:
        result = add_file(con, name, file, note=note)
    if fmt is TextFormat.json:
        data = result.to_json()
        if result.outcome == "changed" and result.previous is not None:
            d = diff_texts(result.previous.text, result.snapshot.text)
            data["summary"] = _summary_json(d)
        _print_json(data)
        raise typer.Exit(EXIT_OK)
    stdout_console().print(_add_message(result), markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_OK)


def _add_message(r: AddResult) -> str:
    s, prev = r.snapshot, r.previous
    if r.outcome == "new":
        return f"new: {r.name} {_describe(s)}, {s.kind}, {s.size:,} bytes\nsha256 {s.sha256}"
    assert prev is not None
    if r.outcome == "unchanged":
        return (
            f"unchanged: {r.name} is byte for byte {_describe(s)}; check recorded\n"
            f"sha256 {s.sha256}"
        )
    if r.outcome == "same_text":
        return (
            f"same text: {r.name} differs in bytes from snapshot {prev.seq} but its readable "
            f"text is identical; stored as {_describe(s)}, nothing to read\nsha256 {s.sha256}"
        )
    d = diff_texts(prev.text, s.text)
    return (
        f"changed: {r.name} {_describe(s)} differs from snapshot {prev.seq}: "
        f"{d.lines_added} lines added, {d.lines_removed} removed, "
        f"{len(d.flagged)} changed sentences mention numbers or window words\n"
        f"sha256 {s.sha256}\n"
        f"read it: truecount watch diff {r.name}; then: truecount watch ack {r.name}"
    )


def _summary_json(d: TextDiff) -> dict[str, Any]:
    return {
        "lines_added": d.lines_added,
        "lines_removed": d.lines_removed,
        "lines_unchanged": d.lines_unchanged,
        "flagged": len(d.flagged),
    }


@watch_app.command("diff")
def diff_cmd(
    name: NameArg,
    from_: Annotated[
        str | None, typer.Option("--from", help=SNAPSHOT_HELP, metavar="SNAPSHOT")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help=SNAPSHOT_HELP, metavar="SNAPSHOT")] = None,
    context: Annotated[
        int,
        typer.Option(
            "--context", "-C", min=0, help="Unchanged lines around each change.", metavar="LINES"
        ),
    ] = 3,
    fmt: Annotated[TextFormat, typer.Option("--format", "-f", help="text or json.")] = (
        TextFormat.text
    ),
    workspace: WorkspaceOpt = None,
) -> None:
    """Show what changed in the readable text between two snapshots.

    Default: the latest snapshot against the latest earlier one whose text differs. Sentences
    that mention numbers or window words (hours, days, resolved, confirmed, assumed, ...) are
    flagged. Exit code 0.
    """
    with Workspace.open(workspace).connect(read_only=True) as con:
        old, new = pair(con, name, from_, to)
    d = diff_texts(old.text if old is not None else "", new.text, context=context)
    if fmt is TextFormat.json:
        _print_json(_diff_json(name, old, new, d, context))
        raise typer.Exit(EXIT_OK)
    _render_diff(stdout_console(), name, old, new, d)
    raise typer.Exit(EXIT_OK)


def _diff_json(
    name: str, old: Snapshot | None, new: Snapshot, d: TextDiff, context: int
) -> dict[str, Any]:
    if old is None:
        return {
            "name": name,
            "from": None,
            "to": new.to_json(),
            "identical": True,
            **_summary_json(diff_texts(new.text, new.text)),
            "sentences_removed": [],
            "sentences_added": [],
            "unified_diff": [],
        }
    return {
        "name": name,
        "from": old.to_json(),
        "to": new.to_json(),
        "identical": d.identical,
        **_summary_json(d),
        "sentences_removed": [s.to_json() for s in d.sentences_removed],
        "sentences_added": [s.to_json() for s in d.sentences_added],
        "unified_diff": d.unified(f"{name}@{old.seq}", f"{name}@{new.seq}", context),
    }


def _span(start: int, count: int) -> str:
    """Lines of one side of a hunk, as a reader says them."""
    if count == 0:
        return f"after line {start - 1}" if start > 1 else "at the start"
    return f"line {start}" if count == 1 else f"lines {start}-{start + count - 1}"


def _render_diff(
    console: Console, name: str, old: Snapshot | None, new: Snapshot, d: TextDiff
) -> None:
    if old is None:
        console.print(
            f"{name}: only one version of the text so far ({_describe(new)}); nothing to compare",
            markup=False,
            soft_wrap=True,
        )
        return
    console.print(
        f"{name}: {_describe(old)} → {_describe(new)}", markup=False, style="bold", soft_wrap=True
    )
    if d.identical:
        same = "the same bytes" if old.sha256 == new.sha256 else "different bytes"
        console.print(f"no change in the readable text ({same})", markup=False)
        return
    console.print(
        f"{d.lines_added} lines added, {d.lines_removed} removed, {d.lines_unchanged} unchanged; "
        f"{len(d.sentences_removed) + len(d.sentences_added)} changed sentences, "
        f"{len(d.flagged)} mention numbers or window words",
        markup=False,
        soft_wrap=True,
    )
    plain = console.color_system is None  # no colour: mark changed words as [-old-] {+new+}
    styles = {
        " ": ("dim", "dim"),
        "-": ("red", "bold red underline"),
        "+": ("green", "bold green underline"),
    }
    for hunk in d.hunks:
        console.print(
            f"@@ {_span(hunk.old_start, hunk.old_count)} → "
            f"{_span(hunk.new_start, hunk.new_count)} @@",
            markup=False,
            soft_wrap=True,
            style="cyan",
        )
        for line in hunk.lines:
            base, strong = styles[line.op]
            text = Text(f"{line.op} ", style=base)
            whole = all(seg.changed for seg in line.segments)
            for seg in line.segments:
                if seg.changed and not whole and plain and line.op != " ":
                    left, right = ("[-", "-]") if line.op == "-" else ("{+", "+}")
                    text.append(f"{left}{seg.text}{right}", style=strong)
                else:
                    text.append(seg.text, style=strong if seg.changed and not whole else base)
            console.print(text, soft_wrap=True)
    changed = [("-", s) for s in d.sentences_removed] + [("+", s) for s in d.sentences_added]
    flagged = [(op, s) for op, s in changed if s.flagged]
    others = [(op, s) for op, s in changed if not s.flagged]
    for title, group in (
        ("changed sentences that may change billing (numbers, window words):", flagged),
        ("other changed sentences:", others),
    ):
        if not group:
            continue
        console.print()
        console.print(title, markup=False, style="bold")
        for op, s in group:
            row = Text(f"{op} ", style="red" if op == "-" else "green")
            row.append(s.text, style="yellow" if s.flagged else "")
            if s.flags:
                row.append(f"   [{', '.join(s.flags)}]", style="dim")
            console.print(row, soft_wrap=True)


@watch_app.command("status")
def status_cmd(
    stale_days: Annotated[
        int,
        typer.Option(
            "--stale-days",
            min=0,
            help="A name not checked for more than this many days is STALE (default: a quarter).",
            metavar="DAYS",
        ),
    ] = DEFAULT_STALE_DAYS,
    fmt: Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")] = (
        TableFormat.table
    ),
    workspace: WorkspaceOpt = None,
) -> None:
    """Every watched name: snapshots, last change, last check, days since.

    Exit code 1 when any name is CHANGED (its text changed and the change is not yet marked
    read with 'watch ack') or STALE (not checked for more than --stale-days days); 0 otherwise.
    """
    with Workspace.open(workspace).connect(read_only=True) as con:
        report = status(con, stale_days=stale_days)
    if fmt is TableFormat.json:
        _print_json(report.to_json())
    else:
        _render_status(report)
    raise typer.Exit(EXIT_FINDING if report.attention else EXIT_OK)


def _render_status(report: StatusReport) -> None:
    console = stdout_console()
    if not report.entries:
        console.print(
            "nothing is watched yet: save the vendor's page, then 'truecount watch add NAME FILE'",
            markup=False,
        )
        return
    table = Table(
        title=f"definition watch · as of {report.as_of:%Y-%m-%d %H:%M} UTC",
        caption=f"STALE: no check for over {report.stale_days} days · "
        "CHANGED: run 'watch diff NAME', then 'watch ack NAME'",
    )
    for col, justify in (
        ("name", "left"), ("snapshots", "right"), ("versions", "right"), ("kind", "left"),
        ("last changed", "left"), ("last checked", "left"), ("days since", "right"),
        ("state", "left"), ("sha256", "left"),
    ):  # fmt: skip
        table.add_column(col, justify=justify, no_wrap=col in {"name", "sha256"})  # type: ignore[arg-type]
    for e in report.entries:
        state = Text(e.state, style="bold red" if e.state != "ok" else "green")
        table.add_row(
            Text(e.name),
            str(e.snapshots),
            str(e.versions),
            e.latest.kind,
            f"{e.last_changed:%Y-%m-%d}",
            f"{e.last_checked:%Y-%m-%d}",
            str(e.days_since_checked),
            state,
            _short(e.latest.sha256),
        )
    console.print(table)


@watch_app.command("ack")
def ack_cmd(name: NameArg, note: NoteOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Mark the latest change of NAME as read, so 'watch status' stops reporting it."""
    with Workspace.open(workspace).connect() as con:
        done = acknowledge(con, name, note=note)
    message = f"{name}: change marked as read" if done else f"{name}: no unread change"
    stdout_console().print(message, markup=False)
    raise typer.Exit(EXIT_OK)


@watch_app.command("log")
def log_cmd(
    name: NameArg,
    fmt: Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")] = (
        TableFormat.table
    ),
    workspace: WorkspaceOpt = None,
) -> None:
    """Every check of NAME: when, what it found, which snapshot (the numbers 'diff' takes)."""
    with Workspace.open(workspace).connect(read_only=True) as con:
        entries = checks(con, name)
    if fmt is TableFormat.json:
        _print_json({"name": name, "checks": [c.to_json() for c in entries]})
        raise typer.Exit(EXIT_OK)
    table = Table(title=f"watch log: {name}")
    for col in ("checked at (UTC)", "outcome", "snapshot", "sha256", "file", "note"):
        table.add_column(col, justify="right" if col == "snapshot" else "left")
    for c in entries:
        table.add_row(
            iso(c.checked_at),
            c.outcome,
            str(c.seq) if c.seq is not None else "",
            _short(c.sha256) if c.sha256 else "",
            Text(c.source_file or ""),
            Text(c.note or ""),
        )
    stdout_console().print(table)
    raise typer.Exit(EXIT_OK)


@watch_app.command("show")
def show_cmd(
    name: NameArg,
    snapshot: Annotated[
        str, typer.Option("--snapshot", "-s", help=SNAPSHOT_HELP, metavar="SNAPSHOT")
    ] = "-1",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the snapshot's exact saved bytes to this file.",
            metavar="FILE",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the --out file if it already exists.")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Print a snapshot's readable text (the latest by default), or save its bytes with --out."""
    if out is not None and out.exists() and not out.is_dir() and not force:
        fail(f"{out} already exists; choose another --out or pass --force to overwrite it")
    if out is not None:
        output_file(out)
    with Workspace.open(workspace).connect(read_only=True) as con:
        snap = select(snapshots(con, name), snapshot, "--snapshot")
        data = snapshot_bytes(con, name, snap.seq) if out is not None else b""
    if out is not None:
        out.write_bytes(data)
        stderr_console().print(
            f"wrote {_describe(snap)} to {out} ({len(data):,} bytes)", markup=False
        )
        raise typer.Exit(EXIT_OK)
    sys.stdout.write(snap.text + "\n")
    raise typer.Exit(EXIT_OK)
