"""The ``versions`` and ``replay`` verbs: definition versions in the workspace, and past periods
counted under any of them as known at any date (docs/replay.md).

Both verbs parse their arguments, make one library call and render the result; errors are
:class:`~truecount.errors.TruecountError` and become exit code 2 at the CLI boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from truecount import jsonout
from truecount.billing.terms import load_terms
from truecount.cli.app import (
    EXIT_OK,
    PANEL_AUDIT,
    OutputFormat,
    app,
    stderr_console,
    stdout_console,
)
from truecount.cli.meter_cmds import AsOfOpt, EventsOpt, WorkspaceOpt, events_input, working
from truecount.errors import WorkspaceError
from truecount.history.replay import NameReplay, Replay, replay, select_versions
from truecount.history.versions import StoredVersion, add_version, list_versions
from truecount.workspace import Workspace

FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]

versions_app = typer.Typer(
    help="Definition versions stored in the workspace, with the day each took effect.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(versions_app, name="versions", rich_help_panel=PANEL_AUDIT)


# ----------------------------------------------------------------------------- versions


@versions_app.callback()
def versions_default(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Only versions of this name.", metavar="NAME")
    ] = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """List the stored versions (the same as 'versions list')."""
    if ctx.invoked_subcommand is None:
        versions_list(workspace=workspace, name=name, fmt=fmt)


@versions_app.command("list")
def versions_list(
    workspace: WorkspaceOpt = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Only versions of this name.", metavar="NAME")
    ] = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """List stored versions by name and effective date, with when each stopped applying."""
    stored = list_versions(Workspace.open(workspace), name)
    if fmt == "json":
        print(jsonout.dumps({"versions": [v.to_json() for v in stored]}, indent=2))
        raise typer.Exit(EXIT_OK)
    if not stored:
        stderr_console().print(
            "no definition versions stored; add one with "
            "'truecount versions add DEF --effective DATE'",
            markup=False,
        )
        raise typer.Exit(EXIT_OK)
    stdout_console().print(_versions_table(stored))
    raise typer.Exit(EXIT_OK)


def _versions_table(stored: Sequence[StoredVersion], title: str = "definition versions") -> Table:
    table = Table(title=title)
    for col in ("name", "version", "effective", "until", "sha256", "recorded (UTC)", "file"):
        table.add_column(col, justify="right" if col == "version" else "left")
    for v in stored:
        table.add_row(
            Text(v.name),
            f"v{v.version}",
            v.effective.isoformat(),
            v.until.isoformat() if v.until is not None else "",
            v.sha256[:12] + "…",
            f"{v.recorded_at:%Y-%m-%d %H:%M:%S}",
            Text(v.file or ""),
        )
    return table


@versions_app.command("add")
def versions_add(
    definition: Annotated[
        Path, typer.Argument(help="The outcome definition (YAML) to store.", metavar="DEFINITION")
    ],
    effective: Annotated[
        str,
        typer.Option(
            "--effective", help="The day this version took effect (YYYY-MM-DD).", metavar="DATE"
        ),
    ],
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = OutputFormat.table,
) -> None:
    """Store a definition version with its hash and the day it took effect."""
    ws = Workspace.open(workspace)
    added, stored = add_version(ws, definition, effective)
    if fmt == "json":
        print(
            jsonout.dumps(
                {"stored": added.to_json(), "versions": [v.to_json() for v in stored]}, indent=2
            )
        )
        raise typer.Exit(EXIT_OK)
    out = stdout_console()
    out.print(
        Text(
            f"stored {added.name} v{added.version} (sha256 {added.sha256[:12]}…), "
            f"in effect from {added.effective}"
        )
    )
    out.print(_versions_table(stored, title=f"versions of {added.name}"))
    raise typer.Exit(EXIT_OK)


# ----------------------------------------------------------------------------- replay


@app.command("replay", rich_help_panel=PANEL_AUDIT)
def replay_cmd(
    definitions: Annotated[
        list[str] | None,
        typer.Option(
            "--definitions",
            "-d",
            help="A definition file, a stored name (all its versions) or NAME@VERSION; repeat "
            "for several. Default: every stored version.",
            metavar="DEFINITION",
        ),
    ] = None,
    as_of: AsOfOpt = None,
    terms: Annotated[
        Path | None,
        typer.Option(
            "--terms",
            "-t",
            help="Contract terms (YAML): adds the amount per period.",
            metavar="TERMS",
        ),
    ] = None,
    period: Annotated[
        str | None, typer.Option(help="Only this period, e.g. 2026-01.", metavar="PERIOD")
    ] = None,
    fmt: FormatOpt = OutputFormat.table,
    events: EventsOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Every period under every definition version, as known at --as-of: counts and amounts.

    With --as-of, only the events the buyer had by then count (recorded_at where the export
    has it, event time otherwise), and windows still open then are pending.

    Example, in the folder that 'truecount demo' writes:
    truecount replay -w workspace
    """
    t = load_terms(terms) if terms is not None else None
    stored: list[StoredVersion] = []
    try:
        stored = list_versions(Workspace.open(workspace))
    except WorkspaceError:
        if not events or workspace is not None:
            raise  # no workspace and no files: nothing to replay on
    chosen = select_versions(definitions or [], stored)
    with working("replaying…"):
        result = replay(
            chosen, events_input(events, workspace), as_of=as_of, terms=t, period=period
        )
    if fmt == "json":
        print(jsonout.dumps(result.to_json(), indent=2))
        raise typer.Exit(EXIT_OK)
    _render(result)
    raise typer.Exit(EXIT_OK)


