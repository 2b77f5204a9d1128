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
else is set-based, in :mod:`truecount.engine.coverage`: what the definition needs, one scan of
the events grouped by type and actor for what the export carries, the coverage per candidate
(from the count's verdicts when it carried it, else one grouping of the events per entity), and
a text search for the adapters' caveats; this module turns those figures into statuses and
words. Events with no actor, for the filters that name one, are counted per file by
:mod:`truecount.engine.actors`, so a NULL actor is never silent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import duckdb

from truecount.definition.model import (
    Condition,
    Definition,
)
from truecount.engine.actors import unknown_actor_note, unknown_actors, who
from truecount.engine.compile import describe_condition, plan_leaves
from truecount.engine.coverage import (
    Need,
    ScanStats,
    coverage_rows,
    plan_needs,
    scan_caveats,
    scan_stats,
)
from truecount.engine.run import _parse_as_of, default_as_of
from truecount.engine.source import EventsInput, EventSource, attrs_not_json, open_events
from truecount.errors import InputError, Location, Problem
from truecount.ingest.canonical import EVENTS_TABLE, KNOWN_ACTORS
from truecount.ingest.choices import Choice

Status = Literal["ok", "thin", "missing"]

#: Statuses from best to worst; a part's status is the worst of its needs.
STATUSES: Final[tuple[Status, ...]] = ("ok", "thin", "missing")

#: Below this share of candidates with the data, a condition that needs data is ``thin``.
DEFAULT_MIN_COVERAGE: Final[float] = 0.5


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


def _scan(
    source: EventSource,
    needs: list[Need],
    cond_needs: list[tuple[str, list[Need]]],
    actor_types: list[str],
    moment: dt.datetime,
) -> ScanStats:
    """The scan by type and actor, on the events' text view when there is one; an ``attrs``
    that is not JSON is then refused here, by file and row, as the JSON view would have
    refused it (by value alone) in the middle of the scan."""
    table = source.text_table or EVENTS_TABLE
    try:
        scanned = scan_stats(source.con, needs, cond_needs, actor_types, moment, table=table)
    except duckdb.InvalidInputException:
        # a filter parsed an attrs that is not JSON before the scan could count it
        found = attrs_not_json(source)
        if found is None:
            raise
        raise found from None
    if scanned.stats.pop("attrs_not_json", 0):
        found = attrs_not_json(source)
        if found is not None:
            raise found
    return scanned


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

    anchor_need, cond_needs, quantity_needs = plan_needs(definition)
    needs = [anchor_need, *(n for _, mine in cond_needs for n in mine), *quantity_needs]
    actor_types = sorted({n.flt.type for n in needs if n.flt.actor is not None})
    scanned = _scan(source, needs, cond_needs, actor_types, moment)
    stats, types, actors = scanned.stats, scanned.types, scanned.actors
    rows = coverage_rows(con, definition, needs, cond_needs, moment, verdicts)
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

    def need_check(n: Need) -> NeedCheck:
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
    caveats = scan_caveats(con, moment) if stats["may_have_caveat"] else []
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
    "check",
    "check_source",
]
