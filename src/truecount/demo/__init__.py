"""Realistic demo data with known truth: a support team's quarter, its events and its invoice.

Used by ``truecount demo`` to show a reconciliation on data that looks like a real export, by the
benchmark to produce tens of millions of events, and by tests that need an independent answer.
"""

from truecount.demo.generate import (
    CELLS,
    REASONS,
    ChunkFiles,
    SupportData,
    SupportScenario,
    generate,
    iter_blocks,
    write_parquet_chunks,
)

__all__ = [
    "CELLS",
    "REASONS",
    "ChunkFiles",
    "SupportData",
    "SupportScenario",
    "generate",
    "iter_blocks",
    "write_parquet_chunks",
]
