"""The ``drift`` verb: the vendor's classification against the buyer's, watched over periods.

Exit code 1 when the alarm is raised, so a scheduled job can page someone; 0 when quiet; 2 on
bad input (through the app's error boundary).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from truecount.billing.invoice import load_invoice_into, load_invoice_mapping
from truecount.cli.app import (
    EXIT_FINDING,
    EXIT_OK,
    PANEL_AUDIT,
    OutputFormat,
    app,
    fail,
    stdout_console,
)
from truecount.cli.meter_cmds import (
    AsOfOpt,
    DefArg,
    EventsOpt,
    WorkspaceOpt,
    events_input,
    show_choices,
    working,
)
from truecount.cli.reconcile_cmds import InvoiceMappingOpt, InvoiceOpt
from truecount.cli.values import parse_rate
from truecount.definition import load_definition
from truecount.drift.alarm import DEFAULT_ALARM
from truecount.drift.report import DriftReport, DriftTable, drift_in, parse_baseline
from truecount.engine.run import VERDICTS_TABLE, count
from truecount.ingest.canonical import EVENTS_TABLE

INVOICE_TABLE = "invoice"


class By(enum.StrEnum):
    period = "period"
    day = "day"


@app.command("drift", rich_help_panel=PANEL_AUDIT)
def drift_cmd(
    definition: DefArg,
    invoice: InvoiceOpt,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Baseline period or range, e.g. 2026-01..2026-03 "
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
    by: Annotated[
        By, typer.Option("--by", help="Tables per period, or per day as well.")
    ] = By.period,
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
    invoice_mapping: InvoiceMappingOpt = None,
    as_of: AsOfOpt = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.table,
    events: EventsOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Watch the vendor's billing against the buyer's count: paired tables and an alarm.

    Example, in the folder that 'truecount demo' writes:
    truecount drift resolved_ticket.yaml -i invoice.csv -w workspace --baseline-rate 2%
    """
    if baseline is not None and baseline_rate is not None:
        fail("give --baseline or --baseline-rate, not both")
    if baseline is not None:
        parse_baseline(baseline)  # a malformed range fails here, before counting
    settings = DEFAULT_ALARM
    if threshold is not None:
        settings = dataclasses.replace(settings, threshold=threshold)
    if shift is not None:
        settings = dataclasses.replace(settings, shift=shift)
    d = load_definition(definition)
    mapping = load_invoice_mapping(invoice_mapping) if invoice_mapping is not None else None
    with working("counting…"):
        result = count(d, events_input(events, workspace), as_of=as_of)
    try:
        with working("watching…"):
            load_invoice_into(result.con, invoice, mapping, table=INVOICE_TABLE)
            report = drift_in(
                result.con,
                d,
                VERDICTS_TABLE,
                INVOICE_TABLE,
                events_table=EVENTS_TABLE,
                baseline=baseline,
                contract_rate=_rate(baseline_rate),
                settings=settings,
                by_day=by == By.day,
                as_of=result.as_of,
                # an explicit --threshold is used as given; the default follows the volume
                scale_to_volume=threshold is None,
            )
        choices = result.source.choices
    finally:
        result.close()
    if fmt == OutputFormat.json:
        sys.stdout.write(report.to_json_text())
    else:
        render(report)
        show_choices(choices)
    raise typer.Exit(EXIT_FINDING if report.alarm else EXIT_OK)


# ------------------------------------------------------------------------------------ render
def _pct(x: float, places: int = 2) -> str:
    return "\u2013" if math.isnan(x) else f"{100 * x:.{places}f}"


def _ci(low: float, high: float, places: int = 2, scale: float = 100.0) -> str:
    if math.isnan(low) or math.isnan(high):
        return "\u2013"
    return f"[{scale * low:.{places}f}, {scale * high:.{places}f}]"


def _p(x: float) -> str:
    if math.isnan(x):
        return "\u2013"
    return "<0.0001" if x < 0.0001 else f"{x:.4f}"


def _key(table: DriftTable, i: int) -> Text:
    marked = bool(table.baseline) and table.baseline[i]
    return Text(table.keys[i] + (" *" if marked else ""), style="dim" if marked else "")


def _rows(table: DriftTable, totals: DriftTable | None) -> list[tuple[DriftTable, int, bool]]:
    rows = [(table, i, False) for i in range(len(table.keys))]
    if totals is not None:
        rows.append((totals, 0, True))
    return rows


def counts_table(
    table: DriftTable, title: Text | str, key_name: str, totals: DriftTable | None = None
) -> Table:
    """The paired table per period: vendor yes/no x buyer yes/no, agreement and the ratio."""
    t = Table(
        title=title,
        caption="billed = agreed + vendor-only, counted = agreed + buyer-only; pending and "
        "unknown entities are left out of every rate",
    )
    headers = (
        *(key_name, "entities", "billed", "counted", "agreed", "vendor\nonly", "buyer\nonly"),
        *("neither", "agree-\nment %", "ratio", "pending", "unknown"),
    )
    for i, name in enumerate(headers):
        t.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for tab, i, total in _rows(table, totals):
        s = tab.stats
        t.add_row(
            Text("total") if total else _key(tab, i),
            f"{int(s.n[i]):,}",
            f"{int(s.a[i] + s.b[i]):,}",
            f"{int(s.a[i] + s.c[i]):,}",
            f"{int(s.a[i]):,}",
            f"{int(s.b[i]):,}",
            f"{int(s.c[i]):,}",
            f"{int(s.d[i]):,}",
            _pct(float(s.agreement[i]), 1),
            "\u2013" if math.isnan(float(s.ratio[i])) else f"{float(s.ratio[i]):.3f}",
            f"{int(tab.pending[i]):,}",
            f"{int(tab.unknown[i]):,}",
            style="bold" if total else None,
        )
    return t


