"""Reconcile the vendor's invoice with the buyer's count, entity by entity (docs/reconcile.md).

Every invoice line and every entity the buyer counts lands in exactly one **cell**:

============== =================================================================================
agreed          billed once, counted by the buyer, billed in the period its anchor falls in
vendor_only     billed, but the buyer's definition says no (the failing condition is kept)
buyer_only      counted by the buyer, never billed
pending         billed, but the definition's window is still open at the as-of time
unknown         billed, but the entity is not in the export at all
duplicate       billed on more than one invoice line
period_mismatch billed once and counted, but in a period other than its anchor's
============== =================================================================================

When several apply, the first in this order wins: unknown, duplicate, vendor_only, pending,
period_mismatch, agreed (see docs/reconcile.md for why). The work is two DuckDB statements — a
full outer join of the billed entities with the verdicts, and the group-bys over it — so it
scales with DuckDB, not with Python.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, cast

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from truecount import jsonout
from truecount.billing.invoice import InvoiceMapping, load_invoice_into
from truecount.billing.periods import CELLS as CELLS
from truecount.billing.periods import PeriodResult as PeriodResult
from truecount.billing.terms import Terms, apply_terms
from truecount.db import one_row as _one
from truecount.db import resources_guard
from truecount.engine.compile import period_key_sql as engine_period_key_sql
from truecount.errors import InputError, Location, Problem
from truecount.workspace import configure

#: Precedence when more than one cell applies to a billed entity: the first wins.
PRECEDENCE: Final[tuple[str, ...]] = (
    "unknown", "duplicate", "vendor_only", "pending", "period_mismatch", "agreed",
)  # fmt: skip

#: Name of the per-entity cell view :func:`reconcile_in` leaves on the connection.
CELLS_TABLE: Final[str] = "reconcile_cells"

#: The table behind :data:`CELLS_TABLE`: every entity the invoice bills or the buyer has a
#: verdict for, with the billed side's last period, dated lines and first ``billed_at``
#: besides the cell's columns. Drift reads the buyer's other candidates from it.
ENTITIES_TABLE: Final[str] = "reconcile_entities"

#: Every value the ``cell`` column of :data:`ENTITIES_TABLE` takes. The table stores the cell
#: as this enumeration, one byte a row instead of a string: at ten million entities that is
#: about 150 MB less to hold or spill, and every reader's comparison is an integer one.
#: ``_no_verdict`` is a placeholder that :func:`_resolve_no_verdict` replaces.
CELL_VALUES: Final[tuple[str, ...]] = (
    "agreed", "period_mismatch", "pending", "vendor_only", "duplicate", "unknown",
    "buyer_only", "_no_verdict",
)  # fmt: skip

#: The one row of :func:`entity_span`, kept for drift on the same connection.
_SPAN_TABLE: Final[str] = "_tc_span"

#: The columns of :data:`CELLS_TABLE`, before the conditions' ``cond_*`` columns.
CELL_COLUMNS: Final[tuple[str, ...]] = (
    "entity_id", "cell", "reason", "lines", "billed_period", "billed_amount",
    "buyer_status", "buyer_period", "anchor_ts",
)  # fmt: skip

#: Reason given for a billed entity in the export that has no anchor event at all.
NO_ANCHOR: Final[str] = "no_anchor"

CONDITION_PREFIX: Final[str] = "cond_"

#: Problems of one kind listed in an error before the rest are left out.
MAX_PROBLEMS: Final[int] = 5

_PERIOD_PATTERNS: Final[dict[str, str]] = {
    "day": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "week": r"^[0-9]{4}-W[0-9]{2}$",
    "month": r"^[0-9]{4}-[0-9]{2}$",
    "quarter": r"^[0-9]{4}-Q[1-4]$",
    "year": r"^[0-9]{4}$",
}
_PERIOD_EXAMPLES: Final[dict[str, str]] = {
    "day": "2026-01-15", "week": "2026-W03", "month": "2026-01", "quarter": "2026-Q1",
    "year": "2026",
}  # fmt: skip
_STRFTIME: Final[dict[str, str]] = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}


# --------------------------------------------------------------------------------- periods
def period_key(ts: dt.datetime, every: str = "month", timezone: str = "UTC") -> str:
    """The period key of a naive-UTC (or aware) timestamp on the wall clock of ``timezone``.

    Mirrors the engine's period keys (docs/definition.md): ``2026-01-15``, ``2026-W03``,
    ``2026-01``, ``2026-Q1``, ``2026``.
    """
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=dt.UTC)
    local = aware.astimezone(zoneinfo.ZoneInfo(timezone))
    if every in _STRFTIME:
        return local.strftime(_STRFTIME[every])
    if every == "quarter":
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    if every == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    raise ValueError(f"unknown period '{every}'")


def period_key_sql(column: exp.Expression, every: str, timezone: str) -> exp.Expression:
    """The same key as :func:`period_key`, as a syntax tree: the engine's own period key."""
    return cast(exp.Expression, engine_period_key_sql(column, every, timezone))


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
    #: Per-entity cells (entity_id, cell, reason, lines, ...) when fetched; see CELLS_TABLE.
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


