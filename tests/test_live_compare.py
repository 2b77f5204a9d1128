"""``truecount log compare``: the live log against a vendor's file export, by event id.

The expected classes are computed here with pandas from the journal's lines and the export
file (set operations on the ids, field by field equality), not by the code under test.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from test_live_crash import TOKEN, _port, _post, _start
from truecount.cli.app import _load_verbs, app
from truecount.live.meter import JOURNAL_NAME, LIVE_DIR, Meter
from truecount.workspace import Workspace

_load_verbs()
runner = CliRunner()


def _event(n: int) -> dict[str, Any]:
    return {
        "event_id": f"ev-{n:03d}",
        "entity_id": f"T-{n % 7}",
        "ts": f"2026-03-{1 + n % 28:02d}T10:{n % 60:02d}:00.000000",
        "type": "closed" if n % 3 else "created",
        "actor": "ai" if n % 2 else None,
        "value": None if n % 5 else n / 4,
        "attrs": json.dumps({"n": n}) if n % 4 else None,
        "seq": n,
        "source": "events:etl",
    }


def _fields(df: pd.DataFrame) -> pd.DataFrame:
    """The eight leaf fields, normalised the same way on both sides (pandas only)."""
    out = pd.DataFrame({"event_id": df["event_id"].astype(str)})
    for c in ("entity_id", "type", "actor"):
        out[c] = df[c].where(df[c].notna(), None)
    out["ts"] = pd.to_datetime(df["ts"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    out["value"] = pd.to_numeric(df["value"]).astype(float)
    out["attrs"] = df["attrs"].map(lambda a: None if pd.isna(a) else json.dumps(json.loads(a)))
    out["seq"] = pd.to_numeric(df["seq"]).astype("Int64")
    return out.set_index("event_id")


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, Path]:
    ws = Workspace.init(tmp_path / "ws")
    meter = Meter(ws, Ed25519PrivateKey.generate())
    meter.start()
    try:
        meter.submit([_event(n) for n in range(0, 120)])  # the meter got 0..119
    finally:
        meter.stop()
    # the export: 10..139 (so 0..9 log only, 120..139 export only), some rewritten
    rows = [_event(n) for n in range(10, 140)]
    for r in rows:
        n = int(r["event_id"][3:])
        if n % 17 == 0:
            r["type"] = "resolved"
        if n % 23 == 0:
            r["attrs"] = json.dumps({"n": n, "edited": True})
    export = tmp_path / "export.csv"
    pd.DataFrame(rows).drop(columns=["source"]).to_csv(export, index=False)
    return ws.root / LIVE_DIR / JOURNAL_NAME, export


def _expected(journal: Path, export: Path) -> dict[str, set[str]]:
    log = _fields(pd.read_json(journal, lines=True, dtype={"attrs": str}))
    exp = _fields(pd.read_csv(export, dtype={"attrs": str}))
    both = log.index.intersection(exp.index)
    a, b = log.loc[both].sort_index(), exp.loc[both].sort_index()
    same_row = ((a == b) | (a.isna() & b.isna())).all(axis=1)
    return {
        "export_only": set(exp.index.difference(log.index)),
        "log_only": set(log.index.difference(exp.index)),
        "changed": set(same_row[~same_row].index),
        "same": set(same_row[same_row].index),
    }


def test_compare_counts_and_ids_match_pandas(scene: tuple[Path, Path]) -> None:
    journal, export = scene
    got = runner.invoke(
        app, ["log", "compare", "--log", str(journal), "--events", str(export), "-f", "json",
              "--limit", "0"],
    )  # fmt: skip
    assert got.exit_code == 1, got.output  # they differ: a finding
    data = json.loads(got.output)
    want = _expected(journal, export)
    assert {k: len(v) for k, v in want.items()} == data["counts"]
    for kind in ("export_only", "log_only", "changed"):
        assert {e["event_id"] for e in data[kind]} == want[kind], kind
    c = data["counts"]
    assert data["log_events"] == c["log_only"] + c["changed"] + c["same"] == 120
    assert data["export_distinct_ids"] == c["export_only"] + c["changed"] + c["same"] == 130
    fields = {e["event_id"]: e["fields"] for e in data["changed"]}
    assert fields["ev-017"] == ["type"] and fields["ev-023"] == ["attrs"]
    assert fields["ev-034"] == ["type"] and fields["ev-046"] == ["attrs"]
    # the table shows the same counts; --limit caps the listing, not the counts
    table = runner.invoke(
        app, ["log", "compare", "--log", str(journal), "--events", str(export), "--limit", "2"]
    )
    assert table.exit_code == 1 and "in the export only" in table.output
    assert "ev-120" in table.output and "ev-122" not in table.output


def test_same_events_exit_0_and_bad_log_is_one_line(
    scene: tuple[Path, Path], tmp_path: Path
) -> None:
    journal, _export = scene
    same = tmp_path / "same.csv"
    pd.DataFrame([_event(n) for n in range(120)]).drop(columns=["source"]).to_csv(same, index=False)
    got = runner.invoke(app, ["log", "compare", "--log", str(journal), "--events", str(same)])
    assert got.exit_code == 0, got.output
    missing = runner.invoke(
        app, ["log", "compare", "--log", str(tmp_path / "nope.jsonl"), "--events", str(same)]
    )
    assert missing.exit_code == 2 and "nope.jsonl" in missing.output


def test_compare_against_a_running_meter(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws").root
    port = _port()
    proc = _start(ws, port)
    try:
        assert _post(port, ["aa1", "aa2", "bb3"]).status_code == 200
        export = tmp_path / "export.csv"
        export.write_text(
            "event_id,entity_id,ts,type\n"
            "aa1,aa1,2026-03-01T09:00:00Z,x\n"  # the same
            "aa2,aa2,2026-03-01T09:00:00Z,y\n"  # changed type
            "cc4,cc4,2026-03-01T09:00:00Z,x\n"  # never received
        )
        pub = str(ws / "live" / "meter.key.pub")
        url = f"http://127.0.0.1:{port}"
        args = ["log", "compare", "--log", url, "--token", TOKEN, "--events", str(export),
                "-f", "json"]  # fmt: skip
        got = runner.invoke(app, [*args, "--pubkey", pub])
        assert got.exit_code == 1, got.output
        data = json.loads(got.stdout)
        assert data["counts"] == {"export_only": 1, "log_only": 1, "changed": 1, "same": 1}
        assert [e["event_id"] for e in data["log_only"]] == ["bb3"]
        # a key that did not sign the head is refused, in one line
        other = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes_raw())
        bad = runner.invoke(app, [*args, "--pubkey", other.decode()])
        assert bad.exit_code == 2 and "not signed" in bad.output
        no_token = runner.invoke(app, args[:4] + args[6:])
        assert no_token.exit_code == 2 and "401" in no_token.output
    finally:
        proc.terminate()
        proc.wait(timeout=30)
