"""Inclusion proofs for one entity: its row of ``entities.csv``, its verdicts, its events.

A proof is a JSON document that carries the pack's signed envelope and, for each tree, the
entity's leaves with their audit paths (RFC 6962), so that it can be checked on its own with
the public key — by the vendor, say, for one disputed ticket, without the rest of the data.

Leaves of one entity are adjacent in every tree (each is sorted by entity first), so a proof
also carries the leaf just before and just after the entity's range, when there is one: that
shows the range is complete — no verdict or event of the entity was left out of the proof.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from truecount.container import literal_path
from truecount.engine.source import EventsInput
from truecount.errors import InputError, Location, Problem
from truecount.workspace import configure

from . import merkle
from .pack import (
    DEFINITION_FILE,
    ENVELOPE_FILE,
    INVOICE_DIR,
    TERMS_FILE,
    read_statement,
)
from .records import (
    ENTITY_LEAF_FORMAT,
    EVENT_FIELDS,
    EVENT_LEAF_FORMAT,
    FORMULA_START,
    entity_leaf_data,
    event_leaf_data,
    row_leaf_data,
    row_leaf_sql,
)
from .run import (
    ENTITIES_FILE,
    VERDICTS_FILE,
    RunInputs,
    hashes_of,
    insertion_point,
    neighbours,
    run,
)
from .sign import check_envelope
from .verify import Verification

PROOF_FORMAT: Final[int] = 1
TREES: Final[tuple[tuple[str, str], ...]] = (
    ("entities", ENTITIES_FILE),
    ("verdicts", VERDICTS_FILE),
)


def neutralize(text: str) -> str:
    """The cell a pack's CSV shows for ``text`` (a leading apostrophe before a formula)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def sort_keys(shown: str, events: bool) -> tuple[str, ...]:
    """The entity ids a leaf's shown id can stand for, as the trees sort them.

    Event leaves show the id itself. A CSV cell ``'=x`` is the neutralized ``=x`` or, just
    possibly, an id that really begins with an apostrophe: both are returned, and an order
    check must hold for every one of them.
    """
    if not events and shown.startswith("'") and shown[1:].startswith(FORMULA_START):
        return (shown[1:], shown)
    return (shown,)


def _raw_ids(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A CSV's entity_id column with the formula apostrophe taken off (the sort key)."""
    rest = pc.utf8_slice_codeunits(column, 1)
    risky = pc.starts_with(column, "'")
    formula = pc.starts_with(rest, FORMULA_START[0])
    for start in FORMULA_START[1:]:
        formula = pc.or_(formula, pc.starts_with(rest, start))
    return pc.if_else(pc.and_(risky, formula), rest, column)


def _csv_proof(
    path: Path, entity_id: str, root_hex: str, size: int, signed_columns: list[str] | None
) -> dict[str, Any]:
    """Leaves of the entity's rows of a pack CSV, plus neighbours, with audit paths."""
    with duckdb.connect() as con:
        configure(con)
        rel = con.sql(
            "SELECT * FROM read_csv(?, header = true, all_varchar = true, delim = ',', "
            "quote = '\"', escape = '\"')",
            params=[str(literal_path(path))],
        )
        columns = list(rel.columns)
        if signed_columns is not None and columns != signed_columns:
            raise InputError(
                Problem(
                    f"the header row is not the signed column list {signed_columns}",
                    Location(file=str(path)),
                    "run truecount verify on the pack",
                )
            )
        leaves = rel.select(f"{row_leaf_sql(columns).sql('duckdb')} AS h, entity_id")
        table: pa.Table = leaves.to_arrow_table()
        hashes = hashes_of(table)
        mask = pc.equal(table.column("entity_id"), pa.scalar(neutralize(entity_id), pa.string()))
        own = [int(i) for i in pc.indices_nonzero(mask).to_pylist()]
        at = 0 if own else insertion_point(_raw_ids(table.column("entity_id")), entity_id)
        around = neighbours(own, int(hashes.shape[0]), at)
        root, paths = merkle.audit_paths(hashes, own + around)
        if root.hex() != root_hex or hashes.shape[0] != size:
            raise InputError(
                Problem(
                    "the file does not match the root its pack signed",
                    Location(file=str(path)),
                    "run truecount verify on the pack",
                )
            )
        wanted = sorted(own + around)
        rows = rel.select("*").to_arrow_table().take(pa.array(wanted, pa.int64())).to_pylist()
    return {
        "columns": columns,
        "leaves": [
            {
                "index": i,
                "neighbour": i not in own,
                "cells": [row[c] for c in columns],
                "audit_path": [h.hex() for h in paths[i]],
            }
            for i, row in zip(wanted, rows, strict=True)
        ],
    }


def make_proof(folder: Path, entity_id: str, events: EventsInput | None = None) -> dict[str, Any]:
    """The proof for ``entity_id`` from the pack in ``folder`` (events when data is given)."""
    try:
        envelope = json.loads((folder / ENVELOPE_FILE).read_bytes())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            Problem(f"cannot read the envelope ({exc})", Location(file=str(folder / ENVELOPE_FILE)))
        ) from None
    _data, statement = read_statement(folder)
    pred = statement.get("predicate") or {}
    trees: dict[str, Any] = {}
    for name, file in TREES:
        claim = pred.get(name) or {}
        signed = claim.get("columns")
        trees[name] = _csv_proof(
            folder / file,
            entity_id,
            str(claim.get("merkle_root")),
            int(claim.get("tree_size", -1)),
            [str(c) for c in signed] if isinstance(signed, list) else None,
        )
    if events is not None:
        trees["events"] = _event_proof(folder, pred, entity_id, events)
    if not any(leaf for t in trees.values() for leaf in t["leaves"] if not leaf["neighbour"]):
        raise InputError(
            Problem(
                f"entity {entity_id!r} is not in the pack",
                Location(file=str(folder)),
                "entities.csv lists every entity of the reconciliation",
            )
        )
    return {
        "truecount_proof": PROOF_FORMAT,
        "entity_id": entity_id,
        "envelope": envelope,
        "trees": trees,
    }


