"""Compile a definition into one SQL query, built as a SQLGlot syntax tree.

The query has three steps, each a CTE with a comment, so that it reads as the contract appendix:

1. ``visible`` - the events known at the as-of time;
2. ``anchors`` - one row per candidate outcome (the anchor event, picked first / last / each);
3. ``matched`` - each anchor joined once to its entity's events of the types the conditions
   use, with one conditional aggregate per leaf condition (hits in the window, and whether the
   entity has any data of that type at all);

and a final ``SELECT`` that combines leaves into conditions and conditions into a status, a
reason, a quantity and a period. One join and one grouping, whatever the number of conditions:
this is what a hand-written query would do, and it is what keeps the engine fast.

User text (types, actors, where literals, names) only ever becomes a SQL *literal* or a quoted
*identifier* node in the tree; no text is pasted into SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlglot import exp

from truecount.definition.duration import describe_duration, format_duration
from truecount.definition.model import (
    AggregateSpec,
    Condition,
    CountSpec,
    Definition,
    EventFilter,
    QuantitySpec,
    Selector,
)
from truecount.definition.where import (
    And,
    Between,
    Compare,
    Expr,
    Field,
    InList,
    IsNull,
    Lit,
    Not,
    Or,
    fields_used,
)

#: Dialects `truecount sql` can print (SQLGlot names).
DIALECTS: Final[tuple[str, ...]] = ("duckdb", "spark", "snowflake", "bigquery", "trino", "postgres")

#: Verdict columns before the per-condition ones, in order.
VERDICT_COLUMNS: Final[tuple[str, ...]] = (
    "entity_id",
    "anchor_event_id",
    "anchor_ts",
    "period",
    "status",
    "quantity",
    "reason",
)
CONDITION_PREFIX: Final[str] = "cond_"

_E: Final[str] = "e"  # alias of the joined events
_A: Final[str] = "a"  # alias of the anchors

_PERIOD_FORMAT: Final[dict[str, str]] = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}


def _safe_comment(text: str) -> str:
    """Comments may carry user text (types, where literals); never let it close the comment."""
    return text.replace("*/", "* /").replace("/*", "/ *").replace("\n", " ")


def _col(name: str, table: str | None = None, quoted: bool = False) -> exp.Column:
    return exp.column(name, table=table, quoted=quoted)


def _str(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def _num(value: float | int) -> exp.Expr:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return exp.Literal.number(value)


def _interval(seconds: int) -> exp.Interval:
    """An exact interval in the largest unit that divides it (``INTERVAL '14' DAY``)."""
    text = format_duration(seconds)
    unit = {"d": "DAY", "h": "HOUR", "m": "MINUTE", "s": "SECOND"}[text[-1]]
    return exp.Interval(this=_str(text[:-1]), unit=exp.Var(this=unit))


def _ts_literal(value: dt.datetime) -> exp.Expr:
    text = value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return exp.cast(_str(text), exp.DataType.build("TIMESTAMP"))


# --------------------------------------------------------------------------- where


def _field_sql(f: Field, numeric: bool, table: str) -> exp.Expr:
    """A field of the event; an attribute is read from the JSON text as text, or as a number.

    The path is a JSONPath *tree* (not a ``'$.key'`` string), so each dialect writes its own
    form (``->> '$.key'``, ``GET_JSON_OBJECT``, ``JSON_EXTRACT_PATH_TEXT(..., 'key')``). A number
    is read with a cast that yields NULL on text that is not a number (``safe``: Spark 4's ANSI
    mode would otherwise fail the whole query on one ``"n/a"``); see :func:`portable` for the
    engines without such a cast.
    """
    if f.attr is None:
        return _col(f.name, table)
    path = exp.JSONPath(expressions=[exp.JSONPathRoot(), exp.JSONPathKey(this=f.attr)])
    text = exp.JSONExtractScalar(this=_col("attrs", table), expression=path)
    if numeric:
        return exp.TryCast(this=text, to=exp.DataType.build("DOUBLE"), safe=True)
    return text


def _lit_sql(lit: Lit) -> exp.Expr:
    v = lit.value
    if isinstance(v, bool):
        return _str("true" if v else "false")  # attrs hold JSON text; value/actor never bool
    if isinstance(v, int | float):
        return _num(v)
    if v is None:
        return exp.Null()
    return _str(v)


_CMP: Final[dict[str, type[exp.Binary]]] = {
    "==": exp.EQ,
    "!=": exp.NEQ,
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
}


def where_sql(expr: Expr, table: str = _E) -> exp.Expr:
    """The SQL tree of a where expression over the events aliased ``table``."""

    def numeric(*lits: Lit) -> bool:
        return any(isinstance(x.value, int | float) and not isinstance(x.value, bool) for x in lits)

    match expr:
        case Compare(op=op, field=f, literal=lit):
            return _CMP[op](this=_field_sql(f, numeric(lit), table), expression=_lit_sql(lit))
        case InList(field=f, items=items, negated=neg):
            node: exp.Expr = exp.In(
                this=_field_sql(f, numeric(*items), table),
                expressions=[_lit_sql(i) for i in items],
            )
            return exp.Not(this=node) if neg else node
        case IsNull(field=f, negated=neg):
            node = exp.Is(this=_field_sql(f, False, table), expression=exp.Null())
            return exp.Not(this=node) if neg else node
        case Between(field=f, low=lo, high=hi):
            return exp.Between(
                this=_field_sql(f, numeric(lo, hi), table), low=_lit_sql(lo), high=_lit_sql(hi)
            )
        case And(left=a, right=b):
            return exp.And(this=_paren(where_sql(a, table)), expression=_paren(where_sql(b, table)))
        case Or(left=a, right=b):
            return exp.Or(this=_paren(where_sql(a, table)), expression=_paren(where_sql(b, table)))
        case Not(operand=a):
            return exp.Not(this=_paren(where_sql(a, table)))
    raise AssertionError(f"unknown where node {expr!r}")  # pragma: no cover


def _paren(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.And | exp.Or):
        return exp.Paren(this=node)
    return node


def filter_sql(flt: EventFilter, table: str = _E, unknown_actor: bool = False) -> exp.Expr:
    """Type, actor and where of an event filter as one predicate.

    ``unknown_actor``: an event with no actor (NULL) matches the actor filter too, because it
    *may* be by that actor, and a ``where`` that reads ``actor`` and is unknown on it (SQL
    NULL) counts as true; see :attr:`Leaf.unknown_actor` for when a leaf reads it so.
    """
    parts: list[exp.Expr] = [exp.EQ(this=_col("type", table), expression=_str(flt.type))]
    if flt.actor is not None:
        actor: exp.Expr = exp.EQ(this=_col("actor", table), expression=_str(flt.actor))
        if unknown_actor:
            unknown = exp.Is(this=_col("actor", table), expression=exp.Null())
            actor = exp.Paren(this=exp.Or(this=actor, expression=unknown))
        parts.append(actor)
    if flt.where_expr is not None:
        where = where_sql(flt.where_expr, table)
        if unknown_actor and "actor" in fields_used(flt.where_expr):
            unknown = exp.Is(this=_col("actor", table), expression=exp.Null())
            where = exp.Coalesce(this=exp.Paren(this=where), expressions=[unknown])
        parts.append(_paren(where))
    return _and(parts)


def reads_actor(flt: EventFilter) -> bool:
    """The filter decides on the actor: ``actor:`` or a ``where`` that reads ``actor``."""
    if flt.actor is not None:
        return True
    return flt.where_expr is not None and "actor" in fields_used(flt.where_expr)


def _and(parts: list[exp.Expr]) -> exp.Expr:
    out = parts[0]
    for p in parts[1:]:
        out = exp.And(this=out, expression=p)
    return out


def window_sql(sel: Selector, table: str = _E, anchor_type: str | None = None) -> list[exp.Expr]:
    """Window bounds relative to the anchor (both ends inclusive), minus the anchor event.

    The anchor event can only match a selector of its own type, so the ``event_id`` test is
    written only then (``anchor_type`` None means: always write it); leaving it out elsewhere
    spares the engine reading every event's id.
    """
    ts = _col("ts", table)
    anchor_ts = _col("anchor_ts", _A)
    parts: list[exp.Expr] = []
    if anchor_type is None or anchor_type == sel.type:
        parts.append(exp.NEQ(this=_col("event_id", table), expression=_col("anchor_event_id", _A)))
    if sel.within is not None:
        parts.append(exp.GTE(this=ts, expression=anchor_ts))
        parts.append(
            exp.LTE(this=ts, expression=exp.Add(this=anchor_ts, expression=_interval(sel.within)))
        )
    elif sel.before is not None:
        parts.append(
            exp.GTE(this=ts, expression=exp.Sub(this=anchor_ts, expression=_interval(sel.before)))
        )
        parts.append(exp.LTE(this=ts, expression=anchor_ts))
    return parts


def selector_predicate(
    sel: Selector, table: str = _E, anchor_type: str | None = None, unknown_actor: bool = False
) -> exp.Expr:
    """Everything an event must satisfy to be seen by a leaf condition for this anchor."""
    return _and([filter_sql(sel, table, unknown_actor), *window_sql(sel, table, anchor_type)])


# --------------------------------------------------------------------------- description


def describe_selector(sel: Selector) -> str:
    """Plain words for a selector, used in SQL comments and reports."""
    words = sel.type
    if sel.actor is not None:
        words += f" by {sel.actor}"
    if sel.where_expr is not None:
        words += f" where {sel.where_expr}"
    if sel.within is not None:
        words += f" within {describe_duration(sel.within)} after the anchor"
    elif sel.before is not None:
        words += f" within {describe_duration(sel.before)} before the anchor"
    else:
        words += " at any time"
    return words


def describe_condition(cond: Condition) -> str:
    """One line of plain words for a condition (recursive for combinators)."""
    leaf = cond.leaf
    text: str
    if isinstance(leaf, AggregateSpec):
        cmp = " and ".join(f"{op} {_fmt(v)}" for op, v in leaf.comparisons())
        text = f"{leaf.fn} of {leaf.field} over {describe_selector(leaf)} is {cmp}"
    elif isinstance(leaf, CountSpec):
        cmp = " and ".join(f"{op} {_fmt(v)}" for op, v in leaf.comparisons())
        text = f"number of {describe_selector(leaf)} is {cmp}"
    elif leaf is not None:
        text = f"{cond.form} {describe_selector(leaf)}"
    else:
        inner = "; ".join(describe_condition(c) for c in cond.children)
        text = f"not ({inner})" if cond.form == "not" else f"{cond.form} of ({inner})"
    if cond.if_no_data is not None:
        text += f" [if no {leaf.type if leaf else ''} data: {cond.if_no_data}]"
    return text


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


# --------------------------------------------------------------------------- plan


@dataclass
class Leaf:
    """A leaf condition with the aggregate columns it owns in ``matched``.

    ``unknown_actor``: events of the leaf's type (and where) whose actor is NULL count as hits
    of its actor filter (``actor:``, or a ``where`` reading ``actor``, unknown on them). An
    event with no actor may be by that actor, so it must never let a
    condition pass by the *absence* of that actor's events: an ``absent`` leaf (or an ``exists``
    under an odd number of ``not``) cannot prove absence while such an event is in its window,
    and fails. Where the hit makes the condition pass instead (a plain ``exists``), the NULL is
    not a hit: an unknown actor never proves existence either. ``count`` and ``aggregate``
    leaves count known actors only; ``check`` reports the unknown ones per condition.
    """

    cond: Condition
    sel: Selector
    index: int
    unknown_actor: bool = False

    @property
    def hits(self) -> str:
        return f"leaf{self.index}_hits"

    @property
    def data(self) -> str:
        return f"leaf{self.index}_has_data"


@dataclass
class _Plan:
    definition: Definition
    leaves: list[Leaf] = field(default_factory=list)
    quantity_cols: list[tuple[str, QuantitySpec]] = field(default_factory=list)

    def leaf_for(self, cond: Condition) -> Leaf:
        return next(leaf for leaf in self.leaves if leaf.cond is cond)


def plan_leaves(definition: Definition) -> list[Leaf]:
    """The leaf conditions in the order the compiler numbers them (``leaf1``, ``leaf2``...)."""
    return _plan(definition).leaves


def _plan(definition: Definition) -> _Plan:
    plan = _Plan(definition)

    def walk(cond: Condition, negated: bool) -> None:
        if cond.leaf is not None:
            # a hit makes the condition fail when: absent (not negated) / exists (negated)
            hit_fails = (cond.form == "absent") != negated and cond.form in ("absent", "exists")
            unknown = hit_fails and reads_actor(cond.leaf)
            plan.leaves.append(Leaf(cond, cond.leaf, len(plan.leaves) + 1, unknown))
        for child in cond.children:
            walk(child, negated ^ (cond.form == "not"))

    for cond in definition.conditions.values():
        walk(cond, False)
    q = definition.quantity
    while isinstance(q, QuantitySpec):
        plan.quantity_cols.append((f"quantity{len(plan.quantity_cols) + 1}", q))
        q = q.minus if q.minus is not None else 0.0
    return plan


def _leaf_aggregates(leaf: Leaf, anchor_type: str) -> list[exp.Expr]:
    """The aggregate columns of one leaf: its measure in the window, and data presence."""
    sel = leaf.sel
    pred = selector_predicate(sel, anchor_type=anchor_type, unknown_actor=leaf.unknown_actor)
    measure: exp.Expr
    if isinstance(sel, AggregateSpec):
        measure = _field_aggregate(sel.fn, sel.field, pred)
    else:
        measure = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=pred))
    measure_col = exp.alias_(measure, leaf.hits)
    words = describe_selector(sel)
    if leaf.unknown_actor:
        words += " (an event with no actor may be by them: it counts)"
    measure_col.add_comments([_safe_comment(f"leaf {leaf.index}: {words}")])
    cols: list[exp.Expr] = [measure_col]
    if leaf.cond.if_no_data is not None:
        data = exp.Filter(
            this=exp.Count(this=exp.Star()),
            expression=exp.Where(this=exp.EQ(this=_col("type", _E), expression=_str(sel.type))),
        )
        cols.append(exp.alias_(data, leaf.data))
    return cols


def _field_aggregate(fn: str, field_name: str, pred: exp.Expr) -> exp.Expr:
    value = _field_value(field_name)
    agg: exp.Expr
    if fn in {"first", "last"}:
        # The first / last event *with* a value (docs/definition.md): the null test is written
        # out because engines differ here (DuckDB's ARG_MIN skips a null value, Spark's MIN_BY
        # returns it).
        key = _ordering_key()
        agg = (exp.ArgMin if fn == "first" else exp.ArgMax)(this=value, expression=key)
        pred = exp.And(
            this=pred, expression=exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))
        )
    elif fn == "count":
        agg = exp.Count(this=exp.Star())
    else:
        cls = {"min": exp.Min, "max": exp.Max, "sum": exp.Sum, "avg": exp.Avg}[fn]
        agg = cls(this=value)
    return exp.Filter(this=agg, expression=exp.Where(this=pred))


def _field_value(field_name: str) -> exp.Expr:
    if field_name == "value":
        return _col("value", _E)
    return _field_sql(Field("attrs", field_name.split(".", 1)[1]), True, _E)


def _ordering_key() -> exp.Expr:
    """Event order (ts, then seq, then event_id) as one sortable text key, portable to any SQL.

    ``arg_min`` needs a single ordering value; a fixed-width text of the timestamp, the sequence
    number and the event id sorts exactly as the three columns would.
    """
    ts_text = exp.TimeToStr(this=_col("ts", _E), format=_str("%Y-%m-%d %H:%M:%S.%f"))
    # An event without seq sorts after those with one at the same instant ('~' > any digit),
    # as docs/definition.md says and as the anchor's ORDER BY ... NULLS LAST does.
    seq_text = exp.Coalesce(
        this=exp.func(
            "LPAD", exp.cast(_col("seq", _E), exp.DataType.build("VARCHAR")), _num(20), _str("0")
        ),
        expressions=[_str("~")],
    )
    return exp.func(
        "CONCAT",
        ts_text,
        _str("|"),
        seq_text,
        _str("|"),
        exp.Coalesce(this=_col("event_id", _E), expressions=[_str("")]),
    )


def _leaf_value(leaf: Leaf) -> exp.Expr:
    """The boolean result of a leaf in the final select, before if_no_data."""
    sel = leaf.sel
    hits = _col(leaf.hits, "m")
    form = leaf.cond.form
    if form == "exists":
        return exp.GT(this=hits, expression=_num(0))
    if form == "absent":
        return exp.EQ(this=hits, expression=_num(0))
    assert isinstance(sel, CountSpec | AggregateSpec)
    ops = {">=": exp.GTE, "<=": exp.LTE, ">": exp.GT, "<": exp.LT, "=": exp.EQ}
    tests: list[exp.Expr] = [ops[op](this=hits, expression=_num(v)) for op, v in sel.comparisons()]
    return exp.Coalesce(this=exp.Paren(this=_and(tests)), expressions=[exp.false()])


def _cond_value(plan: _Plan, cond: Condition) -> exp.Expr:
    """A condition's boolean with if_no_data pass/fail applied (never null)."""
    if cond.leaf is not None:
        leaf = plan.leaf_for(cond)
        value = _leaf_value(leaf)
        if cond.if_no_data in {"pass", "fail"}:
            no_data = exp.EQ(this=_col(leaf.data, "m"), expression=_num(0))
            forced = exp.true() if cond.if_no_data == "pass" else exp.false()
            return exp.Case(ifs=[exp.If(this=no_data, true=forced)], default=value)
        return value
    kids: list[exp.Expr] = [exp.Paren(this=_cond_value(plan, c)) for c in cond.children]
    if cond.form == "not":
        return exp.Not(this=kids[0])
    if cond.form == "all":
        return _and(kids)
    out: exp.Expr = kids[0]
    for k in kids[1:]:
        out = exp.Or(this=out, expression=k)
    return out


