"""Block leaves (pack format 4): a Merkle leaf per 64 entities' events, per 64 CSV rows.

Why blocks: a pack of format 3 hashed one leaf per entity and one per CSV row, each built as
netstrings of formatted text and hashed by DuckDB's SHA-256 (about 230 MB/s). At 10M tickets
that was 30 million SHA-256 calls over 5 GB of text made for the purpose, most of a pack's
cost. A block leaf covers 64 consecutive entities (events) or 64 consecutive rows (CSV), so
the trees have 64 times fewer leaves and each leaf is one call of hashlib (OpenSSL, over a
GB/s here, and it releases the interpreter lock for inputs this large). What is hashed is
cheaper to make too: an event is a fixed binary record cut from the Arrow columns DuckDB
streams out (no timestamp or double printed as text), and a CSV block is the file's own
bytes, so the files are written once, by DuckDB, and read back once.

The price is in the proofs: a proof of one entity shows the whole block around it (up to 64
entities' events, or 64 CSV rows) instead of the entity's own leaves. The vendor who is shown
a proof made the export these events come from, so the block tells it nothing new.

docs/evidence.md gives the byte layout an auditor re-implements; :func:`event_record` is the
same layout in plain Python, for proofs and tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
import struct
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Final

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from . import merkle
from .records import EVENT_FIELDS, NULL_MARK, TS_FORMAT

EVENT_BLOCK_FORMAT: Final[str] = "truecount.event-block.v1"
CSV_BLOCK_FORMAT: Final[str] = "truecount.csv-block.v1"
#: Entities per event leaf and rows per CSV leaf (fixed by the formats' v1).
BLOCK_ENTITIES: Final[int] = 64
BLOCK_ROWS: Final[int] = 64

#: The text fields of a record, in the order their lengths and bytes follow the header.
RECORD_TEXTS: Final[tuple[str, ...]] = ("event_id", "entity_id", "type", "actor", "attrs")
_HEADER: Final[struct.Struct] = struct.Struct(">BqQq5I")
#: Every NaN is recorded with these bits: DuckDB compares all NaNs as equal, and the text
#: leaves of earlier formats printed them alike, so a payload was never part of an event.
CANONICAL_NAN: Final[int] = 0x7FF8000000000000

#: The order of events in the tree: the keys of docs/evidence.md, nulls last. ``value`` sorts
#: by its sign bit first, so -0.0 and 0.0 (equal as numbers) still sort one way.
BLOCK_ORDER: Final[tuple[str, ...]] = (
    "entity_id", "ts", "seq", "event_id", "type", "actor", "attrs", "signbit(value)", "value",
)  # fmt: skip

#: Events read from DuckDB per Arrow batch.
BATCH_EVENTS: Final[int] = 1 << 17
#: Covered entities per part of the event sort (see :func:`sort_parts`).
SORT_PART_ENTITIES: Final[int] = 5_000_000
#: Covered entities drawn to place the boundaries between the parts.
SORT_SAMPLE: Final[int] = 4096
#: Bytes of a CSV file examined at a time when its rows are found.
CSV_CHUNK: Final[int] = 1 << 24

_EPOCH: Final[dt.datetime] = dt.datetime(1970, 1, 1)
_MICRO: Final[dt.timedelta] = dt.timedelta(microseconds=1)


# ----------------------------------------------------------------------------- records
def _double_bits(value: float) -> int:
    if math.isnan(value):
        return CANONICAL_NAN
    return int(struct.unpack(">Q", struct.pack(">d", value))[0])


def record(
    event_id: str | None,
    entity_id: str | None,
    ts_us: int | None,
    type_: str | None,
    actor: str | None,
    value: float | None,
    attrs: str | None,
    seq: int | None,
) -> bytes:
    """One event's record from typed values (``ts`` in microseconds since the epoch)."""
    fields = (event_id, entity_id, ts_us, type_, actor, value, attrs, seq)
    flags = sum(1 << i for i, x in enumerate(fields) if x is None)
    texts = [(x or "").encode("utf-8") for x in (event_id, entity_id, type_, actor, attrs)]
    bits = 0 if value is None else _double_bits(value)
    head = _HEADER.pack(flags, ts_us or 0, bits, seq or 0, *(len(t) for t in texts))
    return head + b"".join(texts)


def _ts_us(text: str) -> int:
    moment = dt.datetime.strptime(text, TS_FORMAT)
    return (moment - _EPOCH) // _MICRO


