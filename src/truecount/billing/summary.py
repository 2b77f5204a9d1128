"""The per-period summary of a reconciliation, read from the groups its query leaves behind.

:mod:`truecount.billing.reconcile` runs the query that sorts every billed or counted entity
into a cell and groups the cells (``_tc_agg``), and sorts the billed entities without a verdict
(``_tc_nv``, ``_tc_nv_known``). This module turns those few rows into the numbers a user reads:
one row per period, the totals, the reasons and the waterfall, with the tolerance and the
terms applied. It also holds the checks that look at the invoice's periods and ids once the
query has run, since they name the invoice lines the summary counts. Nothing here scales with
the number of entities: every statement reads groups, not entity rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final

import duckdb
import pyarrow as pa

from truecount import jsonout
from truecount.billing.periods import CELLS, PeriodResult
from truecount.billing.terms import Terms, apply_terms
from truecount.db import one_row as _one
from truecount.errors import InputError, Location, Problem

#: Reason given for a billed entity in the export that has no anchor event at all.
NO_ANCHOR: Final[str] = "no_anchor"

#: Problems of one kind listed in an error before the rest are left out.
MAX_PROBLEMS: Final[int] = 5

#: What a period key of each length of period looks like.
PERIOD_PATTERNS: Final[dict[str, str]] = {
    "day": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "week": r"^[0-9]{4}-W[0-9]{2}$",
    "month": r"^[0-9]{4}-[0-9]{2}$",
    "quarter": r"^[0-9]{4}-Q[1-4]$",
    "year": r"^[0-9]{4}$",
}
#: One key of each, for error messages.
PERIOD_EXAMPLES: Final[dict[str, str]] = {
    "day": "2026-01-15", "week": "2026-W03", "month": "2026-01", "quarter": "2026-Q1",
    "year": "2026",
}  # fmt: skip


@dataclass(frozen=True)
class Setup:
    """What a reconciliation takes from the definition: its period, time zone and conditions."""

    every: str
    timezone: str
    conditions: tuple[str, ...]
    unique_verdicts: bool | None
    definition: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class WaterfallStep:
    """One step from the vendor's billed count to the buyer's count (entities)."""

    label: str
    entities: int
    kind: str  # 'start' | 'minus' | 'subtotal' | 'plus' | 'total'
    condition: str | None = None


@dataclass(frozen=True)
class Reconciliation:
    """The result of :func:`reconcile`: per-period rows, totals, reasons and the waterfall."""

    definition: Mapping[str, Any]
    as_of: dt.datetime | None
    periods: tuple[PeriodResult, ...]
    totals: PeriodResult
    reasons: tuple[tuple[str, int], ...]
    primary_reasons: tuple[tuple[str, int], ...]
    terms: Mapping[str, Any] | None = None
    tolerance_pct: Decimal = Decimal(0)
    currency: str | None = None
    #: Per-entity cells (entity_id, cell, reason, lines, ...) when fetched; see
    #: :data:`truecount.billing.reconcile.CELLS_TABLE`.
    entities: pa.Table | None = None
    warnings: tuple[str, ...] = ()
    #: Adapter options the events were read with (docs/sources.md), as JSON objects.
    choices: tuple[Mapping[str, Any], ...] = ()

    @property
    def beyond_tolerance(self) -> bool:
        """True when any period differs by more than the tolerance (exit code 1)."""
        return any(p.beyond_tolerance for p in self.periods)

    def waterfall(self) -> list[WaterfallStep]:
        """From the vendor's billed entities down to the agreed ones, then up to the buyer's count.

        Each vendor_only entity is listed once, under its first failing condition in definition
        order, so the steps add up; :attr:`reasons` counts every failing condition instead.
        """
        t = self.totals
        steps = [WaterfallStep("billed by the vendor", t.vendor_billed, "start")]
        steps.append(WaterfallStep("not in the export (unknown)", t.unknown, "minus"))
        steps.append(WaterfallStep("billed more than once (duplicate)", t.duplicate, "minus"))
        steps.append(WaterfallStep("window still open (pending)", t.pending, "minus"))
        for name, n in self.primary_reasons:
            label = (
                "no qualifying anchor event"
                if name == NO_ANCHOR
                else f"excluded, {name}"
                if name.startswith("no data")
                else f"failed {name}"
            )
            steps.append(WaterfallStep(label, n, "minus", condition=name))
        steps.append(
            WaterfallStep("billed in another period (period_mismatch)", t.period_mismatch, "minus")
        )
        steps.append(WaterfallStep("agreed", t.agreed, "subtotal"))
        steps.append(WaterfallStep("counted, never billed (buyer_only)", t.buyer_only, "plus"))
        steps.append(WaterfallStep("counted among the duplicates", t.duplicate_counted, "plus"))
        steps.append(
            WaterfallStep(
                "counted in its anchor's period (period_mismatch)", t.period_mismatch, "plus"
            )
        )
        steps.append(WaterfallStep("counted by the buyer", t.buyer_counted, "total"))
        return steps

    def to_json(self) -> dict[str, Any]:
        """The stable, documented JSON (docs/reconcile.md). Keys are never renamed."""
        return {
            "definition": dict(self.definition),
            "terms": None if self.terms is None else dict(self.terms),
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "periods": [p.to_json() for p in self.periods],
            "totals": self.totals.to_json(),
            "reasons": [{"condition": c, "entities": n} for c, n in self.reasons],
            "waterfall": [
                {
                    "step": s.label,
                    "kind": s.kind,
                    "entities": s.entities,
                    **({"condition": s.condition} if s.condition else {}),
                }
                for s in self.waterfall()
            ],
            "choices": [dict(c) for c in self.choices],
            "warnings": list(self.warnings),
        }

    def to_json_text(self) -> str:
        return jsonout.dumps(self.to_json()) + "\n"


def check_periods(
    con: duckdb.DuckDBPyConnection,
    setup: Setup,
    verdicts: str,
    billed: Mapping[str, int],
    verdict_periods: Sequence[str] | None,
) -> None:
    """Invoice periods must be keys of the definition's period, inside the export's range.

    ``billed`` maps each billed period to its number of lines (``-``: lines without a date).
    A line billed in a period the export does not reach cannot be checked at all; reporting it
    as a finding would blame the vendor for a gap in the buyer's own export.
    """
    problems: list[Problem] = []
    example = PERIOD_EXAMPLES[setup.every]
    pattern = re.compile(PERIOD_PATTERNS[setup.every])
    keys = sorted(k for k in billed if k != "-")
    for value in keys:
        if not pattern.match(value):
            problems.append(
                Problem(
                    f"period '{value}' is not a {setup.every} key ({billed[value]} lines)",
                    _line_location(con, value, "period"),
                    f"write {setup.every} periods like {example}, as the definition's period says",
                )
            )
    if problems:
        raise InputError(problems[:MAX_PROBLEMS])
    if verdict_periods is not None:
        known = sorted(verdict_periods)
        low, high = (known[0], known[-1]) if known else (None, None)
    else:
        span = _one(con, f"SELECT min(period), max(period) FROM {verdicts}")  # noqa: S608
        low, high = span if span else (None, None)
    for value in keys:
        if low is not None and high is not None and low <= value <= high:
            continue
        covered = f"the export covers {low} to {high}" if low else "the export has no candidates"
        problems.append(
            Problem(
                f"billed in period {value} ({billed[value]} lines), outside every period of the "
                "export",
                _line_location(con, value, "billed_at"),
                f"{covered}; reconcile with an export that covers the invoice, or drop those lines",
            )
        )
    if problems:
        raise InputError(problems[:MAX_PROBLEMS])


def _line_location(con: duckdb.DuckDBPyConnection, period: str, column: str) -> Location:
    """Where the first invoice line of a billed period came from, for an error message."""
    row = _one(
        con, "SELECT source FROM _tc_lines WHERE bperiod = ? ORDER BY line_no LIMIT 1", [period]
    )
    return _location(row[0] if row else None, column)


def _location(source: object, column: str) -> Location:
    """Location of an invoice line from its 'file#row' source tag."""
    text = str(source or "")
    file, _, row = text.rpartition("#")
    if file and row.isdigit():
        return Location(file=file, row=int(row), column=column)
    return Location(column=column)


def _first_line_of(con: duckdb.DuckDBPyConnection, entity_id: str) -> Location:
    """File and row of the first invoice line billing ``entity_id`` (for error messages)."""
    row = _one(
        con,
        "SELECT source FROM _tc_lines WHERE entity_id = ? ORDER BY line_no LIMIT 1",
        [entity_id],
    )
    source = str(row[0]) if row and row[0] is not None else ""
    file, _, line = source.rpartition("#")
    if file and line.isdigit():
        return Location(file=file, row=int(line), column="entity_id")
    return Location(column="entity_id")


def check_id_format(con: duckdb.DuckDBPyConnection, known_table: str) -> None:
    """Refuse to reconcile when unknown invoice ids look like export ids in another format.

    A silent "unknown" here would dispute every line; a silent fix would be a guess. So the
    user gets examples and the mapping option that makes the rewrite explicit. Each unknown id
    is rewritten a few ways (trimmed, lower or upper case, its alphabetic prefix removed or
    replaced by a prefix the export's ids use) and the rewrites are looked up in the export.
    """
    strip = "regexp_replace(trim(entity_id), '^[A-Za-z]*[^A-Za-z0-9]+', '')"
    rows = con.execute(
        "WITH u AS (SELECT entity_id FROM _tc_nv WHERE entity_id NOT IN "  # noqa: S608
        "(SELECT entity_id FROM _tc_nv_known) LIMIT 100000), "
        "prefixes AS (SELECT DISTINCT regexp_extract(entity_id, '^[A-Za-z]*[^A-Za-z0-9]*') AS p "
        f"FROM (SELECT entity_id FROM {known_table} LIMIT 1000) UNION SELECT ''), "
        f"core AS (SELECT entity_id, {strip} AS c FROM u), "
        "base AS (SELECT entity_id, trim(entity_id) AS cand FROM u "
        "UNION SELECT core.entity_id, prefixes.p || core.c FROM core, prefixes WHERE core.c <> ''),"
        "cand AS (SELECT entity_id, cand FROM base UNION SELECT entity_id, lower(cand) FROM base "
        "UNION SELECT entity_id, upper(cand) FROM base) "
        f"SELECT DISTINCT cand.entity_id, k.entity_id FROM {known_table} k "
        "JOIN cand ON k.entity_id = cand.cand WHERE cand.cand <> cand.entity_id "
        "ORDER BY 1 LIMIT 6"
    ).fetchall()
    if not rows:
        return
    total = _one(
        con,
        "SELECT count(*) FROM _tc_nv WHERE entity_id NOT IN (SELECT entity_id FROM _tc_nv_known)",
    )
    problems: list[Problem] = []
    fixes: set[str] = set()
    for invoice_id, export_id in rows[:5]:
        inv, exp_id = str(invoice_id), str(export_id)
        if inv.strip() == exp_id:
            kind, fixes_ = "surrounding whitespace", {"trim: true"}
        elif inv.strip().lower() == exp_id.lower():
            kind = "letter case"
            fixes_ = {"case: lower" if exp_id == exp_id.lower() else "case: upper"}
        else:
            kind, fixes_ = "a prefix or separator", {"strip_prefix / add_prefix"}
        fixes |= fixes_
        problems.append(
            Problem(
                f"invoice id {inv!r} is not in the export, but {exp_id!r} is: "
                f"they differ in {kind}",
                _first_line_of(con, inv),
            )
        )
    n = int(total[0]) if total else 0
    first = problems[0].location
    problems.insert(
        0,
        Problem(
            f"{n} billed ids are not in the export, and some match export ids in another format",
            Location(file=first.file, column="entity_id"),
            "fix the invoice, or normalise explicitly in an invoice mapping "
            f"(--invoice-mapping) with entity_id: {{{', '.join(sorted(fixes))}}}",
        ),
    )
    raise InputError(problems)


def summarize(
    con: duckdb.DuckDBPyConnection,
    setup: Setup,
    terms: Terms | None,
    as_of: dt.datetime | None,
    cells_table: str | None,
    has_amount: bool,
    verdicts_table: str,
    verdict_periods: Sequence[str] | None,
) -> Reconciliation:
    """The reconciliation's numbers from the groups on ``con`` (``_tc_agg``, ``_tc_nv``).

    ``cells_table`` names the per-entity cell view to return as ``entities``, or None to
    return none. The invoice's periods are checked here, after the query, because the groups
    already hold every billed period with its number of lines: checking them first would
    read the invoice once more.
    """
    # The grouping of _aggregate: per period (billed period, else anchor period) and cell, and
    # per anchor period for the buyer's count. The buyer's count covers counted entities in
    # scope and counted entities the vendor billed in any period, so that in total
    # buyer_counted = agreed + buyer_only + period_mismatch + the counted duplicates. Lines
    # and money of single-line entities come from the same grouping; those of entities billed
    # more than once are added by their own billed period below.
    per: dict[str, dict[str, Any]] = {}
    money: dict[str, list[Any]] = {}
    billed_keys: dict[str, int] = {}
    failing = [0] * len(setup.conditions)
    spread = 0
    counted_by: dict[str, int] = {}

    def add_money(key: str, n_lines: int, total: Any, n_amounts: int) -> None:
        m = money.setdefault(key, [0, None, 0])
        m[0] += n_lines
        m[1] = total if m[1] is None else (m[1] + total if total is not None else m[1])
        m[2] += n_amounts
        if n_lines:
            billed_keys[key] = billed_keys.get(key, 0) + n_lines

    primary_counts: dict[str, int] = {}
    rows = con.execute(
        "SELECT p, cell, buyer_period, dup_counted, fmask, other_reason, spread, sum(n), "
        "sum(lines), sum(amount), sum(amounts) FROM _tc_agg GROUP BY ALL"
    ).fetchall()
    for (
        key,
        cell,
        anchor_period,
        counted_dup,
        fmask,
        other,
        spread_,
        n,
        lines,
        amount,
        amounts,
    ) in rows:
        key, n = str(key), int(n)
        d = per.setdefault(key, dict.fromkeys(("vendor_billed", *CELLS, "duplicate_counted"), 0))
        if cell != "buyer_only":
            d["vendor_billed"] += n
        if cell in d:
            d[cell] += n
        # The buyer's count, by anchor period: counted entities in every cell that holds them.
        if cell in ("agreed", "buyer_only"):
            counted_by[key] = counted_by.get(key, 0) + n
        elif (cell == "period_mismatch" or (cell == "duplicate" and counted_dup)) and anchor_period:
            counted_by[str(anchor_period)] = counted_by.get(str(anchor_period), 0) + n
        if cell == "duplicate" and counted_dup:
            d["duplicate_counted"] += n
        if cell == "vendor_only":
            mask = int(fmask) if fmask is not None else 0
            for i in range(len(setup.conditions)):
                if mask >> i & 1:
                    failing[i] += n
            first = (mask & -mask).bit_length() - 1
            reason = setup.conditions[first] if mask else str(other)
            primary_counts[reason] = primary_counts.get(reason, 0) + n
        if cell != "buyer_only":
            if spread_:
                spread += n
            else:
                add_money(key, int(lines), amount, int(amounts))
    for key, counted in counted_by.items():
        per.setdefault(key, {})["buyer_counted"] = counted
    # Billed entities without a verdict, now sorted: unknown, or no anchor in the export.
    no_anchor = 0
    for key, unknown, lone, several in con.execute(
        "SELECT n.p, count(*) FILTER (WHERE k.entity_id IS NULL), "
        "count(*) FILTER (WHERE k.entity_id IS NOT NULL AND n.lines = 1), "
        "count(*) FILTER (WHERE k.entity_id IS NOT NULL AND n.lines > 1) "
        "FROM _tc_nv AS n LEFT JOIN _tc_nv_known AS k ON k.entity_id = n.entity_id GROUP BY 1"
    ).fetchall():
        d = per.setdefault(str(key), {})
        d["unknown"] = d.get("unknown", 0) + int(unknown)
        d["vendor_only"] = d.get("vendor_only", 0) + int(lone)
        d["duplicate"] = d.get("duplicate", 0) + int(several)
        no_anchor += int(lone)
    if spread:
        # Entities billed on several lines in different periods (or undated): lines and money
        # by each line's own period, which needs the invoice lines read again.
        for key, n_lines, total, n_amounts in con.execute(
            "SELECT coalesce(l.bperiod, v.period, '-'), count(*), sum(l.amount), "
            "count(l.amount) FROM _tc_lines AS l JOIN (SELECT entity_id FROM _tc_lines "
            "GROUP BY entity_id HAVING count(*) > 1 AND NOT "
            "(count(bperiod) = count(*) AND min(bperiod) = max(bperiod))) AS d "
            "ON d.entity_id = l.entity_id "
            "LEFT JOIN _tc_buyer AS v ON v.entity_id = l.entity_id GROUP BY 1"
        ).fetchall():
            add_money(str(key), int(n_lines), total, int(n_amounts))
    check_periods(con, setup, verdicts_table, billed_keys, verdict_periods)
    for key, (n_lines, total, n_amounts) in money.items():
        d = per.setdefault(key, {})
        d["vendor_lines"] = n_lines
        d["amount_billed"] = (
            Decimal(total) if total is not None and has_amount and n_amounts > 0 else None
        )
    if has_amount and any(d.get("amount_billed") is not None for d in per.values()):
        for d in per.values():
            d.setdefault("amount_billed", Decimal(0))
            if d["amount_billed"] is None:
                d["amount_billed"] = Decimal(0)
    periods = [PeriodResult(period=p, **vals) for p, vals in sorted(per.items())]
    if terms is None:
        periods = [replace(p, amount_billed=_tidy(p.amount_billed)) for p in periods]

    tolerance = Decimal(0)
    terms_json: Mapping[str, Any] | None = None
    currency: str | None = None
    if terms is not None:
        tolerance = terms.tolerance_pct
        terms_json = terms.summary()
        currency = terms.currency
    periods = [_tolerance(p, tolerance) for p in periods]
    if terms is not None:
        periods = apply_terms(terms, periods)
    totals = _totals(periods, tolerance)

    # reasons: every failing condition among vendor_only entities, then the reasons that are
    # not conditions (no anchor, excluded) from the primary-reason counts.
    order = {c: i for i, c in enumerate(setup.conditions)}
    primary = list(primary_counts.items())
    if no_anchor:
        primary.append((NO_ANCHOR, no_anchor))
    primary.sort(key=lambda x: (order.get(x[0], len(order)), -x[1], x[0]))
    reasons: list[tuple[str, int]] = [
        (c, n) for c, n in zip(setup.conditions, failing, strict=True) if n
    ]
    reasons += [(r, n) for r, n in primary if r not in order]

    entities = None
    if cells_table is not None:
        entities = con.sql(f"SELECT * FROM {cells_table} ORDER BY entity_id").to_arrow_table()  # noqa: S608
    return Reconciliation(
        definition=setup.definition,
        as_of=as_of,
        periods=tuple(periods),
        totals=totals,
        reasons=tuple(reasons),
        primary_reasons=tuple(primary),
        terms=terms_json,
        tolerance_pct=tolerance,
        currency=currency,
        entities=entities,
    )


def _tidy(amount: Decimal | None) -> Decimal | None:
    """Drop the storage scale's trailing zeros, keeping at least cents (7.920000 -> 7.92)."""
    if amount is None:
        return None
    exponent = amount.normalize().as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return amount.quantize(Decimal(1).scaleb(-places))


def difference_pct(vendor: int, buyer: int) -> float | None:
    """(vendor - buyer) / buyer in percent, two decimals; None when the buyer counts zero."""
    if buyer == 0:
        return 0.0 if vendor == 0 else None
    return round((vendor - buyer) * 100.0 / buyer, 2)


def _beyond(vendor: int, buyer: int, tolerance_pct: Decimal) -> bool:
    """Exact comparison in integers: |vendor - buyer| * 100 > tolerance * buyer."""
    if buyer == 0:
        return vendor > 0
    return Decimal(abs(vendor - buyer) * 100) > tolerance_pct * buyer


def _tolerance(p: PeriodResult, tolerance_pct: Decimal) -> PeriodResult:
    return replace(
        p,
        difference_pct=difference_pct(p.vendor_billed, p.buyer_counted),
        beyond_tolerance=_beyond(p.vendor_billed, p.buyer_counted, tolerance_pct),
    )


def _totals(periods: Sequence[PeriodResult], tolerance_pct: Decimal) -> PeriodResult:
    ints = ("vendor_billed", "buyer_counted", *CELLS, "vendor_lines", "duplicate_counted")
    sums = {k: sum(getattr(p, k) for p in periods) for k in ints}

    def money(name: str) -> Decimal | None:
        values = [getattr(p, name) for p in periods]
        return None if any(v is None for v in values) or not values else sum(values, Decimal(0))

    sources = {p.billing_source for p in periods}
    return PeriodResult(
        period="total",
        **sums,
        difference_pct=difference_pct(sums["vendor_billed"], sums["buyer_counted"]),
        beyond_tolerance=any(p.beyond_tolerance for p in periods),
        billing_source=(
            None if sources == {None} else sources.pop() if len(sources) == 1 else "mixed"
        ),
        amount_billed=money("amount_billed"),
        amount_due=money("amount_due"),
        credit=money("credit"),
    )
