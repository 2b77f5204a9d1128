"""Data sufficiency: can this export support this definition, before any count is trusted?

A count over a thin export is still a number. A definition that needs ratings, run on an export
without them, quietly fails every candidate (or passes every one, for an ``absent`` condition
on events the vendor never logs), and nothing in the count says so. ``check`` says so first,
for the anchor and each condition: the events and fields it reads, whether the export has
them, the share of candidates that have them (coverage, per period), and how many verdicts
``if_no_data`` would decide rather than the data.

Candidates, periods and pending come from the same compiled query as ``count`` (or from the
verdict table a count already left on the connection), so ``check`` and ``count`` can never
disagree about who is a candidate; ``if_no_data`` applies where an entity has no visible event
of the leaf's type, the very count the compiler's ``leafN_has_data`` column takes. Everything
else is set-based: one scan of the events grouped by type and actor for what the export
carries, one grouping of the events per entity joined to the candidates for coverage, and a
text search for the adapters' caveats (parsed only where the text may hold one). User text
(types, actors, attribute keys, where literals) only becomes SQLGlot literal nodes, as in the
compiler. Events with no actor, for the filters that name one, are counted per file by
:mod:`truecount.engine.actors`, so a NULL actor is never silent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

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
from truecount.engine.actors import unknown_actor_note, unknown_actors, who
from truecount.engine.compile import (
    compile_definition,
    describe_condition,
    filter_sql,
    joined_types,
    plan_leaves,
    render_sql,
    where_sql,
)
from truecount.engine.run import _parse_as_of, default_as_of
from truecount.engine.source import EventsInput, EventSource, open_events
from truecount.errors import InputError, Location, Problem
from truecount.ingest.canonical import EVENTS_TABLE, KNOWN_ACTORS
from truecount.ingest.choices import Choice

Status = Literal["ok", "thin", "missing"]

#: Statuses from best to worst; a part's status is the worst of its needs.
STATUSES: Final[tuple[Status, ...]] = ("ok", "thin", "missing")

#: Below this share of candidates with the data, a condition that needs data is ``thin``.
DEFAULT_MIN_COVERAGE: Final[float] = 0.5

_E: Final[str] = "e"  # alias of the events in every query here

#: Prefix of the per-candidate event counts a count adds for the coverage (coverage_counts).
COVERAGE_PREFIX: Final[str] = "coverage_"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PeriodCoverage:
    """One period of one need or condition: how many candidates have the data it reads."""

    period: str
    candidates: int
    covered: int
    decided_by_if_no_data: int

    @property
    def coverage(self) -> float | None:
        return self.covered / self.candidates if self.candidates else None

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "candidates": self.candidates,
            "covered": self.covered,
            "coverage": _ratio(self.coverage),
            "decided_by_if_no_data": self.decided_by_if_no_data,
        }


@dataclass(frozen=True)
class AnchorPeriod:
    """Candidates of one period, and how many of them are still pending."""

    period: str
    candidates: int
    pending: int

    def to_json(self) -> dict[str, Any]:
        return {"period": self.period, "candidates": self.candidates, "pending": self.pending}


@dataclass(frozen=True)
class FieldPresence:
    """A field a filter reads, and how many of the filter's events (type, actor) carry it."""

    name: str
    events: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "events": self.events}


def _totals(periods: list[PeriodCoverage]) -> PeriodCoverage:
    return PeriodCoverage(
        "total",
        sum(p.candidates for p in periods),
        sum(p.covered for p in periods),
        sum(p.decided_by_if_no_data for p in periods),
    )


