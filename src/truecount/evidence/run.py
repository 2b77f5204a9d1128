"""One reconciliation, computed the way a pack records it: the code ``evidence`` and ``verify``
share, so that verifying is re-running, not re-reading.

:func:`run` counts the definition over the events, reconciles the invoice, and writes the
result files of a pack (``query.sql``, ``reconciliation.json``, ``entities.csv``,
``verdicts.csv``) into a folder; it returns the Merkle roots over the covered events and over
the rows of the two CSV files, and the SHA-256 of the raw files the events came from.

**Covered events.** The periods a pack covers run from the invoice's first billed period to its
last (:func:`covered_periods`). The covered entities are
those with a verdict in a covered period or a line on the invoice; the covered events are every
event of a covered entity visible at the as-of time (``ts <= as_of``), whatever its own date —
a reopen in the next month can decide a verdict of this one. ``verdicts.csv`` holds every
verdict of a covered entity.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp

from truecount.billing.dispute import DISPUTED, letter_details, write_letter
from truecount.billing.invoice import load_invoice_into
from truecount.billing.reconcile import CELLS_TABLE, Reconciliation, reconcile_in
from truecount.billing.terms import LetterDetails, Terms, parse_terms
from truecount.db import MEMORY_ENV
from truecount.definition.load import parse_definition
from truecount.definition.model import Definition
from truecount.engine.run import VERDICTS_TABLE, count_source
from truecount.engine.source import EventsInput, open_events
from truecount.errors import InputError, Location, Problem
from truecount.ingest.canonical import EVENTS_TABLE, INGEST_LOG_TABLE
from truecount.workspace import Workspace

from . import merkle
from .canonical import canonical_json, file_sha256
from .records import (
    ENTITY_LEAF_FORMAT,
    EVENT_FIELDS,
    EVENT_LEAF_FORMAT,
    EVENT_LEAF_FORMATS,
    EVENT_ORDER,
    cell_text,
    event_field_text,
    event_leaf_data,
    leaf_data_sql,
    leaf_hash_sql,
    row_leaf_sql,
)

QUERY_FILE: Final[str] = "query.sql"
RECONCILIATION_FILE: Final[str] = "reconciliation.json"
ENTITIES_FILE: Final[str] = "entities.csv"
VERDICTS_FILE: Final[str] = "verdicts.csv"
INVOICE_TABLE: Final[str] = "invoice"

#: Columns of entities.csv, in order (the dispute pack's, with line ids sorted by id).
ENTITY_COLUMNS: Final[tuple[str, ...]] = (
    "entity_id", "cell", "disputed", "reason", "lines", "line_ids", "billed_period",
    "billed_amount", "buyer_status", "buyer_period", "anchor_ts",
)  # fmt: skip

#: DuckDB's budget for a pack (or its replay) unless TRUECOUNT_MEMORY_LIMIT says otherwise:
#: below the count's default, because the verb's process also holds the interpreter, the
#: Arrow batches of leaf hashes and the CSV writer's buffers on top of DuckDB's budget, and
#: the whole must stay under 2 GB at 10M tickets (docs/benchmark.md, *Evidence at 10M*).
EVIDENCE_MEMORY_LIMIT: Final[str] = "1.5GB"
#: DuckDB's budget while the event tree is built (unless TRUECOUNT_MEMORY_LIMIT is set): its
#: sort spills either way at 10M tickets, and the process also holds the Arrow batches being
#: cut and hashed (measured at 10M: a 1,965 MB peak with 1.5 GB here, where the rest of the
#: verb peaks at about 1.89 GB).
EVENT_TREE_MEMORY_LIMIT: Final[str] = "1.3GB"

_COVERED: Final[str] = "_ev_covered"
_PERIODS: Final[str] = "_ev_periods"
_VERDICT_ROWS: Final[str] = "_ev_verdict_rows"
_ENTITY_ROWS: Final[str] = "_ev_entity_rows"
_LEAF: Final[str] = "_ev_leaf"


@dataclass(frozen=True)
class FileDigest:
    """A raw input file: its role (events or invoice), name (no folders) and SHA-256."""

    role: str
    name: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "name": self.name, "sha256": self.sha256}


@dataclass(frozen=True)
class Tree:
    """A Merkle root (hex) and its number of leaves."""

    root: str
    size: int


@dataclass(frozen=True)
class RunInputs:
    """Everything a reconciliation depends on; texts, so a pack can carry them byte for byte."""

    definition_text: str
    events: EventsInput
    invoice: tuple[Path, ...]
    terms_text: str | None = None
    as_of: dt.datetime | str | None = None
    definition_file: str = "definition.yaml"
    terms_file: str = "terms.yaml"
    #: DuckDB worker threads, and worker processes for the trees (None: DuckDB's default,
    #: and one worker per core). The results must not depend on it.
    threads: int | None = None
    #: Letter details over the terms' ``letter:`` section; a letter is written (and signed)
    #: when these or the terms name anyone or anything (None: never, as on a replay).
    letter: LetterDetails | None = None
    #: The event tree's leaf format: one leaf per entity (pack format 3), or one per event
    #: (``truecount.event.v1``, packs of formats 1 and 2, which a replay must rebuild alike).
    event_leaf: str = ENTITY_LEAF_FORMAT


@dataclass
class RunResult:
    """What :func:`run` computed and wrote."""

    definition: Definition
    terms: Terms | None
    as_of: dt.datetime
    sql: str
    recon: Reconciliation
    periods: list[str]
    events: Tree
    event_entities: int
    verdicts: Tree
    entities: Tree
    files: list[FileDigest]
    #: 'files' when the event files were hashed here, 'workspace' when the digests come from
    #: the workspace's ingest log.
    files_basis: str
    #: The header rows of verdicts.csv and entities.csv (the column names a statement signs).
    verdict_columns: list[str] = field(default_factory=list)
    entity_columns: list[str] = field(default_factory=list)
    #: Filled when an entity to prove was asked for (see :func:`run`).
    proof: EntityLeaves | None = None


@dataclass
class EntityLeaves:
    """One entity's event leaves and their neighbours: indices, field texts, audit paths."""

    entity_id: str
    #: The entity's own leaf indices (the rest of ``indices`` are its neighbours).
    own: list[int] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    fields: list[list[str | None]] = field(default_factory=list)
    paths: list[list[bytes]] = field(default_factory=list)
    #: Per entity leaf (format ``truecount.entity-events.v1``): the field texts of its events,
    #: in leaf order (``fields`` stays empty then).
    events: list[list[list[str | None]]] = field(default_factory=list)