def _excluded_leaves(plan: _Plan, cond: Condition) -> list[Leaf]:
    found: list[Leaf] = []
    if cond.leaf is not None and cond.if_no_data == "exclude":
        found.append(plan.leaf_for(cond))
    for child in cond.children:
        found.extend(_excluded_leaves(plan, child))
    return found


def _no_data(leaves: list[Leaf]) -> exp.Expr | None:
    tests: list[exp.Expr] = [
        exp.EQ(this=_col(leaf.data, "m"), expression=_num(0)) for leaf in leaves
    ]
    if not tests:
        return None
    out = tests[0]
    for t in tests[1:]:
        out = exp.Or(this=out, expression=t)
    return exp.Paren(this=out)


def _period_key(definition: Definition) -> exp.Expr:
    """The period key of the anchor on the wall clock of the definition's time zone."""
    p = definition.period
    return period_key_sql(_col("anchor_ts", "m"), p.every, p.timezone)


def period_key_sql(column: exp.Expr, every: str, timezone: str) -> exp.Expr:
    """The period key (``2026-01``, ``2026-W03``...) of a naive-UTC timestamp column.

    One function for every place a time becomes a period (anchors here, ``billed_at`` in
    reconciliation), so that the two can never disagree about a boundary.
    """
    local: exp.Expr = column
    tz = timezone
    if tz != "UTC":
        local = exp.ConvertTimezone(source_tz=_str("UTC"), target_tz=_str(tz), timestamp=local)
    if every in _PERIOD_FORMAT:
        return exp.TimeToStr(this=local, format=_str(_PERIOD_FORMAT[every]))
    # EXTRACT is the one spelling of a date part every engine reads (PostgreSQL has no
    # QUARTER() or DAYOFYEAR() function).
    if every == "quarter":
        quarter = exp.cast(_extract("QUARTER", local), exp.DataType.build("VARCHAR"))
        return exp.func("CONCAT", exp.TimeToStr(this=local, format=_str("%Y")), _str("-Q"), quarter)
    # ISO week: the week belongs to the year of its Thursday; its number counts Thursdays.
    monday = exp.DateTrunc(unit=exp.Var(this="WEEK"), this=local)  # type: ignore[no-untyped-call]
    thursday = exp.Add(this=monday, expression=_interval(3 * 86400))
    day_of_year = _extract("DOY", thursday)
    week_no = exp.Add(
        this=exp.IntDiv(
            this=exp.Paren(this=exp.Sub(this=day_of_year, expression=_num(1))), expression=_num(7)
        ),
        expression=_num(1),
    )
    week_text = exp.func(
        "LPAD", exp.cast(week_no, exp.DataType.build("VARCHAR")), _num(2), _str("0")
    )
    return exp.func(
        "CONCAT", exp.TimeToStr(this=thursday, format=_str("%Y")), _str("-W"), week_text
    )


