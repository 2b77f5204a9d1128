"""The live log against a vendor's file export, event id by event id (``truecount log compare``).

Why: the meter is only useful as the record if what it received matches what the vendor
later exports and bills from. An event the export has and the meter never received was
either never sent live or was refused; an event the meter holds and the export lacks was
dropped from the export; an event both hold with different fields was rewritten after the
fact. Each of those is a question for the vendor, so the comparison lists them by event id.

Both sides are reduced to the same thing, the ``truecount.event.v1`` leaf of each event
(the eight fields a count reads, :mod:`truecount.evidence.records`), and joined on the event
id in DuckDB; no event row passes through Python. Every event of either side lands in exactly
one class, so the counts add up: ``export = export_only + changed + same`` (distinct ids) and
``log = log_only + changed + same``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import duckdb
from sqlglot import exp

from truecount.engine.source import EventsInput, open_events
from truecount.evidence import merkle
from truecount.evidence.livelog import load_journal, query_hashes
from truecount.evidence.records import EVENT_FIELDS, event_field_text, event_leaf_sql
from truecount.ingest.canonical import EVENTS_TABLE
from truecount.workspace import configure

_LOG: Final[str] = "_cmp_log"
_EXPORT: Final[str] = "_cmp_export"
_JOINED: Final[str] = "_cmp_joined"
#: The fields a listed event shows, besides its id.
SHOWN: Final[tuple[str, ...]] = ("entity_id", "ts", "type")


@dataclass
class Comparison:
    """Counts of each class and the first ``limit`` events of each, by event id."""

    log_events: int
    export_events: int
    export_distinct: int
    export_only: int
    log_only: int
    changed: int
    same: int
    listed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    limit: int | None = None

    @property
    def differs(self) -> bool:
        return bool(self.export_only or self.log_only or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "log_events": self.log_events,
            "export_events": self.export_events,
            "export_distinct_ids": self.export_distinct,
            "counts": {
                "export_only": self.export_only,
                "log_only": self.log_only,
                "changed": self.changed,
                "same": self.same,
            },
            "limit": self.limit,
            **self.listed,
        }


def _texts(alias: str) -> list[exp.Expr]:
    return [exp.alias_(event_field_text(f, alias), f"t_{f}") for f in EVENT_FIELDS]


def _export_rows(events: EventsInput) -> Any:
    """The export's events: id, the leaf field texts and the leaf (an Arrow table)."""
    source = open_events(events)
    try:
        select = exp.select(
            *_texts("e"), exp.alias_(event_leaf_sql("e"), "leaf")
        ).from_(exp.to_table(EVENTS_TABLE).as_("e"))  # fmt: skip
        return source.con.sql(select.sql("duckdb")).to_arrow_table()
    finally:
        source.con.close()


def journal_root(journal: Path, size: int) -> tuple[int, bytes | None]:
    """The journal's number of events, and the RFC 6962 root of its first ``size`` (None when
    it holds fewer): what a signed head of that size must sign."""
    with contextlib.closing(duckdb.connect()) as con:
        configure(con)
        n = load_journal(con, journal, _LOG)
        if n < size:
            return n, None
        leaves = query_hashes(
            con,
            f"SELECT __leaf FROM {_LOG} WHERE leaf_index < {int(size)} ORDER BY leaf_index",  # noqa: S608
        )
        return n, merkle.root(leaves)