# --------------------------------------------------------------------------------- inputs
Frame = Any  # pa.Table | pandas.DataFrame | duckdb relation


def _register(con: duckdb.DuckDBPyConnection, name: str, obj: Frame) -> None:
    if isinstance(obj, duckdb.DuckDBPyRelation):
        obj.create_view(name, replace=True)
    elif isinstance(obj, pa.Table | pa.RecordBatchReader):
        con.register(name, obj)
    elif isinstance(obj, Sequence) and not isinstance(obj, str):
        con.register(name, pa.table({"entity_id": pa.array([str(x) for x in obj], pa.string())}))
    else:  # pandas
        con.register(name, obj)


def _columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    return [str(r[0]) for r in con.execute(f"DESCRIBE SELECT * FROM {name}").fetchall()]  # noqa: S608


def _q(name: str) -> exp.Expression:
    return exp.column(name, quoted=True)


def _s(text: str) -> exp.Literal:
    return exp.Literal.string(text)


def _sql(node: exp.Expression) -> str:
    return node.sql(dialect="duckdb")


@dataclass(frozen=True)
class _Setup:
    every: str
    timezone: str
    conditions: tuple[str, ...]
    unique_verdicts: bool | None
    definition: Mapping[str, Any] = field(default_factory=dict)


def _definition_setup(definition: Any | None, verdict_cols: Sequence[str]) -> _Setup:
    conds = tuple(
        c[len(CONDITION_PREFIX) :] for c in verdict_cols if c.startswith(CONDITION_PREFIX)
    )
    if definition is None:
        return _Setup("month", "UTC", conds, None)
    period = getattr(definition, "period", None)
    anchor = getattr(definition, "anchor", None)
    pick = getattr(anchor, "pick", None)
    names = tuple(getattr(definition, "conditions", {}) or {}) or conds
    return _Setup(
        every=str(getattr(period, "every", "month")),
        timezone=str(getattr(period, "timezone", "UTC")),
        conditions=tuple(n for n in names if n in conds),
        unique_verdicts=None if pick is None else pick != "each",
        definition={
            "name": getattr(definition, "name", None),
            "version": getattr(definition, "version", None),
            "sha256": getattr(definition, "sha256", None),
        },
    )


