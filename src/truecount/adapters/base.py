"""What every vendor adapter shares: recognising a file, reading its records, the stage shape.

An adapter turns one platform's export files (paged API JSON, JSON Lines, bulk CSV) into
canonical events. It does so in three steps, all inside DuckDB so no Python loop touches a
record:

1. :meth:`Adapter.recognize` looks at a file's top-level keys or CSV header (a :class:`Sniff`)
   and says which kind of export it is (``tickets``, ``audits``...), or that it is not this
   vendor's — in which case the error names the vendor it looks like;
2. :func:`read_records` (JSON) or :func:`read_csv_records` (CSV) lays the file out as one row
   per vendor record, numbered in file order, with pages unwrapped; a JSON line that does not
   parse (a truncated download) becomes a record with a problem instead of stopping the file;
3. :meth:`Adapter.events_sql` is a fixed SELECT over those records (options arrive as query
   parameters, never as text in the query) producing the canonical columns and, per record,
   either its events or one problem. :func:`stage_file` wraps it with what every adapter
   needs: the bad records, ``attrs.vendor`` / ``attrs.record``, default source and
   ``recorded_at``.

The loader (:func:`truecount.ingest.load.load_staged_into`) then quarantines, de-duplicates
(overlapping pages repeat event ids, which are counted as duplicates) and logs, exactly as for
mapped files, so ``rows_read == loaded + duplicate + quarantined`` holds per file, where a
row is one vendor record.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import duckdb
from pydantic import BaseModel, ConfigDict, ValidationError

from truecount.container import read_text, readable
from truecount.errors import InputError, Location, Problem, suggest
from truecount.ingest.canonical import CANONICAL_COLUMNS
from truecount.ingest.plan import PROBLEM, PROBLEM_COLUMN, RAW
from truecount.ingest.source import ROW_COLUMN, FileFormat, detect_format, encoding_problem

#: Internal columns of a record table; the prefix keeps them apart from vendor fields.
RECORD: Final[str] = "__tc_record"  # the vendor record as JSON (JSON inputs)
SUB: Final[str] = "__tc_sub"
RECORDS_TABLE: Final[str] = "__tc_records"
#: A view of the events already stored (earlier ingests and earlier files of this one), for
#: kinds whose meaning depends on a companion file (see :attr:`FileKind.reads`).
STORE: Final[str] = "__tc_store"
_LINE: Final[str] = "__tc_line"
_INDEX: Final[str] = "__tc_index"

#: The stage's columns in order: canonical ones, then the bookkeeping the loader reads.
STAGE_COLUMNS: Final[tuple[str, ...]] = (
    *CANONICAL_COLUMNS,
    ROW_COLUMN,
    SUB,
    PROBLEM,
    PROBLEM_COLUMN,
    RAW,
)


class AdapterOptions(BaseModel):
    """Base for an adapter's options: the explicit choices an export forces on the buyer.

    Every field needs a default and a description; both are shown by
    ``truecount sources`` and recorded with every file ingested, so any output that depends
    on a choice can say which one was made.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def described(self) -> dict[str, Any]:
        """The options as plain JSON values, for the ingest log and reports."""
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class Sniff:
    """What can be seen of a file without reading it all: enough to tell its kind.

    ``keys`` are the keys of the top-level JSON objects (of the first lines of a JSON Lines
    file), or the CSV header's columns. ``array_keys`` are those keys whose values are arrays
    (a page's record list). ``record_keys`` are the keys of the records themselves: of the
    page's array elements when the file is paged, else the same as ``keys``.
    ``element_keys`` are the keys of the objects inside the top-level objects' arrays (the
    first records of every page array, whatever its key): a page key as generic as
    ``result`` only tells a kind when its records' fields are seen too.
    """

    path: Path
    format: FileFormat
    keys: frozenset[str]
    array_keys: frozenset[str]
    record_keys: frozenset[str]
    element_keys: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.path.name

    def shown_keys(self, limit: int = 12) -> str:
        names = sorted(self.keys)
        more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
        return ", ".join(names[:limit]) + more


@dataclass(frozen=True)
class FileKind:
    """One kind of file in a vendor's export and what it is needed for."""

    name: str
    description: str
    #: Other kinds without which this one gives a wrong picture (checked on ingest).
    needs: tuple[str, ...] = ()
    #: For paged JSON: the key of the page's record array.
    array_key: str | None = None
    #: Kinds whose stored events this kind's SQL consults through :data:`STORE` (e.g. which
    #: statuses are closed); files of those kinds are loaded first within one ingest.
    reads: tuple[str, ...] = ()


