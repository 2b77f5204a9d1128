"""Status histories: one row per update becomes ``status_changed`` (and close/reopen) events.

Help desks export a ticket's life as a list of updates, each with the status *after* the update.
A reopen is only visible as a transition, so transitions are what we store: each update becomes
a ``status_changed`` event with ``attrs.from`` (the previous status of the same entity; absent
for its first update) and ``attrs.to``. Updates are ordered by ``ts`` and then by the export's
update number (``seq``); the row number only separates rows the export itself cannot order.

When the mapping lists ``closed_statuses``, two more events are derived so that definitions
can use them directly: ``closed`` on entering a closed-like status from any other (or as the
first update), and ``reopened`` on leaving a closed-like status for one that is not. They share
the update's time, actor and source; their ``event_id`` is the update's id plus ``/closed`` or
``/reopened``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlglot import exp

from truecount.ingest.canonical import CANONICAL_COLUMNS
from truecount.ingest.plan import PROBLEM, STATUS
from truecount.ingest.source import ROW_COLUMN, call

#: Orders events derived from the same row (the status change first).
SUB_COLUMN: Final[str] = "__tc_sub"
_FROM: Final[str] = "__tc_from"


def history_events(stage: str, closed_statuses: Sequence[str] | None) -> exp.Select:
    """The derived events of the good rows in the ``stage`` table, with row and sub number."""
    previous = exp.Window(
        this=call("lag", exp.column(STATUS)),
        partition_by=[exp.column("entity_id")],
        order=exp.Order(
            expressions=[
                exp.Ordered(this=exp.column("ts")),
                exp.Ordered(this=exp.column("seq")),
                exp.Ordered(this=exp.column(ROW_COLUMN)),
            ]
        ),
    )
    ordered = (
        exp.select(exp.Star(), previous.as_(_FROM))
        .from_(stage)
        .where(exp.Is(this=exp.column(PROBLEM), expression=exp.Null()))
    )
    change = exp.Cast(
        this=call(
            "json_merge_patch",
            exp.Coalesce(
                this=exp.column("attrs"),
                expressions=[
                    exp.Cast(this=exp.Literal.string("{}"), to=exp.DataType.build("JSON"))
                ],
            ),
            call(
                "json_object",
                exp.Literal.string("from"),
                exp.column(_FROM),
                exp.Literal.string("to"),
                exp.column(STATUS),
            ),
        ),
        to=exp.DataType.build("JSON"),
    )

    def events(kind: str, sub: int, condition: exp.Expr | None) -> exp.Select:
        suffix = "" if sub == 0 else f"/{kind}"
        picks: list[exp.Expr] = []
        for name in CANONICAL_COLUMNS:
            if name == "event_id" and suffix:
                value: exp.Expr = exp.DPipe(
                    this=exp.column("event_id"), expression=exp.Literal.string(suffix)
                )
            elif name == "type":
                value = exp.Literal.string(kind)
            elif name == "attrs":
                value = change.copy()
            else:
                value = exp.column(name)
            picks.append(value.as_(name, quoted=True))
        query = exp.select(
            *picks, exp.column(ROW_COLUMN), exp.Literal.number(sub).as_(SUB_COLUMN)
        ).from_(ordered.subquery("h"))
        return query.where(condition) if condition is not None else query

    result: exp.Select | exp.Union = events("status_changed", 0, None)
    if closed_statuses:
        closed = [exp.Literal.string(s) for s in closed_statuses]

        def is_closed(col: str) -> exp.Expr:
            return exp.In(this=exp.column(col), expressions=[c.copy() for c in closed])

        entered = exp.and_(
            is_closed(STATUS),
            exp.or_(
                exp.Is(this=exp.column(_FROM), expression=exp.Null()),
                exp.Not(this=is_closed(_FROM)),
            ),
        )
        left = exp.and_(is_closed(_FROM), exp.Not(this=is_closed(STATUS)))
        result = exp.union(result, events("closed", 1, entered), distinct=False)
        result = exp.union(result, events("reopened", 1, left), distinct=False)
    return exp.select(exp.Star()).from_(result.subquery("derived"))
