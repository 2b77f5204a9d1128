"""An evidence pack that cites a signed tree head of the live meter's log (docs/meter.md).

Why: a pack proves what was counted from some events; the live meter's log proves which
events the meter received, in order, and signs that. Citing a tree head joins the two, so a
buyer's monthly pack shows that the events it was computed from are *exactly* the first
``N`` leaves of the log both parties watched grow: none dropped, none added, none changed.

How. ``truecount evidence ... --tree-head HEAD.json`` reads the meter's journal (the log in
leaf order), checks that its first ``N`` events give the head's root and that the head is
signed by the meter's key, checks that the data the pack counts holds exactly those events,
and writes ``livelog.csv`` (leaf index, event id, leaf hash) into the pack. The statement
records the head and the meter's public key under ``live_log``; ``livelog.csv`` is a
subject like every file of the pack. ``verify`` then recomputes the RFC 6962 root of the
leaves in ``livelog.csv`` and compares it with the signed root, checks the head's signature,
and recomputes every event's leaf from the data it is given (the ``truecount.event.v1``
encoding the log uses) to match it, by event id, against the leaves of the log.

The tree head's format (the RFC 6962 §3.5 ``TreeHeadSignature`` layout under Ed25519) and
the journal's typed columns live here, not in :mod:`truecount.live`, so that evidence never
imports the meter's web stack; the meter imports them from here.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlglot import exp

from truecount.container import literal_path
from truecount.engine.source import EventsInput, open_events
from truecount.errors import InputError, Location, Problem
from truecount.ingest.canonical import EVENTS_TABLE
from truecount.workspace import configure

from . import merkle
from .records import EVENT_LEAF_FORMAT, event_leaf_sql
from .sign import key_id, load_public_key, raw_public

#: What a tree head says it is a head of (JSON ``log``), so heads of other logs are refused.
LOG_FORMAT: Final[str] = "truecount.live.v1"
#: The pack file holding the cited log prefix: one row per leaf, in leaf order.
LIVELOG_FILE: Final[str] = "livelog.csv"
LIVELOG_COLUMNS: Final[tuple[str, ...]] = ("leaf_index", "event_id", "leaf_hash")
#: RFC 6962 §3.5: ``Version v1`` and ``SignatureType tree_hash``.
_SIGNED_LAYOUT: Final[str] = ">BBQQ32s"
_V1: Final[int] = 0
_TREE_HASH: Final[int] = 1

#: The journal line's fields and the types DuckDB reads them as, in store column order.
JOURNAL_TYPES: Final[dict[str, str]] = {
    "event_id": "VARCHAR",
    "entity_id": "VARCHAR",
    "ts": "VARCHAR",
    "type": "VARCHAR",
    "actor": "VARCHAR",
    "value": "DOUBLE",
    "attrs": "VARCHAR",
    "source": "VARCHAR",
    "recorded_at": "VARCHAR",
    "seq": "BIGINT",
}
_CASTS: Final[dict[str, str]] = {"ts": "TIMESTAMP", "recorded_at": "TIMESTAMP", "attrs": "JSON"}

#: Where the meter keeps its files in a workspace (the journal is the log in leaf order).
LIVE_DIR: Final[str] = "live"
JOURNAL_NAME: Final[str] = "journal.jsonl"
PUBLIC_KEY_NAME: Final[str] = "meter.key.pub"

_LOG: Final[str] = "_ll_log"
_DATA: Final[str] = "_ll_data"


# ------------------------------------------------------------------------------ tree heads
@dataclass(frozen=True)
class TreeHead:
    """A signed tree head: the log had ``size`` leaves with ``root`` at ``timestamp`` (ms)."""

    size: int
    root: bytes
    timestamp: int
    key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        return tree_head_bytes(self.size, self.root, self.timestamp)

    def to_json(self) -> dict[str, Any]:
        return {
            "log": LOG_FORMAT,
            "tree_size": self.size,
            "root_hash": base64.b64encode(self.root).decode("ascii"),
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Any) -> TreeHead:
        """Parse a tree head; ValueError naming the field that is missing or malformed."""
        if not isinstance(data, dict):
            raise ValueError("a tree head is a JSON object")
        if data.get("log") != LOG_FORMAT:
            raise ValueError(f"'log' must be {LOG_FORMAT!r}")
        size, stamp = data.get("tree_size"), data.get("timestamp")
        for name, value in (("tree_size", size), ("timestamp", stamp)):
            if type(value) is not int or value < 0:
                raise ValueError(f"'{name}' must be a non-negative integer")
        assert isinstance(size, int) and isinstance(stamp, int)
        root = _b64(data, "root_hash")
        if len(root) != merkle.HASH_SIZE:
            raise ValueError("'root_hash' must be 32 bytes in base64")
        kid = data.get("key_id")
        if not isinstance(kid, str):
            raise ValueError("'key_id' must be a string")
        return cls(size, root, stamp, kid, _b64(data, "signature"))


def _b64(data: dict[str, Any], name: str) -> bytes:
    value = data.get(name)
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"'{name}' is not base64") from None


def tree_head_bytes(size: int, root: bytes, timestamp: int) -> bytes:
    """RFC 6962 §3.5 TreeHeadSignature: version, type, timestamp, size, root (42 bytes)."""
    return struct.pack(_SIGNED_LAYOUT, _V1, _TREE_HASH, timestamp, size, root)


def sign_tree_head(size: int, root: bytes, timestamp: int, key: Ed25519PrivateKey) -> TreeHead:
    signature = key.sign(tree_head_bytes(size, root, timestamp))
    return TreeHead(size, root, timestamp, key_id(key.public_key()), signature)


def verify_tree_head(head: TreeHead, key: Ed25519PublicKey) -> bool:
    """True when ``key`` signed exactly this size, root and time."""
    try:
        key.verify(head.signature, head.signed_bytes())
    except InvalidSignature:
        return False
    return True


def read_tree_head(path: Path) -> TreeHead:
    """A saved tree head (the JSON of ``GET /log/head``); InputError naming the file."""
    try:
        return TreeHead.from_json(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise InputError(
            Problem(f"cannot read the tree head: {exc.strerror}", Location(file=str(path)))
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            Problem(
                f"not a tree head of the live meter ({exc})",
                Location(file=str(path)),
                "save one with: curl -H 'Authorization: Bearer TOKEN' METER/log/head",
            )
        ) from None


# ------------------------------------------------------------------------------- journal
def typed_rows(source: exp.Expr) -> exp.Select:
    """The canonical columns from journal-form rows (the one place they are typed)."""
    cols = [
        exp.alias_(exp.cast(exp.column(n), exp.DataType.build(_CASTS[n])), n)
        if n in _CASTS
        else exp.column(n)
        for n in JOURNAL_TYPES
    ]
    return exp.select(*cols).from_(source)


def journal_source(path: Path) -> exp.Expr:
    """``read_json`` of a journal file with its columns typed as :data:`JOURNAL_TYPES`."""
    columns = exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.Literal.string(n), expression=exp.Literal.string(t))
            for n, t in JOURNAL_TYPES.items()
        ]
    )
    return exp.Table(
        this=exp.func(
            "read_json",
            exp.Literal.string(str(path)),
            exp.PropertyEQ(
                this=exp.var("format"), expression=exp.Literal.string("newline_delimited")
            ),
            exp.PropertyEQ(this=exp.var("columns"), expression=columns),
        ),
        alias=exp.TableAlias(this=exp.to_identifier("raw")),
    )


def with_leaves(typed: exp.Select) -> exp.Select:
    """Typed rows with their log leaf hash ``__leaf`` (the ``truecount.event.v1`` encoding)."""
    return exp.select("*", exp.alias_(event_leaf_sql("t"), "__leaf")).from_(typed.subquery("t"))


def load_journal(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> int:
    """Read a journal into a temp table (``leaf_index`` from 0 in line order, the typed
    columns and ``__leaf``); the number of events. InputError naming the file."""
    rows = with_leaves(typed_rows(journal_source(literal_path(path))))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_raw AS {rows.sql('duckdb')}")
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS "  # noqa: S608 - fixed names
            f"SELECT rowid AS leaf_index, * FROM {table}_raw ORDER BY rowid"
        )
        con.execute(f"DROP TABLE {table}_raw")
    except duckdb.Error as exc:
        raise InputError(
            Problem(
                f"not a journal of the live meter ({str(exc).splitlines()[0]})",
                Location(file=str(path)),
                "give WS/live/journal.jsonl of the meter's workspace",
            )
        ) from None
    got = con.execute(f"SELECT count(*) FROM {table}").fetchall()  # noqa: S608
    return int(got[0][0])


def query_hashes(con: duckdb.DuckDBPyConnection, sql: str) -> merkle.Hashes:
    """A query's single BLOB column of 32-byte hashes as an (n, 32) array (no Python loop)."""
    col = con.sql(sql).to_arrow_table().column(0).combine_chunks()
    if len(col) == 0:
        return np.zeros((0, merkle.HASH_SIZE), dtype=np.uint8)
    fixed = col.cast(pa.binary(merkle.HASH_SIZE))
    data = np.frombuffer(fixed.buffers()[1], dtype=np.uint8)
    start = fixed.offset * merkle.HASH_SIZE
    return data[start : start + len(fixed) * merkle.HASH_SIZE].reshape(-1, merkle.HASH_SIZE)