# --------------------------------------------------------------------------------- core
def reconcile(
    verdicts: Any,
    invoice: Frame | str | Path | Sequence[str | Path],
    *,
    definition: Any | None = None,
    terms: Terms | None = None,
    known_entities: Frame | Sequence[str] | None = None,
    as_of: dt.datetime | None = None,
    invoice_mapping: InvoiceMapping | None = None,
    fetch_entities: bool = True,
) -> Reconciliation:
    """Reconcile a count (its verdict table, or a result with ``.verdicts``) with an invoice.

    ``invoice`` is a loaded invoice table (see :mod:`truecount.billing.invoice`) or invoice file
    paths.
    ``known_entities`` — the entity ids in the export (e.g. the events table) — separates
    ``unknown`` (not in the export) from ``vendor_only`` with reason ``no_anchor``; without it
    every billed entity with no verdict is ``unknown``.
    """
    table = getattr(verdicts, "verdicts", verdicts)
    if as_of is None:
        as_of = getattr(verdicts, "as_of", None)
    with duckdb.connect() as con:
        configure(con)
        _register(con, "verdicts", table)
        if isinstance(invoice, str | Path) or (
            isinstance(invoice, Sequence) and all(isinstance(x, str | Path) for x in invoice)
        ):
            files = [invoice] if isinstance(invoice, str | Path) else list(invoice)
            load_invoice_into(con, files, invoice_mapping, table="invoice")
        else:
            _register(con, "invoice", invoice)
        known = None
        if known_entities is not None:
            _register(con, "known_entities", known_entities)
            known = "known_entities"
        return reconcile_in(
            con,
            "verdicts",
            "invoice",
            known_table=known,
            definition=definition,
            terms=terms,
            as_of=as_of,
            fetch_entities=fetch_entities,
            cells=fetch_entities,
        )


def reconcile_in(
    con: duckdb.DuckDBPyConnection,
    verdicts_table: str,
    invoice_table: str,
    *,
    known_table: str | None = None,
    definition: Any | None = None,
    terms: Terms | None = None,
    as_of: dt.datetime | None = None,
    fetch_entities: bool = True,
    verdict_periods: Sequence[str] | None = None,
    cells: bool = True,
) -> Reconciliation:
    """Reconcile tables already on ``con``; leaves :data:`CELLS_TABLE` there for reports.

    Table names are chosen by the calling code (never by a user). ``known_table`` needs an
    ``entity_id`` column (the events table works). ``verdict_periods`` — the periods the count
    has candidates in, when the caller knows them — saves a scan of the verdicts.
    ``cells=True`` writes the join of billed entities and verdicts once, as
    :data:`ENTITIES_TABLE`, with :data:`CELLS_TABLE` a view of its cells; drift, the dispute
    pack, the report and ``fetch_entities`` read them. ``cells=False`` writes nothing per
    entity: the counts are aggregated straight from the join, which is most of the cost of a
    reconciliation at scale. Both ways give the same numbers; the tests hold them to it.
    """
    if fetch_entities and not cells:
        raise ValueError("fetch_entities needs the cell table (cells=True)")
    with resources_guard("reconciling", con):
        return _reconcile_in(
            con,
            verdicts_table,
            invoice_table,
            known_table=known_table,
            definition=definition,
            terms=terms,
            as_of=as_of,
            fetch_entities=fetch_entities,
            verdict_periods=verdict_periods,
            cells=cells,
        )


