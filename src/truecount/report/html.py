"""``truecount report``: one self-contained HTML file for finance, procurement and the vendor.

The report is a face, not a calculator: :func:`gather` makes the same library calls as
``reconcile``, ``drift`` and ``check`` (on one count, one connection) and keeps their results in
one typed :class:`ReportData`; :func:`render` turns that into HTML through a Jinja2 template with
autoescape on, so every string from a file — a description, an entity id, a file name — is data.
The two things the report derives itself are placed in one spot each and tested against an
independent computation: the money of a waterfall step (:func:`step_amount`) and the daily high of
the CUSUM statistic (:func:`cusum_by_day`, from :func:`truecount.drift.alarm.cusum_path`).

Nothing in the file is fetched at view time: styles, the small sort-and-filter script and the
charts (static SVG, :mod:`truecount.report.charts`) are inline, so it opens offline from an
e-mail attachment and prints to A4 or Letter. Figures carry ``data-figure`` and ``data-value``
attributes (the JSON value, exactly as ``reconcile --format json`` / ``drift --format json``
write it), so a test — or an auditor — can compare the page with the JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import duckdb
import jinja2
import numpy as np
import numpy.typing as npt
from markupsafe import Markup
from sqlglot import exp

from truecount.billing.dispute import DISPUTED
from truecount.billing.invoice import load_invoice_into, load_invoice_mapping
from truecount.billing.reconcile import (
    CELLS,
    ENTITIES_TABLE,
    NO_ANCHOR,
    Reconciliation,
    reconcile_in,
)
from truecount.billing.terms import Terms, load_terms
from truecount.definition import load_definition
from truecount.definition.model import Definition
from truecount.drift.alarm import DEFAULT_ALARM, cusum_path
from truecount.drift.report import DriftReport, drift_in, parse_baseline
from truecount.engine.check import CheckResult, check_source
from truecount.engine.coverage import COVERAGE_PREFIX, coverage_counts
from truecount.engine.run import VERDICTS_TABLE, count
from truecount.engine.source import EventsInput
from truecount.errors import InputError, Location, Problem
from truecount.evidence.pack import pack_digest, read_statement
from truecount.ingest.canonical import EVENTS_TABLE
from truecount.report import charts, words
from truecount.yamlsource import read_text

#: Disputed entities shown inline; the rest are in the pack's entities.csv.
DEFAULT_MAX_ROWS: Final[int] = 2_000
INVOICE_TABLE: Final[str] = "invoice"


@dataclass(frozen=True)
class ReportOptions:
    """Every option of ``reconcile`` and ``drift``, with the same meaning, plus the report's."""

    baseline: str | None = None
    baseline_rate: float | None = None
    threshold: float | None = None
    shift: float | None = None
    as_of: dt.datetime | str | None = None
    invoice_mapping: Path | None = None
    pack: Path | None = None
    max_rows: int = DEFAULT_MAX_ROWS


