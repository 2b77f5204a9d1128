"""What a definition needs from an export, and the scans that measure how much of it is there.

:mod:`truecount.engine.check` judges an export's sufficiency from these figures; the figures
themselves come from here. Each need is one event filter the definition reads (the anchor, a
leaf condition, a term of the quantity). For the export as a whole there is one scan of the
events grouped by type and actor; per candidate, the coverage of each need is read from the
verdict table when the count carried it (:func:`coverage_counts`), else taken in one grouping
of the events per entity joined to the candidates; the adapters' caveats are found by a text
search first and parsed only where the text may hold one. User text (types, actors, attribute
keys, where literals) only becomes SQLGlot literal nodes, as in the compiler.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import duckdb
from sqlglot import exp

from truecount.definition.model import (
    AggregateSpec,
    Condition,
    CountSpec,
    Definition,
    EventFilter,
    QuantitySpec,
)
from truecount.definition.where import Field, IsNull, fields_used
from truecount.engine.compile import (
    compile_definition,
    filter_sql,
    joined_types,
    plan_leaves,
    render_sql,
    where_sql,
)
from truecount.ingest.canonical import EVENTS_TABLE, KNOWN_ACTORS

_E: Final[str] = "e"  # alias of the events in every query here

#: Prefix of the per-candidate event counts a count adds for the coverage (coverage_counts).
COVERAGE_PREFIX: Final[str] = "coverage_"


# --------------------------------------------------------------------------- needs
@dataclass(frozen=True)
class Need:
    """One event filter to check, with the column prefix its statistics get in the queries."""

    key: str
    path: str
    form: str
    flt: EventFilter
    agg_field: str | None
    if_no_data: str | None
    expects_data: bool
    passes_on_empty: bool
    leaf_index: int | None
    cond: Condition | None = None  # the leaf condition it checks (None: anchor, quantity)

    @property
    def fields(self) -> list[str]:
        """Fields the filter reads: the aggregate's field, then those of ``where`` (not type)."""
        out = [self.agg_field] if self.agg_field is not None else []
        if self.flt.where_expr is not None:
            out += sorted(f for f in fields_used(self.flt.where_expr) if f != "type")
        return list(dict.fromkeys(out))


def _passes_on_empty(cond: Condition) -> bool:
    """A leaf's result when no event matches it: what a candidate without data gets."""
    leaf = cond.leaf
    if cond.form == "absent":
        return True
    if isinstance(leaf, CountSpec):
        return all(_cmp_zero(op, v) for op, v in leaf.comparisons())
    return False  # exists: no event; aggregate: null, which fails every comparison


def _cmp_zero(op: str, v: float) -> bool:
    """Whether zero events satisfy one comparison of a count (``at_most: 3`` does)."""
    return {">=": v <= 0, "<=": v >= 0, ">": v < 0, "<": v > 0, "=": v == 0}[op]


def plan_needs(definition: Definition) -> tuple[Need, list[tuple[str, list[Need]]], list[Need]]:
    """The anchor, the needs of each top-level condition, and the quantity's terms."""
    anchor = definition.anchor
    anchor_need = Need("n0", "anchor", "anchor", anchor, None, None, True, False, None)
    numbers = {id(leaf.cond): leaf.index for leaf in plan_leaves(definition)}
    needs: list[Need] = []

    def walk(cond: Condition, path: str, negated: bool, into: list[Need]) -> None:
        leaf = cond.leaf
        if leaf is not None:
            empty = _passes_on_empty(cond)
            need = Need(
                key=f"n{len(needs) + 1}",
                path=path,
                form=cond.form,
                flt=leaf,
                agg_field=leaf.field if isinstance(leaf, AggregateSpec) else None,
                if_no_data=cond.if_no_data,
                # the condition needs an event to pass (after any `not` above the leaf), or the
                # buyer declared what missing data means: either way each candidate should have it
                expects_data=cond.if_no_data is not None or empty == negated,
                passes_on_empty=empty,
                leaf_index=numbers[id(cond)],
                cond=cond,
            )
            needs.append(need)
            into.append(need)
        for i, child in enumerate(cond.children):
            walk(child, f"{path}.{cond.form}[{i}]", negated ^ (cond.form == "not"), into)

    conditions: list[tuple[str, list[Need]]] = []
    for name, cond in definition.conditions.items():
        mine: list[Need] = []
        walk(cond, name, False, mine)
        conditions.append((name, mine))

    quantity: list[Need] = []
    q = definition.quantity
    path = "quantity"
    while isinstance(q, QuantitySpec):
        agg = q.agg
        need = Need(
            key=f"n{len(needs) + 1}",
            path=path,
            form=q.fn,
            flt=agg,
            agg_field=None if q.fn == "count" else agg.field,
            if_no_data=None,
            expects_data=path == "quantity",  # a `minus` term (chargebacks) is often empty
            passes_on_empty=False,
            leaf_index=None,
        )
        needs.append(need)
        quantity.append(need)
        q = q.minus if q.minus is not None else 0.0
        path += ".minus"
    return anchor_need, conditions, quantity


