"""Explain one entity: its events as the definition saw them, each condition, and what decided it.

The verdict and every condition's result come from the same compiled SQL as ``count`` (run with
the entity as a literal filter), so an explanation can never disagree with the count. The only
extra queries list, per leaf condition, the events inside its window, so a reader sees the
event that decided it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from truecount.definition.model import AggregateSpec, Condition, CountSpec, Definition
from truecount.engine.compile import (
    CONDITION_PREFIX,
    Leaf,
    compile_definition,
    describe_condition,
    plan_leaves,
    render_sql,
    selector_predicate,
)
from truecount.engine.run import _parse_as_of, default_as_of
from truecount.engine.source import EventsInput, open_events
from truecount.errors import InputError, Problem

_EVENT_COLS = ("event_id", "ts", "seq", "type", "actor", "value", "attrs")


@dataclass
class ConditionExplanation:
    """One condition (or nested part) for one anchor, with the events that decided it."""

    name: str
    description: str
    passed: bool | None
    matched: list[str] = field(default_factory=list)
    decided_by: str | None = None
    measure: float | None = None
    note: str | None = None
    children: list[ConditionExplanation] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "passed": self.passed,
            "matched_events": self.matched,
            "decided_by": self.decided_by,
            "measure": self.measure,
            "note": self.note,
            "children": [c.to_json() for c in self.children],
        }


@dataclass
class AnchorExplanation:
    anchor_event_id: str
    anchor_ts: dt.datetime
    period: str
    status: str
    quantity: float
    reason: str | None
    conditions: list[ConditionExplanation]

    def to_json(self) -> dict[str, Any]:
        return {
            "anchor_event_id": self.anchor_event_id,
            "anchor_ts": self.anchor_ts.isoformat(),
            "period": self.period,
            "status": self.status,
            "quantity": self.quantity,
            "reason": self.reason,
            "conditions": [c.to_json() for c in self.conditions],
        }


@dataclass
class Explanation:
    definition: Definition
    entity_id: str
    as_of: dt.datetime
    events: list[dict[str, Any]]
    anchors: list[AnchorExplanation]

    def to_json(self) -> dict[str, Any]:
        return {
            "definition": self.definition.identity(),
            "entity_id": self.entity_id,
            "as_of": self.as_of.isoformat(),
            "events": [
                {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in e.items()}
                for e in self.events
            ],
            "anchors": [a.to_json() for a in self.anchors],
        }


def _entity_events(con: Any, entity_id: str, as_of: dt.datetime) -> list[dict[str, Any]]:
    query = (
        exp.select(*_EVENT_COLS)
        .from_("events")
        .where(exp.EQ(this=exp.column("entity_id"), expression=exp.Literal.string(entity_id)))
        .order_by("ts", "seq NULLS FIRST", "event_id")
    )
    rows = con.execute(query.sql("duckdb")).fetchall()
    events = [dict(zip(_EVENT_COLS, r, strict=True)) for r in rows]
    for e in events:
        e["visible"] = e["ts"] <= as_of
    return events


def _window_events(
    con: Any,
    leaf: Leaf,
    entity_id: str,
    anchor_id: str,
    anchor_ts: dt.datetime,
    as_of: dt.datetime,
    anchor_type: str | None = None,
) -> list[str]:
    anchor = exp.select(
        exp.alias_(exp.Literal.string(anchor_id), "anchor_event_id"),
        exp.alias_(
            exp.cast(
                exp.Literal.string(anchor_ts.isoformat(sep=" ")), exp.DataType.build("TIMESTAMP")
            ),
            "anchor_ts",
        ),
    )
    cond = exp.and_(
        exp.EQ(this=exp.column("entity_id", "e"), expression=exp.Literal.string(entity_id)),
        exp.LTE(
            this=exp.column("ts", "e"),
            expression=exp.cast(
                exp.Literal.string(as_of.isoformat(sep=" ")), exp.DataType.build("TIMESTAMP")
            ),
        ),
        selector_predicate(leaf.sel, anchor_type=anchor_type, unknown_actor=leaf.unknown_actor),
    )
    query = (
        exp.select(exp.column("event_id", "e"))
        .from_(exp.to_table("events").as_("e"))
        .join(anchor.subquery("a"), join_type="cross")
        .where(cond)
        .order_by("e.ts", "e.seq NULLS FIRST", "e.event_id")
    )
    return [str(r[0]) for r in con.execute(query.sql("duckdb")).fetchall()]


def explain(
    definition: Definition,
    events: EventsInput,
    entity_id: str,
    as_of: dt.datetime | str | None = None,
) -> Explanation:
    """Explain the verdict(s) of one entity; raise InputError if the export does not have it."""
    source = open_events(events)
    con = source.con
    con.execute("SET TimeZone = 'UTC'")
    moment = _parse_as_of(as_of) or default_as_of(con) or dt.datetime(1970, 1, 1)
    evs = _entity_events(con, entity_id, moment)
    if not evs:
        raise InputError(
            Problem(
                f"entity '{entity_id}' has no events in {source.description}",
                hint="check the id (case, whitespace, prefixes) or the --events files",
            )
        )
    query = compile_definition(definition, moment, entity_id=entity_id, with_leaves=True)
    cursor = con.execute(render_sql(query, "duckdb", pretty=False))
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    leaves = plan_leaves(definition)
    anchors: list[AnchorExplanation] = []
    for row in rows:
        conds = []
        for name, cond in definition.conditions.items():
            top = _explain_condition(con, name, cond, row, leaves, entity_id, moment)
            top.passed = row[CONDITION_PREFIX + name]
            conds.append(top)
        anchors.append(
            AnchorExplanation(
                anchor_event_id=str(row["anchor_event_id"]),
                anchor_ts=row["anchor_ts"],
                period=str(row["period"]),
                status=str(row["status"]),
                quantity=float(row["quantity"]),
                reason=row["reason"],
                conditions=conds,
            )
        )
    return Explanation(definition, entity_id, moment, evs, anchors)


def _explain_condition(
    con: Any,
    name: str,
    cond: Condition,
    row: dict[str, Any],
    leaves: list[Leaf],
    entity_id: str,
    as_of: dt.datetime,
) -> ConditionExplanation:
    out = ConditionExplanation(name=name, description=describe_condition(cond), passed=None)
    if cond.leaf is None:
        for i, child in enumerate(cond.children):
            out.children.append(
                _explain_condition(
                    con, f"{name}.{cond.form}[{i}]", child, row, leaves, entity_id, as_of
                )
            )
        return out
    leaf = next(lf for lf in leaves if lf.cond is cond)
    out.passed = row[f"leaf{leaf.index}_pass"]
    hits = row[f"leaf{leaf.index}_hits"]
    out.measure = float(hits) if hits is not None else None
    out.matched = _window_events(
        con, leaf, entity_id, str(row["anchor_event_id"]), row["anchor_ts"], as_of
    )
    if cond.form in {"exists", "absent"}:
        out.decided_by = out.matched[0] if out.matched else None
    elif isinstance(leaf.sel, AggregateSpec | CountSpec) and out.matched:
        out.decided_by = ", ".join(out.matched[:5]) + (" ..." if len(out.matched) > 5 else "")
    if cond.if_no_data is not None:
        has_type = any(e_type == leaf.sel.type for e_type in _types(con, entity_id, as_of))
        if not has_type:
            out.note = (
                f"no {leaf.sel.type} events for this entity: if_no_data {cond.if_no_data} applied"
            )
    return out


def _types(con: Any, entity_id: str, as_of: dt.datetime) -> list[str]:
    query = (
        exp.select("type")
        .distinct()
        .from_("events")
        .where(
            exp.and_(
                exp.EQ(this=exp.column("entity_id"), expression=exp.Literal.string(entity_id)),
                exp.LTE(
                    this=exp.column("ts"),
                    expression=exp.cast(
                        exp.Literal.string(as_of.isoformat(sep=" ")),
                        exp.DataType.build("TIMESTAMP"),
                    ),
                ),
            )
        )
    )
    return [str(r[0]) for r in con.execute(query.sql("duckdb")).fetchall()]