@dataclass(frozen=True)
class DisputedRow:
    """One billed entity the buyer disputes, as the cell table has it."""

    entity_id: str
    cell: str
    reason: str | None
    lines: int
    billed_period: str | None
    billed_amount: Decimal | None
    buyer_period: str | None
    anchor_ts: dt.datetime | None
    #: Whether our definition counts the entity (a disputed entity billed twice or in another
    #: period can be an outcome); only then is ``buyer_period`` the period it is counted in.
    counted: bool = False


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, from library calls only."""

    definition: Definition
    definition_text: str
    definition_file: str
    invoice_files: tuple[str, ...]
    terms: Terms | None
    terms_text: str | None
    terms_file: str | None
    recon: Reconciliation
    sql: str
    check: CheckResult
    disputed: tuple[DisputedRow, ...]
    disputed_total: int
    drift: DriftReport | None = None
    #: Why there is no drift section (drift refused these inputs), in the library's words
    #: without an option's key (:attr:`~truecount.errors.TruecountError.reader_line`).
    drift_error: str | None = None
    #: The CUSUM statistic's highest value on each day watched, in day order.
    cusum_days: tuple[tuple[str, float], ...] = ()
    pack_digest: str | None = None
    pack_folder: str | None = None
    max_rows: int = DEFAULT_MAX_ROWS


# ------------------------------------------------------------------------------- figures
def step_amount(terms: Terms | None, entities: int) -> Decimal | None:
    """The money a waterfall step stands for: its entities at the contract's unit price, after
    the discount, rounded to the currency (before the platform fee and any annual cap, which
    apply to a period's total, not to a step)."""
    if terms is None:
        return None
    keep = Decimal(1) - terms.discount_pct / 100
    return terms.round(Decimal(entities) * terms.unit_price * keep)


@dataclass(frozen=True)
class BridgeRow:
    """One row from the invoice's amount (the headline's "Billed") to the money of the
    waterfall's first step (the billed entities at the contract's price)."""

    #: ``invoice`` (the amount billed), ``platform_fee``, ``extra_lines`` or ``price``
    key: str
    #: "" for the invoice's amount, "\u2212" for a row taken off it, "+" for a row added
    sign: str
    words: str
    #: The amount a reader sees (never negative)
    amount: Decimal
    #: The invoice's amount for ``invoice``; for the other rows what they take off it
    #: (negative when the row adds)
    value: Decimal


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _price_text(value: Decimal, terms: Terms) -> str:
    """A unit value as the contract gives it: at least the currency's minor units, and every
    further digit it has (0.8955 stays 0.8955)."""
    exponent = value.normalize().as_tuple().exponent
    places = max(terms.digits, -exponent) if isinstance(exponent, int) else terms.digits
    return f"{value.quantize(Decimal(1).scaleb(-places)):,}"


def billed_bridge(terms: Terms | None, recon: Reconciliation, unit: str) -> list[BridgeRow]:
    """From the amount billed to the waterfall's first row, when the two differ.

    The headline's "Billed" is the invoice's own amounts plus the platform fee of each period;
    the first waterfall step is the billed entities at the unit price less the discount
    (:func:`step_amount`). Between them: the platform fee, the further lines of entities billed
    more than once (at the same unit value) and what the invoice's amounts differ from its lines
    at the unit value (its own prices, and rounding). The rows add up exactly: the invoice's
    amount less every other row's ``value`` is the first step's money. Empty without terms or
    amounts, or when the two are the same figure.
    """
    t = recon.totals
    if terms is None or t.amount_billed is None:
        return []
    first = step_amount(terms, t.vendor_billed)
    assert first is not None
    if t.amount_billed == first:
        return []
    cur = terms.currency
    price = _price_text(terms.unit_value, terms)
    rows = [
        BridgeRow(
            "invoice",
            "",
            f"Billed on the invoice ({_plural(t.vendor_lines, 'line')})",
            t.amount_billed,
            t.amount_billed,
        )
    ]
    periods = len(recon.periods)
    fee = terms.round(terms.platform_fee * periods)
    if fee:
        rows.append(
            BridgeRow(
                "platform_fee",
                "\u2212",
                f"Platform fee ({_price_text(terms.platform_fee, terms)} {cur} a period, "
                f"{_plural(periods, 'period')})",
                fee,
                fee,
            )
        )
    lines_value = step_amount(terms, t.vendor_lines)
    assert lines_value is not None
    extra = lines_value - first
    if extra:
        n = t.vendor_lines - t.vendor_billed
        rows.append(
            BridgeRow(
                "extra_lines",
                "\u2212",
                f"Further lines for entities billed more than once ({_plural(n, 'line')} "
                f"at {price} {cur})",
                abs(extra),
                extra,
            )
        )
    rest = t.amount_billed - fee - lines_value
    if rest:
        side = "above" if rest > 0 else "below"
        rows.append(
            BridgeRow(
                "price",
                "\u2212" if rest > 0 else "+",
                f"Invoice amounts {side} the contract's {price} {cur} per {unit}",
                abs(rest),
                rest,
            )
        )
    return rows


def cusum_by_day(days: npt.ArrayLike, path: npt.ArrayLike) -> list[tuple[str, float]]:
    """The highest CUSUM value per day of a stream in time order (days are non-decreasing).

    Entities with no time at all (NaT: no anchor, no billed_at, no event) come last in the
    stream; they move the statistic but belong to no day, so no point is drawn for them."""
    values = np.asarray(path, dtype=np.float64)
    if values.size == 0:
        return []
    day = np.asarray(days).astype("datetime64[D]")
    dated = ~np.isnat(day)
    values, day = values[dated], day[dated]
    if values.size == 0:
        return []
    starts = np.concatenate(([0], np.flatnonzero(day[1:] != day[:-1]) + 1))
    highs = np.maximum.reduceat(values, starts)
    return [(str(day[i]), float(h)) for i, h in zip(starts, highs, strict=True)]


def _cusum_days(report: DriftReport) -> list[tuple[str, float]]:
    """The CUSUM path of the stream drift_in watched (kept on the report), per day."""
    if report.stream is None:
        return []
    path = cusum_path(report.stream.x, report.baseline.rate, report.settings)
    return cusum_by_day(report.stream.day, path)


def _disputed(
    con: duckdb.DuckDBPyConnection, recon: Reconciliation, cap: int
) -> tuple[list[DisputedRow], int]:
    """Up to ``cap`` disputed entities, shared fairly among the cells (the first ids of each,
    taken in turn), so a cap never hides a small cell behind a large one; and their total.

    The cells' sizes are the reconciliation's totals. Every disputed cell bills its entities,
    so its rows are read from the reconciliation's entity table by their cell alone, without
    the span test that picks the counted entities the vendor did not bill."""
    by_cell: dict[str, list[DisputedRow]] = {c: [] for c in DISPUTED}
    total = sum(int(getattr(recon.totals, c)) for c in DISPUTED)
    marks = ", ".join("?" for _ in DISPUTED)
    firsts: list[tuple[Any, ...]] = []
    if cap > 0:
        # Each cell's ``cap`` smallest ids in one grouping of the ids alone; the rows are then
        # those of the cell up to its last such id, read in one filtered scan.
        last_ids = con.execute(
            f"SELECT cell, max(i) FROM (SELECT cell, unnest(min_by(entity_id, entity_id, ?)) "  # noqa: S608
            f"AS i FROM {ENTITIES_TABLE} WHERE cell IN ({marks}) GROUP BY cell) GROUP BY cell",
            [int(cap), *DISPUTED],
        ).fetchall()
        if last_ids:
            upto = " OR ".join("(cell = ? AND entity_id <= ?)" for _ in last_ids)
            firsts = con.execute(
                "SELECT entity_id, cell, reason, coalesce(lines, 0), billed_period, "  # noqa: S608
                f"billed_amount, buyer_period, anchor_ts, buyer_status = 'counted' "
                f"FROM {ENTITIES_TABLE} "
                f"WHERE {upto} ORDER BY cell, entity_id",
                [v for row in last_ids for v in row],
            ).fetchall()
    for row in firsts:
        entity_id, cell, reason, lines, billed_period, amount, buyer_period, anchor_ts, counted = (
            row
        )
        by_cell[str(cell)].append(
            DisputedRow(
                entity_id=str(entity_id),
                cell=str(cell),
                reason=None if reason is None else str(reason),
                lines=int(lines),
                billed_period=None if billed_period is None else str(billed_period),
                billed_amount=None if amount is None else Decimal(amount),
                buyer_period=None if buyer_period is None else str(buyer_period),
                anchor_ts=anchor_ts,
                counted=bool(counted),
            )
        )
    taken = dict.fromkeys(DISPUTED, 0)
    left = cap
    while left > 0 and any(taken[c] < len(by_cell[c]) for c in DISPUTED):
        for c in DISPUTED:
            if left > 0 and taken[c] < len(by_cell[c]):
                taken[c] += 1
                left -= 1
    order = {c: i for i, c in enumerate(CELLS)}
    shown = [r for c in DISPUTED for r in by_cell[c][: taken[c]]]
    shown.sort(key=lambda r: (order.get(r.cell, len(order)), r.entity_id))
    return shown, total


# ------------------------------------------------------------------------------- gather
def _drop_unread(con: duckdb.DuckDBPyConnection) -> None:
    """Drop from the count's verdict table the columns nothing after the check reads: the
    coverage counts (the check has read them), each verdict's anchor event id and quantity.

    The reconciliation's per-entity table is written next, and at ten million candidates
    these columns are some 400 MB that would otherwise be held, or spilled to disk and read
    back, while it is built. Dropping a column of a DuckDB table keeps the other columns'
    storage as it is; the report's figures come from the columns that stay."""
    found = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND database_name = 'temp' "
        "AND (starts_with(column_name, ?) OR column_name IN ('anchor_event_id', 'quantity'))",
        [VERDICTS_TABLE, COVERAGE_PREFIX],
    ).fetchall()
    for (name,) in found:
        con.execute(
            exp.Alter(
                this=exp.to_table(VERDICTS_TABLE),
                kind="TABLE",
                actions=[
                    exp.Drop(
                        tables=[exp.column(exp.to_identifier(str(name), quoted=True))],
                        kind="COLUMN",
                    )
                ],
            ).sql(dialect="duckdb")
        )


