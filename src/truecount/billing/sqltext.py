"""The three builders the billing statements are written with, shared by :mod:`.reconcile`
and :mod:`.buyer`: names and texts become SQLGlot nodes (quoted, escaped), never pasted text,
and the nodes are rendered in DuckDB's dialect."""

from __future__ import annotations

from sqlglot import exp


def quoted(name: str) -> exp.Expression:
    """A column, its name quoted (a definition's condition may be any word)."""
    return exp.column(name, quoted=True)


def literal(text: str) -> exp.Literal:
    """A string constant, escaped by SQLGlot."""
    return exp.Literal.string(text)


def duck(node: exp.Expression) -> str:
    """A node as DuckDB's SQL text."""
    return node.sql(dialect="duckdb")
