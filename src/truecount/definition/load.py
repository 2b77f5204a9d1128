"""Read a definition from YAML, keeping line numbers so every error says file:line and key.

PyYAML's composer gives a node tree with positions; we turn it into plain data ourselves and
remember the line of every key path. Pydantic then validates the data and reports *all*
problems at once; each is mapped back to the line it came from, with a suggestion for
misspelt keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from truecount.definition.model import Definition
from truecount.errors import DefinitionError, Location, Problem, suggest

PathKey = tuple[str | int, ...]

#: Every key the format knows, for "did you mean" suggestions on unknown keys.
KNOWN_KEYS: Final[frozenset[str]] = frozenset(
    {
        "truecount", "name", "version", "description", "unit", "period", "every", "timezone",
        "anchor", "type", "actor", "where", "pick", "conditions", "exists", "absent", "count",
        "aggregate", "all", "any", "not", "if_no_data", "within", "before", "lifetime",
        "at_least", "at_most", "more_than", "less_than", "equals", "fn", "field", "quantity",
        "sum", "min", "max", "avg", "minus",
    }
)  # fmt: skip


class _Positions:
    """Line (1-based) of each key path in a YAML document."""

    def __init__(self) -> None:
        self.lines: dict[PathKey, int] = {}

    def line_of(self, path: PathKey) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


def _to_data(node: yaml.Node, path: PathKey, pos: _Positions, file: str) -> Any:
    pos.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            if not isinstance(key, str):
                raise DefinitionError(
                    Problem(
                        f"keys must be text, got {key!r}",
                        Location(file=file, line=key_node.start_mark.line + 1),
                    )
                )
            if key in out:
                raise DefinitionError(
                    Problem(
                        f"key '{key}' appears twice",
                        Location(file=file, line=key_node.start_mark.line + 1, key=key),
                    )
                )
            pos.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _to_data(value_node, (*path, key), pos, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(item, (*path, i), pos, file) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def _compose(text: str, file: str) -> tuple[Any, _Positions]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError(
            Problem(f"not valid YAML: {reason}", Location(file=file, line=line))
        ) from None
    pos = _Positions()
    if root is None:
        raise DefinitionError(
            Problem("the file is empty", Location(file=file), "start with 'truecount: 1'")
        )
    return _to_data(root, (), pos, file), pos


def _key_path(loc: tuple[str | int, ...]) -> PathKey:
    """Drop pydantic's union-branch tags (e.g. 'float', 'QuantitySpec') from an error path."""
    return tuple(part for part in loc if not _is_branch_tag(part))


def _is_branch_tag(part: str | int) -> bool:
    if not isinstance(part, str):
        return False
    return part[:1].isupper() or part.startswith("function-") or part in _SCALAR_TAGS


_SCALAR_TAGS: Final[frozenset[str]] = frozenset({"float", "int", "str", "bool"})


def _problems(exc: ValidationError, pos: _Positions, file: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[PathKey, str]] = set()
    for err in exc.errors(include_url=False):
        raw_loc = tuple(err["loc"])
        if any(part in _SCALAR_TAGS for part in raw_loc) and isinstance(err["input"], dict):
            continue  # the scalar branch of a union given a mapping: the other branch explains
        path = _key_path(raw_loc)
        key = ".".join(str(p) for p in path) or None
        kind = err["type"]
        hint: str | None = None
        if kind == "extra_forbidden":
            bad = str(path[-1]) if path else ""
            message = f"unknown key '{bad}'"
            hint = suggest(bad, KNOWN_KEYS)
        elif kind == "missing":
            message = f"missing required key '{path[-1] if path else ''}'"
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            message = f"{err['input']!r} is not allowed; expected {expected}"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        dedupe = (path, message)
        if dedupe in seen:
            continue
        seen.add(dedupe)
        problems.append(
            Problem(message, Location(file=file, line=pos.line_of(path), key=key), hint)
        )
    problems.sort(key=lambda p: p.location.line or 0)
    return problems


def parse_definition(text: str, file: str = "<string>") -> Definition:
    """Validate a definition given as YAML text; ``file`` names it in error messages."""
    data, pos = _compose(text, file)
    if not isinstance(data, dict):
        raise DefinitionError(
            Problem("a definition must be a mapping of keys", Location(file=file, line=1))
        )
    if "truecount" not in data:
        raise DefinitionError(
            Problem(
                "missing 'truecount: 1' (the format version)",
                Location(file=file, line=1, key="truecount"),
                "add 'truecount: 1' as the first line",
            )
        )
    try:
        return Definition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(_problems(exc, pos, file)) from None


def load_definition(path: str | Path) -> Definition:
    """Read and validate a definition file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DefinitionError(Problem("no such file", Location(file=str(p)))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(Problem(f"cannot read: {exc}", Location(file=str(p)))) from None
    return parse_definition(text, file=str(p))
