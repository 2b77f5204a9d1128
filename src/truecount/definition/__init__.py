"""Outcome definitions: the model, YAML loading with file:line errors, the where language."""

from truecount.definition.load import load_definition, parse_definition
from truecount.definition.model import (
    Anchor,
    Condition,
    Definition,
    Period,
    QuantitySpec,
    Selector,
)
from truecount.definition.where import parse_where

__all__ = [
    "Anchor",
    "Condition",
    "Definition",
    "Period",
    "QuantitySpec",
    "Selector",
    "load_definition",
    "parse_definition",
    "parse_where",
]
