"""Build an evidence pack: one reconciliation, its inputs' digests and its results, signed.

Layout of ``PACK/`` (docs/evidence.md)::

    envelope.dsse.json         DSSE envelope: the statement, Ed25519-signed
    statement.json             the in-toto v1 Statement (RFC 8785 bytes = the signed payload)
    definition.yaml            the definition exactly as used
    definition.canonical.json  its canonical text (what its SHA-256 is taken over)
    terms.yaml                 the terms exactly as used (when given)
    query.sql                  the SQL the definition compiled to
    reconciliation.json        the reconciliation (RFC 8785 bytes of reconcile --format json)
    entities.csv               one row per entity of the reconciliation (cells), by entity_id
    verdicts.csv               every verdict of a covered entity
    invoice/<name>             the invoice files, byte for byte

Every file but the first two is a subject of the statement with its SHA-256; the predicate
holds the Merkle roots, the raw files' digests, the engine's versions, the as-of time and the
digest of the previous pack. Nothing in it depends on the clock, the machine or the folder, so
the same inputs give the same bytes (Ed25519 signatures are deterministic too).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa

import truecount
from truecount.billing.terms import LetterDetails
from truecount.engine.source import EventsInput
from truecount.errors import InputError, Location, Problem

from .blocks import BLOCK_ENTITIES, BLOCK_ORDER, BLOCK_ROWS, CSV_BLOCK_FORMAT, EVENT_BLOCK_FORMAT
from .canonical import canonical_json, file_sha256, sha256_hex
from .livelog import cite_head
from .records import EVENT_FIELDS
from .run import (
    ENTITIES_FILE,
    QUERY_FILE,
    RECONCILIATION_FILE,
    VERDICTS_FILE,
    RunInputs,
    RunResult,
    run,
    summary,
)
from .sign import load_private_key, sign_envelope

STATEMENT_TYPE: Final[str] = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final[str] = "urn:truecount:predicate:reconciliation:v1"
#: 2: the column names of verdicts.csv and entities.csv are signed (``columns`` of each
#: tree); a CSV's header row is not a leaf, so format 1 left them to the file's SHA-256 alone.
#: 3: the event tree has one leaf per entity (``truecount.entity-events.v1``), not one per
#: event; packs of formats 1 and 2 still verify (a replay rebuilds the leaves they name).
#: 4: block leaves (``truecount.event-block.v1``, ``truecount.csv-block.v1``): 64 entities'
#: events or 64 CSV rows per leaf, events as binary records (docs/evidence.md); older packs
#: still verify.
PACK_FORMAT: Final[int] = 4

ENVELOPE_FILE: Final[str] = "envelope.dsse.json"
STATEMENT_FILE: Final[str] = "statement.json"
DEFINITION_FILE: Final[str] = "definition.yaml"
CANONICAL_FILE: Final[str] = "definition.canonical.json"
TERMS_FILE: Final[str] = "terms.yaml"
INVOICE_DIR: Final[str] = "invoice"

#: Files of a pack that are not subjects (they are the attestation itself).
ATTESTATION_FILES: Final[frozenset[str]] = frozenset({ENVELOPE_FILE, STATEMENT_FILE})


def _dist(name: str, fallback: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return fallback


def engine_versions() -> dict[str, str]:
    """The software a replay depends on: truecount, DuckDB, SQLGlot (the SQL text), PyArrow."""
    return {
        "truecount": _dist("truecount", truecount.__version__),
        "duckdb": _dist("duckdb", str(duckdb.__version__)),
        "sqlglot": _dist("sqlglot", "unknown"),
        "pyarrow": _dist("pyarrow", str(pa.__version__)),
    }


def pack_files(folder: Path) -> list[str]:
    """Every file under ``folder`` but the attestation, as sorted POSIX relative paths."""
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    return sorted(n for n in names if n not in ATTESTATION_FILES)


def subjects(folder: Path) -> list[dict[str, Any]]:
    return [
        {"name": name, "digest": {"sha256": file_sha256(folder / name)}}
        for name in pack_files(folder)
    ]


def pack_digest(statement_bytes: bytes) -> str:
    """A pack's digest: the SHA-256 of its statement (the signed payload)."""
    return sha256_hex(statement_bytes)


