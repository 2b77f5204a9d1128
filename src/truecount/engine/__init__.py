"""Definitions compiled to SQL (``compile``) and run on DuckDB (``run``)."""

from truecount.engine.compile import DIALECTS, compile_definition, compile_sql
from truecount.engine.run import CountResult, PeriodCount, ReasonCount, count, count_source

__all__ = [
    "DIALECTS",
    "CountResult",
    "PeriodCount",
    "ReasonCount",
    "compile_definition",
    "compile_sql",
    "count",
    "count_source",
]