def _extract(part: str, value: exp.Expr) -> exp.Expr:
    """``EXTRACT(part FROM value)`` as a whole number (PostgreSQL's EXTRACT gives a numeric)."""
    return exp.cast(
        exp.Extract(this=exp.Var(this=part), expression=value), exp.DataType.build("INT")
    )


def _quantity(plan: _Plan) -> exp.Expr:
    """``aggregate - (minus)``, recursively: ``a minus (b minus 1)`` is ``a - (b - 1)``."""
    names = iter(name for name, _ in plan.quantity_cols)

    def value(q: float | QuantitySpec) -> exp.Expr:
        if not isinstance(q, QuantitySpec):
            return _num(float(q))
        term: exp.Expr = exp.Coalesce(this=_col(next(names), "m"), expressions=[_num(0)])
        if q.minus is None:
            return term
        return exp.Sub(this=term, expression=exp.Paren(this=value(q.minus)))

    return value(plan.definition.quantity)


def _quantity_aggregates(plan: _Plan) -> list[exp.Expr]:
    cols: list[exp.Expr] = []
    for name, spec in plan.quantity_cols:
        sel = spec.agg
        pred = selector_predicate(sel, anchor_type=plan.definition.anchor.type)
        agg = _field_aggregate(spec.fn, sel.field, pred)
        col = exp.alias_(agg, name)
        col.add_comments([_safe_comment(f"quantity: {spec.fn} of {describe_selector(sel)}")])
        cols.append(col)
    return cols


