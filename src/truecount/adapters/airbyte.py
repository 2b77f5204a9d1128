"""Airbyte's record files: the same vendor records, in an ETL tool's envelope.

Many buyers never call a platform's API: an Airbyte connection copies it into files or a
warehouse, and the export they hold is Airbyte's. The records inside are the platform's own API
objects (a Zendesk ticket, an Intercom conversation), so they are read by the vendor's own
kinds; only the envelope and the stream name are Airbyte's. Four envelopes are read, in JSON
Lines, JSON or (for the raw table) CSV, plain or gzipped:

``message``
    the protocol's output, one message a line: ``{"type": "RECORD", "record": {"stream",
    "data", "emitted_at"}}``. ``STATE``, ``LOG``, ``TRACE`` and other messages carry no record
    and are not rows of the export; they are skipped (and counted in the ingest report's label).
``record``
    the record alone: ``{"stream", "data", "emitted_at"}`` a line.
``raw``
    a destination's raw table: ``{"_airbyte_ab_id" | "_airbyte_raw_id", "_airbyte_emitted_at"
    | "_airbyte_extracted_at", "_airbyte_data", ...}``, ``_airbyte_data`` an object or JSON text
    (CSV destinations write it as text).
``typed``
    a destination's final table written as JSON: the record's own fields at the top level
    beside ``_airbyte_*`` columns, which are dropped.

The stream is named in ``message`` and ``record`` lines (several streams may share a file). A
``raw`` or ``typed`` file holds one stream, named by the file (``tickets.jsonl``,
``_airbyte_raw_tickets.jsonl``, ``..._raw__stream_tickets.csv``) or by its folder (object-store
destinations write ``<stream>/<date>_<n>.jsonl``); a file whose stream cannot be told is refused.

Each stream the adapter reads (:attr:`Adapter.airbyte_streams`) is staged as its own part of
the file, by that kind's SQL, as if its ``data`` objects were the lines of a JSON Lines file;
records of any other stream (``users``, ``groups`` ...) and lines that are not valid records
are quarantined with the reason, so a file's rows still add up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

import duckdb

from truecount.errors import InputError, Location, Problem
from truecount.ingest.plan import PROBLEM
from truecount.ingest.source import FileFormat

Shape = Literal["message", "record", "raw", "typed"]

_LINES: Final[str] = "__tc_lines"
_ROWS: Final[str] = "__tc_airbyte"
STREAM: Final[str] = "__tc_stream"

#: A destination's metadata columns, always prefixed so.
_META_PREFIX: Final[str] = "_airbyte_"
_ID_KEYS: Final[frozenset[str]] = frozenset({"_airbyte_ab_id", "_airbyte_raw_id"})
_NAME_PATTERNS: Final[tuple[re.Pattern[str], ...]] = (
    re.compile(r"^_airbyte_raw_(?P<s>.+)$"),
    re.compile(r"^.*_raw__stream_(?P<s>.+)$"),
    re.compile(r"^(?P<s>.+)$"),
)


def shape_of(keys: frozenset[str], fmt: FileFormat) -> Shape | None:
    """Which Airbyte envelope a file's top-level keys (or CSV columns) show, if any."""
    if fmt in (FileFormat.json, FileFormat.jsonl):
        if {"type", "record"} <= keys:
            return "message"
        if {"stream", "data"} <= keys and "emitted_at" in keys:
            return "record"
    if "_airbyte_data" in keys:
        return "raw"
    if keys & _ID_KEYS and fmt in (FileFormat.json, FileFormat.jsonl):
        return "typed"
    return None


def stream_from_name(path: Path, streams: Mapping[str, str]) -> str | None:
    """The stream a one-stream file holds, from its name or its folder's."""
    name = path.name[: len(path.name) - len("".join(path.suffixes))] or path.stem
    for pattern in _NAME_PATTERNS:
        found = pattern.match(name)
        if found and found.group("s") in streams:
            return found.group("s")
    return path.parent.name if path.parent.name in streams else None