def event_record(fields: Sequence[str | None]) -> bytes:
    """An event's record from the eight field texts a proof shows (None for a null).

    ``ts`` reads ``YYYY-MM-DDTHH:MM:SS.ffffff``, ``value`` C's ``%.17g`` (which reads back to
    the same double, ``nan`` and ``inf`` included), ``seq`` a decimal integer. Raise
    ValueError for texts that are not these.
    """
    if len(fields) != len(EVENT_FIELDS):
        raise ValueError(f"an event has {len(EVENT_FIELDS)} fields, not {len(fields)}")
    ev, ent, ts, typ, actor, value, attrs, seq = fields
    if NULL_MARK in (ts, value, seq):
        raise ValueError("a null is shown as null, not as the mark")
    return record(
        ev,
        ent,
        None if ts is None else _ts_us(ts),
        typ,
        actor,
        None if value is None else float(value),
        attrs,
        None if seq is None else int(seq),
    )


def block_data(events: Sequence[Sequence[str | None]]) -> bytes:
    """A block leaf's data from its events' field texts, in leaf order."""
    return b"".join(event_record(e) for e in events)


# ----------------------------------------------------------------------------- event blocks
def sorted_events_sql(where: exp.Expr, events_table: str) -> exp.Select:
    """The covered events as typed columns (``attrs`` as its JSON text), sorted by entity and
    time only: :func:`tie_ordered` puts events that share both in block order.

    Two keys instead of the nine of :data:`BLOCK_ORDER`: DuckDB's sort is most of the cost of
    the event tree, and at 1M tickets the two-key sort costs a sixth less CPU for the same
    rows (docs/benchmark.md), while an entity's events rarely share a microsecond."""
    cols: list[exp.Expr] = []
    for name in EVENT_FIELDS:
        col = exp.column(name, "e")
        if name == "attrs":
            cols.append(exp.alias_(exp.cast(col, exp.DataType.build("VARCHAR")), name))
        else:
            cols.append(exp.alias_(col, name))
    order = [exp.Ordered(this=exp.column(k, "e"), nulls_first=False) for k in BLOCK_ORDER[:2]]
    return (
        exp.select(*cols).from_(exp.to_table(events_table).as_("e")).where(where).order_by(*order)
    )