def gather(
    definition: Path,
    events: EventsInput,
    invoice: Sequence[Path],
    terms: Path | None = None,
    options: ReportOptions | None = None,
) -> ReportData:
    """Count once, then reconcile, watch drift and check sufficiency on the same connection.

    The calls and their arguments are those of the ``reconcile``, ``drift`` and ``check`` verbs,
    so the figures are theirs. Drift refusing the inputs (say, nothing to compare) leaves the
    drift section out with the reason instead of failing the whole report.
    """
    o = options or ReportOptions()
    if o.baseline is not None and o.baseline_rate is not None:
        raise InputError(
            Problem(
                "give a baseline period or a contractual rate, not both",
                Location(key="baseline"),
                "drop --baseline or --baseline-rate",
            )
        )
    if o.baseline is not None:
        parse_baseline(o.baseline)  # a malformed range fails before counting
    settings = DEFAULT_ALARM
    if o.threshold is not None:
        settings = dataclasses.replace(settings, threshold=o.threshold)
    if o.shift is not None:
        settings = dataclasses.replace(settings, shift=o.shift)
    d = load_definition(definition)
    t = load_terms(terms) if terms is not None else None
    mapping = load_invoice_mapping(o.invoice_mapping) if o.invoice_mapping is not None else None
    digest = None
    if o.pack is not None:
        digest = pack_digest(read_statement(o.pack)[0])
    # the count adds the coverage's per-candidate event counts to its verdicts, so the
    # sufficiency check below reads them instead of grouping every event again
    result = count(d, events, as_of=o.as_of, event_counts=coverage_counts(d))
    try:
        con = result.con
        # the sufficiency check first, while the verdicts are the newest table in memory
        checked = check_source(d, result.source, as_of=result.as_of, verdicts=VERDICTS_TABLE)
        _drop_unread(con)
        load_invoice_into(con, list(invoice), mapping, table=INVOICE_TABLE)
        recon = reconcile_in(
            con,
            VERDICTS_TABLE,
            INVOICE_TABLE,
            known_table=EVENTS_TABLE,
            definition=d,
            terms=t,
            as_of=result.as_of,
            fetch_entities=False,
            verdict_periods=result.candidate_periods,
            # the per-entity cells stay on the connection for drift_in and the disputed
            # table (they do not depend on the terms): one reconciliation serves all three
            cells=True,
        )
        recon = dataclasses.replace(
            recon, choices=tuple(c.to_json() for c in result.source.choices)
        )
        drift: DriftReport | None = None
        drift_error: str | None = None
        cusum: list[tuple[str, float]] = []
        try:
            drift = drift_in(
                con,
                d,
                VERDICTS_TABLE,
                INVOICE_TABLE,
                events_table=EVENTS_TABLE,
                baseline=o.baseline,
                contract_rate=o.baseline_rate,
                settings=settings,
                as_of=result.as_of,
                scale_to_volume=o.threshold is None,
                reconciled=recon,
                keep_stream=True,
            )
            cusum = _cusum_days(drift)
        except InputError as exc:
            drift_error = exc.reader_line
        disputed, disputed_total = _disputed(con, recon, max(o.max_rows, 0))
        sql = result.sql
    finally:
        result.close()
    return ReportData(
        definition=d,
        definition_text=read_text(definition),
        definition_file=definition.name,
        invoice_files=tuple(Path(p).name for p in invoice),
        terms=t,
        terms_text=None if terms is None else read_text(terms),
        terms_file=None if terms is None else terms.name,
        recon=recon,
        sql=sql,
        check=checked,
        disputed=tuple(disputed),
        disputed_total=disputed_total,
        drift=drift,
        drift_error=drift_error,
        cusum_days=tuple(cusum),
        pack_digest=digest,
        pack_folder=None if o.pack is None else o.pack.name,
        max_rows=o.max_rows,
    )