@dataclass
class NeedCheck:
    """One event filter the definition reads (a leaf condition or a quantity term), checked.

    ``events_usable`` counts the events of the type (and actor) on which the filter can be
    decided: its ``where`` is true or false rather than unknown, and an aggregate's field is a
    number. A candidate is *covered* when its history has at least one such event.
    """

    path: str
    form: str
    type: str
    actor: str | None
    where: str | None
    if_no_data: str | None
    expects_data: bool
    passes_on_empty: bool
    fields: list[FieldPresence]
    events_of_type: int
    events_by_actor: int
    events_usable: int
    events_matching: int
    actors: dict[str, int] | None
    periods: list[PeriodCoverage]
    status: Status = "ok"
    note: str = ""
    #: Events of the type (where true) with no actor, per file, when the filter names an actor.
    unknown_actor_files: dict[str, int] = field(default_factory=dict)

    @property
    def unknown_actor(self) -> int:
        return sum(self.unknown_actor_files.values())

    @property
    def total(self) -> PeriodCoverage:
        return _totals(self.periods)

    def to_json(self) -> dict[str, Any]:
        total = self.total
        return {
            "path": self.path,
            "form": self.form,
            "type": self.type,
            "actor": self.actor,
            "where": self.where,
            "fields": [f.to_json() for f in self.fields],
            "if_no_data": self.if_no_data,
            "expects_data": self.expects_data,
            "status": self.status,
            "events_of_type": self.events_of_type,
            "events_by_actor": self.events_by_actor,
            "events_usable": self.events_usable,
            "events_matching": self.events_matching,
            "actors": self.actors,
            "candidates": total.candidates,
            "covered": total.covered,
            "coverage": _ratio(total.coverage),
            "decided_by_if_no_data": total.decided_by_if_no_data,
            "periods": [p.to_json() for p in self.periods],
            "note": self.note,
            "unknown_actor": self.unknown_actor,
            "unknown_actor_files": self.unknown_actor_files,
        }


@dataclass
class AnchorCheck:
    """The anchor: does the export have the events that make entities candidates?"""

    type: str
    actor: str | None
    where: str | None
    pick: str
    fields: list[FieldPresence]
    events_of_type: int
    events_by_actor: int
    events_matching: int
    actors: dict[str, int] | None
    periods: list[AnchorPeriod]
    status: Status = "ok"
    note: str = ""
    unknown_actor_files: dict[str, int] = field(default_factory=dict)

    @property
    def unknown_actor(self) -> int:
        return sum(self.unknown_actor_files.values())

    @property
    def candidates(self) -> int:
        return sum(p.candidates for p in self.periods)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "actor": self.actor,
            "where": self.where,
            "pick": self.pick,
            "fields": [f.to_json() for f in self.fields],
            "status": self.status,
            "events_of_type": self.events_of_type,
            "events_by_actor": self.events_by_actor,
            "events_matching": self.events_matching,
            "actors": self.actors,
            "candidates": self.candidates,
            "periods": [p.to_json() for p in self.periods],
            "note": self.note,
            "unknown_actor": self.unknown_actor,
            "unknown_actor_files": self.unknown_actor_files,
        }


@dataclass
class ConditionCheck:
    """A top-level condition: its needs (one per leaf) and coverage of the whole condition.

    For a combinator, a candidate is covered when it has the data of every leaf that needs
    data (of every leaf, when none does), and ``decided_by_if_no_data`` counts candidates for
    which ``if_no_data`` applied to at least one leaf.
    """

    name: str
    description: str
    if_no_data: str | None
    needs: list[NeedCheck]
    events_matching: int
    periods: list[PeriodCoverage]
    status: Status = "ok"
    note: str = ""

    @property
    def total(self) -> PeriodCoverage:
        return _totals(self.periods)

    def to_json(self) -> dict[str, Any]:
        total = self.total
        return {
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "if_no_data": self.if_no_data,
            "needs": [n.to_json() for n in self.needs],
            "events_matching": self.events_matching,
            "candidates": total.candidates,
            "covered": total.covered,
            "coverage": _ratio(total.coverage),
            "decided_by_if_no_data": total.decided_by_if_no_data,
            "periods": [p.to_json() for p in self.periods],
            "note": self.note,
        }