class Adapter(ABC):
    """One platform's export reader. Subclasses are stateless; options arrive per call."""

    name: ClassVar[str]
    title: ClassVar[str]
    options_model: ClassVar[type[AdapterOptions]]
    kinds: ClassVar[Mapping[str, FileKind]]
    #: ETL streams this vendor's records arrive in (Airbyte stream name -> kind). An ETL
    #: record file is unwrapped by the framework, and each stream's records (the ``data``
    #: objects) are read by that kind's SQL exactly as if they were lines of a JSON Lines
    #: file of that kind.
    airbyte_streams: ClassVar[Mapping[str, str]] = {}

    @abstractmethod
    def recognize(self, sniff: Sniff) -> str | None:
        """The kind of this file, or None when it is not one of this vendor's files."""

    @abstractmethod
    def events_sql(self, kind: str, options: AdapterOptions) -> tuple[str, dict[str, object]]:
        """A SELECT over ``__tc_records`` (good records only) giving the stage columns
        (see :data:`STAGE_COLUMNS`) and its named parameters (``$name`` in the text; every
        one given must be used, and none may start with ``tc_``).

        For a JSON input the record is the JSON column ``__tc_record``; for CSV the record
        table has the file's columns as text. Every record must give at least one row: its
        events (``__tc_problem`` NULL, numbered by ``__tc_sub`` from 0) or exactly one row
        with a problem. ``attrs`` should carry ``origin``; ``vendor`` and ``record`` are
        added for you. The SQL text is fixed: options and names are parameters. A kind that
        declares :attr:`FileKind.reads` may also select from the view :data:`STORE` (the
        events stored so far, in the canonical columns).
        """

    def context_sql(
        self, kind: str, options: AdapterOptions
    ) -> tuple[str, str, dict[str, object]] | None:
        """A pre-pass for kinds whose files must be read together: (table, SELECT, parameters).

        Before any file of the ingest is staged, the SELECT (over ``__tc_records``, good
        records only, like :meth:`events_sql`) runs on every file of ``kind`` in the ingest
        and its rows are gathered into the temporary table ``table``, which the kind's
        :meth:`events_sql` may then read. It is how one API page file can see what another page
        says (Zendesk audits: the ticket's creating audit may be on any page), whatever the
        order of the files. None (the default): each file is read on its own.
        """
        return None

    def parse_options(self, given: Mapping[str, str]) -> AdapterOptions:
        """Options from ``key=value`` text, checked against the model with clear errors."""
        fields = self.options_model.model_fields
        problems = [
            Problem(
                f"unknown option '{key}' for --source {self.name}",
                hint=suggest(key, fields) or f"valid options: {', '.join(fields) or 'none'}",
            )
            for key in given
            if key not in fields
        ]
        if problems:
            raise InputError(problems)
        try:
            return self.options_model.model_validate(
                {k: _option_value(v) for k, v in given.items()}
            )
        except ValidationError as exc:
            raise InputError(
                [
                    Problem(
                        f"option '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}",
                        hint=f"given {err.get('input')!r}",
                    )
                    for err in exc.errors()
                ]
            ) from exc


