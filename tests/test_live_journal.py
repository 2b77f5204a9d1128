"""The journal and the meter's writer: durability, idempotent retries, replay after a crash,
and leaves equal to an event's truecount.event.v1 hash computed here by hand."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from truecount.live.events import EventError, canonical_events
from truecount.live.journal import Journal
from truecount.live.meter import JOURNAL_NAME, LIVE_DIR, Meter
from truecount.workspace import Workspace


def _events(ids: list[str]) -> bytes:
    return json.dumps(
        [
            {
                "event_id": i,
                "entity_id": f"T-{n % 3}",
                "ts": f"2026-01-0{1 + n % 5}T10:00:0{n % 10}+02:00",
                "type": "closed" if n % 2 else "created",
                "actor": "ai",
                "value": n / 3,
                "attrs": {"n": n, "ü": "x"},
                "seq": n,
            }
            for n, i in enumerate(ids)
        ]
    ).encode()


def _meter(ws: Workspace) -> Meter:
    meter = Meter(ws, Ed25519PrivateKey.generate())
    meter.start()
    return meter


def _stored(ws: Workspace) -> list[tuple[str, int]]:
    with ws.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT event_id, count(*) FROM events GROUP BY event_id ORDER BY event_id"
        ).fetchall()
    return [(str(a), int(b)) for a, b in rows]


def _netstring(text: str | None) -> bytes:
    if text is None:
        return b"~"
    raw = text.encode()
    return str(len(raw)).encode() + b":" + raw


def _hand_leaves(ws: Workspace) -> dict[str, bytes]:
    """Each stored event's leaf: SHA-256(0x00 || netstrings of the eight fields)."""
    with ws.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT event_id, entity_id, ts, type, actor, value, CAST(attrs AS VARCHAR), seq "
            "FROM events"
        ).fetchall()
    out = {}
    for eid, ent, ts, typ, actor, value, attrs, seq in rows:
        fields = [
            eid,
            ent,
            ts.strftime("%Y-%m-%dT%H:%M:%S.%f"),
            typ,
            actor,
            None if value is None else f"{value:.17g}",
            attrs,
            None if seq is None else str(seq),
        ]
        out[eid] = hashlib.sha256(b"\x00" + b"".join(_netstring(f) for f in fields)).digest()
    return out