# --------------------------------------------------------------------------- query


def joined_types(definition: Definition) -> list[str]:
    """The event types the verdict query joins to each anchor: its leaves' and aggregates'."""
    plan = _plan(definition)
    return sorted(
        {leaf.sel.type for leaf in plan.leaves} | {spec.agg.type for _, spec in plan.quantity_cols}
    )


def compile_definition(
    definition: Definition,
    as_of: dt.datetime | None,
    events_table: str = "events",
    entity_id: str | None = None,
    ordered: bool = True,
    with_leaves: bool = False,
    known_at: dt.datetime | None = None,
    event_counts: Sequence[tuple[str, exp.Expr]] = (),
) -> exp.Select:
    """The verdict query: one row per candidate, columns :data:`VERDICT_COLUMNS` + conditions.

    ``known_at`` adds the second clock: an event is visible only if it had reached the buyer by
    then, ``COALESCE(recorded_at, ts) <= known_at`` (its receipt time where the export has one,
    its event time otherwise), on top of ``ts <= as_of``. Left out, the query is unchanged.
    ``entity_id`` restricts the query to one entity (for ``explain``); it becomes a literal.
    ``ordered=False`` leaves out the final sort, for callers that aggregate or sort later.
    ``with_leaves=True`` adds ``leafN_hits`` and ``leafN_pass`` per leaf condition (``explain``),
    and ``leafN_has_data`` (events of the leaf's type, 0 = ``if_no_data`` applied) per leaf that
    has ``if_no_data`` (``check``).
    ``event_counts`` adds, per ``(name, predicate)``, a column ``name`` counting the
    candidate's joined events (its entity's visible events of the definition's types) on
    which the predicate, written over the events alias ``e``, holds: ``check`` reads its
    coverage from them when the count runs anyway (the report), instead of grouping every
    event by entity a second time. They need the join, so a definition without leaves or
    aggregates takes none; the verdicts are the same with or without them.

    ``as_of`` None is the default a count takes, written into the query rather than computed
    here: ``known_at`` when given, else the latest event time in ``events_table`` (a scalar
    subquery), so the printed query holds no wall-clock time and gives ``count``'s numbers.
    """
    plan = _plan(definition)
    if as_of is None and known_at is not None:
        as_of = known_at
    as_of_sql = _ts_literal(as_of) if as_of is not None else _latest_event(events_table)
    known_at_sql = _ts_literal(known_at) if known_at is not None else None

    # 1. the events known at the as-of time (a predicate, not a CTE: a CTE used twice may be
    #    materialised by the engine, which would copy every event once more)
    def visible(alias: str) -> list[exp.Expr]:
        preds: list[exp.Expr] = [exp.LTE(this=_col("ts", alias), expression=as_of_sql.copy())]
        if known_at_sql is not None:
            received = exp.Coalesce(
                this=_col("recorded_at", alias), expressions=[_col("ts", alias)]
            )
            preds.append(exp.LTE(this=received, expression=known_at_sql.copy()))
        if entity_id is not None:
            preds.append(exp.EQ(this=_col("entity_id", alias), expression=_str(entity_id)))
        return preds

    events = exp.to_table(events_table)

    # 2. anchors
    anchor = definition.anchor
    anchor_pred = _and([filter_sql(anchor, table="v"), *visible("v")])
    base = exp.select(
        _col("entity_id", "v"),
        exp.alias_(_col("event_id", "v"), "anchor_event_id"),
        exp.alias_(_col("ts", "v"), "anchor_ts"),
    )
    if anchor.pick == "each":
        anchors = base.from_(events.copy().as_("v")).where(anchor_pred)
    else:
        descending = anchor.pick == "last"
        order = [
            exp.Ordered(this=_col(c, "v"), desc=descending, nulls_first=descending)
            for c in ("ts", "seq", "event_id")
        ]
        rn = exp.Window(
            this=exp.RowNumber(),
            partition_by=[_col("entity_id", "v")],
            order=exp.Order(expressions=order),
        )
        ranked = (
            base.select(exp.alias_(rn, "pick_rank"))
            .from_(events.copy().as_("v"))
            .where(anchor_pred)
        )
        anchors = (
            exp.select("entity_id", "anchor_event_id", "anchor_ts")
            .from_(ranked.subquery("ranked"))
            .where(exp.EQ(this=_col("pick_rank"), expression=_num(1)))
        )

    # 3. matched: one join, one grouping, an aggregate per leaf
    types = joined_types(definition)
    group_cols = [_col("entity_id", _A), _col("anchor_event_id", _A), _col("anchor_ts", _A)]
    aggregates: list[exp.Expr] = []
    for leaf in plan.leaves:
        aggregates.extend(_leaf_aggregates(leaf, definition.anchor.type))
    aggregates.extend(_quantity_aggregates(plan))
    if event_counts and not types:
        raise ValueError("event counts need the definition's join of events")
    for name, pred in event_counts:
        counted = exp.Filter(
            this=exp.Count(this=exp.Star()), expression=exp.Where(this=pred.copy())
        )
        aggregates.append(exp.alias_(counted, name))
    matched = exp.select(*group_cols, *aggregates).from_(exp.to_table("anchors").as_(_A))
    if types:
        on = _and(
            [
                exp.EQ(this=_col("entity_id", _E), expression=_col("entity_id", _A)),
                exp.In(this=_col("type", _E), expressions=[_str(t) for t in types]),
                *visible(_E),
            ]
        )
        matched = matched.join(events.copy().as_(_E), on=on, join_type="left")
    matched = matched.group_by(*group_cols)

    # 4. final select: conditions, status, reason, quantity, period
    cond_values = {name: _cond_value(plan, c) for name, c in definition.conditions.items()}
    excluded_by = {name: _excluded_leaves(plan, c) for name, c in definition.conditions.items()}
    all_excluded = _no_data([leaf for leaves in excluded_by.values() for leaf in leaves])
    passes = _and([exp.Paren(this=v) for v in cond_values.values()]) if cond_values else exp.true()
    whens: list[exp.If] = []
    if all_excluded is not None:
        whens.append(exp.If(this=all_excluded, true=_str("excluded")))
    longest = definition.longest_within()
    if longest > 0:
        closes = exp.Add(this=_col("anchor_ts", "m"), expression=_interval(longest))
        whens.append(
            exp.If(this=exp.GT(this=closes, expression=as_of_sql.copy()), true=_str("pending"))
        )
    whens.append(exp.If(this=passes, true=_str("counted")))
    status = exp.Case(ifs=whens, default=_str("not_counted"))

    cond_cols: list[exp.Expr] = []
    for name, value in cond_values.items():
        no_data = _no_data(excluded_by[name])
        col_value: exp.Expr = value
        if no_data is not None:
            col_value = exp.Case(ifs=[exp.If(this=no_data, true=exp.Null())], default=value)
        col = exp.alias_(col_value, exp.to_identifier(CONDITION_PREFIX + name, quoted=True))
        col.add_comments(
            [_safe_comment(f"{name}: {describe_condition(definition.conditions[name])}")]
        )
        cond_cols.append(col)

    final = exp.select(
        _col("entity_id", "m"),
        _col("anchor_event_id", "m"),
        _col("anchor_ts", "m"),
        exp.alias_(_period_key(definition), "period"),
        exp.alias_(_col("status"), "status"),
        exp.alias_(
            exp.Case(
                ifs=[exp.If(this=exp.EQ(this=_col("status"), expression=_str("counted")),
                            true=exp.cast(_quantity(plan), exp.DataType.build("DOUBLE")))],
                default=exp.cast(_num(0), exp.DataType.build("DOUBLE")),
            ),
            "quantity",
        ),
        exp.alias_(_reason(definition, cond_values, excluded_by), "reason"),
        *[_col(CONDITION_PREFIX + name, "s", quoted=True) for name in cond_values],
        *[_col(name, "s") for name, _ in event_counts],
    )  # fmt: skip
    # status is computed one layer below so that quantity and reason can refer to it
    leaf_cols: list[exp.Expr] = []
    if with_leaves:
        leaf_cols = [
            exp.alias_(_cond_value(plan, leaf.cond), f"leaf{leaf.index}_pass")
            for leaf in plan.leaves
        ]
        final = final.select(
            *[
                _col(f"leaf{leaf.index}_{kind}", "s")
                for leaf in plan.leaves
                for kind in ("hits", "pass")
            ],
            *[_col(leaf.data, "s") for leaf in plan.leaves if leaf.cond.if_no_data is not None],
        )
    inner = exp.select(
        exp.Column(this=exp.Star(), table=exp.to_identifier("m")),
        exp.alias_(status, "status"),
        *cond_cols,
        *leaf_cols,
    ).from_(exp.to_table("matched").as_("m"))
    final = final.from_(inner.subquery("s"))
    final = _rebase(final)

    query = final.with_("anchors", as_=anchors).with_("matched", as_=matched)
    if ordered:
        query = query.order_by(_col("entity_id"), _col("anchor_ts"), _col("anchor_event_id"))
    with_clause = query.args.get("with_") or query.args.get("with")
    assert with_clause is not None
    ctes = with_clause.expressions
    ctes[0].add_comments([_safe_comment(f"anchor: {_describe_anchor(definition)}")])
    ctes[1].add_comments(
        [_safe_comment("each anchor joined once to its events; one aggregate per leaf condition")]
    )
    when = as_of.isoformat(sep=" ") if as_of is not None else "the latest event time"
    header = (
        f"truecount definition {definition.name} v{definition.version} "
        f"sha256:{definition.sha256}; as of {when}; "
        f"window ends inclusive"
    )
    if known_at is not None:
        header += f"; as known at {known_at.isoformat(sep=' ')} (recorded_at, else ts)"
    query.add_comments([_safe_comment(header)], prepend=True)
    return query