def neighbours(indices: list[int], size: int, position: int = 0) -> list[int]:
    """The leaves just before and after a range of leaves, where they exist.

    With no leaves (an entity absent from a tree), the two leaves around ``position``, the
    index where its rows would be in the sorted order: adjacent leaves whose entity ids bracket
    it are what shows the absence, since the tree is sorted by entity and signed.
    """
    if not indices:
        return [i for i in (position - 1, position) if 0 <= i < size]
    lo, hi = min(indices), max(indices)
    return [i for i in (lo - 1, hi + 1) if 0 <= i < size]


def insertion_point(keys: pa.ChunkedArray | pa.Array, entity_id: str) -> int:
    """How many leaves sort before ``entity_id`` (the trees are sorted by entity id first).

    Arrow compares strings byte by byte, as DuckDB's ORDER BY does on VARCHAR (UTF-8 bytes in
    code point order), so the count is the position the entity's rows would take.
    """
    before = pc.sum(pc.less(keys, pa.scalar(entity_id, pa.string()))).as_py()
    return int(before or 0)


def hashes_of(table: pa.Table, column: str = "h") -> merkle.Hashes:
    """A BLOB column of 32-byte hashes as an (n, 32) array, without a Python loop."""
    col = table.column(column).combine_chunks() if table.num_rows else pa.array([], pa.binary())
    return _fixed(col)


def _fixed(col: pa.Array) -> merkle.Hashes:
    if len(col) == 0:
        return np.zeros((0, merkle.HASH_SIZE), dtype=np.uint8)
    fixed = col.cast(pa.binary(merkle.HASH_SIZE))
    data = np.frombuffer(fixed.buffers()[1], dtype=np.uint8)
    start = fixed.offset * merkle.HASH_SIZE
    return data[start : start + len(fixed) * merkle.HASH_SIZE].reshape(-1, merkle.HASH_SIZE)


def stream_root(
    con: duckdb.DuckDBPyConnection, select: exp.Select, pool: merkle.BlockPool | None = None
) -> Tree:
    """The Merkle tree over the ``h`` column of a query, read batch by batch.

    The leaf hashes go straight into a :class:`merkle.RootBuilder`, so memory stays at one
    block of leaves whatever the tree's size (40 million leaf hashes would be 1.3 GB), and the
    query runs once: no count first to size an array. With a ``pool``, full blocks are
    reduced by its worker processes while the next batches are read.
    """
    builder = merkle.RootBuilder(pool=pool)
    reader = con.sql(select.sql("duckdb")).to_arrow_reader(1 << 17)
    for batch in reader:
        builder.add(_fixed(batch.column(0)))
    return Tree(builder.root().hex(), builder.size)


