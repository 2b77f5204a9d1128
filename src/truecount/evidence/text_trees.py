"""The trees of pack formats 1 to 3, whose leaves are text: one per event
(``truecount.event.v1``), one per entity (``truecount.entity-events.v1``), one per CSV row
(``truecount.csv-row.v1``).

New packs use block leaves (:mod:`.blocks`); this module is kept so that every older pack
still verifies and proves: a replay rebuilds the trees its statement names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Final

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from truecount.ingest.canonical import EVENTS_TABLE

from . import merkle
from .covered import (
    COVERED_TABLE,
    EntityLeaves,
    Tree,
    covered_events,
    insertion_point,
    neighbours,
    ts_param,
)
from .records import (
    EVENT_FIELDS,
    EVENT_ORDER,
    event_field_text,
    event_leaf_data,
    leaf_data_sql,
    leaf_hash_sql,
    row_leaf_sql,
)

_LEAF: Final[str] = "_ev_leaf"


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
        exp.LTE(this=exp.column("ts", "e"), expression=ts_param(as_of)),
        exp.In(
            this=exp.column("entity_id", "e"),
            query=exp.select("entity_id").from_(COVERED_TABLE).subquery(),
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


def text_table(
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


def write_csv(
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
        .from_(covered_events(as_of).subquery("x"))
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
    rows = con.execute(covered_events(as_of, names).sql("duckdb")).fetchall()
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


def event_tree(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.datetime,
    prove: str | None,
    pool: merkle.BlockPool | None,
    per_entity: bool,
) -> tuple[Tree, int, EntityLeaves | None]:
    """The event tree of pack format 3 (``per_entity``) or of formats 1 and 2 (a leaf per
    event); with ``prove``, the entity's leaves and their neighbours."""
    if per_entity:
        return _entity_event_tree(con, as_of, prove, pool)
    table: pa.Table | None = None
    tree: Tree | None = None
    if prove is None:
        tree = stream_root(con, _event_rows(as_of), pool)
    else:
        with_ids = _event_rows(as_of, [exp.column("entity_id", "e")]).sql("duckdb")
        table = con.sql(with_ids).to_arrow_table()
        hashes = hashes_of(table)
    entities_row = con.execute(
        f"SELECT count(*) FROM {COVERED_TABLE} c WHERE EXISTS "  # noqa: S608 - fixed names
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