def _latest_event(events_table: str) -> exp.Expr:
    """``(SELECT MAX(ts) FROM events)``: the default as-of, the export's own horizon."""
    latest = exp.select(exp.Max(this=_col("ts"))).from_(exp.to_table(events_table))
    return exp.Subquery(this=latest)


def _describe_anchor(definition: Definition) -> str:
    a = definition.anchor
    text = f"{a.pick} {a.type}"
    if a.actor is not None:
        text += f" by {a.actor}"
    if a.where_expr is not None:
        text += f" where {a.where_expr}"
    return text + " per entity"


def _rebase(final: exp.Select) -> exp.Select:
    """Point the final select's ``m.`` columns at the subquery alias ``s``."""
    for column in final.find_all(exp.Column):
        if column.table == "m" and column.find_ancestor(exp.Subquery) is None:
            column.set("table", exp.to_identifier("s"))
    return final


def _reason(
    definition: Definition,
    cond_values: dict[str, exp.Expr],
    excluded_by: dict[str, list[Leaf]],
) -> exp.Expr:
    """Failing condition names for not_counted; 'no data: ...' for excluded; 'pending'."""
    status = _col("status")
    failing: list[exp.Expr] = []
    for name in cond_values:
        failing.append(
            exp.Case(
                ifs=[exp.If(
                    this=exp.Not(this=_col(CONDITION_PREFIX + name, "s", quoted=True)),
                    true=_str(f", {name}"),
                )],
                default=_str(""),
            )
        )  # fmt: skip
    missing: list[exp.Expr] = []
    for name, leaves in excluded_by.items():
        if leaves:
            no_data = _no_data(leaves)
            assert no_data is not None
            missing.append(
                exp.Case(ifs=[exp.If(this=no_data, true=_str(f", {name}"))], default=_str(""))
            )
    ifs: list[exp.If] = [exp.If(this=exp.EQ(this=status, expression=_str("pending")),
                                true=_str("pending"))]  # fmt: skip
    if missing:
        joined = exp.func("CONCAT", *missing) if len(missing) > 1 else missing[0]
        ifs.append(
            exp.If(
                this=exp.EQ(this=status, expression=_str("excluded")),
                true=exp.func("CONCAT", _str("no data: "), exp.Substring(
                    this=joined, start=_num(3)
                )),
            )
        )  # fmt: skip
    if failing:
        joined = exp.func("CONCAT", *failing) if len(failing) > 1 else failing[0]
        ifs.append(
            exp.If(
                this=exp.EQ(this=status, expression=_str("not_counted")),
                true=exp.Substring(this=joined, start=_num(3)),
            )
        )
    return exp.Case(ifs=ifs, default=exp.Null())