def _ts_param(value: dt.datetime) -> exp.Expr:
    return exp.cast(
        exp.Literal.string(value.isoformat(sep=" ", timespec="microseconds")),
        exp.DataType.build("TIMESTAMP"),
    )


def _event_rows(
    as_of: dt.datetime, extra: list[exp.Expr] | None = None, entity: str | None = None
) -> exp.Select:
    """The covered events visible at ``as_of``, in leaf order: leaf hash ``h``, then ``extra``.

    The field texts are computed once, in a subquery, and the leaf hash is taken over them:
    a text such as ``strftime(ts)`` appears twice in a leaf (its length and itself), and
    DuckDB would otherwise compute it twice. ``extra`` are expressions over the events ``e``
    (named by their alias or column name). ``entity`` keeps one entity's events (in the same
    order, so the k-th of them is the k-th of that entity's leaves).
    """
    preds: list[exp.Expr] = [
        exp.LTE(this=exp.column("ts", "e"), expression=_ts_param(as_of)),
        exp.In(
            this=exp.column("entity_id", "e"),
            query=exp.select("entity_id").from_(_COVERED).subquery(),
        ),
    ]
    if entity is not None:
        preds.append(
            exp.EQ(this=exp.column("entity_id", "e"), expression=exp.Literal.string(entity))
        )
    texts = [f"_t_{f}" for f in EVENT_FIELDS]
    keys = [f"_o_{c}" for c in EVENT_ORDER]
    inner = (
        exp.select(
            *[
                exp.alias_(event_field_text(f, "e"), t)
                for f, t in zip(EVENT_FIELDS, texts, strict=True)
            ],
            *[exp.alias_(exp.column(c, "e"), k) for c, k in zip(EVENT_ORDER, keys, strict=True)],
            *(extra or []),
        )
        .from_(exp.to_table(EVENTS_TABLE).as_("e"))
        .where(exp.and_(*preds))
    )
    order = [exp.Ordered(this=exp.column(k), nulls_first=False) for k in keys]
    order.append(exp.Ordered(this=exp.column("h"), nulls_first=False))
    leaf = leaf_hash_sql([exp.column(t) for t in texts], null_mark=True)
    return (
        exp.select(
            exp.alias_(leaf, "h"),
            *[exp.column(exp.to_identifier(x.alias_or_name, quoted=True)) for x in extra or []],
        )
        .from_(inner.subquery("x"))
        .order_by(*order)
    )


def _event_files(
    events: EventsInput, con: duckdb.DuckDBPyConnection
) -> tuple[list[FileDigest], str]:
    if isinstance(events, Workspace):
        rows = con.execute(
            f"SELECT DISTINCT file, sha256 FROM {INGEST_LOG_TABLE} WHERE sha256 IS NOT NULL"  # noqa: S608
        ).fetchall()
        found = {FileDigest("events", Path(str(f)).name, str(s)) for f, s in rows}
        return sorted(found, key=lambda d: (d.name, d.sha256)), "workspace"
    paths = [events] if isinstance(events, str | Path) else list(events)
    digests = {FileDigest("events", Path(p).name, file_sha256(p)) for p in paths}
    return sorted(digests, key=lambda d: (d.name, d.sha256)), "files"


def _text_table(
    con: duckdb.DuckDBPyConnection, name: str, select: exp.Select, order: list[exp.Ordered]
) -> list[str]:
    """Materialise ``select`` (text columns) in ``order``, with each row's leaf hash; return
    the text columns.

    The rows are stored sorted (DuckDB keeps the order of an ordered ``CREATE TABLE AS`` with
    ``preserve_insertion_order``, its default, which every truecount connection keeps), so
    writing the file and reading the leaves are plain scans, and each leaf is hashed once.
    """
    staged = f"{name}_text"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {staged} AS {select.order_by(*order).sql('duckdb')}")
    cols = [str(r[0]) for r in con.execute(f"DESCRIBE {staged}").fetchall()]
    hashed = exp.select(exp.Star(), exp.alias_(row_leaf_sql(cols), _LEAF)).from_(staged)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {hashed.sql('duckdb')}")
    con.execute(f"DROP VIEW {staged}")
    return cols


