"""The ``reconcile`` verb: the vendor's invoice against the buyer's count, under the terms.

Exit code 1 when any period differs by more than the tolerance, so a scheduled job can alert on
it; 2 on bad input (through the app's error boundary).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from truecount.cli.app import (
    EXIT_FINDING,
    EXIT_OK,
    OutputFormat,
    app,
    fail,
    stderr_console,
    stdout_console,
)
from truecount.cli.meter_cmds import AsOfOpt, DefArg, EventsOpt, WorkspaceOpt, events_input, working
from truecount.definition import load_definition
from truecount.engine.run import VERDICTS_TABLE, count
from truecount.ingest.canonical import EVENTS_TABLE
from truecount.invoice import load_invoice_into, load_invoice_mapping
from truecount.reconcile import Reconciliation, reconcile_in
from truecount.report.dispute import write_dispute_pack
from truecount.report.reconciliation import money_table, period_table, waterfall_table
from truecount.terms import load_terms

INVOICE_TABLE = "invoice"


#: The invoice options shared by every verb that reads an invoice (reconcile, drift, evidence).
InvoiceOpt = Annotated[
    list[Path],
    typer.Option(
        "--invoice",
        "-i",
        help="The vendor's invoice (CSV, JSON Lines, Parquet); repeat for several files.",
    ),
]
InvoiceMappingOpt = Annotated[
    Path | None,
    typer.Option(
        "--invoice-mapping",
        help="Invoice mapping (YAML): column names, id normalisation, timestamp format.",
    ),
]


@app.command("reconcile")
def reconcile_cmd(
    definition: DefArg,
    invoice: InvoiceOpt,
    terms: Annotated[
        Path | None, typer.Option("--terms", "-t", help="Contract terms (YAML).")
    ] = None,
    invoice_mapping: InvoiceMappingOpt = None,
    as_of: AsOfOpt = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table or json.")
    ] = OutputFormat.table,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the dispute pack (CSV, letter, JSON) here."),
    ] = None,
    events: EventsOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Reconcile an invoice with the buyer's count: cells per entity, waterfall, credit due."""
    if fmt == OutputFormat.csv:
        fail("reconcile prints table or json; use --out DIR for the per-entity CSV")
    d = load_definition(definition)
    t = load_terms(terms) if terms is not None else None
    mapping = load_invoice_mapping(invoice_mapping) if invoice_mapping is not None else None
    with working("counting…"):
        result = count(d, events_input(events, workspace), as_of=as_of)
    try:
        con = result.con
        with working("reconciling…"):
            load_invoice_into(con, invoice, mapping, table=INVOICE_TABLE)
            recon = reconcile_in(
                con,
                VERDICTS_TABLE,
                INVOICE_TABLE,
                known_table=EVENTS_TABLE,
                definition=d,
                terms=t,
                as_of=result.as_of,
                fetch_entities=False,
                cells=out is not None,
            )
            recon = replace(recon, choices=tuple(c.to_json() for c in result.source.choices))
        if out is not None:
            pack = write_dispute_pack(
                out,
                recon,
                con,
                definition_text=definition.read_text(encoding="utf-8"),
                invoice_files=[str(p) for p in invoice],
            )
            stderr_console().print(
                f"wrote the dispute pack to {pack.folder} ({pack.entities:,} entities)",
                markup=False,
            )
    finally:
        result.close()
    render(recon, fmt)
    raise typer.Exit(EXIT_FINDING if recon.beyond_tolerance else EXIT_OK)


def render(recon: Reconciliation, fmt: OutputFormat) -> None:
    """Print the reconciliation as tables or as the stable JSON."""
    if fmt == OutputFormat.json:
        sys.stdout.write(recon.to_json_text())
        return
    console = stdout_console()
    console.print(period_table(recon))
    money = money_table(recon)
    if money is not None:
        console.print(money)
    console.print(waterfall_table(recon))
    for c in recon.choices:
        console.print(
            f"events read with --source {c['source']}: "
            + ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(c["options"].items())),
            markup=False,
            style="dim",
        )
    if recon.beyond_tolerance:
        beyond = ", ".join(p.period for p in recon.periods if p.beyond_tolerance)
        console.print(f"beyond tolerance: {beyond}", markup=False, style="bold red")
