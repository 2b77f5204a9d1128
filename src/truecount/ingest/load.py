"""Loading files into a canonical events table: stage, quarantine, de-duplicate, insert, log.

Each file is handled inside one transaction in four set-based steps, all in DuckDB:

1. *stage*: the file's plan (:mod:`truecount.ingest.plan`) is materialised once into a
   temporary table, so the file is read a single time however many steps follow;
2. *quarantine*: rows with a problem go to the quarantine table with file, row, column and
   reason (and the record as read);
3. *de-duplicate*: good rows whose ``event_id`` is already stored are dropped with an
   anti-join (no index: it would cost more than the data at scale); repeats within the file
   keep their first occurrence, a window that is only computed when the file has repeats;
4. *insert and log*: new events are appended, and one ``ingest_log`` row records the file's
   SHA-256, the mapping and the counts.

A Parquet file (columnar, cheap to read again) skips the staged copy when it is the usual
file: its ids in order or at least distinct, none of them stored yet. It is read once without
checks (records, missing actors, the ids' order and span), its good rows are inserted straight
from the plan with the checks inside the insert, and only a file with bad rows is read again
to quarantine them (:func:`_load_direct`). Any other file takes the four steps above; the
stored rows, the quarantine and the counts are the same either way.

Every file is opened and planned before anything is loaded, so a whole-file problem (missing
column, unreadable file, bad mapping) stops the ingest with nothing half-done.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import duckdb
from sqlglot import exp

from truecount.db import resource_error
from truecount.errors import InputError, Location, Problem
from truecount.ingest.canonical import (
    CANONICAL_COLUMNS,
    INGEST_LOG_TABLE,
    QUARANTINE_TABLE,
    create_table_sql,
)
from truecount.ingest.history import SUB_COLUMN, history_events
from truecount.ingest.mapping import MappingFile, load_mapping
from truecount.ingest.plan import (
    HASH_CHARS,
    PROBLEM,
    PROBLEM_COLUMN,
    RAW,
    StagePlan,
    build_stage,
)
from truecount.ingest.report import FileReport, IngestReport
from truecount.ingest.source import (
    ROW_COLUMN,
    FileFormat,
    Source,
    encoding_problem,
    long_line_problem,
    open_source,
    quoted,
)

if TYPE_CHECKING:
    from truecount.workspace import Workspace

_STAGE: Final[str] = "__tc_stage"
_CANDIDATES: Final[str] = "__tc_candidates"
_NEW: Final[str] = "__tc_new"
_EXISTING: Final[str] = "__tc_existing"
_IDENTIFIER: Final[re.Pattern[str]] = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class StagedFile:
    """One input file with the function that stages it, for loaders other than mappings.

    ``stage(con, table)`` must create the temporary table ``table`` in the *multi-event*
    shape: every canonical column plus ``__tc_row`` (the record's number in the file),
    ``__tc_sub`` (the event's number within its record), ``__tc_problem``,
    ``__tc_problem_column`` and ``__tc_raw``. A record is either exactly one row with a
    problem (quarantined) or one or more rows without (its events). ``label`` is what the
    ingest log records in place of a mapping: which reader and which options.
    """

    path: Path
    label: str
    stage: Callable[[duckdb.DuckDBPyConnection, str], None]
    #: A part of a file read on its own (one Airbyte stream): logged as ``path#part``.
    part: str | None = None


@dataclass(frozen=True)
class ProgressUpdate:
    """A step of an ingest, for a progress display: which file, what is happening, how far."""

    file: str
    index: int  # 1-based position of the file in this ingest
    total: int
    step: str
    rows: int | None = None


ProgressCallback = Callable[[ProgressUpdate], None]


def ingest_files(
    workspace: Workspace,
    files: Sequence[Path | str],
    mapping: MappingFile | Path | str | None = None,
    progress: ProgressCallback | None = None,
    again: bool = False,
) -> IngestReport:
    """Load ``files`` into the workspace store; return the per-file counts.

    A file whose bytes are already in the ingest log is skipped (see :func:`_load_one`);
    ``again`` loads it anyway.
    """
    from truecount.workspace import ensure_schema  # the workspace module imports this package

    with workspace.connect() as con:
        ensure_schema(con)
        return load_events_into(con, files, mapping=mapping, progress=progress, again=again)


def load_events_into(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[Path | str],
    mapping: MappingFile | Path | str | None = None,
    table: str = "events",
    progress: ProgressCallback | None = None,
    again: bool = False,
) -> IngestReport:
    """Load ``files`` into ``table`` of ``con`` (created if missing), with the same checks,
    quarantine and de-duplication as a workspace ingest. Works on an in-memory connection, which
    is how commands read ``--events FILE...`` without a workspace.
    """
    if not _IDENTIFIER.fullmatch(table):
        raise ValueError(f"table name must be a plain identifier, got {table!r}")
    mapping_file = load_mapping(mapping) if isinstance(mapping, Path | str) else mapping
    _ensure_tables(con, table)
    with _ingest_settings(con):
        planned: list[tuple[Source, StagePlan | None]] = []
        for name in files:
            source = open_source(con, Path(name))
            plan = None if source.empty else build_stage(source, mapping_file)
            planned.append((source, plan))
        label = f"{mapping_file.path} sha256:{mapping_file.sha256}" if mapping_file else None
        reports = [
            _load_one(
                con,
                source.path,
                label,
                _mapped_stage(plan, mapping_file, source.format == FileFormat.parquet),
                table,
                i,
                len(planned),
                progress,
                again=again,
            )
            for i, (source, plan) in enumerate(planned, start=1)
        ]
    return IngestReport(table=table, files=tuple(reports), mapping=label)


def load_staged_into(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[StagedFile],
    table: str = "events",
    progress: ProgressCallback | None = None,
    label: str | None = None,
    again: bool = False,
) -> IngestReport:
    """Load files that a reader other than a mapping has staged (the vendor adapters), with
    the same quarantine, de-duplication, counting and log as :func:`load_events_into`."""
    if not _IDENTIFIER.fullmatch(table):
        raise ValueError(f"table name must be a plain identifier, got {table!r}")
    _ensure_tables(con, table)
    with _ingest_settings(con):
        reports = [
            _load_one(
                con,
                f.path,
                f.label,
                _adapter_stage(f),
                table,
                i,
                len(files),
                progress,
                f.part,
                again=again,
            )
            for i, f in enumerate(files, start=1)
        ]
    return IngestReport(table=table, files=tuple(reports), mapping=label)


@dataclass(frozen=True)
class _Staging:
    """How to build the stage table of one file and what shape it has."""

    build: Callable[[duckdb.DuckDBPyConnection], None] | None  # None: empty file
    derived_ids: bool = False
    #: The name a derived id hashes with the row (one event per row), to find this file's
    #: events again after the insert (:func:`_overlap`); None when ids are the export's own.
    id_name: str | None = None
    #: Events derived from a status column by :func:`history_events` (mappings only).
    closed_statuses: Sequence[str] | None = None
    has_status: bool = False
    #: The stage already holds several events per record, numbered by ``__tc_sub``.
    multi: bool = False
    #: The plan's query when the file may be read again instead of staged (Parquet: columnar
    #: and cheap to re-read; see :func:`_load_direct`); None for every other file.
    direct: str | None = None


def _mapped_stage(
    plan: StagePlan | None, mapping: MappingFile | None, rereadable: bool = False
) -> _Staging:
    if plan is None:
        return _Staging(build=None)
    query = plan.query.sql("duckdb")
    sql = f"CREATE OR REPLACE TEMP TABLE {_STAGE} AS {query}"
    closed = None
    if plan.has_status:
        assert mapping is not None and mapping.spec.status_history is not None
        closed = mapping.spec.status_history.closed_statuses

    def build(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(sql)

    return _Staging(
        build=build,
        derived_ids=plan.derived_ids,
        id_name=None if plan.has_status else plan.id_name,
        closed_statuses=closed,
        has_status=plan.has_status,
        direct=query if rereadable and not plan.has_status else None,
    )


def _adapter_stage(staged: StagedFile) -> _Staging:
    def build(con: duckdb.DuckDBPyConnection) -> None:
        staged.stage(con, _STAGE)

    return _Staging(build=build, multi=True)


def _load_one(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    label: str | None,
    staging: _Staging,
    table: str,
    index: int,
    total: int,
    progress: ProgressCallback | None,
    part: str | None = None,
    again: bool = False,
) -> FileReport:
    """Load one file in one transaction and log it.

    The same bytes loaded again under another name would not all be caught by the event-id
    de-duplication: ids derived from the file name (mapped files without an event id column,
    vendor records without their own id) are new for a renamed copy, so its events would
    count twice. So a file whose SHA-256 (and part) is already in the ingest log under another
    name is skipped and reported with that name; ``again`` loads it anyway. Under the same name
    the ids are the same, so the load runs and its rows show as duplicates, its bad rows
    included: they are in the quarantine already, from the first load of these bytes under
    this name, and listing them twice would make ``quarantine`` and ``count``'s note over-count.
    """
    started = time.perf_counter()
    name = str(path) if part is None else f"{path}#{part}"

    def tell(step: str, rows: int | None = None) -> None:
        if progress is not None:
            progress(ProgressUpdate(file=name, index=index, total=total, step=step, rows=rows))

    tell("hashing")
    digest = _sha256(path)
    if not again:
        earlier = _loaded_as(con, digest, part)
        if earlier is not None and earlier != name:
            tell("done", 0)
            return FileReport(
                file=name,
                ingest_id=0,
                sha256=digest,
                rows_read=0,
                loaded=0,
                duplicate=0,
                quarantined=0,
                events_loaded=0,
                seconds=time.perf_counter() - started,
                same_as=earlier,
            )
    seen_here = _loaded_under(con, digest, name)
    rows_read = quarantined = loaded = events_loaded = unknown_actor = 0
    con.begin()
    try:
        next_id = f"SELECT coalesce(max(ingest_id), 0) + 1 FROM {INGEST_LOG_TABLE}"  # noqa: S608
        ingest_id = _as_int(_scalar(con, next_id))
        direct = None
        if staging.direct is not None:
            tell("reading and checking")
            direct = _load_direct(
                con, staging.direct, staging.derived_ids, table, ingest_id, name, seen_here
            )
        if direct is not None:
            rows_read, quarantined, loaded, unknown_actor = direct
            events_loaded = loaded
        elif staging.build is not None:
            tell("reading and checking")
            staging.build(con)
            _quarantine_out_of_range(con, staging.multi)
            rows_read, quarantined, repeats, no_actor = _counts(
                con, staging.derived_ids, staging.multi
            )
            tell("quarantining", rows_read)
            if seen_here:  # already quarantined by the first load: counted as duplicates
                quarantined = 0
            quarantine = (
                f"INSERT INTO {QUARANTINE_TABLE} SELECT ?, ?, {ROW_COLUMN}, "  # noqa: S608
                f"{PROBLEM_COLUMN}, {PROBLEM}, {RAW} FROM {_STAGE} WHERE {PROBLEM} IS NOT NULL"
            )
            if not seen_here:
                con.execute(quarantine, [ingest_id, name])
            tell("loading", rows_read)
            loaded, events_loaded, unknown_actor = _insert_new(
                con, staging, table, repeats, no_actor
            )
            con.execute(f"DROP TABLE IF EXISTS {_STAGE}")
        duplicate = rows_read - quarantined - loaded
        overlap = (
            _overlap(con, table, staging.id_name, rows_read)
            if staging.id_name is not None and loaded
            else 0
        )
        con.execute(
            f"INSERT INTO {INGEST_LOG_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            [
                ingest_id,
                name,
                digest,
                label,
                rows_read,
                loaded,
                duplicate,
                quarantined,
                dt.datetime.now(dt.UTC).replace(tzinfo=None),
            ],
        )
        con.commit()
    except duckdb.Error as exc:
        con.rollback()
        short = resource_error(exc, f"loading {name}", con)
        if short is not None:  # out of memory or of temporary disk: name the setting
            raise short from None
        problem = encoding_problem(path, exc) or long_line_problem(path, exc)
        if problem is not None:
            raise InputError(problem) from exc
        raise InputError(
            Problem(
                f"loading failed: {str(exc).strip().splitlines()[0]}",
                Location(file=name),
                hint="nothing from this file was stored",
            )
        ) from exc
    except BaseException:
        con.rollback()
        raise
    tell("done", rows_read)
    return FileReport(
        file=name,
        ingest_id=ingest_id,
        sha256=digest,
        rows_read=rows_read,
        loaded=loaded,
        duplicate=duplicate,
        quarantined=quarantined,
        events_loaded=events_loaded,
        seconds=time.perf_counter() - started,
        unknown_actor=unknown_actor,
        overlap=overlap,
    )


def _overlap(con: duckdb.DuckDBPyConnection, table: str, id_name: str, rows: int) -> int:
    """How many events just stored from a file without ids equal, in every field the count
    reads, an event stored from another file.

    A derived id is new for every row of a new file name, so an export that overlaps an
    earlier one (December to February after December to January) stores the overlap again.
    Ingest cannot know which copy is meant, so it says how many there are instead of letting
    them double in silence. This file's events are found again by their derived ids (the
    first ``HASH_CHARS`` of ``sha256("<name>:<row>")``, recomputed for rows 1 to ``rows``);
    the store is probed only for those entities.
    """
    sql = f"""
        WITH ids AS (
            SELECT substr(sha256($name || ':' || CAST(i AS VARCHAR)), 1, {HASH_CHARS}) AS event_id
            FROM range(1, $rows + 1) AS r(i)
        ), mine AS (
            SELECT * FROM {quoted(table).sql("duckdb")} WHERE event_id IN (SELECT event_id FROM ids)
        )
        SELECT count(*) FROM mine AS m WHERE EXISTS (
            SELECT 1 FROM {quoted(table).sql("duckdb")} AS o
            WHERE o.entity_id = m.entity_id AND o.ts = m.ts AND o.type = m.type
              AND o.actor IS NOT DISTINCT FROM m.actor AND o.value IS NOT DISTINCT FROM m.value
              AND CAST(o.attrs AS VARCHAR) IS NOT DISTINCT FROM CAST(m.attrs AS VARCHAR)
              AND o.seq IS NOT DISTINCT FROM m.seq
              AND o.event_id NOT IN (SELECT event_id FROM ids)
        )
    """  # noqa: S608 - the table name is quoted, the values are parameters
    return _as_int(_scalar(con, sql, {"name": id_name, "rows": rows}))


#: Event times outside this span are not a fact about the entity but a reading error (a
#: placeholder date, a year typed as 20226, milliseconds read as seconds); one such event in
#: year 10000 would push every window past the as-of time, so they are quarantined at ingest.
TS_RANGE: Final[tuple[dt.datetime, dt.datetime]] = (
    dt.datetime(1970, 1, 1),
    dt.datetime(2200, 1, 1),
)


#: An event or receipt time outside :data:`TS_RANGE` (NULL when both are unknown or in range);
#: the bounds are the parameters ``$low`` and ``$high`` (:func:`_range_params`).
_OUTSIDE: Final[str] = (
    "(ts < CAST($low AS TIMESTAMP) OR ts >= CAST($high AS TIMESTAMP) "
    "OR recorded_at < CAST($low AS TIMESTAMP) OR recorded_at >= CAST($high AS TIMESTAMP))"
)
#: The quarantine reason of a row outside the range, and the column it names.
_OUTSIDE_REASON: Final[str] = (
    "CASE WHEN ts < CAST($low AS TIMESTAMP) OR ts >= CAST($high AS TIMESTAMP) "
    "THEN 'ts ' || CAST(ts AS VARCHAR) ELSE 'recorded_at ' || CAST(recorded_at AS VARCHAR) "
    "END || ' is outside ' || left($low, 10) || ' .. ' || left($high, 10) "
    "|| ': a placeholder date, a mistyped year, or an epoch in the wrong unit?'"
)
_OUTSIDE_COLUMN: Final[str] = (
    "CASE WHEN ts < CAST($low AS TIMESTAMP) OR ts >= CAST($high AS TIMESTAMP) "
    "THEN 'ts' ELSE 'recorded_at' END"
)


def _range_params() -> dict[str, object]:
    low, high = (t.isoformat(sep=" ") for t in TS_RANGE)
    return {"low": low, "high": high}


def _quarantine_out_of_range(con: duckdb.DuckDBPyConnection, multi: bool) -> None:
    """Quarantine every record with an event time or receipt time outside :data:`TS_RANGE`.

    A record that gives several events (an adapter's stage) is quarantined whole, as one row,
    so the counts still add up per record."""
    outside, reason, column = _OUTSIDE, _OUTSIDE_REASON, _OUTSIDE_COLUMN
    params = _range_params()
    found = con.execute(
        f"SELECT count(*) FROM {_STAGE} WHERE {PROBLEM} IS NULL AND {outside}",  # noqa: S608
        params,
    ).fetchone()
    if not found or not found[0]:
        return
    if not multi:
        con.execute(
            f"UPDATE {_STAGE} SET {PROBLEM} = {reason}, {PROBLEM_COLUMN} = {column} "  # noqa: S608
            f"WHERE {PROBLEM} IS NULL AND {outside}",
            params,
        )
        return
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __tc_out_of_range AS
        SELECT {ROW_COLUMN}, arg_min({reason}, {SUB_COLUMN}) AS msg,
               arg_min({column}, {SUB_COLUMN}) AS col
        FROM {_STAGE} WHERE {PROBLEM} IS NULL AND {outside} GROUP BY {ROW_COLUMN}
        """,  # noqa: S608 - fixed text; the bounds are parameters
        params,
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_STAGE} AS
        SELECT * FROM {_STAGE} s
        WHERE NOT EXISTS (SELECT 1 FROM __tc_out_of_range o WHERE o.{ROW_COLUMN} = s.{ROW_COLUMN})
        UNION ALL BY NAME
        SELECT o.{ROW_COLUMN}, 0 AS {SUB_COLUMN}, o.msg AS {PROBLEM}, o.col AS {PROBLEM_COLUMN},
               CAST(NULL AS JSON) AS {RAW}
        FROM __tc_out_of_range o
        """  # noqa: S608 - fixed text
    )
    con.execute("DROP TABLE __tc_out_of_range")


def _load_direct(
    con: duckdb.DuckDBPyConnection,
    query: str,
    derived_ids: bool,
    table: str,
    ingest_id: int,
    name: str,
    seen_here: bool,
) -> tuple[int, int, int, int] | None:
    """Load a re-readable file straight from its plan, without a staged copy; return (records,
    quarantined, loaded, loaded without an actor), or None when the file needs the staged path.

    Materialising the stage costs about as much as writing the events to the store, and a
    Parquet file is cheaper to read twice than to copy once. For the usual file (no id repeated
    within it, none already stored) the checks run once, inside the insert that keeps the good
    rows; what the counts need besides is read without them: records and missing actors in the
    streaming pass that proves the ids distinct (:func:`_ids_in_order`), and the bad rows are
    the records the insert left out. Only a file with bad rows is read again, checked, to
    quarantine them. Anything else returns None before a row is written, and the staged path
    decides as before: the counts, the quarantine and the stored rows are the same either way.
    """
    plan = f"({query}) AS __tc_plan"
    params = _range_params()
    good = f"{PROBLEM} IS NULL AND NOT coalesce({_OUTSIDE}, false)"
    rows, null_actor, in_order, span = _ids_in_order(con, plan, check=not derived_ids)
    if not in_order:
        repeats = con.execute(
            f"SELECT count(*) - count(DISTINCT event_id) FROM {plan} WHERE {good}",  # noqa: S608
            params,
        ).fetchone()
        if repeats is None or repeats[0]:
            return None
    target = quoted(table).sql("duckdb")
    # Any id of the file already stored, bad rows' too (no checks needed to find them): the
    # staged path then sorts out which rows are new. Stored ids outside the file's span of ids
    # cannot match, and the store's min/max statistics skip them without reading them, so the
    # usual next file of an export (a span of its own) never reads the growing store.
    stored = _scalar(con, f"SELECT count(*) FROM {target}")  # noqa: S608
    if stored and span is not None:
        stored = _scalar(
            con,
            f"SELECT count(*) FROM {target} WHERE event_id BETWEEN $lo AND $hi",  # noqa: S608
            {"lo": span[0], "hi": span[1]},
        )
    if stored and _scalar(
        con,
        f"SELECT count(*) FROM {target} WHERE event_id IN (SELECT event_id FROM {plan})",  # noqa: S608
    ):
        return None
    columns = ", ".join(quoted(c).sql("duckdb") for c in CANONICAL_COLUMNS)
    inserted = _as_int(
        _scalar(con, f"INSERT INTO {target} SELECT {columns} FROM {plan} WHERE {good}", params)  # noqa: S608
    )
    bad = rows - inserted
    if bad:
        null_actor = _as_int(
            _scalar(
                con,
                f'SELECT count(*) FROM {plan} WHERE {good} AND "actor" IS NULL',  # noqa: S608
                params,
            )
        )
        if not seen_here:
            con.execute(
                f"INSERT INTO {QUARANTINE_TABLE} SELECT $id, $name, {ROW_COLUMN}, "  # noqa: S608
                f"CASE WHEN {PROBLEM} IS NULL THEN {_OUTSIDE_COLUMN} ELSE {PROBLEM_COLUMN} END, "
                f"CASE WHEN {PROBLEM} IS NULL THEN {_OUTSIDE_REASON} ELSE {PROBLEM} END, {RAW} "
                f"FROM {plan} WHERE NOT ({good})",
                {**params, "id": ingest_id, "name": name},
            )
    return rows, 0 if seen_here else bad, inserted, null_actor


def _ids_in_order(
    con: duckdb.DuckDBPyConnection, plan: str, check: bool
) -> tuple[int, int, bool, tuple[str, str] | None]:
    """Records, records without an actor, whether each event_id sorts strictly after the one
    before it, and the span (least, greatest) of the ids, in one pass that runs no check.

    Ids in strict order prove that no id repeats, bad rows' included: exports are often in id
    order, and a streaming ``lag`` over one column is far cheaper than hashing every id. The
    proof holds in any order the rows are streamed in; requiring that only the first row lacks
    a previous id guards against a ``lag`` that restarts per thread. Ids are never NULL (a
    missing one is derived from file and row). Without ``check`` (ids derived from the file's
    name and row, unique by construction) the ids are not read: True and no span.
    """
    counts = 'count(*), count(*) FILTER (WHERE "actor" IS NULL)'
    if not check:
        row = con.execute(f"SELECT {counts} FROM {plan}").fetchone()  # noqa: S608
        assert row is not None
        return int(row[0]), int(row[1]), True, None
    row = con.execute(
        f"SELECT {counts}, count(*) FILTER (WHERE event_id <= _p), "  # noqa: S608
        "count(*) FILTER (WHERE _p IS NULL), min(event_id), max(event_id) "
        f'FROM (SELECT event_id, "actor", lag(event_id) OVER () AS _p FROM {plan})'
    ).fetchone()
    assert row is not None
    span = None if row[4] is None else (str(row[4]), str(row[5]))
    return int(row[0]), int(row[1]), int(row[2]) == 0 and int(row[3]) == 1, span


def _counts(
    con: duckdb.DuckDBPyConnection, derived_ids: bool, multi: bool
) -> tuple[int, int, int, int]:
    """Records, records with a problem, repeated event_ids among the good rows, and good rows
    without an actor, in one scan.

    Ids derived from file name and row cannot repeat within a file, so they are not counted.
    In a multi-event stage a record spans several rows, so records are distinct row numbers.
    The actor count is what the insert reports when every good row is inserted (no repeats,
    nothing stored before), which saves a scan of the stage for the usual file.
    """
    records = f"count(DISTINCT {ROW_COLUMN})" if multi else "count(*)"
    repeats = (
        "0"
        if derived_ids
        else f"count(*) FILTER (WHERE {PROBLEM} IS NULL) "
        f"- count(DISTINCT event_id) FILTER (WHERE {PROBLEM} IS NULL)"
    )
    no_actor = f'count(*) FILTER (WHERE {PROBLEM} IS NULL AND "actor" IS NULL)'
    sql = f"SELECT {records}, count({PROBLEM}), {repeats}, {no_actor} FROM {_STAGE}"  # noqa: S608
    row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def _insert_new(
    con: duckdb.DuckDBPyConnection,
    staging: _Staging,
    table: str,
    repeats: int,
    no_actor: int,
) -> tuple[int, int, int]:
    """Insert the events not yet stored; return (rows loaded, events inserted, events inserted
    with no actor: said per file, so an actor the reader could not tell is never silent).

    ``no_actor`` is the stage's count of good rows without an actor: the answer when every
    good row goes in."""
    target = exp.Table(this=quoted(table))
    several = staging.has_status or staging.multi
    if staging.has_status:
        derived = history_events(_STAGE, staging.closed_statuses)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_CANDIDATES} AS {derived.sql('duckdb')}")
        candidates = exp.select(exp.Star()).from_(_CANDIDATES)
        # A derived event id repeats only if its row's id does; count again to be sure.
        repeats = _as_int(
            _scalar(con, f"SELECT count(*) - count(DISTINCT event_id) FROM {_CANDIDATES}")  # noqa: S608
        )
    else:
        sub: exp.Expr = (
            exp.column(SUB_COLUMN) if staging.multi else exp.Literal.number(0).as_(SUB_COLUMN)
        )
        candidates = (
            exp.select(*[exp.column(c, quoted=True) for c in CANONICAL_COLUMNS])
            .select(exp.column(ROW_COLUMN), sub)
            .from_(_STAGE)
            .where(exp.Is(this=exp.column(PROBLEM), expression=exp.Null()))
        )
    # The ids of this file already in the store, found by probing the store against the
    # file's ids (a hash table of one file) rather than hashing the whole store on every
    # ingest, which would grow with the store. Usually empty; materialised because it is small.
    in_file = exp.select(exp.column("event_id")).from_(candidates.subquery("f"))
    existing = (
        exp.select(exp.column("event_id", table="e"))
        .from_(target.copy().as_("e"))
        .where(exp.column("event_id", table="e").isin(query=in_file))
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_EXISTING} AS {existing.sql('duckdb')}")
    columns = [exp.column(c, quoted=True) for c in CANONICAL_COLUMNS]
    stored_before = _as_int(_scalar(con, f"SELECT count(*) FROM {_EXISTING}"))  # noqa: S608
    if not several and not repeats and not stored_before:
        # The usual file: nothing of it is stored yet and no id repeats, so every good row
        # goes in as it is, without an anti-join (which costs as much as the insert).
        insert = exp.insert(exp.select(*columns).from_(candidates.subquery("n")), target)
        inserted = _as_int(_scalar(con, insert.sql("duckdb")))
        con.execute(f"DROP TABLE IF EXISTS {_EXISTING}")
        return inserted, inserted, no_actor
    stored = (
        exp.select(exp.Literal.number(1))
        .from_(exp.to_table(_EXISTING).as_("e"))
        .where(
            exp.EQ(
                this=exp.column("event_id", table="e"),
                expression=exp.column("event_id", table="c"),
            )
        )
    )
    new = (
        exp.select(exp.Star())
        .from_(candidates.subquery("c"))
        .where(exp.Not(this=exp.Exists(this=stored)))
    )
    if repeats:
        first = exp.Window(
            this=exp.RowNumber(),
            partition_by=[exp.column("event_id")],
            order=exp.Order(
                expressions=[
                    exp.Ordered(this=exp.column(ROW_COLUMN)),
                    exp.Ordered(this=exp.column(SUB_COLUMN)),
                ]
            ),
        )
        new = new.qualify(exp.EQ(this=first, expression=exp.Literal.number(1)))
    if not several:
        # One event per row: insert straight from the stage.
        unknown = _as_int(_scalar(con, _unknown_actor_sql(new)))
        insert = exp.insert(exp.select(*columns).from_(new.subquery("n")), target)
        inserted = _as_int(_scalar(con, insert.sql("duckdb")))
        con.execute(f"DROP TABLE IF EXISTS {_EXISTING}")
        return inserted, inserted, unknown
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_NEW} AS {new.sql('duckdb')}")
    insert = exp.insert(exp.select(*columns).from_(_NEW), target)
    inserted = _as_int(_scalar(con, insert.sql("duckdb")))
    rows = _as_int(_scalar(con, f"SELECT count(DISTINCT {ROW_COLUMN}) FROM {_NEW}"))  # noqa: S608
    unknown = _as_int(_scalar(con, _unknown_actor_sql(exp.select(exp.Star()).from_(_NEW))))
    con.execute(f"DROP TABLE IF EXISTS {_NEW}")
    con.execute(f"DROP TABLE IF EXISTS {_CANDIDATES}")
    con.execute(f"DROP TABLE IF EXISTS {_EXISTING}")
    return rows, inserted, unknown


def _unknown_actor_sql(new: exp.Select) -> str:
    """How many of the events about to be inserted have no actor."""
    null = exp.Is(this=exp.column("actor", quoted=True), expression=exp.Null())
    counted = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=null))
    return exp.select(counted).from_(new.subquery("u")).sql("duckdb")


def _ensure_tables(con: duckdb.DuckDBPyConnection, table: str) -> None:
    from truecount.workspace import ensure_schema  # the workspace module imports this package

    ensure_schema(con)
    con.execute(create_table_sql(table))


@contextmanager
def _ingest_settings(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Row numbers rely on insertion order; DuckDB's own progress bar would print to stdout."""
    wanted = {"preserve_insertion_order": "true", "enable_progress_bar": "false"}
    before = {key: str(_scalar(con, "SELECT current_setting(?)", [key])).lower() for key in wanted}
    for key, value in wanted.items():
        con.execute(f"SET {key} = {value}")
    try:
        yield
    finally:
        for key, value in before.items():
            con.execute(f"SET {key} = {'true' if value == 'true' else 'false'}")


def _scalar(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list[object] | dict[str, object] | None = None,
) -> object:
    row = con.execute(sql, params if params else []).fetchone()
    assert row is not None
    return row[0]


def _as_int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _loaded_as(con: duckdb.DuckDBPyConnection, digest: str, part: str | None) -> str | None:
    """The name under which a file with these bytes (and this part) was loaded, if any.

    Parts of one file (Airbyte streams) share its hash, so a part matches only itself.
    """
    sql = f"SELECT file FROM {INGEST_LOG_TABLE} WHERE sha256 = ? ORDER BY ingest_id"  # noqa: S608
    for (found,) in con.execute(sql, [digest]).fetchall():
        if part is None or str(found).endswith(f"#{part}"):
            return str(found)
    return None


def _loaded_under(con: duckdb.DuckDBPyConnection, digest: str, name: str) -> bool:
    """Whether these exact bytes were loaded before under this very name (and part)."""
    sql = f"SELECT count(*) FROM {INGEST_LOG_TABLE} WHERE sha256 = ? AND file = ?"  # noqa: S608
    row = con.execute(sql, [digest, name]).fetchone()
    return bool(row and row[0])


def _sha256(path: Path) -> str:
    """Stream the file through SHA-256 (for the log: which exact bytes fed the store)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