def _reconcile_in(
    con: duckdb.DuckDBPyConnection,
    verdicts_table: str,
    invoice_table: str,
    *,
    known_table: str | None,
    definition: Any | None,
    terms: Terms | None,
    as_of: dt.datetime | None,
    fetch_entities: bool,
    verdict_periods: Sequence[str] | None,
    cells: bool,
) -> Reconciliation:
    """:func:`reconcile_in` itself; the wrapper turns running out of memory or temporary disk
    into a one-line :class:`~truecount.db.ResourceError`."""
    for name in (verdicts_table, invoice_table, known_table):
        if name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
            raise ValueError(f"table name {name!r} is not an identifier")
    vcols = _columns(con, verdicts_table)
    missing = [c for c in ("entity_id", "period", "status") if c not in vcols]
    if missing:
        raise InputError(
            Problem(f"the verdict table lacks {', '.join(missing)}", Location(column=missing[0]))
        )
    icols = _columns(con, invoice_table)
    setup = _definition_setup(definition, vcols)
    if setup.every not in _PERIOD_PATTERNS:
        raise ValueError(f"unknown period '{setup.every}'")

    # 1. invoice lines with their billed period (the period column wins over billed_at).
    has_period = "period" in icols
    has_billed_at = "billed_at" in icols
    has_amount = "amount" in icols
    billed_at_key = period_key_sql(_q("billed_at"), setup.every, setup.timezone)
    if has_period and has_billed_at:
        bperiod: exp.Expression = exp.Coalesce(this=_q("period"), expressions=[billed_at_key])
    elif has_period:
        bperiod = _q("period")
    elif has_billed_at:
        bperiod = billed_at_key
    else:
        bperiod = exp.cast(exp.Null(), exp.DataType.build("VARCHAR"))
    amount = (
        exp.cast(_q("amount"), exp.DataType.build("DECIMAL(18,6)"))
        if has_amount
        else exp.cast(exp.Null(), exp.DataType.build("DECIMAL(18,6)"))
    )
    line_id = _q("line_id") if "line_id" in icols else exp.cast(exp.Null(), "VARCHAR")
    line_no = (
        _q("line_no")
        if "line_no" in icols
        else sqlglot.parse_one("row_number() OVER ()", dialect="duckdb")
    )
    source = (
        sqlglot.parse_one("source_file || '#' || source_row", dialect="duckdb")
        if "source_file" in icols and "source_row" in icols
        else exp.cast(exp.Null(), "VARCHAR")
    )
    billed_at = _q("billed_at") if has_billed_at else exp.cast(exp.Null(), "TIMESTAMP")
    lines = sqlglot.select(
        exp.alias_(exp.cast(_q("entity_id"), exp.DataType.build("VARCHAR")), "entity_id"),
        exp.alias_(bperiod, "bperiod"),
        exp.alias_(amount, "amount"),
        exp.alias_(line_id, "line_id"),
        exp.alias_(line_no, "line_no"),
        exp.alias_(source, "source"),
        exp.alias_(billed_at, "billed_at"),
    ).from_(invoice_table)
    con.execute(f"CREATE OR REPLACE TEMP VIEW _tc_lines AS {_sql(lines)}")

    # 2. one row per billed entity: its lines, first and last billed period, amount, in one
    #    grouping (the same grouping a hand-written reconciliation does). It stays inside the
    #    single statement of step 4, so the lines flow from the grouping into the join.
    billed_sql = (
        "SELECT entity_id, count(*) AS lines, min(bperiod) AS billed_period, "
        "max(bperiod) AS last_period, count(bperiod) AS dated, "
        "sum(amount) AS billed_amount, min(billed_at) AS first_billed_at "
        "FROM _tc_lines GROUP BY entity_id"
    )
    billed_from = cast(exp.Select, sqlglot.parse_one(billed_sql, dialect="duckdb")).subquery("b")

    # 3. the buyer's verdict per entity (collapsing `pick: each` candidates).
    _buyer_view(con, verdicts_table, vcols, setup)
    if terms is not None and "currency" in icols:
        _check_currency(con, invoice_table, terms.currency)

    # 4. the cells: one full outer join of billed entities with the buyer's verdicts.
    cond_cols = [
        exp.alias_(exp.column(f"{CONDITION_PREFIX}{c}", "v", quoted=True), f"{CONDITION_PREFIX}{c}")
        for c in setup.conditions
    ]
    cell = sqlglot.parse_one(
        "CASE WHEN b.entity_id IS NULL THEN 'buyer_only' "
        "WHEN v.entity_id IS NULL THEN '_no_verdict' "
        "WHEN b.lines > 1 THEN 'duplicate' "
        "WHEN v.status IN ('not_counted', 'excluded') THEN 'vendor_only' "
        "WHEN v.status = 'pending' THEN 'pending' "
        "WHEN b.billed_period IS NOT NULL AND b.billed_period <> v.period "
        "THEN 'period_mismatch' ELSE 'agreed' END",
        dialect="duckdb",
    )
    joined = (
        sqlglot.select(
            exp.alias_(
                exp.Coalesce(
                    this=exp.column("entity_id", "b"), expressions=[exp.column("entity_id", "v")]
                ),
                "entity_id",
            ),
            exp.alias_(cell, "cell"),
            exp.alias_(exp.column("primary_reason", "v"), "reason"),
            exp.alias_(exp.column("lines", "b"), "lines"),
            exp.alias_(exp.column("billed_period", "b"), "billed_period"),
            exp.alias_(exp.column("billed_amount", "b"), "billed_amount"),
            exp.alias_(exp.column("status", "v"), "buyer_status"),
            exp.alias_(exp.column("period", "v"), "buyer_period"),
            exp.alias_(exp.column("anchor_ts", "v"), "anchor_ts"),
            *cond_cols,
        )
        .from_(billed_from)
        .join("_tc_buyer AS v", on="b.entity_id = v.entity_id", join_type="FULL OUTER")
    )

    # 5. the counts. With a cell table, the join is written once with every entity either side
    #    knows (ENTITIES_TABLE) and the cells are a view over it: counted entities the vendor
    #    never billed belong to a cell only inside the invoice's span, which is known once the
    #    join is written; drift reads the same table for the buyer's other candidates. Without
    #    one, the counts come straight from the join and counted entities outside the span are
    #    dropped after counting, which gives the same numbers. Billed entities without a
    #    verdict are grouped one by one and sorted out afterwards: in the export without an
    #    anchor, or unknown.
    if cells:
        extra = sqlglot.select(
            exp.column("last_period", "b").as_("last_period"),
            exp.column("dated", "b").as_("dated"),
            exp.column("first_billed_at", "b").as_("first_billed_at"),
        )
        cell_node = next(e for e in joined.expressions if e.alias == "cell")
        cell_node.set("this", exp.cast(cell.copy(), _cell_type()))
        con.execute(f"DROP VIEW IF EXISTS {CELLS_TABLE}")
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {ENTITIES_TABLE} AS "
            f"{_sql(joined.select(*extra.expressions))}"
        )
        # The counts come from the billed entities and the counted ones, grouped before the
        # span is known: the grouping drops counted entities outside the span afterwards
        # (as without a cell table) and measures the span on the way, so the table is read
        # once for both.
        billed_or_counted = (
            f"(SELECT * FROM {ENTITIES_TABLE} WHERE cell <> 'buyer_only' "  # noqa: S608
            "OR buyer_status = 'counted') AS c"
        )
        _aggregate(con, billed_or_counted, "c.", setup.conditions, "c.reason", nv_ids=False)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_SPAN_TABLE} AS SELECT min(first_billed) AS first, "  # noqa: S608
            "max(last_billed) AS last, max(last_first) AS last_first FROM _tc_agg"
        )
        first, last, _ = entity_span(con, measured=True)
        in_cell_sql = in_cell(first, last).sql(dialect="duckdb")
        public = ", ".join(
            "CAST(cell AS VARCHAR) AS cell" if c == "cell" else _q(c).sql(dialect="duckdb")
            for c in (*CELL_COLUMNS, *(f"{CONDITION_PREFIX}{c}" for c in setup.conditions))
        )
        con.execute(
            f"CREATE TEMP VIEW {CELLS_TABLE} AS SELECT {public} "  # noqa: S608 - names checked
            f"FROM {ENTITIES_TABLE} WHERE {in_cell_sql}"
        )
    else:
        con.execute(f"DROP VIEW IF EXISTS {CELLS_TABLE}")
        con.execute(f"DROP TABLE IF EXISTS {ENTITIES_TABLE}")
        extra = sqlglot.select(
            exp.column("last_period", "b").as_("last_period"),
            exp.column("dated", "b").as_("dated"),
            exp.column("reason_raw", "v").as_("reason_raw"),
        )
        full = joined.where(
            exp.or_(
                exp.Not(this=exp.Is(this=exp.column("entity_id", "b"), expression=exp.Null())),
                exp.EQ(this=exp.column("status", "v"), expression=_s("counted")),
            )
        ).select(*extra.expressions)
        # The raw reason, not the view's primary reason: the conditions already say which
        # failed, so the per-entity CASE is not computed for every verdict.
        reason = "coalesce(c.reason_raw, c.buyer_status)"
        _aggregate(con, f"({_sql(full)}) AS c", "c.", setup.conditions, reason)
    _resolve_no_verdict(con, known_table, update_cells=cells)

    return _summarize(
        con,
        setup,
        terms,
        as_of,
        fetch_entities,
        has_amount,
        verdicts_table,
        verdict_periods,
    )