@dataclass(frozen=True)
class PreviousPack:
    """What a pack records of the pack before it in a chain."""

    sha256: str
    first_period: str | None
    last_period: str | None
    every: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "first_period": self.first_period,
            "last_period": self.last_period,
        }


def read_statement(folder: Path) -> tuple[bytes, dict[str, Any]]:
    """A pack's statement bytes and parsed JSON (an error names the file when unreadable)."""
    path = folder / STATEMENT_FILE
    try:
        data = path.read_bytes()
        parsed = json.loads(data)
    except OSError as exc:
        raise InputError(
            Problem(f"cannot read: {exc.strerror}", Location(file=str(path)), "is it a pack?")
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(Problem(f"not JSON: {exc.msg}", Location(file=str(path)))) from None
    if not isinstance(parsed, dict):
        raise InputError(Problem("not a statement", Location(file=str(path))))
    return data, parsed


def previous_of(folder: Path) -> PreviousPack:
    data, statement = read_statement(folder)
    predicate = statement.get("predicate") or {}
    period = predicate.get("period") or {}
    covered = [str(p) for p in period.get("covered") or []]
    return PreviousPack(
        pack_digest(data),
        covered[0] if covered else None,
        covered[-1] if covered else None,
        period.get("every"),
    )


def _files_json(result: RunResult) -> list[dict[str, str]]:
    return [f.to_json() for f in result.files]


def predicate(
    result: RunResult,
    definition_text: str,
    terms_text: str | None,
    previous: PreviousPack | None,
    folder: Path,
) -> dict[str, Any]:
    """The predicate: everything an auditor recomputes, and the parameters of the replay."""
    d = result.definition
    terms: dict[str, Any] | None = None
    if result.terms is not None and terms_text is not None:
        terms = {
            "file": TERMS_FILE,
            "sha256": result.terms.summary()["sha256"],
            "source_sha256": sha256_hex(terms_text.encode("utf-8")),
        }
    return {
        "truecount_evidence": PACK_FORMAT,
        "engine": engine_versions(),
        "as_of": result.as_of.isoformat(),
        "definition": {
            "name": d.name,
            "version": d.version,
            "sha256": d.sha256,
            "file": DEFINITION_FILE,
            "source_sha256": sha256_hex(definition_text.encode("utf-8")),
            "canonical_file": CANONICAL_FILE,
        },
        "terms": terms,
        "query": {
            "file": QUERY_FILE,
            "dialect": "duckdb",
            "sha256": file_sha256(folder / QUERY_FILE),
        },
        "period": {
            "every": d.period.every,
            "timezone": d.period.timezone,
            "covered": result.periods,
        },
        "events": {
            "merkle_root": result.events.root,
            "tree_size": result.events.size,
            "entities": result.event_entities,
            "count": result.event_count,
            "leaf_format": EVENT_BLOCK_FORMAT,
            "leaf_entities": BLOCK_ENTITIES,
            "fields": list(EVENT_FIELDS),
            "order": list(BLOCK_ORDER),
            "basis": result.files_basis,
        },
        "files": _files_json(result),
        "results": {
            "reconciliation": RECONCILIATION_FILE,
            "totals": summary(result.recon),
        },
        "verdicts": {
            "file": VERDICTS_FILE,
            "merkle_root": result.verdicts.root,
            "tree_size": result.verdicts.size,
            "rows": result.verdict_rows,
            "leaf_format": CSV_BLOCK_FORMAT,
            "leaf_rows": BLOCK_ROWS,
            "columns": result.verdict_columns,
        },
        "entities": {
            "file": ENTITIES_FILE,
            "merkle_root": result.entities.root,
            "tree_size": result.entities.size,
            "rows": result.entity_rows,
            "leaf_format": CSV_BLOCK_FORMAT,
            "leaf_rows": BLOCK_ROWS,
            "columns": result.entity_columns,
        },
        "previous": None if previous is None else previous.to_json(),
    }


def statement_for(folder: Path, pred: dict[str, Any]) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects(folder),
        "predicateType": PREDICATE_TYPE,
        "predicate": pred,
    }


