"""Definition versions and replay, checked against independent computations.

* the known-at filter against pandas, on events that arrive late (``recorded_at`` after ``ts``)
  or carry no ``recorded_at`` at all;
* replay against counting each version separately on a copy of the events filtered in pandas;
* replay of a simple definition against a pandas implementation of it;
* amounts against a hand computation of the terms' rules;
* the versions store's refusals, and the CLI's JSON and exit codes.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlglot

import truecount
from truecount.billing.terms import parse_terms
from truecount.engine.compile import DIALECTS, compile_sql
from truecount.engine.run import count
from truecount.errors import DefinitionError, InputError, WorkspaceError
from truecount.history.replay import (
    ReplayVersion,
    amounts_due,
    period_span,
    replay,
    select_versions,
)
from truecount.history.versions import add_version, list_versions
from truecount.workspace import Workspace

DEFINITION = """\
truecount: 1
name: resolved
version: {version}
unit: ticket
period: {{every: month, timezone: UTC}}
anchor: {{type: closed, actor: ai, pick: first}}
conditions:
  not_reopened:
    absent: {{type: reopened, within: {reopen}d}}
  satisfied:
    exists: {{type: rated, within: 7d, where: "value >= 4"}}
    if_no_data: fail
"""

TERMS = """\
truecount_terms: 1
currency: USD
unit_price: 2.35
discount: 10%
platform_fee: 100
annual_cap: 60
"""


def definition_text(version: int, reopen: int) -> str:
    return DEFINITION.format(version=version, reopen=reopen)


def make_events(seed: int = 7, tickets: int = 400) -> pd.DataFrame:
    """Tickets from January to April 2026, with ratings, reopens and a second close.

    A third of the events carry no recorded_at; of the rest, most arrive within hours and one
    in eight arrives 5 to 40 days late, so "as known at T" differs from "as of T".
    """
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01")
    rows: list[dict[str, object]] = []
    for i in range(tickets):
        tid = f"T{i:04d}"
        created = start + pd.Timedelta(seconds=int(rng.integers(0, 118 * 86400)))
        close = created + pd.Timedelta(seconds=int(rng.integers(60, 3 * 86400)))
        actor = "ai" if rng.random() < 0.8 else "human"
        events = [("created", created, "customer", np.nan), ("closed", close, actor, np.nan)]
        if rng.random() < 0.3:
            reopen = close + pd.Timedelta(seconds=int(rng.integers(3600, 35 * 86400)))
            events.append(("reopened", reopen, "customer", np.nan))
            again = reopen + pd.Timedelta(seconds=int(rng.integers(3600, 5 * 86400)))
            events.append(("closed", again, "ai", np.nan))
        if rng.random() < 0.7:
            rated = close + pd.Timedelta(seconds=int(rng.integers(60, 10 * 86400)))
            events.append(("rated", rated, "customer", float(rng.integers(1, 6))))
        for k, (typ, ts, who, value) in enumerate(events):
            u = rng.random()
            if u < 0.33:
                recorded = pd.NaT
            elif u < 0.45:
                recorded = ts + pd.Timedelta(seconds=int(rng.integers(5 * 86400, 40 * 86400)))
            else:
                recorded = ts + pd.Timedelta(seconds=int(rng.integers(1, 6 * 3600)))
            rows.append(
                {
                    "event_id": f"{tid}-{k}",
                    "entity_id": tid,
                    "ts": ts,
                    "type": typ,
                    "actor": who,
                    "value": value,
                    "recorded_at": recorded,
                }
            )
    frame = pd.DataFrame(rows)
    frame["ts"] = frame["ts"].astype("datetime64[us]")
    frame["recorded_at"] = frame["recorded_at"].astype("datetime64[us]")
    return frame


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return make_events()


def known_copy(events: pd.DataFrame, known_at: pd.Timestamp) -> pd.DataFrame:
    """The events the buyer had at ``known_at``, filtered in pandas."""
    received = events["recorded_at"].fillna(events["ts"])
    return events[received <= known_at].reset_index(drop=True)


def table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def pandas_count(
    events: pd.DataFrame, as_of: pd.Timestamp, reopen_days: int
) -> dict[str, tuple[int, int, int]]:
    """The definition above written directly in pandas: per month (candidates, counted,
    pending) as of ``as_of`` over whatever events it is given."""
    ev = events[events["ts"] <= as_of]
    closes = ev[(ev["type"] == "closed") & (ev["actor"] == "ai")]
    closes = closes.sort_values(["entity_id", "ts", "event_id"]).groupby("entity_id").head(1)
    anchors = closes[["entity_id", "event_id", "ts"]].rename(
        columns={"event_id": "anchor_id", "ts": "anchor_ts"}
    )
    j = anchors.merge(ev, on="entity_id")
    j = j[j["event_id"] != j["anchor_id"]]
    after = j["ts"] - j["anchor_ts"]
    in_reopen = (after >= pd.Timedelta(0)) & (after <= pd.Timedelta(days=reopen_days))
    in_7 = (after >= pd.Timedelta(0)) & (after <= pd.Timedelta(days=7))
    reopened = set(j.loc[(j["type"] == "reopened") & in_reopen, "entity_id"])
    satisfied = set(j.loc[(j["type"] == "rated") & (j["value"] >= 4) & in_7, "entity_id"])
    out = anchors.copy()
    longest = pd.Timedelta(days=max(reopen_days, 7))
    out["pending"] = out["anchor_ts"] + longest > as_of
    good = ~out["entity_id"].isin(reopened) & out["entity_id"].isin(satisfied)
    out["counted"] = good & ~out["pending"]
    out["period"] = out["anchor_ts"].dt.strftime("%Y-%m")
    grouped = out.groupby("period").agg(
        candidates=("entity_id", "size"), counted=("counted", "sum"), pending=("pending", "sum")
    )
    return {
        str(k): (int(r.candidates), int(r.counted), int(r.pending)) for k, r in grouped.iterrows()
    }


AS_OF_TIMES = ["2026-02-01", "2026-03-01T12:00:00", "2026-04-20", "2026-06-30"]


def _end(text: str) -> pd.Timestamp:
    """How the engine reads a time: a bare date is the end of that day."""
    stamp = pd.Timestamp(text)
    if len(text) == 10:
        stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return stamp


# ----------------------------------------------------------------------------- known at


@pytest.mark.parametrize("when", AS_OF_TIMES)
def test_known_at_matches_counting_a_filtered_copy(events: pd.DataFrame, when: str) -> None:
    """The second clock in SQL equals filtering in pandas first, then counting as of T."""
    d = truecount.parse_definition(definition_text(1, 14))
    moment = _end(when)
    held = count(d, table(events), as_of=when, known_at=when)
    plain = count(d, table(known_copy(events, moment)), as_of=when)
    try:
        assert held.periods == plain.periods
        assert held.periods, "the test data must produce candidates"
        assert held.clock is not None and held.clock.known_at == moment.to_pydatetime()
    finally:
        held.close()
        plain.close()


@pytest.mark.parametrize("when", AS_OF_TIMES)
def test_known_at_matches_pandas(events: pd.DataFrame, when: str) -> None:
    """Counted / pending / candidates per month against the definition written in pandas."""
    d = truecount.parse_definition(definition_text(1, 14))
    moment = _end(when)
    result = count(d, table(events), known_at=when)  # as_of defaults to known_at
    try:
        got = {p.period: (p.candidates, p.counted, p.pending) for p in result.periods}
    finally:
        result.close()
    assert got == pandas_count(known_copy(events, moment), moment, 14)


def test_late_records_change_the_count(events: pd.DataFrame) -> None:
    """The filter bites: as known on 1 March differs from as of 1 March by event time only."""
    d = truecount.parse_definition(definition_text(1, 14))
    known = count(d, table(events), as_of="2026-03-01", known_at="2026-03-01")
    by_ts = count(d, table(events), as_of="2026-03-01")
    try:
        assert known.periods != by_ts.periods
        moment = _end("2026-03-01")
        assert {p.period: (p.candidates, p.counted, p.pending) for p in by_ts.periods} == (
            pandas_count(events, moment, 14)
        )
    finally:
        known.close()
        by_ts.close()


def test_clock_reports_which_clock_was_used(events: pd.DataFrame) -> None:
    """all / some / none of the events up to the time carry recorded_at; held back counted."""
    d = truecount.parse_definition(definition_text(1, 14))
    moment = _end("2026-03-01")
    horizon = events[events["ts"] <= moment]
    received = horizon["recorded_at"].fillna(horizon["ts"])

    mixed = count(d, table(events), known_at="2026-03-01")
    assert mixed.clock is not None
    assert mixed.clock.basis == "mixed"
    assert mixed.clock.events == len(horizon)
    assert mixed.clock.with_recorded_at == int(horizon["recorded_at"].notna().sum())
    assert mixed.clock.held_back == int((received > moment).sum()) > 0
    assert "by recorded_at where the export has it" in mixed.clock.note
    mixed.close()

    full = events.assign(recorded_at=events["recorded_at"].fillna(events["ts"]))
    every = count(d, table(full), known_at="2026-03-01")
    assert every.clock is not None and every.clock.basis == "recorded_at"
    assert "as known on 2026-03-01 by recorded_at (all events carry it)" in every.clock.note
    every.close()

    bare = events.assign(recorded_at=pd.Series(pd.NaT, index=events.index, dtype="datetime64[us]"))
    none = count(d, table(bare), known_at="2026-03-01")
    assert none.clock is not None and none.clock.basis == "event_time"
    assert none.clock.held_back == 0
    assert none.clock.note == "as known on 2026-03-01 by event time: the export has no recorded_at"
    data = none.to_json()
    none.close()
    assert data["clock"]["basis"] == "event_time" and data["known_at"].startswith("2026-03-01")


def test_count_json_unchanged_without_known_at(events: pd.DataFrame) -> None:
    d = truecount.parse_definition(definition_text(1, 14))
    result = count(d, table(events), as_of="2026-03-01")
    assert "known_at" not in result.to_json() and "clock" not in result.to_json()
    result.close()


def test_csv_without_recorded_at_falls_back_to_event_time(
    events: pd.DataFrame, tmp_path: Path
) -> None:
    """A file read without recorded_at is stamped at load; that stamp is not a receipt time."""
    path = tmp_path / "events.csv"
    events.drop(columns=["recorded_at"]).to_csv(path, index=False)
    d = truecount.parse_definition(definition_text(1, 14))
    result = count(d, [path], known_at="2026-03-01")
    try:
        assert result.clock is not None and result.clock.basis == "event_time"
        got = {p.period: (p.candidates, p.counted, p.pending) for p in result.periods}
    finally:
        result.close()
    moment = _end("2026-03-01")
    assert got == pandas_count(events, moment, 14)


def test_csv_keeps_its_own_recorded_at(events: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    d = truecount.parse_definition(definition_text(1, 14))
    result = count(d, [path], known_at="2026-03-01")
    try:
        got = {p.period: (p.candidates, p.counted, p.pending) for p in result.periods}
        assert result.clock is not None and result.clock.basis == "mixed"
    finally:
        result.close()
    moment = _end("2026-03-01")
    assert got == pandas_count(known_copy(events, moment), moment, 14)


def test_known_at_sql_in_every_dialect() -> None:
    """The filter is in the SQL tree for every dialect; without it the SQL is unchanged."""
    d = truecount.parse_definition(definition_text(1, 14))
    as_of = dt.datetime(2026, 3, 31, 23, 59, 59)
    for dialect in DIALECTS:
        plain = compile_sql(d, as_of, dialect=dialect)
        assert plain == compile_sql(d, as_of, dialect=dialect, known_at=None)
        assert "recorded_at" not in plain
        sql = compile_sql(d, as_of, dialect=dialect, known_at=dt.datetime(2026, 3, 1))
        tree = sqlglot.parse_one(sql, read=dialect)
        coalesces = [
            c for c in tree.find_all(sqlglot.exp.Coalesce) if "recorded_at" in c.sql(dialect)
        ]
        assert len(coalesces) == 2, dialect  # anchors and the joined events


# ----------------------------------------------------------------------------- replay


def _versions() -> list[ReplayVersion]:
    return [
        ReplayVersion(truecount.parse_definition(definition_text(1, 14)), dt.date(2026, 1, 1), "a"),
        ReplayVersion(
            truecount.parse_definition(definition_text(2, 30)), dt.date(2026, 3, 15), "b"
        ),
    ]


@pytest.mark.parametrize("when", AS_OF_TIMES)
def test_replay_equals_counting_each_version_separately(events: pd.DataFrame, when: str) -> None:
    versions = _versions()
    result = replay(versions, table(events), as_of=when)
    moment = _end(when)
    copy = known_copy(events, moment)
    (name,) = result.definitions
    assert [v.definition.version for v in name.versions] == [1, 2]
    for i, v in enumerate(name.versions):
        separate = count(v.definition, table(copy), as_of=when)
        expected = {p.period: p for p in separate.periods}
        separate.close()
        got = {p.period: p.cells[i] for p in name.periods if p.cells[i] is not None}
        assert set(got) == set(expected)
        for key, cell in got.items():
            e = expected[key]
            assert (cell.candidates, cell.counted, cell.not_counted, cell.pending) == (
                e.candidates,
                e.counted,
                e.not_counted,
                e.pending,
            )
            assert cell.excluded == e.excluded and cell.quantity == e.quantity
    assert result.clock is not None and result.clock.known_at == moment.to_pydatetime()


def test_replay_matches_pandas(events: pd.DataFrame) -> None:
    when = "2026-04-20"
    moment = _end(when)
    result = replay(_versions(), table(events), as_of=when)
    (name,) = result.definitions
    copy = known_copy(events, moment)
    for i, reopen in enumerate((14, 30)):
        got = {
            p.period: (c.candidates, c.counted, c.pending)
            for p in name.periods
            if (c := p.cells[i]) is not None
        }
        assert got == pandas_count(copy, moment, reopen)


def test_versions_differ_so_the_replay_can_fail(events: pd.DataFrame) -> None:
    """Version 2 (30-day reopen window) counts fewer than version 1 in some period."""
    result = replay(_versions(), table(events), as_of="2026-06-30")
    (name,) = result.definitions
    totals = name.totals()
    assert totals[1].counted < totals[0].counted


def test_in_effect_by_effective_dates(events: pd.DataFrame) -> None:
    result = replay(_versions(), table(events), as_of="2026-06-30")
    (name,) = result.definitions
    marks = {p.period: (p.in_effect, p.changed_during) for p in name.periods}
    assert marks["2026-01"] == (0, ())
    assert marks["2026-02"] == (0, ())
    assert marks["2026-03"] == (0, (1,))  # v2 took effect on 15 March
    assert marks["2026-04"] == (1, ())
    data = result.to_json()["definitions"][0]
    march = next(p for p in data["periods"] if p["period"] == "2026-03")
    assert march["in_effect"]["version"] == 1
    assert march["changed_during"][0]["effective"] == "2026-03-15"


def test_versions_without_dates_mark_nothing(events: pd.DataFrame) -> None:
    undated = [ReplayVersion(v.definition, None, "file") for v in _versions()]
    (name,) = replay(undated, table(events), as_of="2026-06-30").definitions
    assert all(p.in_effect is None and not p.changed_during for p in name.periods)


def test_amounts_follow_the_terms(events: pd.DataFrame) -> None:
    """Units x price x (1 - discount), capped per calendar year in period order, plus the fee,
    rounded half up once per period, computed here by hand."""
    terms = parse_terms(TERMS)
    result = replay(_versions(), table(events), as_of="2026-06-30", terms=terms)
    (name,) = result.definitions
    for i in range(2):
        room = Decimal(60)
        for p in name.periods:
            cell = p.cells[i]
            assert cell is not None
            charge = Decimal(cell.counted) * Decimal("2.35") * Decimal("0.9")
            charge = min(charge, room)
            room -= charge
            expected = (charge + 100).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
            assert cell.amount == expected, (i, p.period)
        assert room == 0  # the cap was reached, so the test exercises it
    money = amounts_due(terms, [("2026-01", 3.0), ("2027-01", 1.0)])
    assert money == {"2026-01": Decimal("106.35"), "2027-01": Decimal("102.12")}


def test_money_outcome_uses_the_quantity() -> None:
    """For a money outcome the units are the amount, not the number counted."""
    terms = parse_terms("truecount_terms: 1\ncurrency: USD\nunit_price: 0.2\n")
    assert amounts_due(terms, [("2026-01", 1234.5)]) == {"2026-01": Decimal("246.90")}
    assert amounts_due(terms, [("2026-01", -10.0)]) == {"2026-01": Decimal("-2.00")}


def test_period_filter_and_errors(events: pd.DataFrame) -> None:
    result = replay(_versions(), table(events), as_of="2026-06-30", period="2026-02")
    assert [p.period for p in result.definitions[0].periods] == ["2026-02"]
    with pytest.raises(InputError, match="2027-01"):
        replay(_versions(), table(events), as_of="2026-06-30", period="2027-01")
    with pytest.raises(InputError, match="not a time"):
        replay(_versions(), table(events), as_of="soon")


def test_replay_without_as_of_counts_everything(events: pd.DataFrame) -> None:
    result = replay(_versions()[:1], table(events))
    assert result.clock is None and result.to_json()["known_at"] is None
    full = count(_versions()[0].definition, table(events))
    expected = {p.period: p.counted for p in full.periods}
    full.close()
    got = {p.period: c.counted for p in result.definitions[0].periods if (c := p.cells[0])}
    assert got == expected


def test_period_span() -> None:
    assert period_span("2026-02") == (dt.date(2026, 2, 1), dt.date(2026, 3, 1))
    assert period_span("2026-12") == (dt.date(2026, 12, 1), dt.date(2027, 1, 1))
    assert period_span("2026-Q4") == (dt.date(2026, 10, 1), dt.date(2027, 1, 1))
    assert period_span("2026-Q1") == (dt.date(2026, 1, 1), dt.date(2026, 4, 1))
    assert period_span("2026-W01") == (dt.date(2025, 12, 29), dt.date(2026, 1, 5))
    assert period_span("2026-03-05") == (dt.date(2026, 3, 5), dt.date(2026, 3, 6))
    assert period_span("2026") == (dt.date(2026, 1, 1), dt.date(2027, 1, 1))
    assert period_span("total") is None


# ----------------------------------------------------------------------------- versions store


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_versions_add_and_list(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    v1 = write(tmp_path, "v1.yaml", definition_text(1, 14))
    v2 = write(tmp_path, "v2.yaml", "# the 30-day window\n" + definition_text(2, 30))
    added, stored = add_version(ws, v1, "2026-01-01")
    assert (added.version, added.effective) == (1, dt.date(2026, 1, 1))
    added, stored = add_version(ws, v2, "2026-03-15")
    d2 = truecount.load_definition(v2)
    assert added.sha256 == d2.sha256 and added.canonical_text == d2.canonical_text
    assert added.yaml_text.startswith("# the 30-day window")  # the original text, comments kept
    assert [(v.version, v.effective, v.until) for v in stored] == [
        (1, dt.date(2026, 1, 1), dt.date(2026, 3, 14)),
        (2, dt.date(2026, 3, 15), None),
    ]
    assert list_versions(ws) == stored
    assert stored[1].definition() == d2


def test_versions_refusals(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    v1 = write(tmp_path, "v1.yaml", definition_text(1, 14))
    add_version(ws, v1, "2026-01-01")
    with pytest.raises(WorkspaceError, match="already stored as resolved v1"):
        add_version(
            ws, write(tmp_path, "copy.yaml", "# same\n" + definition_text(1, 14)), "2026-02-01"
        )
    with pytest.raises(WorkspaceError, match="already stored with a different text"):
        add_version(ws, write(tmp_path, "v1b.yaml", definition_text(1, 21)), "2026-02-01")
    v2 = write(tmp_path, "v2.yaml", definition_text(2, 30))
    with pytest.raises(WorkspaceError, match="already takes effect on 2026-01-01"):
        add_version(ws, v2, "2026-01-01")
    with pytest.raises(WorkspaceError, match="before v1"):
        add_version(ws, v2, "2025-12-01")
    with pytest.raises(InputError, match="not a date"):
        add_version(ws, v2, "March")
    with pytest.raises(DefinitionError, match="no such file"):
        add_version(ws, tmp_path / "missing.yaml", "2026-03-01")
    assert [v.version for v in list_versions(ws)] == [1]  # nothing refused was stored


def test_select_versions(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    v1 = write(tmp_path, "v1.yaml", definition_text(1, 14))
    v2 = write(tmp_path, "v2.yaml", definition_text(2, 30))
    add_version(ws, v1, "2026-01-01")
    add_version(ws, v2, "2026-03-15")
    stored = list_versions(ws)
    assert [v.definition.version for v in select_versions([], stored)] == [1, 2]
    assert [v.definition.version for v in select_versions(["resolved@2"], stored)] == [2]
    from_file = select_versions([str(v1)], stored)
    assert from_file[0].effective == dt.date(2026, 1, 1)  # the file's text is stored
    assert len(select_versions([str(v1), "resolved"], stored)) == 2  # v1 once
    with pytest.raises(InputError, match="stored: resolved"):
        select_versions(["other"], stored)
    with pytest.raises(InputError, match="no definition versions are stored"):
        select_versions([], [])


def test_old_store_without_the_table_lists_nothing(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    with ws.connect() as con:
        con.execute("DROP TABLE definition_versions")
    assert list_versions(ws) == []
    added, _ = add_version(ws, write(tmp_path, "v1.yaml", definition_text(1, 14)), "2026-01-01")
    assert added.version == 1


# ----------------------------------------------------------------------------- CLI


def tc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "truecount", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def cli_workspace(tmp_path_factory: pytest.TempPathFactory, events: pd.DataFrame) -> Path:
    root = tmp_path_factory.mktemp("cli")
    ws = Workspace.init(root / "ws")
    events.to_parquet(root / "events.parquet", index=False)
    from truecount.ingest import ingest_files

    ingest_files(ws, [root / "events.parquet"])
    write(root, "v1.yaml", definition_text(1, 14))
    write(root, "v2.yaml", definition_text(2, 30))
    write(root, "terms.yaml", TERMS)
    return root


def test_cli_versions_and_replay(cli_workspace: Path, events: pd.DataFrame) -> None:
    root = cli_workspace
    ws = root / "ws"
    proc = tc(
        "versions", "add", root / "v1.yaml", "--effective", "2026-01-01", "-w", ws, "-f", "json"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["stored"]["version"] == 1
    proc = tc("versions", "add", root / "v2.yaml", "--effective", "2026-03-15", "-w", ws)
    assert proc.returncode == 0, proc.stderr
    assert "2026-03-15" in proc.stdout

    again = tc("versions", "add", root / "v2.yaml", "--effective", "2026-04-01", "-w", ws)
    assert again.returncode == 2
    assert "already stored as resolved v2" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    listed = json.loads(tc("versions", "list", "-w", ws, "--format", "json").stdout)
    assert [(v["version"], v["effective"], v["until"]) for v in listed["versions"]] == [
        (1, "2026-01-01", "2026-03-14"),
        (2, "2026-03-15", None),
    ]
    assert json.loads(tc("versions", "-w", ws, "-f", "json").stdout) == listed

    proc = tc(
        "replay", "-w", ws, "--as-of", "2026-04-20", "--terms", root / "terms.yaml", "-f", "json"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"as_of", "known_at", "clock", "terms", "events", "definitions"}
    assert data["clock"]["basis"] == "mixed"
    (name,) = data["definitions"]
    assert set(name) == {"name", "unit", "versions", "periods", "totals"}
    assert [v["effective"] for v in name["versions"]] == ["2026-01-01", "2026-03-15"]
    moment = _end("2026-04-20")
    copy = known_copy(events, moment)
    for i, reopen in enumerate((14, 30)):
        got = {
            p["period"]: (p["versions"][i]["candidates"], p["versions"][i]["counted"],
                          p["versions"][i]["pending"])
            for p in name["periods"]
        }  # fmt: skip
        assert got == pandas_count(copy, moment, reopen)
    april = next(p for p in name["periods"] if p["period"] == "2026-04")
    assert april["in_effect"]["version"] == 2
    assert all(isinstance(p["versions"][0]["amount"], str) for p in name["periods"])

    table_out = tc("replay", "-w", ws, "--as-of", "2026-04-20")
    assert table_out.returncode == 0, table_out.stderr
    assert "by recorded_at where the export has it" in table_out.stdout

    files = tc("replay", "--events", root / "events.parquet", "-d", root / "v1.yaml",
               "--as-of", "2026-04-20", "-w", ws, "-f", "json")  # fmt: skip
    assert files.returncode == 0, files.stderr
    (only,) = json.loads(files.stdout)["definitions"]
    assert only["versions"][0]["effective"] == "2026-01-01"  # found by its hash

    def counts(cell: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in cell.items() if k != "amount"}

    assert [counts(p["versions"][0]) for p in only["periods"]] == [
        counts(p["versions"][0]) for p in name["periods"]
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["replay", "-d", "nosuch", "--as-of", "2026-03-01"], "no stored version nosuch"),
        (["replay", "-d", "{v1}", "--as-of", "March"], "not a time"),
        (["replay", "-d", "{v1}", "--period", "1999-01"], "1999-01"),
        (["replay", "-d", "{v1}", "-f", "xml"], "'xml' is not one of"),
        (["replay", "-d", "{root}/nosuch.yaml"], "no such file"),
        (["replay", "-d", "{v1}", "--terms", "{v1}"], "unknown key"),
        (["versions", "add", "missing.yaml", "--effective", "2026-01-01"], "no such file"),
    ],
)
def test_cli_bad_input_exits_2(cli_workspace: Path, args: list[str], message: str) -> None:
    filled = [a.format(v1=cli_workspace / "v1.yaml", root=cli_workspace) for a in args]
    proc = tc(*filled, "-w", cli_workspace / "ws")
    assert proc.returncode == 2
    assert message in proc.stderr
