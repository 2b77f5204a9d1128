"""The canonical event table (DESIGN §5): the one shape every adapter produces.

Timestamps are stored as naive ``TIMESTAMP`` values meaning UTC. A naive UTC column is the one
representation that DuckDB, Spark, Snowflake, BigQuery and Trino all read the same way, so the
compiled SQL stays portable; time zones appear only where a period boundary needs them.
"""

from __future__ import annotations

from typing import Final

#: Column name -> DuckDB type, in table order.
CANONICAL_COLUMNS: Final[dict[str, str]] = {
    "event_id": "VARCHAR",
    "entity_id": "VARCHAR",
    "ts": "TIMESTAMP",
    "type": "VARCHAR",
    "actor": "VARCHAR",
    "value": "DOUBLE",
    "attrs": "JSON",
    "source": "VARCHAR",
    "recorded_at": "TIMESTAMP",
    "seq": "BIGINT",
}

#: Columns an export must provide (directly or through a mapping); the rest may be null.
REQUIRED_COLUMNS: Final[tuple[str, ...]] = ("entity_id", "ts", "type")

#: 2^53 - 1: up to this magnitude a double (the type of ``value``) holds every whole number,
#: beyond it not (2^53 + 1 reads as 2^53). A value beyond it is refused at ingest: it is
#: already rounded, its sums are rounded, and two of 1e308 sum to inf.
SAFE_INTEGER: Final[int] = 2**53 - 1

#: The actors the glossary names. Other values are allowed but reported by `check`.
KNOWN_ACTORS: Final[tuple[str, ...]] = ("ai", "human", "customer", "system")

#: Name of the events table inside a workspace store and of the view the engine reads.
EVENTS_TABLE: Final[str] = "events"
QUARANTINE_TABLE: Final[str] = "quarantine"
INGEST_LOG_TABLE: Final[str] = "ingest_log"


def create_table_sql(table: str = EVENTS_TABLE) -> str:
    """DDL for an empty canonical events table (fixed text: no user input reaches it).

    There is deliberately no primary-key index: at tens of millions of events the index costs
    more memory than the data, and ingest already keeps ``event_id`` unique with an anti-join.
    """
    cols = ", ".join(f"{name} {typ}" for name, typ in CANONICAL_COLUMNS.items())
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"