def data_leaves(events: EventsInput) -> pa.Table:
    """Every event of the data with its ``truecount.event.v1`` leaf: (event_id, leaf)."""
    source = open_events(events)
    try:
        select = exp.select(
            exp.alias_(exp.column("event_id", "e"), "event_id"),
            exp.alias_(event_leaf_sql("e"), "leaf"),
        ).from_(exp.to_table(EVENTS_TABLE).as_("e"))
        return source.con.sql(select.sql("duckdb")).to_arrow_table()
    finally:
        source.con.close()


@dataclass(frozen=True)
class Difference:
    """How the data's events differ from the log's first ``size`` leaves, by event id."""

    size: int
    data_events: int
    dropped: int
    added: int
    changed: int
    repeated: int
    first_dropped: str | None
    first_added: str | None
    first_changed: str | None

    @property
    def same(self) -> bool:
        return not (self.dropped or self.added or self.changed or self.repeated)

    def reason(self) -> str:
        """One line: what differs, with the first event id of each kind."""
        parts = []
        if self.dropped:
            parts.append(
                f"{self.dropped:,} event(s) of the log are not in the data "
                f"(first: {self.first_dropped})"
            )
        if self.added:
            parts.append(
                f"{self.added:,} event(s) of the data are not in the log's first "
                f"{self.size:,} leaves (first: {self.first_added})"
            )
        if self.changed:
            parts.append(
                f"{self.changed:,} event(s) differ from their leaf in the log "
                f"(first: {self.first_changed})"
            )
        if self.repeated:
            parts.append(f"{self.repeated:,} event id(s) appear more than once in the data")
        return "; ".join(parts) if parts else f"the data is exactly the log's {self.size:,} leaves"


