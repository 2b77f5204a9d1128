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
scales with DuckDB, not with Python. :mod:`truecount.billing.summary` turns the few groups
they leave into the per-period result.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, cast

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from truecount.billing.buyer import buyer_view, check_statuses, mask_sql, reason_type, status_type
from truecount.billing.invoice import InvoiceMapping, load_invoice_into, periods_complete
from truecount.billing.periods import CELLS as CELLS
from truecount.billing.periods import PeriodResult as PeriodResult
from truecount.billing.sqltext import duck as _sql
from truecount.billing.sqltext import literal as _s
from truecount.billing.sqltext import quoted as _q
from truecount.billing.summary import MAX_PROBLEMS as MAX_PROBLEMS
from truecount.billing.summary import NO_ANCHOR as NO_ANCHOR
from truecount.billing.summary import PERIOD_PATTERNS, Setup, check_id_format, summarize
from truecount.billing.summary import Reconciliation as Reconciliation
from truecount.billing.summary import WaterfallStep as WaterfallStep
from truecount.billing.summary import difference_pct as difference_pct
from truecount.billing.terms import Terms
from truecount.db import one_row as _one
from truecount.db import resources_guard
from truecount.engine.compile import period_key_sql as engine_period_key_sql
from truecount.errors import InputError, Location, Problem
from truecount.workspace import configure

#: Precedence when more than one cell applies to a billed entity: the first wins.
PRECEDENCE: Final[tuple[str, ...]] = (
    "unknown", "duplicate", "vendor_only", "pending", "period_mismatch", "agreed",
)  # fmt: skip

CONDITION_PREFIX: Final[str] = "cond_"

#: Name of the per-entity cell view :func:`reconcile_in` leaves on the connection.
CELLS_TABLE: Final[str] = "reconcile_cells"

#: The table behind :data:`CELLS_TABLE`: every entity the invoice bills or the buyer has a
#: verdict for, with whether the billed side's lines are spread over periods and its first
#: ``billed_at`` besides the cell's columns. Drift reads the buyer's other candidates from it.
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

#: A line's id as a pack names it: its own ``line_id``, or for a line identified by its place
#: in the invoice (``path#row``, see :mod:`.invoice`) the file's name and row without the
#: folders, so the id does not depend on where the invoice file lies.
LINE_ID_SQL: Final[str] = (
    "CASE WHEN line_id = source THEN regexp_replace(source, '^.*[/\\\\]', '') ELSE line_id END"
)
#: With ``line_ids=True``, the cell view also gives per entity how many of its lines have an
#: id and the least of them: the whole ``line_ids`` cell of an entity billed once (almost all
#: of them). They come out of the grouping of the lines that the join needs anyway; joining
#: the ids on afterwards, from a second grouping of ten million lines, cost about 13 CPU s.
LINE_ID_COLUMNS: Final[tuple[str, ...]] = ("id_lines", "first_line_id")
#: The columns of :data:`CELLS_TABLE`, before the conditions' ``cond_*`` columns.
CELL_COLUMNS: Final[tuple[str, ...]] = (
    "entity_id", "cell", "reason", "lines", "billed_period", "billed_amount",
    "buyer_status", "buyer_period", "anchor_ts",
)  # fmt: skip

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