def _check_periods(
    con: duckdb.DuckDBPyConnection,
    setup: _Setup,
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
    example = _PERIOD_EXAMPLES[setup.every]
    pattern = re.compile(_PERIOD_PATTERNS[setup.every])
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


def _check_currency(con: duckdb.DuckDBPyConnection, invoice: str, currency: str) -> None:
    row = _one(
        con,
        f"SELECT upper(currency), count(*) FROM {invoice} WHERE currency IS NOT NULL "  # noqa: S608
        "AND upper(currency) <> ? GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
        [currency],
    )
    if row is not None:
        raise InputError(
            Problem(
                f"the invoice bills in {row[0]} ({row[1]} lines) but the terms are in {currency}",
                Location(column="currency"),
                "reconcile each currency under terms in that currency",
            )
        )


def _location(source: object, column: str) -> Location:
    """Location of an invoice line from its 'file#row' source tag."""
    text = str(source or "")
    file, _, row = text.rpartition("#")
    if file and row.isdigit():
        return Location(file=file, row=int(row), column=column)
    return Location(column=column)


def _buyer_view(
    con: duckdb.DuckDBPyConnection, table: str, vcols: Sequence[str], setup: _Setup
) -> None:
    """One row per entity: status, period, anchor time and the first failing condition."""
    failing = [
        exp.If(
            this=exp.Is(this=_q(f"{CONDITION_PREFIX}{c}"), expression=exp.Not(this=exp.true())),
            true=_s(c),
        )
        for c in setup.conditions
    ]
    reason_col = _q("reason") if "reason" in vcols else exp.cast(exp.Null(), "VARCHAR")
    not_counted = (
        exp.Case(
            ifs=failing, default=exp.Coalesce(this=reason_col, expressions=[_s("not_counted")])
        )
        if failing
        else exp.Coalesce(this=reason_col, expressions=[_s("not_counted")])
    )
    primary = exp.Case(
        ifs=[
            exp.If(this=exp.EQ(this=_q("status"), expression=_s("not_counted")), true=not_counted),
            exp.If(
                this=exp.EQ(this=_q("status"), expression=_s("excluded")),
                true=exp.Coalesce(this=reason_col, expressions=[_s("excluded")]),
            ),
        ],
        default=exp.Null(),
    )
    anchor_ts = _q("anchor_ts") if "anchor_ts" in vcols else exp.cast(exp.Null(), "TIMESTAMP")
    select = sqlglot.select(
        exp.alias_(exp.cast(_q("entity_id"), exp.DataType.build("VARCHAR")), "entity_id"),
        exp.alias_(_q("status"), "status"),
        exp.alias_(_q("period"), "period"),
        exp.alias_(anchor_ts, "anchor_ts"),
        exp.alias_(primary, "primary_reason"),
        exp.alias_(reason_col.copy(), "reason_raw"),
        *[
            exp.alias_(_q(f"{CONDITION_PREFIX}{c}"), f"{CONDITION_PREFIX}{c}")
            for c in setup.conditions
        ],
    ).from_(table)
    unique = setup.unique_verdicts
    if unique is None:
        row = _one(con, f"SELECT count(*) = count(DISTINCT entity_id) FROM {table}")  # noqa: S608
        unique = bool(row[0]) if row else True
    if not unique:
        rank = sqlglot.parse_one(
            "row_number() OVER (PARTITION BY entity_id ORDER BY CASE status "
            "WHEN 'counted' THEN 0 WHEN 'pending' THEN 1 WHEN 'not_counted' THEN 2 ELSE 3 END, "
            "anchor_ts, period)",
            dialect="duckdb",
        )
        select = (
            sqlglot.select("*")
            .from_(select.subquery("c"))
            .qualify(exp.EQ(this=rank, expression=exp.Literal.number(1)))
        )
    con.execute(f"CREATE OR REPLACE TEMP VIEW _tc_buyer AS {_sql(select)}")


def entity_span(con: duckdb.DuckDBPyConnection, *, measured: bool = False) -> tuple[Any, Any, Any]:
    """The billed periods of :data:`ENTITIES_TABLE`: the first billed period, the last one any
    line bills, and the last first-billed period (drift's span).

    The reconciliation measures them in one scan and keeps the one row on the connection;
    ``measured=True`` reads that row (drift, after the reconciliation on the same connection)
    instead of scanning every entity again."""
    if not measured:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_SPAN_TABLE} AS SELECT min(billed_period) AS first, "  # noqa: S608
            f"max(last_period) AS last, max(billed_period) AS last_first FROM {ENTITIES_TABLE}"
        )
    row = _one(con, f"SELECT first, last, last_first FROM {_SPAN_TABLE}")  # noqa: S608
    return (row[0], row[1], row[2]) if row else (None, None, None)