def _event_proof(
    folder: Path, pred: dict[str, Any], entity_id: str, events: EventsInput
) -> dict[str, Any]:
    claim = pred.get("events") or {}
    leaf_format = str(claim.get("leaf_format") or EVENT_LEAF_FORMAT)
    invoices = [
        folder / INVOICE_DIR / str(f.get("name"))
        for f in pred.get("files") or []
        if isinstance(f, dict) and f.get("role") == "invoice"
    ]
    terms = folder / TERMS_FILE
    with tempfile.TemporaryDirectory(prefix="truecount-prove-") as tmp:
        result = run(
            RunInputs(
                definition_text=(folder / DEFINITION_FILE).read_text(encoding="utf-8"),
                events=events,
                invoice=tuple(invoices),
                terms_text=terms.read_text(encoding="utf-8") if pred.get("terms") else None,
                as_of=str(pred.get("as_of")),
                definition_file=str(folder / DEFINITION_FILE),
                terms_file=str(terms),
                event_leaf=leaf_format,
            ),
            Path(tmp),
            prove=entity_id,
        )
    if result.events.root != claim.get("merkle_root") or result.events.size != claim.get(
        "tree_size"
    ):
        raise InputError(
            Problem(
                "the events given do not match the pack's event root",
                Location(file=str(folder)),
                "run truecount verify with the same data to see what differs",
            )
        )
    leaves = result.proof
    assert leaves is not None
    own = set(leaves.own)
    if leaf_format == ENTITY_LEAF_FORMAT:
        # one leaf per entity: each shows the field texts of its events, in leaf order
        out = [
            {"index": i, "neighbour": i not in own, "events": e, "audit_path": [h.hex() for h in p]}
            for i, e, p in zip(leaves.indices, leaves.events, leaves.paths, strict=True)
        ]
        return {"columns": list(EVENT_FIELDS), "leaf_format": leaf_format, "leaves": out}
    out = [
        {"index": i, "neighbour": i not in own, "fields": f, "audit_path": [h.hex() for h in p]}
        for i, f, p in zip(leaves.indices, leaves.fields, leaves.paths, strict=True)
    ]
    return {"columns": list(EVENT_FIELDS), "leaves": out}


# ----------------------------------------------------------------------------- checking
#: Where a shown leaf sorts relative to the entity: before its rows, its own, after them.
_BEFORE, _OWN, _AFTER = 0, 1, 2


