"""Small helpers every DuckDB caller in the package shares: reading rows, and running out of core.

Out of core: DuckDB spills the state of its joins, groupings and windows to a temporary
directory when the memory budget is reached, so a query over more events than fit in memory
still finishes, at the price of disk traffic. Three settings decide whether it does, each with
an environment variable a user can set without touching code (docs/scale.md):

- ``TRUECOUNT_MEMORY_LIMIT`` (read by ``workspace.configure``): DuckDB's budget;
- ``TRUECOUNT_TEMP_DIRECTORY``: where spilled blocks go. DuckDB's default for an in-memory
  connection is ``.tmp`` under the current directory, which may be read-only or small;
- ``TRUECOUNT_THREADS``: every thread holds its own buffers, so fewer threads need less memory;
- ``TRUECOUNT_MAX_TEMP_SIZE``: a cap on what may spill (DuckDB's ``max_temp_directory_size``;
  by default 90% of the free space of the temporary directory's disk), so that a count cannot
  fill a disk other work needs.

When DuckDB still runs out (of memory, or of temporary disk), :func:`resources_guard` turns its
exception into a :class:`ResourceError`: one line naming the setting to change, exit code 2 on
the command line, instead of a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import duckdb
from sqlglot import exp

from truecount.errors import Location, Problem, TruecountError

TEMP_DIRECTORY_ENV: Final[str] = "TRUECOUNT_TEMP_DIRECTORY"
THREADS_ENV: Final[str] = "TRUECOUNT_THREADS"
MEMORY_ENV: Final[str] = "TRUECOUNT_MEMORY_LIMIT"
MAX_TEMP_ENV: Final[str] = "TRUECOUNT_MAX_TEMP_SIZE"

_UNITS: Final[dict[str, int]] = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_RE: Final[re.Pattern[str]] = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
#: What DuckDB says when the temporary directory cannot take more (its own cap or the disk).
_DISK_FULL: Final[tuple[str, ...]] = (
    "no space left on device",
    "max_temp_directory_size",
    "maximum temp directory size",
    "could not write",
    "disk full",
)


class ResourceError(TruecountError):
    """DuckDB ran out of memory or of temporary disk: the work is too big for the settings."""


def one_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of a query, reading the result to its end.

    DuckDB refuses new work on a connection whose last result was not read to the end, so a
    bare ``fetchone()`` would leave the connection unusable for the next statement.
    """
    rows = con.execute(sql, list(params or [])).fetchall()
    return tuple(rows[0]) if rows else None


def size_bytes(text: str) -> int | None:
    """``'2GB'``, ``'1.8 GiB'``, ``'512 MiB'`` as bytes; None when it is not a size."""
    match = _SIZE_RE.match(text)
    if not match or match.group(2).lower() not in _UNITS:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def setting(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """A DuckDB setting's current value as text."""
    row = one_row(con, "SELECT current_setting(?)", [name])
    return "" if row is None or row[0] is None else str(row[0])


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> int | None:
    """The connection's memory budget in bytes (DuckDB reports it as e.g. ``1.8 GiB``)."""
    return size_bytes(setting(con, "memory_limit"))


def configure_spill(con: duckdb.DuckDBPyConnection) -> None:
    """Apply ``TRUECOUNT_TEMP_DIRECTORY``, ``TRUECOUNT_MAX_TEMP_SIZE`` and
    ``TRUECOUNT_THREADS`` when they are set.

    Called on every connection the engine reads events through, before the first query (DuckDB
    fixes the temporary directory once it has spilled). Bad values are refused with the
    variable's name, because a typo here would otherwise surface only as an out-of-memory hours
    into a count.
    """
    temp = os.environ.get(TEMP_DIRECTORY_ENV, "").strip()
    if temp:
        con.execute(f"SET temp_directory = {exp.Literal.string(temp).sql('duckdb')}")
    cap = os.environ.get(MAX_TEMP_ENV, "").strip()
    if cap:
        if size_bytes(cap) is None:
            raise ResourceError(
                Problem(
                    f"temporary space '{cap}' is not a size",
                    Location(key=MAX_TEMP_ENV),
                    "use e.g. 50GB or 500MB",
                )
            )
        con.execute(f"SET max_temp_directory_size = {exp.Literal.string(cap).sql('duckdb')}")
    threads = os.environ.get(THREADS_ENV, "").strip()
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise ResourceError(
                Problem(
                    f"threads '{threads}' is not a whole number of at least 1",
                    Location(key=THREADS_ENV),
                    "use e.g. 1 or 2",
                )
            )
        con.execute(f"SET threads = {int(threads)}")


def _describe(con: duckdb.DuckDBPyConnection | None) -> str:
    """The settings in force, for the error message (best effort: the connection may be gone)."""
    if con is None:
        return ""
    try:
        limit = setting(con, "memory_limit")
        temp = setting(con, "temp_directory") or "(none: nothing can spill)"
        cap = setting(con, "max_temp_directory_size")
        threads = setting(con, "threads")
    except duckdb.Error:
        return ""
    return f"memory limit {limit}, temp directory {temp} (at most {cap}), {threads} threads"


def resource_error(
    exc: BaseException, doing: str, con: duckdb.DuckDBPyConnection | None = None
) -> ResourceError | None:
    """A one-line :class:`ResourceError` for DuckDB's out-of-memory or disk-full, else None."""
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    lower = text.lower()
    settings = _describe(con)
    now = f" (now: {settings})" if settings else ""
    if any(s in lower for s in _DISK_FULL) and isinstance(
        exc, duckdb.OutOfMemoryException | duckdb.IOException
    ):
        return ResourceError(
            Problem(
                f"{doing} ran out of temporary disk space: {first}",
                Location(key=TEMP_DIRECTORY_ENV),
                f"point {TEMP_DIRECTORY_ENV} at a disk with more free space, raise "
                f"{MAX_TEMP_ENV} if it is set, or raise {MEMORY_ENV} so less spills{now}; "
                "nothing was written",
            )
        )
    if isinstance(exc, duckdb.OutOfMemoryException):
        return ResourceError(
            Problem(
                f"{doing} ran out of memory: {first}",
                Location(key=MEMORY_ENV),
                f"raise {MEMORY_ENV} (e.g. 8GB), set {THREADS_ENV}=1, or set "
                f"TRUECOUNT_PARTITIONS to count in more pieces; spilled data go to "
                f"{TEMP_DIRECTORY_ENV}{now}",
            )
        )
    return None


@contextmanager
def resources_guard(doing: str, con: duckdb.DuckDBPyConnection | None = None) -> Iterator[None]:
    """Run a block, turning DuckDB's out-of-memory or disk-full into a :class:`ResourceError`."""
    try:
        yield
    except (duckdb.OutOfMemoryException, duckdb.IOException) as exc:
        error = resource_error(exc, doing, con)
        if error is None:
            raise
        raise error from None