@dataclass(frozen=True)
class Requirement:
    """One event filter of a definition and what it reads from an export, without any data.

    The same plan ``check`` measures coverage with, for callers that need it before there is an
    export (the contract's raw-event-export clause lists exactly these types and fields).
    """

    path: str
    form: str
    type: str
    actor: str | None
    fields: tuple[str, ...]
    expects_data: bool
    if_no_data: str | None


def requirements(definition: Definition) -> list[Requirement]:
    """The anchor, each leaf condition and each quantity term, in definition order."""
    anchor, conditions, quantity = plan_needs(definition)
    needs = [anchor, *(n for _, mine in conditions for n in mine), *quantity]
    return [
        Requirement(
            n.path, n.form, n.flt.type, n.flt.actor, tuple(n.fields), n.expects_data, n.if_no_data
        )
        for n in needs
    ]


# --------------------------------------------------------------------------- SQL pieces


def _col(name: str) -> exp.Column:
    return exp.column(name, table=_E)


def _lit(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def _and(parts: list[exp.Expr]) -> exp.Expr:
    out = parts[0]
    for p in parts[1:]:
        out = exp.And(this=out, expression=p)
    return out


def _or(parts: list[exp.Expr]) -> exp.Expr:
    out = exp.Paren(this=parts[0]) if len(parts) > 1 else parts[0]
    for p in parts[1:]:
        out = exp.Or(this=out, expression=exp.Paren(this=p))
    return out


def _count_if(pred: exp.Expr, alias: str) -> exp.Expr:
    counted = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=pred))
    return exp.alias_(counted, alias)


def _type_pred(flt: EventFilter) -> exp.Expr:
    return exp.EQ(this=_col("type"), expression=_lit(flt.type))


def _base_pred(flt: EventFilter) -> exp.Expr:
    """The events a filter looks at before its where: its type, and its actor if it names one."""
    parts: list[exp.Expr] = [_type_pred(flt)]
    if flt.actor is not None:
        parts.append(exp.EQ(this=_col("actor"), expression=_lit(flt.actor)))
    return _and(parts)


def _where_field(name: str) -> Field:
    if name.startswith("attrs."):
        return Field("attrs", name.split(".", 1)[1])
    return Field(name)


def _present(name: str) -> exp.Expr:
    """The field is not null on the event (for ``attrs.<key>``: the key is there, not null)."""
    return where_sql(IsNull(_where_field(name), negated=True), _E)


def _numeric_present(name: str) -> exp.Expr:
    """An aggregate's field holds a number, read the way the compiler reads it."""
    if name == "value":
        return _present(name)
    path = _lit(f"$.{name.split('.', 1)[1]}")
    text = exp.JSONExtractScalar(this=_col("attrs"), expression=path)
    number = exp.TryCast(this=text, to=exp.DataType.build("DOUBLE"))
    return exp.Not(this=exp.Is(this=number, expression=exp.Null()))


def _usable_pred(need: Need) -> exp.Expr:
    """Events on which the filter can be decided: where true or false (not unknown), field set."""
    return _and([_base_pred(need.flt), *_usable_rest(need)])