def compare_prefix(con: duckdb.DuckDBPyConnection, log: str, size: int, data: str) -> Difference:
    """Compare the first ``size`` rows of ``log`` (leaf_index, event_id, leaf) with ``data``
    (event_id, leaf), joined on event id in DuckDB."""
    sql = f"""
        WITH l AS (SELECT leaf_index, event_id, leaf FROM {log} WHERE leaf_index < {int(size)}),
        d AS (SELECT event_id, any_value(leaf) AS leaf, count(*) AS n FROM {data}
              GROUP BY event_id),
        j AS (SELECT l.leaf_index, coalesce(l.event_id, d.event_id) AS event_id,
                     l.leaf AS log_leaf, d.leaf AS data_leaf, d.n
              FROM l FULL OUTER JOIN d ON l.event_id = d.event_id)
        SELECT (SELECT count(*) FROM {data}),
               count(*) FILTER (WHERE data_leaf IS NULL),
               count(*) FILTER (WHERE log_leaf IS NULL),
               count(*) FILTER (WHERE log_leaf <> data_leaf),
               count(*) FILTER (WHERE n > 1),
               arg_min(event_id, leaf_index) FILTER (WHERE data_leaf IS NULL),
               min(event_id) FILTER (WHERE log_leaf IS NULL),
               arg_min(event_id, leaf_index) FILTER (WHERE log_leaf <> data_leaf)
        FROM j
    """  # noqa: S608 - fixed table names and an integer
    row = con.execute(sql).fetchall()[0]
    return Difference(
        size, int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]),
        row[5], row[6], row[7],
    )  # fmt: skip


