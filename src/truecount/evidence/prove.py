"""Inclusion proofs for one entity: its row of ``entities.csv``, its verdicts, its events.

A proof is a JSON document that carries the pack's signed envelope and, for each tree, the
entity's leaves with their audit paths (RFC 6962), so that it can be checked on its own with
the public key — by the vendor, say, for one disputed ticket, without the rest of the data.

Leaves of one entity are adjacent in every tree (each is sorted by entity first), so a proof
also carries the leaf just before and just after the entity's range, when there is one: that
shows the range is complete — no verdict or event of the entity was left out of the proof.

In a pack of format 4 a leaf is a block (64 CSV rows, or the events of 64 entities): a proof
shows the blocks holding the entity's rows and the row (or entity) just before and after
them, and the check of completeness is made on the rows and entities inside the blocks.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
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
from .blocks import (
    BLOCK_ENTITIES,
    BLOCK_ROWS,
    CSV_BLOCK_FORMAT,
    EVENT_BLOCK_FORMAT,
    block_data,
    csv_block_hashes,
    csv_block_texts,
    csv_row_starts,
)
from .covered import insertion_point, neighbours
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
from .run import ENTITIES_FILE, VERDICTS_FILE, RunInputs, run
from .sign import check_envelope
from .text_trees import hashes_of
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


def _mismatch(path: Path) -> InputError:
    return InputError(
        Problem(
            "the file does not match the root its pack signed",
            Location(file=str(path)),
            "run truecount verify on the pack",
        )
    )


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
            raise _mismatch(path)
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


def _csv_block_proof(
    path: Path, entity_id: str, root_hex: str, size: int, signed_columns: list[str] | None
) -> dict[str, Any]:
    """Blocks of a pack CSV (format 4) holding the entity's rows and the rows around them.

    The rows shown are the entity's own plus the one just before and after (or the two around
    where it would sort), as with row leaves; what a proof carries is each block they fall in,
    as the file's own text, since that text is what the leaf hashes.
    """
    starts = csv_row_starts(path)
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
        ids: pa.ChunkedArray = rel.select("entity_id").to_arrow_table().column("entity_id")
    rows = len(starts) - 1
    if len(ids) != rows:  # DuckDB and the row split disagree: the file is not one DuckDB wrote
        raise _mismatch(path)
    hashes = csv_block_hashes(path, starts)
    mask = pc.equal(ids, pa.scalar(neutralize(entity_id), pa.string()))
    own = [int(i) for i in pc.indices_nonzero(mask).to_pylist()]
    at = 0 if own else insertion_point(_raw_ids(ids), entity_id)
    blocks = sorted({r // BLOCK_ROWS for r in own + neighbours(own, rows, at)})
    mine = {r // BLOCK_ROWS for r in own}
    root, paths = merkle.audit_paths(hashes, blocks)
    if root.hex() != root_hex or hashes.shape[0] != size:
        raise _mismatch(path)
    texts = csv_block_texts(path, starts, blocks)
    return {
        "columns": columns,
        "leaf_format": CSV_BLOCK_FORMAT,
        "leaves": [
            {
                "index": k,
                "neighbour": k not in mine,
                "text": text,
                "audit_path": [h.hex() for h in paths[k]],
            }
            for k, text in zip(blocks, texts, strict=True)
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
        maker = _csv_block_proof if claim.get("leaf_format") == CSV_BLOCK_FORMAT else _csv_proof
        trees[name] = maker(
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
            files=False,
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
    if leaf_format in (ENTITY_LEAF_FORMAT, EVENT_BLOCK_FORMAT):
        # a leaf per entity, or per block of entities: each shows its events' field texts
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
    except (KeyError, TypeError, ValueError, OverflowError):  # int(inf) overflows
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
    if claim.get("leaf_format") == (EVENT_BLOCK_FORMAT if events else CSV_BLOCK_FORMAT):
        return _verify_blocks(v, name, (root, size, claim), leaves, (len(columns), at), entity_id)
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
        except (KeyError, TypeError, ValueError, OverflowError):
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


# ----------------------------------------------------------------------------- block leaves
def _csv_rows(text: str) -> list[str]:
    """A CSV block's rows, each without its line feed: a row ends at a line feed outside
    double quotes, the rule the pack's leaves were cut by. Raise ValueError unless the text
    ends a row where it ends."""
    rows: list[str] = []
    lines: list[str] = []
    quotes = 0
    pieces = text.split("\n")
    if pieces[-1]:
        raise ValueError("a block ends with a line feed")
    for line in pieces[:-1]:
        lines.append(line)
        quotes += line.count('"')
        if quotes % 2 == 0:
            rows.append("\n".join(lines))
            lines, quotes = [], 0
    if lines:
        raise ValueError("a quote left open at the end of a block")
    return rows


def _csv_block(text: Any, width: int, at: int) -> tuple[list[str | None], bytes]:
    """The entity ids of a CSV block's rows, in order, and the leaf's data (its bytes).

    Each row must read, with Python's CSV reader, as one record of ``width`` cells: the ids
    are what the order check reads, so a row they cannot be taken from is not accepted.
    """
    if not isinstance(text, str):
        raise TypeError("a CSV block is a text")
    ids: list[str | None] = []
    for row in _csv_rows(text):
        records = list(csv.reader([row], strict=True))
        if len(records) != 1 or len(records[0]) != width:
            raise ValueError("a row of the block is not one record of the signed columns")
        ids.append(records[0][at])
    if not ids:
        raise ValueError("a block holds at least one row")
    return ids, text.encode("utf-8")


#: ``ts`` as the prover writes it: always two-digit fields and six fraction digits.
_TS_TEXT: Final[re.Pattern[str]] = re.compile(r"\d{1,4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}")


def _check_number_texts(values: Sequence[str | None]) -> None:
    """Raise ValueError unless ``ts``, ``value`` and ``seq`` are written as the prover writes
    them (``%.17g``, a plain decimal, six fraction digits).

    A block records these fields as numbers, so ``4``, ``04`` and `` 4`` give the same leaf:
    without this a proof could show a number in a form the statement never had, and still
    verify. NaN may read ``nan`` or ``-nan`` (all NaNs are recorded alike).
    """
    ts, value, seq = (values[EVENT_FIELDS.index(f)] for f in ("ts", "value", "seq"))
    if ts is not None and not _TS_TEXT.fullmatch(ts):
        raise ValueError("ts is not written as YYYY-MM-DDTHH:MM:SS.ffffff")
    if value is not None:
        number = float(value)
        if format(number, ".17g") != value and not (
            math.isnan(number) and value in ("nan", "-nan")
        ):
            raise ValueError("value is not written as %.17g")
    if seq is not None and str(int(seq)) != seq:
        raise ValueError("seq is not a plain decimal")


def _event_block(shown: Any, width: int, at: int) -> tuple[list[str | None], bytes]:
    """The entity ids of an event block (one per run of events with the same id) and its data.

    The events are taken in the order shown, which is the order the leaf hashes them in, so
    an entity's events are adjacent in a genuine block and each run is one entity.
    """
    if not isinstance(shown, list) or not shown:
        raise ValueError("an event block has at least one event")
    for values in shown:
        _check_cells(values, width)
        _check_number_texts(values)
    ids = [k for k, _run in itertools.groupby(values[at] for values in shown)]
    return ids, block_data(shown)


def _unit_problems(
    units: dict[int, list[str]], size: int, entity_id: str, events: bool, word: str
) -> tuple[list[str], int]:
    """What keeps the blocks shown from proving the entity's rows (or entities) complete.

    A block holds many rows, so the leaf order alone says nothing of where the entity's rows
    start and end; the rows inside the blocks do. Consecutive blocks are a run of consecutive
    rows of the signed file; in it the rows must sort before the entity, then be its own,
    then sort after it, and the row on each side of its own must be in the run (or the run
    must start or end the tree there). With no row of its own, a row before and the row right
    after it must bracket it. Also return how many own rows (entities) are shown.
    """
    if size == 0:
        return [], 0
    if not units:
        return [
            f"no leaf is shown: a proof shows the blocks of the entity's {word}, or of the two "
            f"{word} around where they would be"
        ], 0
    idx = sorted(units)
    for a, b in itertools.pairwise(idx):
        if b != a + 1:
            return [f"the leaves shown are not consecutive: {a + 1} to {b - 1} are missing"], 0
    shown = neutralize(entity_id) if not events else entity_id
    one, own_word = ("entity", "events") if events else ("row", "rows")
    run: list[tuple[int, str, int]] = []
    for k in idx:
        for unit in units[k]:
            side = _OWN if unit == shown else _side(sort_keys(unit, events), entity_id)
            if side is None:
                return [f"leaf {k} (entity {unit!r}) does not sort before or after it"], 0
            run.append((k, unit, side))
    sides = [side for _k, _u, side in run]
    for j in range(1, len(run)):
        if sides[j] < sides[j - 1]:
            k, unit = run[j][:2]
            return [
                f"leaf {k} (entity {unit!r}) is out of the sorted order around {entity_id!r}"
            ], 0
    starts, ends = idx[0] == 0, idx[-1] == size - 1
    own = [j for j, side in enumerate(sides) if side == _OWN]
    problems: list[str] = []
    if own:
        lo, hi = own[0], own[-1]
        if not (sides[lo - 1] == _BEFORE if lo else starts):
            problems.append(
                f"the {one} before the entity's {own_word} is missing, so they may be partial"
            )
        if not (sides[hi + 1] == _AFTER if hi + 1 < len(sides) else ends):
            problems.append(
                f"the {one} after the entity's {own_word} is missing, so they may be partial"
            )
    else:
        before = sides.count(_BEFORE)
        if not (
            0 < before < len(sides) or (before == 0 and starts) or (before == len(sides) and ends)
        ):
            problems.append(
                f"no two adjacent {word} bracket {entity_id!r} (the {word} around where its "
                f"{own_word} would sort are not both shown), so its {own_word} may have been "
                "removed"
            )
    return problems, len(own)


def _block_size_fits(count: int, index: int, size: int, per_leaf: int, total: Any) -> bool:
    """Whether a block holds the rows its place in the tree says: ``per_leaf`` in every block
    but the last, which holds the rest of the signed count (or, without one, 1 to
    ``per_leaf``). Row k of the file is then in block k // ``per_leaf``, as the prover cut."""
    if index != size - 1:
        return count == per_leaf
    if isinstance(total, int) and not isinstance(total, bool):
        return count == total - per_leaf * (size - 1)
    return 0 < count <= per_leaf


