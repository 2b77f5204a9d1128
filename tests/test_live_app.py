"""The intake over HTTP (Starlette's TestClient): signatures, refusals, adapters, reads."""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from truecount.evidence import merkle
from truecount.live.app import Intake, RateLimiter, create_app
from truecount.live.config import Secrets
from truecount.live.log import TreeHead, verify_consistency, verify_tree_head
from truecount.live.meter import Meter
from truecount.live.signatures import GenericSender, sign_generic
from truecount.workspace import Workspace

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
READ = {"authorization": "Bearer auditor-token-0123456789"}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, Intake, Workspace, Ed25519PrivateKey]]:
    ws = Workspace.init(tmp_path / "ws")
    key = Ed25519PrivateKey.generate()
    secrets = Secrets(
        zendesk=b"zd-secret",
        intercom=b"ic-secret",
        senders={"etl": GenericSender("etl", hmac_secret=b"etl-secret")},
        readers={"auditor": "auditor-token-0123456789"},
    )
    intake = Intake(Meter(ws, key), secrets, max_body=64_000, limiter=RateLimiter(1000, 30))
    with TestClient(create_app(intake)) as client:
        yield client, intake, ws, key


def signed(body: bytes, stamp: int | None = None, secret: bytes = b"etl-secret") -> dict[str, str]:
    return {**sign_generic("etl", secret, body, stamp), "content-type": "application/json"}


def zendesk_signed(body: bytes, stamp: str | None = None) -> dict[str, str]:
    """Zendesk's headers as its documentation defines them: base64 HMAC-SHA256 over the
    timestamp followed by the body, with the webhook's signing secret."""
    ts = str(int(time.time())) if stamp is None else stamp
    mac = base64.b64encode(hmac.new(b"zd-secret", ts.encode() + body, hashlib.sha256).digest())
    return {
        "x-zendesk-webhook-signature": mac.decode(),
        "x-zendesk-webhook-signature-timestamp": ts,
    }


def batch(ids: list[str]) -> bytes:
    return json.dumps(
        {
            "events": [
                {"event_id": i, "entity_id": "T-1", "ts": "2026-02-01T10:00:00Z", "type": "closed"}
                for i in ids
            ]
        }
    ).encode()


def stored_ids(ws: Workspace) -> list[str]:
    with ws.connect() as con:
        return [str(r[0]) for r in con.execute("SELECT event_id FROM events ORDER BY 1").fetchall()]


def test_generic_events_accepted_once_and_refusals_never_stored(setup) -> None:  # type: ignore[no-untyped-def]
    client, intake, ws, _key = setup
    body = batch(["e1", "e2"])
    stamp = int(time.time())
    r = client.post("/events", content=body, headers=signed(body, stamp))
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == [{"event_id": "e1", "index": 0}, {"event_id": "e2", "index": 1}]
    # the same signed request again (a replay) holds only known events: answered as
    # duplicates, nothing stored; a re-signed retry is acknowledged as duplicate too
    again = client.post("/events", content=body, headers=signed(body, stamp))
    assert again.status_code == 200, again.text
    assert again.json()["duplicates"] == ["e1", "e2"] and again.json()["retry"] is True
    retry = client.post("/events", content=body, headers=signed(body, stamp - 1))
    assert retry.status_code == 200 and retry.json()["duplicates"] == ["e1", "e2"]
    cases = [
        (batch(["x1"]), {**signed(batch(["x1"])), "x-truecount-signature": "hmac-sha256=00"}, 401),
        (batch(["x2"]), signed(batch(["x2"]), int(time.time()) - 3600), 401),
        (
            batch(["x3"]),
            {k: v for k, v in signed(batch(["x3"])).items() if "signature" not in k},
            401,
        ),
        (batch(["x4"]), signed(batch(["x4"]), secret=b"not-the-secret"), 401),
        (b'{"events": [{"event_id": "x5"}]}', signed(b'{"events": [{"event_id": "x5"}]}'), 400),
        (batch([f"big{i}" for i in range(2000)]), signed(batch(["x6"])), 413),
    ]
    for payload, headers, status in cases:
        r = client.post("/events", content=payload, headers=headers)
        assert r.status_code == status, (status, r.text)
        assert r.json()["reason"]
    intake.meter.settle()
    assert stored_ids(ws) == ["e1", "e2"]
    assert intake.known_retries == 1
    assert intake.refusals == {
        "bad_signature": 2,
        "stale": 1,
        "missing_signature": 1,
        "bad_payload": 1,
        "too_large": 1,
    }


