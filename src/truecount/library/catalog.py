"""The packaged definitions: list them, find one by name, copy one out to start from.

The YAML files are package data read through :mod:`importlib.resources`, never through a path
relative to this file, so the library works the same from a source checkout, an installed
wheel or a zip import. Each file is validated by the ordinary loader when it is listed: a
library definition is held to exactly the rules a buyer's own file is.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

from truecount.definition import Definition, parse_definition
from truecount.errors import DefinitionError, Location, Problem, suggest

PACKAGE: Final[str] = "truecount.library"
SUFFIX: Final[str] = ".yaml"
DOC_SUFFIX: Final[str] = ".md"

#: Where an unknown name or a bad destination is reported from.
_WHERE: Final[str] = "definition library"


@dataclass(frozen=True)
class _About:
    """What the YAML format has no key for: the category and the billing wording followed."""

    category: str
    follows: str


#: One line per packaged definition. A test checks that this table and the files agree.
_ABOUT: Final[dict[str, _About]] = {
    "support_resolution_vendor": _About(
        "support", "Intercom Fin resolution: confirmed, or no further help within 24 hours"
    ),
    "support_resolution_strict": _About(
        "support", "the buyer's own: AI close that stuck 14 days, rated 4+, no human"
    ),
    "automated_resolution": _About(
        "support", "Zendesk automated resolution: no escalation, 72 hours of inactivity"
    ),
    "deflected_call": _About("voice", "contained call: no transfer, no repeat call in 3 days"),
    "qualified_meeting": _About(
        "sales", "per-meeting SDR pricing: held, no no-show, not disqualified"
    ),
    "collections_net": _About(
        "collections", "contingency on amounts recovered, net of chargebacks"
    ),
    "contract_review": _About("documents", "per-document processing accepted by (sampled) QA"),
    "appointment_booked": _About("scheduling", "per booked appointment, not cancelled in 7 days"),
}


class LibraryError(DefinitionError):
    """A name the library does not have, or a destination the library will not write to."""


class DestinationExistsError(LibraryError):
    """``copy`` was asked to write over an existing file without ``overwrite``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            Problem(
                "the file already exists and was left as it is",
                Location(file=str(path)),
                "choose another destination, or overwrite it on purpose",
            )
        )


@dataclass(frozen=True)
class Entry:
    """One packaged definition: what the listing shows, and where its YAML and doc are."""

    name: str
    version: int
    unit: str
    category: str
    description: str
    follows: str
    sha256: str
    path: Traversable
    doc_path: Traversable

    def text(self) -> str:
        """The YAML exactly as packaged, comments included (what ``copy`` writes)."""
        return self.path.read_text(encoding="utf-8")

    def doc(self) -> str:
        """The Markdown page next to the YAML: meaning, events needed, parameters, limits."""
        return self.doc_path.read_text(encoding="utf-8")

    def definition(self) -> Definition:
        """The validated definition, as :func:`truecount.load_definition` would return it."""
        return parse_definition(self.text(), file=str(self.path))

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``truecount definitions --format json``."""
        return {
            "name": self.name,
            "version": self.version,
            "unit": self.unit,
            "category": self.category,
            "description": self.description,
            "follows": self.follows,
            "sha256": self.sha256,
            "path": str(self.path),
        }


def _folder() -> Traversable:
    return resources.files(PACKAGE)


def _entry(path: Traversable) -> Entry:
    name = path.name.removesuffix(SUFFIX)
    definition = parse_definition(path.read_text(encoding="utf-8"), file=str(path))
    if definition.name != name:
        # A packaging mistake, caught by the tests; say so rather than list a wrong name.
        raise LibraryError(
            Problem(
                f"the definition is named '{definition.name}' but its file '{path.name}'",
                Location(file=str(path), key="name"),
                "a library file is named after its definition",
            )
        )
    about = _ABOUT.get(name, _About("other", ""))
    return Entry(
        name=name,
        version=definition.version,
        unit=definition.unit,
        category=about.category,
        description=definition.description,
        follows=about.follows,
        sha256=definition.sha256,
        path=path,
        doc_path=_folder().joinpath(name + DOC_SUFFIX),
    )


@functools.cache
def _entries() -> tuple[Entry, ...]:
    files = [p for p in _folder().iterdir() if p.is_file() and p.name.endswith(SUFFIX)]
    found = [_entry(p) for p in files]
    order = {name: i for i, name in enumerate(_ABOUT)}
    return tuple(sorted(found, key=lambda e: (order.get(e.name, len(order)), e.name)))


def entries() -> list[Entry]:
    """Every packaged definition: support first, then the other categories (see ``_ABOUT``)."""
    return list(_entries())


def names() -> list[str]:
    """The names of the packaged definitions, in listing order."""
    return [e.name for e in _entries()]


def _unknown(name: str) -> LibraryError:
    """The error for an unknown name, with the names a person most likely meant.

    Names are long and people type their start (``support``, ``suport``), so besides the usual
    close match on the whole name, the start of each name is matched too.
    """
    known = names()
    key = name.lower()
    close = [n for n in known if key and key in n]
    if not close and key:
        starts: dict[str, list[str]] = {}
        for n in known:
            starts.setdefault(n[: len(key)], []).append(n)
        for start in difflib.get_close_matches(key, list(starts), cutoff=0.75):
            close.extend(starts[start])
    if close:
        hint = "did you mean " + " or ".join(f"'{n}'" for n in close) + "?"
    else:
        hint = suggest(name, known) or f"the library has {', '.join(known)}"
    return LibraryError(Problem(f"no definition named '{name}'", Location(file=_WHERE), hint))


def find(name: str) -> Entry:
    """The entry called ``name``; an unknown name raises :class:`LibraryError` with a hint."""
    for entry in _entries():
        if entry.name == name:
            return entry
    raise _unknown(name)


def load(name: str) -> Definition:
    """The validated definition called ``name``, ready for :func:`truecount.count`."""
    return find(name).definition()


def destination(name: str, dest: str | Path) -> Path:
    """Where ``copy`` writes: ``dest`` itself, or ``dest/<name>.yaml`` when it is a folder.

    ``dest`` is a folder when it exists as one or, when nothing exists there yet, when it is
    written with a trailing slash or has no file extension (a definition file without one
    would only confuse editors). An existing file is always the file itself.
    """
    text = str(dest)
    path = Path(text)
    new_folder = not path.exists() and (text.endswith(("/", "\\")) or path.suffix == "")
    is_folder = path.is_dir() or new_folder
    return path / (name + SUFFIX) if is_folder else path


def copy(name: str, dest: str | Path, overwrite: bool = False) -> Path:
    """Write the packaged YAML of ``name`` to ``dest`` (see :func:`destination`) and return
    the file written. An existing file is only replaced with ``overwrite``: a buyer's edited
    definition is the contract, and silently resetting it would change what is billed.
    """
    entry = find(name)
    target = destination(name, dest)
    if target.is_dir():
        raise LibraryError(
            Problem("is a folder, not a file", Location(file=str(target)), "give a file path")
        )
    if target.exists() and not overwrite:
        raise DestinationExistsError(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry.text(), encoding="utf-8")
    except OSError as exc:
        raise LibraryError(
            Problem(
                f"cannot write the definition: {exc.strerror or exc}",
                Location(file=str(target)),
                "choose a destination you can write to",
            )
        ) from None
    return target