def _write_csv(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[str],
    path: Path,
    pool: merkle.BlockPool | None = None,
) -> Tree:
    """Write the rows in their stored order and return the Merkle tree over them."""
    cols = [exp.column(exp.to_identifier(c, quoted=True)) for c in columns]
    con.sql(exp.select(*cols).from_(table).sql("duckdb")).write_csv(str(path), header=True)
    return stream_root(con, exp.select(exp.alias_(exp.column(_LEAF), "h")).from_(table), pool)


def _verdict_rows(con: duckdb.DuckDBPyConnection) -> list[str]:
    described = con.execute(f"DESCRIBE {VERDICTS_TABLE}").fetchall()
    cols = [
        exp.alias_(
            cell_text(exp.column(exp.to_identifier(str(r[0]), quoted=True), "v"), str(r[1])),
            exp.to_identifier(str(r[0]), quoted=True),
        )
        for r in described
    ]
    select = (
        exp.select(*cols)
        .from_(exp.to_table(VERDICTS_TABLE).as_("v"))
        .where(
            exp.In(
                this=exp.column("entity_id", "v"),
                query=exp.select("entity_id").from_(_COVERED).subquery(),
            )
        )
    )
    order = [
        exp.Ordered(this=exp.column(c, "v"), nulls_first=False)
        for c in ("entity_id", "anchor_ts", "anchor_event_id", "period", "status")
    ]
    return _text_table(con, _VERDICT_ROWS, select, order)


def _entity_rows(con: duckdb.DuckDBPyConnection) -> list[str]:
    # Line ids derived from the invoice's position (no line_id column) read 'path#row'; the
    # folders are dropped so the rows do not depend on where the invoice file lies. An
    # entity's ids are sorted and joined by ';' (VARCHAR compares byte-wise), and an entity
    # whose lines have no id keeps NULL. Almost every entity has one line, whose id is the
    # whole cell: a plain count and min per entity, and the list, its sort and its join only
    # for the entities with more (a list per group for every entity cost half again as much).
    lines = sqlglot.parse_one(
        "WITH l AS (SELECT entity_id, CASE WHEN line_id = source "
        "THEN regexp_replace(source, '^.*[/\\\\]', '') ELSE line_id END AS lid "
        "FROM _tc_lines), "
        "g AS (SELECT entity_id, count(lid) AS n, min(lid) AS one FROM l GROUP BY entity_id) "
        "SELECT g.entity_id, CASE WHEN g.n = 1 THEN g.one WHEN g.n > 1 THEN m.joined END "
        "AS line_ids FROM g LEFT JOIN "
        "(SELECT entity_id, array_to_string(list_sort(list(lid)), ';') AS joined FROM l "
        "WHERE lid IS NOT NULL AND entity_id IN (SELECT entity_id FROM g WHERE n > 1) "
        "GROUP BY entity_id) AS m ON m.entity_id = g.entity_id",
        dialect="duckdb",
    )
    assert isinstance(lines, exp.Select)
    types = {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE {CELLS_TABLE}").fetchall()}

    def col(name: str) -> exp.Expr:
        return cell_text(exp.column(name, "c"), types.get(name, "VARCHAR"))

    disputed = exp.In(
        this=exp.column("cell", "c"), expressions=[exp.Literal.string(x) for x in DISPUTED]
    )
    lines_count = exp.cast(
        exp.Coalesce(this=exp.column("lines", "c"), expressions=[exp.Literal.number(0)]),
        exp.DataType.build("VARCHAR"),
    )
    select = (
        exp.select(
            exp.alias_(col("entity_id"), "entity_id"),
            exp.alias_(col("cell"), "cell"),
            exp.alias_(cell_text(disputed, "BOOLEAN"), "disputed"),
            exp.alias_(col("reason"), "reason"),
            exp.alias_(lines_count, "lines"),
            exp.alias_(cell_text(exp.column("line_ids", "l"), "VARCHAR"), "line_ids"),
            *[
                exp.alias_(col(name), name)
                for name in ("billed_period", "billed_amount", "buyer_status", "buyer_period")
            ],
            exp.alias_(col("anchor_ts"), "anchor_ts"),
        )
        .from_(exp.to_table(CELLS_TABLE).as_("c"))
        .join(
            lines.subquery("l"),
            on=exp.EQ(this=exp.column("entity_id", "l"), expression=exp.column("entity_id", "c")),
            join_type="left",
        )
    )
    order = [exp.Ordered(this=exp.column("entity_id", "c"), nulls_first=False)]
    columns = _text_table(con, _ENTITY_ROWS, select, order)
    assert tuple(columns) == ENTITY_COLUMNS
    return columns


def covered_periods(recon: Reconciliation) -> list[str]:
    """The periods a pack covers: the invoice's span, from its first billed period to its last.

    That is the span in which reconcile looks for counted entities the vendor never billed. A
    reconciliation may show a period outside it — the anchor period of an entity billed in the
    wrong month — but that entity is covered through its invoice line anyway.
    """
    keys = [p.period for p in recon.periods if p.period != "-"]
    billed = [p.period for p in recon.periods if p.period != "-" and p.vendor_lines > 0]
    if not billed:
        return keys
    return [k for k in keys if billed[0] <= k <= billed[-1]]


def _covered(con: duckdb.DuckDBPyConnection, periods: list[str]) -> None:
    con.register(_PERIODS, pa.table({"period": pa.array(periods, pa.string())}))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_COVERED} AS "  # noqa: S608 - fixed names
        f"SELECT DISTINCT entity_id FROM {VERDICTS_TABLE} "
        f"WHERE period IN (SELECT period FROM {_PERIODS}) "
        "UNION SELECT entity_id FROM _tc_lines"
    )