# ------------------------------------------------------------------------------- render
def _json_value(value: Any) -> str:
    """A figure's value exactly as the JSON writes it (money as its decimal string)."""
    if isinstance(value, Decimal):
        value = str(value)
    elif isinstance(value, np.generic):
        value = value.item()
    return json.dumps(value, ensure_ascii=False)


def _amount(value: Decimal | None) -> str:
    """An invoice line's amount without the storage scale's trailing zeros (5.000000 -> 5.00)."""
    if value is None:
        return ""
    exponent = value.normalize().as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{value.quantize(Decimal(1).scaleb(-places)):,}"


def _num(value: Any) -> str:
    return "\u2013" if value is None else f"{int(value):,}"


def _money(value: Decimal | None) -> str:
    return "\u2013" if value is None else f"{value:,}"


def _pct(value: float | None, places: int = 2) -> str:
    if value is None or value != value:  # NaN
        return "\u2013"
    return f"{100 * value:.{places}f}%"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("truecount.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json"] = _json_value
    env.filters["num"] = _num
    env.filters["money"] = _money
    env.filters["amount"] = _amount
    env.filters["pct"] = _pct
    env.filters["cell_label"] = words.cell_label
    env.filters["cell_sentence"] = words.cell_sentence
    return env


#: Waterfall steps in plain words, by (kind, the library's label); a condition's step is named
#: by its reason (words.reason_words). The library's label stays in ``data-value``.
_STEP_WORDS: Final[dict[tuple[str, str], str]] = {
    ("start", "billed by the vendor"): "Billed by the vendor",
    ("minus", "not in the export (unknown)"): "Not in the export",
    ("minus", "billed more than once (duplicate)"): "Billed twice (the extra lines' entities)",
    ("minus", "window still open (pending)"): "Not yet decided (may be billed once decided)",
    ("minus", "billed in another period (period_mismatch)"): "Billed in another period",
    ("subtotal", "agreed"): "Agreed",
    ("plus", "counted, never billed (buyer_only)"): "Outcome not billed",
    ("plus", "counted among the duplicates"): "Outcome among those billed twice",
    ("plus", "counted in its anchor's period (period_mismatch)"): (
        "Outcome counted in the period it happened in"
    ),
    ("total", "counted by the buyer"): "Counted by our definition",
}


