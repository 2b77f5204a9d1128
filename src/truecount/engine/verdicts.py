"""Verdicts computed by another engine, brought into DuckDB so every summary is one code path.

``count`` keeps its verdicts as a DuckDB table and summarises them there (periods, reasons,
reconciliation). An engine such as Spark runs the same compiled tree in its own dialect and
hands back the verdict rows as Arrow; :func:`register_verdicts` stores them in the DuckDB
connection with exactly the column types DuckDB's own query gives, so the summaries, and the
JSON printed from them, are the same bytes whichever engine computed the rows.
"""

from __future__ import annotations

from typing import Protocol

import duckdb
import pyarrow as pa
from sqlglot import exp

from truecount.engine.compile import CONDITION_PREFIX, VERDICT_COLUMNS

#: DuckDB types of the verdict columns (conditions are BOOLEAN).
_TYPES = {
    "entity_id": "VARCHAR",
    "anchor_event_id": "VARCHAR",
    "anchor_ts": "TIMESTAMP",
    "period": "VARCHAR",
    "status": "VARCHAR",
    "quantity": "DOUBLE",
    "reason": "VARCHAR",
}


class VerdictEngine(Protocol):
    """An engine that runs a compiled verdict query and returns its rows as Arrow."""

    #: The SQLGlot dialect the engine reads (the SQL a count reports is printed in it).
    dialect: str

    def verdicts(self, query: exp.Select) -> pa.Table:
        """Run the verdict query (built by ``compile_definition``) and collect every row."""
        ...


def register_verdicts(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    """Store ``rows`` as the temp table ``table``, cast to the types DuckDB's query gives.

    Time zones are dropped after converting to UTC (Spark hands ``TIMESTAMP`` back as UTC
    instants; verdict times are naive UTC everywhere in truecount).
    """
    name = "verdicts_arrow"
    con.register(name, rows)
    cols: list[exp.Expr] = []
    for column in rows.column_names:
        ident = exp.to_identifier(column, quoted=True)
        typ = _TYPES.get(column, "BOOLEAN" if column.startswith(CONDITION_PREFIX) else None)
        value: exp.Expr = exp.column(ident)
        arrow_type = rows.schema.field(column).type
        if pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None:
            value = exp.AtTimeZone(this=value, zone=exp.Literal.string("UTC"))
        if typ is not None:
            value = exp.cast(value, exp.DataType.build(typ, dialect="duckdb"))
        cols.append(exp.alias_(value, ident))
    missing = [c for c in VERDICT_COLUMNS if c not in rows.column_names]
    if missing:
        raise ValueError(f"the engine's verdicts lack {', '.join(missing)}")
    select = exp.select(*cols).from_(name)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {exp.to_identifier(table).sql('duckdb')} AS "
        f"{select.sql('duckdb')}"
    )
    con.unregister(name)