def _usable_rest(need: Need) -> list[exp.Expr]:
    """:func:`_usable_pred` without the type and actor (none: every event of them is usable)."""
    parts: list[exp.Expr] = []
    if need.flt.where_expr is not None:
        decided = exp.Is(
            this=exp.Paren(this=where_sql(need.flt.where_expr, _E)), expression=exp.Null()
        )
        parts.append(exp.Not(this=exp.Paren(this=decided)))
    if need.agg_field is not None:
        parts.append(_numeric_present(need.agg_field))
    return parts


def _visible(as_of: dt.datetime) -> exp.Expr:
    text = as_of.isoformat(sep=" ", timespec="microseconds")
    moment = exp.cast(_lit(text), exp.DataType.build("TIMESTAMP"))
    return exp.LTE(this=_col("ts"), expression=moment)


def _events() -> exp.Expr:
    return exp.to_table(EVENTS_TABLE).as_(_E)


def _rows(con: duckdb.DuckDBPyConnection, query: exp.Expr) -> list[tuple[Any, ...]]:
    return con.execute(render_sql(query, "duckdb", pretty=False)).fetchall()


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class ScanStats:
    """What one grouped scan of the visible events tells: the per-need and per-condition event
    counts, events per type, actors per type, and actor values outside the glossary."""

    stats: dict[str, int]
    types: dict[str, int]
    actors: dict[str, dict[str, int]]
    unknown: dict[str, int]


def _by_count(pairs: dict[Any, int]) -> list[tuple[Any, int]]:
    """Most events first, then by value (None last), as the tables in the report list them."""
    return sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))