def test_retries_are_acknowledged_not_stored_twice(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    meter = _meter(ws)
    try:
        first = meter.submit(canonical_events(_events(["a", "b", "c"]), "events:t"))
        again = meter.submit(canonical_events(_events(["b", "d", "d"]), "events:t"))
    finally:
        meter.stop()
    assert first.accepted == [("a", 0), ("b", 1), ("c", 2)]
    assert again.accepted == [("d", 3)]
    assert again.duplicates == ["b", "d"]
    assert _stored(ws) == [("a", 1), ("b", 1), ("c", 1), ("d", 1)]


def test_leaves_are_the_event_hashes_in_arrival_order(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    meter = _meter(ws)
    try:
        meter.submit(canonical_events(_events(["z", "y"]), "events:t"))
        meter.submit(canonical_events(_events(["x"]), "events:t"))
        assert meter.settle() == 3
        leaves = [meter.log.leaf(i) for i in range(meter.log.size)]
    finally:
        meter.stop()
    hand = _hand_leaves(ws)
    assert leaves == [hand["z"], hand["y"], hand["x"]]


def test_replay_loads_journaled_events_missing_from_the_store(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    meter = _meter(ws)
    try:
        meter.submit(canonical_events(_events(["a", "b", "c", "d"]), "events:t"))
        meter.settle()
        root = meter.log.root()
    finally:
        meter.stop()
    # a crash after the journal's fsync but before the store's commit: the store lacks two
    with ws.connect() as con:
        con.execute("DELETE FROM events WHERE event_id IN ('b', 'd')")
    meter = _meter(ws)
    try:
        assert meter.replayed == 2
        assert meter.log.size == 4 and meter.log.root() == root
    finally:
        meter.stop()
    meter = _meter(ws)  # a second start changes nothing
    meter.stop()
    assert meter.replayed == 0
    assert _stored(ws) == [("a", 1), ("b", 1), ("c", 1), ("d", 1)]


def test_an_incomplete_last_line_is_cut_on_open(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    meter = _meter(ws)
    try:
        meter.submit(canonical_events(_events(["a", "b"]), "events:t"))
    finally:
        meter.stop()
    path = ws.root / LIVE_DIR / JOURNAL_NAME
    whole = path.read_bytes()
    with path.open("ab") as fh:
        fh.write(b'{"event_id": "half", "entity_')
    meter = _meter(ws)
    try:
        assert meter.log.size == 2
        meter.submit(canonical_events(_events(["c"]), "events:t"))
    finally:
        meter.stop()
    text = path.read_bytes()
    assert text.startswith(whole) and b"half" not in text
    assert [json.loads(line)["event_id"] for line in text.splitlines()] == ["a", "b", "c"]


def test_journal_refuses_a_record_without_its_newline(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.jsonl")
    with pytest.raises(ValueError, match="newline"):
        journal.append(b"{}")
    journal.close()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "not JSON"),
        (b'{"events": 3}', "'events' must be a list"),
        (b'[{"entity_id": "T", "ts": "2026-01-01", "type": "x"}]', "'event_id' is required"),
        (b'[{"event_id": "a", "entity_id": "T", "ts": "soon", "type": "x"}]', "ISO 8601"),
        (b'[{"event_id": "a", "entity_id": "T", "ts": "2026-01-01", "type": "x", "v": 1}]', "'v'"),
        (
            b'[{"event_id": "a", "entity_id": "T", "ts": "2026-01-01", "type": "x", "value": "1"}]',
            "finite number",
        ),
        (
            b'[{"event_id": "a", "entity_id": "T", "ts": "2026-01-01", "type": "x", "value": 1e308}]',
            "beyond",
        ),
        (
            b'[{"event_id": "a", "entity_id": "T", "ts": "9999-02-05T10:00:00Z", "type": "x"}]',
            r"event 1: 'ts' '9999-02-05T10:00:00Z' is outside 1970-01-01 \.\. 2200-01-01",
        ),
        (
            b'[{"event_id": "a", "entity_id": "T", "ts": "1969-12-31T23:59:59", "type": "x"}]',
            "'ts' .* is outside 1970-01-01",
        ),
        (  # in range as written, past the end once moved to UTC
            b'[{"event_id": "a", "entity_id": "T", "ts": "2199-12-31T23:30:00-01:00", "type": "x"}]',
            "'ts' .* is outside",
        ),
        (  # an offset that moves the time off the calendar altogether
            b'[{"event_id": "a", "entity_id": "T", "ts": "0001-01-01T00:00:00+01:00", "type": "x"}]',
            "'ts' .* is outside",
        ),
    ],
)
def test_bad_events_name_the_event_and_field(body: bytes, message: str) -> None:
    with pytest.raises(EventError, match=message):
        canonical_events(body, "events:t")


def test_event_times_at_the_edges_of_the_ingest_range_are_kept() -> None:
    body = json.dumps(
        [
            {"event_id": "a", "entity_id": "T", "ts": "1970-01-01T00:00:00Z", "type": "x"},
            {"event_id": "b", "entity_id": "T", "ts": "2199-12-31T23:59:59.999999", "type": "x"},
            {"event_id": "c", "entity_id": "T", "ts": "2200-01-01T00:30:00+01:00", "type": "x"},
        ]
    ).encode()
    assert [e["ts"] for e in canonical_events(body, "events:t")] == [
        "1970-01-01T00:00:00.000000",
        "2199-12-31T23:59:59.999999",
        "2199-12-31T23:30:00.000000",
    ]


def test_a_signed_head_is_kept_and_reused_after_a_restart(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    key = Ed25519PrivateKey.generate()
    meter = Meter(ws, key)
    meter.start()
    try:
        meter.submit(canonical_events(_events(["a", "b", "c"]), "events:t"))
        head = meter.sign_head()
        assert head.size == 3 and meter.sign_head() == head  # no growth: the same head
    finally:
        meter.stop()
    meter = Meter(ws, key)
    meter.start()
    try:
        assert meter.sign_head() == head
        meter.submit(canonical_events(_events(["d"]), "events:t"))
        assert meter.sign_head().size == 4
    finally:
        meter.stop()
    lines = (ws.root / LIVE_DIR / "heads.jsonl").read_text().splitlines()
    assert [json.loads(line)["tree_size"] for line in lines] == [3, 4]


def test_a_failing_store_stops_acknowledging(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    meter = _meter(ws)

    def broken(lines: list[str]) -> object:
        raise OSError("disk full")

    meter._store = broken  # type: ignore[method-assign,assignment]
    try:
        meter.submit(canonical_events(_events(["a"]), "events:t"))  # journaled: acknowledged
        with pytest.raises(RuntimeError, match="disk full"):
            meter.settle()
        with pytest.raises(RuntimeError, match="stopped loading"):
            meter.submit(canonical_events(_events(["b"]), "events:t"))
    finally:
        meter.stop()
    meter = _meter(ws)  # the restart loads what the journal holds
    meter.stop()
    assert meter.replayed == 1
    assert _stored(ws) == [("a", 1)]