@dataclass(frozen=True)
class Pack:
    """A pack that was written: where, its digest, and what it computed."""

    folder: Path
    digest: str
    result: RunResult
    statement: dict[str, Any]


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(
            Problem(
                "exists and is not an empty folder",
                Location(file=str(out)),
                "packs are never overwritten; choose a new --out folder",
            )
        )


def _check_chain(previous: PreviousPack, result: RunResult, where: Path) -> None:
    first = result.periods[0] if result.periods else None
    if previous.every is not None and previous.every != result.definition.period.every:
        raise InputError(
            Problem(
                f"the previous pack counts {previous.every} periods, this one "
                f"{result.definition.period.every} periods",
                Location(file=str(where)),
            )
        )
    if previous.last_period is not None and first is not None and first <= previous.last_period:
        raise InputError(
            Problem(
                f"the previous pack covers up to {previous.last_period}, and this one starts "
                f"at {first}: a chain's periods must not overlap",
                Location(file=str(where)),
                "chain a pack to the pack of the periods just before it",
            )
        )


def build_pack(
    definition: Path,
    invoice: list[Path],
    key: Path,
    out: Path,
    *,
    events: EventsInput,
    terms: Path | None = None,
    as_of: dt.datetime | str | None = None,
    previous: Path | None = None,
    threads: int | None = None,
    letter: LetterDetails | None = None,
    tree_head: Path | None = None,
    journal: Path | None = None,
    meter_key: str | Path | None = None,
) -> Pack:
    """Reconcile and write a signed pack into ``out`` (which must not exist or be empty)."""
    private = load_private_key(key)
    _check_out(out)
    names = [p.name for p in invoice]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(
            Problem(
                "two invoice files have the same name",
                Location(file=dupes[0]),
                "a pack keeps each invoice under its own name; rename one",
            )
        )
    for p in invoice:
        if not p.is_file():
            raise InputError(Problem("no such file", Location(file=str(p))))
    definition_bytes = _read(definition)
    terms_bytes = _read(terms) if terms is not None else None
    prev = previous_of(previous) if previous is not None else None

    out.mkdir(parents=True, exist_ok=True)
    try:
        (out / INVOICE_DIR).mkdir()
        copies = []
        for p in invoice:
            target = out / INVOICE_DIR / p.name
            shutil.copyfile(p, target)
            copies.append(target)
        # a cited tree head is checked before the count, and its livelog.csv is a subject
        cited = cite_head(out, tree_head, journal, events, meter_key) if tree_head else None
        definition_text = definition_bytes.decode("utf-8")
        terms_text = terms_bytes.decode("utf-8") if terms_bytes is not None else None
        result = run(
            RunInputs(
                definition_text=definition_text,
                events=events,
                invoice=tuple(copies),
                terms_text=terms_text,
                as_of=as_of,
                definition_file=str(definition),
                terms_file=str(terms) if terms is not None else "terms.yaml",
                threads=threads,
                letter=letter,
            ),
            out,
        )
        if prev is not None and previous is not None:
            _check_chain(prev, result, previous)
        (out / DEFINITION_FILE).write_bytes(definition_bytes)
        (out / CANONICAL_FILE).write_bytes(result.definition.canonical_text.encode("utf-8"))
        if terms_bytes is not None:
            (out / TERMS_FILE).write_bytes(terms_bytes)
        pred = predicate(result, definition_text, terms_text, prev, out)
        if cited is not None:
            pred["live_log"] = cited
        statement = statement_for(out, pred)
        payload = canonical_json(statement)
        (out / STATEMENT_FILE).write_bytes(payload)
        (out / ENVELOPE_FILE).write_bytes(canonical_json(sign_envelope(payload, private)))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return Pack(out, pack_digest(payload), result, statement)


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        data.decode("utf-8")
    except OSError as exc:
        raise InputError(
            Problem(f"cannot read: {exc.strerror}", Location(file=str(path)))
        ) from None
    except UnicodeDecodeError:
        raise InputError(Problem("not UTF-8 text", Location(file=str(path)))) from None
    return data
