"""Where the engine's events come from: a workspace store, canonical files, or an in-memory table.

Whatever the source, the compiled query reads one relation named ``events`` with the canonical
columns. Canonical Parquet files are read in place (a view with the required-column checks
applied), because copying tens of millions of rows into a table first would double the work;
other files go through ingest's validation into an in-memory table, so bad rows are
quarantined with their reason rather than silently dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from truecount.container import literal_path
from truecount.db import configure_spill
from truecount.errors import InputError, Location, Problem
from truecount.ingest.canonical import CANONICAL_COLUMNS, EVENTS_TABLE, REQUIRED_COLUMNS
from truecount.ingest.choices import Choice, recorded_choices
from truecount.workspace import Workspace, configure

EventsInput = Any  # pyarrow.Table | pandas.DataFrame | Workspace | path | sequence of paths


@dataclass
class EventSource:
    """An open connection with a relation ``events`` in canonical shape, and what fed it."""

    con: duckdb.DuckDBPyConnection
    description: str
    files: list[str] = field(default_factory=list)
    rows_skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    max_ts: dt.datetime | None = None  # the latest event time, when known without a scan
    #: Options of the vendor adapters that produced the events (docs/sources.md).
    choices: list[Choice] = field(default_factory=list)
    #: How many events there are, when known without a scan (Parquet footers, table
    #: statistics): decides whether a count runs in pieces (``engine.run.partitions_for``).
    rows: int | None = None
    #: A view of the same events with ``attrs`` as the export wrote it (text, not parsed as
    #: JSON), when the events are files read in place: for scans that only search that text
    #: (``engine.coverage.scan_stats``), since parsing forty million JSON objects costs more
    #: than the rest of such a scan. None when ``events`` itself holds text already.
    text_table: str | None = None


#: The name of :attr:`EventSource.text_table` when there is one.
EVENTS_TEXT_VIEW = "_tc_events_text"


def _canonical_select(source_table: str, present: set[str]) -> exp.Select:
    """Cast present columns to canonical types; fill absent optional columns with typed nulls."""
    cols: list[exp.Expr] = []
    for name, typ in CANONICAL_COLUMNS.items():
        dtype = exp.DataType.build(typ, dialect="duckdb")
        value: exp.Expr
        if name in present:
            value = exp.cast(exp.column(name, quoted=True), dtype)
        elif name == "event_id":
            # A deterministic id from the entity, time, type and row position is not possible
            # without a file row number; tables given in memory must carry their own ids.
            value = exp.cast(exp.func("uuid"), dtype)
        else:
            value = exp.cast(exp.Null(), dtype)
        cols.append(exp.alias_(value, name))
    return exp.select(*cols).from_(exp.to_table(source_table, quoted=True))


def _check_required(present: set[str], where: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        raise InputError(
            Problem(
                f"missing required column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                Location(file=where, column=missing[0]),
                f"canonical events need {', '.join(REQUIRED_COLUMNS)}; "
                "use 'truecount ingest --mapping' for other shapes",
            )
        )


def _from_arrow(table: pa.Table) -> EventSource:
    con = duckdb.connect()
    configure(con)
    configure_spill(con)
    present = set(table.column_names)
    _check_required(present, "<table>")
    if "event_id" not in present:
        raise InputError(
            Problem(
                "an in-memory events table needs an event_id column",
                Location(file="<table>", column="event_id"),
            )
        )
    con.register("events_input", table)
    sql = _canonical_select("events_input", present).sql(dialect="duckdb")
    con.execute(f"CREATE TABLE {EVENTS_TABLE} AS {sql}")
    return EventSource(con, "in-memory table")


def _parquet_stats(
    con: duckdb.DuckDBPyConnection, files: list[str]
) -> tuple[dict[str, int | None], dt.datetime | None]:
    """Null counts of the required columns and the latest ``ts``, from the Parquet footers.

    Footers carry per-row-group statistics, so a clean export is checked without reading a
    single row. A count of None means some row group has no statistics: scan instead.
    """
    meta = (
        exp.select(
            exp.column("path_in_schema"),
            exp.alias_(exp.func("SUM", exp.column("stats_null_count")), "nulls"),
            exp.alias_(
                exp.func("COUNT", exp.Star()).neq(
                    exp.func("COUNT", exp.column("stats_null_count"))
                ),
                "unknown",
            ),
            exp.alias_(
                exp.func(
                    "MAX",
                    exp.TryCast(this=exp.column("stats_max"), to=exp.DataType.build("TIMESTAMP")),
                ),
                "max_ts",
            ),
        )
        .from_(
            exp.func(
                "parquet_metadata",
                exp.Array(expressions=[exp.Literal.string(f) for f in _literal(files)]),
            )
        )
        .where(exp.column("path_in_schema").isin(*REQUIRED_COLUMNS))
        .group_by(exp.column("path_in_schema"))
    )
    nulls: dict[str, int | None] = dict.fromkeys(REQUIRED_COLUMNS)
    max_ts: dt.datetime | None = None
    for column, count, unknown, latest in con.execute(meta.sql("duckdb")).fetchall():
        nulls[str(column)] = None if unknown else int(count or 0)
        if column == "ts" and isinstance(latest, dt.datetime):
            max_ts = latest
    return nulls, max_ts


def _parquet_rows(con: duckdb.DuckDBPyConnection, files: list[str]) -> int | None:
    """The number of rows of the files, from their footers (no row is read)."""
    query = exp.select(exp.func("SUM", exp.column("num_rows"))).from_(
        exp.func(
            "parquet_file_metadata",
            exp.Array(expressions=[exp.Literal.string(f) for f in _literal(files)]),
        )
    )
    rows = con.execute(query.sql("duckdb")).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


def _table_rows(con: duckdb.DuckDBPyConnection) -> int | None:
    """The events table's row count from DuckDB's statistics (no scan)."""
    query = (
        exp.select(exp.column("estimated_size"))
        .from_(exp.func("duckdb_tables"))
        .where(
            exp.and_(
                exp.column("table_name").eq(exp.Literal.string(EVENTS_TABLE)),
                exp.not_(exp.column("temporary")),
            )
        )
    )
    rows = con.execute(query.sql("duckdb")).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


def entity_row_groups(source: EventSource) -> list[tuple[str, str, int]] | None:
    """Each Parquet row group's smallest and largest ``entity_id`` and its row count.

    Read from the footers, so no row is read. A count cuts its pieces at these values
    (``engine.run.entity_cuts``): when the files are written grouped by entity, each piece then
    reads only the row groups of its own entities. None when the source is not Parquet files or
    some row group has no entity statistics (the pieces then fall back to a hash of the entity).
    """
    files = source.files
    if not files or not all(f.lower().endswith(".parquet") for f in files):
        return None
    low, high = exp.column("stats_min_value"), exp.column("stats_max_value")
    query = (
        exp.select(low, high, exp.column("row_group_num_rows"))
        .from_(
            exp.func(
                "parquet_metadata",
                exp.Array(expressions=[exp.Literal.string(f) for f in _literal(files)]),
            )
        )
        .where(exp.column("path_in_schema").eq(exp.Literal.string("entity_id")))
    )
    rows = source.con.execute(query.sql("duckdb")).fetchall()
    if not rows or any(lo is None or hi is None for lo, hi, _ in rows):
        return None
    return [(str(lo), str(hi), int(n or 0)) for lo, hi, n in rows]


def _literal(files: list[str]) -> list[str]:
    """The paths as DuckDB must be given them to read exactly these files (no glob)."""
    return [str(literal_path(Path(f))) for f in files]


def _parquet_view(con: duckdb.DuckDBPyConnection, files: list[str]) -> EventSource:
    rel = con.read_parquet(_literal(files), union_by_name=True)
    present = set(rel.columns)
    _check_required(present, files[0])
    rel.create_view("events_parquet")
    select = _canonical_select("events_parquet", present)
    src = EventSource(con, f"{len(files)} Parquet file(s)", files=files)
    src.rows = _parquet_rows(con, files)
    nulls, max_ts = _parquet_stats(con, files)
    ts_type = str(dict(zip(rel.columns, rel.dtypes, strict=True))["ts"])
    types = dict(zip(rel.columns, rel.dtypes, strict=True))
    text = _as_text_attrs(select) if str(types.get("attrs")) == "VARCHAR" else None
    if all(n == 0 for n in nulls.values()):
        # Clean by the footers: no row to skip, and the latest ts is known without a scan.
        if ts_type == "TIMESTAMP":
            src.max_ts = max_ts
        con.execute(f"CREATE VIEW {EVENTS_TABLE} AS {select.sql(dialect='duckdb')}")
        if text is not None:
            con.execute(f"CREATE VIEW {EVENTS_TEXT_VIEW} AS {text.sql(dialect='duckdb')}")
            src.text_table = EVENTS_TEXT_VIEW
        return src
    not_null = [exp.column(c).is_(exp.Null()).not_() for c in REQUIRED_COLUMNS]
    cond: exp.Expr = not_null[0]
    for extra in not_null[1:]:
        cond = exp.and_(cond, extra)
    con.execute(f"CREATE VIEW {EVENTS_TABLE} AS {select.where(cond).sql(dialect='duckdb')}")
    if text is not None:
        where = text.where(cond.copy()).sql(dialect="duckdb")
        con.execute(f"CREATE VIEW {EVENTS_TEXT_VIEW} AS {where}")
        src.text_table = EVENTS_TEXT_VIEW
    skipped_sql = (
        exp.select(*[
            exp.alias_(
                exp.func("COUNT_IF", exp.column(c, quoted=True).is_(exp.Null())), c
            )
            for c in REQUIRED_COLUMNS
        ]).from_(exp.to_table("events_parquet"))
    ).sql(dialect="duckdb")  # fmt: skip
    row = con.execute(skipped_sql).fetchall()[0]
    reasons = {
        f"missing {c}": int(n) for c, n in zip(REQUIRED_COLUMNS, row or (), strict=False) if n
    }
    if reasons:
        skipped = con.execute(
            exp.select(exp.func("COUNT", exp.Star()))
            .from_("events_parquet")
            .where(exp.not_(cond))
            .sql(dialect="duckdb")
        ).fetchall()
        src.rows_skipped = int(skipped[0][0]) if skipped else 0
        src.skipped_reasons = reasons
    return src


def _as_text_attrs(select: exp.Select) -> exp.Select:
    """``select`` with ``attrs`` left as its text instead of cast to JSON."""
    text = select.copy()
    for alias in text.expressions:
        if alias.alias == "attrs":
            alias.set("this", exp.cast(exp.column("attrs", quoted=True), "VARCHAR"))
    return text


def attrs_not_json(source: EventSource) -> InputError | None:
    """The first event of ``source``'s Parquet files whose ``attrs`` is not JSON, as an error
    naming its file, row and value; None when there is none (or the events are not such
    files). The files are read again, only to find it, after a query met the value."""
    if source.text_table is None:
        return None
    files = exp.Array(expressions=[exp.Literal.string(f) for f in _literal(source.files)])
    options = [
        exp.EQ(this=exp.column(name), expression=exp.true())
        for name in ("union_by_name", "filename", "file_row_number")
    ]
    bad = exp.and_(
        exp.column("attrs").is_(exp.Null()).not_(),
        exp.not_(exp.func("json_valid", exp.column("attrs"))),
    )
    query = (
        exp.select("filename", "file_row_number", "attrs")
        .from_(exp.func("read_parquet", files, *options))
        .where(bad)
        .order_by("filename", "file_row_number")
        .limit(1)
    )
    row = source.con.execute(query.sql(dialect="duckdb")).fetchone()
    if row is None:
        return None
    return InputError(
        Problem(
            f"a value in the events is not JSON: {str(row[2])[:60]!r}",
            Location(file=str(row[0]), row=int(row[1]) + 1, column="attrs"),
            "fix the export, or load it with 'truecount ingest', which sets such rows aside "
            "with their reasons and counts them",
        )
    )


def _from_files(paths: Sequence[str | Path]) -> EventSource:
    files = [str(p) for p in paths]
    for f in files:
        if not Path(f).exists():
            raise InputError(Problem("no such file", Location(file=f)))
    con = duckdb.connect()
    configure(con)
    configure_spill(con)
    if files and all(f.lower().endswith(".parquet") for f in files):
        return _parquet_view(con, files)
    from truecount.ingest import load_events_into  # the ingest layer validates other formats

    report = load_events_into(con, files, mapping=None, table=EVENTS_TABLE)
    src = EventSource(con, f"{len(files)} file(s)", files=files)
    src.rows_skipped = int(getattr(report, "quarantined", 0) or 0)
    return src


def open_events(events: EventsInput) -> EventSource:
    """Open any supported events input as a DuckDB connection with an ``events`` relation."""
    if isinstance(events, Workspace):
        con = events.connect(read_only=True)
        configure_spill(con)
        return EventSource(
            con, f"workspace {events.root}", choices=recorded_choices(con), rows=_table_rows(con)
        )
    if isinstance(events, pa.Table):
        return _from_arrow(events)
    if isinstance(events, str | Path):
        return _from_files([events])
    if isinstance(events, Sequence) and all(isinstance(e, str | Path) for e in events):
        if not events:
            raise InputError("no event files given")
        return _from_files(list(events))
    if type(events).__name__ == "DataFrame" and hasattr(events, "to_parquet"):
        # pandas is optional: recognise a DataFrame without importing pandas
        return _from_arrow(pa.Table.from_pandas(events, preserve_index=False))
    raise InputError(
        f"cannot read events from {type(events).__name__}: give a workspace, file paths, "
        "a pyarrow Table or a pandas DataFrame"
    )