def test_an_event_outside_the_ingest_time_range_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    client, intake, ws, _key = setup
    far = {"event_id": "e9", "entity_id": "T-3", "ts": "9999-02-05T10:00:00Z", "type": "closed"}
    body = json.dumps({"events": [far]}).encode()
    r = client.post("/events", content=body, headers=signed(body))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_payload"
    assert r.json()["reason"].startswith("event 1: 'ts' '9999-02-05T10:00:00Z' is outside")
    intake.meter.settle()
    assert stored_ids(ws) == []


def test_rate_limit_per_sender(setup) -> None:  # type: ignore[no-untyped-def]
    client, intake, _ws, _key = setup
    intake.limiter = RateLimiter(rate=0.001, burst=3)
    codes = []
    for i in range(5):
        body = batch([f"r{i}"])
        codes.append(client.post("/events", content=body, headers=signed(body)).status_code)
    assert codes == [200, 200, 200, 429, 429]
    # another sender's bucket is its own
    zd = b'{"ticket": {"id": 1}}'
    r = client.post("/hooks/zendesk", content=zd, headers=zendesk_signed(zd))
    assert r.status_code != 429


def test_zendesk_and_intercom_webhooks_go_through_the_adapters(setup) -> None:  # type: ignore[no-untyped-def]
    client, intake, ws, _key = setup
    ticket = json.loads((EXAMPLES / "zendesk" / "tickets.json").read_text())["tickets"][0]
    body = json.dumps({"ticket": ticket}).encode()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # the ISO form Zendesk sends
    r = client.post("/hooks/zendesk", content=body, headers=zendesk_signed(body, stamp))
    assert r.status_code == 200, r.text
    assert [e["event_id"] for e in r.json()["accepted"]] == [
        f"zendesk:ticket:{ticket['id']}:created"
    ]

    line = (EXAMPLES / "intercom" / "conversations.jsonl").read_text().splitlines()[0]
    item = json.loads(line)
    note = json.dumps(
        {
            "type": "notification_event",
            "topic": "conversation.admin.closed",
            "id": "notif_1",
            "created_at": int(time.time()),
            "data": {"type": "notification_event_data", "item": item},
        }
    ).encode()
    sig = "sha1=" + hmac.new(b"ic-secret", note, hashlib.sha1).hexdigest()
    r = client.post("/hooks/intercom", content=note, headers={"x-hub-signature": sig})
    assert r.status_code == 200, r.text
    got = [e["event_id"] for e in r.json()["accepted"]]
    # one event per conversation part plus the conversation's creation
    parts = item["conversation_parts"]["conversation_parts"]
    assert f"intercom:conversation:{item['id']}:created" in got
    assert {f"intercom:part:{p['id']}" for p in parts} <= set(got)
    intake.meter.settle()
    with ws.connect() as con:
        rows = con.execute(
            "SELECT count(*) FROM events WHERE entity_id = ?", [str(item["id"])]
        ).fetchone()
    assert rows is not None and rows[0] == len(got)
    bad = client.post("/hooks/intercom", content=note, headers={"x-hub-signature": "sha1=00"})
    assert bad.status_code == 401


def test_reads_need_a_token_and_prove_what_they_say(setup) -> None:  # type: ignore[no-untyped-def]
    client, _intake, _ws, key = setup
    assert client.get("/log/head").status_code == 401
    assert client.get("/log/head", headers={"authorization": "Bearer wrong"}).status_code == 401
    body = batch(["a", "b", "c"])
    client.post("/events", content=body, headers=signed(body))
    old = TreeHead.from_json(client.get("/log/head", headers=READ).json())
    assert old.size == 3 and verify_tree_head(old, key.public_key())
    body = batch(["d", "e"])
    client.post("/events", content=body, headers=signed(body))
    new = TreeHead.from_json(client.get("/log/head", headers=READ).json())
    assert new.size == 5 and verify_tree_head(new, key.public_key())
    r = client.get("/log/consistency", params={"first": 3, "second": 5}, headers=READ).json()
    proof = [base64.b64decode(p) for p in r["proof"]]
    assert verify_consistency(3, 5, old.root, new.root, proof)
    assert not verify_consistency(3, 5, new.root, new.root, proof)
    p = client.get("/log/proof", params={"event_id": "b"}, headers=READ).json()
    leaf = base64.b64decode(p["leaf_hash"])
    path = [base64.b64decode(x) for x in p["proof"]]
    assert p["index"] == 1 and p["tree_size"] == 5
    assert merkle.verify_inclusion(leaf, 1, 5, path, new.root)
    by_index = client.get("/log/proof", params={"index": 1}, headers=READ).json()
    assert by_index["proof"] == p["proof"] and by_index["leaf_hash"] == p["leaf_hash"]
    assert client.get("/log/proof", params={"event_id": "zz"}, headers=READ).status_code == 404
    assert client.get("/log/proof", params={"index": 5}, headers=READ).status_code == 404
    bad = client.get("/log/consistency", params={"first": 9}, headers=READ)
    assert bad.status_code == 400
    stats = client.get("/stats", headers=READ).json()
    assert stats["accepted"] == 5 and stats["refused"]["no_token"] == 2


