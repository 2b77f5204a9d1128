"""The meter: journal, store and transparency log kept in step by two threads.

Requests hand their checked events to :meth:`Meter.submit` and wait. The *writer* takes every
batch waiting, drops event ids it has seen (a retry is acknowledged, not stored twice),
appends the rest to the journal and fsyncs once (group commit), and answers each request with
the log index of each of its events: the index is the event's position in the journal, fixed
from that moment. The *loader* then takes everything journaled since its last turn, loads it
into the workspace store in one transaction and appends the leaves to the log; reads of the
log wait for it to catch up (:meth:`Meter.settle`), so a proof is never asked of a leaf the
log does not hold yet. Keeping DuckDB's commit off the answering path is what lets one fsync
answer many requests.

A ``kill -9`` at any point loses nothing that was answered: on the next start the journal is
replayed into the store, skipping ids the store already has, and the log is rebuilt from the
journal, so the store, the log and the journal agree again before the first request.

Leaves are the RFC 6962 hashes of each event's ``truecount.event.v1`` encoding
(:mod:`truecount.evidence.records`), computed by DuckDB from the typed columns as stored, so
an evidence pack's event leaves and the live log's agree for the same event.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlglot import exp

from truecount.evidence import merkle
from truecount.evidence.livelog import (
    JOURNAL_NAME,
    JOURNAL_TYPES,
    LIVE_DIR,
    journal_source,
    typed_rows,
    with_leaves,
)
from truecount.ingest.canonical import EVENTS_TABLE
from truecount.workspace import Workspace, ensure_schema

from .events import TS_TEXT, Event
from .journal import Journal
from .log import TransparencyLog, TreeHead, sign_tree_head

__all__ = ["JOURNAL_NAME", "LIVE_DIR", "Meter", "Receipt"]

HEADS_NAME: Final[str] = "heads.jsonl"
#: Requests answered by one fsync at most, and events loaded by one transaction at most.
_MAX_GROUP: Final[int] = 256
_MAX_LOAD: Final[int] = 50_000
#: Seconds between two loads into the store at most, when no reader is waiting for one.
LOAD_EVERY: Final[float] = 0.2
#: DuckDB threads the loader uses while serving.
LOAD_THREADS: Final[int] = 1
#: Seconds a read waits for the loader before giving up.
SETTLE_TIMEOUT: Final[float] = 60.0
#: One encoder for every journal line, the same as ``json.dumps(..., ensure_ascii=False)``
#: writes: that call builds a new encoder for each event when an option is given, which was
#: a third of a request's time on the event loop.
_LINE_ENCODER: Final = json.JSONEncoder(ensure_ascii=False)


def _struct_type() -> exp.Literal:
    return exp.Literal.string(json.dumps([JOURNAL_TYPES]))


def _batch_source() -> exp.Expr:
    """Journal-form rows from one JSON array passed as a parameter."""
    unnested = exp.func(
        "unnest",
        exp.func("json_transform", exp.Placeholder(), _struct_type()),
    )
    inner = exp.select(exp.alias_(unnested, "e")).subquery()
    return exp.select(
        *[exp.alias_(exp.Dot.build([exp.column("e"), exp.to_identifier(n)]), n)
          for n in JOURNAL_TYPES]
    ).from_(inner).subquery("raw")  # fmt: skip


@functools.cache
def _batch_sql() -> str:
    """The load's statement, generated once: SQLGlot takes tens of milliseconds of Python
    (holding the GIL the event loop and the writer need) to write it."""
    rows = with_leaves(typed_rows(_batch_source()))
    return f"CREATE OR REPLACE TEMP TABLE __live_batch AS {rows.sql('duckdb')}"


@dataclass(frozen=True)
class Receipt:
    """What a request's events became: leaf indices of new events, ids already held."""

    accepted: list[tuple[str, int]]
    duplicates: list[str]
    tree_size: int


@dataclass
class _Pending:
    """A request's events: their ids and journal lines, made by the request's own thread so
    the writer's turn is only the duplicate check, one write and one fsync."""

    ids: list[str]
    lines: list[str]
    done: Future[Receipt] = field(default_factory=Future)


