"""The covered events of a pack and the shapes every tree format shares.

Split from :mod:`.run` so that the tree builders of each pack format (:mod:`.blocks` for
format 4, :mod:`.text_trees` for formats 1 to 3) read the same covered events and return the
same shapes without importing the verb that drives them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from truecount.ingest.canonical import EVENTS_TABLE

from .records import EVENT_FIELDS, event_field_text

#: The covered entities' ids, a temporary table of the pack's connection.
COVERED_TABLE: Final[str] = "_ev_covered"


@dataclass(frozen=True)
class Tree:
    """A Merkle root (hex) and its number of leaves."""

    root: str
    size: int


@dataclass
class EntityLeaves:
    """One entity's event leaves and their neighbours: indices, field texts, audit paths."""

    entity_id: str
    #: The entity's own leaf indices (the rest of ``indices`` are its neighbours).
    own: list[int] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    fields: list[list[str | None]] = field(default_factory=list)
    paths: list[list[bytes]] = field(default_factory=list)
    #: Per entity leaf (format ``truecount.entity-events.v1``): the field texts of its events,
    #: in leaf order (``fields`` stays empty then).
    events: list[list[list[str | None]]] = field(default_factory=list)


def neighbours(indices: list[int], size: int, position: int = 0) -> list[int]:
    """The leaves just before and after a range of leaves, where they exist.

    With no leaves (an entity absent from a tree), the two leaves around ``position``, the
    index where its rows would be in the sorted order: adjacent leaves whose entity ids bracket
    it are what shows the absence, since the tree is sorted by entity and signed.
    """
    if not indices:
        return [i for i in (position - 1, position) if 0 <= i < size]
    lo, hi = min(indices), max(indices)
    return [i for i in (lo - 1, hi + 1) if 0 <= i < size]


def insertion_point(keys: pa.ChunkedArray | pa.Array, entity_id: str) -> int:
    """How many leaves sort before ``entity_id`` (the trees are sorted by entity id first).

    Arrow compares strings byte by byte, as DuckDB's ORDER BY does on VARCHAR (UTF-8 bytes in
    code point order), so the count is the position the entity's rows would take.
    """
    before = pc.sum(pc.less(keys, pa.scalar(entity_id, pa.string()))).as_py()
    return int(before or 0)


def ts_param(value: dt.datetime) -> exp.Expr:
    return exp.cast(
        exp.Literal.string(value.isoformat(sep=" ", timespec="microseconds")),
        exp.DataType.build("TIMESTAMP"),
    )


def covered_events(as_of: dt.datetime, entities: list[str] | None = None) -> exp.Select:
    """The field texts (``_t_<field>``) of the covered events visible at ``as_of``.

    ``entities`` narrows them to those ids (a proof's leaves), still among the covered ones.
    """
    preds: list[exp.Expr] = [
        exp.LTE(this=exp.column("ts", "e"), expression=ts_param(as_of)),
        exp.In(
            this=exp.column("entity_id", "e"),
            query=exp.select("entity_id").from_(COVERED_TABLE).subquery(),
        ),
    ]
    if entities is not None:
        preds.append(
            exp.In(
                this=exp.column("entity_id", "e"),
                expressions=[exp.Literal.string(x) for x in entities] or [exp.Null()],
            )
        )
    return (
        exp.select(*[exp.alias_(event_field_text(f, "e"), f"_t_{f}") for f in EVENT_FIELDS])
        .from_(exp.to_table(EVENTS_TABLE).as_("e"))
        .where(exp.and_(*preds))
    )


def covered_where(as_of: dt.datetime, entities: list[str] | None = None) -> exp.Expr:
    """The covered events visible at ``as_of`` (of ``entities`` only, when given)."""
    where = covered_events(as_of, entities).args["where"]
    assert isinstance(where, exp.Where)
    condition: exp.Expr = where.this
    return condition