def _covered_events(as_of: dt.datetime, entities: list[str] | None = None) -> exp.Select:
    """The field texts (``_t_<field>``) of the covered events visible at ``as_of``.

    ``entities`` narrows them to those ids (a proof's leaves), still among the covered ones.
    """
    preds: list[exp.Expr] = [
        exp.LTE(this=exp.column("ts", "e"), expression=_ts_param(as_of)),
        exp.In(
            this=exp.column("entity_id", "e"),
            query=exp.select("entity_id").from_(_COVERED).subquery(),
        ),
    ]
    if entities is not None:
        preds.append(
            exp.In(
                this=exp.column("entity_id", "e"),
                expressions=[exp.Literal.string(x) for x in entities] or [exp.Null()],
            )
        )
    return (
        exp.select(*[exp.alias_(event_field_text(f, "e"), f"_t_{f}") for f in EVENT_FIELDS])
        .from_(exp.to_table(EVENTS_TABLE).as_("e"))
        .where(exp.and_(*preds))
    )


#: Events read from DuckDB per batch when entity leaves are built (about 11 MB of event data
#: at the demo's sizes): large enough that the per-batch work is a few vectorised calls.
LEAF_BATCH_EVENTS: Final[int] = 1 << 17

_LEAF_BATCH: Final[str] = "_ev_leaf_batch"


def _sorted_event_data(as_of: dt.datetime) -> exp.Select:
    """The covered events' data ``d`` with their ``entity_id`` ``k``, sorted by ``k`` then ``d``.

    Sorted so, an entity's events are adjacent rows, in the order its leaf joins them (DuckDB
    compares VARCHAR byte-wise, as the leaf definition sorts), so an Arrow batch of this query
    holds each entity's leaf data as one contiguous run of its data buffer. The ORDER BY is
    the query's own, not a subquery's, so nothing may reorder the rows on their way out.
    """
    data = leaf_data_sql([exp.column(f"_t_{f}") for f in EVENT_FIELDS], null_mark=True)
    key = exp.column("_t_entity_id")
    return (
        exp.select(exp.alias_(key, "k"), exp.alias_(data, "d"))
        .from_(_covered_events(as_of).subquery("x"))
        .order_by(
            exp.Ordered(this=exp.column("k"), nulls_first=False),
            exp.Ordered(this=exp.column("d"), nulls_first=False),
        )
    )


def _joined_by_entity(batch: pa.Table, starts: npt.NDArray[np.int64], end: int) -> pa.Array:
    """The leaf data of the entities whose rows start at ``starts`` (the last ending at row
    ``end``): one binary value per entity, sharing the batch's data buffer (no copy).

    The rows are sorted, so an entity's data is the run of the buffer from its first row's
    offset to the next entity's; the new offsets are the old ones taken at the starts.
    """
    col = batch.column("d")
    data = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    large = pa.types.is_large_string(data.type) or pa.types.is_large_binary(data.type)
    width = np.int64 if large else np.int32
    offsets = np.frombuffer(data.buffers()[1], dtype=width)[
        data.offset : data.offset + len(data) + 1
    ]
    picked = offsets[np.append(starts, end)]
    kind = pa.large_binary() if large else pa.binary()
    return pa.Array.from_buffers(
        kind, len(starts), [None, pa.py_buffer(np.ascontiguousarray(picked)), data.buffers()[2]]
    )


