"""The ``export`` verb: a workspace's canonical events as Parquet, for Spark or a warehouse.

A job elsewhere (``count --engine spark``, a warehouse load) needs the events in a form that
keeps them exact: Parquet with naive UTC times and ``attrs`` as JSON text, one folder per
month (:mod:`truecount.engine.export`). The folder either is new or empty, or holds an earlier
export that ``--force`` replaces: two exports mixed in one folder would count events twice.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from truecount.cli.app import EXIT_OK, PANEL_DATA, app, fail, stderr_console, stdout_console
from truecount.cli.meter_cmds import WorkspaceOpt, working
from truecount.engine.export import clear_export, earlier_export, export_events, summarise
from truecount.workspace import Workspace


class ExportFormat(enum.StrEnum):
    """The formats ``--format`` takes: Parquet only (Spark's CSV reader mangles ``attrs``)."""

    parquet = "parquet"


@app.command("export", rich_help_panel=PANEL_DATA)
def export_cmd(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The folder to write (new or empty; see --force).",
            metavar="FOLDER",
            show_default=False,
        ),
    ],
    workspace: WorkspaceOpt = None,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="File format (Parquet only: CSV would mangle attrs on Spark).",
            case_sensitive=False,
        ),
    ] = ExportFormat.parquet,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an earlier export in FOLDER (only a folder laid out as an export).",
        ),
    ] = False,
) -> None:
    """Write the workspace's canonical events as Parquet, one folder per month.

    'count --events FOLDER' reads them back, on DuckDB or with --engine spark.

    Example, in the folder that 'truecount demo' writes:
    truecount export -w workspace --out events-parquet
    """
    ws = Workspace.open(workspace)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        old = earlier_export(out)  # an error unless the folder is laid out as an export
        if not force:
            fail(
                f"--out {out}: the folder holds an earlier export ({len(old):,} Parquet "
                "files); add --force to replace it, or choose a new folder"
            )
        removed = clear_export(out)
        stderr_console().print(f"replacing an earlier export: removed {removed:,} Parquet files")
    with ws.connect(read_only=True) as con, working("exporting…"):
        summary = summarise(con, export_events(con, out))
    if not summary.files:
        stderr_console().print(f"note: no events in workspace {ws.root}; no file written")
    else:
        months = summary.months
        span = months[0] if len(months) == 1 else f"{months[0]} to {months[-1]}"
        stdout_console().print(
            f"wrote {summary.rows:,} events in {len(summary.files):,} Parquet files "
            f"({len(months)} months, {span}) to {out}",
            soft_wrap=True,
        )
    raise typer.Exit(EXIT_OK)