def step_words(kind: str, label: str, condition: str | None, reasons: dict[str, str]) -> str:
    """A waterfall step as a finance reader says it."""
    if condition is not None:
        text = reasons.get(condition) or words.reason_words(condition)
        return text[:1].upper() + text[1:]
    return _STEP_WORDS.get((kind, label), label)


def _waterfall(data: ReportData) -> list[dict[str, Any]]:
    rows = []
    reasons = _reasons(data)
    for i, s in enumerate(data.recon.waterfall()):
        short = None
        if s.condition is not None:
            short = (
                "No qualifying event"
                if s.condition == NO_ANCHOR
                else f"Fails '{s.condition.replace('_', ' ')}'"
            )
        rows.append(
            {
                "index": i,
                "words": step_words(s.kind, s.label, s.condition, reasons),
                "short": short or step_words(s.kind, s.label, None, reasons),
                "label": s.label,
                "kind": s.kind,
                "entities": s.entities,
                "amount": step_amount(data.terms, s.entities),
                "condition": s.condition,
            }
        )
    return rows


def _reasons(data: ReportData) -> dict[str, str]:
    descriptions = {c.name: c.description for c in data.check.conditions}
    names = [r for r, _ in data.recon.reasons] + [r for r, _ in data.recon.primary_reasons]
    return {r: words.reason_words(r, descriptions) for r in dict.fromkeys(names)}


