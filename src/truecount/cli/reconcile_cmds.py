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
from pydantic import ValidationError

from truecount.billing.dispute import write_dispute_pack
from truecount.billing.invoice import load_invoice_into, load_invoice_mapping
from truecount.billing.reconcile import Reconciliation, reconcile_in
from truecount.billing.repeats import repeated_lines, repeats_warnings
from truecount.billing.terms import LetterDetails, Terms, load_terms
from truecount.cli.app import (
    EXIT_FINDING,
    EXIT_OK,
    PANEL_BILL,
    OutputFormat,
    app,
    fail,
    stderr_console,
    stdout_console,
)
from truecount.cli.meter_cmds import (
    AsOfOpt,
    DefArg,
    EngineEventsOpt,
    EngineOpt,
    SparkMasterOpt,
    WorkspaceOpt,
    count_on,
    require_local_events,
    working,
)
from truecount.definition import load_definition
from truecount.engine.run import VERDICTS_TABLE
from truecount.ingest.canonical import EVENTS_TABLE
from truecount.report.reconciliation import money_table, period_table, waterfall_table

INVOICE_TABLE = "invoice"

#: The dispute letter's details; each overrides the terms' ``letter:`` section (docs/terms.md).
BuyerOpt = Annotated[
    str | None,
    typer.Option(
        "--buyer", help="Who sends the dispute letter (the buyer's name).", metavar="NAME"
    ),
]
VendorOpt = Annotated[
    str | None,
    typer.Option(
        "--vendor", help="Whom the dispute letter is to (the vendor's name).", metavar="NAME"
    ),
]
InvoiceNumberOpt = Annotated[
    str | None,
    typer.Option("--invoice-number", help="The disputed invoice's number.", metavar="NUMBER"),
]
InvoiceDateOpt = Annotated[
    str | None,
    typer.Option(
        "--invoice-date", help="The disputed invoice's date (YYYY-MM-DD).", metavar="DATE"
    ),
]
ContractOpt = Annotated[
    str | None,
    typer.Option("--contract", help="The contract the letter refers to.", metavar="REFERENCE"),
]


def letter_options(
    terms: Terms | None,
    buyer: str | None,
    vendor: str | None,
    invoice_number: str | None,
    invoice_date: str | None,
    contract: str | None,
) -> LetterDetails:
    """The terms' ``letter:`` section with every option given put in its place."""
    base = terms.letter if terms is not None else LetterDetails()
    try:
        return base.merged(
            buyer=buyer,
            vendor=vendor,
            invoice_number=invoice_number,
            invoice_date=invoice_date,
            contract=contract,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]).replace("_", "-") if err["loc"] else "letter"
        fail(f"--{key}: {str(err['msg']).removeprefix('Value error, ')}")


#: The invoice options shared by every verb that reads an invoice (reconcile, drift, evidence).
InvoiceOpt = Annotated[
    list[Path],
    typer.Option(
        "--invoice",
        "-i",
        help="The vendor's invoice (CSV, JSON Lines, Parquet); repeat for several files.",
        metavar="INVOICE",
    ),
]
InvoiceMappingOpt = Annotated[
    Path | None,
    typer.Option(
        "--invoice-mapping",
        help="Invoice mapping (YAML): column names, id normalisation, timestamp format.",
        metavar="MAPPING",
    ),
]


@app.command("reconcile", rich_help_panel=PANEL_BILL)
def reconcile_cmd(
    definition: DefArg,
    invoice: InvoiceOpt,
    terms: Annotated[
        Path | None, typer.Option("--terms", "-t", help="Contract terms (YAML).", metavar="TERMS")
    ] = None,
    invoice_mapping: InvoiceMappingOpt = None,
    as_of: AsOfOpt = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.table,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the dispute pack (CSV, letter, JSON) here.", metavar="FOLDER"
        ),
    ] = None,
    events: EngineEventsOpt = None,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    buyer: BuyerOpt = None,
    vendor: VendorOpt = None,
    invoice_number: InvoiceNumberOpt = None,
    invoice_date: InvoiceDateOpt = None,
    contract: ContractOpt = None,
) -> None:
    """Reconcile an invoice with the buyer's count: cells per entity, waterfall, credit due.

    Example, in the folder that 'truecount demo' writes:
    truecount reconcile resolved_ticket.yaml -i invoice.csv -t terms.yaml -w workspace
    """
    t = load_terms(terms) if terms is not None else None
    details = letter_options(t, buyer, vendor, invoice_number, invoice_date, contract)
    d = load_definition(definition)
    mapping = load_invoice_mapping(invoice_mapping) if invoice_mapping is not None else None
    require_local_events(events, "reconcile")
    result = count_on(d, events, workspace, as_of, engine=engine, spark_master=spark_master)
    try:
        con = result.con
        with working("reconciling…"):
            load_invoice_into(con, invoice, mapping, table=INVOICE_TABLE)
            repeats = repeats_warnings(*repeated_lines(con))
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
                verdict_periods=result.candidate_periods,
            )
            recon = replace(
                recon,
                choices=tuple(c.to_json() for c in result.source.choices),
                warnings=(*recon.warnings, *repeats),
            )
        if out is not None:
            pack = write_dispute_pack(
                out,
                recon,
                con,
                definition_text=definition.read_text(encoding="utf-8"),
                invoice_files=[str(p) for p in invoice],
                terms=t,
                details=details,
            )
            stderr_console().print(
                f"wrote the dispute pack to {pack.folder} ({pack.entities:,} "
                f"{'entity' if pack.entities == 1 else 'entities'})",
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
    for warning in recon.warnings:
        console.print(f"note: {warning}", markup=False, style="yellow")
    if recon.beyond_tolerance:
        beyond = ", ".join(p.period for p in recon.periods if p.beyond_tolerance)
        console.print(f"beyond tolerance: {beyond}", markup=False, style="bold red")