def _side(keys: tuple[str, ...], entity_id: str) -> int | None:
    """Before or after the entity in the trees' order; None if the id does not settle it."""
    if all(k < entity_id for k in keys):
        return _BEFORE
    if all(k > entity_id for k in keys):
        return _AFTER
    return None


def _range_problems(
    sides: dict[int, int], ids: dict[int, str], size: int, entity_id: str
) -> list[str]:
    """What keeps the leaves shown from proving the entity's rows complete (or absent).

    Each tree is sorted by entity id and its root is signed, so consecutive leaves whose ids
    run before the entity, then the entity's own, then after it, with the leaf on each side
    of the range shown, leave no room for a row of the entity that the proof does not show.
    With no row of its own, two adjacent leaves (or an end of the tree) must bracket it.
    """
    if size == 0:
        return []
    if not sides:
        return [
            "no leaf is shown: a proof shows the entity's rows, or the two rows around where "
            "they would be"
        ]
    problems: list[str] = []
    idx = sorted(sides)
    for a, b in itertools.pairwise(idx):
        if b != a + 1:
            problems.append(f"the leaves shown are not consecutive: {a + 1} to {b - 1} are missing")
            break
    for a, b in itertools.pairwise(idx):
        if sides[b] < sides[a]:
            problems.append(
                f"leaf {b} (entity {ids[b]!r}) is out of the sorted order around {entity_id!r}"
            )
            break
    own = [i for i in idx if sides[i] == _OWN]
    last_before = max((i for i in idx if sides[i] == _BEFORE), default=-1)
    first_after = min((i for i in idx if sides[i] == _AFTER), default=size)
    if own:
        lo, hi = own[0], own[-1]
        if own != list(range(lo, hi + 1)):
            problems.append("the entity's leaves are not one unbroken range")
        if last_before != lo - 1:
            problems.append("the leaf before the entity's range is missing, so it may be partial")
        if first_after != hi + 1:
            problems.append("the leaf after the entity's range is missing, so it may be partial")
    elif first_after != last_before + 1:
        problems.append(
            f"no two adjacent leaves bracket {entity_id!r} (the rows around where its rows sort "
            "are not both shown), so its rows may have been removed"
        )
    return problems


def _columns_signed(
    v: Verification, name: str, columns: list[str], claim: dict[str, Any], events: bool
) -> bool:
    """Whether the proof's column names are the ones the statement signs, in order.

    A leaf commits to its cells in order, not to their names (a CSV header is not a leaf), so
    names swapped in a proof (``cell`` for ``reason``) would still verify and be read wrongly
    unless the names themselves are signed. Statements of pack format 2 sign them for every
    tree (``columns``; ``fields`` for events, signed since format 1). A format 1 statement
    signs none for the CSV trees: its proofs are accepted as before, with a note saying so.
    """
    signed = claim.get("fields" if events else "columns")
    if signed is None and not events:
        v.note(
            f"{name} columns",
            "the statement (pack format 1) does not sign the column names; they are the "
            "proof's own",
        )
        return True
    if not isinstance(signed, list) or columns != signed:
        v.add(
            name,
            False,
            f"the column names {columns} are not the ones the statement signs ({signed})",
        )
        return False
    return True


def _check_cells(values: Any, width: int) -> None:
    """Raise ValueError unless ``values`` is a row of ``width`` texts or nulls."""
    if (
        not isinstance(values, list)
        or len(values) != width
        or not all(x is None or isinstance(x, str) for x in values)
    ):
        raise ValueError("cells")


def _entity_leaf(shown: Any, width: int, at: int) -> tuple[Sequence[str | None], bytes]:
    """An entity leaf of a proof: the fields of its first event and the leaf's data.

    Every event of the leaf must have ``width`` fields and the same entity id (at ``at``):
    a leaf is one entity's events, and its id decides where it sorts. Raise ValueError when
    the leaf is not that.
    """
    if not isinstance(shown, list) or not shown:
        raise ValueError("an entity leaf has at least one event")
    for values in shown:
        _check_cells(values, width)
        if values[at] != shown[0][at]:
            raise ValueError("an entity leaf holds one entity's events")
    return shown[0], entity_leaf_data(shown)