def scan_stats(
    con: duckdb.DuckDBPyConnection,
    needs: list[Need],
    conditions: list[tuple[str, list[Need]]],
    actor_types: list[str],
    as_of: dt.datetime,
    *,
    table: str = EVENTS_TABLE,
) -> ScanStats:
    """One scan of the visible events, grouped by type and actor (a few dozen groups).

    Per need: events of the type, by the actor, carrying each field, usable and matching; per
    condition: events matching any of its leaves. Summed over the groups they are the export's
    totals; the groups themselves are the events per type, the actors seen for the types a
    filter names an actor of, and the actor values no filter can see. One pass instead of one
    per question, which matters at millions of events.

    ``table`` may name a view of the same events whose ``attrs`` is the export's text
    (:attr:`~truecount.engine.source.EventSource.text_table`): the search for caveats then
    reads the text as it is instead of parsing every event's JSON, and the scan counts the
    values that are not JSON (``attrs_not_json``), which the JSON view would have refused.
    """
    cols: list[exp.Expr] = [
        _col("type"),
        _col("actor"),
        exp.alias_(exp.Count(this=exp.Star()), "events"),
    ]
    # Counts that depend on the type and actor alone are sums over the groups themselves, so
    # the scan computes only those that read another field (a value, an attribute, a where).
    by_group: dict[str, tuple[str, str | None]] = {}
    # the same predicate under several names (a need's matching events and its condition's,
    # say) is counted once and copied
    same_as: dict[str, str] = {}
    counted: dict[str, str] = {}

    def on_group(flt: EventFilter, alias: str, with_actor: bool) -> None:
        by_group[alias] = (flt.type, flt.actor if with_actor else None)

    def on_scan(pred: exp.Expr, alias: str) -> None:
        text = pred.sql(dialect="duckdb")
        if text in counted:
            same_as[alias] = counted[text]
        else:
            counted[text] = alias
            cols.append(_count_if(pred, alias))

    # A count of a filter's type (and actor) AND something more: the type and actor are the
    # group's, so only the rest is tested on each event, once however many counts share it,
    # and each count adds up the groups of its type and actor. Testing the type on every event
    # again, once per count, was most of the scan's cost.
    of_groups: dict[str, tuple[str, str | None, str]] = {}
    rests: dict[str, str] = {}

    def on_rest(flt: EventFilter, rest: list[exp.Expr], alias: str) -> None:
        pred = _and(rest)
        text = pred.sql(dialect="duckdb")
        column = rests.get(text)
        if column is None:
            column = rests[text] = f"_rest{len(rests)}"
            cols.append(_count_if(pred, column))
        of_groups[alias] = (flt.type, flt.actor, column)

    for n in needs:
        on_group(n.flt, f"{n.key}_of_type", with_actor=False)
        on_group(n.flt, f"{n.key}_by_actor", with_actor=True)
        for i, name in enumerate(n.fields):
            on_rest(n.flt, [_present(name)], f"{n.key}_f{i}")
        if n.flt.where_expr is None and n.agg_field is None:
            on_group(n.flt, f"{n.key}_usable", with_actor=True)
        else:
            on_rest(n.flt, _usable_rest(n), f"{n.key}_usable")
        if n.flt.where_expr is None:
            on_group(n.flt, f"{n.key}_matching", with_actor=True)
        else:
            on_rest(n.flt, [exp.Paren(this=where_sql(n.flt.where_expr, _E))], f"{n.key}_matching")
    for k, (_, mine) in enumerate(conditions):
        if len(mine) == 1 and mine[0].flt.where_expr is None:
            on_group(mine[0].flt, f"c{k}_matching", with_actor=True)
        elif len(mine) == 1 and mine[0].flt.where_expr is not None:
            where = exp.Paren(this=where_sql(mine[0].flt.where_expr, _E))
            on_rest(mine[0].flt, [where], f"c{k}_matching")
        elif mine:
            on_scan(_or([filter_sql(n.flt, _E) for n in mine]), f"c{k}_matching")
    # events whose attributes may hold an adapter's caveat: none, and caveats need not run
    cols.append(_count_if(_may_have_caveat(), "may_have_caveat"))
    if table != EVENTS_TABLE:
        not_json = exp.not_(exp.func("json_valid", _col("attrs")))
        present = exp.Not(this=exp.Is(this=_col("attrs"), expression=exp.Null()))
        cols.append(_count_if(_and([present, not_json]), "attrs_not_json"))
    query = (
        exp.select(*cols)
        .from_(exp.to_table(table).as_(_E))
        .where(_visible(as_of))
        .group_by(_col("type"), _col("actor"))
    )
    cursor = con.execute(render_sql(query, "duckdb", pretty=False))
    names = [d[0] for d in cursor.description]
    scanned = [name for name in names[2:] if name not in rests.values()]
    stats: dict[str, int] = dict.fromkeys([*by_group, *of_groups, *scanned], 0)
    position = {name: i for i, name in enumerate(names)}
    types: dict[Any, int] = {}
    actors: dict[str, dict[Any, int]] = {}
    unknown: dict[Any, int] = {}
    wanted = set(actor_types)
    for row in cursor.fetchall():
        type_, actor, events = row[0], row[1], int(row[2] or 0)
        for name in scanned:
            stats[name] += int(row[position[name]] or 0)
        for alias, (of_type, of_actor) in by_group.items():
            if type_ == of_type and (of_actor is None or actor == of_actor):
                stats[alias] += events
        for alias, (of_type, of_actor, column) in of_groups.items():
            if type_ == of_type and (of_actor is None or actor == of_actor):
                stats[alias] += int(row[position[column]] or 0)
        types[type_] = types.get(type_, 0) + events
        if type_ in wanted:
            per = actors.setdefault(str(type_), {})
            per[actor] = per.get(actor, 0) + events
        if actor is not None and actor not in KNOWN_ACTORS:
            unknown[actor] = unknown.get(actor, 0) + events
    for alias, twin in same_as.items():
        stats[alias] = stats[twin]
    return ScanStats(
        stats=stats,
        types={str(t): c for t, c in _by_count(types)},
        actors={
            t: {"(none)" if a is None else str(a): c for a, c in _by_count(per)}
            for t, per in actors.items()
        },
        unknown={str(a): c for a, c in _by_count(unknown)[:10]},
    )


def _text_has(needle: str) -> exp.Expr:
    """``attrs`` as text contains ``needle``: a search, not a parse of the JSON."""
    text = exp.cast(_col("attrs"), exp.DataType.build("VARCHAR"))
    return exp.func("contains", text, _lit(needle))


def _may_have_caveat() -> exp.Expr:
    """The attributes' text spells ``caveat``, or holds a ``\\u`` escape that might spell it."""
    return exp.Paren(this=_or([_text_has("caveat"), _text_has("\\u")]))