def _entity_leaf_batches(
    con: duckdb.DuckDBPyConnection, as_of: dt.datetime
) -> Iterator[tuple[pa.Array, pa.Array]]:
    """The entity leaves (``truecount.entity-events.v1``) in tree order, batch by batch: each
    batch's 32-byte leaf hashes and entity ids.

    DuckDB sorts the covered events' data by entity and data (:func:`_sorted_event_data`) and
    streams them as Arrow; per batch, the entity boundaries are found by one vectorised
    comparison of adjacent keys, each entity's leaf data is a slice of the batch's buffer
    (:func:`_joined_by_entity`), and DuckDB hashes the batch's leaves in one query on a second
    cursor. This replaces a per-entity ``list``, ``list_sort`` and ``array_to_string`` (a
    hash aggregate holding every event's text, then a sort and a copy per entity) by one
    global sort: a sixth less CPU for the tree at 1M tickets, and more at 10M, where the
    aggregate spilled (docs/benchmark.md, *Evidence at 10M*); the bytes hashed are the same.

    The hashing of a batch runs on a thread while the next batch is read (DuckDB releases the
    interpreter lock while it works), so the two overlap on two cores; one batch is in
    flight at a time, so memory stays at about two batches.
    """
    hasher = con.cursor()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: Future[tuple[pa.Array, pa.Array]] | None = None
            for whole, starts, end in _entity_runs(con, as_of):
                job = pool.submit(_hash_leaves, hasher, whole, starts, end)
                if pending is not None:
                    yield pending.result()
                pending = job
            if pending is not None:
                yield pending.result()
    finally:
        hasher.close()


def _entity_runs(
    con: duckdb.DuckDBPyConnection, as_of: dt.datetime
) -> Iterator[tuple[pa.Table, npt.NDArray[np.int64], int]]:
    """Batches of the sorted event data cut at entity boundaries: each batch, the rows where
    its entities start and the row where the last one ends. An entity whose rows run past the
    end of a batch is carried into the next (a batch of one entity's rows only is held until
    a boundary comes, without copying it)."""
    reader = con.sql(_sorted_event_data(as_of).sql("duckdb")).to_arrow_reader(LEAF_BATCH_EVENTS)
    carry: list[pa.Table] = []
    for record in reader:
        if record.num_rows == 0:
            continue
        batch = pa.Table.from_batches([record])
        keys = batch.column("k")
        first = keys[0]
        if carry and pc.all(pc.equal(keys, first)).as_py() and carry[0].column("k")[0] == first:
            carry.append(batch)  # one entity running on: no boundary to cut at yet
            continue
        whole = pa.concat_tables([*carry, batch]).combine_chunks()
        starts = _entity_starts(whole.column("k"))
        last = int(starts[-1])
        carry = [whole.slice(last)]
        if len(starts) > 1:
            yield whole, starts[:-1], last
    if carry:
        whole = pa.concat_tables(carry).combine_chunks()
        yield whole, _entity_starts(whole.column("k")), whole.num_rows


