"""An evidence pack that cites a signed tree head of the live log.

The meter runs in-process over a workspace and receives the support example's events; a
pack cites the head it signed. The root over the pack's ``livelog.csv`` is recomputed here by
RFC 6962's recursive definition, and each leaf from the event's fields by the documented
encoding, so neither side of a comparison is the code under test. Then the data is altered
one way at a time (an event dropped, added, changed) and ``verify`` must fail with a reason
naming the event.
"""

from __future__ import annotations

import base64
import csv
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from test_evidence import H, event_texts, mth, net
from truecount.cli.app import _load_verbs, app
from truecount.errors import TruecountError
from truecount.evidence.sign import generate_key
from truecount.live.meter import Meter
from truecount.workspace import Workspace

_load_verbs()
runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
SUPPORT = ROOT / "examples" / "support"
PACK_ARGS = [
    str(ROOT / "examples" / "resolved_ticket.yaml"),
    "--invoice", str(SUPPORT / "invoice.csv"),
    "--terms", str(SUPPORT / "terms.yaml"),
]  # fmt: skip


@dataclass
class Live:
    ws: Path
    head: Path
    meter_pub: str
    key: Path
    pub: Path
    pack: Path
    size: int


def _journal_form(ws: Path) -> list[dict[str, Any]]:
    with Workspace(ws).connect(read_only=True) as con:
        rows = con.execute(
            "SELECT event_id, entity_id, strftime(ts, '%Y-%m-%dT%H:%M:%S.%f'), type, actor, "
            "value, CAST(attrs AS VARCHAR), seq FROM events ORDER BY ts, event_id"
        ).fetchall()
    names = ("event_id", "entity_id", "ts", "type", "actor", "value", "attrs", "seq")
    return [{**dict(zip(names, r, strict=True)), "source": "events:etl"} for r in rows]