# --------------------------------------------------------------------------- citing a head
def _meter_files(
    events: EventsInput, journal: Path | None, meter_key: str | Path | None
) -> tuple[Path, Ed25519PublicKey]:
    """The journal and the meter's public key: given, or the meter's files in the workspace."""
    from truecount.workspace import Workspace

    folder = events.root / LIVE_DIR if isinstance(events, Workspace) else None
    if journal is None:
        if folder is None:
            raise InputError(
                Problem(
                    "--tree-head with --events needs --journal FILE (the meter's journal)",
                    Location(file="--journal"),
                )
            )
        journal = folder / JOURNAL_NAME
    if meter_key is None:
        if folder is None or not (folder / PUBLIC_KEY_NAME).is_file():
            raise InputError(
                Problem(
                    "--tree-head needs the meter's public key: give --meter-key KEY",
                    Location(file="--meter-key"),
                )
            )
        meter_key = folder / PUBLIC_KEY_NAME
    return journal, load_public_key(meter_key)


def cite_head(
    out: Path,
    head_path: Path,
    journal_path: Path | None,
    events: EventsInput,
    meter_key_spec: str | Path | None,
) -> dict[str, Any]:
    """Check the data against the head and the journal; write ``livelog.csv`` into ``out``;
    return the statement's ``live_log`` entry. InputError (one line) when anything differs.

    Without ``journal_path`` and ``meter_key_spec``, a workspace's own meter files are used
    (``WS/live/journal.jsonl`` and ``WS/live/meter.key.pub``)."""
    journal, meter_key = _meter_files(events, journal_path, meter_key_spec)
    head = read_tree_head(head_path)
    where = Location(file=str(head_path))
    if not verify_tree_head(head, meter_key):
        raise InputError(
            Problem(
                f"the tree head is not signed by the meter's key {key_id(meter_key)[:16]}…",
                where,
                "give the meter's public key with --meter-key (WS/live/meter.key.pub)",
            )
        )
    with contextlib.closing(duckdb.connect()) as con:
        configure(con)
        n = load_journal(con, journal, _LOG)
        if n < head.size:
            raise InputError(
                Problem(
                    f"the journal holds {n:,} events, fewer than the head's {head.size:,}",
                    Location(file=str(journal)),
                    "give the journal of the meter that signed the head",
                )
            )
        leaves = query_hashes(
            con,
            f"SELECT __leaf FROM {_LOG} WHERE leaf_index < {head.size} ORDER BY leaf_index",  # noqa: S608
        )
        if merkle.root(leaves) != head.root:
            raise InputError(
                Problem(
                    f"the journal's first {head.size:,} events do not give the head's root",
                    Location(file=str(journal)),
                    "this journal is not the log the head was signed for",
                )
            )
        con.register(_DATA, data_leaves(events))
        con.execute(f"CREATE OR REPLACE TEMP VIEW {_LOG}_l AS SELECT leaf_index, event_id, "  # noqa: S608
                    f"__leaf AS leaf FROM {_LOG}")  # fmt: skip
        diff = compare_prefix(con, f"{_LOG}_l", head.size, _DATA)
        if not diff.same:
            raise InputError(
                Problem(
                    f"the data is not the log's first {head.size:,} events: {diff.reason()}",
                    where,
                    "count the events the meter logged, and cite a head taken after the last",
                )
            )
        target = out / LIVELOG_FILE
        con.sql(
            f"SELECT leaf_index, event_id, lower(hex(__leaf)) AS leaf_hash FROM {_LOG} "  # noqa: S608
            f"WHERE leaf_index < {head.size} ORDER BY leaf_index"
        ).write_csv(str(target), header=True)
    return {
        "file": LIVELOG_FILE,
        "leaf_format": EVENT_LEAF_FORMAT,
        "tree_head": head.to_json(),
        "meter_key": base64.b64encode(raw_public(meter_key)).decode("ascii"),
        "meter_key_id": key_id(meter_key),
    }


# ------------------------------------------------------------------------------ verifying
#: A check's outcome: passed (True), failed (False) or a note (None).
Outcome = tuple[str, bool | None, str]