def _option_value(text: str) -> object:
    """``--option k=v`` values: JSON when they parse as JSON (numbers, lists), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# --------------------------------------------------------------------------- reading files


def sniff(con: duckdb.DuckDBPyConnection, path: Path) -> Sniff:
    """Open ``path`` just enough to see its keys or header. Raises InputError when unreadable."""
    fmt = detect_format(path)
    if not path.is_file():
        raise InputError(Problem("file not found", Location(file=str(path))))
    empty = frozenset[str]()
    if path.stat().st_size == 0:
        return Sniff(path, fmt, empty, empty, empty)
    try:
        return _sniff(con, path, fmt)
    except duckdb.Error as exc:
        problem = encoding_problem(path, exc)
        raise InputError(
            problem
            or Problem(
                f"cannot read as {fmt.value}: {str(exc).strip().splitlines()[0]}",
                Location(file=str(path)),
                hint="check the file is complete and in the format its name says",
            )
        ) from exc


def _sniff(con: duckdb.DuckDBPyConnection, path: Path, fmt: FileFormat) -> Sniff:
    empty = frozenset[str]()
    data = str(readable(path, binary_ok=fmt is FileFormat.parquet))
    if fmt is FileFormat.csv:
        rel = con.sql(
            "SELECT * FROM read_csv($p, all_varchar = true, header = true)", params={"p": data}
        )
        cols = frozenset(rel.columns)
        return Sniff(path, fmt, cols, empty, cols)
    if fmt is FileFormat.parquet:
        rel = con.sql("SELECT * FROM read_parquet($p)", params={"p": data})
        cols = frozenset(rel.columns)
        return Sniff(path, fmt, cols, empty, cols)
    _load_lines(con, path, fmt)
    rows = con.execute(
        f"""
        WITH top AS (
            SELECT {RECORD} AS j FROM {_LINES_TABLE} WHERE {PROBLEM} IS NULL LIMIT 50
        ), keyed AS (
            SELECT j, unnest(json_keys(j)) AS k FROM top WHERE json_type(j) = 'OBJECT'
        )
        SELECT 'key', k FROM keyed
        UNION
        SELECT 'array', k FROM keyed WHERE json_type(j -> ('$."' || k || '"')) = 'ARRAY'
        UNION
        SELECT 'element', unnest(json_keys(e)) FROM (
            SELECT unnest(CAST(j AS JSON[])) AS e FROM top WHERE json_type(j) = 'ARRAY'
        ) WHERE json_type(e) = 'OBJECT'
        UNION
        SELECT 'page', unnest(json_keys(e)) FROM (
            SELECT unnest(CAST(j -> ('$."' || k || '"') AS JSON[])[1:20]) AS e
            FROM keyed WHERE json_type(j -> ('$."' || k || '"')) = 'ARRAY'
        ) WHERE json_type(e) = 'OBJECT'
        """  # noqa: S608 - fixed text
    ).fetchall()
    keys = frozenset(str(k) for t, k in rows if t in ("key", "element"))
    arrays = frozenset(str(k) for t, k in rows if t == "array")
    elements = frozenset(str(k) for t, k in rows if t == "page")
    return Sniff(path, fmt, keys, arrays, keys, elements)


def with_record_keys(con: duckdb.DuckDBPyConnection, found: Sniff, array_key: str) -> Sniff:
    """The sniff with ``record_keys`` read from the elements of the page array ``array_key``."""
    rows = con.execute(
        f"""
        SELECT DISTINCT unnest(json_keys(e)) FROM (
            SELECT unnest(CAST(json_extract({RECORD}, $k) AS JSON[])) AS e
            FROM (SELECT {RECORD} FROM {_LINES_TABLE} WHERE {PROBLEM} IS NULL LIMIT 50)
        ) WHERE json_type(e) = 'OBJECT'
        """,  # noqa: S608 - fixed text
        {"k": _key_path(array_key)},
    ).fetchall()
    return Sniff(
        found.path,
        found.format,
        found.keys,
        found.array_keys,
        frozenset(str(r[0]) for r in rows),
        found.element_keys,
    )


_LINES_TABLE: Final[str] = "__tc_lines"


def _load_lines(con: duckdb.DuckDBPyConnection, path: Path, fmt: FileFormat) -> None:
    """The file's top-level JSON values, one row each with its line number and validity.

    A JSON Lines file is split on newlines in SQL, so one bad line (a truncated download, a
    log message mixed in) is reported with its line number while the others are read. A
    ``.json`` file is one document; if it does not parse, nothing in it can be trusted and
    the whole file is refused.
    """
    data = str(readable(path))
    if fmt is FileFormat.jsonl:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_LINES_TABLE} AS
            WITH split AS (
                SELECT string_split(content, chr(10)) AS lines FROM read_text($p)
            ), numbered AS (
                SELECT unnest(lines) AS line, generate_subscripts(lines, 1) AS {_LINE} FROM split
            )
            SELECT {_LINE},
                   CASE WHEN json_valid(line) THEN CAST(line AS JSON) END AS {RECORD},
                   CASE WHEN NOT json_valid(line) THEN
                       'line ' || {_LINE} || ' is not valid JSON (a truncated or corrupted line?)'
                   END AS {PROBLEM},
                   CASE WHEN NOT json_valid(line) THEN left(line, 2000) END AS __tc_text
            FROM numbered WHERE trim(line) <> ''
            """,  # noqa: S608 - fixed text
            {"p": data},
        )
        return
    row = con.execute(
        "SELECT json_valid(content), length(content) FROM read_text($p)", {"p": data}
    ).fetchone()
    assert row is not None
    if not row[0]:
        raise InputError(
            Problem(
                f"not valid JSON: {_json_error(path)}",
                Location(file=str(path)),
                hint="a truncated download? fetch the page again; JSON Lines files (.jsonl) "
                "can be read around a bad line, a .json document cannot",
            )
        )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_LINES_TABLE} AS
        SELECT 1 AS {_LINE}, CAST(content AS JSON) AS {RECORD},
               CAST(NULL AS VARCHAR) AS {PROBLEM}, CAST(NULL AS VARCHAR) AS __tc_text
        FROM read_text($p)
        """,  # noqa: S608 - fixed text
        {"p": data},
    )


def _json_error(path: Path) -> str:
    """Where a JSON document breaks (error path only: the document is parsed once in Python)."""
    try:
        json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return "DuckDB could not parse it"


def _key_path(key: str) -> str:
    """A JSON path selecting one top-level key, quoted so any key text is just a name."""
    return "$." + json.dumps(key)


def read_records(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: FileFormat,
    array_key: str | None,
    by_line: bool = False,
) -> None:
    """Lay a JSON file out as ``__tc_records``: one row per vendor record, in file order.

    A top-level value that is an object holding ``array_key`` is a page: its array elements
    are the records. A top-level array's elements are records. Any other top-level object is
    itself a record. Records are numbered 1.. in file order (``__tc_row``); a bad line is one
    record with a problem. :func:`sniff` must have run on the same file first. ``by_line``
    numbers each record by its line instead (one record a line, as in an ETL envelope read one
    stream at a time, so a row still points at the line of the whole file).
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {RECORDS_TABLE} AS
        WITH expanded AS (
            SELECT {_LINE}, 0 AS {_INDEX}, {RECORD}, {PROBLEM}, __tc_text
            FROM {_LINES_TABLE}
            WHERE {PROBLEM} IS NOT NULL
               OR (json_type({RECORD}) = 'OBJECT'
                   AND ($k IS NULL
                        OR json_type(json_extract({RECORD}, $kp)) IS DISTINCT FROM 'ARRAY'))
            UNION ALL
            SELECT {_LINE}, generate_subscripts(items, 1), unnest(items), NULL, NULL
            FROM (
                SELECT {_LINE},
                       CASE WHEN json_type({RECORD}) = 'ARRAY' THEN CAST({RECORD} AS JSON[])
                            ELSE CAST(json_extract({RECORD}, $kp) AS JSON[]) END AS items
                FROM {_LINES_TABLE}
                WHERE {PROBLEM} IS NULL
                  AND (json_type({RECORD}) = 'ARRAY'
                       OR ($k IS NOT NULL AND json_type(json_extract({RECORD}, $kp)) = 'ARRAY'))
            )
        )
        SELECT CASE WHEN $by_line THEN {_LINE}
                    ELSE row_number() OVER (ORDER BY {_LINE}, {_INDEX}) END AS {ROW_COLUMN},
               {_LINE}, {RECORD},
               coalesce({PROBLEM}, CASE WHEN json_type({RECORD}) <> 'OBJECT' THEN
                   'line ' || {_LINE} || ': a record must be a JSON object, got '
                   || lower(json_type({RECORD})) END) AS {PROBLEM},
               __tc_text
        FROM expanded
        """,  # noqa: S608 - fixed text
        {"k": array_key, "kp": _key_path(array_key or "__tc_no_page_key"), "by_line": by_line},
    )


def read_csv_records(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Lay a CSV (or Parquet) file out as ``__tc_records``: its columns as text, numbered rows.

    Every value is read as text so that a vendor's odd value is seen and reported by the
    adapter's checks instead of failing the whole file on a type guess.
    """
    fmt = detect_format(path)
    data = str(readable(path, binary_ok=fmt is FileFormat.parquet))
    try:
        _read_table_records(con, data, fmt)
    except duckdb.Error as exc:
        problem = encoding_problem(path, exc)
        if problem is None:
            raise
        raise InputError(problem) from exc


