"""count / explain / sql as a user runs them, checked against a pandas computation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = ROOT / "examples" / "support"
DEFINITION = ROOT / "examples" / "resolved_ticket.yaml"


def tc(*args: str | Path, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "truecount", *map(str, args)], capture_output=True, text=True
    )
    assert proc.returncode in ok, proc.stderr
    return proc


def pandas_resolved(events: pd.DataFrame) -> pd.DataFrame:
    """The resolved-ticket definition written directly in pandas, as an analyst would."""
    ev = events.copy()
    ev["ts"] = pd.to_datetime(ev["ts"], utc=True).dt.tz_localize(None)
    as_of = ev["ts"].max()
    closes = ev[(ev["type"] == "closed") & (ev["actor"] == "ai")].sort_values(
        ["entity_id", "ts", "seq", "event_id"]
    )
    anchors = closes.groupby("entity_id").head(1)[["entity_id", "event_id", "ts"]]
    anchors = anchors.rename(columns={"event_id": "anchor_id", "ts": "anchor_ts"})
    j = anchors.merge(ev, on="entity_id")
    j = j[j["event_id"] != j["anchor_id"]]
    after = j["ts"] - j["anchor_ts"]
    in14 = (after >= pd.Timedelta(0)) & (after <= pd.Timedelta(days=14))
    in7 = (after >= pd.Timedelta(0)) & (after <= pd.Timedelta(days=7))
    reopened = j[(j["type"] == "reopened") & in14].groupby("entity_id").size()
    good = j[(j["type"] == "rated") & (j["value"] >= 4) & in7].groupby("entity_id").size()
    out = anchors.set_index("entity_id")
    out["reopened"] = reopened.reindex(out.index).fillna(0) > 0
    out["satisfied"] = good.reindex(out.index).fillna(0) > 0
    pending = out["anchor_ts"] + pd.Timedelta(days=14) > as_of
    out["status"] = "not_counted"
    out.loc[~out["reopened"] & out["satisfied"], "status"] = "counted"
    out.loc[pending, "status"] = "pending"
    out["period"] = out["anchor_ts"].dt.strftime("%Y-%m")
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("ws")
    tc("init", ws)
    tc("ingest", SUPPORT / "ticket_updates.csv", "--mapping", SUPPORT / "mapping.yaml", "-w", ws)
    tc("ingest", SUPPORT / "ratings.csv", "--mapping", SUPPORT / "ratings_mapping.yaml", "-w", ws)
    return ws


def test_count_json_matches_pandas(workspace: Path) -> None:
    expected = pandas_resolved(pd.read_csv(SUPPORT / "events.csv"))
    got = json.loads(tc("count", DEFINITION, "-w", workspace, "--format", "json").stdout)
    assert set(got) == {"definition", "as_of", "periods", "reasons", "choices"}
    assert got["choices"] == []  # canonical files: no adapter, no choices
    for period in got["periods"]:
        sub = expected[expected["period"] == period["period"]]
        assert period["candidates"] == len(sub)
        for status in ("counted", "not_counted", "pending"):
            assert period[status] == int((sub["status"] == status).sum()), (period, status)
        assert period["quantity"] == period["counted"]
    assert sum(p["candidates"] for p in got["periods"]) == len(expected)
    nc = expected[expected["status"] == "not_counted"]
    reasons = {r["condition"]: r["entities"] for r in got["reasons"]}
    assert reasons == {
        "not_reopened": int(nc["reopened"].sum()),
        "satisfied": int((~nc["satisfied"]).sum()),
    }


def test_workspace_and_files_agree(workspace: Path) -> None:
    a = json.loads(tc("count", DEFINITION, "-w", workspace, "-f", "json").stdout)
    b = json.loads(tc("count", DEFINITION, "--events", SUPPORT / "events.csv", "-f", "json").stdout)
    assert a == b


def test_out_writes_one_row_per_candidate(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "verdicts.csv"
    tc("count", DEFINITION, "-w", workspace, "--out", out)
    verdicts = pd.read_csv(out)
    expected = pandas_resolved(pd.read_csv(SUPPORT / "events.csv"))
    assert list(verdicts.columns[:7]) == [
        "entity_id", "anchor_event_id", "anchor_ts", "period", "status", "quantity", "reason",
    ]  # fmt: skip
    got = verdicts.set_index("entity_id")["status"].sort_index()
    assert got.to_dict() == expected["status"].sort_index().to_dict()
    parquet = tmp_path / "verdicts.parquet"
    tc("count", DEFINITION, "-w", workspace, "--out", parquet, "--period", "2026-03")
    assert set(pd.read_parquet(parquet)["period"]) == {"2026-03"}


def test_explain_names_the_deciding_event(workspace: Path) -> None:
    expected = pandas_resolved(pd.read_csv(SUPPORT / "events.csv"))
    reopened = expected[expected["reopened"]].index[0]
    got = json.loads(tc("explain", DEFINITION, reopened, "-w", workspace, "-f", "json").stdout)
    anchor = got["anchors"][0]
    assert anchor["status"] in {"not_counted", "pending"}
    cond = next(c for c in anchor["conditions"] if c["name"] == "not_reopened")
    assert cond["passed"] is False
    events = {e["event_id"]: e for e in got["events"]}
    assert events[cond["decided_by"]]["type"] == "reopened"
    table = tc("explain", DEFINITION, reopened, "-w", workspace).stdout
    assert "not_reopened" in table and "anchor" in table


def test_explain_unknown_entity_exits_2(workspace: Path) -> None:
    proc = tc("explain", DEFINITION, "NOPE", "-w", workspace, ok=(2,))
    assert "entity 'NOPE' has no events" in proc.stderr


@pytest.mark.parametrize(
    "dialect", ["duckdb", "spark", "snowflake", "bigquery", "trino", "postgres"]
)
def test_sql_prints_each_dialect(dialect: str) -> None:
    out = tc("sql", DEFINITION, "--dialect", dialect, "--as-of", "2026-03-31").stdout
    assert "WITH" in out and "not_reopened" in out


def test_bad_inputs_exit_2(tmp_path: Path) -> None:
    assert "no truecount workspace" in tc("count", DEFINITION, "-w", tmp_path, ok=(2,)).stderr
    assert "unknown dialect" in tc("sql", DEFINITION, "--dialect", "oracle", ok=(2,)).stderr
    assert (
        "is not a time"
        in tc(
            "count", DEFINITION, "--events", SUPPORT / "events.csv", "--as-of", "yesterday", ok=(2,)
        ).stderr
    )
    missing = tmp_path / "missing.parquet"
    pd.DataFrame({"entity_id": ["a"], "type": ["closed"]}).to_parquet(missing)
    err = tc("count", DEFINITION, "--events", missing, ok=(2,)).stderr
    assert "missing required column ts" in err


def test_csv_out_neutralises_formulas(tmp_path: Path) -> None:
    events = tmp_path / "events.parquet"
    pd.DataFrame(
        {
            "event_id": ["1"],
            "entity_id": ['=HYPERLINK("http://x","y")'],
            "ts": [pd.Timestamp("2026-01-01")],
            "type": ["closed"],
            "actor": ["ai"],
        }
    ).to_parquet(events)
    out = tmp_path / "v.csv"
    tc("count", DEFINITION, "--events", events, "--out", out)
    text = out.read_text()
    assert "'=HYPERLINK" in text and "\n=" not in text


def test_empty_workspace_says_why_nothing_counts(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    tc("init", ws)
    proc = tc("count", DEFINITION, "-w", ws)
    assert "no events in workspace" in proc.stderr
    other = tmp_path / "other.parquet"
    pd.DataFrame(
        {"entity_id": ["a"], "ts": [pd.Timestamp("2026-01-01")], "type": ["created"]}
    ).to_parquet(other)
    proc = tc("count", DEFINITION, "--events", other)
    assert "none is a 'closed' event by 'ai'" in proc.stderr


def test_count_known_at_leaves_out_what_arrived_later(tmp_path: Path) -> None:
    """--known-at: an event recorded after that time is not seen; the JSON says which clock."""
    events = pd.read_csv(SUPPORT / "events.csv")
    ts = pd.to_datetime(events["ts"], utc=True).dt.tz_localize(None)
    # every event arrives an hour after it happened, except the ratings, a month late
    late = events["type"] == "rated"
    recorded = ts + pd.Timedelta(hours=1)
    recorded[late] = ts[late] + pd.Timedelta(days=30)
    events["recorded_at"] = recorded.dt.strftime("%Y-%m-%dT%H:%M:%S")
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    known = ts.max() + pd.Timedelta(days=2)
    got = json.loads(
        tc("count", DEFINITION, "-e", path, "--known-at", known.isoformat(), "-f", "json").stdout
    )
    # independent: the same count in pandas on the events received by then
    seen = events[recorded <= known].drop(columns=["recorded_at"])
    expected = pandas_resolved(seen)
    assert sum(p["candidates"] for p in got["periods"]) == len(expected)
    assert sum(p["counted"] for p in got["periods"]) == int((expected["status"] == "counted").sum())
    assert got["clock"]["basis"] == "recorded_at"
    assert got["clock"]["held_back"] == int(((ts <= known) & (recorded > known)).sum()) > 0