def _verify_tree(
    v: Verification, name: str, tree: Any, claim: Any, entity_id: str, events: bool
) -> int:
    """Check one tree of a proof; return how many of the entity's own leaves it shows."""
    claim = claim if isinstance(claim, dict) else {}
    try:
        root = bytes.fromhex(str(claim.get("merkle_root")))
        size = int(claim["tree_size"])
        columns = list(tree["columns"])
        leaves = list(tree["leaves"])
    except (KeyError, TypeError, ValueError):
        v.add(name, False, "the proof or the statement lacks this tree")
        return 0
    key_col = "entity_id"
    if not all(isinstance(c, str) and c for c in columns) or len(set(columns)) != len(columns):
        v.add(name, False, "the column names are not distinct names")
        return 0
    if not _columns_signed(v, name, columns, claim, events):
        return 0
    if key_col not in columns:
        v.add(name, False, "the rows have no entity_id column")
        return 0
    at = columns.index(key_col)
    shown = entity_id if events else neutralize(entity_id)
    problems: list[str] = []
    sides: dict[int, int] = {}
    ids: dict[int, str] = {}
    per_entity = events and claim.get("leaf_format") == ENTITY_LEAF_FORMAT
    for leaf in leaves:
        try:
            index = int(leaf["index"])
            path = [bytes.fromhex(h) for h in leaf["audit_path"]]
            if per_entity:
                values, data = _entity_leaf(leaf["events"], len(columns), at)
            else:
                values = leaf["fields"] if events else leaf["cells"]
                _check_cells(values, len(columns))
                data = event_leaf_data(values) if events else row_leaf_data(values)
        except (KeyError, TypeError, ValueError):
            problems.append("a leaf is malformed")
            continue
        if index in sides:
            problems.append(f"leaf {index} is shown twice")
            continue
        if not merkle.verify_inclusion(merkle.leaf_hash(data), index, size, path, root):
            problems.append(f"leaf {index} is not in the signed tree")
            continue
        value = values[at]
        if value is None:
            problems.append(f"leaf {index} has no entity id")
            continue
        side = _OWN if value == shown else _side(sort_keys(value, events), entity_id)
        if side is None:
            problems.append(f"leaf {index} (entity {value!r}) does not sort before or after it")
            continue
        sides[index], ids[index] = side, value
    if not problems:
        problems = _range_problems(sides, ids, size, entity_id)
    own = sorted(i for i, s in sides.items() if s == _OWN)
    if problems:
        v.add(name, False, "; ".join(problems))
    elif own:
        v.add(
            name,
            True,
            f"all {len(own)} leaf/leaves of the entity ({own[0]} to {own[-1]} of {size:,}) "
            "are in the signed tree",
        )
    else:
        v.add(
            name,
            True,
            f"no rows of {entity_id!r} in {name}: the leaves around where they would sort "
            "are shown and in the signed tree",
        )
    return len(own)


def verify_proof(proof: Any, key: Ed25519PublicKey, where: str = "proof") -> Verification:
    """Check a proof on its own: the signature, then every audit path against the roots,
    then that the leaves shown are the entity's complete range in each tree."""
    v = Verification(where)
    if not isinstance(proof, dict) or proof.get("truecount_proof") != PROOF_FORMAT:
        v.add("proof", False, "not a truecount inclusion proof")
        return v
    entity = proof.get("entity_id")
    trees = proof.get("trees")
    if not isinstance(entity, str) or not entity or not isinstance(trees, dict):
        v.add("proof", False, "the proof names no entity or carries no trees")
        return v
    env = check_envelope(proof.get("envelope"), key)
    v.add("signature", env.ok, env.cause)
    if not env.ok or env.payload is None:
        return v
    try:
        pred = json.loads(env.payload)["predicate"]
        if not isinstance(pred, dict):
            raise TypeError("predicate")
    except (json.JSONDecodeError, KeyError, TypeError):
        v.add("statement", False, "the signed payload is not a statement")
        return v
    own = 0
    for name, _file in TREES:
        own += _verify_tree(v, name, trees.get(name), pred.get(name), entity, events=False)
    if "events" in trees:
        own += _verify_tree(v, "events", trees["events"], pred.get("events"), entity, events=True)
    else:
        v.note("events", "the proof carries no events (prove was run without the data)")
    if not own and v.ok:
        v.add(
            "entity",
            False,
            f"the proof shows no row of {entity!r} in any tree: that shows it is not in the "
            "pack, not that it is",
        )
    return v
