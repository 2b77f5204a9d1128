"""Events with no actor, for the filters that name one: how many, from which file, and what
that does to the count.

An export does not always say who acted (a Zendesk audit page whose ticket's creating audit
is on a page not loaded, a mapping without an actor column). Such an event has ``actor``
NULL. A filter ``actor: human`` can neither count it as a human's nor rule it out, so the
compiler reads it cautiously (see :class:`truecount.engine.compile.Leaf`), and ``check`` says,
per filter that names an actor, how many events of its type (and ``where``) have none, per
file they came from. The file is the ``source`` column up to its last ``:`` (``file:row``,
as every reader writes it).

One scan of the events without an actor, grouped by file, with one conditional count per
filter; user text only becomes literal nodes, as in the compiler.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

import duckdb
from sqlglot import exp

from truecount.definition.model import EventFilter
from truecount.definition.where import fields_used
from truecount.engine.compile import reads_actor, render_sql, where_sql
from truecount.ingest.canonical import EVENTS_TABLE

_E: Final[str] = "e"
#: What a NULL ``source`` is shown as.
NO_SOURCE: Final[str] = "(no source)"


def _col(name: str) -> exp.Column:
    return exp.column(name, table=_E)


def _file() -> exp.Expr:
    """``source`` without its trailing ``:row``."""
    stripped = exp.RegexpReplace(
        this=_col("source"),
        expression=exp.Literal.string(":[^:]*$"),
        replacement=exp.Literal.string(""),
    )
    return exp.Coalesce(this=stripped, expressions=[exp.Literal.string(NO_SOURCE)])


def _pred(flt: EventFilter) -> exp.Expr:
    """Type and where; a where that reads ``actor`` is unknown on these events: true then."""
    parts: list[exp.Expr] = [exp.EQ(this=_col("type"), expression=exp.Literal.string(flt.type))]
    if flt.where_expr is not None:
        where: exp.Expr = exp.Paren(this=where_sql(flt.where_expr, _E))
        if "actor" in fields_used(flt.where_expr):
            where = exp.Coalesce(this=where, expressions=[exp.true()])
        parts.append(where)
    out = parts[0]
    for p in parts[1:]:
        out = exp.And(this=out, expression=p)
    return out


def unknown_actors(
    con: duckdb.DuckDBPyConnection,
    filters: Sequence[tuple[str, EventFilter]],
    as_of: dt.datetime,
) -> dict[str, dict[str, int]]:
    """Per key of ``filters`` that decide on the actor (``actor:``, or a where reading it):
    file -> visible events of the filter's type, where true, with no actor. Keys without any
    such event map to ``{}``; other filters are left out."""
    named = [(key, flt) for key, flt in filters if reads_actor(flt)]
    out: dict[str, dict[str, int]] = {key: {} for key, _ in named}
    if not named:
        return out
    moment = exp.cast(
        exp.Literal.string(as_of.isoformat(sep=" ", timespec="microseconds")),
        exp.DataType.build("TIMESTAMP"),
    )
    counts = [
        exp.alias_(
            exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=_pred(flt))),
            f"k{i}",
        )
        for i, (_, flt) in enumerate(named)
    ]
    query = (
        exp.select(exp.alias_(_file(), "file"), *counts)
        .from_(exp.to_table(EVENTS_TABLE).as_(_E))
        .where(
            exp.And(
                this=exp.Is(this=_col("actor"), expression=exp.Null()),
                expression=exp.LTE(this=_col("ts"), expression=moment),
            )
        )
        .group_by(exp.column("file"))
        .order_by(exp.column("file"))
    )
    for row in con.execute(render_sql(query, "duckdb", pretty=False)).fetchall():
        for i, (key, _) in enumerate(named):
            if row[i + 1]:
                out[key][str(row[0])] = int(row[i + 1])
    return out


def who(flt: EventFilter) -> str:
    """The actor a filter asks for, in words: `human`, or the where that reads the actor."""
    return f"`{flt.actor}`" if flt.actor is not None else f"the actor `{flt.where_expr}` asks for"


def unknown_actor_note(
    type_: str, actor: str, files: dict[str, int], cautious: bool, role: str = "leaf"
) -> str:
    """What the events without an actor do to one filter, in words ('' when there are none).

    ``actor`` is :func:`who` of the filter; ``role``: ``anchor``, ``leaf`` (``cautious`` when
    the leaf counts them as possible hits) or ``quantity``."""
    total = sum(files.values())
    if not total:
        return ""
    shown = ", ".join(f"{f} {n:,}" for f, n in list(files.items())[:5])
    more = f", ... ({len(files) - 5} more files)" if len(files) > 5 else ""
    head = f"{total:,} `{type_}` events have no actor ({shown}{more})"
    if role == "anchor":
        return f"{head}: none of them can anchor a candidate (not known to be by {actor})"
    if role != "leaf":
        return f"{head}: they are not counted as by {actor}"
    if cautious:
        return (
            f"{head}: each may be by {actor}, so a candidate with one in the window cannot "
            "pass this condition (the export should say who acted)"
        )
    return f"{head}: none of them proves an event by {actor}"


__all__ = ["NO_SOURCE", "unknown_actor_note", "unknown_actors", "who"]
