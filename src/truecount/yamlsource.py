"""Read YAML while remembering the line every key and item came from.

Definitions, mappings and terms are all validated after parsing, on plain Python data, so the
line numbers have to be carried alongside: :func:`parse_with_lines` returns the data and a
table from *key path* (the tuple of keys and list indexes leading to a node, as in pydantic's
error ``loc``) to its 1-based line. One reader for every YAML file the user writes, so every
file reports errors the same way.

The reader is also the guard against YAML that is cheap to write and costly to read: a file
larger than :data:`MAX_BYTES`, more than :data:`MAX_ALIASES` aliases, aliases that would expand
to more than :data:`MAX_ALIAS_NODES` extra nodes (the "billion laughs"), or nesting deeper than
:data:`MAX_DEPTH` is refused before it is built, in well under a second and a few megabytes.
The limits sit far above any definition, mapping or terms file a person writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from truecount import container
from truecount.errors import Location, MappingError, Problem, TruecountError

KeyPath = tuple[str | int, ...]

#: The largest YAML file read, in bytes (1 MB); checked before the file is read.
MAX_BYTES: Final[int] = 1_000_000
#: The most aliases (``*name``) one document may use.
MAX_ALIASES: Final[int] = 100
#: The most nodes aliases may add once expanded, beyond the nodes written out.
MAX_ALIAS_NODES: Final[int] = 10_000
#: The deepest nesting of mappings and lists.
MAX_DEPTH: Final[int] = 100

_SPLIT_HINT: Final[str] = "a definition, mapping or terms file is a few kilobytes; split or trim it"


class _LimitError(Exception):
    """Raised inside the composer when a limit is crossed; carries the message and line."""

    def __init__(self, message: str, line: int | None, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.hint = hint


class _GuardedLoader(yaml.SafeLoader):
    """PyYAML's safe composer, counting aliases, nodes and depth as it goes.

    The composer shares an aliased node rather than copying it, so composing a bomb is cheap;
    counting here refuses it before :func:`_build` would expand it into plain data.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0
        self.nodes = 0
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _LimitError(
                    f"more than {MAX_ALIASES} aliases",
                    self._line(),
                    "write the values out instead of repeating anchors",
                )
        else:
            self.nodes += 1
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _LimitError(
                f"nested more than {MAX_DEPTH} levels deep",
                self._line(),
                "flatten the structure",
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def _line(self) -> int:
        """The 1-based line of the event about to be composed."""
        event = self.peek_event()  # type: ignore[no-untyped-call]
        return int(event.start_mark.line) + 1


@dataclass
class _Budget:
    """How many more nodes :func:`_build` may produce (the written ones plus alias slack)."""

    left: int


def load_with_lines(
    path: Path, error: type[TruecountError] = MappingError
) -> tuple[Any, dict[KeyPath, int]]:
    """Read ``path`` and parse it with :func:`parse_with_lines`."""
    return parse_with_lines(read_text(path, error), str(path), error)


def read_text(path: Path, error: type[TruecountError] = MappingError) -> str:
    """A user's file as text; a missing or unreadable file is an error naming it."""
    if path.is_dir():
        raise error(Problem("a folder, not a file", Location(file=str(path)), "give the YAML file"))
    if not path.is_file():
        raise error(Problem("no such file", Location(file=str(path))))
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise error(Problem(f"cannot read: {exc}", Location(file=str(path)))) from None
    if size > MAX_BYTES:
        raise error(_too_large(size, str(path)))
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
    """Parse with PyYAML's composer (which keeps node marks) and build plain data.

    The size, alias and depth limits (see the module docstring) are errors of type ``error``.
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_BYTES:
        raise error(_too_large(size, file))
    try:
        # the reader refuses control characters (a NUL, say) while it is being built
        loader = _GuardedLoader(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file, error, text) from None
    try:
        node = loader.get_single_node()
    except _LimitError as exc:
        raise error(Problem(exc.message, Location(file=file, line=exc.line), exc.hint)) from None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file, error) from None
    except RecursionError:  # a limit above the interpreter's stack; MAX_DEPTH should come first
        raise error(
            Problem("nested too deeply", Location(file=file), "flatten the structure")
        ) from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    if node is None:
        return None, lines
    budget = _Budget(loader.nodes + MAX_ALIAS_NODES)
    return _build(node, (), lines, file, error, budget), lines


def _yaml_error(
    exc: yaml.YAMLError, file: str, error: type[TruecountError], text: str = ""
) -> TruecountError:
    """PyYAML's complaint as ours, at its line; a reader error (a control character in the
    text) has no mark but a position, from which the line is counted."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    reason = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1 if text else None
        reason = (
            f"the control character {chr(exc.character)!r} (U+{exc.character:04X}) is not "
            "allowed in YAML"
            if isinstance(exc.character, int)
            else str(exc.reason)
        )
    return error(
        Problem(
            f"not valid YAML: {reason}",
            Location(file=file, line=line),
            "save the file as plain text" if isinstance(exc, yaml.reader.ReaderError) else None,
        )
    )


def _too_large(size: int, file: str) -> Problem:
    return Problem(
        f"the file is {size:,} bytes, more than the {MAX_BYTES:,} a YAML file may have",
        Location(file=file),
        _SPLIT_HINT,
    )


def _build(
    node: yaml.Node,
    at: KeyPath,
    lines: dict[KeyPath, int],
    path: str,
    error: type[TruecountError],
    budget: _Budget,
) -> Any:
    budget.left -= 1
    if budget.left < 0:
        raise error(
            Problem(
                f"aliases expand to more than {MAX_ALIAS_NODES:,} extra values",
                Location(file=path, line=node.start_mark.line + 1),
                "write the values out instead of repeating anchors",
            )
        )
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, path, error)  # scalars only
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
            out[text_key] = _build(value_node, child, lines, path, error, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*at, i), lines, path, error, budget) for i, item in enumerate(node.value)
        ]
    return _scalar(node, path, error)


def _scalar(node: yaml.Node, path: str, error: type[TruecountError]) -> Any:
    """A scalar (or a key node) as Python data; a tag the safe loader does not know (say
    ``!!python/object``), or a value its tag refuses, is an error at its line."""
    try:
        return yaml.SafeLoader(" ").construct_object(node)
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        reason = getattr(exc, "problem", None) or str(exc)
        raise error(
            Problem(
                f"not valid YAML: {reason}",
                Location(file=path, line=node.start_mark.line + 1),
                "tags such as !!python/... are not read; write plain values",
            )
        ) from None


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
