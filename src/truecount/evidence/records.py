"""The byte encodings of Merkle leaves, in DuckDB SQL for the data and in Python for proofs.

Three kinds of leaf (docs/evidence.md gives the exact rules an auditor re-implements):

* **event** (``truecount.event.v1``): the eight canonical fields a count reads — ``event_id,
  entity_id, ts, type, actor, value, attrs, seq`` — each as text, joined as netstrings:
  ``<byte length>:<text>``, or ``~`` for a null. ``ts`` is ``YYYY-MM-DDTHH:MM:SS.ffffff``
  (UTC), ``value`` is C's ``%.17g`` (exact for every double), ``attrs`` the stored JSON text,
  ``seq`` a decimal integer.
* **entity** (``truecount.entity-events.v1``, pack format 3): one leaf per covered entity, its
  data the event data above of each of the entity's events, sorted as byte strings and
  concatenated. Every event's data is self-delimiting (eight netstrings or null marks), so the
  concatenation parses back into the events; the tree has a leaf per entity rather than per
  event, four times fewer at the demo's rate, and its leaves are already in entity order.
* **csv row** (``truecount.csv-row.v1``): the cells of one row of ``verdicts.csv`` or
  ``entities.csv`` exactly as the file shows them, joined as netstrings (an empty cell is
  ``0:``). The root therefore commits to the file an auditor reads, and a proof can be checked
  against the row as printed.

A length prefix makes the encoding unambiguous without escaping anything, and it is a few
string functions in any SQL engine. The leaf hash is ``SHA-256(0x00 || data)`` (RFC 6962),
computed by DuckDB's ``sha256`` over ``concat(chr(0), data)`` — the same bytes, since ``chr(0)`` is
the single byte 0x00 in UTF-8. An entity leaf's data are cut from sorted Arrow batches of
event data and hashed by DuckDB a batch at a time (``run._entity_leaf_batches``), so no row
of data is handled one at a time in Python.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from sqlglot import exp

EVENT_LEAF_FORMAT: Final[str] = "truecount.event.v1"
ENTITY_LEAF_FORMAT: Final[str] = "truecount.entity-events.v1"
#: The event leaf formats a pack may name (packs of formats 1 and 2 use one leaf per event).
EVENT_LEAF_FORMATS: Final[tuple[str, ...]] = (EVENT_LEAF_FORMAT, ENTITY_LEAF_FORMAT)
ROW_LEAF_FORMAT: Final[str] = "truecount.csv-row.v1"

#: The event fields a leaf covers, in leaf order. ``source`` and ``recorded_at`` are lineage
#: stamped by ingest (file name and row, time of loading) when an export lacks them, so the
#: same export read in place or through a workspace would disagree on them.
EVENT_FIELDS: Final[tuple[str, ...]] = (
    "event_id", "entity_id", "ts", "type", "actor", "value", "attrs", "seq",
)  # fmt: skip

#: The total order of event leaves (ties: the leaf hash, so equal keys still sort one way).
EVENT_ORDER: Final[tuple[str, ...]] = ("entity_id", "ts", "seq", "event_id")

TS_FORMAT: Final[str] = "%Y-%m-%dT%H:%M:%S.%f"
NULL_MARK: Final[str] = "~"
FORMULA_START: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r")


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True), table=table)


def _s(text: str) -> exp.Literal:
    return exp.Literal.string(text)


def ts_text(node: exp.Expr) -> exp.Expr:
    return exp.func("strftime", node, _s(TS_FORMAT))


def double_text(node: exp.Expr) -> exp.Expr:
    return exp.func("printf", _s("%.17g"), node)


def event_field_text(name: str, table: str | None = None) -> exp.Expr:
    """One event field as the text its leaf encodes (NULL stays NULL)."""
    col = _col(name, table)
    if name == "ts":
        return ts_text(col)
    if name == "value":
        return double_text(col)
    if name in ("attrs", "seq"):
        return exp.cast(col, exp.DataType.build("VARCHAR"))
    return col


def _length_prefix(text: exp.Expr, null_mark: bool) -> exp.Expr:
    """The ``<byte length>:`` of a netstring, or the null mark ``~`` for a NULL field.

    With the mark, ``strlen(NULL) || ':'`` is NULL and falls to ``'~'``; without it, a NULL
    cell is measured as the empty text (``0:``). ``concat`` skips the NULL text that follows
    either way, so a field costs one prefix and one reference, with no CASE.
    """
    if null_mark:
        prefix = exp.DPipe(
            this=exp.cast(exp.func("strlen", text.copy()), exp.DataType.build("VARCHAR")),
            expression=_s(":"),
        )
        return exp.Coalesce(this=prefix, expressions=[_s(NULL_MARK)])
    measured = exp.Coalesce(this=text.copy(), expressions=[_s("")])
    return exp.DPipe(
        this=exp.cast(exp.func("strlen", measured), exp.DataType.build("VARCHAR")),
        expression=_s(":"),
    )


def _netstring_parts(text: exp.Expr, null_mark: bool) -> list[exp.Expr]:
    """The arguments of ``concat`` that write one field as a netstring.

    Without the null mark the length is given to ``concat`` as an integer, which it writes in
    decimal itself (no cast, no ``||``: about a sixth less CPU for a CSV row's leaf); with it,
    the prefix is :func:`_length_prefix`, which turns NULL into the mark.
    """
    if null_mark:
        return [_length_prefix(text, null_mark), text.copy()]
    measured = exp.Coalesce(this=text.copy(), expressions=[_s("")])
    return [exp.func("strlen", measured), _s(":"), text.copy()]


def leaf_data_sql(texts: Sequence[exp.Expr], null_mark: bool) -> exp.Expr:
    """``concat(netstrings)``: a leaf's data (without the RFC 6962 leaf prefix) as text.

    The data are built by one ``concat`` of every prefix and text, so each leaf's string is
    allocated once rather than once per ``||``. Give column references as ``texts`` where a
    text is computed (``strftime``, ``printf``): each appears twice, in its prefix and itself.
    """
    parts: list[exp.Expr] = []
    for text in texts:
        parts += _netstring_parts(text, null_mark)
    # Anonymous: sqlglot would write exp.Concat as ||, which is NULL when any text is NULL
    return exp.Anonymous(this="concat", expressions=parts)


def leaf_hash_sql(texts: Sequence[exp.Expr], null_mark: bool) -> exp.Expr:
    """A leaf's RFC 6962 hash as a 32-byte BLOB, the data built from ``texts`` in one ``concat``."""
    parts: list[exp.Expr] = [exp.func("chr", exp.Literal.number(0))]
    for text in texts:
        parts += _netstring_parts(text, null_mark)
    data = exp.Anonymous(this="concat", expressions=parts)
    return exp.func("unhex", exp.func("sha256", data))


def event_leaf_sql(table: str | None = None) -> exp.Expr:
    return leaf_hash_sql([event_field_text(f, table) for f in EVENT_FIELDS], null_mark=True)


# ----------------------------------------------------------------------------- CSV cells
def neutralize_sql(node: exp.Expr) -> exp.Expr:
    """A text cell no spreadsheet runs as a formula: a leading apostrophe when needed.

    The test is a chain of ``=`` on the first character rather than ``IN (…)``: DuckDB plans
    an ``IN`` list of six constants as a hash join against them (one per text column of the
    CSV tables, together about a sixth of their formatting time); the comparisons are plain
    vectorised expressions, same result.
    """
    first = exp.func("left", node.copy(), exp.Literal.number(1))
    risky = exp.or_(*[exp.EQ(this=first.copy(), expression=_s(c)) for c in FORMULA_START])
    return exp.Case(
        ifs=[exp.If(this=risky, true=exp.DPipe(this=_s("'"), expression=node.copy()))],
        default=node.copy(),
    )


def decimal_text(node: exp.Expr, kind: str) -> exp.Expr:
    """A decimal without its storage scale's trailing zeros, keeping at least two places
    (``5.000000`` reads ``5.00``, ``5.125000`` reads ``5.125``).

    The regular expression that trims them costs a match per row; an amount in whole cents
    (nearly all of them) is instead cast to two places, which prints the same text, and only
    the others are trimmed (at 10M rows: about 1.3 CPU s instead of 2.4).
    """
    trimmed = exp.func(
        "regexp_replace",
        exp.cast(node.copy(), exp.DataType.build("VARCHAR")),
        _s(r"(\.[0-9][0-9][0-9]*?)0+$"),
        _s(r"\1"),
    )
    shape = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", kind)
    if shape is None or int(shape.group(2)) <= 2:
        return trimmed
    # trunc, not round: it never leaves the type's range (round can carry past the top)
    cents = exp.cast(
        exp.func("trunc", node.copy(), exp.Literal.number(2)),
        exp.DataType.build(f"DECIMAL({int(shape.group(1))}, 2)"),
    )
    whole_cents = exp.EQ(this=node.copy(), expression=cents.copy())
    as_text = exp.cast(cents, exp.DataType.build("VARCHAR"))
    return exp.Case(ifs=[exp.If(this=whole_cents, true=as_text)], default=trimmed)


def cell_text(node: exp.Expr, dtype: str) -> exp.Expr:
    """A typed value as the text a pack's CSV shows (NULL stays NULL: an empty cell)."""
    kind = dtype.upper()
    if kind in ("VARCHAR", "JSON"):
        return neutralize_sql(exp.cast(node, exp.DataType.build("VARCHAR")))
    if kind.startswith("TIMESTAMP"):
        return ts_text(node)
    if kind in ("DOUBLE", "FLOAT", "REAL"):
        return double_text(node)
    if kind == "BOOLEAN":
        return exp.Case(
            ifs=[
                exp.If(this=exp.Is(this=node.copy(), expression=exp.Null()), true=exp.Null()),
                exp.If(this=node.copy(), true=_s("true")),
            ],
            default=_s("false"),
        )
    if kind.startswith("DECIMAL"):
        return decimal_text(node, kind)
    return exp.cast(node, exp.DataType.build("VARCHAR"))


def row_leaf_sql(columns: Sequence[str], table: str | None = None) -> exp.Expr:
    """The leaf hash of a row of text cells (already formatted as the CSV shows them)."""
    return leaf_hash_sql([_col(c, table) for c in columns], null_mark=False)


# ----------------------------------------------------------------------------- Python mirror
def _frame(text: str | None, null_mark: bool) -> bytes:
    if text is None:
        if null_mark:
            return NULL_MARK.encode()
        text = ""
    raw = text.encode("utf-8")
    return str(len(raw)).encode("ascii") + b":" + raw


def event_leaf_data(fields: Sequence[str | None]) -> bytes:
    """Leaf data of an event from its eight field texts (None for a null)."""
    if len(fields) != len(EVENT_FIELDS):
        raise ValueError(f"an event leaf has {len(EVENT_FIELDS)} fields, not {len(fields)}")
    return b"".join(_frame(f, null_mark=True) for f in fields)


def entity_leaf_data(events: Sequence[Sequence[str | None]]) -> bytes:
    """Leaf data of an entity (``truecount.entity-events.v1``) from its events' field texts.

    Each event is encoded as an event leaf's data; the encodings are sorted as byte strings
    and concatenated, so the order the events are given in does not matter.
    """
    return b"".join(sorted(event_leaf_data(e) for e in events))


def row_leaf_data(cells: Sequence[str | None]) -> bytes:
    """Leaf data of a CSV row from its cells as the file shows them."""
    return b"".join(_frame(c, null_mark=False) for c in cells)