def _entity_starts(keys: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """The rows where a new entity starts in sorted keys (row 0 always)."""
    arr = keys.combine_chunks()
    n = len(arr)
    change = pc.not_equal(arr.slice(1), arr.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    return np.concatenate([np.zeros(1, dtype=np.int64), np.flatnonzero(change) + 1])


def _hash_leaves(
    hasher: duckdb.DuckDBPyConnection, batch: pa.Table, starts: npt.NDArray[np.int64], end: int
) -> tuple[pa.Array, pa.Array]:
    """RFC 6962 leaf hashes of the entities starting at ``starts``, in order, and their ids."""
    leaves = pa.table({"j": _joined_by_entity(batch, starts, end)})
    hasher.register(_LEAF_BATCH, leaves)
    try:
        # one row out per row in, no join, no aggregate: DuckDB keeps the rows' order
        hashed = hasher.sql(
            f"SELECT unhex(sha256('\\x00'::BLOB || j)) AS h FROM {_LEAF_BATCH}"  # noqa: S608
        ).to_arrow_table()
    finally:
        hasher.unregister(_LEAF_BATCH)
    ids = batch.column("k").combine_chunks().take(pa.array(starts, pa.int64()))
    return hashed.column("h").combine_chunks(), ids


def _entity_event_tree(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.datetime,
    prove: str | None,
    pool: merkle.BlockPool | None = None,
) -> tuple[Tree, int, EntityLeaves | None]:
    """The event tree of pack format 3: a leaf per covered entity that has events.

    Its size is the number of such entities, which the statement records as ``entities``.
    """
    if prove is None:
        builder = merkle.RootBuilder(pool=pool)
        for hashed, _ in _entity_leaf_batches(con, as_of):
            builder.add(_fixed(hashed))
        tree = Tree(builder.root().hex(), builder.size)
        return tree, tree.size, None
    parts = list(_entity_leaf_batches(con, as_of))
    hashes = (
        np.concatenate([_fixed(h) for h, _ in parts])
        if parts
        else np.zeros((0, merkle.HASH_SIZE), dtype=np.uint8)
    )
    size = int(hashes.shape[0])
    ids = pa.chunked_array([i for _, i in parts], pa.string())
    own = [int(i) for i in pc.indices_nonzero(pc.equal(ids, pa.scalar(prove, pa.string())))]
    at = 0 if own else insertion_point(ids, prove)
    wanted = sorted(own + neighbours(own, size, at))
    root, paths = merkle.audit_paths(hashes, wanted)
    names = [str(x) for x in ids.take(pa.array(wanted, pa.int64())).to_pylist()]
    events: dict[str, list[list[str | None]]] = {n: [] for n in names}
    rows = con.execute(_covered_events(as_of, names).sql("duckdb")).fetchall()
    for r in rows:  # the few events of the entities shown, not the data
        events[str(r[1])].append([None if x is None else str(x) for x in r])
    for evs in events.values():
        evs.sort(key=event_leaf_data)
    proof = EntityLeaves(
        prove,
        own,
        wanted,
        paths=[paths[i] for i in wanted],
        events=[events[n] for n in names],
    )
    return Tree(root.hex(), size), size, proof


def _event_tree(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.datetime,
    prove: str | None,
    pool: merkle.BlockPool | None = None,
    leaf_format: str = ENTITY_LEAF_FORMAT,
) -> tuple[Tree, int, EntityLeaves | None]:
    if leaf_format == ENTITY_LEAF_FORMAT:
        return _entity_event_tree(con, as_of, prove, pool)
    if leaf_format != EVENT_LEAF_FORMAT:
        raise InputError(
            Problem(
                f"the pack names the event leaf format {leaf_format!r}, which this version "
                "does not know",
                Location(key="events.leaf_format"),
                f"known: {', '.join(EVENT_LEAF_FORMATS)}",
            )
        )
    table: pa.Table | None = None
    tree: Tree | None = None
    if prove is None:
        tree = stream_root(con, _event_rows(as_of), pool)
    else:
        with_ids = _event_rows(as_of, [exp.column("entity_id", "e")]).sql("duckdb")
        table = con.sql(with_ids).to_arrow_table()
        hashes = hashes_of(table)
    entities_row = con.execute(
        f"SELECT count(*) FROM {_COVERED} c WHERE EXISTS "  # noqa: S608 - fixed names
        f"(SELECT 1 FROM {EVENTS_TABLE} e WHERE e.entity_id = c.entity_id AND e.ts <= ?)",
        [as_of],
    ).fetchall()
    entities = int(entities_row[0][0]) if entities_row else 0
    if tree is not None or prove is None:
        assert tree is not None
        return tree, entities, None
    assert table is not None
    mask = pc.equal(table.column("entity_id"), pa.scalar(prove, pa.string()))
    own = [int(i) for i in pc.indices_nonzero(mask).to_pylist()]
    at = 0 if own else insertion_point(table.column("entity_id"), prove)
    wanted = sorted(own + neighbours(own, int(hashes.shape[0]), at))
    root, paths = merkle.audit_paths(hashes, wanted)
    fields: dict[int, list[str | None]] = {}
    if wanted:
        # the rows at those positions of the leaf order, numbered by the same order
        texts = [exp.alias_(event_field_text(f, "e"), f) for f in EVENT_FIELDS]
        keys = [exp.alias_(exp.column(c, "e"), f"_k_{c}") for c in EVENT_ORDER]
        inner = _event_rows(as_of, [*texts, *keys])
        inner.set("order", None)
        order = [exp.Ordered(this=exp.column(f"_k_{c}"), nulls_first=False) for c in EVENT_ORDER]
        order.append(exp.Ordered(this=exp.column("h"), nulls_first=False))
        idx = exp.Sub(
            this=exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=order)),
            expression=exp.Literal.number(1),
        )
        numbered = exp.select(*[exp.column(f) for f in EVENT_FIELDS], exp.alias_(idx, "idx")).from_(
            inner.subquery("n")
        )
        picked = (
            exp.select("*")
            .from_(numbered.subquery("m"))
            .where(exp.column("idx").isin(*[exp.Literal.number(i) for i in wanted]))
        )
        for r in con.execute(picked.sql("duckdb")).fetchall():
            fields[int(r[-1])] = [None if x is None else str(x) for x in r[:-1]]
    leaves = EntityLeaves(
        prove, own, wanted, [fields[i] for i in wanted], [paths[i] for i in wanted]
    )
    return Tree(root.hex(), int(hashes.shape[0])), entities, leaves