def _read_table_records(con: duckdb.DuckDBPyConnection, data: str, fmt: FileFormat) -> None:
    if fmt is FileFormat.parquet:
        reader = "read_parquet($p, file_row_number = true)"
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {RECORDS_TABLE} AS
            SELECT COLUMNS(lambda c: c <> 'file_row_number')::VARCHAR,
                   file_row_number + 1 AS {ROW_COLUMN},
                   CAST(NULL AS VARCHAR) AS {PROBLEM}
            FROM {reader}
            """,  # noqa: S608 - fixed text
            {"p": data},
        )
        return
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {RECORDS_TABLE} AS
        SELECT *, row_number() OVER () AS {ROW_COLUMN}, CAST(NULL AS VARCHAR) AS {PROBLEM}
        FROM read_csv($p, all_varchar = true, header = true)
        """,  # noqa: S608 - fixed text
        {"p": data},
    )


# --------------------------------------------------------------------------- staging


def stage_file(
    con: duckdb.DuckDBPyConnection,
    adapter: Adapter,
    kind: str,
    options: AdapterOptions,
    table: str,
    file_name: str,
) -> None:
    """Create the stage table ``table`` for one file laid out in ``__tc_records``.

    The bad records (broken JSON lines, non-object records) are set aside first, so the
    adapter's SELECT sees only good ones; they come back as quarantined records. The wrapper
    casts every column to its canonical type, so an adapter cannot change the table's shape.
    """
    sql, params = adapter.events_sql(kind, options)
    clash = [name for name in params if name.startswith("tc_")]
    if clash:
        raise ValueError(f"adapter parameters must not start with 'tc_': {clash}")
    columns = {str(r[0]) for r in con.execute(f"DESCRIBE {RECORDS_TABLE}").fetchall()}
    text = "__tc_text" if "__tc_text" in columns else "NULL"
    record = RECORD if RECORD in columns else "NULL"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __tc_bad AS
        SELECT {ROW_COLUMN}, {PROBLEM},
               coalesce(CAST({record} AS JSON), to_json({text})) AS {RAW}
        FROM {RECORDS_TABLE} WHERE {PROBLEM} IS NOT NULL
        """  # noqa: S608 - fixed text
    )
    con.execute(f"DELETE FROM {RECORDS_TABLE} WHERE {PROBLEM} IS NOT NULL")  # noqa: S608
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        WITH produced AS ({sql})
        SELECT coalesce(CAST(event_id AS VARCHAR), CASE WHEN {PROBLEM} IS NULL THEN
                   $tc_vendor || ':' || $tc_file || ':' || {ROW_COLUMN} || ':' || {SUB} END)
                   AS event_id,
               CAST(entity_id AS VARCHAR) AS entity_id,
               CAST(ts AS TIMESTAMP) AS ts,
               CAST(type AS VARCHAR) AS type,
               CAST(actor AS VARCHAR) AS actor,
               CAST(value AS DOUBLE) AS value,
               CASE WHEN {PROBLEM} IS NULL THEN CAST(json_merge_patch(
                   coalesce(CAST(attrs AS JSON), CAST('{{}}' AS JSON)), CAST($tc_marks AS JSON)
               ) AS JSON) END AS attrs,
               coalesce(CAST(source AS VARCHAR), $tc_file || ':' || {ROW_COLUMN}) AS source,
               CAST(recorded_at AS TIMESTAMP) AS recorded_at,
               CAST(seq AS BIGINT) AS seq,
               CAST({ROW_COLUMN} AS BIGINT) AS {ROW_COLUMN},
               CAST({SUB} AS INTEGER) AS {SUB},
               CAST({PROBLEM} AS VARCHAR) AS {PROBLEM},
               CAST({PROBLEM_COLUMN} AS VARCHAR) AS {PROBLEM_COLUMN},
               CAST({RAW} AS JSON) AS {RAW}
        FROM produced
        UNION ALL
        SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               {ROW_COLUMN}, 0, {PROBLEM}, NULL, {RAW}
        FROM __tc_bad
        """,  # noqa: S608 - the adapter's SQL is fixed package text; values are parameters
        {
            **params,
            "tc_vendor": adapter.name,
            "tc_file": file_name,
            "tc_marks": json.dumps({"vendor": adapter.name, "record": kind}),
        },
    )
    con.execute("DROP TABLE IF EXISTS __tc_bad")