def sort_parts(
    con: duckdb.DuckDBPyConnection, select: exp.Select, covered_table: str
) -> list[exp.Select]:
    """The sorted events query split into queries over consecutive ranges of entity ids,
    whose results one after the other are the whole result in order.

    Why: at 10M tickets two sorts of twenty million events cost about 5 CPU s less than one
    of forty on the store as ingested, and 10 less on one whose events are scattered
    (docs/benchmark.md, *Round 6*); more parts cost more again, each scanning the events
    once more.

    The boundaries are covered entity ids drawn at random and put in order by DuckDB itself,
    so the ranges follow the same byte order as the sort; where they fall changes only how
    the work is cut, never the rows or their order. ``select`` is :func:`sorted_events_sql`'s
    (the events aliased ``e``, nulls last), and a null id, should one pass its filter, falls
    in the last part, where the one sort would put it.
    """
    total = con.execute(f"SELECT count(*) FROM {covered_table}").fetchall()  # noqa: S608
    parts = -(-int(total[0][0]) // SORT_PART_ENTITIES)
    if parts < 2:
        return [select]
    drawn = con.execute(
        f"SELECT entity_id FROM (SELECT entity_id FROM {covered_table} "  # noqa: S608
        f"USING SAMPLE reservoir({int(SORT_SAMPLE)} ROWS) REPEATABLE (1)) "
        "WHERE entity_id IS NOT NULL GROUP BY entity_id ORDER BY entity_id"
    ).fetchall()
    ids = [str(r[0]) for r in drawn]
    cuts = [ids[len(ids) * k // parts] for k in range(1, parts)] if ids else []
    cuts = [c for i, c in enumerate(cuts) if i == 0 or c != cuts[i - 1]]
    key = exp.column("entity_id", "e")
    edges: list[str | None] = [None, *cuts, None]
    out: list[exp.Select] = []
    for lo, hi in itertools.pairwise(edges):
        part = select.copy()
        if lo is not None:
            above: exp.Expr = exp.GTE(this=key.copy(), expression=exp.Literal.string(lo))
            if hi is None:  # the last part also takes the ids that sort after every value
                above = exp.or_(above, exp.Is(this=key.copy(), expression=exp.Null()))
            part = part.where(above)
        if hi is not None:
            part = part.where(exp.LT(this=key.copy(), expression=exp.Literal.string(hi)))
        out.append(part)
    return out


def _be_bytes(values: npt.NDArray[np.generic], dtype: str, n: int) -> npt.NDArray[np.uint8]:
    return np.ascontiguousarray(values.astype(dtype)).view(np.uint8).reshape(n, -1)


def encode_batch(batch: pa.RecordBatch) -> pa.Array:
    """The records of a batch of events, as one binary array (one value per event).

    Vectorised: the 45-byte headers are one NumPy array, and Arrow joins each header with its
    five texts in one call, so every record lies in one contiguous buffer, in row order.
    """
    n = batch.num_rows
    head = np.zeros((n, _HEADER.size), dtype=np.uint8)
    flags = np.zeros(n, dtype=np.uint8)
    for i, name in enumerate(EVENT_FIELDS):
        col = batch.column(name)
        if col.null_count:
            nulls = col.is_null().to_numpy(zero_copy_only=False).astype(np.uint8)
            flags |= nulls << np.uint8(i)
    head[:, 0] = flags
    ts = batch.column("ts")
    if pa.types.is_timestamp(ts.type) and ts.type.unit != "us":
        ts = ts.cast(pa.timestamp("us"))
    micros = pc.cast(ts, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    head[:, 1:9] = _be_bytes(micros, ">i8", n)
    values = batch.column("value").cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
    bits = values.view(np.uint64).copy()
    bits[np.isnan(values)] = CANONICAL_NAN
    head[:, 9:17] = _be_bytes(bits, ">u8", n)
    seq = batch.column("seq").cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    head[:, 17:25] = _be_bytes(seq, ">i8", n)
    texts: list[pa.Array] = []
    for j, name in enumerate(RECORD_TEXTS):
        col = batch.column(name).cast(pa.binary())
        lengths = pc.binary_length(col).fill_null(0).to_numpy(zero_copy_only=False)
        head[:, 25 + 4 * j : 29 + 4 * j] = _be_bytes(lengths, ">u4", n)
        texts.append(col.fill_null(b"") if col.null_count else col)
    heads = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(_HEADER.size), n, [None, pa.py_buffer(head)]
    ).cast(pa.binary())
    joined: pa.Array = pc.binary_join_element_wise(heads, *texts, b"")
    return joined


def _entity_starts(keys: pa.Array, previous: object) -> npt.NDArray[np.int64]:
    """Rows of a batch where a new entity starts (row 0 unless it continues ``previous``)."""
    n = len(keys)
    change = pc.not_equal(keys.slice(1), keys.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    rest = np.flatnonzero(change).astype(np.int64) + 1
    if previous is not None and keys[0].as_py() == previous:
        return rest
    return np.concatenate([np.zeros(1, dtype=np.int64), rest])


class EventBlocks:
    """Cut a stream of sorted event batches into block leaves and hash them, in order.

    A block is open across batches: the running SHA-256 is fed the slice of each batch's
    record buffer that belongs to it and finished when the block's 64th entity ends (at the
    first row of the next block, or at the end of the stream). Only the batch boundaries and
    the block boundaries are handled in Python, never a row. ``keep_ids`` also keeps every
    entity's id in order (for a proof, which must find one entity's block).
    """

    def __init__(self, keep_ids: bool = False) -> None:
        self.entities = 0
        self.events = 0
        self._hash: hashlib._Hash | None = None
        self._last: object = None
        self._leaves: list[bytes] = []
        self.ids: list[pa.Array] | None = [] if keep_ids else None

    def add(self, batch: pa.RecordBatch) -> merkle.Hashes:
        """Feed one batch; return the leaf hashes of the blocks it completed."""
        n = batch.num_rows
        if n == 0:
            return merkle.as_hashes(b"")
        keys = batch.column("entity_id")
        starts = _entity_starts(keys, self._last)
        if self.ids is not None and len(starts):
            self.ids.append(keys.take(pa.array(starts)))
        numbers = self.entities + np.arange(len(starts), dtype=np.int64)
        cuts = starts[numbers % BLOCK_ENTITIES == 0]
        self.entities += len(starts)
        self.events += n
        self._last = keys[n - 1].as_py()
        data = encode_batch(batch)
        offsets = np.frombuffer(data.buffers()[1], dtype=np.int32)[
            data.offset : data.offset + n + 1
        ]
        buf = memoryview(data.buffers()[2])
        at = offsets[np.concatenate([cuts, [n]])].tolist()
        done: list[bytes] = []
        begin = int(offsets[0])
        for cut, nxt in itertools.pairwise(at):
            if cut > begin and self._hash is not None:
                self._hash.update(buf[begin:cut])
            if self._hash is not None:
                done.append(self._hash.digest())
            self._hash = hashlib.sha256(merkle.LEAF_PREFIX)
            begin = cut
            if nxt > begin:
                self._hash.update(buf[begin:nxt])
            begin = nxt
        if not len(cuts) and self._hash is not None:
            self._hash.update(buf[begin : at[-1]])
        return merkle.as_hashes(b"".join(done))

    def finish(self) -> merkle.Hashes:
        """The hash of the last, open block (none when the stream was empty)."""
        if self._hash is None:
            return merkle.as_hashes(b"")
        last, self._hash = self._hash.digest(), None
        return merkle.as_hashes(last)

    def entity_ids(self) -> pa.Array:
        """Every entity's id, in tree order (with ``keep_ids``)."""
        assert self.ids is not None
        return pa.concat_arrays(self.ids) if self.ids else pa.array([], pa.string())


def _text_key(x: object) -> tuple[object, ...]:
    """A text or integer key of the block order: nulls after every value, texts as bytes."""
    if x is None:
        return (2,)
    return (0, x.encode("utf-8") if isinstance(x, str) else x)


def _value_key(v: object) -> tuple[object, ...]:
    """``signbit(value)`` then ``value``: nulls last in both, NaN after every number."""
    if not isinstance(v, float):
        return (2,)
    negative = math.copysign(1.0, v) < 0
    return (0, negative, (1,) if math.isnan(v) else (0, v))


def _tie_key(row: dict[str, object]) -> tuple[object, ...]:
    """The rest of the block order, for events that share an entity and a time."""
    return (
        *(_text_key(row[k]) for k in ("seq", "event_id", "type", "actor", "attrs")),
        _value_key(row["value"]),
    )


def _same_as_previous(batch: pa.RecordBatch) -> npt.NDArray[np.bool_]:
    """For rows 1.., whether the row shares the entity and time of the one before it."""
    n = batch.num_rows
    same: pa.Array | None = None
    for name in BLOCK_ORDER[:2]:
        col = batch.column(name)
        eq = pc.equal(col.slice(1), col.slice(0, n - 1)).fill_null(False)
        same = eq if same is None else pc.and_(same, eq)
    assert same is not None
    return np.asarray(same.to_numpy(zero_copy_only=False), dtype=np.bool_)


def _in_block_order(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch sorted by entity and time, with each run of events that share both put in the
    rest of the block order. Only the tied rows are read into Python: an entity's events
    rarely share a microsecond."""
    if batch.num_rows < 2:
        return batch
    same = _same_as_previous(batch)
    if not same.any():
        return batch
    order = np.arange(batch.num_rows, dtype=np.int64)
    edges = np.diff(np.concatenate([[0], same.astype(np.int8), [0]]))
    # a run of k tied rows: same[i] for rows start+1 .. start+k-1, i.e. same's indices
    # start .. start+k-2, so the run spans rows first .. last + 1 of these flags
    for first, last in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        lo, hi = int(first), int(last) + 1
        run = batch.slice(lo, hi - lo).to_pylist()
        ranked = sorted(range(len(run)), key=lambda i: _tie_key(run[i]))
        order[lo:hi] = lo + np.asarray(ranked, dtype=np.int64)
    return batch.take(pa.array(order))


def _leading_ties(batch: pa.RecordBatch, last: pa.RecordBatch) -> int:
    """How many rows at the start of ``batch`` share the entity and time of ``last``'s row."""
    same: pa.Array | None = None
    for name in BLOCK_ORDER[:2]:
        eq = pc.equal(batch.column(name), last.column(name)[0]).fill_null(False)
        same = eq if same is None else pc.and_(same, eq)
    assert same is not None
    flags = np.asarray(same.to_numpy(zero_copy_only=False), dtype=np.bool_)
    differ = np.flatnonzero(~flags)
    return int(differ[0]) if len(differ) else batch.num_rows


def _trailing_start(batch: pa.RecordBatch) -> int:
    """The first row of the run at the end of ``batch`` that shares the last row's keys."""
    if batch.num_rows < 2:
        return 0
    breaks = np.flatnonzero(~_same_as_previous(batch))
    return int(breaks[-1]) + 1 if len(breaks) else 0


def tie_ordered(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches sorted by entity and time, re-cut so that the events sharing both are in one
    batch, and put in block order.

    The run at the end of each batch is held back until the next batch shows whether it goes
    on; everything else passes on as a slice of the batch it came in (no copy).
    """
    carry: pa.RecordBatch | None = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if carry is not None:
            k = _leading_ties(batch, carry.slice(carry.num_rows - 1))
            if k:
                joined = pa.Table.from_batches([carry, batch.slice(0, k)]).combine_chunks()
                carry = joined.to_batches()[0]
                batch = batch.slice(k)
            if batch.num_rows == 0:
                continue
            yield _in_block_order(carry)
        t = _trailing_start(batch)
        if t:
            yield _in_block_order(batch.slice(0, t))
        carry = batch.slice(t)
    if carry is not None:
        yield _in_block_order(carry)


def _stream(
    con: duckdb.DuckDBPyConnection, selects: Sequence[exp.Select]
) -> Iterator[pa.RecordBatch]:
    """The batches of the queries one after the other (each runs once the one before ends)."""
    for select in selects:
        yield from con.sql(select.sql("duckdb")).to_arrow_reader(BATCH_EVENTS)


def event_block_leaves(
    con: duckdb.DuckDBPyConnection, selects: Sequence[exp.Select], blocks: EventBlocks
) -> Iterator[merkle.Hashes]:
    """The block leaf hashes of sorted events queries read in turn, as they complete.

    The encoding and hashing of a batch run on a thread while DuckDB produces the next one
    (Arrow, NumPy and hashlib release the interpreter lock on data this large), one batch in
    flight, so memory stays at about two batches.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[merkle.Hashes] | None = None
        for batch in tie_ordered(_stream(con, selects)):
            job = pool.submit(blocks.add, batch)
            if pending is not None:
                yield pending.result()
            pending = job
        if pending is not None:
            yield pending.result()
    yield blocks.finish()


# ----------------------------------------------------------------------------- CSV blocks
def csv_row_starts(path: Path) -> npt.NDArray[np.int64]:
    """Byte offsets of a CSV file's data rows: where each starts, then the file's end.

    A row ends at a line feed outside double quotes; the first row is the header, left out.
    The file is read a chunk at a time; within a chunk the quotes are few (most cells need
    none), so the quote count before each line feed comes from a binary search of the
    quotes' positions, with no per-byte Python.
    """
    ends: list[npt.NDArray[np.int64]] = []
    quotes = 0
    at = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CSV_CHUNK):
            buf = np.frombuffer(chunk, dtype=np.uint8)
            qpos = np.flatnonzero(buf == 0x22)
            feeds = np.flatnonzero(buf == 0x0A)
            before = quotes + np.searchsorted(qpos, feeds)
            ends.append(feeds[before % 2 == 0].astype(np.int64) + at + 1)
            quotes += len(qpos)
            at += len(chunk)
    row_ends = np.concatenate(ends) if ends else np.zeros(0, dtype=np.int64)
    if len(row_ends) == 0:
        return np.array([at], dtype=np.int64)
    starts = row_ends  # the header's end is the first data row's start
    if starts[-1] != at:
        starts = np.append(starts, at)  # a last row without a line feed
    return starts


def csv_block_hashes(path: Path, starts: npt.NDArray[np.int64]) -> merkle.Hashes:
    """The leaf hashes of a CSV file's blocks of ``BLOCK_ROWS`` data rows."""
    rows = len(starts) - 1
    cuts = [*starts[np.arange(0, rows, BLOCK_ROWS)].tolist(), int(starts[-1])]
    out: list[bytes] = []
    with path.open("rb") as fh:
        for a, b in itertools.pairwise(cuts):
            fh.seek(a)
            out.append(hashlib.sha256(merkle.LEAF_PREFIX + fh.read(b - a)).digest())
    return merkle.as_hashes(b"".join(out))


def csv_block_texts(path: Path, starts: npt.NDArray[np.int64], blocks: Sequence[int]) -> list[str]:
    """The text of some blocks of a CSV file (for a proof)."""
    rows = len(starts) - 1
    out: list[str] = []
    with path.open("rb") as fh:
        for k in blocks:
            a = int(starts[k * BLOCK_ROWS])
            b = int(starts[min(rows, (k + 1) * BLOCK_ROWS)])
            fh.seek(a)
            out.append(fh.read(b - a).decode("utf-8"))
    return out
