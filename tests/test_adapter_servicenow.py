"""ServiceNow incident update logs: ingest counts, events and counted outcomes, each checked
against an expectation computed here from the fixture files with csv/json and plain Python
(never from the events table or the engine)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
from typer.testing import CliRunner

import truecount.cli.workspace_cmds  # noqa: F401  (registers the verbs)
from truecount.adapters import get_adapter, ingest_source, source_names
from truecount.cli.app import app
from truecount.definition import Definition
from truecount.definition.load import load_definition, parse_definition
from truecount.engine.run import count
from truecount.errors import InputError
from truecount.ingest import ingest_files
from truecount.ingest.report import FileReport
from truecount.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "servicenow"
AS_OF = dt.datetime(2026, 3, 1)
HISTORY = ["incident_updates.csv", "incidents_api.json", "incidents_api_pages.jsonl"]

# The base instance's incident states, written out here independently of the adapter.
LABELS = {"new": "1", "in progress": "2", "on hold": "3", "resolved": "6", "closed": "7"}
LABELS["canceled"] = "8"
CODES = set(LABELS.values())
DEFAULT_AI = {"virtual.agent", "now.assist", "virtual agent", "now assist"}
DEFAULT_CLOSED = {"6", "7"}

runner = CliRunner()


# --------------------------------------------------------------------------- reading fixtures


@dataclass(frozen=True)
class Row:
    """One update record as the test reads it from the fixture file."""

    record: int  # 1-based position in the file, as the quarantine reports it
    raw: dict[str, Any] | None  # None: a line that is not JSON
    number: str | None
    mod: int | None
    mod_raw: str | None
    ts: dt.datetime | None
    ts_raw: str | None
    state: str | None  # the code
    state_raw: str | None
    by: str | None
    assignee: str | None
    opened: dt.datetime | None


def _plain(value: Any, shown: bool = False) -> str | None:
    """A Table API value: the object's value (or display value), else the text itself."""
    if isinstance(value, dict):
        value = (value.get("display_value") or value.get("value")) if shown else value["value"]
    return None if value in (None, "") else str(value)


def _time(value: Any, zone: str) -> tuple[dt.datetime | None, str | None]:
    text = _plain(value)
    if text is None:
        return None, None
    try:
        local = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None, text
    if isinstance(value, dict):  # Table API objects: 'value' is UTC
        return local, text
    utc = local.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)
    return utc.replace(tzinfo=None), text


def _row(record: int, raw: dict[str, Any], zone: str) -> Row:
    mod_raw = _plain(raw.get("sys_mod_count"))
    state_raw = _plain(raw.get("state"))
    code = None
    if state_raw is not None:
        code = state_raw if state_raw in CODES else LABELS.get(state_raw.lower())
    ts, ts_raw = _time(raw.get("sys_updated_on"), zone)
    opened, _ = _time(raw.get("opened_at"), zone)
    return Row(
        record=record,
        raw=raw,
        number=_plain(raw.get("number")),
        mod=int(mod_raw) if mod_raw is not None and mod_raw.isdigit() else None,
        mod_raw=mod_raw,
        ts=ts,
        ts_raw=ts_raw,
        state=code,
        state_raw=state_raw,
        by=_plain(raw.get("sys_updated_by")),
        assignee=_plain(raw.get("assigned_to"), shown=True),
        opened=opened,
    )


def read_rows(name: str, zone: str = "UTC") -> list[Row]:
    """Every record of a fixture file, numbered as the loader numbers them."""
    path = FIX / name
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [_row(i, dict(r), zone) for i, r in enumerate(csv.DictReader(handle), 1)]
    if path.suffix == ".json":
        records = json.loads(path.read_text(encoding="utf-8"))["result"]
        return [_row(i, r, zone) for i, r in enumerate(records, 1)]
    rows: list[Row] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            page = json.loads(line)
        except json.JSONDecodeError:
            rows.append(Row(len(rows) + 1, None, *[None] * 10))
            continue
        for record in page["result"]:
            rows.append(_row(len(rows) + 1, record, zone))
    return rows


def problem(row: Row) -> str | None:
    """Which field makes a record unusable on its own, or None."""
    if row.raw is None:
        return "line"
    if row.number is None:
        return "number"
    if row.ts is None:
        return "sys_updated_on"
    if row.mod is None:
        return "sys_mod_count"
    if row.state is None:
        return "state"
    return None


