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

from truecount.cli.app import OutputFormat, app, fail, stderr_console, stdout_console
from truecount.ingest import IngestReport, ProgressUpdate, ingest_files
from truecount.ingest.canonical import QUARANTINE_TABLE
from truecount.workspace import Workspace

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder (default: this folder or the nearest parent with truecount.yaml).",
    ),
]


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the workspace.")] = Path("."),
) -> None:
    """Create a workspace: a config file and an empty DuckDB store."""
    ws = Workspace.init(directory)
    stdout_console().print(f"workspace ready: {ws.root} (store {ws.store_path.name})")


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="CSV, JSON Lines or Parquet files.")],
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", "-m", help="Mapping YAML for a non-canonical export."),
    ] = None,
    workspace: WorkspaceOption = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table or json.")
    ] = OutputFormat.table,
) -> None:
    """Load event files into the workspace: loaded, duplicate and quarantined rows per file."""
    if output is OutputFormat.csv:
        fail("--format csv is not available for ingest; use table or json")
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

        report = ingest_files(ws, files, mapping=mapping, progress=show)
    if output is OutputFormat.json:
        stdout_console().print_json(json.dumps(report.to_dict()))
        return
    stdout_console().print(_report_table(report))
    if report.quarantined:
        err.print(
            f"{report.quarantined:,} row(s) quarantined; see 'truecount quarantine'",
            highlight=False,
        )


def _report_table(report: IngestReport) -> Table:
    table = Table(title="ingest", title_justify="left")
    table.add_column("file")
    for name in ("rows", "loaded", "duplicate", "quarantined", "events"):
        table.add_column(name, justify="right")
    for f in report.files:
        table.add_row(
            f.file,
            f"{f.rows_read:,}",
            f"{f.loaded:,}",
            f"{f.duplicate:,}",
            f"{f.quarantined:,}",
            f"{f.events_loaded:,}",
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
        )
    return table


@app.command()
def quarantine(
    workspace: WorkspaceOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="Rows to show.")] = 50,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table or json.")
    ] = OutputFormat.table,
) -> None:
    """List rows that could not be loaded, with the file, row, column and reason."""
    if output is OutputFormat.csv:
        fail("--format csv is not available for quarantine; use table or json")
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
        stdout_console().print_json(json.dumps({"total": total, "rows": entries}))
        return
    out = stdout_console()
    if not total:
        out.print("no quarantined rows")
        return
    table = Table(title=f"quarantine: {total:,} row(s)", title_justify="left")
    for name in ("file", "row", "column", "reason"):
        table.add_column(name, justify="right" if name == "row" else "left")
    for e in entries:
        table.add_row(str(e["file"]), str(e["row"]), str(e["column"]), str(e["reason"]))
    out.print(table)
    if total > len(entries):
        out.print(f"showing {len(entries):,} of {total:,}; use --limit to see more")
