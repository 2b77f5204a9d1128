"""Workspace verbs: ``init``, ``ingest`` and ``quarantine``.

Each verb parses its arguments, makes one library call and renders the result; errors are
:class:`~truecount.errors.TruecountError` and become exit code 2 at the CLI boundary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from truecount import jsonout
from truecount.adapters import get_adapter, ingest_source, source_names
from truecount.cli.app import (
    PANEL_DATA,
    PANEL_START,
    OutputFormat,
    app,
    fail,
    stderr_console,
    stdout_console,
)
from truecount.cli.values import choose
from truecount.ingest import IngestReport, ProgressUpdate, ingest_files
from truecount.ingest.canonical import QUARANTINE_TABLE
from truecount.workspace import Workspace

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder (default: this folder or the nearest parent with truecount.yaml).",
        metavar="WORKSPACE",
    ),
]


@app.command(rich_help_panel=PANEL_START)
def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder for the workspace.", metavar="FOLDER")
    ] = Path("."),
) -> None:
    """Create a workspace: a config file and an empty DuckDB store.

    Example, in the folder that 'truecount demo' writes:
    truecount init my-workspace
    """
    if directory.exists() and not directory.is_dir():
        fail(
            f"{directory} is a file, not a folder: give a new or existing folder for the workspace"
        )
    try:
        ws = Workspace.init(directory)
    except OSError as exc:  # a parent that is a file, no permission, a full disk
        fail(f"cannot create the workspace in {directory}: {exc.strerror or exc}")
    stdout_console().print(f"workspace ready: {ws.root} (store {ws.store_path.name})")


@app.command(rich_help_panel=PANEL_DATA)
def ingest(
    files: Annotated[
        list[Path], typer.Argument(help="CSV, JSON Lines or Parquet files.", metavar="FILE…")
    ],
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping", "-m", help="Mapping YAML for a non-canonical export.", metavar="MAPPING"
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            "-s",
            help="Read a platform's own export: zendesk, intercom, salesforce, servicenow "
            "(see 'truecount sources').",
            metavar="SOURCE",
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            help="A choice for --source, e.g. --option good_rating=5; repeat for several "
            "(see 'truecount sources').",
            metavar="KEY=VALUE",
        ),
    ] = None,
    old_option: Annotated[
        list[str] | None,
        # -o is --out in every verb; it named adapter options here before 0.2, so it stays
        # recognised, hidden, to say what to write instead of a bare "no such option"
        typer.Option("-o", hidden=True),
    ] = None,
    partial: Annotated[
        bool,
        typer.Option(
            "--partial", help="With --source: load a file even when a companion file is missing."
        ),
    ] = False,
    again: Annotated[
        bool,
        typer.Option("--again", help="Load a file even when the same bytes were loaded before."),
    ] = False,
    workspace: WorkspaceOption = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
) -> None:
    """Load event files into the workspace: loaded, duplicate and quarantined rows per file."""
    if old_option:
        fail(
            f"adapter options are now --option KEY=VALUE (-o is --out in every verb): "
            f"write --option {old_option[0]}"
        )
    if source is not None:
        source = choose(source, source_names(), "--source")
    if source is not None and mapping is not None:
        fail("give --source or --mapping, not both: a source reads the platform's own shape")
    if source is None and (option or partial):
        fail("--option and --partial apply to --source")
    options = _parse_options(option or [])
    ws = Workspace.open(workspace)
    err = stderr_console()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def show(update: ProgressUpdate) -> None:
            rows = f" ({update.rows:,} rows)" if update.rows is not None else ""
            where = f"[{update.index}/{update.total}] {Path(update.file).name}"
            bar.update(task, description=f"{where}: {update.step}{rows}")

        if source is None:
            report = ingest_files(ws, files, mapping=mapping, progress=show, again=again)
        else:
            with ws.connect() as con:
                report = ingest_source(
                    con,
                    source,
                    files,
                    options=options,
                    partial=partial,
                    progress=show,
                    again=again,
                )
    if output is OutputFormat.json:
        stdout_console().print_json(jsonout.dumps(report.to_dict()))
        return
    stdout_console().print(_report_table(report))
    for f in report.files:
        if f.same_as is not None:
            err.print(
                f"{f.file}: skipped, the same bytes were loaded as {f.same_as}; "
                "give --again to load it anyway",
                highlight=False,
                markup=False,
            )
    if report.quarantined:
        err.print(
            f"{report.quarantined:,} row(s) quarantined; see 'truecount quarantine'",
            highlight=False,
        )
    for f in report.files:
        if f.overlap:
            err.print(
                f"{f.file}: {f.overlap:,} event(s) equal an event stored from another file in "
                "every field but the id, and were stored again: an export without event ids "
                "that overlaps an earlier one doubles its overlap. The workspace now holds "
                "both copies; give such exports an event_id column (or map one), or cut each "
                "export to the span not yet loaded, and ingest into a fresh workspace",
                highlight=False,
                markup=False,
            )
    if report.unknown_actor:
        err.print(
            f"{report.unknown_actor:,} event(s) stored with no actor (column 'no actor'): "
            "a filter on actor cannot decide them; 'truecount check' counts them per "
            "condition, and attrs.actor_unknown says why where the reader knows",
            highlight=False,
        )


def _parse_options(given: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--option takes KEY=VALUE, got {item!r}")
        options[key.strip()] = value.strip()
    return options


@app.command(rich_help_panel=PANEL_DATA)
def sources(
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
) -> None:
    """List the platforms 'ingest --source' reads: their files and the options with defaults.

    Example, in the folder that 'truecount demo' writes:
    truecount sources
    """
    listed: list[dict[str, Any]] = []
    for name in source_names():
        adapter = get_adapter(name)
        fields = adapter.options_model.model_fields
        defaults = adapter.options_model().described()
        listed.append(
            {
                "source": name,
                "title": adapter.title,
                "files": [
                    {"kind": k.name, "description": k.description, "needs": list(k.needs)}
                    for k in adapter.kinds.values()
                ],
                "options": [
                    {
                        "name": key,
                        "default": defaults.get(key),
                        "description": field.description or "",
                    }
                    for key, field in fields.items()
                ],
            }
        )
    if output is OutputFormat.json:
        stdout_console().print_json(jsonout.dumps({"sources": listed}))
        return
    out = stdout_console()
    for entry in listed:
        table = Table(title=f"--source {entry['source']}: {entry['title']}", title_justify="left")
        table.add_column("file kind")
        table.add_column("what it holds")
        table.add_column("needs")
        for f in entry["files"]:
            table.add_row(f["kind"], f["description"], ", ".join(f["needs"]))
        out.print(table)
        if entry["options"]:
            opts = Table(show_header=True, box=None, padding=(0, 2))
            opts.add_column("option")
            opts.add_column("default")
            opts.add_column("meaning")
            for o in entry["options"]:
                opts.add_row(o["name"], json.dumps(o["default"]), o["description"])
            out.print(opts)
        out.print()


def _report_table(report: IngestReport) -> Table:
    table = Table(title="ingest", title_justify="left")
    table.add_column("file")
    for name in ("rows", "loaded", "duplicate", "quarantined", "events", "no actor"):
        table.add_column(name, justify="right")
    for f in report.files:
        table.add_row(
            f.file,
            f"{f.rows_read:,}",
            f"{f.loaded:,}",
            f"{f.duplicate:,}",
            f"{f.quarantined:,}",
            f"{f.events_loaded:,}",
            f"{f.unknown_actor:,}",
        )
    if len(report.files) > 1:
        table.add_section()
        table.add_row(
            "total",
            f"{report.rows_read:,}",
            f"{report.loaded:,}",
            f"{report.duplicate:,}",
            f"{report.quarantined:,}",
            f"{report.events_loaded:,}",
            f"{report.unknown_actor:,}",
        )
    return table


@app.command(rich_help_panel=PANEL_DATA)
def quarantine(
    workspace: WorkspaceOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, help="Rows to show.", metavar="N")
    ] = 50,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.table,
) -> None:
    """List rows that could not be loaded, with the file, row, column and reason.

    Example, in the folder that 'truecount demo' writes:
    truecount quarantine -w workspace
    """
    ws = Workspace.open(workspace)
    with ws.connect(read_only=True) as con:
        total_row = con.execute(f"SELECT count(*) FROM {QUARANTINE_TABLE}").fetchone()  # noqa: S608
        rows = con.execute(
            f"SELECT ingest_id, file, row_number, column_name, reason, raw "  # noqa: S608
            f"FROM {QUARANTINE_TABLE} ORDER BY ingest_id, file, row_number LIMIT ?",
            [limit],
        ).fetchall()
    total = int(total_row[0]) if total_row else 0
    entries: list[dict[str, Any]] = [
        {
            "ingest_id": r[0],
            "file": r[1],
            "row": r[2],
            "column": r[3],
            "reason": r[4],
            "raw": json.loads(r[5]) if r[5] is not None else None,
        }
        for r in rows
    ]
    if output is OutputFormat.json:
        stdout_console().print_json(jsonout.dumps({"total": total, "rows": entries}))
        return
    out = stdout_console()
    if not total:
        out.print("no quarantined rows")
        return
    table = Table(title=f"quarantine: {total:,} row(s)", title_justify="left")
    for name in ("file", "row", "column", "reason"):
        table.add_column(name, justify="right" if name == "row" else "left")
    for e in entries:
        # data, never console markup: a reason quotes the file's own text
        cells = ("" if e[k] is None else str(e[k]) for k in ("file", "row", "column", "reason"))
        table.add_row(*(Text(c) for c in cells))
    out.print(table)
    if total > len(entries):
        out.print(f"showing {len(entries):,} of {total:,}; use --limit to see more")
