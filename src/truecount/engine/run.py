"""Run a compiled definition on DuckDB: verdicts per candidate, counts per period, reasons.

The verdicts stay inside DuckDB as a table; summaries are computed there too, so counting ten
million candidates never turns them into Python objects. ``CountResult.verdicts`` converts to
Arrow only when asked.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import duckdb
import pyarrow as pa
from sqlglot import exp

from truecount.db import memory_limit_bytes, resources_guard
from truecount.definition.model import Definition
from truecount.engine.compile import CONDITION_PREFIX, compile_definition, render_sql
from truecount.engine.source import (
    EventsInput,
    EventSource,
    attrs_not_json,
    entity_row_groups,
    open_events,
)
from truecount.engine.verdicts import VerdictEngine, register_verdicts
from truecount.errors import InputError, Location, Problem

VERDICTS_TABLE: Final[str] = "verdicts"
EVENTS_TABLE_NAME: Final[str] = "events"
STATUSES: Final[tuple[str, ...]] = ("counted", "not_counted", "pending", "excluded")


@dataclass(frozen=True)
class PeriodCount:
    """Counts of one billing period (``candidates`` = the four statuses added up)."""

    period: str
    candidates: int
    counted: int
    not_counted: int
    pending: int
    excluded: int
    quantity: float


@dataclass(frozen=True)
class ReasonCount:
    """How many not-counted candidates a top-level condition rejected."""

    condition: str
    entities: int


@dataclass
class CountResult:
    """Verdicts of one definition over one event source at one as-of time."""

    definition: Definition
    as_of: dt.datetime
    sql: str
    periods: list[PeriodCount]
    reasons: list[ReasonCount]
    source: EventSource
    #: The second clock, when the count was made "as known at" a time (see :class:`KnownClock`).
    clock: KnownClock | None = None
    totals: PeriodCount = field(init=False)

    def __post_init__(self) -> None:
        self.totals = PeriodCount(
            period="total",
            candidates=sum(p.candidates for p in self.periods),
            counted=sum(p.counted for p in self.periods),
            not_counted=sum(p.not_counted for p in self.periods),
            pending=sum(p.pending for p in self.periods),
            excluded=sum(p.excluded for p in self.periods),
            quantity=sum(p.quantity for p in self.periods),
        )

    @property
    def candidate_periods(self) -> list[str]:
        """The periods with at least one candidate: a reconciliation on the same connection
        takes them instead of scanning the verdicts for their span."""
        return [p.period for p in self.periods if p.period is not None and p.candidates]

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.source.con

    def verdicts_relation(self, period: str | None = None) -> duckdb.DuckDBPyRelation:
        rel = self.con.table(VERDICTS_TABLE)
        if period is not None:
            rel = rel.filter(
                exp.EQ(this=exp.column("period"), expression=exp.Literal.string(period)).sql(
                    "duckdb"
                )
            )
        return rel.order("entity_id, anchor_ts, anchor_event_id")

    @property
    def verdicts(self) -> pa.Table:
        """All verdicts as an Arrow table, sorted by entity, anchor time and anchor event."""
        return self.verdicts_relation().to_arrow_table()

    def write_verdicts(self, path: str | Path, period: str | None = None) -> int:
        """Write verdicts as CSV or Parquet (by extension); return the number of rows."""
        target = Path(path)
        rel = self.verdicts_relation(period)
        suffix = target.suffix.lower()
        if suffix == ".parquet":
            rel.write_parquet(str(target))
        elif suffix in {".csv", ".txt", ""}:
            _neutralised(rel).write_csv(str(target), header=True)
        else:
            raise InputError(
                Problem(
                    f"cannot write verdicts as '{suffix}'",
                    Location(file=str(target)),
                    "use a .csv or .parquet file name",
                )
            )
        rows = rel.aggregate("count(*)").fetchall()
        return int(rows[0][0]) if rows else 0

    def close(self) -> None:
        self.con.close()

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``truecount count --format json`` (see README).

        ``known_at`` and ``clock`` appear only when the count was made as known at a time.
        """
        known: dict[str, Any] = {}
        if self.clock is not None:
            known = {"known_at": self.clock.known_at.isoformat(), "clock": self.clock.to_json()}
        return {
            "definition": self.definition.identity(),
            "as_of": self.as_of.isoformat(),
            **known,
            "periods": [
                {
                    "period": p.period,
                    "candidates": p.candidates,
                    "counted": p.counted,
                    "not_counted": p.not_counted,
                    "pending": p.pending,
                    "excluded": p.excluded,
                    "quantity": p.quantity,
                }
                for p in self.periods
            ],
            "reasons": [{"condition": r.condition, "entities": r.entities} for r in self.reasons],
            "choices": [c.to_json() for c in self.source.choices],
        }


