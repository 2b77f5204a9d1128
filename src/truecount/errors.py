"""One exception tree for everything truecount reports to a user.

Every error says *what* is wrong, *where* (file, line or row, key or column) and *what would be
valid*. The CLI turns any :class:`TruecountError` into a one-line message and exit code 2, so the
library never has to know how it is being called.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file plus, when known, a line or row and a key or column."""

    file: str | None = None
    line: int | None = None
    row: int | None = None
    key: str | None = None
    column: str | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        head = self.file or "<input>"
        if self.line is not None:
            head += f":{self.line}"
        parts.append(head)
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.key is not None:
            parts.append(f"key '{self.key}'")
        if self.column is not None:
            parts.append(f"column '{self.column}'")
        return ", ".join(parts)


@dataclass
class Problem:
    """One finding in a file; several may be collected before raising."""

    message: str
    location: Location = field(default_factory=Location)
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class TruecountError(Exception):
    """Root of every error truecount raises on purpose. Carries one or more problems."""

    def __init__(self, problems: Problem | Sequence[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def first_line(self) -> str:
        """The first problem as one line, for terminals and logs."""
        extra = len(self.problems) - 1
        line = str(self.problems[0]) if self.problems else "unknown error"
        return line + (f" (and {extra} more)" if extra > 0 else "")

    @property
    def reader_line(self) -> str:
        """The first problem as one line for the reader of a page or a report: without its
        location when that names no file, as an option's key (``<input>, key 'shift'``) means
        nothing there; otherwise as :attr:`first_line`."""
        if not self.problems or self.problems[0].location.file is not None:
            return self.first_line
        first = self.problems[0]
        extra = len(self.problems) - 1
        line = first.message + (f" ({first.hint})" if first.hint else "")
        return line + (f" (and {extra} more)" if extra > 0 else "")


class DefinitionError(TruecountError):
    """An outcome definition (YAML) is malformed or inconsistent."""


class WhereError(DefinitionError):
    """A `where` expression does not parse or uses something outside the language."""


class MappingError(TruecountError):
    """An ingest mapping is malformed or refers to something the export lacks."""


class InputError(TruecountError):
    """An input file (events, invoice) cannot be read or lacks what is required."""


class WorkspaceError(TruecountError):
    """The workspace is missing, or its store cannot be opened."""


class TermsError(TruecountError):
    """Contract terms (YAML) are malformed or out of range."""


def suggest(word: str, options: Iterable[str]) -> str | None:
    """Return a 'did you mean' hint for a misspelt key, or None when nothing is close."""
    matches = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None