def test_an_intercom_retry_of_known_events_is_a_duplicate_even_when_stale(setup) -> None:  # type: ignore[no-untyped-def]
    client, intake, ws, _key = setup
    lines = (EXAMPLES / "intercom" / "conversations.jsonl").read_text().splitlines()
    first, other = json.loads(lines[0]), json.loads(lines[1])

    def note(item: dict[str, object], created: int) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(
            {
                "type": "notification_event",
                "topic": "conversation.admin.closed",
                "created_at": created,
                "data": {"type": "notification_event_data", "item": item},
            }
        ).encode()
        return body, {
            "x-hub-signature": "sha1=" + hmac.new(b"ic-secret", body, hashlib.sha1).hexdigest()
        }

    now = int(time.time())
    body, headers = note(first, now)
    accepted = client.post("/hooks/intercom", content=body, headers=headers)
    assert accepted.status_code == 200, accepted.text
    ids = sorted(e["event_id"] for e in accepted.json()["accepted"])
    # Intercom retries the very same notification: within the window (a replay of the
    # signature) and after it (stale); both are answered as duplicates, nothing is stored
    for when in (0, 60):
        intake.clock = lambda when=when: now + intake.window + when if when else time.time()  # type: ignore[misc]
        retry = client.post("/hooks/intercom", content=body, headers=headers)
        assert retry.status_code == 200, retry.text
        assert sorted(retry.json()["duplicates"]) == ids and retry.json()["accepted"] == []
    # a stale notification with an event the meter does not hold is still refused
    old_body, old_headers = note(other, now - 3600)
    intake.clock = time.time
    refused = client.post("/hooks/intercom", content=old_body, headers=old_headers)
    assert refused.status_code == 401 and refused.json()["error"] == "stale"
    intake.meter.settle()
    assert sorted(stored_ids(ws)) == ids
    assert intake.known_retries == 2 and intake.refusals == {"stale": 1}


def test_a_later_zendesk_audit_reads_its_ticket_facts_from_the_store(setup) -> None:  # type: ignore[no-untyped-def]
    """An audit's webhook rarely carries its ticket's creating audit; the meter reads the
    requester and channel from what it already holds, as an ingest into the workspace does,
    so the actor is the one a file ingest of all the audits at once gives."""
    client, intake, ws, _key = setup
    audits = [
        json.loads(x)
        for x in (EXAMPLES / "zendesk" / "ticket_audits.jsonl").read_text().splitlines()
    ]
    ticket = audits[0]["ticket_id"]
    mine = [a for a in audits if a["ticket_id"] == ticket]

    def post(audit: dict[str, object]) -> list[str]:
        body = json.dumps({"audit": audit}).encode()
        r = client.post("/hooks/zendesk", content=body, headers=zendesk_signed(body))
        assert r.status_code == 200, r.text
        return [e["event_id"] for e in r.json()["accepted"]]

    got = [eid for a in mine for eid in post(a)]  # one webhook per audit, in order
    intake.meter.settle()
    with ws.connect() as con:
        live = dict(con.execute("SELECT event_id, actor FROM events").fetchall())
    assert sorted(live) == sorted(got)
    # the reference: the same audits read together as one file, by the same adapter
    from truecount.live.vendors import adapter_events

    page = json.dumps({"audits": mine}).encode()
    whole = {e["event_id"]: e["actor"] for e in adapter_events("zendesk", "p.json", page, "ref")}
    assert live == whole
    assert None not in live.values()  # every actor known, none left unknown


def test_the_server_sets_its_startup_objects_aside_from_the_collector(tmp_path: Path) -> None:
    """Full collections would otherwise walk every module and binding with the GIL held,
    stalling every request; the objects are handed back to the collector on shutdown."""
    ws = Workspace.init(tmp_path / "ws")
    secrets = Secrets(senders={"etl": GenericSender("etl", hmac_secret=b"etl-secret")})
    intake = Intake(Meter(ws, Ed25519PrivateKey.generate()), secrets)
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(intake)) as client:
        assert gc.get_freeze_count() > 1000
        body = batch(["gc-1"])
        assert client.post("/events", content=body, headers=signed(body)).status_code == 200
    assert gc.get_freeze_count() == 0
    assert stored_ids(ws) == ["gc-1"]
