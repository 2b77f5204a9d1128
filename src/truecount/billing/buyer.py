"""The buyer's side of a reconciliation: one verdict per entity, in the narrow forms the join
with the invoice carries.

Split from :mod:`.reconcile`, which joins this side with the billed entities and counts the
cells: the checks of a verdict table, the view of one verdict per entity (the reason a
verdict does not count, its failing conditions as a bit mask), and the enumerations the
per-entity table stores the status and the reason as.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import duckdb
import sqlglot
from sqlglot import exp

from truecount.billing.sqltext import duck as _sql
from truecount.billing.sqltext import literal as _s
from truecount.billing.sqltext import quoted as _q
from truecount.billing.summary import NO_ANCHOR, Setup
from truecount.db import one_row as _one
from truecount.engine.compile import CONDITION_PREFIX
from truecount.engine.run import STATUSES
from truecount.errors import InputError, Location, Problem

#: The integer type of the failing-condition mask, by the most conditions it holds.
_MASK_TYPES: Final[tuple[tuple[int, str], ...]] = (
    (8, "UTINYINT"), (16, "USMALLINT"), (32, "UINTEGER"), (64, "UBIGINT"), (128, "UHUGEINT"),
)  # fmt: skip


def check_statuses(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Refuse a verdict table with a status outside :data:`~truecount.engine.run.STATUSES`.

    The cells are decided by the status: an unknown or missing one would otherwise fall
    through to ``agreed`` and be billed as counted, and the cell table, which stores the status
    as an enumeration, could not hold it. A count always writes known statuses; this guards a
    verdict table a caller of :func:`reconcile` built."""
    known = ", ".join(_s(s).sql(dialect="duckdb") for s in STATUSES)
    rows = con.execute(
        f"SELECT status, count(*) FROM {table} "  # noqa: S608 - checked name, fixed text
        f"WHERE status IS NULL OR status NOT IN ({known}) GROUP BY 1 ORDER BY 2 DESC LIMIT 3"
    ).fetchall()
    if rows:
        found = ", ".join(
            f"{'NULL' if s is None else repr(s)} ({n} row{'' if n == 1 else 's'})" for s, n in rows
        )
        raise InputError(
            Problem(
                f"the verdict table has statuses no count writes: {found}",
                Location(column="status"),
                f"a verdict's status is one of {', '.join(STATUSES)}",
            )
        )


def buyer_view(
    con: duckdb.DuckDBPyConnection, table: str, vcols: Sequence[str], setup: Setup
) -> None:
    """One row per entity: status, period, anchor time and the first failing condition.

    ``fmask`` and ``other_reason`` say the same as the conditions and the reason in the form
    the grouping without a cell table counts them: computing them here, once per verdict,
    lets the join carry two narrow columns instead of every condition and the reason. The
    reason is kept only where the summary reads it, for an entity that fails no condition
    (excluded, or not counted for a reason of its own): a string on every not-counted row
    would cost the join about a second at 10M.
    """
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
    all_true = [f"{_sql(_q(CONDITION_PREFIX + c))} IS TRUE" for c in setup.conditions]
    select = sqlglot.select(
        exp.alias_(exp.cast(_q("entity_id"), exp.DataType.build("VARCHAR")), "entity_id"),
        exp.alias_(_q("status"), "status"),
        exp.alias_(_q("period"), "period"),
        exp.alias_(anchor_ts, "anchor_ts"),
        exp.alias_(primary, "primary_reason"),
        exp.alias_(reason_col.copy(), "reason_raw"),
        exp.alias_(
            sqlglot.parse_one(
                f"CASE WHEN status = 'not_counted' THEN {mask_sql(setup.conditions, '')} END",
                dialect="duckdb",
            ),
            "fmask",
        ),
        exp.alias_(
            sqlglot.parse_one(
                "CASE WHEN status = 'excluded' OR (status = 'not_counted' AND "
                f"{' AND '.join(all_true) or 'true'}) "
                f"THEN coalesce({_sql(reason_col)}, status) END",
                dialect="duckdb",
            ),
            "other_reason",
        ),
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


def status_type() -> exp.DataType:
    """The enumeration of the verdict statuses, written inline: a named type would be an object
    in the workspace's catalog, which a read-only caller must not create."""
    return exp.DataType(
        this=exp.DataType.Type.ENUM, expressions=[_s(v) for v in STATUSES], nested=False
    )


#: The most distinct reasons the cell table holds as an enumeration; past it (free text per
#: verdict, say) the reason stays text.
_MAX_ENUM_REASONS: Final[int] = 1000


def reason_type(
    con: duckdb.DuckDBPyConnection, table: str, vcols: Sequence[str], setup: Setup
) -> exp.DataType | None:
    """Every primary reason the cell table can hold, as an inline enumeration: the
    conditions, the words a verdict without a reason of its own gets, the no-anchor reason
    set afterwards, and the verdicts' own reasons. One byte a row instead of a string's
    sixteen; None (the reason stays text) when the verdicts carry more distinct reasons than
    an enumeration should hold."""
    own: list[str] = []
    if "reason" in vcols:
        rows = con.execute(
            f"SELECT DISTINCT CAST(reason AS VARCHAR) FROM {table} "  # noqa: S608 - checked name
            f"WHERE reason IS NOT NULL LIMIT {_MAX_ENUM_REASONS + 1}"
        ).fetchall()
        if len(rows) > _MAX_ENUM_REASONS:
            return None
        own = [str(r[0]) for r in rows]
    values = sorted({*setup.conditions, "not_counted", "excluded", NO_ANCHOR, *own})
    return exp.DataType(
        this=exp.DataType.Type.ENUM, expressions=[_s(v) for v in values], nested=False
    )


def mask_sql(conditions: Sequence[str], qualifier: str) -> str:
    """The failing conditions of a verdict as a bit mask (bit i: condition i is not true), as
    fixed SQL text over the ``cond_*`` columns qualified by ``qualifier``.

    The mask takes the narrowest unsigned integer type that holds it: it crosses a join of
    millions of rows, where a 16-byte integer, and its arithmetic, cost a second at 10M.
    """
    if len(conditions) > 120:
        raise InputError(Problem("a definition with more than 120 conditions cannot be reconciled"))
    kind = next(t for n, t in _MASK_TYPES if len(conditions) <= n)
    return (
        " + ".join(
            f"(CAST({qualifier}{_q(CONDITION_PREFIX + name).sql(dialect='duckdb')} IS NOT TRUE "
            f"AS {kind}) * CAST({1 << i} AS {kind}))"
            for i, name in enumerate(conditions)
        )
        or f"CAST(0 AS {kind})"
    )
