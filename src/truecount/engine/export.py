"""Canonical events written as Parquet, partitioned by month, for Spark or any warehouse.

A lake or warehouse job reads Parquet; CSV is a trap there (Spark's default CSV escape
character mangles the JSON in ``attrs``, and a zone-less timestamp is read in the session's
zone). The export writes exactly the canonical columns with their types: ``ts`` and
``recorded_at`` as naive UTC timestamps, ``attrs`` as JSON text. Files go under
``month=YYYY-MM/`` (Hive-style), so a reader that filters by month skips the other folders.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from sqlglot import exp

from truecount.errors import InputError, Location, Problem
from truecount.ingest.canonical import CANONICAL_COLUMNS, EVENTS_TABLE

#: The partition column added to the files' folder names (not to the canonical columns).
PARTITION_COLUMN = "month"


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