@dataclass
class Split:
    good: list[Row]  # first occurrence of every (incident, counter)
    duplicate: list[Row]  # identical repeats
    bad: dict[int, str]  # record -> field


def split(rows: list[Row]) -> Split:
    """Good, duplicate and bad rows. Copies of one update counter that all agree are one
    update (the first good, the others duplicates); when they disagree, every copy is bad."""
    out = Split([], [], {})
    copies: dict[tuple[str, int], list[Row]] = defaultdict(list)
    for row in rows:
        field = problem(row)
        if field is not None:
            out.bad[row.record] = field
            continue
        assert row.number is not None and row.mod is not None
        copies[(row.number, row.mod)].append(row)
    for same in copies.values():
        if len({json.dumps(r.raw, sort_keys=True) for r in same}) > 1:
            out.bad.update({r.record: "sys_mod_count" for r in same})
        else:
            out.good.append(same[0])
            out.duplicate.extend(same[1:])
    return out


@dataclass(frozen=True)
class Change:
    entity: str
    type: str
    ts: dt.datetime
    actor: str | None
    mod: int


def actor(user: str | None, ai: set[str]) -> str | None:
    if user is None:
        return None
    if user.lower() in ai:
        return "ai"
    return "system" if user.lower() == "system" else "human"


def transitions(
    rows: list[Row], ai: set[str] = DEFAULT_AI, closed: set[str] = DEFAULT_CLOSED
) -> list[Change]:
    """Closes and reopens, walking each incident's updates in (time, counter) order."""
    by_incident: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        assert row.number is not None
        by_incident[row.number].append(row)
    out: list[Change] = []
    for number, updates in by_incident.items():
        previous: str | None = None
        for i, row in enumerate(sorted(updates, key=lambda r: (r.ts, r.mod))):
            assert row.ts is not None and row.mod is not None and row.state is not None
            who = actor(row.by, ai)
            if row.state in closed and (
                (i == 0 and row.mod == 0) or (i > 0 and previous not in closed)
            ):
                out.append(Change(number, "closed", row.ts, who, row.mod))
            if i > 0 and previous in closed and row.state not in closed:
                out.append(Change(number, "reopened", row.ts, who, row.mod))
            previous = row.state
    return out