def _definition_setup(definition: Any | None, verdict_cols: Sequence[str]) -> Setup:
    conds = tuple(
        c[len(CONDITION_PREFIX) :] for c in verdict_cols if c.startswith(CONDITION_PREFIX)
    )
    if definition is None:
        return Setup("month", "UTC", conds, None)
    period = getattr(definition, "period", None)
    anchor = getattr(definition, "anchor", None)
    pick = getattr(anchor, "pick", None)
    names = tuple(getattr(definition, "conditions", {}) or {}) or conds
    return Setup(
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
    line_ids: bool = False,
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
    ``line_ids=True`` (with the cell table) adds :data:`LINE_ID_COLUMNS` to its view.
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
            line_ids=line_ids,
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
    line_ids: bool = False,
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
    check_statuses(con, verdicts_table)
    icols = _columns(con, invoice_table)
    setup = _definition_setup(definition, vcols)
    if setup.every not in PERIOD_PATTERNS:
        raise ValueError(f"unknown period '{setup.every}'")

    # 1. invoice lines with their billed period (the period column wins over billed_at).
    has_period = "period" in icols
    # Every line names its period (proven when the invoice was loaded): the period as written
    # is the billed period, without reading billed_at or counting dated lines per entity.
    complete = has_period and periods_complete(con, invoice_table)
    by_billed_at = "billed_at" in icols and not complete
    has_amount = "amount" in icols
    billed_at_key = period_key_sql(_q("billed_at"), setup.every, setup.timezone)
    if has_period and by_billed_at:
        bperiod: exp.Expression = exp.Coalesce(this=_q("period"), expressions=[billed_at_key])
    elif has_period:
        bperiod = _q("period")
    elif by_billed_at:
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
    billed_at = _q("billed_at") if "billed_at" in icols else exp.cast(exp.Null(), "TIMESTAMP")
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

    # 2. one row per billed entity: its lines, first billed period, amount and whether its
    #    lines are spread over periods, in one grouping (the same grouping a hand-written
    #    reconciliation does). It stays inside the single statement of step 4, so the lines
    #    flow from the grouping into the join. The flag is settled here, before the join: the
    #    last period and the number of dated lines it is made of would otherwise cross the
    #    join for every entity (two more columns of ten million rows, about 1.4 CPU s at 10M)
    #    to serve the few entities billed more than once.
    ids = cells and line_ids
    id_cols = f", {', '.join(LINE_ID_COLUMNS)}" if ids else ""
    id_aggs = (
        f", count({LINE_ID_SQL}) AS id_lines, min({LINE_ID_SQL}) AS first_line_id" if ids else ""
    )
    billed_sql = (
        f"SELECT entity_id, lines, billed_period, {_SPREAD} AS spread, billed_amount, "  # noqa: S608
        f"first_billed_at{id_cols} FROM (SELECT entity_id, count(*) AS lines, "
        "min(bperiod) AS billed_period, max(bperiod) AS last_period, "
        f"{'count(*)' if complete else 'count(bperiod)'} AS dated, "
        f"sum(amount) AS billed_amount, min(billed_at) AS first_billed_at{id_aggs} "
        "FROM _tc_lines GROUP BY entity_id)"
    )
    billed_from = cast(exp.Select, sqlglot.parse_one(billed_sql, dialect="duckdb")).subquery("b")

    # 3. the buyer's verdict per entity (collapsing `pick: each` candidates).
    buyer_view(con, verdicts_table, vcols, setup)
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

    # The cell as the enumeration of CELL_VALUES, not as text: the grouping below hashes it
    # and compares it several times a row, one byte instead of a string each time. Each
    # outcome of the CASE is a constant of the enumeration, so no row casts a string to it
    # (a cast of the whole CASE looks every row's text up: about 0.3 CPU s at 10M).
    typed = cell.copy()
    for outcome in [*(i.args["true"] for i in typed.args["ifs"]), typed.args["default"]]:
        outcome.replace(exp.cast(outcome.copy(), _cell_type()))
    cell_node = next(e for e in joined.expressions if e.alias == "cell")
    cell_node.set("this", typed)

    # 5. the counts. With a cell table, the join is written once with every entity either side
    #    knows (ENTITIES_TABLE) and the cells are a view over it: counted entities the vendor
    #    never billed belong to a cell only inside the invoice's span, which is known once the
    #    join is written; drift reads the same table for the buyer's other candidates. Without
    #    one, the counts come straight from the join and counted entities outside the span are
    #    dropped after counting, which gives the same numbers. Billed entities without a
    #    verdict are grouped one by one and sorted out afterwards: in the export without an
    #    anchor, or unknown.
    if cells:
        # The buyer's status and reason as enumerations, and whether the lines are spread
        # instead of how many are dated: at ten million rows the table is about 1.4 GB, over
        # the default budget with the verdicts beside it, and every byte a row spills.
        status_node = next(e for e in joined.expressions if e.alias == "buyer_status")
        status_node.set("this", exp.cast(exp.column("status", "v"), status_type()))
        reasons = reason_type(con, verdicts_table, vcols, setup)
        if reasons is not None:
            reason_node = next(e for e in joined.expressions if e.alias == "reason")
            reason_node.set("this", exp.cast(exp.column("primary_reason", "v"), reasons))
        extra = sqlglot.select(
            exp.column("spread", "b").as_("spread"),
            exp.column("first_billed_at", "b").as_("first_billed_at"),
            *[exp.column(c, "b").as_(c) for c in (LINE_ID_COLUMNS if ids else ())],
        )
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
        _aggregate(con, billed_or_counted, setup.conditions, "c.reason", nv_ids=False)
        first, last, _ = entity_span(con)
        in_cell_sql = in_cell(first, last).sql(dialect="duckdb")
        public = ", ".join(
            f"CAST({c} AS VARCHAR) AS {c}"
            if c in ("cell", "buyer_status", "reason")
            else _q(c).sql(dialect="duckdb")
            for c in (
                *CELL_COLUMNS,
                *(f"{CONDITION_PREFIX}{c}" for c in setup.conditions),
                *(LINE_ID_COLUMNS if ids else ()),
            )
        )
        con.execute(
            f"CREATE TEMP VIEW {CELLS_TABLE} AS SELECT {public} "  # noqa: S608 - names checked
            f"FROM {ENTITIES_TABLE} WHERE {in_cell_sql}"
        )
    else:
        con.execute(f"DROP VIEW IF EXISTS {CELLS_TABLE}")
        con.execute(f"DROP TABLE IF EXISTS {ENTITIES_TABLE}")
        extra = sqlglot.select(
            exp.column("spread", "b").as_("spread"),
            exp.column("fmask", "v").as_("fmask"),
            exp.column("other_reason", "v").as_("other_reason"),
        )
        full = joined.where(
            exp.or_(
                exp.Not(this=exp.Is(this=exp.column("entity_id", "b"), expression=exp.Null())),
                exp.EQ(this=exp.column("status", "v"), expression=_s("counted")),
            )
        ).select(*extra.expressions)
        # Only the mask and the raw reason, computed with the verdicts, cross the join: the
        # conditions and the primary reason go unread, so DuckDB leaves them out of it.
        _aggregate(con, f"({_sql(full)}) AS c", setup.conditions, "c.other_reason", fmask="c.fmask")
    _resolve_no_verdict(con, known_table, update_cells=cells)

    return summarize(
        con,
        setup,
        terms,
        as_of,
        CELLS_TABLE if fetch_entities else None,
        has_amount,
        verdicts_table,
        verdict_periods,
    )


def _check_currency(con: duckdb.DuckDBPyConnection, invoice: str, currency: str) -> None:
    """Refuse an invoice in a currency other than the terms', naming the file and the row of
    its first such line when the invoice was loaded from files (``source_file``)."""
    row = _one(
        con,
        f"SELECT upper(currency), count(*) FROM {invoice} WHERE currency IS NOT NULL "  # noqa: S608
        "AND upper(currency) <> ? GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
        [currency],
    )
    if row is None:
        return
    where = Location(column="currency")
    columns = {
        str(r[0])
        for r in con.execute(f"SELECT * FROM {invoice} LIMIT 0").description or ()  # noqa: S608
    }
    if {"source_file", "source_row"} <= columns:
        order = "line_no" if "line_no" in columns else "source_file, source_row"
        first = _one(
            con,
            f"SELECT source_file, source_row FROM {invoice} "  # noqa: S608
            f"WHERE upper(currency) = ? ORDER BY {order} LIMIT 1",
            [row[0]],
        )
        if first is not None and first[0] is not None:
            where = Location(
                file=str(first[0]),
                row=None if first[1] is None else int(first[1]),
                column="currency",
            )
    line = "line" if row[1] == 1 else "lines"
    raise InputError(
        Problem(
            f"the invoice bills in {row[0]} ({row[1]} {line}) but the terms are in {currency}",
            where,
            "reconcile each currency under terms in that currency",
        )
    )


def entity_span(con: duckdb.DuckDBPyConnection) -> tuple[Any, Any, Any]:
    """The billed periods of the last reconciliation on ``con``: the first billed period, the
    last one any line bills, and the last first-billed period (drift's span).

    The reconciliation measures them while it groups the cells (:func:`_aggregate`) and keeps
    the one row on the connection, so drift reads it instead of scanning every entity again."""
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


#: Whether a billed entity's lines are spread over periods (more than one line, and not all of
#: them dated in its first billed period), as SQL over the grouped lines of one entity.
_SPREAD: Final[str] = (
    "CASE WHEN lines > 1 AND NOT coalesce(dated = lines AND billed_period = last_period, false) "
    "THEN true END"
)


def _aggregate(
    con: duckdb.DuckDBPyConnection,
    source: str,
    conditions: Sequence[str],
    other_reason: str,
    *,
    nv_ids: bool = True,
    fmask: str | None = None,
) -> None:
    """Every count a reconciliation reports, in one grouping of the per-entity cells, and the
    invoice's span (:func:`entity_span`).

    ``source`` is the cell table or the join that would fill it, as fixed SQL text built here;
    ``other_reason`` gives the reason of a vendor_only entity that fails no condition
    (excluded, or not counted for a reason of its own); ``fmask``, when given, is a column that
    already holds the failing conditions' mask of every not-counted verdict (else it is
    computed here from the ``cond_*`` columns).

    The grouping keys are the entity's period and cell, and a few more that are NULL for
    almost every entity, so the groups stay few and the per-entity work stays a hash of
    mostly-constant columns: the anchor period and status where they can differ from the
    cell's (period_mismatch, duplicate), the failing conditions of vendor_only entities as a
    bit mask, the number of lines of an entity without a verdict, and whether its lines are
    spread over periods. Every figure is a sum over these groups. The ids of the entities
    without a verdict (for :func:`_resolve_no_verdict`) are collected as a list per group
    rather than made a key: a million of them as keys would be a million groups, each with
    every aggregate, which cost as much as the rest of the grouping. ``nv_ids=False`` leaves
    the list out when the cell table is written: the entities without a verdict are then
    read from it.
    """
    fmask_when = (
        f"THEN {fmask}"
        if fmask is not None
        else f"AND c.buyer_status = 'not_counted' THEN {mask_sql(conditions, 'c.')}"
    )
    nv_lines, nv_list = (
        ("CASE WHEN c.cell = '_no_verdict' THEN c.lines END", "list(c.entity_id) FILTER "
         "(WHERE c.cell = '_no_verdict') AS nv_ids, ")
        if nv_ids
        else ("CAST(NULL AS BIGINT)", "")
    )  # fmt: skip
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _tc_agg AS SELECT "  # noqa: S608 - fixed text and names
        "coalesce(c.billed_period, c.buyer_period, '-') AS p, c.cell, "
        "CASE WHEN c.cell IN ('period_mismatch', 'duplicate') THEN c.buyer_period END "
        "AS buyer_period, "
        "CASE WHEN c.cell = 'duplicate' THEN c.buyer_status = 'counted' END AS dup_counted, "
        f"CASE WHEN c.cell = 'vendor_only' {fmask_when} END AS fmask, "
        f"CASE WHEN c.cell = 'vendor_only' THEN {other_reason} END AS other_reason, "
        f"{nv_lines} AS nv_lines, c.spread, "
        f"{nv_list}count(*) AS n, sum(c.lines) AS lines, sum(c.billed_amount) AS amount, "
        "count(c.billed_amount) AS amounts, min(c.billed_period) AS first_billed, "
        f"max(c.billed_period) AS last_first FROM {source} GROUP BY ALL"
    )
    # The last period any line bills is the last first-billed one, unless an entity's lines
    # are spread over periods: only then are the lines read again for it.
    spread = _one(con, "SELECT bool_or(spread) FROM _tc_agg")
    last = "(SELECT max(bperiod) FROM _tc_lines)" if spread and spread[0] else "max(last_first)"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_SPAN_TABLE} AS SELECT min(first_billed) AS first, "  # noqa: S608
        f"{last} AS last, max(last_first) AS last_first FROM _tc_agg"
    )
    # Counted entities the vendor never billed matter only inside the invoice's span.
    con.execute(
        f"DELETE FROM _tc_agg WHERE cell = 'buyer_only' AND p NOT BETWEEN "  # noqa: S608
        f"(SELECT first FROM {_SPAN_TABLE}) AND (SELECT last FROM {_SPAN_TABLE})"
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
            "CREATE OR REPLACE TEMP TABLE _tc_nv AS SELECT unnest(nv_ids) AS entity_id, "
            "nv_lines AS lines, p FROM _tc_agg WHERE nv_lines IS NOT NULL"
        )
    n = _one(con, "SELECT count(*) FROM _tc_nv")
    if known_table is not None and n and int(n[0]) > 0:
        con.execute(
            # A semi join: each id at most once, with the hash table built on the few ids
            # rather than on the export's rows, and no DISTINCT over the matches.
            "CREATE OR REPLACE TEMP TABLE _tc_nv_known AS SELECT n.entity_id "  # noqa: S608
            f"FROM _tc_nv n SEMI JOIN {known_table} k ON k.entity_id = n.entity_id"
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
        check_id_format(con, known_table)