@dataclass
class QuantityCheck:
    """The quantity's aggregates (``sum: {type: payment, ...}`` and its ``minus`` terms)."""

    needs: list[NeedCheck]
    status: Status = "ok"
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "needs": [n.to_json() for n in self.needs],
            "note": self.note,
        }


@dataclass
class CheckResult:
    """Whether one export can support one definition, part by part."""

    definition: Definition
    as_of: dt.datetime
    source: str
    events: int
    types: dict[str, int]
    min_coverage: float
    period: str | None
    anchor: AnchorCheck
    conditions: list[ConditionCheck]
    quantity: QuantityCheck | None
    notes: list[str] = field(default_factory=list)
    #: Options of the vendor adapters that produced the events (docs/sources.md).
    choices: list[Choice] = field(default_factory=list)

    @property
    def parts(self) -> list[tuple[str, Status]]:
        """Every checked part with its status: anchor, conditions, quantity."""
        out: list[tuple[str, Status]] = [("anchor", self.anchor.status)]
        out.extend((c.name, c.status) for c in self.conditions)
        if self.quantity is not None:
            out.append(("quantity", self.quantity.status))
        return out

    @property
    def status(self) -> Status:
        """The worst status of any part."""
        return max((s for _, s in self.parts), key=STATUSES.index)

    @property
    def missing(self) -> list[str]:
        """Parts with no data at all: the finding that makes ``truecount check`` exit 1."""
        return [name for name, s in self.parts if s == "missing"]

    @property
    def ok(self) -> bool:
        """True when no part is missing (thin parts are reported, but do not fail a check)."""
        return not self.missing

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``truecount check --format json`` (docs/check.md)."""
        return {
            "definition": self.definition.identity(),
            "as_of": self.as_of.isoformat(),
            "source": self.source,
            "period": self.period,
            "min_coverage": self.min_coverage,
            "status": self.status,
            "ok": self.ok,
            "missing": self.missing,
            "events": self.events,
            "types": self.types,
            "anchor": self.anchor.to_json(),
            "conditions": [c.to_json() for c in self.conditions],
            "quantity": self.quantity.to_json() if self.quantity is not None else None,
            "notes": self.notes,
            "choices": [c.to_json() for c in self.choices],
        }


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class _Need:
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


def _plan_needs(definition: Definition) -> tuple[_Need, list[tuple[str, list[_Need]]], list[_Need]]:
    """The anchor, the needs of each top-level condition, and the quantity's terms."""
    anchor = definition.anchor
    anchor_need = _Need("n0", "anchor", "anchor", anchor, None, None, True, False, None)
    numbers = {id(leaf.cond): leaf.index for leaf in plan_leaves(definition)}
    needs: list[_Need] = []

    def walk(cond: Condition, path: str, negated: bool, into: list[_Need]) -> None:
        leaf = cond.leaf
        if leaf is not None:
            empty = _passes_on_empty(cond)
            need = _Need(
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

    conditions: list[tuple[str, list[_Need]]] = []
    for name, cond in definition.conditions.items():
        mine: list[_Need] = []
        walk(cond, name, False, mine)
        conditions.append((name, mine))

    quantity: list[_Need] = []
    q = definition.quantity
    path = "quantity"
    while isinstance(q, QuantitySpec):
        agg = q.agg
        need = _Need(
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
    anchor, conditions, quantity = _plan_needs(definition)
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


def _usable_pred(need: _Need) -> exp.Expr:
    """Events on which the filter can be decided: where true or false (not unknown), field set."""
    parts: list[exp.Expr] = [_base_pred(need.flt)]
    if need.flt.where_expr is not None:
        decided = exp.Is(
            this=exp.Paren(this=where_sql(need.flt.where_expr, _E)), expression=exp.Null()
        )
        parts.append(exp.Not(this=exp.Paren(this=decided)))
    if need.agg_field is not None:
        parts.append(_numeric_present(need.agg_field))
    return _and(parts)


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
class _ScanStats:
    """What one grouped scan of the visible events tells: the per-need and per-condition event
    counts, events per type, actors per type, and actor values outside the glossary."""

    stats: dict[str, int]
    types: dict[str, int]
    actors: dict[str, dict[str, int]]
    unknown: dict[str, int]


def _by_count(pairs: dict[Any, int]) -> list[tuple[Any, int]]:
    """Most events first, then by value (None last), as the tables in the report list them."""
    return sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))