def ratings() -> dict[str, list[tuple[dt.datetime, float]]]:
    out: dict[str, list[tuple[dt.datetime, float]]] = defaultdict(list)
    with (FIX / "survey_results.csv").open(newline="", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            when = dt.datetime.strptime(r["taken_on"], "%Y-%m-%d %H:%M:%S")
            out[r["trigger_id"]].append((when, float(r["actual_value"])))
    return out


def escalations(rows: list[Row], ai: set[str]) -> set[str]:
    """Incidents whose assignee changed from an AI identity to anyone else."""
    out = set()
    by_incident: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        assert row.number is not None
        by_incident[row.number].append(row)
    for number, updates in by_incident.items():
        ordered = sorted(updates, key=lambda r: (r.ts, r.mod))
        for before, after in pairwise(ordered):
            was_ai = before.assignee is not None and before.assignee.lower() in ai
            now_ai = after.assignee is not None and after.assignee.lower() in ai
            if was_ai and not now_ai:
                out.add(number)
    return out


def expected_verdicts(
    changes: list[Change], rule: str, escalated: set[str] | None = None
) -> dict[str, str]:
    """Verdict per candidate: the first AI close, no reopen in 14 days, and per ``rule``:
    ``any`` a rating >= 4 within 7 days, ``last`` the last rating within 7 days >= 4,
    ``escalation`` never escalated."""
    rated = ratings()
    anchors: dict[str, dt.datetime] = {}
    for c in sorted(changes, key=lambda c: (c.ts, c.mod)):
        if c.type == "closed" and c.actor == "ai":
            anchors.setdefault(c.entity, c.ts)
    out = {}
    for entity, at in anchors.items():
        if at + dt.timedelta(days=14) > AS_OF:
            out[entity] = "pending"
            continue
        reopened = any(
            c.entity == entity and c.type == "reopened" and at <= c.ts <= at + dt.timedelta(days=14)
            for c in changes
        )
        week = sorted(r for r in rated.get(entity, []) if at <= r[0] <= at + dt.timedelta(days=7))
        if rule == "any":
            ok = any(score >= 4 for _, score in week)
        elif rule == "last":
            ok = bool(week) and week[-1][1] >= 4
        else:
            ok = entity not in (escalated or set())
        out[entity] = "counted" if ok and not reopened else "not_counted"
    return out


def good_history(zone: str = "UTC") -> list[Row]:
    return [row for name in HISTORY for row in split(read_rows(name, zone)).good]


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def ingest(con: duckdb.DuckDBPyConnection, *names: str, **options: str) -> dict[str, FileReport]:
    report = ingest_source(con, "servicenow", [FIX / n for n in names], options=options)
    return {Path(f.file).name: f for f in report.files}


def verdicts(definition: Definition, ws: Workspace) -> dict[str, str]:
    result = count(definition, ws, as_of=AS_OF)
    table = result.verdicts.to_pylist()
    return {r["entity_id"]: r["status"] for r in table}


def workspace(tmp_path: Path, **options: str) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    with ws.connect() as c:
        ingest_source(c, "servicenow", [FIX / n for n in HISTORY], options=options)
    ingest_files(ws, [FIX / "survey_results.csv"], mapping=FIX / "survey_mapping.yaml")
    return ws


NOT_ESCALATED = parse_definition(
    """
truecount: 1
name: incident_resolved_by_ai
version: 1
description: Resolved by the AI, not reopened within 14 days, never handed to a human.
unit: incident
period: {every: month, timezone: UTC}
anchor: {type: closed, actor: ai, pick: first}
conditions:
  not_reopened:
    absent: {type: reopened, within: 14d}
  never_escalated:
    absent: {type: escalated, lifetime: true}
quantity: 1
""",
    "incident_resolved_by_ai.yaml",
)


# --------------------------------------------------------------------------- (a) counts


@pytest.mark.parametrize("name", [*HISTORY, "incident_updates_bad.csv", "incident_current.csv"])
def test_counts_per_file_match_the_fixture(con: duckdb.DuckDBPyConnection, name: str) -> None:
    rows = read_rows(name)
    parts = split(rows)
    got = ingest(con, name)[name]
    assert got.rows_read == len(rows)
    assert got.quarantined == len(parts.bad)
    assert got.duplicate == len(parts.duplicate)
    assert got.loaded == len(parts.good)
    assert got.rows_read == got.loaded + got.duplicate + got.quarantined
    quarantined = con.execute("SELECT row_number, column_name FROM quarantine").fetchall()
    assert {r for r, _ in quarantined} == set(parts.bad)


def test_every_good_update_is_one_status_change(con: duckdb.DuckDBPyConnection) -> None:
    ingest(con, *HISTORY)
    good = good_history()
    got = con.execute(
        "SELECT entity_id, seq, ts, actor FROM events WHERE type = 'status_changed'"
    ).fetchall()
    assert sorted(got) == sorted((r.number, r.mod, r.ts, actor(r.by, DEFAULT_AI)) for r in good)


# --------------------------------------------------------------------------- (b) events


def test_closes_and_reopens_match_the_update_order(con: duckdb.DuckDBPyConnection) -> None:
    ingest(con, *HISTORY)
    expected = {(c.entity, c.type, c.ts, c.actor, c.mod) for c in transitions(good_history())}
    got = con.execute(
        "SELECT entity_id, type, ts, actor, seq FROM events WHERE type IN ('closed', 'reopened')"
    ).fetchall()
    assert len(got) == len(expected)
    assert set(got) == expected


def test_same_second_updates_follow_the_counter(con: duckdb.DuckDBPyConnection) -> None:
    """INC0010008: the file lists the caller's reopen (counter 2) before the AI's resolve
    (counter 1), both in the same second. In counter order it is close, then reopen."""
    ingest(con, "incident_updates.csv")
    csv_order = [r.mod for r in read_rows("incident_updates.csv") if r.number == "INC0010008"]
    assert csv_order[1:3] == [2, 1]  # the fixture really is out of order
    got = con.execute(
        "SELECT type, actor, attrs->>'from', attrs->>'to' FROM events "
        "WHERE entity_id = 'INC0010008' AND type IN ('closed', 'reopened') "
        "ORDER BY ts, seq, event_id"
    ).fetchall()
    assert got == [
        ("closed", "ai", "New", "Resolved"),
        ("reopened", "human", "Resolved", "In Progress"),
        ("closed", "human", "In Progress", "Resolved"),
    ]
    # INC0010009: the AI took it (In Progress) and resolved it in the same second.
    row = con.execute(
        "SELECT attrs->>'from', attrs->>'from_code', attrs->>'to_code' FROM events "
        "WHERE entity_id = 'INC0010009' AND type = 'closed'"
    ).fetchall()
    assert row == [("In Progress", "2", "6")]


def test_resolved_then_closed_is_one_close(con: duckdb.DuckDBPyConnection) -> None:
    ingest(con, "incident_updates.csv", "incidents_api.json")
    got = con.execute(
        "SELECT entity_id, count(*) FROM events WHERE type = 'closed' "
        "AND entity_id IN ('INC0010001', 'INC0010010', 'INC0010101') GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert got == [("INC0010001", 1), ("INC0010010", 1), ("INC0010101", 1)]
    # Canceled is not a close.
    assert not con.execute(
        "SELECT 1 FROM events WHERE entity_id = 'INC0010011' AND type = 'closed'"
    ).fetchall()


def test_created_escalated_and_lineage(con: duckdb.DuckDBPyConnection) -> None:
    ingest(con, *HISTORY)
    good = good_history()
    opened = {r.number: r.opened for r in good}
    created = dict(
        con.execute("SELECT entity_id, ts FROM events WHERE type = 'created'").fetchall()
    )
    assert created == opened
    got = {
        r[0]
        for r in con.execute("SELECT entity_id FROM events WHERE type = 'escalated'").fetchall()
    }
    assert got == escalations(good, DEFAULT_AI)
    assert {"INC0010005", "INC0010104"} <= got
    team = con.execute(
        "SELECT attrs->>'assignment_group', attrs->>'assignee' FROM events "
        "WHERE entity_id = 'INC0010104' AND type = 'escalated'"
    ).fetchall()
    assert team == [("Network", None)]
    attrs = json.loads(
        con.execute(
            "SELECT attrs FROM events WHERE event_id = 'servicenow:incident:INC0010001:1/closed'"
        ).fetchall()[0][0]
    )
    assert attrs["vendor"] == "servicenow" and attrs["record"] == "incident_updates"
    assert (
        attrs["origin"]["ts"] == "sys_updated_on" and attrs["origin"]["actor"] == "sys_updated_by"
    )
    assert attrs["channel"] == "virtual_agent" and attrs["resolved_by"] == "Virtual Agent"
    assert "from" in attrs and attrs["to"] == "Resolved"
    first = json.loads(
        con.execute(
            "SELECT attrs FROM events WHERE event_id = 'servicenow:incident:INC0010001:0'"
        ).fetchall()[0][0]
    )
    assert "from" not in first and first["to"] == "New"


def test_table_api_objects_use_the_utc_value(con: duckdb.DuckDBPyConnection) -> None:
    """display_value=all: 'value' is UTC, 'display_value' local; the timezone option only
    applies to plain text, so it does not move these."""
    ingest(con, "incidents_api.json", timezone="America/New_York")
    raw = json.loads((FIX / "incidents_api.json").read_text())["result"][0]
    ts = con.execute(
        "SELECT ts FROM events WHERE event_id = 'servicenow:incident:INC0010101:0'"
    ).fetchall()
    assert ts == [(dt.datetime.strptime(raw["sys_updated_on"]["value"], "%Y-%m-%d %H:%M:%S"),)]
    assert raw["sys_updated_on"]["display_value"] != raw["sys_updated_on"]["value"]


# --------------------------------------------------------------------------- (c) counting


def test_resolved_ticket_counts_the_expected_incidents(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    expected = expected_verdicts(transitions(good_history()), "any")
    got = verdicts(load_definition(ROOT / "examples" / "resolved_ticket.yaml"), ws)
    assert got == expected
    assert {"INC0010001", "INC0010003", "INC0010009", "INC0010017"} <= {
        e for e, s in got.items() if s == "counted"
    }
    assert got["INC0010008"] == "not_counted"  # reopened in the same second
    assert got["INC0010013"] == "not_counted"  # reopened at exactly 14 days
    assert got["INC0010012"] == "counted"  # reopened 14 days and 1 minute later
    assert got["INC0010020"] == "pending"


def test_library_strict_definition(tmp_path: Path) -> None:
    """The packaged support_resolution_strict: the last rating in 7 days must be 4+."""
    library = pytest.importorskip("truecount.library")
    from importlib import resources

    text = resources.files(library).joinpath("support_resolution_strict.yaml").read_text()
    ws = workspace(tmp_path)
    expected = expected_verdicts(transitions(good_history()), "last")
    got = verdicts(parse_definition(text, "support_resolution_strict.yaml"), ws)
    assert got == expected
    assert got["INC0010018"] == "not_counted"  # a 5, then a 2


def test_not_escalated_definition_needs_no_ratings(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    good = good_history()
    expected = expected_verdicts(transitions(good), "escalation", escalations(good, DEFAULT_AI))
    assert verdicts(NOT_ESCALATED, ws) == expected


def test_a_thin_export_gives_no_closes(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    """The incident table's current rows are not a history: no row says when its state was
    entered, so no close or reopen is derived, and every row says how much is missing."""
    ingest(con, "incident_current.csv")
    rows = read_rows("incident_current.csv")
    got = con.execute(
        "SELECT entity_id, CAST(attrs->>'missing_updates' AS INTEGER) FROM events "
        "WHERE type = 'status_changed'"
    ).fetchall()
    assert sorted(got) == sorted((r.number, r.mod) for r in rows)
    types = {r[0] for r in con.execute("SELECT DISTINCT type FROM events").fetchall()}
    assert types == {"status_changed", "created"}
    ws = Workspace.init(tmp_path / "thin")
    with ws.connect() as c:
        ingest_source(c, "servicenow", [FIX / "incident_current.csv"])
    assert verdicts(load_definition(ROOT / "examples" / "resolved_ticket.yaml"), ws) == {}


# --------------------------------------------------------------------------- (d) bad input


def test_bad_rows_are_quarantined_with_their_reason(con: duckdb.DuckDBPyConnection) -> None:
    got = ingest(con, "incident_updates_bad.csv")["incident_updates_bad.csv"]
    assert (got.rows_read, got.loaded, got.duplicate, got.quarantined) == (14, 7, 1, 6)
    reasons = {
        row: (column, reason)
        for row, column, reason in con.execute(
            "SELECT row_number, column_name, reason FROM quarantine"
        ).fetchall()
    }
    assert reasons[2][0] == "state"
    assert "INC0010301" in reasons[2][1] and "'Awaiting Vendor'" in reasons[2][1]
    assert "1 New, 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed, 8 Canceled" in reasons[2][1]
    assert reasons[5][0] == "sys_updated_on" and "'26/01/2026 09:05'" in reasons[5][1]
    # Two copies of one update counter that disagree: neither is taken, both are named.
    for row in (10, 11):
        assert reasons[row][0] == "sys_mod_count" and "different values" in reasons[row][1]
        assert "at records 10, 11" in reasons[row][1]
    assert reasons[12][0] == "number" and "missing number" in reasons[12][1]
    assert reasons[13][0] == "sys_mod_count" and "'two'" in reasons[13][1]
    # The rows around a quarantined one still chain: the resolve after the unknown state is
    # a close from New, one update missing before it.
    close = con.execute(
        "SELECT attrs->>'from', CAST(attrs->>'missing_updates' AS INTEGER) FROM events "
        "WHERE entity_id = 'INC0010301' AND type = 'closed'"
    ).fetchall()
    assert close == [("New", 1)]
    # A first row that is not the first update says nothing about when it closed.
    assert not con.execute(
        "SELECT 1 FROM events WHERE entity_id = 'INC0010304' AND type = 'closed'"
    ).fetchall()


def test_truncated_line_and_overlapping_pages(con: duckdb.DuckDBPyConnection) -> None:
    got = ingest(con, "incidents_api_pages.jsonl")["incidents_api_pages.jsonl"]
    lines = (FIX / "incidents_api_pages.jsonl").read_text().splitlines()
    pages = [json.loads(line)["result"] for line in lines[:2]]
    seen = {(r["number"], r["sys_mod_count"]) for r in pages[0]}
    overlap = sum((r["number"], r["sys_mod_count"]) in seen for r in pages[1])
    assert overlap == 2 and got.duplicate == overlap
    assert got.quarantined == 1
    assert got.rows_read == len(pages[0]) + len(pages[1]) + 1
    reason = con.execute("SELECT reason FROM quarantine").fetchall()[0][0]
    assert "line 3 is not valid JSON" in reason
    # Ingesting the same pages again loads nothing new: every record is a duplicate, the bad
    # line included (it is in the quarantine once, from the first load).
    again = ingest(con, "incidents_api_pages.jsonl")["incidents_api_pages.jsonl"]
    assert again.loaded == 0 and again.quarantined == 0
    assert again.duplicate == got.loaded + got.duplicate + got.quarantined
    assert con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] == 1


@pytest.mark.parametrize(
    ("name", "shows"),
    [
        ("zendesk_tickets.json", "tickets"),  # another vendor
        ("sys_user_page.json", "result"),  # the Table API, another table
        ("aggregate_stats.json", "result"),  # another endpoint (the Aggregate API)
    ],
)
def test_files_that_are_not_an_incident_log(
    con: duckdb.DuckDBPyConnection, name: str, shows: str
) -> None:
    with pytest.raises(InputError) as info:
        ingest(con, "incident_updates.csv", name)
    message = str(info.value)
    assert name in message and "not a ServiceNow export" in message and shows in message
    if name.startswith("zendesk"):
        assert "it looks like --source zendesk" in message
    # Every file is recognised before anything is loaded: the good file was not loaded either.
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]


def test_other_sources_point_here(con: duckdb.DuckDBPyConnection) -> None:
    """An incident log given to another source is recognised as this one's."""
    others = [name for name in source_names() if name != "servicenow"]
    assert others, "the other sources are part of the package"
    with pytest.raises(InputError, match="it looks like --source servicenow"):
        ingest_source(con, others[0], [FIX / "incident_updates.csv"])


def test_bad_options_are_refused(con: duckdb.DuckDBPyConnection) -> None:
    cases = {
        "timezone": ("Mars/Base", "unknown time zone 'Mars/Base'"),
        "closed_states": ('["Done"]', "not in the state list"),
        "ai_user": ("x", "did you mean 'ai_users'"),
    }
    for key, (value, words) in cases.items():
        with pytest.raises(InputError, match=words):
            ingest(con, "incident_updates.csv", **{key: value})


# --------------------------------------------------------------------------- (e) options


def test_ai_users_decide_who_closed(tmp_path: Path) -> None:
    """Without Now Assist among the AI users, its closes are a human's and not counted."""
    only_va = {"virtual.agent", "virtual agent"}
    ws = workspace(tmp_path, ai_users='["virtual.agent", "Virtual Agent"]')
    expected = expected_verdicts(transitions(good_history(), ai=only_va), "any")
    got = verdicts(load_definition(ROOT / "examples" / "resolved_ticket.yaml"), ws)
    assert got == expected
    default = expected_verdicts(transitions(good_history()), "any")
    assert default["INC0010014"] == "counted" and "INC0010014" not in got
    assert default["INC0010105"] == "counted" and "INC0010105" not in got


def test_closed_states_and_timezone(con: duckdb.DuckDBPyConnection) -> None:
    ingest(con, "incident_updates.csv", closed_states="Closed", timezone="America/New_York")
    rows = split(read_rows("incident_updates.csv", "America/New_York")).good
    expected = {(c.entity, c.type, c.ts, c.actor) for c in transitions(rows, closed={"7"})}
    got = con.execute(
        "SELECT entity_id, type, ts, actor FROM events WHERE type IN ('closed', 'reopened')"
    ).fetchall()
    assert set(got) == expected and len(got) == len(expected)
    first = con.execute(
        "SELECT ts FROM events WHERE event_id = 'servicenow:incident:INC0010001:0'"
    ).fetchall()
    assert first == [(dt.datetime(2026, 1, 5, 17, 0),)]  # 12:00 in New York in January


def test_custom_states_load_the_unknown_state(con: duckdb.DuckDBPyConnection) -> None:
    states = {"1": "New", "2": "In Progress", "3": "On Hold", "4": "Awaiting Vendor"}
    states |= {"6": "Resolved", "7": "Closed", "8": "Canceled"}
    got = ingest(con, "incident_updates_bad.csv", states=json.dumps(states))
    assert got["incident_updates_bad.csv"].quarantined == 5  # the state was one of 6
    attrs = con.execute(
        "SELECT attrs->>'to', attrs->>'to_code' FROM events "
        "WHERE event_id = 'servicenow:incident:INC0010301:1'"
    ).fetchall()
    assert attrs == [("Awaiting Vendor", "4")]


def test_options_in_force_are_logged(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws)]).exit_code == 0
    args = ["ingest", "--source", "servicenow", "--option", "ai_users=virtual.agent,Virtual Agent"]
    args += ["--option", "timezone=Europe/Paris", str(FIX / "incident_updates.csv")]
    result = runner.invoke(app, [*args, "-w", str(ws), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert '"ai_users": ["virtual.agent", "Virtual Agent"]' in report["mapping"]
    assert '"timezone": "Europe/Paris"' in report["mapping"]
    with Workspace(ws).connect() as c:
        logged = c.execute("SELECT mapping FROM ingest_log").fetchall()
    assert len(logged) == 1
    label = logged[0][0]
    assert label.startswith("source servicenow:incident_updates options ")
    chosen = json.loads(label.split(" options ", 1)[1])
    assert chosen == {
        "ai_users": ["virtual.agent", "Virtual Agent"],
        "system_users": ["system"],
        "states": {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved"}
        | {"7": "Closed", "8": "Canceled"},
        "closed_states": ["6", "7"],
        "timezone": "Europe/Paris",
        "time_format": None,
        "columns": {},
        "null_markers": ["?"],
        "tie_order": "counter",
    }


def test_sources_lists_the_options() -> None:
    adapter = get_adapter("servicenow")
    assert all(not kind.needs for kind in adapter.kinds.values())
    result = runner.invoke(app, ["sources", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "servicenow" in result.output and "closed_states" in result.output


def test_other_shapes_of_the_same_export(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    """JSON Lines of bare records, a top-level array and Parquet read like the page and CSV."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    page = json.loads((FIX / "incidents_api_pages.jsonl").read_text().splitlines()[0])["result"]
    (tmp_path / "records.jsonl").write_text("\n".join(json.dumps(r) for r in page) + "\n")
    (tmp_path / "array.json").write_text(json.dumps(page))
    (tmp_path / "page.json").write_text(json.dumps({"result": page}))
    # Typed columns (integers, timestamps), as a warehouse would write them.
    nulls = pacsv.ConvertOptions(strings_can_be_null=True)
    table = pacsv.read_csv(FIX / "incident_updates.csv", convert_options=nulls)
    pq.write_table(table, tmp_path / "updates.parquet")

    def events(*paths: Path) -> list[tuple[Any, ...]]:
        c = duckdb.connect()
        ingest_source(c, "servicenow", list(paths))
        return sorted(
            c.execute(
                "SELECT event_id, entity_id, ts, type, actor, seq, attrs::JSON->>'from', "
                "attrs::JSON->>'to' FROM events"
            ).fetchall()
        )

    reference = events(tmp_path / "page.json")
    assert reference
    assert events(tmp_path / "records.jsonl") == reference
    assert events(tmp_path / "array.json") == reference
    assert events(tmp_path / "updates.parquet") == events(FIX / "incident_updates.csv")


def test_the_timezone_option_moves_display_times_only(tmp_path: Path) -> None:
    """The Table API's plain values (sysparm_display_value=false: state codes) are UTC and
    never moved by `timezone`; its display values (=true: state labels) are the user's local
    time, as a list export's are. Expected instants come from zoneinfo, not the reader."""
    zone = ZoneInfo("Europe/Berlin")
    lines = (FIX / "incidents_api_pages.jsonl").read_text().splitlines()
    internal = json.loads(lines[0])["result"]
    names = {v: k for k, v in LABELS.items()}
    shown = [
        {**r, "state": names[r["state"]].capitalize() if r["state"] in names else r["state"]}
        for r in internal
    ]
    assert any(not r["state"].isdigit() for r in shown)
    for rows, moved in ((internal, False), (shown, True)):
        page = tmp_path / f"page_{moved}.json"
        page.write_text(json.dumps({"result": rows}), encoding="utf-8")
        con = duckdb.connect()
        ingest_source(con, "servicenow", [page], options={"timezone": "Europe/Berlin"})
        got = con.execute(
            "SELECT entity_id, min(ts) FROM events WHERE type = 'created' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        opened: dict[str, dt.datetime] = {}
        for r in rows:
            local = dt.datetime.fromisoformat(r["opened_at"])
            at = (
                local.replace(tzinfo=zone).astimezone(dt.UTC).replace(tzinfo=None)
                if moved
                else local
            )
            opened[r["number"]] = min(opened.get(r["number"], at), at)
        assert got == sorted(opened.items()), moved
