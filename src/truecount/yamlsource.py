"""Read YAML while remembering the line every key and item came from.

Definitions, mappings and terms are all validated after parsing, on plain Python data, so the
line numbers have to be carried alongside: :func:`parse_with_lines` returns the data and a
table from *key path* (the tuple of keys and list indexes leading to a node, as in pydantic's
error ``loc``) to its 1-based line. One reader for every YAML file the user writes, so every
file reports errors the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from truecount import container
from truecount.errors import Location, MappingError, Problem, TruecountError

KeyPath = tuple[str | int, ...]


def load_with_lines(
    path: Path, error: type[TruecountError] = MappingError
) -> tuple[Any, dict[KeyPath, int]]:
    """Read ``path`` and parse it with :func:`parse_with_lines`."""
    return parse_with_lines(read_text(path, error), str(path), error)


def read_text(path: Path, error: type[TruecountError] = MappingError) -> str:
    """A user's file as text; a missing or unreadable file is an error naming it."""
    if not path.is_file():
        raise error(Problem("no such file", Location(file=str(path))))
    try:
        # UTF-8 with or without a BOM, UTF-16 with a BOM, gzip: see truecount.container
        return container.read_text(path)
    except TruecountError as exc:
        raise error(exc.problems) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(Problem(f"cannot read: {exc}", Location(file=str(path)))) from None


def parse_with_lines(
    text: str, file: str, error: type[TruecountError] = MappingError
) -> tuple[Any, dict[KeyPath, int]]:
    """Parse with PyYAML's composer (which keeps node marks) and build plain data."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise error(Problem(f"not valid YAML: {reason}", Location(file=file, line=line))) from None
    lines: dict[KeyPath, int] = {}
    if node is None:
        return None, lines
    return _build(node, (), lines, file, error), lines


def _build(
    node: yaml.Node,
    at: KeyPath,
    lines: dict[KeyPath, int],
    path: str,
    error: type[TruecountError],
) -> Any:
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader(" ").construct_object(key_node)  # scalars only
            if not isinstance(key, str | int | float | bool) or key is None:
                raise error(
                    Problem(
                        "keys must be plain text",
                        Location(file=path, line=key_node.start_mark.line + 1),
                    )
                )
            text_key = _scalar_text(key)
            if text_key in out:
                raise error(
                    Problem(
                        f"key '{text_key}' appears twice",
                        Location(file=path, line=key_node.start_mark.line + 1, key=text_key),
                    )
                )
            child = (*at, text_key)
            lines[child] = key_node.start_mark.line + 1
            out[text_key] = _build(value_node, child, lines, path, error)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*at, i), lines, path, error) for i, item in enumerate(node.value)]
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
