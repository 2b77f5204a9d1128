"""Read YAML while remembering the line every key and item came from.

Validation happens after parsing, on plain Python data, so the line numbers have to be carried
alongside: :func:`load_with_lines` returns the data and a table from *key path* (the tuple of
keys and list indexes leading to a node, as in pydantic's error ``loc``) to its 1-based line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from truecount.errors import Location, MappingError, Problem

KeyPath = tuple[str | int, ...]


def load_with_lines(path: Path) -> tuple[Any, dict[KeyPath, int]]:
    """Parse ``path`` with PyYAML's composer (which keeps node marks) and build plain data."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(
            Problem(f"cannot read the mapping: {exc.strerror}", Location(file=str(path)))
        ) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise MappingError(
            Problem(f"not valid YAML: {reason}", Location(file=str(path), line=line))
        ) from exc
    lines: dict[KeyPath, int] = {}
    if node is None:
        return None, lines
    return _build(node, (), lines, path), lines


def _build(node: yaml.Node, at: KeyPath, lines: dict[KeyPath, int], path: Path) -> Any:
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader(" ").construct_object(key_node)  # scalars only
            if not isinstance(key, str | int | float | bool) or key is None:
                raise MappingError(
                    Problem(
                        "keys must be plain text",
                        Location(file=str(path), line=key_node.start_mark.line + 1),
                    )
                )
            text_key = _scalar_text(key)
            if text_key in out:
                raise MappingError(
                    Problem(
                        f"key '{text_key}' appears twice",
                        Location(file=str(path), line=key_node.start_mark.line + 1, key=text_key),
                    )
                )
            child = (*at, text_key)
            lines[child] = key_node.start_mark.line + 1
            out[text_key] = _build(value_node, child, lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*at, i), lines, path) for i, item in enumerate(node.value)]
    return yaml.SafeLoader(" ").construct_object(node)


def _scalar_text(value: str | int | float | bool) -> str:
    """Mapping keys are text; YAML may have read ``1`` or ``yes`` as a number or a boolean."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def line_of(lines: dict[KeyPath, int], at: KeyPath) -> int | None:
    """The line of the deepest known node on the path ``at`` (errors may point inside a value)."""
    for end in range(len(at), -1, -1):
        found = lines.get(at[:end])
        if found is not None:
            return found
    return None
