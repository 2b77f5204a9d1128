"""Read a definition from YAML, keeping line numbers so every error says file:line and key.

:mod:`truecount.yamlsource` gives plain data and the line of every key path. Pydantic then
validates the data and reports *all* problems at once; each is mapped back to the line it came
from, with a suggestion for misspelt keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from truecount.definition.model import Definition
from truecount.errors import DefinitionError, Location, Problem, suggest
from truecount.yamlsource import line_of, parse_with_lines, read_text

PathKey = tuple[str | int, ...]  # a key path, as in pydantic's error ``loc``

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


#: How a section is written, for a scalar given in its place.
_SECTION_EXAMPLES: Final[dict[str, str]] = {
    "period": "write period: {every: month, timezone: UTC}",
    "anchor": "write anchor: {type: closed, pick: first}",
    "quantity": "write a number (quantity: 1) or an aggregate such as "
    "quantity: {sum: {type: payment, field: value, within: 90d}}",
}


#: Why a known key is refused where it was put, and what to do instead.
_MISPLACED: Final[dict[str, str]] = {
    "description": (
        "only the definition as a whole has a description; a condition is described from its "
        "own terms (what it checks, its window, if_no_data), so write a note on it as a YAML "
        "comment"
    ),
}


def _compose(text: str, file: str) -> tuple[Any, dict[PathKey, int]]:
    data, lines = parse_with_lines(text, file, DefinitionError)
    if data is None:
        raise DefinitionError(
            Problem("the file is empty", Location(file=file), "start with 'truecount: 1'")
        )
    return data, lines


def _key_path(loc: tuple[str | int, ...]) -> PathKey:
    """Drop pydantic's union-branch tags (e.g. 'float', 'QuantitySpec') from an error path."""
    return tuple(part for part in loc if not _is_branch_tag(part))


def _is_branch_tag(part: str | int) -> bool:
    if not isinstance(part, str):
        return False
    return part[:1].isupper() or part.startswith("function-") or part in _SCALAR_TAGS


_SCALAR_TAGS: Final[frozenset[str]] = frozenset({"float", "int", "str", "bool"})


#: Pydantic's strict type errors, and the kind of value each key wanted, with an example.
_WANTED: Final[dict[str, tuple[str, str]]] = {
    "float_type": ("a number", "3"),
    "int_type": ("a whole number", "2"),
    "bool_type": ("true or false", "true"),
}


def _wrong_type(kind: str, value: Any, name: str) -> tuple[str, str]:
    """What was written instead of a number or a boolean, and what to write instead."""
    wanted, example = _WANTED[kind]
    if isinstance(value, bool):
        message = f"{str(value).lower()} is a boolean, not {wanted}"
    elif isinstance(value, str):
        message = f"{value[:40]!r} is text, not {wanted}"
    elif isinstance(value, float):
        message = f"{value!r} is a decimal, not {wanted}"
    elif isinstance(value, int):
        message = f"{value} is a number, not {wanted}"
    else:
        message = f"a {'list' if isinstance(value, list) else 'mapping'} is not {wanted}"
    return message, f"write {wanted} without quotes, e.g. {name}: {example}"


def _problems(exc: ValidationError, lines: dict[PathKey, int], file: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[PathKey, str]] = set()
    errors = exc.errors(include_url=False)
    # a scalar refused by both branches of a number-or-mapping union (quantity): the number's
    # error says why; "a valid dictionary or instance of QuantitySpec" would only confuse
    scalar_errors = {
        _key_path(tuple(e["loc"]))
        for e in errors
        if e["type"] != "model_type" and not isinstance(e["input"], dict)
    }
    for err in errors:
        raw_loc = tuple(err["loc"])
        if any(part in _SCALAR_TAGS for part in raw_loc) and isinstance(err["input"], dict):
            continue  # the scalar branch of a union given a mapping: the other branch explains
        path = _key_path(raw_loc)
        if err["type"] == "model_type" and path in scalar_errors:
            continue
        key = ".".join(str(p) for p in path) or None
        kind = err["type"]
        hint: str | None = None
        if kind == "extra_forbidden":
            bad = str(path[-1]) if path else ""
            if bad in KNOWN_KEYS:
                # a key of another part of the format: suggesting it back would name itself
                where = ".".join(str(x) for x in path[:-1]) or "the top level"
                message = f"key '{bad}' is not allowed in '{where}'"
                hint = _MISPLACED.get(bad, "see docs/definition.md for the keys of each part")
            else:
                message = f"unknown key '{bad}'"
                hint = suggest(bad, KNOWN_KEYS)
        elif kind == "missing":
            message = f"missing required key '{path[-1] if path else ''}'"
        elif kind in _WANTED:
            message, hint = _wrong_type(kind, err["input"], str(path[-1]) if path else "")
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            message = f"{err['input']!r} is not allowed; expected {expected}"
        elif kind == "model_type" and not isinstance(err["input"], dict):
            # a scalar where a section belongs (period: month): say the section's shape
            name = str(path[-1]) if path else "this key"
            message = f"'{name}' is a section of keys, not {err['input']!r}"
            hint = _SECTION_EXAMPLES.get(name, "see docs/definition.md for its keys")
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        dedupe = (path, message)
        if dedupe in seen:
            continue
        seen.add(dedupe)
        problems.append(
            Problem(message, Location(file=file, line=line_of(lines, path), key=key), hint)
        )
    problems.sort(key=lambda p: p.location.line or 0)
    return problems


def parse_definition(text: str, file: str = "<string>") -> Definition:
    """Validate a definition given as YAML text; ``file`` names it in error messages."""
    data, lines = _compose(text, file)
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
        raise DefinitionError(_problems(exc, lines, file)) from None


def load_definition(path: str | Path) -> Definition:
    """Read and validate a definition file."""
    p = Path(path)
    return parse_definition(read_text(p, DefinitionError), file=str(p))