def scan_caveats(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> list[tuple[str, int, int]]:
    """Limits of the export itself that an adapter recorded on events (``attrs.caveat``, e.g.
    a ServiceNow list without its update counter): no option lifts them, so check states them
    with how many entities and events they touch.

    Parsing every event's attributes is the cost of this query, so the text is searched first:
    a ``caveat`` key is spelled out in the JSON text unless some letter of it is written as a
    ``\\u`` escape, and text holding such an escape is parsed as before."""
    text = exp.JSONExtractScalar(this=_col("attrs"), expression=_lit("$.caveat"))
    query = (
        exp.select(
            exp.alias_(text, "caveat"),
            exp.alias_(exp.Count(this=exp.Distinct(expressions=[_col("entity_id")])), "ne"),
            exp.alias_(exp.Count(this=exp.Star()), "n"),
        )
        .from_(_events())
        .where(
            _and(
                [
                    _visible(as_of),
                    _may_have_caveat(),
                    exp.Not(this=exp.Is(this=text, expression=exp.Null())),
                ]
            )
        )
        .group_by(text)
        .order_by(exp.Ordered(this=exp.column("n"), desc=True), exp.column("caveat"))
    )
    return [(str(c), int(ne), int(n)) for c, ne, n in _rows(con, query)]


def coverage_rows(
    con: duckdb.DuckDBPyConnection,
    definition: Definition,
    needs: list[Need],
    conditions: list[tuple[str, list[Need]]],
    as_of: dt.datetime,
    verdicts: str | None = None,
) -> list[dict[str, Any]]:
    """Per period: candidates, pending, and per need / condition the covered candidates and
    those ``if_no_data`` decided.

    The candidates are the verdict query's rows: the table ``count`` left on the connection
    when the caller names it, else the compiled query run here. Each is joined once to a
    per-entity count, in one grouping of the events, of the usable events per need and of the
    events of each type an ``if_no_data`` leaf reads. ``if_no_data`` applies to a leaf exactly
    when its entity has no visible event of the leaf's type (the compiler's ``leafN_has_data``
    is that count, taken over the same join), so the decisions need no second verdict query.
    When the named verdict table carries those counts per candidate (a count made with
    :func:`coverage_counts`), they are read from it and the events are not grouped again.
    """
    v = "v"
    if verdicts is not None:
        candidates: exp.Expr = exp.to_table(verdicts).as_(v)
    else:
        candidates = compile_definition(definition, as_of, ordered=False).subquery(v)
    cols: list[exp.Expr] = [
        exp.alias_(exp.column("period", v), "period"),
        exp.alias_(exp.Count(this=exp.Star()), "candidates"),
        _count_if(exp.EQ(this=exp.column("status", v), expression=_lit("pending")), "pending"),
    ]

    checked, type_key = _coverage_keys(needs)
    folded = verdicts is not None and _has_coverage(con, verdicts, checked, type_key)
    per_entity_of = "v" if folded else "c"
    prefix = COVERAGE_PREFIX if folded else ""

    def per_entity(key: str) -> exp.Expr:
        return exp.Coalesce(
            this=exp.column(f"{prefix}{key}", per_entity_of),
            expressions=[exp.Literal.number(0)],
        )

    def covered(n: Need) -> exp.Expr:
        return exp.GT(this=per_entity(n.key), expression=exp.Literal.number(0))

    def no_data(n: Need) -> exp.Expr | None:
        if n.if_no_data is None or n.leaf_index is None:
            return None
        return exp.EQ(this=per_entity(type_key[n.flt.type]), expression=exp.Literal.number(0))

    for n in checked:
        cols.append(_count_if(covered(n), f"{n.key}_covered"))
        nd = no_data(n)
        if nd is not None:
            cols.append(_count_if(nd, f"{n.key}_no_data"))
    for k, (name, mine) in enumerate(conditions):
        if not mine:
            continue
        need_of = {id(n.cond): n for n in mine}
        tree = _tree_covered(definition.conditions[name], need_of, covered)
        cols.append(_count_if(tree, f"c{k}_covered"))
        nds = [nd for n in mine if (nd := no_data(n)) is not None]
        if nds:
            cols.append(_count_if(_or(nds), f"c{k}_no_data"))

    query = exp.select(*cols).from_(candidates)
    if checked and not folded:
        counts = [_count_if(_usable_pred(n), n.key) for n in checked]
        counts += [_count_if(_type_pred_of(t), key) for t, key in type_key.items()]
        types = sorted({n.flt.type for n in checked})
        grouped = (
            exp.select(_col("entity_id"), *counts)
            .from_(_events())
            .where(
                _and(
                    [
                        _visible(as_of),
                        exp.In(this=_col("type"), expressions=[_lit(t) for t in types]),
                    ]
                )
            )
            .group_by(_col("entity_id"))
        )
        on = exp.EQ(this=exp.column("entity_id", "c"), expression=exp.column("entity_id", v))
        query = query.join(grouped.subquery("c"), on=on, join_type="left")
    query = query.group_by(exp.column("period", v)).order_by(exp.column("period", v))
    cursor = con.execute(render_sql(query, "duckdb", pretty=False))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _coverage_keys(needs: list[Need]) -> tuple[list[Need], dict[str, str]]:
    """The needs whose coverage is checked (all but the anchor's), and a key per event type
    an ``if_no_data`` leaf reads."""
    checked = [n for n in needs if n.key != "n0"]
    no_data_types = sorted(
        {n.flt.type for n in checked if n.if_no_data is not None and n.leaf_index is not None}
    )
    return checked, {t: f"t{i}" for i, t in enumerate(no_data_types)}


def coverage_counts(definition: Definition) -> list[tuple[str, exp.Expr]]:
    """Per-candidate event counts the count can add to its verdicts for :func:`check_source`
    (``compile_definition(event_counts=...)``): per checked need, its usable events; per type
    an ``if_no_data`` leaf reads, its events. Empty when a need reads a type the verdict query
    does not join (the coverage then groups the events itself)."""
    anchor_need, cond_needs, quantity_needs = plan_needs(definition)
    needs = [anchor_need, *(n for _, mine in cond_needs for n in mine), *quantity_needs]
    checked, type_key = _coverage_keys(needs)
    if not checked or not {n.flt.type for n in checked} <= set(joined_types(definition)):
        return []
    return [(f"{COVERAGE_PREFIX}{n.key}", _usable_pred(n)) for n in checked] + [
        (f"{COVERAGE_PREFIX}{key}", _type_pred_of(t)) for t, key in type_key.items()
    ]


def _has_coverage(
    con: duckdb.DuckDBPyConnection,
    verdicts: str,
    checked: list[Need],
    type_key: dict[str, str],
) -> bool:
    """The verdict table carries every coverage count :func:`coverage_counts` names."""
    have = {str(r[0]) for r in con.execute(f"DESCRIBE {verdicts}").fetchall()}
    want = [n.key for n in checked] + list(type_key.values())
    return bool(want) and all(f"{COVERAGE_PREFIX}{k}" in have for k in want)


def _type_pred_of(type_: str) -> exp.Expr:
    return exp.EQ(this=_col("type"), expression=_lit(type_))


def _expects(cond: Condition, need_of: dict[int, Need]) -> bool:
    if cond.leaf is not None:
        return need_of[id(cond)].expects_data
    return any(_expects(c, need_of) for c in cond.children)


def _tree_covered(
    cond: Condition, need_of: dict[int, Need], covered: Callable[[Need], exp.Expr]
) -> exp.Expr:
    """A candidate has the data a condition reads: ``any`` needs the data of one alternative,
    ``all`` that of every part that needs data (of every part, when none does)."""
    if cond.leaf is not None:
        return covered(need_of[id(cond)])
    kids = cond.children
    if cond.form == "not":
        return _tree_covered(kids[0], need_of, covered)
    if cond.form == "any":
        return _or([_tree_covered(c, need_of, covered) for c in kids])
    wanted = [c for c in kids if _expects(c, need_of)] or kids
    return _and([exp.Paren(this=_tree_covered(c, need_of, covered)) for c in wanted])