def run(inputs: RunInputs, out: Path, prove: str | None = None) -> RunResult:
    """Count, reconcile and write the result files of a pack into ``out`` (created).

    ``prove`` names an entity whose event leaves, indices and audit paths are returned too.
    """
    definition = parse_definition(inputs.definition_text, inputs.definition_file)
    terms = (
        parse_terms(inputs.terms_text, inputs.terms_file) if inputs.terms_text is not None else None
    )
    source = open_events(inputs.events)
    con = source.con
    with contextlib.ExitStack() as stack:
        stack.callback(con.close)
        if not os.environ.get(MEMORY_ENV):
            con.execute(f"SET memory_limit = '{EVIDENCE_MEMORY_LIMIT}'")  # a constant
        if inputs.threads is not None:
            con.execute(f"SET threads = {int(inputs.threads)}")
        result = count_source(definition, source, inputs.as_of)
        load_invoice_into(con, list(inputs.invoice), table=INVOICE_TABLE)
        recon = reconcile_in(
            con,
            VERDICTS_TABLE,
            INVOICE_TABLE,
            known_table=EVENTS_TABLE,
            definition=definition,
            terms=terms,
            as_of=result.as_of,
            fetch_entities=False,
            cells=True,
        )
        recon = replace(recon, choices=tuple(c.to_json() for c in source.choices))
        periods = covered_periods(recon)
        _covered(con, periods)
        pool = stack.enter_context(merkle.BlockPool(inputs.threads or os.cpu_count() or 1))
        budget = not os.environ.get(MEMORY_ENV)
        if budget:
            con.execute(f"SET memory_limit = '{EVENT_TREE_MEMORY_LIMIT}'")  # a constant
        events, event_entities, leaves = _event_tree(
            con, result.as_of, prove, pool, inputs.event_leaf
        )
        if budget:
            con.execute(f"SET memory_limit = '{EVIDENCE_MEMORY_LIMIT}'")  # a constant
        verdict_cols = _verdict_rows(con)
        entity_cols = _entity_rows(con)
        out.mkdir(parents=True, exist_ok=True)
        (out / QUERY_FILE).write_bytes((result.sql + "\n").encode("utf-8"))
        (out / RECONCILIATION_FILE).write_bytes(canonical_json(recon.to_json()))
        entities = _write_csv(con, _ENTITY_ROWS, entity_cols, out / ENTITIES_FILE, pool)
        if inputs.letter is not None:
            details = letter_details(terms, inputs.letter)
            if any(v is not None for v in details.model_dump().values()):
                write_letter(
                    out,
                    recon,
                    con,
                    definition_text=inputs.definition_text,
                    invoice_files=[p.name for p in inputs.invoice],
                    terms=terms,
                    details=details,
                )
        verdicts = _write_csv(con, _VERDICT_ROWS, verdict_cols, out / VERDICTS_FILE, pool)
        files, basis = _event_files(inputs.events, con)
    invoices = sorted(
        {FileDigest("invoice", p.name, file_sha256(p)) for p in inputs.invoice},
        key=lambda d: (d.name, d.sha256),
    )
    return RunResult(
        definition=definition,
        terms=terms,
        as_of=result.as_of,
        sql=result.sql,
        recon=recon,
        periods=periods,
        events=events,
        event_entities=event_entities,
        verdicts=verdicts,
        entities=entities,
        files=[*files, *invoices],
        files_basis=basis,
        verdict_columns=list(verdict_cols),
        entity_columns=list(entity_cols),
        proof=leaves,
    )


def summary(recon: Reconciliation) -> dict[str, Any]:
    """The headline numbers a statement carries (the full figures are in the JSON file)."""
    t = recon.totals.to_json()
    keep = (
        "vendor_billed", "buyer_counted", "agreed", "vendor_only", "buyer_only", "pending",
        "unknown", "duplicate", "period_mismatch", "vendor_lines", "amount_billed",
        "amount_due", "credit",
    )  # fmt: skip
    return {
        **{k: t[k] for k in keep},
        "currency": recon.currency,
        "beyond_tolerance": recon.beyond_tolerance,
    }