def unwrap(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: FileFormat,
    shape: Shape,
    file_stream: str | None,
) -> int:
    """Rewrite the lines table of a sniffed JSON file (or build it from a CSV raw table) as
    one row per Airbyte record: ``__tc_record`` the record's ``data``, ``__tc_stream`` its
    stream. Non-record protocol messages are dropped; a record line without a data object
    keeps its line with a problem (and no stream). Returns how many protocol messages were
    not records."""
    if fmt is FileFormat.csv:
        if shape != "raw":
            raise InputError(
                Problem(
                    "an Airbyte table written as CSV with the record's fields as columns: "
                    "nested fields are flattened to text and cannot be read back faithfully",
                    Location(file=str(path)),
                    hint="export the raw table (with _airbyte_data) or JSON Lines instead",
                )
            )
        from truecount.container import readable

        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_LINES} AS
            SELECT row_number() OVER () AS __tc_line,
                   CASE WHEN json_valid(_airbyte_data)
                        THEN json_object('_airbyte_data', CAST(_airbyte_data AS JSON)) END
                       AS __tc_record,
                   CASE WHEN NOT coalesce(json_valid(_airbyte_data), false) THEN
                       'row ' || row_number() OVER () || ': _airbyte_data is not valid JSON'
                   END AS {PROBLEM},
                   CASE WHEN NOT coalesce(json_valid(_airbyte_data), false)
                        THEN left(_airbyte_data, 2000) END AS __tc_text
            FROM read_csv($p, all_varchar = true, header = true)
            """,  # noqa: S608 - fixed text
            {"p": str(readable(path))},
        )
    if fmt is FileFormat.json:
        # a .json document holding an array of messages or records: one line per element
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_LINES} AS
            SELECT __tc_line, __tc_record, {PROBLEM}, __tc_text FROM {_LINES}
            WHERE {PROBLEM} IS NOT NULL OR json_type(__tc_record) <> 'ARRAY'
            UNION ALL
            SELECT generate_subscripts(items, 1), unnest(items), NULL, NULL FROM (
                SELECT CAST(__tc_record AS JSON[]) AS items FROM {_LINES}
                WHERE {PROBLEM} IS NULL AND json_type(__tc_record) = 'ARRAY'
            )
            """  # noqa: S608 - fixed text
        )
    data, stream, keep = _PARTS[shape]
    skipped = con.execute(
        f"SELECT count(*) FROM {_LINES} WHERE {PROBLEM} IS NULL "  # noqa: S608 - fixed text
        f"AND NOT ({keep.replace('r ->>', '__tc_record ->>')})"
    ).fetchone()
    sql = f"""
        CREATE OR REPLACE TEMP TABLE {_ROWS} AS
        WITH src AS (
            SELECT __tc_line, __tc_record AS r, {PROBLEM} AS p, __tc_text
            FROM {_LINES}
        ), picked AS (
            SELECT __tc_line, p, __tc_text,
                   CASE WHEN p IS NULL THEN {data} END AS d,
                   CASE WHEN p IS NULL THEN {stream} END AS s,
                   r
            FROM src WHERE p IS NOT NULL OR ({keep})
        )
        SELECT __tc_line,
               CASE WHEN json_type(d) = 'OBJECT' THEN d END AS __tc_record,
               coalesce(p, CASE
                   WHEN coalesce(json_type(d), '') <> 'OBJECT' THEN
                       'line ' || __tc_line || ': an Airbyte record without a data object'
                   WHEN s IS NULL THEN
                       'line ' || __tc_line || ': an Airbyte record without a stream name'
               END) AS {PROBLEM},
               CASE WHEN p IS NOT NULL THEN __tc_text
                    WHEN coalesce(json_type(d), '') <> 'OBJECT' OR s IS NULL
                        THEN left(CAST(r AS VARCHAR), 2000)
               END AS __tc_text,
               CASE WHEN p IS NULL AND json_type(d) = 'OBJECT' THEN s END AS {STREAM}
        FROM picked
        """  # noqa: S608 - fixed text per shape
    given = {"stream": file_stream, "meta": _META_PREFIX}
    con.execute(sql, {k: v for k, v in given.items() if f"${k}" in sql})
    con.execute(f"DROP TABLE IF EXISTS {_LINES}")
    con.execute(f"ALTER TABLE {_ROWS} RENAME TO {_LINES}")
    return int(skipped[0]) if skipped else 0


#: Per shape: the record's data, its stream, and which top-level lines are records.
_PARTS: Final[dict[Shape, tuple[str, str, str]]] = {
    "message": ("r -> '$.record.data'", "r ->> '$.record.stream'", "r ->> '$.type' = 'RECORD'"),
    "record": ("r -> '$.data'", "r ->> '$.stream'", "true"),
    "raw": (
        "CASE json_type(r -> '$._airbyte_data') "
        "WHEN 'OBJECT' THEN r -> '$._airbyte_data' "
        "WHEN 'VARCHAR' THEN CASE WHEN json_valid(r ->> '$._airbyte_data') "
        "THEN CAST(r ->> '$._airbyte_data' AS JSON) END END",
        "$stream",
        "true",
    ),
    "typed": (
        # the record without the destination's own columns: a merge patch that sets each
        # _airbyte_* key to null removes it, whatever characters the other keys hold
        "CASE WHEN json_type(r) = 'OBJECT' THEN json_merge_patch(r, coalesce(("
        "SELECT json_group_object(k, NULL) FROM (SELECT unnest(json_keys(r)) AS k) "
        "WHERE starts_with(k, $meta)), CAST('{}' AS JSON))) END",
        "$stream",
        "true",
    ),
}


def streams_in(con: duckdb.DuckDBPyConnection) -> dict[str | None, int]:
    """Records per stream in the unwrapped lines table (None: lines that are not records)."""
    rows = con.execute(
        f"SELECT {STREAM}, count(*) FROM {_LINES} GROUP BY ALL"  # noqa: S608 - fixed text
    ).fetchall()
    return {(None if s is None else str(s)): int(n) for s, n in rows}


def keep_stream(
    con: duckdb.DuckDBPyConnection, stream: str | None, read: Mapping[str, str], vendor: str
) -> None:
    """Keep one stream's records in the lines table; ``stream=None`` keeps every line no
    kind reads (other streams, broken lines), each marked with why it is not loaded."""
    if stream is not None:
        con.execute(f"DELETE FROM {_LINES} WHERE {STREAM} IS DISTINCT FROM $s", {"s": stream})  # noqa: S608
        return
    con.execute(
        f"DELETE FROM {_LINES} WHERE {STREAM} IS NOT NULL AND list_contains($read, {STREAM})",  # noqa: S608
        {"read": sorted(read)},
    )
    con.execute(
        f"""
        UPDATE {_LINES} SET {PROBLEM} = 'line ' || __tc_line || ': Airbyte stream '''
            || {STREAM} || ''' is not read by --source ' || $vendor || ' (streams read: '
            || $names || ')'
        WHERE {PROBLEM} IS NULL
        """,  # noqa: S608 - fixed text
        {"vendor": vendor, "names": ", ".join(sorted(read))},
    )