def stats_table(
    table: DriftTable,
    title: Text | str,
    key_name: str,
    confidence: float,
    totals: DriftTable | None = None,
    places: int = 2,
) -> Table:
    """Rates with intervals, McNemar's p and kappa, one row per period (or day).

    ``places``: decimals of the rates in percent (days have wide intervals; one decimal keeps
    the table within 120 columns).
    """
    level = f"{100 * confidence:g}%"
    t = Table(
        title=title,
        caption=f"rates in %, differences in percentage points; {level} intervals: exact "
        "(Clopper-Pearson) for the rates, Newcombe's paired interval for the difference "
        "(b - c)/n, asymptotic for kappa; McNemar's exact test",
    )
    ci = f"{level} CI"
    headers = (key_name, "vendor\nonly %", ci, "buyer\nonly %", ci, "differ-\nence pp", ci)
    for i, name in enumerate((*headers, "McNemar\np", "kappa", ci)):
        # an interval may wrap onto two lines in a narrow terminal; a number never does
        t.add_column(name, justify="left" if i == 0 else "right", no_wrap=name != ci)
    for tab, i, total in _rows(table, totals):
        s = tab.stats
        t.add_row(
            Text("total") if total else _key(tab, i),
            _pct(float(s.vendor_only_rate[i]), places),
            _ci(float(s.vendor_only_low[i]), float(s.vendor_only_high[i]), places),
            _pct(float(s.buyer_only_rate[i]), places),
            _ci(float(s.buyer_only_low[i]), float(s.buyer_only_high[i]), places),
            _pct(float(s.difference[i]), places),
            _ci(float(s.difference_low[i]), float(s.difference_high[i]), places),
            _p(float(s.mcnemar_p[i])),
            "\u2013" if math.isnan(float(s.kappa[i])) else f"{float(s.kappa[i]):.3f}",
            _ci(float(s.kappa_low[i]), float(s.kappa_high[i]), scale=1.0),
            style="bold" if total else None,
        )
    return t


def alarm_line(report: DriftReport) -> Text:
    """The one line a reader looks for: alarm or not, against what, where it crossed."""
    base = report.baseline
    h = report.settings.threshold
    rate = f"{100 * base.rate:.2f}%"
    if base.source != "contract" and base.observed_rate is not None:
        against = f"{100 * base.observed_rate:.2f}% ({base.label}; reference {rate})"
    else:
        against = f"{rate} ({base.label})"
    first = report.first_alarm
    if first is not None:
        return Text(
            f"alarm: vendor-only rate up from {against} — first crossed on {first.date}, "
            f"period {first.period}, CUSUM {first.statistic:.1f} ≥ {h:.3g}",
            style="bold red",
        )
    if report.watched == 0:
        return Text(
            f"no alarm: nothing to watch after the {base.label} (every period is in it)",
            style="yellow",
        )
    return Text(
        f"no alarm: vendor-only rate watched against {against}; CUSUM peak "
        f"{report.result.peak:.1f} < {h:.3g} over {report.watched:,} entities from "
        f"{report.watch_from}",
        style="green",
    )


def render(report: DriftReport) -> None:
    """Print the per-period (and per-day) tables, the notes and the alarm line."""
    console = stdout_console()
    d = report.definition
    title = Text(f"drift of {d.get('name')} v{d.get('version')}")
    if report.as_of is not None:
        title.append(f"  ·  as of {report.as_of:%Y-%m-%d %H:%M:%S} UTC")
    console.print(counts_table(report.periods, title, "period", report.totals))
    console.print(
        stats_table(report.periods, "per period", "period", report.confidence, report.totals)
    )
    if report.days is not None:
        console.print(counts_table(report.days, "per day", "date"))
        console.print(stats_table(report.days, "per day", "date", report.confidence, places=1))
    if report.periods.baseline and any(report.periods.baseline):
        console.print(Text("* baseline period", style="dim"))
    t = report.totals
    left_out = []
    if int(t.unknown[0]):
        left_out.append(f"{int(t.unknown[0]):,} billed entities not in the export (unknown)")
    if int(t.pending[0]):
        n = int(t.pending[0])
        left_out.append(f"{n:,} {'entity' if n == 1 else 'entities'} still pending")
    if left_out:
        console.print(Text("left out of the rates: " + "; ".join(left_out), style="dim"))
    s = report.settings
    if report.baseline.source == "contract":
        source = "the contractual rate"
    elif s.baseline_bound == "upper":
        source = f"the one-sided {100 * s.confidence:g}% upper limit of the baseline's rate"
    else:
        source = "the baseline's rate"
    console.print(
        Text(
            f"CUSUM on the vendor-only rate: reference p0 = {100 * report.baseline.rate:.2f}% "
            f"({source}), watching for p1 = {s.shift:g} x p0, threshold {s.threshold:.3g}"
            + (
                f" (raised x{report.baseline.dispersion:.2f}: the baseline's days vary more "
                "than independent entities would)"
                if report.baseline.dispersion > 1
                else ""
            ),
            style="dim",
        )
    )
    console.print(alarm_line(report), soft_wrap=True)  # one line, for grep and for logs


def _rate(text: str | None) -> float | None:
    """--baseline-rate as a fraction: 2%, 2 % and 0.02 alike."""
    return None if text is None else float(parse_rate(text, "--baseline-rate"))