def _scan_stats(
    con: duckdb.DuckDBPyConnection,
    needs: list[_Need],
    conditions: list[tuple[str, list[_Need]]],
    actor_types: list[str],
    as_of: dt.datetime,
) -> _ScanStats:
    """One scan of the visible events, grouped by type and actor (a few dozen groups).

    Per need: events of the type, by the actor, carrying each field, usable and matching; per
    condition: events matching any of its leaves. Summed over the groups they are the export's
    totals; the groups themselves are the events per type, the actors seen for the types a
    filter names an actor of, and the actor values no filter can see. One pass instead of one
    per question, which matters at millions of events.
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

    for n in needs:
        on_group(n.flt, f"{n.key}_of_type", with_actor=False)
        on_group(n.flt, f"{n.key}_by_actor", with_actor=True)
        for i, name in enumerate(n.fields):
            on_scan(_and([_base_pred(n.flt), _present(name)]), f"{n.key}_f{i}")
        if n.flt.where_expr is None and n.agg_field is None:
            on_group(n.flt, f"{n.key}_usable", with_actor=True)
        else:
            on_scan(_usable_pred(n), f"{n.key}_usable")
        if n.flt.where_expr is None:
            on_group(n.flt, f"{n.key}_matching", with_actor=True)
        else:
            on_scan(filter_sql(n.flt, _E), f"{n.key}_matching")
    for k, (_, mine) in enumerate(conditions):
        if len(mine) == 1 and mine[0].flt.where_expr is None:
            on_group(mine[0].flt, f"c{k}_matching", with_actor=True)
        elif mine:
            on_scan(_or([filter_sql(n.flt, _E) for n in mine]), f"c{k}_matching")
    # events whose attributes may hold an adapter's caveat: none, and _caveats need not run
    cols.append(_count_if(_may_have_caveat(), "may_have_caveat"))
    query = (
        exp.select(*cols)
        .from_(_events())
        .where(_visible(as_of))
        .group_by(_col("type"), _col("actor"))
    )
    cursor = con.execute(render_sql(query, "duckdb", pretty=False))
    names = [d[0] for d in cursor.description]
    stats: dict[str, int] = dict.fromkeys([*by_group, *names[2:]], 0)
    types: dict[Any, int] = {}
    actors: dict[str, dict[Any, int]] = {}
    unknown: dict[Any, int] = {}
    wanted = set(actor_types)
    for row in cursor.fetchall():
        type_, actor, events = row[0], row[1], int(row[2] or 0)
        for name, value in zip(names[2:], row[2:], strict=True):
            stats[name] += int(value or 0)
        for alias, (of_type, of_actor) in by_group.items():
            if type_ == of_type and (of_actor is None or actor == of_actor):
                stats[alias] += events
        types[type_] = types.get(type_, 0) + events
        if type_ in wanted:
            per = actors.setdefault(str(type_), {})
            per[actor] = per.get(actor, 0) + events
        if actor is not None and actor not in KNOWN_ACTORS:
            unknown[actor] = unknown.get(actor, 0) + events
    for alias, twin in same_as.items():
        stats[alias] = stats[twin]
    return _ScanStats(
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


def _caveats(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> list[tuple[str, int, int]]:
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


def _coverage_rows(
    con: duckdb.DuckDBPyConnection,
    definition: Definition,
    needs: list[_Need],
    conditions: list[tuple[str, list[_Need]]],
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

    def covered(n: _Need) -> exp.Expr:
        return exp.GT(this=per_entity(n.key), expression=exp.Literal.number(0))

    def no_data(n: _Need) -> exp.Expr | None:
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


def _coverage_keys(needs: list[_Need]) -> tuple[list[_Need], dict[str, str]]:
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
    anchor_need, cond_needs, quantity_needs = _plan_needs(definition)
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
    checked: list[_Need],
    type_key: dict[str, str],
) -> bool:
    """The verdict table carries every coverage count :func:`coverage_counts` names."""
    have = {str(r[0]) for r in con.execute(f"DESCRIBE {verdicts}").fetchall()}
    want = [n.key for n in checked] + list(type_key.values())
    return bool(want) and all(f"{COVERAGE_PREFIX}{k}" in have for k in want)


def _type_pred_of(type_: str) -> exp.Expr:
    return exp.EQ(this=_col("type"), expression=_lit(type_))


# --------------------------------------------------------------------------- entry points


def check(
    definition: Definition,
    events: EventsInput,
    as_of: dt.datetime | str | None = None,
    period: str | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> CheckResult:
    """Check whether ``events`` can support ``definition``; see :func:`check_source`."""
    source = open_events(events)
    try:
        return check_source(definition, source, as_of, period, min_coverage)
    finally:
        source.con.close()


def check_source(
    definition: Definition,
    source: EventSource,
    as_of: dt.datetime | str | None = None,
    period: str | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    *,
    verdicts: str | None = None,
) -> CheckResult:
    """:func:`check` on an open source. ``period`` restricts coverage to one period (events
    counts stay export-wide); ``min_coverage`` (0 to 1) is the share below which a condition
    that needs data is ``thin``.

    ``verdicts`` names the verdict table :func:`truecount.engine.run.count_source` left on
    ``source.con`` for this definition and as-of time (counted without ``known_at``): the
    candidates are then read from it rather than computed again, which is what lets a caller
    that counts anyway (the report) check at the cost of two scans of the events."""
    if not 0.0 <= min_coverage <= 1.0:
        raise InputError(
            Problem(
                f"minimum coverage {min_coverage:g} is not a share",
                Location(key="min-coverage"),
                "give a number from 0 to 1, e.g. 0.5 for half of the candidates",
            )
        )
    con = source.con
    con.execute("SET TimeZone = 'UTC'")
    moment = _parse_as_of(as_of) or source.max_ts or default_as_of(con) or dt.datetime(1970, 1, 1)

    anchor_need, cond_needs, quantity_needs = _plan_needs(definition)
    needs = [anchor_need, *(n for _, mine in cond_needs for n in mine), *quantity_needs]
    actor_types = sorted({n.flt.type for n in needs if n.flt.actor is not None})
    scanned = _scan_stats(con, needs, cond_needs, actor_types, moment)
    stats, types, actors = scanned.stats, scanned.types, scanned.actors
    rows = _coverage_rows(con, definition, needs, cond_needs, moment, verdicts)
    no_actor = unknown_actors(con, [(n.key, n.flt) for n in needs], moment)
    cautious = {leaf.index: leaf.unknown_actor for leaf in plan_leaves(definition)}

    if period is not None:
        known = [str(r["period"]) for r in rows]
        if known and period not in known:  # with no candidates at all, the anchor says why
            raise InputError(
                Problem(
                    f"period '{period}' has no candidates",
                    Location(key="period"),
                    f"periods in the data: {', '.join(known) or 'none'}",
                )
            )
        rows = [r for r in rows if r["period"] == period]

    def periods_of(covered_key: str, no_data_key: str) -> list[PeriodCoverage]:
        return [
            PeriodCoverage(
                str(r["period"]),
                int(r["candidates"]),
                int(r.get(covered_key) or 0),
                int(r.get(no_data_key) or 0),
            )
            for r in rows
        ]

    def need_check(n: _Need) -> NeedCheck:
        k = n.key
        nc = NeedCheck(
            path=n.path,
            form=n.form,
            type=n.flt.type,
            actor=n.flt.actor,
            where=str(n.flt.where_expr) if n.flt.where_expr is not None else None,
            if_no_data=n.if_no_data,
            expects_data=n.expects_data,
            passes_on_empty=n.passes_on_empty,
            fields=[FieldPresence(f, stats[f"{k}_f{i}"]) for i, f in enumerate(n.fields)],
            events_of_type=stats[f"{k}_of_type"],
            events_by_actor=stats[f"{k}_by_actor"],
            events_usable=stats[f"{k}_usable"],
            events_matching=stats[f"{k}_matching"],
            actors=actors.get(n.flt.type, {}) if n.flt.actor is not None else None,
            periods=periods_of(f"{k}_covered", f"{k}_no_data"),
        )
        nc.status = _need_status(nc, min_coverage)
        nc.note = _need_note(nc, min_coverage, quantity=n.leaf_index is None)
        nc.unknown_actor_files = no_actor.get(k, {})
        if nc.unknown_actor:
            said = unknown_actor_note(
                n.flt.type,
                who(n.flt),
                nc.unknown_actor_files,
                cautious.get(n.leaf_index or 0, False),
                role="leaf" if n.leaf_index is not None else "quantity",
            )
            nc.note += f"; {said}"
        return nc

    a = definition.anchor
    anchor = AnchorCheck(
        type=a.type,
        actor=a.actor,
        where=str(a.where_expr) if a.where_expr is not None else None,
        pick=a.pick,
        fields=[FieldPresence(f, stats[f"n0_f{i}"]) for i, f in enumerate(anchor_need.fields)],
        events_of_type=stats["n0_of_type"],
        events_by_actor=stats["n0_by_actor"],
        events_matching=stats["n0_matching"],
        actors=actors.get(a.type, {}) if a.actor is not None else None,
        periods=[
            AnchorPeriod(str(r["period"]), int(r["candidates"]), int(r["pending"])) for r in rows
        ],
    )
    anchor.status = "missing" if anchor.candidates == 0 else "ok"
    anchor.note = _anchor_note(anchor, stats["events"], types, period)
    anchor.unknown_actor_files = no_actor.get("n0", {})
    if anchor.unknown_actor:
        said = unknown_actor_note(a.type, who(a), anchor.unknown_actor_files, False, "anchor")
        anchor.note += f"; {said}"

    conditions: list[ConditionCheck] = []
    for k, (name, mine) in enumerate(cond_needs):
        cond = definition.conditions[name]
        checks = [need_check(n) for n in mine]
        cc = ConditionCheck(
            name=name,
            description=describe_condition(cond),
            if_no_data=cond.if_no_data,
            needs=checks,
            events_matching=stats.get(f"c{k}_matching", 0),
            periods=periods_of(f"c{k}_covered", f"c{k}_no_data"),
        )
        status_of = {id(n.cond): c.status for n, c in zip(mine, checks, strict=True)}
        cc.status = _tree_status(cond, status_of)
        cc.note = _combined_note(checks, leaf=cond.leaf is not None)
        conditions.append(cc)

    quantity: QuantityCheck | None = None
    if quantity_needs:
        checks = [need_check(n) for n in quantity_needs]
        quantity = QuantityCheck(checks, _worst([c.status for c in checks]))
        quantity.note = _combined_note(checks, leaf=len(checks) == 1)

    notes: list[str] = []
    pending = sum(p.pending for p in anchor.periods)
    if pending:
        notes.append(
            f"{pending:,} candidate{'s are' if pending != 1 else ' is'} pending (a window is "
            "still open at the as-of time); "
            "their data may still arrive, so their coverage can grow"
        )
    unknown = scanned.unknown
    if unknown:
        listed = ", ".join(f"`{k}` ({v:,} events)" for k, v in unknown.items())
        notes.append(
            f"actor values outside {', '.join(KNOWN_ACTORS)}: {listed}; filters on actor "
            "do not see them (map them with a value map in the mapping)"
        )
    caveats = _caveats(con, moment) if stats["may_have_caveat"] else []
    for caveat, entities, n in caveats:
        notes.append(
            f"{entities:,} {'entity' if entities == 1 else 'entities'} ({n:,} events): {caveat}"
        )
    if source.rows_skipped:
        notes.append(
            f"{source.rows_skipped:,} event rows of the input were not usable and left out"
        )

    return CheckResult(
        definition=definition,
        as_of=moment,
        source=source.description,
        choices=list(source.choices),
        events=stats["events"],
        types=types,
        min_coverage=min_coverage,
        period=period,
        anchor=anchor,
        conditions=conditions,
        quantity=quantity,
        notes=notes,
    )


# --------------------------------------------------------------------------- verdicts and words


def _expects(cond: Condition, need_of: dict[int, _Need]) -> bool:
    if cond.leaf is not None:
        return need_of[id(cond)].expects_data
    return any(_expects(c, need_of) for c in cond.children)


def _tree_covered(
    cond: Condition, need_of: dict[int, _Need], covered: Callable[[_Need], exp.Expr]
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


def _tree_status(cond: Condition, status_of: dict[int, Status]) -> Status:
    """A condition's status from its leaves': an ``any`` is as good as its best alternative
    (a definition may accept either of two export shapes), anything else as its worst part."""
    if cond.leaf is not None:
        return status_of[id(cond)]
    kids = [_tree_status(c, status_of) for c in cond.children]
    if cond.form == "any":
        return min(kids, key=STATUSES.index)
    return _worst(kids)


def _worst(statuses: list[Status]) -> Status:
    return max(statuses, key=STATUSES.index) if statuses else "ok"


def _need_status(n: NeedCheck, min_coverage: float) -> Status:
    """``missing``: no event the filter can decide on; ``thin``: some period below the share."""
    if n.events_of_type == 0 or n.events_by_actor == 0 or n.events_usable == 0:
        return "missing"
    if n.expects_data and _thin_periods(n.periods, min_coverage):
        return "thin"
    return "ok"


def _thin_periods(periods: list[PeriodCoverage], min_coverage: float) -> list[PeriodCoverage]:
    return [p for p in periods if p.coverage is not None and p.coverage < min_coverage]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _wants(n: NeedCheck) -> str:
    """``rated`` events by ``customer`` with ``value``: what a filter needs, in words."""
    text = f"`{n.type}` events"
    if n.actor is not None:
        text += f" by `{n.actor}`"
    if n.fields:
        text += " with " + " and ".join(f"`{f.name}`" for f in n.fields)
    return text


def _actors_text(actors: dict[str, int] | None) -> str:
    if not actors:
        return "none"
    return ", ".join(f"{k} {v:,}" for k, v in list(actors.items())[:6])


def _why_missing(n: NeedCheck) -> str:
    if n.events_of_type == 0:
        return "the export has none"
    if n.events_by_actor == 0:
        return (
            f"the export has {n.events_of_type:,} `{n.type}` events but none by `{n.actor}` "
            f"(actors: {_actors_text(n.actors)})"
        )
    lacking = [f"`{f.name}`" for f in n.fields if f.events == 0]
    if lacking:
        return (
            f"the export has {n.events_by_actor:,} `{n.type}` events but none carries "
            + " or ".join(lacking)
        )
    if n.where is None and n.fields:
        return (
            f"the export has {n.events_by_actor:,} `{n.type}` events but none carries a number "
            f"in `{n.fields[0].name}`"
        )
    return (
        f"the export has {n.events_by_actor:,} `{n.type}` events but on none of them can "
        f"`{n.where}` be decided"
    )


def _outcome(n: NeedCheck, uncovered: int, decided: int, everyone: bool, quantity: bool) -> str:
    """What happens to candidates without the data: if_no_data, or the leaf on no events."""
    if quantity:
        who = "every candidate" if everyone else f"{uncovered:,} candidates"
        return f"it is 0 for {who}"
    verdict = "passes" if n.passes_on_empty else "fails"
    by_data = uncovered - decided
    if decided and by_data == 0:
        who = "every candidate is" if everyone else f"{decided:,} verdicts are"
        return f"{who} decided by if_no_data: {n.if_no_data}" + (
            f" ({decided:,} verdicts)" if everyone else ""
        )
    if decided:
        return (
            f"{decided:,} verdicts are decided by if_no_data: {n.if_no_data}; "
            f"for the other {by_data:,} it {verdict} for lack of data"
        )
    who = f"every candidate ({uncovered:,})" if everyone else f"{uncovered:,} candidates"
    return f"it {verdict} for {who} for lack of data"


def _need_note(n: NeedCheck, min_coverage: float, quantity: bool) -> str:
    total = n.total
    head = f"needs {_wants(n)}"
    if n.status == "missing":
        text = f"{head}; {_why_missing(n)}"
        if total.candidates:
            text += " → " + _outcome(
                n, total.candidates, total.decided_by_if_no_data, True, quantity
            )
        return text
    if not total.candidates:
        return f"{head}; the export has {n.events_matching:,} matching events (no candidates)"
    uncovered = total.candidates - total.covered
    if n.status == "thin":
        low = _thin_periods(n.periods, min_coverage)
        where = ", ".join(f"{p.period}: {_pct(p.coverage)}" for p in low)
        text = (
            f"{head}; only {_pct(total.coverage)} of candidates have such an event "
            f"(below {_pct(min_coverage)}" + (f" in {where}" if len(n.periods) > 1 else "") + ")"
        )
        return text + " → " + _outcome(n, uncovered, total.decided_by_if_no_data, False, quantity)
    if not n.expects_data:
        return (
            f"{head}; the export has {n.events_matching:,} matching events; "
            f"{_pct(total.coverage)} of candidates have such an event "
            "(absence passes, so a low share is expected)"
        )
    text = f"{head}; {_pct(total.coverage)} of candidates have such an event"
    if total.decided_by_if_no_data:
        text += (
            f"; {total.decided_by_if_no_data:,} verdicts are decided by if_no_data: {n.if_no_data}"
        )
    return text


def _combined_note(needs: list[NeedCheck], leaf: bool) -> str:
    if leaf and len(needs) == 1:
        return needs[0].note
    return "; ".join(f"{n.path}: {n.note}" for n in needs)


def _anchor_note(a: AnchorCheck, events: int, types: dict[str, int], period: str | None) -> str:
    what = f"{a.pick} `{a.type}`" + (f" by `{a.actor}`" if a.actor is not None else "")
    if a.where is not None:
        what += f" where `{a.where}`"
    if a.status == "ok":
        n = len(a.periods)
        span = f"period {period}" if period is not None else f"{n} period{'s' if n != 1 else ''}"
        return f"{what}: {a.candidates:,} candidates in {span}"
    if events == 0:
        why = "the export has no events at all"
    elif a.events_of_type == 0:
        seen = ", ".join(f"{t} {c:,}" for t, c in list(types.items())[:8])
        why = f"the export has no `{a.type}` events (types: {seen})"
    elif a.actor is not None and a.events_by_actor == 0:
        why = (
            f"the export has {a.events_of_type:,} `{a.type}` events but none by `{a.actor}` "
            f"(actors: {_actors_text(a.actors)})"
        )
    else:
        lacking = [f"`{f.name}`" for f in a.fields if f.events == 0]
        why = f"the export has {a.events_by_actor:,} `{a.type}` events but none where `{a.where}`"
        if lacking:
            why += " (none carries " + " or ".join(lacking) + ")"
    return f"{what}; {why} → no entity is a candidate, nothing can be counted"


__all__ = [
    "DEFAULT_MIN_COVERAGE",
    "STATUSES",
    "AnchorCheck",
    "AnchorPeriod",
    "CheckResult",
    "ConditionCheck",
    "FieldPresence",
    "NeedCheck",
    "PeriodCoverage",
    "QuantityCheck",
    "Requirement",
    "check",
    "check_source",
    "requirements",
]
