"""A workspace: a folder with a small config file and an embedded DuckDB store.

The store holds the canonical events, the quarantine of rows that could not be loaded (with the
reason), and a log of every ingest, so any count can be traced back to the files that fed it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import yaml

from truecount.errors import Location, Problem, WorkspaceError
from truecount.ingest.canonical import (
    EVENTS_TABLE,
    INGEST_LOG_TABLE,
    QUARANTINE_TABLE,
    create_table_sql,
)
from truecount.versions import ensure_versions_table

CONFIG_NAME: Final[str] = "truecount.yaml"
STORE_NAME: Final[str] = "truecount.duckdb"

_QUARANTINE_DDL: Final[str] = (
    f"CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} ("
    "ingest_id BIGINT, file VARCHAR, row_number BIGINT, column_name VARCHAR, "
    "reason VARCHAR, raw JSON)"
)
_INGEST_LOG_DDL: Final[str] = (
    f"CREATE TABLE IF NOT EXISTS {INGEST_LOG_TABLE} ("
    "ingest_id BIGINT, file VARCHAR, sha256 VARCHAR, mapping VARCHAR, "
    "rows_read BIGINT, loaded BIGINT, duplicate BIGINT, quarantined BIGINT, "
    "ingested_at TIMESTAMP)"
)


@dataclass(frozen=True)
class Workspace:
    """An initialised workspace folder. Open with :meth:`open`, create with :meth:`init`."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def store_path(self) -> Path:
        return self.root / STORE_NAME

    @classmethod
    def init(cls, root: Path | str = ".") -> Workspace:
        """Create the folder, config and an empty store; leave an existing workspace untouched."""
        path = Path(root)
        path.mkdir(parents=True, exist_ok=True)
        ws = cls(path)
        if not ws.config_path.exists():
            config = {
                "truecount_workspace": 1,
                "store": STORE_NAME,
                "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            }
            ws.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        with ws.connect() as con:
            ensure_schema(con)
        return ws

    @classmethod
    def open(cls, root: Path | str | None = None) -> Workspace:
        """Find the workspace at ``root`` or in the current folder or one of its parents."""
        start = Path(root) if root is not None else Path.cwd()
        candidates = [start] if root is not None else [start, *start.parents]
        for folder in candidates:
            if (folder / CONFIG_NAME).is_file():
                return cls(folder)
        raise WorkspaceError(
            Problem(
                "no truecount workspace here",
                Location(file=str(start)),
                hint="run 'truecount init' first, or pass --events FILE to work on files directly",
            )
        )

    def config(self) -> dict[str, Any]:
        data = yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise WorkspaceError(
                Problem("config is not a mapping", Location(file=str(self.config_path)))
            )
        return data

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the store. Callers close it (use ``with``)."""
        try:
            con = duckdb.connect(str(self.store_path), read_only=read_only)
            configure(con)
            return con
        except duckdb.Error as exc:  # pragma: no cover - depends on the file system
            raise WorkspaceError(
                Problem(f"cannot open the store: {exc}", Location(file=str(self.store_path)))
            ) from exc


#: DuckDB's memory budget unless TRUECOUNT_MEMORY_LIMIT says otherwise. DuckDB's own default
#: (80% of RAM) lets hash tables grow far past need; with a budget it spills to disk instead,
#: at no measured cost in speed on the 10M-ticket benchmark (bench/README.md).
DEFAULT_MEMORY_LIMIT: Final[str] = "2GB"
_MEMORY_RE: Final = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def configure(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> None:
    """Settings every truecount connection runs with.

    UTC session time zone (results must not depend on the machine's zone), no progress bar
    on stdout (output stays machine-readable), and a memory budget.
    """
    limit = memory_limit or os.environ.get("TRUECOUNT_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
    if not _MEMORY_RE.match(limit.strip()):
        raise WorkspaceError(
            Problem(
                f"memory limit '{limit}' is not a size",
                Location(key="TRUECOUNT_MEMORY_LIMIT"),
                "use e.g. 2GB or 512MB",
            )
        )
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET memory_limit = '{limit.strip()}'")  # checked against _MEMORY_RE above


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the events, quarantine, ingest-log and definition-version tables if missing."""
    con.execute(create_table_sql(EVENTS_TABLE))
    con.execute(_QUARANTINE_DDL)
    con.execute(_INGEST_LOG_DDL)
    ensure_versions_table(con)