#: Characters that make a spreadsheet treat a cell as a formula.
FORMULA_START: Final[str] = "=+-@\t\r"


def _neutralised(rel: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """Prefix text cells that a spreadsheet would run as a formula with an apostrophe."""
    cols: list[str] = []
    for name, dtype in zip(rel.columns, rel.dtypes, strict=True):
        ident = exp.to_identifier(name, quoted=True)
        col = exp.column(ident)
        if str(dtype) == "VARCHAR":
            starts = exp.func("LEFT", col, exp.Literal.number(1))
            risky = exp.In(this=starts, expressions=[exp.Literal.string(c) for c in FORMULA_START])
            safe = exp.Case(
                ifs=[
                    exp.If(this=risky, true=exp.DPipe(this=exp.Literal.string("'"), expression=col))
                ],
                default=col,
            )
            cols.append(exp.alias_(safe, ident).sql("duckdb"))
        else:
            cols.append(col.sql("duckdb"))
    return rel.project(", ".join(cols))


def default_as_of(con: duckdb.DuckDBPyConnection) -> dt.datetime | None:
    """The latest event time in the data: the export's own horizon, so reruns agree."""
    rows = con.execute("SELECT max(ts) FROM events").fetchall()
    value = rows[0][0] if rows else None
    return value if isinstance(value, dt.datetime) else None


def _names_a_day(text: str) -> bool:
    """Whether ``text`` is a date without a time, in any ISO 8601 spelling Python reads
    (``2026-03-01``, ``20260301``, ``2026-W09-7``, ``2026W097``), so every spelling of a day
    means the same instant: its end."""
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _parse_as_of(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            Problem(
                f"'{value}' is not a time",
                Location(key="as-of"),
                "use ISO 8601, e.g. 2026-03-31 or 2026-03-31T23:59:59Z "
                "(UTC unless an offset is given)",
            )
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    if _names_a_day(value):  # a bare date means the end of that day, however written
        parsed = dt.datetime.combine(parsed.date(), dt.time.max)  # 9999-12-31 too
    return parsed


def count(
    definition: Definition,
    events: EventsInput,
    as_of: dt.datetime | str | None = None,
    known_at: dt.datetime | str | None = None,
    event_counts: Sequence[tuple[str, exp.Expr]] = (),
) -> CountResult:
    """Evaluate ``definition`` over ``events`` and return verdicts, period counts and reasons.

    ``known_at`` counts only the events that had reached the buyer by then (``recorded_at``
    where the export has it, event time otherwise); ``as_of`` then defaults to ``known_at``.
    ``result.clock`` says which clock the data allowed. ``event_counts`` adds per-candidate
    event counts to the verdict table (``compile_definition``; the report's coverage).
    """
    if known_at is None:
        return count_source(definition, open_events(events), as_of, event_counts=event_counts)
    source = open_events(events)
    return count_source(definition, source, as_of, known_at=known_at, event_counts=event_counts)


def count_source(
    definition: Definition,
    source: EventSource,
    as_of: dt.datetime | str | None = None,
    known_at: dt.datetime | str | None = None,
    clock: KnownClock | None = None,
    engine: VerdictEngine | None = None,
    event_counts: Sequence[tuple[str, exp.Expr]] = (),
) -> CountResult:
    """:func:`count` on an already opened source (the CLI and reconcile reuse connections).

    ``clock`` passes a :class:`KnownClock` already measured on this source and time, so that
    counting several definitions as known at one time scans the events for it only once.
    ``engine`` computes the verdicts elsewhere (Spark, docs/engines.md); they are stored in
    ``source.con`` and summarised here like DuckDB's own.
    """
    con = source.con
    con.execute("SET TimeZone = 'UTC'")
    known = _parse_as_of(known_at)
    moment = (
        _parse_as_of(as_of)
        or known
        or source.max_ts
        or default_as_of(con)
        or dt.datetime(1970, 1, 1)
    )
    if known is not None and clock is None:
        clock = known_clock(con, moment, known)
    query = compile_definition(definition, moment, ordered=False, known_at=known)
    sql = render_sql(query, engine.dialect if engine else "duckdb", pretty=True)
    if engine is not None:
        register_verdicts(con, VERDICTS_TABLE, engine.verdicts(query))
    else:
        pieces = partitions_for(source)
        cuts = piece_cuts(source, pieces)
        if event_counts:  # the printed query stays the definition's own
            query = compile_definition(
                definition, moment, ordered=False, known_at=known, event_counts=event_counts
            )
        try:
            store_verdicts(
                con, definition, moment, known, pieces, query, cuts=cuts, event_counts=event_counts
            )
        except duckdb.ConversionException:
            # Parquet read in place: an attrs that is not JSON is named by file and row
            found = attrs_not_json(source)
            if found is None:
                raise
            raise found from None
    periods = _period_counts(con)
    reasons = _reason_counts(con, definition)
    return CountResult(definition, moment, sql, periods, reasons, source, clock=clock)


#: Forces the number of pieces a count is split into (``1`` = never split); unset = automatic.
PARTITIONS_ENV: Final[str] = "TRUECOUNT_PARTITIONS"
#: Bytes of memory budget per event of one piece when every piece scans all the events (hash
#: pieces): with a 2 GB budget a piece covers about 250 million events. Measured in
#: docs/scale.md: DuckDB spills the join, grouping and window of a piece this size and stays
#: inside its budget; a piece is not made smaller than that because every piece scans the
#: events once more.
BUDGET_BYTES_PER_EVENT: Final[int] = 8
#: Bytes of budget per event of one piece when pieces are entity ranges that read only their
#: own row groups: with a 2 GB budget a piece covers about 30 million events, small enough that
#: its join, grouping and window fit without spilling (docs/scale.md), since a further piece
#: costs only the row groups that straddle its cut.
RANGE_BYTES_PER_EVENT: Final[int] = 64
#: The temporary view one piece of the events is read through.
PIECE_VIEW: Final[str] = "events_piece"


def partitions_for(source: EventSource) -> int:
    """How many pieces to count in: ``TRUECOUNT_PARTITIONS``, or one per budget's worth of events.

    Verdicts are per entity, so pieces cut by ``entity_id`` are independent; what a piece
    saves is that the anchors, the join and the grouping of one piece must fit (or spill) at a
    time instead of all of them at once. When the Parquet footers allow range pieces
    (:func:`piece_cuts`) there are about one per ``budget / RANGE_BYTES_PER_EVENT`` events,
    otherwise one per ``budget / BUDGET_BYTES_PER_EVENT``.
    """
    forced = os.environ.get(PARTITIONS_ENV, "").strip()
    if forced:
        if not forced.isdigit() or not 1 <= int(forced) <= 4096:
            raise InputError(
                Problem(
                    f"'{forced}' is not a number of pieces",
                    Location(key=PARTITIONS_ENV),
                    "use a whole number from 1 (never split) to 4096, or leave it unset",
                )
            )
        return int(forced)
    budget = memory_limit_bytes(source.con)
    if not source.rows or not budget:
        return 1
    # Range pieces read only their own events, so they are made small enough not to spill;
    # hash pieces each read all the events, so they are made as large as the budget allows.
    ranges = math.ceil(source.rows / max(1, budget // RANGE_BYTES_PER_EVENT))
    if ranges > 1 and piece_cuts(source, ranges) is not None:
        return ranges
    return max(1, math.ceil(source.rows / max(1, budget // BUDGET_BYTES_PER_EVENT)))


def entity_cuts(row_groups: Sequence[tuple[str, str, int]], pieces: int) -> list[str]:
    """Up to ``pieces - 1`` increasing ``entity_id`` values that split the rows evenly.

    ``row_groups`` are (smallest, largest entity, rows) per row group, from the Parquet footers.
    The row groups are taken in order of their smallest entity and a cut is made at the
    smallest entity of the row group that starts past each even share of the rows; when the
    files are grouped by entity, a row group then lies within one piece (or straddles one cut),
    so a piece's range filter skips the other pieces' row groups without reading them. The
    cuts only decide balance, never correctness: the ranges cover every entity whatever they are.
    """
    ordered = sorted(row_groups)
    total = sum(n for _, _, n in ordered)
    if pieces <= 1 or total <= 0:
        return []
    cuts: list[str] = []
    seen = 0
    for low, _high, rows in ordered:
        share = total * (len(cuts) + 1) / pieces
        if seen >= share and (not cuts or low > cuts[-1]) and len(cuts) < pieces - 1:
            cuts.append(low)
        seen += rows
    if cuts and cuts[0] <= ordered[0][0]:
        cuts.pop(0)  # nothing below the first cut: that piece would be empty
    return cuts


def _piece_filters(partitions: int, cuts: Sequence[str] | None) -> list[exp.Expr]:
    """The filter of each piece: ranges of ``entity_id`` between ``cuts``, or a hash modulo."""
    entity = exp.column("entity_id")
    if cuts:
        bounds = [exp.Literal.string(c) for c in cuts]
        filters: list[exp.Expr] = [exp.LT(this=entity.copy(), expression=bounds[0])]
        for low, high in itertools.pairwise(bounds):
            filters.append(
                exp.and_(
                    exp.GTE(this=entity.copy(), expression=low.copy()),
                    exp.LT(this=entity.copy(), expression=high.copy()),
                )
            )
        filters.append(exp.GTE(this=entity.copy(), expression=bounds[-1].copy()))
        return filters
    return [
        exp.EQ(
            this=exp.Mod(
                this=exp.func("hash", entity.copy()),
                expression=exp.Literal.number(partitions),
            ),
            expression=exp.Literal.number(k),
        )
        for k in range(partitions)
    ]


def piece_cuts(source: EventSource, pieces: int) -> list[str] | None:
    """Range cuts for ``pieces`` pieces when the source's footers tell where entities lie.

    None (hash pieces) for one piece, for a source that is not Parquet files, and when the
    row groups are not grouped by entity enough to find ``pieces - 1`` distinct cuts (row groups
    that each span all entities share one smallest entity): ranges would then make some pieces
    too large, while a hash spreads the entities evenly.
    """
    if pieces <= 1:
        return None
    groups = entity_row_groups(source)
    if not groups:
        return None
    cuts = entity_cuts(groups, pieces)
    return cuts if len(cuts) == pieces - 1 else None


def store_verdicts(
    con: duckdb.DuckDBPyConnection,
    definition: Definition,
    moment: dt.datetime,
    known: dt.datetime | None,
    partitions: int = 1,
    query: exp.Select | None = None,
    cuts: Sequence[str] | None = None,
    event_counts: Sequence[tuple[str, exp.Expr]] = (),
) -> None:
    """Run the verdict query into the ``verdicts`` table, in pieces by entity.

    With ``cuts`` (from :func:`entity_cuts`) piece ``k`` reads the events whose ``entity_id``
    lies between cut ``k - 1`` and cut ``k``: with Parquet files grouped by entity, each piece
    then reads only its own row groups, so the pieces together read the events about once.
    Without cuts, piece ``k`` of ``partitions`` reads the events whose
    ``hash(entity_id) % partitions = k``, and every piece scans all of them. Either way an
    entity's events all fall in one piece, so the union of the pieces is the one-piece result.
    Each piece reads through a temporary view, and its verdicts are appended. Running out of
    memory or temporary disk becomes a :class:`~truecount.db.ResourceError` naming the setting
    to change. ``query`` is the one-piece query when the caller has compiled it already.
    """
    with resources_guard("counting", con):
        filters = _piece_filters(partitions, cuts) if partitions > 1 or cuts else []
        if len(filters) <= 1:
            if query is None:
                query = compile_definition(
                    definition, moment, ordered=False, known_at=known, event_counts=event_counts
                )
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {VERDICTS_TABLE} AS "
                f"{render_sql(query, 'duckdb', False)}"
            )
            return
        piece_query = compile_definition(
            definition,
            moment,
            events_table=PIECE_VIEW,
            ordered=False,
            known_at=known,
            event_counts=event_counts,
        )
        piece_sql = render_sql(piece_query, "duckdb", False)
        for k, in_piece in enumerate(filters):
            view = exp.select(exp.Star()).from_(EVENTS_TABLE_NAME).where(in_piece)
            con.execute(f"CREATE OR REPLACE TEMP VIEW {PIECE_VIEW} AS {view.sql('duckdb')}")
            if k == 0:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {VERDICTS_TABLE} AS {piece_sql}")
            else:
                con.execute(f"INSERT INTO {VERDICTS_TABLE} {piece_sql}")
        con.execute(f"DROP VIEW IF EXISTS {PIECE_VIEW}")


def parse_time(value: dt.datetime | str | None) -> dt.datetime | None:
    """An as-of or known-at time as naive UTC; a bare date means the end of that day."""
    return _parse_as_of(value)


# --------------------------------------------------------------------------- the second clock

ClockBasis = Literal["recorded_at", "mixed", "event_time"]


@dataclass(frozen=True)
class KnownClock:
    """Which clock an "as known at" count could use, measured on the events up to ``as_of``.

    ``basis`` is ``recorded_at`` when every such event carries a receipt time, ``event_time``
    when none does, ``mixed`` otherwise; ``held_back`` is how many of them reached the buyer
    only after ``known_at`` and were left out.
    """

    known_at: dt.datetime
    basis: ClockBasis
    events: int
    with_recorded_at: int
    held_back: int

    @property
    def note(self) -> str:
        """One line for people: 'as known on 2026-03-01 by recorded_at (all events carry it)'."""
        when = _describe_time(self.known_at)
        if self.basis == "recorded_at":
            text = f"as known on {when} by recorded_at (all events carry it)"
        elif self.basis == "mixed":
            text = (
                f"as known on {when} by recorded_at where the export has it "
                f"({self.with_recorded_at:,} of {self.events:,} events), "
                "by event time for the rest"
            )
        elif self.events == 0:
            text = f"as known on {when} by event time: no events up to then"
        else:
            text = f"as known on {when} by event time: the export has no recorded_at"
        if self.held_back:
            text += f"; {self.held_back:,} events recorded after that are left out"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "known_at": self.known_at.isoformat(),
            "basis": self.basis,
            "events": self.events,
            "with_recorded_at": self.with_recorded_at,
            "held_back": self.held_back,
            "note": self.note,
        }


def _describe_time(moment: dt.datetime) -> str:
    """A date when the time is the end of a day (how a bare date is read), else the time."""
    if moment.time() == dt.time(23, 59, 59, 999999):
        return moment.date().isoformat()
    return moment.isoformat(sep=" ") + " UTC"


def known_clock(
    con: duckdb.DuckDBPyConnection, as_of: dt.datetime, known_at: dt.datetime
) -> KnownClock:
    """Measure, in one scan of ``events``, which clock the known-at filter used and what it cut."""
    ts = exp.column("ts")
    recorded = exp.column("recorded_at")
    in_horizon = exp.LTE(this=ts, expression=_ts_param(as_of))
    has_recorded = exp.Not(this=exp.Is(this=recorded, expression=exp.Null()))
    late = exp.GT(
        this=exp.Coalesce(this=recorded, expressions=[ts]), expression=_ts_param(known_at)
    )
    query = exp.select(
        exp.func("COUNT_IF", in_horizon),
        exp.func("COUNT_IF", exp.and_(in_horizon, has_recorded)),
        exp.func("COUNT_IF", exp.and_(in_horizon, late)),
    ).from_("events")
    row = con.execute(query.sql("duckdb")).fetchall()[0]
    events, with_recorded, held_back = (int(v or 0) for v in row)
    basis: ClockBasis
    if events and with_recorded == events:
        basis = "recorded_at"
    elif with_recorded:
        basis = "mixed"
    else:
        basis = "event_time"
    return KnownClock(known_at, basis, events, with_recorded, held_back)


def _ts_param(value: dt.datetime) -> exp.Expr:
    text = value.isoformat(sep=" ", timespec="microseconds")
    return exp.cast(exp.Literal.string(text), exp.DataType.build("TIMESTAMP"))


def _period_counts(con: duckdb.DuckDBPyConnection) -> list[PeriodCount]:
    status = exp.column("status")
    cols: list[exp.Expr] = [
        exp.column("period"),
        exp.alias_(exp.func("COUNT", exp.Star()), "candidates"),
    ]
    for name in STATUSES:
        cols.append(
            exp.alias_(
                exp.func("COUNT_IF", exp.EQ(this=status, expression=exp.Literal.string(name))), name
            )
        )
    cols.append(
        exp.alias_(
            exp.func("COALESCE", exp.func("SUM", exp.column("quantity")), exp.Literal.number(0)),
            "quantity",
        )
    )
    sql = (
        exp.select(*cols).from_(VERDICTS_TABLE).group_by("period").order_by("period").sql("duckdb")
    )
    rows = con.execute(sql).fetchall()
    return [
        PeriodCount(
            period=r[0],
            candidates=int(r[1]),
            counted=int(r[2]),
            not_counted=int(r[3]),
            pending=int(r[4]),
            excluded=int(r[5]),
            quantity=float(r[6]),
        )
        for r in rows
    ]


def _reason_counts(con: duckdb.DuckDBPyConnection, definition: Definition) -> list[ReasonCount]:
    names = list(definition.conditions)
    if not names:
        return []
    not_counted = exp.EQ(this=exp.column("status"), expression=exp.Literal.string("not_counted"))
    cols = [
        exp.func(
            "COUNT_IF",
            exp.and_(not_counted, exp.not_(exp.column(CONDITION_PREFIX + n, quoted=True))),
        )
        for n in names
    ]
    row = con.execute(exp.select(*cols).from_(VERDICTS_TABLE).sql("duckdb")).fetchall()[0]
    return [ReasonCount(n, int(v or 0)) for n, v in zip(names, row, strict=True)]