def compare(journal: Path, events: EventsInput, limit: int | None = 50) -> Comparison:
    """Compare the meter's journal (the log, in leaf order) with an export's events."""
    with contextlib.closing(duckdb.connect()) as con:
        configure(con)
        load_journal(con, journal, _LOG)
        con.register(f"{_EXPORT}_in", _export_rows(events))
        log_rows = exp.select(
            exp.column("leaf_index"), *_texts("l"), exp.alias_(exp.column("__leaf"), "leaf")
        ).from_(exp.to_table(_LOG).as_("l"))
        con.execute(f"CREATE TEMP TABLE {_LOG}_t AS {log_rows.sql('duckdb')}")
        # an id the export repeats is one event of it (the first copy by leaf, for determinism)
        con.execute(
            f"CREATE TEMP TABLE {_EXPORT} AS SELECT * FROM {_EXPORT}_in "  # noqa: S608
            "QUALIFY row_number() OVER (PARTITION BY t_event_id ORDER BY leaf) = 1"
        )
        differ = [
            exp.If(
                this=exp.NullSafeEQ(
                    this=exp.column(f"t_{f}", "l"), expression=exp.column(f"t_{f}", "x")
                ).not_(),
                true=exp.Literal.string(f),
            )
            for f in EVENT_FIELDS
        ]
        fields = exp.func(
            "list_filter",
            exp.Array(expressions=[exp.Case(ifs=[d]) for d in differ]),
            exp.Lambda(
                this=exp.Not(this=exp.Is(this=exp.column("f"), expression=exp.Null())),
                expressions=[exp.to_identifier("f")],
            ),
        )
        kind = exp.Case(
            ifs=[
                exp.If(this=exp.column("leaf", "x").is_(exp.Null()), true=exp.Literal.string(
                    "log_only")),
                exp.If(this=exp.column("leaf", "l").is_(exp.Null()), true=exp.Literal.string(
                    "export_only")),
                exp.If(this=exp.EQ(this=exp.column("leaf", "l"), expression=exp.column(
                    "leaf", "x")), true=exp.Literal.string("same")),
            ],
            default=exp.Literal.string("changed"),
        )  # fmt: skip
        joined = (
            exp.select(
                exp.alias_(kind, "kind"),
                exp.alias_(exp.column("leaf_index", "l"), "leaf_index"),
                *[
                    exp.alias_(
                        exp.Coalesce(
                            this=exp.column(f"t_{f}", "l"), expressions=[exp.column(f"t_{f}", "x")]
                        ),
                        f,
                    )
                    for f in ("event_id", *SHOWN)
                ],
                exp.alias_(fields, "fields"),
            )
            .from_(exp.to_table(f"{_LOG}_t").as_("l"))
            .join(
                exp.to_table(_EXPORT).as_("x"),
                on=exp.EQ(
                    this=exp.column("t_event_id", "l"), expression=exp.column("t_event_id", "x")
                ),
                join_type="full outer",
            )
        )
        con.execute(f"CREATE TEMP TABLE {_JOINED} AS {joined.sql('duckdb')}")
        counts = dict(
            con.execute(f"SELECT kind, count(*) FROM {_JOINED} GROUP BY kind").fetchall()  # noqa: S608
        )
        totals = con.execute(
            f"SELECT (SELECT count(*) FROM {_LOG}), (SELECT count(*) FROM {_EXPORT}_in), "  # noqa: S608
            f"(SELECT count(*) FROM {_EXPORT})"
        ).fetchall()[0]
        result = Comparison(
            log_events=int(totals[0]),
            export_events=int(totals[1]),
            export_distinct=int(totals[2]),
            export_only=int(counts.get("export_only", 0)),
            log_only=int(counts.get("log_only", 0)),
            changed=int(counts.get("changed", 0)),
            same=int(counts.get("same", 0)),
            limit=limit,
        )
        for kind_name in ("export_only", "log_only", "changed"):
            shown = ["event_id", *SHOWN]
            shown += [] if kind_name == "export_only" else ["leaf_index"]
            shown += ["fields"] if kind_name == "changed" else []
            listing = (
                exp.select(*shown)
                .from_(_JOINED)
                .where(exp.column("kind").eq(exp.Literal.string(kind_name)))
                .order_by("event_id")
            )
            if limit is not None:
                listing = listing.limit(int(limit))
            table = con.sql(listing.sql("duckdb")).to_arrow_table()
            result.listed[kind_name] = table.to_pylist()
    return result