def _read_livelog(con: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """Load ``livelog.csv`` into a temp table; None, or why it cannot be read."""
    types = ("BIGINT", "VARCHAR", "VARCHAR")
    columns = ", ".join(f"'{c}': '{t}'" for c, t in zip(LIVELOG_COLUMNS, types, strict=True))
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_LOG} AS SELECT leaf_index, event_id, "  # noqa: S608
            "CASE WHEN regexp_full_match(leaf_hash, '[0-9a-f]{64}') THEN unhex(leaf_hash) END "
            f"AS leaf FROM read_csv(?, header = true, delim = ',', quote = '\"', "
            f"escape = '\"', columns = {{{columns}}})",
            [str(literal_path(path))],
        )
    except duckdb.Error as exc:
        return f"{LIVELOG_FILE} cannot be read ({str(exc).splitlines()[0]})"
    return None


def check_citation(
    folder: Path,
    pred: dict[str, Any],
    events: EventsInput,
    meter_key: Ed25519PublicKey | None = None,
) -> list[Outcome]:
    """The checks of a pack that cites a tree head; none for a pack that cites none."""
    claim = pred.get("live_log")
    if claim is None:
        return []
    if not isinstance(claim, dict) or claim.get("file") != LIVELOG_FILE:
        return [("live log", False, f"the statement's live_log does not name {LIVELOG_FILE}")]
    try:
        head = TreeHead.from_json(claim.get("tree_head"))
        recorded = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(str(claim.get("meter_key")), validate=True)
        )
    except (ValueError, binascii.Error) as exc:
        return [("tree head", False, f"the cited tree head or meter key is malformed ({exc})")]
    out: list[Outcome] = []
    key = recorded if meter_key is None else meter_key
    if meter_key is not None and raw_public(meter_key) != raw_public(recorded):
        out.append(
            (
                "tree head",
                False,
                f"the pack names meter key {key_id(recorded)[:16]}…, the given key is "
                f"{key_id(meter_key)[:16]}…",
            )
        )
    else:
        signed = verify_tree_head(head, key)
        out.append(
            (
                "tree head",
                signed,
                f"{head.size:,} leaves at {head.timestamp} ms, signed by meter key "
                f"{key_id(key)[:16]}…"
                if signed
                else "the tree head's signature does not verify with the meter's key",
            )
        )
        if meter_key is None:
            out.append(
                ("meter key", None, "checked with the key the pack names; pass --meter-key "
                 "to check it against the meter's published key")
            )  # fmt: skip
    with contextlib.closing(duckdb.connect()) as con:
        configure(con)
        problem = _read_livelog(con, folder / LIVELOG_FILE)
        if problem is not None:
            out.append(("live log root", False, problem))
            return out
        row = con.execute(
            f"SELECT count(*), count(leaf), coalesce(bool_and(leaf_index = rn - 1), true) FROM "  # noqa: S608
            f"(SELECT *, row_number() OVER () AS rn FROM {_LOG})"
        ).fetchall()[0]
        rows, hashed, ordered = int(row[0]), int(row[1]), bool(row[2])
        if rows != head.size or hashed != rows or not ordered:
            out.append(
                (
                    "live log root",
                    False,
                    f"{LIVELOG_FILE} has {rows:,} rows ({rows - hashed:,} without a hash, "
                    f"{'in' if ordered else 'out of'} leaf order); the head has {head.size:,}",
                )
            )
        else:
            root = merkle.root(query_hashes(con, f"SELECT leaf FROM {_LOG} ORDER BY leaf_index"))  # noqa: S608
            same = root == head.root
            out.append(
                (
                    "live log root",
                    same,
                    f"recomputed from the pack's {rows:,} leaves, equal to the signed root"
                    if same
                    else f"the pack's {rows:,} leaves give root {root.hex()[:16]}…, the head "
                    f"signs {head.root.hex()[:16]}…",
                )
            )
        try:
            con.register(_DATA, data_leaves(events))
        except (InputError, OSError, duckdb.Error) as exc:
            out.append(("live log events", False, f"the data cannot be read ({exc})"))
            return out
        diff = compare_prefix(con, _LOG, head.size, _DATA)
        out.append(
            (
                "live log events",
                diff.same,
                f"every event of the data is its leaf of the log ({diff.size:,} leaves)"
                if diff.same
                else diff.reason(),
            )
        )
    return out