def render_sql(query: exp.Expr, dialect: str = "duckdb", pretty: bool = True) -> str:
    """SQL text of a compiled query in a SQLGlot dialect, made portable first (:func:`portable`)."""
    return portable(query, dialect).sql(dialect=dialect, pretty=pretty)


#: Text PostgreSQL's ``float8`` input reads without an error, as a regular expression: decimal
#: and exponent forms (at most 200 digits on each side of the point and a two-digit exponent, so
#: the value is never out of range) and the spellings of infinity and NaN, with spaces around.
PG_NUMBER_PATTERN: Final[str] = (
    r"^\s*[-+]?((\d{1,200}(\.\d{0,200})?|\.\d{1,200})([eE][-+]?\d{1,2})?"
    r"|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])\s*$"
)


def portable(query: exp.Expr, dialect: str) -> exp.Expr:
    """The compiled tree rewritten where a dialect lacks a construct the tree uses.

    The tree is written once, in constructs SQLGlot renders correctly for every engine; what
    one engine lacks is rewritten here, so the difference is in one place and visible:

    * PostgreSQL has no ``TRY_CAST``: a number is read from text only when the text is one
      (:data:`PG_NUMBER_PATTERN`), else it is NULL, as elsewhere;
    * PostgreSQL has no ``ARG_MIN`` / ``ARG_MAX``: ``first`` / ``last`` take element 1 of the
      values in event order, ``(ARRAY_AGG(v ORDER BY key) FILTER (WHERE ...))[1]``;
    * PostgreSQL's JSON functions take ``json``: ``attrs`` is cast to it, which reads a text
      column and a native ``json`` / ``jsonb`` column alike.

    The input tree is not changed.
    """
    if dialect != "postgres":
        return query
    tree = query.copy()

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.JSONExtractScalar) and not isinstance(node.this, exp.Cast):
            node.set("this", exp.cast(node.this.copy(), exp.DataType.build("JSON")))
            return node
        # A replaced node is not walked again: its parts are rewritten here.
        if isinstance(node, exp.TryCast):
            text = node.this.copy().transform(rewrite)
            is_number = exp.RegexpLike(this=text.copy(), expression=_str(PG_NUMBER_PATTERN))
            cast = exp.Cast(this=text.copy(), to=node.to.copy())
            return exp.Case(ifs=[exp.If(this=is_number, true=cast)])
        if isinstance(node, exp.Filter) and isinstance(node.this, exp.ArgMin | exp.ArgMax):
            agg = node.this
            ordered = exp.Ordered(
                this=agg.expression.copy().transform(rewrite),
                desc=isinstance(agg, exp.ArgMax),
                nulls_first=False,
            )
            value = agg.this.copy().transform(rewrite)
            values = exp.ArrayAgg(this=exp.Order(this=value, expressions=[ordered]))
            where = node.expression.copy().transform(rewrite)
            filtered = exp.Filter(this=values, expression=where)
            return exp.Bracket(this=exp.Paren(this=filtered), expressions=[_num(1)], offset=1)
        return node

    return tree.transform(rewrite)


def compile_sql(
    definition: Definition,
    as_of: dt.datetime | None,
    dialect: str = "duckdb",
    events_table: str = "events",
    pretty: bool = True,
    known_at: dt.datetime | None = None,
) -> str:
    """Compile and render in one step: the text ``truecount sql`` prints.

    ``as_of`` None writes the count's default into the query (see :func:`compile_definition`).
    """
    query = compile_definition(definition, as_of, events_table, known_at=known_at)
    return render_sql(query, dialect, pretty)


__all__ = [
    "CONDITION_PREFIX",
    "DIALECTS",
    "VERDICT_COLUMNS",
    "compile_definition",
    "compile_sql",
    "describe_condition",
    "describe_selector",
    "filter_sql",
    "render_sql",
    "selector_predicate",
    "where_sql",
]