def _charts(data: ReportData, waterfall: list[dict[str, Any]]) -> dict[str, Markup]:
    out: dict[str, Markup] = {}
    steps = [
        (w["short"], w["kind"], w["entities"])
        for w in waterfall
        if w["entities"] or w["kind"] not in ("minus", "plus")
    ]
    out["waterfall"] = charts.to_svg(charts.waterfall_spec(charts.waterfall_bars(steps)))
    rows = [p.to_json() for p in data.recon.periods]
    if rows:
        tol = float(data.recon.tolerance_pct)
        out["periods"] = charts.to_svg(charts.periods_spec(rows, tol))
    dr = data.drift
    if dr is not None:
        base = dr.baseline
        out["drift"] = charts.to_svg(
            charts.drift_rate_spec(
                dr.periods.rows("period"),
                base.rate,
                base.observed_rate,
                dr.settings.shift * base.rate,
            )
        )
        if data.cusum_days:
            alarm = dr.first_alarm.date if dr.first_alarm is not None else None
            out["cusum"] = charts.to_svg(
                charts.cusum_spec(data.cusum_days, dr.settings.threshold, alarm)
            )
    return out


def render(data: ReportData) -> str:
    """The report as one HTML document (text)."""
    template = _environment().get_template("report.html")
    waterfall = _waterfall(data)
    bridge = billed_bridge(data.terms, data.recon, data.definition.unit)
    recon_json = data.recon.to_json()
    drift_json = data.drift.to_json() if data.drift is not None else None
    return template.render(
        data=data,
        d=data.definition,
        recon=data.recon,
        totals=data.recon.totals,
        recon_json=recon_json,
        drift=data.drift,
        drift_json=drift_json,
        waterfall=waterfall,
        bridge=bridge,
        credit=words.credit_words(data.recon.totals.credit),
        unit_price=(None if data.terms is None else _price_text(data.terms.unit_value, data.terms)),
        reasons=_reasons(data),
        charts=_charts(data, waterfall),
        words=words,
        disputed_cells=DISPUTED,
        applied_source=(
            words.APPLIED_SOURCES.get(data.recon.totals.billing_source or "", None)
            if data.recon.totals.billing_source != "mixed"
            else "our count in some periods, the vendor's in others"
        ),
        rule_words=(
            words.billing_source_words(str(data.recon.terms.get("billing_source")))
            if data.recon.terms is not None
            else None
        ),
    )


def render_report(
    definition: Path,
    events: EventsInput,
    invoice: Sequence[Path],
    terms: Path | None = None,
    options: ReportOptions | None = None,
) -> str:
    """Gather and render in one call: the HTML text of ``truecount report`` for these inputs."""
    return render(gather(definition, events, invoice, terms, options))