def _cell_type() -> exp.DataType:
    """The enumeration of :data:`CELL_VALUES` as a type (written inline: a named type would be
    an object in the workspace's catalog, which a read-only caller must not create)."""
    return exp.DataType(
        this=exp.DataType.Type.ENUM, expressions=[_s(v) for v in CELL_VALUES], nested=False
    )


def in_cell(first: Any, last: Any) -> exp.Expr:
    """Which rows of :data:`ENTITIES_TABLE` are cells: every billed entity, and the counted
    ones inside the invoice's span, ``first`` to ``last`` billed period (all of them when no
    line has a period)."""
    counted: exp.Expr = exp.EQ(this=_q("buyer_status"), expression=_s("counted"))
    if first is not None:
        counted = exp.and_(
            counted,
            exp.Between(this=_q("buyer_period"), low=_s(str(first)), high=_s(str(last))),
        )
    # the cell CASE names an entity buyer_only exactly when no invoice line bills it
    billed = exp.NEQ(this=_q("cell"), expression=_s("buyer_only"))
    return exp.or_(billed, counted)


def _aggregate(
    con: duckdb.DuckDBPyConnection,
    source: str,
    billed: str,
    conditions: Sequence[str],
    other_reason: str,
    *,
    nv_ids: bool = True,
) -> None:
    """Every count a reconciliation reports, in one grouping of the per-entity cells.

    ``source`` is the cell table (joined to the billed entities for their last period) or the
    join that would fill it, as fixed SQL text built here; ``billed`` qualifies the columns
    ``last_period`` and ``dated``; ``other_reason`` gives the reason of a vendor_only entity
    that fails no condition (excluded, or not counted for a reason of its own).

    The grouping keys are the entity's period and cell, and a few more that are NULL for
    almost every entity, so the groups stay few and the per-entity work stays a hash of
    mostly-constant columns: the anchor period and status where they can differ from the
    cell's (period_mismatch, duplicate), the failing conditions of vendor_only entities as a
    bit mask, the entity itself when it has no verdict (for :func:`_resolve_no_verdict`), and
    whether its lines are spread over periods. Every figure is a sum over these groups.
    ``nv_ids=False`` leaves the entity out of the keys when the cell table is written: the
    entities without a verdict are then read from it, and a million of them would otherwise
    be a million groups here.
    """
    if len(conditions) > 120:
        raise InputError(Problem("a definition with more than 120 conditions cannot be reconciled"))
    mask = (
        " + ".join(
            f"(CAST(c.{_q(CONDITION_PREFIX + name).sql(dialect='duckdb')} IS NOT TRUE AS HUGEINT)"
            f" * {1 << i})"
            for i, name in enumerate(conditions)
        )
        or "CAST(0 AS HUGEINT)"
    )
    nv_id = (
        "CASE WHEN c.cell = '_no_verdict' THEN c.entity_id END"
        if nv_ids
        else "CAST(NULL AS VARCHAR)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _tc_agg AS SELECT "  # noqa: S608 - fixed text and names
        "coalesce(c.billed_period, c.buyer_period, '-') AS p, c.cell, "
        "CASE WHEN c.cell IN ('period_mismatch', 'duplicate') THEN c.buyer_period END "
        "AS buyer_period, "
        "CASE WHEN c.cell = 'duplicate' THEN c.buyer_status = 'counted' END AS dup_counted, "
        "CASE WHEN c.cell = 'vendor_only' AND c.buyer_status = 'not_counted' "
        f"THEN {mask} END AS fmask, "
        f"CASE WHEN c.cell = 'vendor_only' THEN {other_reason} END AS other_reason, "
        f"{nv_id} AS nv_id, "
        f"CASE WHEN c.lines > 1 AND NOT coalesce({billed}dated = c.lines "
        f"AND c.billed_period = {billed}last_period, false) THEN true END AS spread, "
        "count(*) AS n, sum(c.lines) AS lines, sum(c.billed_amount) AS amount, "
        "count(c.billed_amount) AS amounts, min(c.billed_period) AS first_billed, "
        f"max({billed}last_period) AS last_billed, max(c.billed_period) AS last_first "
        f"FROM {source} GROUP BY ALL"
    )
    # Counted entities the vendor never billed matter only inside the invoice's span.
    con.execute(
        "DELETE FROM _tc_agg WHERE cell = 'buyer_only' AND p NOT BETWEEN "
        "(SELECT min(first_billed) FROM _tc_agg) AND (SELECT max(last_billed) FROM _tc_agg)"
    )