class Meter:
    """The live meter over one workspace. :meth:`start` before :meth:`submit`."""

    def __init__(
        self, workspace: Workspace, key: Ed25519PrivateKey, load_every: float = LOAD_EVERY
    ) -> None:
        self.workspace = workspace
        self.load_every = load_every
        self.load_threads = LOAD_THREADS
        self._hurry = threading.Event()
        self.key = key
        self.folder = workspace.root / LIVE_DIR
        self.log = TransparencyLog()
        self._index: dict[str, int] = {}
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._loads: queue.Queue[list[str] | None] = queue.Queue()
        self._loaded = threading.Condition()
        self._threads: list[threading.Thread] = []
        #: Events journaled (and answered) so far: the log's size once the loader catches up.
        self._acked = 0
        #: (events, bytes) of the journal answered so far, set together: a consistent prefix.
        self._mark: tuple[int, int] = (0, 0)
        #: Why the loader stopped, if it did: the meter then refuses writes until restarted.
        self.broken: BaseException | None = None
        self._journal: Journal | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._heads_lock = threading.Lock()
        self.last_head: TreeHead | None = None
        self.replayed = 0

    # ------------------------------------------------------------------------ start / stop
    def start(self) -> None:
        """Cut a torn journal tail, replay the journal into the store, rebuild the log."""
        self.folder.mkdir(parents=True, exist_ok=True)
        journal_path = self.folder / JOURNAL_NAME
        self._journal = Journal.open(journal_path)
        con = self.workspace.connect()
        ensure_schema(con)
        self._con = con
        if journal_path.stat().st_size:
            self._replay(journal_path)
        self._acked = self.log.size
        self._mark = (self._acked, self._journal.size())
        # The replay above may use every core; the loads that follow use one, so that a load
        # never takes the core the answering path (event loop, writer) needs.
        con.execute(f"SET threads = {int(self.load_threads)}")
        _batch_sql()  # made now, not in the first load while the first requests wait
        self.last_head = self._read_last_head()
        self._threads = [
            threading.Thread(target=self._run, name="meter-writer", daemon=True),
            threading.Thread(target=self._load, name="meter-loader", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _replay(self, path: Path) -> None:
        assert self._con is not None
        con = self._con
        rows = with_leaves(typed_rows(journal_source(path)))
        con.execute(f"CREATE OR REPLACE TEMP TABLE __live_journal AS {rows.sql('duckdb')}")
        got = con.execute(
            "SELECT list(event_id ORDER BY rowid), list(__leaf ORDER BY rowid) FROM __live_journal"
        ).fetchone()
        ids: list[str] = list(got[0] or []) if got else []
        leaves = b"".join(got[1] or []) if got else b""
        self._index = dict(zip(ids, range(len(ids)), strict=True))
        if len(self._index) != len(ids):
            raise RuntimeError(f"the journal {path} repeats an event id")
        self.log = TransparencyLog(merkle.as_hashes(leaves))
        cols = ", ".join(JOURNAL_TYPES)
        before = self._store_count()
        con.execute(
            f"INSERT INTO {EVENTS_TABLE} ({cols}) SELECT {cols} FROM __live_journal j "  # noqa: S608
            f"WHERE NOT EXISTS (SELECT 1 FROM {EVENTS_TABLE} e WHERE e.event_id = j.event_id)"
        )
        self.replayed = self._store_count() - before
        con.execute("DROP TABLE __live_journal")

    def _store_count(self) -> int:
        assert self._con is not None
        row = self._con.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()  # noqa: S608
        return int(row[0]) if row else 0

    def stop(self) -> None:
        """Finish what was answered (written, then loaded), then close the files."""
        if self._threads:
            writer, loader = self._threads
            self._queue.put(None)
            writer.join()
            self._loads.put(None)
            self._hurry.set()
            loader.join()
            self._threads = []
        if self._journal is not None:
            self._journal.close()
        if self._con is not None:
            self._con.close()
            self._con = None

    # ------------------------------------------------------------------------------ intake
    def submit(self, events: list[Event]) -> Receipt:
        """Hand events to the writer and wait until they are durable (fsync'd)."""
        return self.submit_future(events).result()

    def submit_future(self, events: list[Event]) -> Future[Receipt]:
        """Hand events to the writer; the future is done once they are durable (fsync'd).

        The caller need not block a thread on it: the web app awaits it on its event loop, so
        an answer takes one thread hand-off each way (to the writer and back)."""
        if self.broken is not None:
            raise RuntimeError(f"the meter stopped loading the store: {self.broken}")
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None).strftime(TS_TEXT)
        encode = _LINE_ENCODER.encode
        lines = [
            encode({k: now if k == "recorded_at" else e.get(k) for k in JOURNAL_TYPES})
            for e in events
        ]
        pending = _Pending([e["event_id"] for e in events], lines)
        self._queue.put(pending)
        return pending.done

    def journal_prefix(self) -> tuple[Path, int, int]:
        """The journal file, and how many events and bytes of it are durable and answered:
        a reader may copy that many bytes while the writer appends after them."""
        assert self._journal is not None
        events, size = self._mark
        return self._journal.path, events, size

    def stored_events(self, entity_ids: Sequence[str]) -> pa.Table:
        """The store's events of these entities (every column), once the log has caught up:
        the context an adapter reads, as an ingest into the workspace would."""
        self.settle()
        assert self._con is not None
        cursor = self._con.cursor()  # its own cursor: the loader uses the connection
        try:
            return cursor.sql(
                f"SELECT * FROM {EVENTS_TABLE} WHERE list_contains($ids, entity_id)",  # noqa: S608
                params={"ids": list(entity_ids)},
            ).to_arrow_table()
        finally:
            cursor.close()

    @property
    def acked(self) -> int:
        """Events answered so far (journaled): the log's size once the loader catches up."""
        return self._acked

    def index_of(self, event_id: str) -> int | None:
        return self._index.get(event_id)

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> int:
        """Wait until every event answered so far is in the log; the log's size."""
        target = self._acked
        if self.log.size < target:
            self._hurry.set()
        with self._loaded:
            done = self._loaded.wait_for(
                lambda: self.log.size >= target or self.broken is not None, timeout
            )
        if self.broken is not None:
            raise RuntimeError(f"the meter stopped loading the store: {self.broken}")
        if not done:
            raise TimeoutError("the log is still catching up; ask again")
        return self.log.size

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < _MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                group.append(more)
            try:
                self._write(group)
            except BaseException as exc:  # answer every waiting request, then keep serving
                for pending in group:
                    if not pending.done.done():
                        pending.done.set_exception(exc)

    def _write(self, group: Sequence[_Pending]) -> None:
        assert self._journal is not None
        fresh: list[str] = []
        seen: set[str] = set()
        plans: list[tuple[_Pending, list[str], list[str]]] = []
        for pending in group:
            new_ids: list[str] = []
            dup_ids: list[str] = []
            for eid, line in zip(pending.ids, pending.lines, strict=True):
                if eid in self._index or eid in seen:
                    dup_ids.append(eid)
                    continue
                seen.add(eid)
                new_ids.append(eid)
                fresh.append(line)
            plans.append((pending, new_ids, dup_ids))
        if fresh:
            data = ("\n".join(fresh) + "\n").encode("utf-8")
            self._journal.append(data)
            start = self._acked
            for _pending, new_ids, _dups in plans:
                for eid in new_ids:
                    self._index[eid] = start
                    start += 1
            self._loads.put(fresh)  # before _acked moves: a reader's target is then queued
            self._acked = start
            self._mark = (self._acked, self._mark[1] + len(data))
        size = self._acked
        for pending, new_ids, dup_ids in plans:
            pending.done.set_result(Receipt([(i, self._index[i]) for i in new_ids], dup_ids, size))

    def _load(self) -> None:
        stopping = False
        last = time.monotonic()
        while not stopping:
            first = self._loads.get()
            if first is None:
                return
            # Load at most every ``load_every`` seconds unless a reader waits: each load is a
            # DuckDB commit (a WAL fsync on the journal's disk), so fewer, larger loads keep
            # the journal's fsyncs, which every answer waits for, short.
            pause = self.load_every - (time.monotonic() - last)
            if pause > 0:
                self._hurry.wait(pause)
            self._hurry.clear()
            last = time.monotonic()
            lines = list(first)
            while len(lines) < _MAX_LOAD:
                try:
                    more = self._loads.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                lines.extend(more)
            try:
                leaves = self._store(lines)
            except BaseException as exc:  # the journal has them: a restart loads them
                with self._loaded:
                    self.broken = exc
                    self._loaded.notify_all()
                return
            with self._loaded:
                self.log.append(leaves)
                self._loaded.notify_all()

    def _store(self, lines: list[str]) -> merkle.Hashes:
        """Insert journal-form rows into the store in one transaction; their leaf hashes."""
        assert self._con is not None
        con = self._con
        payload = "[" + ",".join(lines) + "]"
        cols = ", ".join(JOURNAL_TYPES)
        con.execute("BEGIN")
        try:
            con.execute(_batch_sql(), [payload])
            con.execute(f"INSERT INTO {EVENTS_TABLE} ({cols}) SELECT {cols} FROM __live_batch")  # noqa: S608
            leaf = con.execute("SELECT list(__leaf ORDER BY rowid) FROM __live_batch").fetchone()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return merkle.as_hashes(b"".join(leaf[0] or []) if leaf else b"")

    # -------------------------------------------------------------------------- tree heads
    def sign_head(self) -> TreeHead:
        """A signed head of the log as it is now; kept in ``live/heads.jsonl`` when new."""
        with self._heads_lock:
            size = self.settle()
            if self.last_head is not None and self.last_head.size == size:
                return self.last_head
            head = sign_tree_head(size, self.log.root(size), int(time.time() * 1000), self.key)
            with (self.folder / HEADS_NAME).open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(head.to_json(), sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self.last_head = head
            return head

    def _read_last_head(self) -> TreeHead | None:
        path = self.folder / HEADS_NAME
        if not path.exists():
            return None
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            head = TreeHead.from_json(json.loads(lines[-1])) if lines else None
        except ValueError:  # a torn last line: the next read signs a fresh head
            return None
        if head is None or head.size != self.log.size or head.root != self.log.root():
            return None
        return head