def _verify_blocks(
    v: Verification,
    name: str,
    signed: tuple[bytes, int, dict[str, Any]],
    leaves: list[Any],
    shape: tuple[int, int],
    entity_id: str,
) -> int:
    """Check one tree of block leaves (pack format 4); return how many own rows it shows.

    Each block's data is rebuilt from what the proof shows (a CSV block's text is its bytes,
    an event block its events' records) and its audit path checked; a block must hold the
    format's number of rows (entities), fewer only in the last, so a block's rows are the
    rows the leaf index says they are. Then the rows inside the blocks are checked.
    """
    root, size, claim = signed
    width, at = shape
    events = name == "events"
    per_leaf, word = (BLOCK_ENTITIES, "entities") if events else (BLOCK_ROWS, "rows")
    total = claim.get("entities" if events else "rows")
    problems: list[str] = []
    units: dict[int, list[str]] = {}
    for leaf in leaves:
        try:
            index = int(leaf["index"])
            path = [bytes.fromhex(h) for h in leaf["audit_path"]]
            reader = _event_block if events else _csv_block
            ids, data = reader(leaf["events" if events else "text"], width, at)
        except (KeyError, TypeError, ValueError, OverflowError, csv.Error):
            problems.append("a leaf is malformed")
            continue
        if index in units:
            problems.append(f"leaf {index} is shown twice")
            continue
        if not merkle.verify_inclusion(merkle.leaf_hash(data), index, size, path, root):
            problems.append(f"leaf {index} is not in the signed tree")
            continue
        if not _block_size_fits(len(ids), index, size, per_leaf, total):
            problems.append(f"leaf {index} holds {len(ids)} {word}, not what its place allows")
            continue
        named = [i for i in ids if i is not None]
        if len(named) != len(ids):
            problems.append(f"leaf {index} has a row with no entity id")
            continue
        units[index] = named
    own = 0
    if not problems:
        problems, own = _unit_problems(units, size, entity_id, events, word)
    if problems:
        v.add(name, False, "; ".join(problems))
    elif own:
        idx = sorted(units)
        what = "the entity's events" if events else f"all {own} row(s) of the entity"
        v.add(
            name,
            True,
            f"{what} and the {word} around them (leaves {idx[0]} to {idx[-1]} of {size:,}) "
            "are in the signed tree",
        )
    else:
        v.add(
            name,
            True,
            f"no rows of {entity_id!r} in {name}: the {word} around where they would sort "
            "are shown and in the signed tree",
        )
    return own


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
