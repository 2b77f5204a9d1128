"""An input file opened as a DuckDB query: its reader, its columns, and a row number.

Every format is read by DuckDB's own streaming readers; nothing is loaded into Python. CSV is
read with every column as text (``all_varchar``) so that a bad value is seen and quarantined by
the validation step rather than silently coerced or rejected by type sniffing. JSON Lines is
read one JSON object per line and values are pulled out with JSON paths, which is also how
nested records are reached. Row numbers count records from 1 in file order (the CSV header is
not a record); they are what quarantine entries and the default ``source`` point at.
"""

from __future__ import annotations

import contextlib
import csv
import enum
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import duckdb
import numpy as np
from sqlglot import exp

from truecount.container import diagnose_utf8, format_suffix, readable
from truecount.errors import InputError, Location, Problem

#: Internal column names; the prefix keeps them apart from anything an export may contain.
ROW_COLUMN: Final[str] = "__tc_row"
JSON_COLUMN: Final[str] = "__tc_json"


class FileFormat(enum.StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    json = "json"
    parquet = "parquet"


_SUFFIXES: Final[dict[str, FileFormat]] = {
    ".csv": FileFormat.csv,
    ".tsv": FileFormat.csv,
    ".txt": FileFormat.csv,
    ".jsonl": FileFormat.jsonl,
    ".ndjson": FileFormat.jsonl,
    ".json": FileFormat.json,
    ".parquet": FileFormat.parquet,
    ".pq": FileFormat.parquet,
}

#: The words DuckDB's readers use when a file is not UTF-8 (the error path asks
#: :func:`truecount.container.diagnose_utf8` where and what it is instead).
_NOT_UTF8: Final[tuple[str, ...]] = ("not utf-8", "valid utf-8", "invalid unicode")


def encoding_problem(path: Path, exc: BaseException) -> Problem | None:
    """A clear problem for a DuckDB read error caused by the file's encoding, else None."""
    text = str(exc).lower()
    if not any(word in text for word in _NOT_UTF8):
        return None
    return diagnose_utf8(path)


#: Delimiters DuckDB's sniffer may choose; a header joined by one of them is the file's header.
_DELIMITERS: Final[tuple[str, ...]] = (",", ";", "\t", "|")
#: The longest CSV line read (DuckDB's default is 2 MB): a record with a long transcript
#: or attribute text is a real export, and JSON Lines reads lines of any length. Measured on
#: two million rows, the larger buffers read a little faster for a few tens of MB more.
MAX_CSV_LINE: Final[int] = 32 * 1024 * 1024


def _first_long_line(path: Path, limit: int, chunk_bytes: int = 8 << 20) -> tuple[int, int]:
    """The number and byte length (with its line feed) of the first line longer than
    ``limit``, or (0, 0): the line feeds of each chunk found at once by NumPy."""
    lines_before, start, at = 0, 0, 0  # start: offset of the current line's first byte
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            ends = at + np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
            lengths = np.diff(ends, prepend=start - 1)
            over = np.flatnonzero(lengths > limit)
            if over.size:
                k = int(over[0])
                return lines_before + k + 1, int(lengths[k])
            if ends.size:
                lines_before += int(ends.size)
                start = int(ends[-1]) + 1
            at += len(chunk)
    tail = at - start
    return (lines_before + 1, tail) if tail > limit else (0, 0)


def long_line_problem(path: Path, exc: BaseException) -> Problem | None:
    """A clear problem for DuckDB's "maximum line size exceeded", else None.

    DuckDB names the line within its buffer, not the file's; the file's first line over the
    limit is found here (error path only: one pass over the file).
    """
    if "maximum line size" not in str(exc).lower():
        return None
    line, longest = 0, 0
    with contextlib.suppress(OSError):  # unreadable now: the message names no line
        line, longest = _first_long_line(readable(path), MAX_CSV_LINE)
    where = f"line {line} holds {longest:,} bytes" if line else "a line is longer"
    return Problem(
        f"{where}, over the {MAX_CSV_LINE:,} a CSV line may hold",
        Location(file=str(path), line=line or None),
        hint='a line this long is most often a quote that never closes (a stray " makes '
        "the rest of the file one value): check the quoting there; a value really this long "
        "can come as JSON Lines, whose lines have no limit",
    )


#: How a message names each delimiter.
_DELIMITER_NAMES: Final[dict[str, str]] = {
    ",": "commas",
    ";": "semicolons",
    "\t": "tabs",
    "|": "vertical bars",
}
#: Lines searched for the header (DuckDB's sniffer may skip a few above it).
_HEADER_SEARCH: Final[int] = 20


def ragged_row_problem(path: Path, columns: list[str]) -> Problem | None:
    """The first CSV row whose number of fields is not the header's, when DuckDB's columns
    are not the header.

    A row with an extra field (an unquoted decimal comma: ``T-1,12,50`` under
    ``entity_id,amount``) or a missing one makes DuckDB's sniffer give up on the header, and
    the file would be reported as lacking a column it has. Only when the columns read differ
    from the file's first line is the file read again, here, to name the row; a good file
    costs one line. The delimiter is the one the header line uses most.
    """
    source = readable(path)
    if source.suffix.lower() in (".gz", ".zst"):
        return None  # still compressed: left to DuckDB's message
    try:
        with source.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            line = handle.readline()
            delimiter = (
                "\t"
                if format_suffix(path) == ".tsv"
                else max(_DELIMITERS, key=lambda d: (line.count(d), d == ","))
            )
            handle.seek(0)
            rows = csv.reader(handle, delimiter=delimiter)
            header = next(rows, None)
            if header is None or header == columns:
                return None
            first = delimiter.join(header)
            if len(columns) > 1 and any(d.join(columns) == first for d in _DELIMITERS):
                return None  # another delimiter, sniffed right
            for number, fields in enumerate(rows, start=1):
                if fields in ([], [""]) or len(fields) == len(header):
                    continue  # a blank line, or a row of the header's width
                more = len(fields) > len(header)
                return Problem(
                    f"a row with {'more' if more else 'fewer'} fields than the header: line "
                    f"{rows.line_num} has {len(fields)}, the header {len(header)} "
                    f"(separated by {_DELIMITER_NAMES[delimiter]})",
                    Location(file=str(path), row=number),
                    'quote values holding the delimiter ("12,50") or write decimals '
                    "with a point (12.50)"
                    if more
                    else "give every row the header's fields; an empty value is still a field "
                    "(a,,c holds three)",
                )
    except (OSError, csv.Error):
        return None
    return None


#: How DuckDB renames a repeated header name (value, value -> value, value_1).
_RENAMED: Final[re.Pattern[str]] = re.compile(r"_[0-9]+$")


def duplicate_header_problem(path: Path, columns: list[str]) -> Problem | None:
    """A CSV header that names a column twice, which DuckDB would read as ``value`` and
    ``value_1``: the file's first ``value`` would be taken silently, where most tools take the
    last. Only when a column read ends in ``_<digits>`` is the header line read, here, to
    tell a renamed repeat from a column really called so; a good file costs nothing.
    """
    if not any(_RENAMED.search(c) for c in columns):
        return None
    source = readable(path)
    if source.suffix.lower() in (".gz", ".zst"):
        return None  # still compressed: left to DuckDB's columns
    try:
        with source.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            first = [next(handle, "") for _ in range(_HEADER_SEARCH)]
    except OSError:
        return None
    for number, line in enumerate(first, start=1):
        for delimiter in _DELIMITERS:
            names = next(csv.reader([line], delimiter=delimiter), [])
            if len(names) != len(columns):
                continue
            seen: dict[str, int] = {}
            for position, name in enumerate(names, start=1):
                key = name.strip().lower()  # DuckDB's names are trimmed and caseless
                if key in seen:
                    return Problem(
                        f"the header names column '{name.strip()}' twice (columns {seen[key]} "
                        f"and {position}, line {number}: {line.rstrip()[:200]})",
                        Location(file=str(path), column=name.strip()),
                        "rename or remove one of them; names that differ only in case are "
                        "the same name",
                    )
                seen[key] = position
            if len(columns) > 1:
                return None  # the header, without a repeat
    return None


def quoted(name: str) -> exp.Identifier:
    """A quoted identifier: user-supplied names never reach SQL as raw text."""
    return exp.to_identifier(name, quoted=True)


def column(name: str) -> exp.Column:
    return exp.Column(this=quoted(name))


def call(name: str, *args: exp.Expr) -> exp.Expr:
    """A DuckDB function call by a fixed (never user-supplied) name."""
    return exp.Anonymous(this=name, expressions=list(args))


@dataclass(frozen=True)
class Source:
    """One opened input file: a SELECT producing its records plus ``__tc_row``."""

    path: Path
    format: FileFormat
    query: exp.Select | None  # None for an empty (0-byte) file
    columns: dict[str, str]  # column (or top-level JSON key) -> DuckDB type name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_json(self) -> bool:
        return self.format in (FileFormat.jsonl, FileFormat.json)

    @property
    def empty(self) -> bool:
        return self.query is None


def detect_format(path: Path) -> FileFormat:
    """The format a file's name says, past a compression suffix (``tickets.json.gz``)."""
    suffix = format_suffix(path)
    found = _SUFFIXES.get(suffix)
    if found is None:
        raise InputError(
            Problem(
                f"unknown file type '{suffix or '(none)'}'",
                Location(file=str(path)),
                hint="use .csv (or .tsv, .txt), .jsonl (or .ndjson), .json or .parquet (or .pq), "
                "text ones optionally gzipped (.csv.gz, .jsonl.gz, .json.gz)",
            )
        )
    return found


def open_source(con: duckdb.DuckDBPyConnection, path: Path) -> Source:
    """Open ``path`` for reading and learn its columns, without reading the data into Python.

    Raises :class:`InputError` when the file is missing or DuckDB cannot read it.
    """
    fmt = detect_format(path)
    if not path.is_file():
        raise InputError(Problem("file not found", Location(file=str(path))))
    if path.stat().st_size == 0:
        return Source(path=path, format=fmt, query=None, columns={})
    query = _reader_query(readable(path, binary_ok=fmt is FileFormat.parquet), fmt)
    try:
        if fmt in (FileFormat.jsonl, FileFormat.json):
            rows = con.execute(_KEYS_SQL.format(src=query.sql("duckdb"))).fetchall()
            columns = {str(r[0]): "VARCHAR" for r in rows}
            if any(r[1] is not None for r in rows):
                raise InputError(_repeated_key(con, path, query))
        else:
            rel = con.sql(query.sql("duckdb"))
            columns = {
                name: str(typ)
                for name, typ in zip(rel.columns, rel.types, strict=True)
                if name != ROW_COLUMN
            }
            if fmt is FileFormat.csv:
                for problem in (
                    duplicate_header_problem(path, list(columns)),
                    ragged_row_problem(path, list(columns)),
                ):
                    if problem is not None:
                        raise InputError(problem)
    except duckdb.Error as exc:
        problem = encoding_problem(path, exc) or long_line_problem(path, exc)
        if problem is not None:
            raise InputError(problem) from exc
        raise InputError(
            Problem(
                f"cannot read as {fmt.value}: {_first_line(exc)}",
                Location(file=str(path)),
                hint="check the file is complete and in the format its name says",
            )
        ) from exc
    return Source(path=path, format=fmt, query=query, columns=columns)


#: The top-level keys of a JSON file, each with a key list that names some key twice (NULL
#: when none does). Fixed text; the reader it reads is a syntax tree (:func:`_reader_query`).
#: The distinct key lists are few (one per record shape), so the check costs next to nothing
#: beside the scan that learns the columns.
_KEYS_SQL: Final[str] = f"""
SELECT key, max(repeat) FROM (
    SELECT unnest(k) AS key, CASE WHEN len(k) <> list_unique(k) THEN k END AS repeat
    FROM (SELECT DISTINCT json_keys({JSON_COLUMN}) AS k FROM ({{src}}))
) GROUP BY key"""  # noqa: S608


def _repeated_key(con: duckdb.DuckDBPyConnection, path: Path, query: exp.Select) -> Problem:
    """The problem of a record naming a key twice: JSON parsers differ on which one counts
    (DuckDB takes the first, Python and JavaScript the last), so the file is refused, naming
    the first such record."""
    keys = call("json_keys", column(JSON_COLUMN))
    twice = exp.NEQ(this=call("len", keys), expression=call("list_unique", keys.copy()))
    found = con.execute(
        exp.select(column(ROW_COLUMN), keys.copy())
        .from_(query.subquery("src"))
        .where(twice)
        .order_by(column(ROW_COLUMN))
        .limit(1)
        .sql("duckdb")
    ).fetchone()
    row, names = (int(found[0]), list(found[1])) if found else (None, [])
    key = next((k for i, k in enumerate(names) if k in names[:i]), "?")
    return Problem(
        f"a record names key '{key}' twice",
        Location(file=str(path), row=row, column=key),
        "JSON readers disagree on which of the two counts, most take the last and DuckDB the "
        "first: keep one of them",
    )


def _reader_query(path: Path, fmt: FileFormat) -> exp.Select:
    file_literal = exp.Literal.string(str(path))

    def opt(name: str, value: exp.Expr) -> exp.Expr:
        return exp.PropertyEQ(this=exp.to_identifier(name), expression=value)

    if fmt is FileFormat.parquet:
        reader = call("read_parquet", file_literal, opt("file_row_number", exp.true()))
        row = exp.Add(this=exp.column("file_row_number"), expression=exp.Literal.number(1))
        return (
            exp.select(exp.Star(except_=[exp.column("file_row_number")]))
            .select(row.as_(ROW_COLUMN))
            .from_(exp.Table(this=reader))
        )
    row_number = exp.Window(this=exp.RowNumber())
    if fmt is FileFormat.csv:
        reader = call(
            "read_csv",
            file_literal,
            opt("all_varchar", exp.true()),
            opt("header", exp.true()),
            opt("max_line_size", exp.Literal.number(MAX_CSV_LINE)),
        )
        return exp.select(exp.Star(), row_number.as_(ROW_COLUMN)).from_(exp.Table(this=reader))
    layout = "newline_delimited" if fmt is FileFormat.jsonl else "auto"
    reader = call("read_json_objects", file_literal, opt("format", exp.Literal.string(layout)))
    return exp.select(exp.column("json").as_(JSON_COLUMN), row_number.as_(ROW_COLUMN)).from_(
        exp.Table(this=reader)
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
