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

from truecount.db import configure_spill
from truecount.errors import Location, Problem, WorkspaceError
from truecount.history.versions import ensure_versions_table
from truecount.ingest.canonical import (
    CANONICAL_COLUMNS,
    EVENTS_TABLE,
    INGEST_LOG_TABLE,
    QUARANTINE_TABLE,
    create_table_sql,
)

CONFIG_NAME: Final[str] = "truecount.yaml"
STORE_NAME: Final[str] = "truecount.duckdb"
#: The workspace format this version reads and writes (``truecount_workspace`` in the config).
#: A store laid out otherwise would be read wrongly, so another value is refused on open.
WORKSPACE_FORMAT: Final[int] = 1
#: The bytes every DuckDB database file carries at offset 8.
_DUCKDB_MAGIC: Final[bytes] = b"DUCK"

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
        if ws.config_path.exists():
            ws.check_format()
        else:
            config = {
                "truecount_workspace": WORKSPACE_FORMAT,
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
                ws = cls(folder)
                ws.check_format()
                return ws
        raise WorkspaceError(
            Problem(
                "no truecount workspace here",
                Location(file=str(start)),
                hint="run 'truecount init' first, or pass --events FILE to work on files directly",
            )
        )

    def config(self) -> dict[str, Any]:
        """The config file as a mapping; a clear error when it cannot be read as one."""
        where = Location(file=str(self.config_path))
        try:
            data = yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise WorkspaceError(
                Problem(
                    f"the workspace config cannot be read ({reason})",
                    where,
                    "restore it, or run 'truecount init' in a new folder",
                )
            ) from None
        if not isinstance(data, dict):
            raise WorkspaceError(Problem("config is not a mapping", where))
        return data

    def check_format(self) -> None:
        """Refuse a workspace of another format before its store is read.

        A store laid out by another version would be read wrongly or fail deep inside a
        query; naming the version here turns that into one clear message.
        """
        where = Location(file=str(self.config_path), key="truecount_workspace")
        found = self.config().get("truecount_workspace")
        if found is None:
            raise WorkspaceError(
                Problem(
                    "the workspace config names no format version",
                    where,
                    f"a workspace made by truecount starts with 'truecount_workspace: "
                    f"{WORKSPACE_FORMAT}'; run 'truecount init' in a new folder",
                )
            )
        if type(found) is not int or found != WORKSPACE_FORMAT:
            raise WorkspaceError(
                Problem(
                    f"the workspace is format {found!r}; this truecount reads format "
                    f"{WORKSPACE_FORMAT}",
                    where,
                    "open it with the truecount version that made it, or ingest the exports "
                    "again into a new workspace",
                )
            )

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the store. Callers close it (use ``with``)."""
        try:
            con = duckdb.connect(str(self.store_path), read_only=read_only)
        except duckdb.Error as exc:
            raise WorkspaceError(self._store_problem(exc)) from None
        try:
            configure(con)
            _check_columns(con, self.store_path)
        except BaseException:
            con.close()
            raise
        return con

    def _store_problem(self, exc: duckdb.Error) -> Problem:
        """Why the store did not open, in words: not a database, truncated, or locked."""
        where = Location(file=str(self.store_path))
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        try:
            with self.store_path.open("rb") as fh:
                head = fh.read(12)
        except OSError:
            head = None
        if head is None and not self.store_path.exists():
            return Problem(
                "the workspace has no store (its truecount.duckdb file is missing)",
                where,
                f"restore it, or run 'truecount init {self.root}' to start an empty one",
            )
        if head is not None and head[8:12] != _DUCKDB_MAGIC:
            return Problem(
                "the store is not a DuckDB database (empty, replaced or overwritten)",
                where,
                "restore it from a backup, or run 'truecount init' in a new folder and ingest "
                "the exports again",
            )
        if "enough bytes" in text or "truncated" in text.lower():
            return Problem(
                "the store is truncated (a copy that stopped part-way?)",
                where,
                "restore it from a backup, or ingest the exports again into a new workspace",
            )
        # a lock first: DuckDB's lock message can name its version too, and the advice for
        # a version (ingest again) would be wrong and costly for a store that is only busy
        if "lock" in text.lower():
            return Problem(
                f"the store is in use by another process ({text})",
                where,
                "wait for the other truecount command to finish",
            )
        if "version" in text.lower():
            return Problem(
                f"the store was written by another DuckDB version ({text})",
                where,
                "open it with the truecount version that made it, or ingest the exports again",
            )
        return Problem(f"cannot open the store: {text}", where)


#: DuckDB's memory budget unless TRUECOUNT_MEMORY_LIMIT says otherwise. DuckDB's own default
#: (80% of RAM) lets hash tables grow far past need; with a budget it spills to disk instead,
#: at no measured cost in speed on the 10M-ticket benchmark (bench/README.md).
DEFAULT_MEMORY_LIMIT: Final[str] = "2GB"
_MEMORY_RE: Final = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def _check_columns(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a store whose events table lacks the columns this version reads."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ?",
        [EVENTS_TABLE],
    ).fetchall()
    have = {str(r[0]) for r in rows}
    missing = [c for c in CANONICAL_COLUMNS if c not in have] if have else []
    if missing:
        raise WorkspaceError(
            Problem(
                "the store's events table was written by another truecount version "
                f"(it lacks {', '.join(missing)})",
                Location(file=str(path)),
                "open it with the truecount version that made it, or ingest the exports again "
                "into a new workspace",
            )
        )


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
    configure_spill(con)  # temp directory, its cap, threads (docs/scale.md)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the events, quarantine, ingest-log and definition-version tables if missing."""
    con.execute(create_table_sql(EVENTS_TABLE))
    con.execute(_QUARANTINE_DDL)
    con.execute(_INGEST_LOG_DDL)
    ensure_versions_table(con)
