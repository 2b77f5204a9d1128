"""Small helpers every DuckDB caller in the package shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb


def one_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of a query, reading the result to its end.

    DuckDB refuses new work on a connection whose last result was not read to the end, so a
    bare ``fetchone()`` would leave the connection unusable for the next statement.
    """
    rows = con.execute(sql, list(params or [])).fetchall()
    return tuple(rows[0]) if rows else None