def _tc(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("cite")
    scratch = Workspace.init(tmp / "scratch").root
    got = _tc("ingest", SUPPORT / "events.csv", "-w", scratch)
    assert got.exit_code == 0, got.output
    events = _journal_form(scratch)
    ws = Workspace.init(tmp / "ws")
    meter_key = Ed25519PrivateKey.generate()
    meter = Meter(ws, meter_key)
    meter.start()
    try:
        for i in range(0, len(events), 7):  # several group commits
            meter.submit(events[i : i + 7])
        head = meter.sign_head()
    finally:
        meter.stop()
    head_path = tmp / "head.json"
    head_path.write_text(json.dumps(head.to_json()))
    meter_pub = base64.b64encode(meter_key.public_key().public_bytes_raw()).decode()
    keys = generate_key(tmp / "buyer.key")
    pack = tmp / "pack"
    built = _tc("evidence", *PACK_ARGS, "--key", keys.private, "--out", pack, "-w", ws.root,
                "--tree-head", head_path, "--meter-key", meter_pub)  # fmt: skip
    assert built.exit_code in (0, 1) and (pack / "statement.json").exists(), built.output
    yield Live(ws.root, head_path, meter_pub, keys.private, keys.public, pack, len(events))


def _refusal(result: Any) -> str:
    """The one line the command's error boundary prints (exit 2) for a refused input."""
    assert isinstance(result.exception, TruecountError), result.output
    line = str(result.exception.first_line)
    assert "\n" not in line
    return line


def _verify(live: Live, ws: Path, pack: Path | None = None, *extra: str) -> dict[str, Any]:
    got = _tc("verify", pack or live.pack, "--pubkey", live.pub, "-w", ws, "-f", "json", *extra)
    assert got.exit_code in (0, 1), got.output
    return {c["check"]: c for c in json.loads(got.output)["checks"]}


def _altered(live: Live, tmp: Path, sql: str) -> Path:
    copy = tmp / "ws"
    shutil.copytree(live.ws, copy)
    with Workspace(copy).connect() as con:
        con.execute(sql)
    return copy


def test_the_pack_records_the_head_and_the_log_prefix(live: Live) -> None:
    statement = json.loads((live.pack / "statement.json").read_bytes())
    cited = statement["predicate"]["live_log"]
    head = json.loads(live.head.read_text())
    assert cited["tree_head"] == head and cited["meter_key"] == live.meter_pub
    assert "livelog.csv" in {s["name"] for s in statement["subject"]}
    # the pack's leaves: the RFC 6962 root of them is the signed one, and each is the hash
    # of the journal line's fields in the documented encoding, in journal order
    with (live.pack / "livelog.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert (
        [int(r["leaf_index"]) for r in rows]
        == list(range(live.size))
        == list(range(head["tree_size"]))
    )
    leaves = [bytes.fromhex(r["leaf_hash"]) for r in rows]
    assert base64.b64encode(mth(leaves)).decode() == head["root_hash"]
    journal = [json.loads(x) for x in (live.ws / "live" / "journal.jsonl").read_text().splitlines()]
    assert [r["event_id"] for r in rows] == [j["event_id"] for j in journal]
    with Workspace(live.ws).connect(read_only=True) as con:
        cur = con.execute("SELECT event_id, entity_id, ts, type, actor, value, "
                          "CAST(attrs AS VARCHAR) AS attrs, seq FROM events")  # fmt: skip
        cols = [d[0] for d in cur.description]
        stored = {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}
    for r in rows:
        data = b"".join(net(t) for t in event_texts(stored[r["event_id"]]))
        assert H(b"\x00" + data).hex() == r["leaf_hash"]


def test_a_citing_pack_verifies(live: Live) -> None:
    checks = _verify(live, live.ws, None, "--meter-key", live.meter_pub)
    assert all(c["status"] != "failed" for c in checks.values()), checks
    for name in ("tree head", "live log root", "live log events"):
        assert checks[name]["status"] == "passed", checks[name]
    # without --meter-key the key the pack names is used, and said so
    assert _verify(live, live.ws)["meter key"]["status"] == "note"


def test_an_old_pack_without_a_head_has_no_live_checks(live: Live, tmp_path: Path) -> None:
    pack = tmp_path / "plain"
    built = _tc("evidence", *PACK_ARGS, "--key", live.key, "--out", pack, "-w", live.ws)
    assert built.exit_code in (0, 1), built.output
    checks = _verify(live, live.ws, pack)
    assert not {"tree head", "live log root", "live log events"} & set(checks)
    assert all(c["status"] != "failed" for c in checks.values())


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DELETE FROM events WHERE event_id = (SELECT min(event_id) FROM events)",
         "of the log are not in the data (first: "),
        ("INSERT INTO events (event_id, entity_id, ts, type, source) VALUES "
         "('zz-added', 'T-1001', TIMESTAMP '2026-02-20 10:00:00', 'reopened', 'x')",
         "of the data are not in the log's first"),
        ("UPDATE events SET type = 'closed' WHERE event_id = (SELECT max(event_id) FROM events)",
         "differ from their leaf in the log (first: "),
    ],
    ids=["dropped", "added", "changed"],
)  # fmt: skip
def test_data_altered_against_the_log_fails(
    live: Live, tmp_path: Path, sql: str, reason: str
) -> None:
    ws = _altered(live, tmp_path, sql)
    with Workspace(live.ws).connect(read_only=True) as con:
        row = con.execute("SELECT min(event_id), max(event_id) FROM events").fetchone()
    assert row is not None
    expected = {"dropped": row[0], "added": "zz-added", "changed": row[1]}
    which = "dropped" if "DELETE" in sql else "added" if "INSERT" in sql else "changed"
    detail = _verify(live, ws)["live log events"]
    assert detail["status"] == "failed"
    assert reason in detail["detail"] and expected[which] in detail["detail"]
    assert detail["detail"].startswith("1 event(s)")
    # and evidence refuses to cite the head for such data, in one line
    refused = _tc("evidence", *PACK_ARGS, "--key", live.key, "--out", tmp_path / "p", "-w", ws,
                  "--tree-head", live.head, "--meter-key", live.meter_pub)  # fmt: skip
    assert "not the log's first" in _refusal(refused)


def test_a_forged_leaf_or_key_fails(live: Live, tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(live.pack, pack)
    path = pack / "livelog.csv"
    lines = path.read_text().splitlines()
    last = lines[-1].rsplit(",", 1)
    lines[-1] = last[0] + "," + ("0" * 64)
    path.write_text("\n".join(lines) + "\n")
    checks = _verify(live, live.ws, pack)
    assert checks["live log root"]["status"] == "failed"
    assert "give root" in checks["live log root"]["detail"]
    other = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
    checks = _verify(live, live.ws, None, "--meter-key", other)
    assert checks["tree head"]["status"] == "failed"
    assert "the given key is" in checks["tree head"]["detail"]


def test_bad_tree_head_input_is_one_line(live: Live, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    got = _tc("evidence", *PACK_ARGS, "--key", live.key, "--out", tmp_path / "p", "-w", live.ws,
              "--tree-head", bad, "--meter-key", live.meter_pub)  # fmt: skip
    assert "bad.json" in _refusal(got)
    # a head of another log (a root the journal does not give)
    forged = dict(json.loads(live.head.read_text()))
    forged["root_hash"] = base64.b64encode(b"\x05" * 32).decode()
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    got = _tc("evidence", *PACK_ARGS, "--key", live.key, "--out", tmp_path / "q", "-w", live.ws,
              "--tree-head", tmp_path / "forged.json", "--meter-key", live.meter_pub)  # fmt: skip
    assert "not signed" in _refusal(got)