def _resolve_no_verdict(
    con: duckdb.DuckDBPyConnection, known_table: str | None, update_cells: bool
) -> None:
    """Billed entities with no verdict: in the export without an anchor, or unknown.

    They are few, so they go to a small table first (from the cell table when there is one,
    else from the grouping); joining that with the export's ids lets DuckDB build its hash
    table on the small side. ``_tc_nv`` / ``_tc_nv_known`` stay on the
    connection for the summary.
    """
    if update_cells:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _tc_nv AS SELECT entity_id, lines, "  # noqa: S608
            f"coalesce(billed_period, '-') AS p FROM {ENTITIES_TABLE} WHERE cell = '_no_verdict'"
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _tc_nv AS SELECT nv_id AS entity_id, lines, "
            "p FROM _tc_agg WHERE nv_id IS NOT NULL"
        )
    n = _one(con, "SELECT count(*) FROM _tc_nv")
    if known_table is not None and n and int(n[0]) > 0:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _tc_nv_known AS SELECT DISTINCT n.entity_id "  # noqa: S608
            f"FROM {known_table} k JOIN _tc_nv n ON k.entity_id = n.entity_id"
        )
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _tc_nv_known (entity_id VARCHAR)")
    if not n or int(n[0]) == 0:
        return
    if update_cells:
        # Membership is tested against the smaller of the two sets: usually nearly every such
        # entity is in the export (billed, no anchor), and a million-row set probed twice
        # per row costs more than building the few unknown ones.
        known = _one(con, "SELECT count(*) FROM _tc_nv_known")
        if known is not None and 2 * int(known[0]) > int(n[0]):
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _tc_nv_unknown AS SELECT entity_id FROM _tc_nv "
                "WHERE entity_id IS NOT NULL "
                "AND entity_id NOT IN (SELECT entity_id FROM _tc_nv_known)"
            )
            is_known = "entity_id NOT IN (SELECT entity_id FROM _tc_nv_unknown)"
        else:
            is_known = "entity_id IN (SELECT entity_id FROM _tc_nv_known)"
        con.execute(
            f"UPDATE {ENTITIES_TABLE} SET "  # noqa: S608 - fixed text
            f"cell = CASE WHEN {is_known} THEN "
            "(CASE WHEN lines > 1 THEN 'duplicate' ELSE 'vendor_only' END) ELSE 'unknown' END, "
            f"reason = CASE WHEN {is_known} THEN ? ELSE NULL END WHERE cell = '_no_verdict'",
            [NO_ANCHOR],
        )
    if known_table is not None:
        _check_id_format(con, known_table)


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


def _check_id_format(con: duckdb.DuckDBPyConnection, known_table: str) -> None:
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


def _summarize(
    con: duckdb.DuckDBPyConnection,
    setup: _Setup,
    terms: Terms | None,
    as_of: dt.datetime | None,
    fetch_entities: bool,
    has_amount: bool,
    verdicts_table: str,
    verdict_periods: Sequence[str] | None,
) -> Reconciliation:
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
    _check_periods(con, setup, verdicts_table, billed_keys, verdict_periods)
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
    if fetch_entities:
        entities = con.sql(f"SELECT * FROM {CELLS_TABLE} ORDER BY entity_id").to_arrow_table()  # noqa: S608
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