def _render(result: Replay) -> None:
    out = stdout_console()
    for table in result.definitions:
        out.print(_replay_table(result, table))
    if result.clock is not None:
        out.print(Text(result.clock.note))
    else:
        out.print(
            Text(
                f"as of {result.as_of:%Y-%m-%d %H:%M:%S} UTC with everything the export holds; "
                "pass --as-of to replay as known at a date"
            )
        )


def _replay_table(result: Replay, table: NameReplay) -> Table:
    money = result.terms is not None
    currency = result.terms.currency if result.terms is not None else ""
    cells = [c for p in table.periods for c in p.cells if c is not None]
    shows_quantity = any(c.quantity != c.counted for c in cells)
    shows_pending = any(c.pending for c in cells)
    dated = any(v.effective is not None for v in table.versions)
    notes = []
    if dated:
        notes.append(
            "* the version in effect in that period; † another version took effect during it"
        )
    if money:
        notes.append(f"amounts in {currency}")
    grid = Table(
        title=Text(f"{table.name}: per period and version"),
        caption=Text("  ·  ".join(notes)) if notes else None,
    )
    grid.add_column("period")
    if dated:
        grid.add_column("in effect")
    for v in table.versions:
        label = v.label + (f" {v.definition.sha256[:6]}" if _ambiguous(table, v.label) else "")
        head = label + (f" from {v.effective}" if v.effective else "")
        grid.add_column(Text(f"{head}\ncounted"), justify="right")
        if shows_pending:
            grid.add_column(Text(f"{label}\npending"), justify="right")
        if shows_quantity:
            grid.add_column(Text(f"{label}\nquantity"), justify="right")
        if money:
            grid.add_column(Text(f"{label}\namount"), justify="right")
    for p in table.periods:
        mark = table.versions[p.in_effect].label if p.in_effect is not None else ""
        if p.changed_during:
            mark += "†"
        values: list[str | Text] = [Text(p.period), mark] if dated else [Text(p.period)]
        for i, c in enumerate(p.cells):
            star = "*" if i == p.in_effect else ""
            values.append(f"{c.counted:,}{star}" if c is not None else "")
            if shows_pending:
                values.append(f"{c.pending:,}" if c is not None else "")
            if shows_quantity:
                values.append(_number(c.quantity) if c is not None else "")
            if money:
                values.append(_money(c.amount) if c is not None else "")
        grid.add_row(*values)
    totals = table.totals()
    if len(table.periods) > 1:
        values = [Text("total"), ""] if dated else [Text("total")]
        for c in totals:
            values.append(f"{c.counted:,}")
            if shows_pending:
                values.append(f"{c.pending:,}")
            if shows_quantity:
                values.append(_number(c.quantity))
            if money:
                values.append(_money(c.amount))
        grid.add_row(*values, style="bold")
    return grid


def _ambiguous(table: NameReplay, label: str) -> bool:
    return sum(v.label == label for v in table.versions) > 1


def _number(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _money(amount: Decimal | None) -> str:
    return f"{amount:,}" if amount is not None else ""
