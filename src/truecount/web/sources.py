"""Which invoices the dashboard reconciles: files named on the command line, and the workspace's
``invoices/`` folder.

A workspace can meter several contracts and receive an invoice a month, so the dashboard cannot
take "the" invoice as given. Two ways in, both read-only for the dashboard:

- ``truecount serve --invoice FILE [--invoice FILE ...] --terms T``: each file is one invoice
  (named by its file name), all under the given terms;
- ``WS/invoices/NAME.csv`` (or ``.jsonl``, ``.json``, ``.parquet``, gzip allowed), with its
  terms in ``NAME.terms.yaml`` beside it or, for every invoice of the folder, ``terms.yaml``;
  an invoice mapping in ``NAME.mapping.yaml`` when the columns need one.
  ``truecount invoices add FILE --terms T`` copies files there.

An invoice is named by its file's stem, reduced to the characters a URL keeps as they are, so
names are safe in links and never a path.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from truecount.errors import InputError, Location, Problem

#: The workspace folder that holds invoices kept for the dashboard.
INVOICES_DIR: Final[str] = "invoices"
#: Terms shared by every invoice of the folder that has no ``NAME.terms.yaml`` of its own.
SHARED_TERMS: Final[str] = "terms.yaml"
_SUFFIXES: Final[tuple[str, ...]] = (".csv", ".jsonl", ".ndjson", ".json", ".parquet")
_SIDECARS: Final[tuple[str, ...]] = (".terms.yaml", ".mapping.yaml")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.-]+")
#: Names of invoices and definitions as they appear in the dashboard's URLs.
NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,120}$")


@dataclass(frozen=True)
class InvoiceSource:
    """One invoice: its files, terms and mapping (paths), and the name the dashboard shows."""

    name: str
    files: tuple[Path, ...]
    terms: Path | None = None
    mapping: Path | None = None
    origin: str = "command line"

    def stamp(self) -> tuple[tuple[str, int, int], ...]:
        """Size and modification time of every file it reads: a changed file is a new invoice."""
        out: list[tuple[str, int, int]] = []
        for p in (*self.files, self.terms, self.mapping):
            if p is None:
                continue
            try:
                st = p.stat()
            except OSError:
                out.append((str(p), -1, -1))
                continue
            out.append((str(p), st.st_size, st.st_mtime_ns))
        return tuple(out)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz",):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def safe_name(text: str) -> str:
    """A name for URLs: runs of other characters become '-', at most 120 characters."""
    cleaned = _UNSAFE.sub("-", text).strip("-.") or "invoice"
    return cleaned[:120]


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken or candidate == "-":
        candidate = f"{name}-{n}"
        n += 1
    taken.add(candidate)
    return candidate


def _is_invoice(path: Path) -> bool:
    low = path.name.lower()
    if low.endswith(".gz"):
        low = low[:-3]
    if any(low.endswith(s) for s in _SIDECARS) or low == SHARED_TERMS:
        return False
    return path.is_file() and low.endswith(_SUFFIXES)


def folder_invoices(root: Path, taken: set[str] | None = None) -> list[InvoiceSource]:
    """The invoices kept in ``root/invoices``, by file name (none when there is no folder)."""
    folder = root / INVOICES_DIR
    if not folder.is_dir():
        return []
    names = taken if taken is not None else set()
    shared = folder / SHARED_TERMS
    out: list[InvoiceSource] = []
    for path in sorted(p for p in folder.iterdir() if _is_invoice(p)):
        stem = _stem(path)
        own_terms = folder / f"{stem}.terms.yaml"
        mapping = folder / f"{stem}.mapping.yaml"
        terms = own_terms if own_terms.is_file() else shared if shared.is_file() else None
        out.append(
            InvoiceSource(
                name=_unique(safe_name(stem), names),
                files=(path,),
                terms=terms,
                mapping=mapping if mapping.is_file() else None,
                origin=f"{INVOICES_DIR}/{path.name}",
            )
        )
    return out


def command_line_invoices(
    files: Sequence[Path],
    terms: Path | None,
    mapping: Path | None = None,
    taken: set[str] | None = None,
) -> list[InvoiceSource]:
    """One invoice per file given with ``--invoice``, all under ``--terms``."""
    names = taken if taken is not None else set()
    out: list[InvoiceSource] = []
    for path in files:
        if not path.is_file():
            raise InputError(Problem("no such invoice file", Location(file=str(path))))
        out.append(
            InvoiceSource(
                name=_unique(safe_name(_stem(path)), names),
                files=(path,),
                terms=terms,
                mapping=mapping,
            )
        )
    if terms is not None and not terms.is_file():
        raise InputError(Problem("no such terms file", Location(file=str(terms))))
    return out


def add_invoice(
    root: Path, file: Path, terms: Path | None = None, name: str | None = None
) -> InvoiceSource:
    """Copy an invoice (and its terms) into ``root/invoices`` for the dashboard.

    The copy is named ``NAME`` + the file's suffix; an existing invoice of that name is refused
    rather than replaced, since a past invoice is a record, not a draft.
    """
    if not file.is_file():
        raise InputError(Problem("no such invoice file", Location(file=str(file))))
    if terms is not None and not terms.is_file():
        raise InputError(Problem("no such terms file", Location(file=str(terms))))
    stem = safe_name(name or _stem(file))
    suffix = file.name[len(_stem(file)) :] or ".csv"
    folder = root / INVOICES_DIR
    folder.mkdir(exist_ok=True)
    target = folder / f"{stem}{suffix}"
    clash = [p for p in folder.iterdir() if _is_invoice(p) and _stem(p) == stem]
    if clash:
        raise InputError(
            Problem(
                f"an invoice named '{stem}' is already kept",
                Location(file=str(clash[0])),
                "give another name with --name",
            )
        )
    shutil.copyfile(file, target)
    kept_terms = None
    if terms is not None:
        kept_terms = folder / f"{stem}.terms.yaml"
        shutil.copyfile(terms, kept_terms)
    return InvoiceSource(stem, (target,), kept_terms, None, f"{INVOICES_DIR}/{target.name}")
