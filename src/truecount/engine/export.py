"""Canonical events written as Parquet, partitioned by month, for Spark or any warehouse.

A lake or warehouse job reads Parquet; CSV is a trap there (Spark's default CSV escape
character mangles the JSON in ``attrs``, and a zone-less timestamp is read in the session's
zone). The export writes exactly the canonical columns with their types: ``ts`` and
``recorded_at`` as naive UTC timestamps, ``attrs`` as JSON text. Files go under
``month=YYYY-MM/`` (Hive-style), so a reader that filters by month skips the other folders.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlglot import exp

from truecount.container import literal_path
from truecount.errors import InputError, Location, Problem
from truecount.ingest.canonical import CANONICAL_COLUMNS, EVENTS_TABLE

#: The partition column added to the files' folder names (not to the canonical columns).
PARTITION_COLUMN = "month"
#: A folder name the export writes: ``month=2026-01``.
_MONTH_FOLDER = re.compile(rf"{PARTITION_COLUMN}=\d{{4}}-\d{{2}}")


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: the files, the events in them, and the months they cover."""

    files: list[Path]
    rows: int
    months: list[str]


def earlier_export(out: str | Path) -> list[Path]:
    """The Parquet files of an earlier export in ``out``; an error if ``out`` holds anything
    else. Replacing deletes files, so only a folder with exactly the export's own layout
    (``month=YYYY-MM/*.parquet``) is ever cleared: never a folder someone pointed at by mistake.
    """
    target = Path(out)
    if not target.exists():
        return []
    if not target.is_dir():
        raise InputError(
            Problem("is a file, not a folder", Location(file=str(target)), "name a folder")
        )
    files: list[Path] = []
    for entry in sorted(target.iterdir()):
        inner = sorted(entry.iterdir()) if entry.is_dir() else []
        ours = (
            entry.is_dir()
            and _MONTH_FOLDER.fullmatch(entry.name) is not None
            and all(f.is_file() and f.suffix == ".parquet" for f in inner)
        )
        if not ours:
            raise InputError(
                Problem(
                    f"the folder holds {entry.name}, which no export writes",
                    Location(file=str(target)),
                    "replace only a folder an earlier export wrote, or export into a new one",
                )
            )
        files.extend(inner)
    return files


def clear_export(out: str | Path) -> int:
    """Delete an earlier export in ``out`` (checked by :func:`earlier_export`); return the
    number of Parquet files removed."""
    files = earlier_export(out)
    for folder in sorted({f.parent for f in files}):
        shutil.rmtree(folder)
    return len(files)


def summarise(con: duckdb.DuckDBPyConnection, files: list[Path]) -> ExportSummary:
    """Rows per the files' footers (no row is read) and months per the folder names."""
    if not files:
        return ExportSummary([], 0, [])
    listed = exp.Array(expressions=[exp.Literal.string(str(literal_path(f))) for f in files])
    query = exp.select(exp.func("SUM", exp.column("num_rows"))).from_(
        exp.func("parquet_file_metadata", listed)
    )
    row = con.execute(query.sql("duckdb")).fetchone()
    months = sorted({f.parent.name.removeprefix(f"{PARTITION_COLUMN}=") for f in files})
    return ExportSummary(files, int(row[0]) if row and row[0] is not None else 0, months)


def export_events(con: duckdb.DuckDBPyConnection, out: str | Path) -> list[Path]:
    """Write ``events`` of ``con`` under ``out`` as Parquet by month; return the files, sorted.

    ``out`` must not hold Parquet files already: an export never mixes with an older one.
    """
    target = Path(out)
    if target.exists() and any(target.rglob("*.parquet")):
        raise InputError(
            Problem(
                "the folder already holds Parquet files",
                Location(file=str(target)),
                "export into a new or empty folder, so old and new events never mix",
            )
        )
    target.mkdir(parents=True, exist_ok=True)
    ts = exp.column("ts")
    cols: list[exp.Expr] = [exp.column(c, quoted=True) for c in CANONICAL_COLUMNS]
    month = exp.TimeToStr(this=ts, format=exp.Literal.string("%Y-%m"))
    cols.append(exp.alias_(month, PARTITION_COLUMN))
    select = exp.select(*cols).from_(EVENTS_TABLE)
    options = f"FORMAT PARQUET, PARTITION_BY ({PARTITION_COLUMN}), OVERWRITE_OR_IGNORE"
    path = exp.Literal.string(str(target)).sql("duckdb")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"COPY ({select.sql('duckdb')}) TO {path} ({options})")
    return sorted(target.rglob("*.parquet"))


def parquet_files(paths: list[str]) -> list[str]:
    """Paths with every local folder replaced by the Parquet files under it, in sorted order."""
    out: list[str] = []
    for p in paths:
        local = Path(p)
        if "://" not in p and local.is_dir():
            out.extend(str(f) for f in sorted(local.rglob("*.parquet")))
        else:
            out.append(p)
    return out
