"""The ``report`` verb: one self-contained HTML file to forward (docs/report.md).

It takes the options of ``reconcile`` and ``drift`` with the same meaning (the same option
definitions), so the report's figures are the JSON's for the same command line. Exit code 1 when
a period is beyond tolerance or the drift alarm is raised, as those verbs do; 2 on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from truecount.cli.app import EXIT_FINDING, EXIT_OK, PANEL_BILL, app, stderr_console
from truecount.cli.meter_cmds import AsOfOpt, DefArg, EventsOpt, WorkspaceOpt, events_input, working
from truecount.cli.reconcile_cmds import InvoiceMappingOpt, InvoiceOpt
from truecount.cli.values import parse_rate
from truecount.drift.alarm import DEFAULT_ALARM
from truecount.report.html import DEFAULT_MAX_ROWS, ReportOptions, gather, render


@app.command("report", rich_help_panel=PANEL_BILL)
def report_cmd(
    definition: DefArg,
    invoice: InvoiceOpt,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The HTML file to write.", metavar="FILE")
    ] = Path("report.html"),
    terms: Annotated[
        Path | None, typer.Option("--terms", "-t", help="Contract terms (YAML).", metavar="TERMS")
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Drift baseline period or range, e.g. 2026-01..2026-03 "
            "(default: the first three periods).",
            metavar="PERIODS",
        ),
    ] = None,
    baseline_rate: Annotated[
        str | None,
        typer.Option(
            "--baseline-rate",
            help="Contractual vendor-only rate, e.g. 2% or 0.02, instead of a baseline.",
            metavar="RATE",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help=f"CUSUM decision interval (default {DEFAULT_ALARM.threshold:g}).",
            metavar="NUMBER",
        ),
    ] = None,
    shift: Annotated[
        float | None,
        typer.Option(
            "--shift",
            help="Smallest rise to catch, as a ratio of the baseline rate "
            f"(default {DEFAULT_ALARM.shift:g}).",
            metavar="RATIO",
        ),
    ] = None,
    pack: Annotated[
        Path | None,
        typer.Option(
            "--pack", help="Evidence pack folder whose digest the report shows.", metavar="PACK"
        ),
    ] = None,
    max_rows: Annotated[
        int,
        typer.Option(
            "--max-rows",
            min=0,
            help=f"Disputed entities listed inline (default {DEFAULT_MAX_ROWS:,}); "
            "the full list is the pack's entities.csv.",
            metavar="N",
        ),
    ] = DEFAULT_MAX_ROWS,
    invoice_mapping: InvoiceMappingOpt = None,
    as_of: AsOfOpt = None,
    events: EventsOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write the reconciliation, drift and evidence as one HTML file that opens offline.

    Example, in the folder that 'truecount demo' writes:
    truecount report resolved_ticket.yaml -i invoice.csv -t terms.yaml -w workspace
    """
    options = ReportOptions(
        baseline=baseline,
        baseline_rate=_rate(baseline_rate),
        threshold=threshold,
        shift=shift,
        as_of=as_of,
        invoice_mapping=invoice_mapping,
        pack=pack,
        max_rows=max_rows,
    )
    with working("reconciling and watching…"):
        data = gather(definition, events_input(events, workspace), invoice, terms, options)
        text = render(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    stderr_console().print(
        f"wrote the report to {out} ({len(text.encode()):,} bytes)", markup=False
    )
    finding = data.recon.beyond_tolerance or (data.drift is not None and data.drift.alarm)
    raise typer.Exit(EXIT_FINDING if finding else EXIT_OK)


def _rate(text: str | None) -> float | None:
    """--baseline-rate as a fraction: 2%, 2 % and 0.02 alike."""
    return None if text is None else float(parse_rate(text, "--baseline-rate"))
