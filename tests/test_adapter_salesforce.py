"""The Salesforce adapter against its fixtures, checked by reading the fixtures in plain Python.

Every expectation here comes from the fixture files themselves (csv / json modules) and the
rules stated in docs/sources/salesforce.md, written again independently of the adapter's SQL:
which statuses are closed, which closes are the AI's, which survey answers are ratings and
which case they belong to. The engine's count is compared with that expectation, not with the
events table.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

import truecount.cli.workspace_cmds  # noqa: F401  (registers the verbs)
from truecount import library
from truecount.adapters import get_adapter, ingest_source
from truecount.adapters.salesforce import salesforce_id18
from truecount.cli.app import app
from truecount.definition.load import load_definition
from truecount.engine.check import check
from truecount.engine.run import count
from truecount.errors import InputError
from truecount.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
F = ROOT / "tests" / "fixtures" / "salesforce"
BAD = F / "bad"
DEFINITION = ROOT / "examples" / "resolved_ticket.yaml"
IDS = json.loads((F / "ids.json").read_text())
CASES: dict[str, str] = IDS["cases"]
KEY = {v: k for k, v in CASES.items()}  # case id -> story key, for readable failures

CASE = F / "Case.csv"
STATUS = F / "CaseStatus.csv"
HISTORY = [F / "CaseHistory_page1.json", F / "CaseHistory_page2.json"]
SESSIONS = F / "MessagingSession.jsonl"
SUBJECTS = F / "SurveySubject.csv"
ANSWERS = F / "SurveyQuestionResponse.json"
ALL = [CASE, *HISTORY, STATUS, SESSIONS, SUBJECTS, ANSWERS]

runner = CliRunner()


# --------------------------------------------------------------------------- reading fixtures


def id18(text: str) -> str:
    """15 -> 18 characters, written out again from Salesforce's published rule."""
    if len(text) == 18:
        return text
    out = text
    for i in range(0, 15, 5):
        n = 0
        for bit, ch in enumerate(text[i : i + 5]):
            if "A" <= ch <= "Z":
                n += 2**bit
        out += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[n]
    return out


def serial(sfid: str) -> int:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    n = 0
    for ch in sfid[6:15]:
        n = n * 62 + digits.index(ch)
    return n


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC).replace(tzinfo=None)


def rows(path: Path) -> list[dict[str, Any]]:
    """The records of one fixture file as the platform wrote them (valid ones only)."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [
                {k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(handle)
            ]
    if path.suffix == ".jsonl":
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
    return list(json.loads(path.read_text())["records"])


def record_count(path: Path) -> int:
    if path.suffix == ".jsonl":
        return sum(1 for line in path.read_text().splitlines() if line.strip())
    return len(rows(path))


# --------------------------------------------------------------------------- the expectation


@dataclass(frozen=True)
class Close:
    ts: dt.datetime
    seq: int
    ai: bool


def closed_statuses(explicit: list[str] | None = None) -> set[str]:
    if explicit is not None:
        return set(explicit)
    return {
        name
        for r in rows(STATUS)
        if r["IsClosed"] == "true"
        for name in (r["ApiName"], r["MasterLabel"])
    }


def history_records() -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for page in HISTORY:
        for r in rows(page):
            seen.setdefault(r["Id"], r)
    return list(seen.values())


def closes_and_reopens(
    ai_users: Iterable[str] = (),
    ai_types: Iterable[str] = ("Bot",),
    by_sessions: bool = True,
    closed: set[str] | None = None,
) -> tuple[dict[str, list[Close]], dict[str, list[dt.datetime]]]:
    """Per case: its closes (AI's or not) and reopens, by the documented rules."""
    closed = closed if closed is not None else closed_statuses()
    ai_users, ai_types = set(ai_users), set(ai_types)
    sessions: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for s in rows(SESSIONS):
        sessions[s["CaseId"]].append((when(s["StartTime"]), s["AgentType"]))
    status_rows = sorted(
        (r for r in history_records() if r["Field"] == "Status"),
        key=lambda r: (r["CaseId"], when(r["CreatedDate"]), serial(r["Id"])),
    )
    closes: dict[str, list[Close]] = defaultdict(list)
    reopens: dict[str, list[dt.datetime]] = defaultdict(list)
    for r in status_rows:
        case, ts = r["CaseId"], when(r["CreatedDate"])
        was, now = r["OldValue"] in closed, r["NewValue"] in closed
        if now and not was:
            before = [t for at, t in sessions[case] if at <= ts]
            ai = r["CreatedById"] in ai_users or (
                by_sessions and bool(before) and all(t in ai_types for t in before)
            )
            closes[case].append(Close(ts, serial(r["Id"]), ai))
        elif was and not now:
            reopens[case].append(ts)
    return closes, reopens


def ratings(question_ids: Iterable[str] = ()) -> dict[str, list[tuple[dt.datetime, float]]]:
    """Per case: (time, 1-5 value) of each numeric answer, through its SurveySubject."""
    links: dict[str, list[tuple[int, str]]] = defaultdict(list)
    session_case = {s["Id"]: s["CaseId"] for s in rows(SESSIONS)}
    for s in rows(SUBJECTS):
        subject = id18(s["SubjectId"])
        if s["SubjectEntityType"] == "Case":
            links[id18(s["ParentId"])].append((0, subject))
        elif s["SubjectEntityType"] == "MessagingSession" and subject in session_case:
            links[id18(s["ParentId"])].append((1, session_case[subject]))
        else:
            links[id18(s["ParentId"])].append((2, subject))
    wanted = set(question_ids)
    out: dict[str, list[tuple[dt.datetime, float]]] = defaultdict(list)
    for a in rows(ANSWERS):
        found = links.get(a["InvitationId"], []) + links.get(a["ResponseId"], [])
        numeric = a["Datatype"] in ("Int", "Number", "Double") and a["NumberValue"] is not None
        if found and numeric and (not wanted or a["QuestionId"] in wanted):
            out[min(found)[1]].append((when(a["CreatedDate"]), float(a["NumberValue"])))
    return out


def unlinked_answers() -> list[str]:
    parents = {id18(s["ParentId"]) for s in rows(SUBJECTS)}
    return [
        a["Id"]
        for a in rows(ANSWERS)
        if a["InvitationId"] not in parents and a["ResponseId"] not in parents
    ]


def expected_verdicts(
    as_of: dt.datetime, ai_users: Iterable[str] = (), **rules: Any
) -> dict[str, str]:
    """resolved_ticket by hand: first AI close; no reopen within 14 days; 4+ within 7 days."""
    closes, reopens = closes_and_reopens(ai_users=ai_users, **rules)
    rated = ratings()
    out = {}
    for case, found in closes.items():
        ai = sorted((c for c in found if c.ai), key=lambda c: (c.ts, c.seq))
        if not ai or ai[0].ts > as_of:
            continue
        t = ai[0].ts
        if t + dt.timedelta(days=14) > as_of:
            out[case] = "pending"
            continue
        reopened = any(t <= r <= t + dt.timedelta(days=14) for r in reopens[case])
        satisfied = any(
            t <= at <= t + dt.timedelta(days=7) and v >= 4 for at, v in rated.get(case, [])
        )
        out[case] = "counted" if satisfied and not reopened else "not_counted"
    return out


#: A verdict as the model and the engine both give it: status, reason, and each condition.
Verdict = tuple[str, str | None, dict[str, bool]]


def followups() -> dict[str, list[dt.datetime]]:
    """Per parent case: when each child case was created (a child case is a follow-up)."""
    out: dict[str, list[dt.datetime]] = defaultdict(list)
    for c in rows(CASE):
        if c["ParentId"] is not None:
            out[id18(c["ParentId"])].append(when(c["CreatedDate"]))
    return out


def strict_verdicts(as_of: dt.datetime) -> dict[str, Verdict]:
    """The packaged support_resolution_strict by hand: the first AI close; no reopen and no
    child case within 14 days; the latest rating within 7 days 4 or more (none fails); no
    human message in the year before the close."""
    closes, reopens = closes_and_reopens()
    rated = ratings()
    children = followups()
    out: dict[str, Verdict] = {}
    for case, found in closes.items():
        ai = [c.ts for c in found if c.ai and c.ts <= as_of]
        if not ai:
            continue
        t = min(ai)

        def inside(at: dt.datetime, days: int, t: dt.datetime = t) -> bool:
            return t <= at <= min(t + dt.timedelta(days=days), as_of)

        week = sorted((at, v) for at, v in rated.get(case, []) if inside(at, 7))
        if week:  # the latest by time: two in its second would need the engine's tie-break
            assert len({v for at, v in week if at == week[-1][0]}) == 1
        conditions = {
            "not_reopened": not any(inside(r, 14) for r in reopens[case]),
            "no_followup": not any(inside(c, 14) for c in children.get(case, [])),
            "satisfied": bool(week) and week[-1][1] >= 4,
            # None of the objects read holds a conversation entry, so no message exists and
            # an `absent` condition passes (docs/sources/salesforce.md, "No messages").
            "no_human_message": True,
        }
        failed = [name for name, ok in conditions.items() if not ok]
        if t + dt.timedelta(days=14) > as_of:
            out[case] = ("pending", "pending", conditions)
        elif failed:
            out[case] = ("not_counted", ", ".join(failed), conditions)
        else:
            out[case] = ("counted", None, conditions)
    return out


def export_horizon() -> dt.datetime:
    """The latest event time in the export (the engine's default as-of)."""
    times = [when(r["CreatedDate"]) for r in rows(CASE)]
    times += [when(r["CreatedDate"]) for r in history_records()]
    for s in rows(SESSIONS):
        times += [when(s[k]) for k in ("StartTime", "EndTime", "AcceptTime") if s[k]]
    times += [when(r["CreatedDate"]) for r in rows(SUBJECTS)]
    lost = set(unlinked_answers())
    times += [when(a["CreatedDate"]) for a in rows(ANSWERS) if a["Id"] not in lost]
    return max(times)


# --------------------------------------------------------------------------- ingest helpers


def new_workspace(tmp: Path) -> Path:
    ws = tmp / "ws"
    result = runner.invoke(app, ["init", str(ws)])
    assert result.exit_code == 0, result.output
    return ws


def ingest(ws: Path, files: Iterable[Path], *options: str, partial: bool = False) -> Any:
    args = ["ingest", "--source", "salesforce", "-w", str(ws), "--format", "json"]
    for o in options:
        args += ["--option", o]
    if partial:
        args.append("--partial")
    result = runner.invoke(app, [*args, *map(str, files)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def events(ws: Path, sql: str, params: dict[str, object] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(Workspace.open(ws).store_path), read_only=True)
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


def verdicts(ws: Path, as_of: str | None = None) -> dict[str, str]:
    result = count(load_definition(DEFINITION), Workspace.open(ws), as_of=as_of)
    try:
        table = result.verdicts.to_pylist()
    finally:
        result.close()
    return {r["entity_id"]: r["status"] for r in table}


def library_verdicts(ws: Path, name: str, as_of: str | None = None) -> dict[str, Verdict]:
    """The engine's verdicts of a packaged definition, with the reason and every condition,
    keyed by story."""
    definition = library.load(name)
    result = count(definition, Workspace.open(ws), as_of=as_of)
    try:
        table = result.verdicts.to_pylist()
    finally:
        result.close()
    return {
        KEY[r["entity_id"]]: (
            r["status"],
            r["reason"],
            {n: r[f"cond_{n}"] for n in definition.conditions},
        )
        for r in table
    }


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    ws = new_workspace(tmp_path_factory.mktemp("sf"))
    return ws, ingest(ws, ALL)


# --------------------------------------------------------------------------- (a) counts


def expected_history_counts() -> dict[str, tuple[int, int, int]]:
    """(rows_read, loaded, duplicate) per page: repeats of an Id, and the second row of a
    foreign-key pair (same case, instant and field group), are duplicates."""
    seen_ids: set[str] = set()
    seen_groups: set[tuple[str, str, str]] = set()
    out = {}
    for page in HISTORY:
        loaded = duplicate = 0
        for r in rows(page):
            group = r["Field"]
            if group in ("Owner", "ownerAssignment", "ownerAccepted"):
                group = "owner"
            elif group == "ownerEscalated" or (group == "IsEscalated" and r["NewValue"] is True):
                group = "escalated"
            key = (r["CaseId"], r["CreatedDate"], group)
            if r["Id"] in seen_ids or (r["Field"] != "Status" and key in seen_groups):
                duplicate += 1
            else:
                loaded += 1
            seen_ids.add(r["Id"])
            if r["Field"] != "Status":
                seen_groups.add(key)
        out[page.name] = (loaded + duplicate, loaded, duplicate)
    return out


def test_counts_per_file_add_up(full: tuple[Path, Any]) -> None:
    ws, report = full
    got = {Path(f["file"]).name: f for f in report["files"]}
    assert set(got) == {p.name for p in ALL}
    for f in got.values():
        assert f["rows_read"] == f["loaded"] + f["duplicate"] + f["quarantined"]
    for path in (CASE, STATUS, SESSIONS, SUBJECTS):
        n = record_count(path)
        assert (got[path.name]["rows_read"], got[path.name]["loaded"]) == (n, n), path.name
    for name, (read, loaded, duplicate) in expected_history_counts().items():
        f = got[name]
        assert (f["rows_read"], f["loaded"], f["duplicate"], f["quarantined"]) == (
            read,
            loaded,
            duplicate,
            0,
        )
    assert got["CaseHistory_page2.json"]["duplicate"] >= 3  # the overlap at least
    lost = unlinked_answers()
    f = got[ANSWERS.name]
    assert (f["rows_read"], f["quarantined"], f["loaded"]) == (
        record_count(ANSWERS),
        len(lost),
        record_count(ANSWERS) - len(lost),
    )
    quarantined = events(ws, "SELECT file, reason, column_name FROM quarantine")
    assert len(quarantined) == len(lost) == 1
    file, reason, column = quarantined[0]
    assert file.endswith(ANSWERS.name) and lost[0] in reason and column == "InvitationId"
    assert "SurveySubject" in reason


def test_files_load_in_dependency_order(full: tuple[Path, Any]) -> None:
    """History after sessions and statuses; answers after subjects, whatever the order given."""
    order = [Path(f["file"]).name for f in full[1]["files"]]
    assert order.index(SESSIONS.name) < order.index(HISTORY[0].name)
    assert order.index(STATUS.name) < order.index(HISTORY[0].name)
    assert order.index(SUBJECTS.name) < order.index(ANSWERS.name)


def test_order_given_does_not_matter_and_reingest_is_idempotent(
    full: tuple[Path, Any], tmp_path: Path
) -> None:
    ws, _ = full
    every = "SELECT event_id, entity_id, ts, type, actor, value, seq, attrs FROM events ORDER BY 1"
    other = new_workspace(tmp_path)
    ingest(other, list(reversed(ALL)))
    assert events(other, every) == events(ws, every)
    again = ingest(other, ALL)["totals"]
    assert again["loaded"] == 0
    assert again["quarantined"] == 0  # its unlinked answers are in the quarantine already
    assert again["duplicate"] == again["rows_read"]
    with Workspace.open(other).connect(read_only=True) as con:
        listed = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
    assert listed == len(unlinked_answers())


# --------------------------------------------------------------------------- (b) events


def test_closes_reopens_and_ratings_per_case(full: tuple[Path, Any]) -> None:
    ws, _ = full
    closes, reopens = closes_and_reopens()
    got_closes: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for entity, ts, actor in events(
        ws, "SELECT entity_id, ts, actor FROM events WHERE type = 'closed' ORDER BY ts, seq"
    ):
        got_closes[entity].append((ts, actor))
    want = {
        case: [(c.ts, "ai" if c.ai else "human") for c in sorted(cs, key=lambda c: (c.ts, c.seq))]
        for case, cs in closes.items()
    }
    assert {KEY[k]: v for k, v in got_closes.items()} == {KEY[k]: v for k, v in want.items()}

    got_reopens: dict[str, list[dt.datetime]] = defaultdict(list)
    for entity, ts in events(ws, "SELECT entity_id, ts FROM events WHERE type = 'reopened'"):
        got_reopens[entity].append(ts)
    assert {k: sorted(v) for k, v in got_reopens.items()} == {
        k: sorted(v) for k, v in reopens.items() if v
    }

    got_rated: dict[str, list[tuple[dt.datetime, float]]] = defaultdict(list)
    for entity, ts, value in events(
        ws, "SELECT entity_id, ts, value FROM events WHERE type = 'rated'"
    ):
        got_rated[entity].append((ts, value))
    assert {k: sorted(v) for k, v in got_rated.items()} == {
        k: sorted(v) for k, v in ratings().items()
    }
    # a rating tied through a 15-character SubjectId and a SurveyResponse, and one through
    # the MessagingSession the survey was about
    assert CASES["C20"] in got_rated and CASES["C19"] in got_rated


def test_closed_date_is_the_latest_close(full: tuple[Path, Any]) -> None:
    """Case.ClosedDate holds only the latest close; the history has every one."""
    ws, _ = full
    latest = dict(
        events(ws, "SELECT entity_id, max(ts) FROM events WHERE type = 'closed' GROUP BY ALL")
    )
    for case in rows(CASE):
        if case["IsClosed"] == "true":
            assert latest[case["Id"]] == when(case["ClosedDate"]), case["CaseNumber"]


def test_same_second_changes_follow_the_id_order(full: tuple[Path, Any]) -> None:
    ws, _ = full
    page_order = [
        r["NewValue"]
        for p in HISTORY
        for r in rows(p)
        if r["CaseId"] == CASES["C13"] and r["Field"] == "Status"
    ]
    assert page_order[:2] == ["Working", "Closed"]  # the export lists the reopen first
    got = events(
        ws,
        "SELECT type FROM events WHERE entity_id = $e AND type IN ('closed', 'reopened') "
        "ORDER BY ts, seq, event_id",
        {"e": CASES["C13"]},
    )
    assert [t for (t,) in got] == ["closed", "reopened", "closed"]


def test_owner_pairs_sessions_followups(full: tuple[Path, Any]) -> None:
    ws, _ = full
    owner_changes = {
        (r["CaseId"], r["CreatedDate"])
        for r in history_records()
        if r["Field"] in ("Owner", "ownerAssignment", "ownerAccepted")
    }
    assigned = events(
        ws,
        "SELECT entity_id, attrs ->> 'assignee', attrs ->> 'assignee_name' FROM events "
        "WHERE type = 'assigned'",
    )
    assert len(assigned) == len(owner_changes) == 2
    assert {(KEY[e], a, n) for e, a, n in assigned} == {
        ("C15", IDS["BOT_USER"], "Agentforce Service Agent"),
        ("C16", IDS["AGENT_2"], "Sam Okafor"),
    }
    handoffs = [s["CaseId"] for s in rows(SESSIONS) if s["AgentType"] == "BotToAgent"]
    escalated = events(
        ws,
        "SELECT entity_id, actor, attrs ->> 'record' FROM events WHERE type = 'escalated' "
        "ORDER BY ALL",
    )
    assert sorted(e for e, _, r in escalated if r == "messaging_session") == sorted(handoffs)
    assert [KEY[e] for e, _, r in escalated if r == "case_history"] == ["C16"]
    followups = events(
        ws, "SELECT entity_id, attrs ->> 'followup_id' FROM events WHERE type = 'followup_created'"
    )
    assert followups == [(c["ParentId"], c["Id"]) for c in rows(CASE) if c["ParentId"] is not None]


def test_every_event_says_where_it_came_from(full: tuple[Path, Any]) -> None:
    ws, _ = full
    missing = events(
        ws,
        "SELECT type, count(*) FROM events WHERE (attrs -> 'origin') IS NULL "
        "OR attrs ->> 'vendor' <> 'salesforce' OR attrs ->> 'record' IS NULL GROUP BY ALL",
    )
    assert missing == []
    channels = dict(
        events(ws, "SELECT entity_id, attrs ->> 'channel' FROM events WHERE type = 'created'")
    )
    assert channels == {c["Id"]: c["Origin"] for c in rows(CASE)}


def test_id18_agrees_with_the_sql() -> None:
    for case_id in CASES.values():
        assert salesforce_id18(case_id[:15]) == id18(case_id[:15]) == case_id
    assert salesforce_id18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    with pytest.raises(ValueError, match="not a Salesforce Id"):
        salesforce_id18("not-an-id")


# --------------------------------------------------------------------------- (c) the count


def test_resolved_ticket_count_matches_the_fixture(full: tuple[Path, Any]) -> None:
    ws, _ = full
    late = dt.datetime(2026, 6, 30)
    want = expected_verdicts(late)
    got = verdicts(ws, as_of="2026-06-30")
    assert {KEY[k]: v for k, v in got.items()} == {KEY[k]: v for k, v in want.items()}
    counted = {KEY[k] for k, v in got.items() if v == "counted"}
    # the stories the fixture was written to tell
    assert {"C01", "C02", "C06", "C12", "C14", "C15", "C17", "C19", "C20", "C24"} <= counted
    assert not {"C03", "C04", "C05", "C07", "C08", "C09", "C13", "C22", "C28"} & counted

    default = verdicts(ws)  # as of the export's own latest event
    assert default == expected_verdicts(export_horizon())
    assert [KEY[k] for k, v in default.items() if v == "pending"] == ["C23"]


def test_library_strict_definition_counts_as_read_from_the_records(
    full: tuple[Path, Any],
) -> None:
    """The packaged support_resolution_strict over the ingested fixtures, against the same
    definition evaluated by hand over the CSV and JSON files."""
    ws, _ = full
    late = dt.datetime(2026, 6, 30, 23, 59, 59, 999999)  # what the bare date means
    got = library_verdicts(ws, "support_resolution_strict", as_of="2026-06-30")
    want = {KEY[k]: v for k, v in strict_verdicts(late).items()}
    assert got == want
    failed = {k: (s, [n for n, ok in c.items() if not ok]) for k, (s, _, c) in got.items()}
    # the stories the fixture was written to tell
    assert failed["C17"] == ("not_counted", ["no_followup"])  # child case C18 two days later
    assert failed["C05"] == ("not_counted", ["not_reopened"])
    assert failed["C13"] == ("not_counted", ["not_reopened"])  # reopened in the same second
    assert failed["C28"] == ("not_counted", ["not_reopened"])  # 13 days 23 hours later
    assert failed["C04"] == ("not_counted", ["satisfied"])  # never rated
    assert failed["C21"] == ("not_counted", ["satisfied"])  # rated 3
    assert failed["C22"] == ("not_counted", ["satisfied"])  # rated after 10 days
    assert {k for k, v in failed.items() if v == ("counted", [])} == {
        "C01", "C02", "C06", "C12", "C14", "C15", "C19", "C20", "C23", "C24", "C26", "C29"
    }  # fmt: skip
    # Without no_followup, resolved_ticket counts C17: the follow-up is the only difference.
    resolved = verdicts(ws, as_of="2026-06-30")
    assert {KEY[k] for k, v in resolved.items() if v == "counted"} - {
        k for k, v in got.items() if v[0] == "counted"
    } == {"C17"}

    default = library_verdicts(ws, "support_resolution_strict")  # as of the export's end
    assert default == {KEY[k]: v for k, v in strict_verdicts(export_horizon()).items()}
    assert [k for k, v in default.items() if v[0] == "pending"] == ["C23"]

    # No message events: the message-based library definitions have no candidate here, and
    # check says which parts have no data.
    assert library_verdicts(ws, "automated_resolution", as_of="2026-06-30") == {}
    parts = dict(check(library.load("support_resolution_strict"), Workspace.open(ws)).parts)
    assert parts["no_human_message"] == "missing" and parts["satisfied"] == "ok"


def test_check_explains_a_thin_export(tmp_path: Path) -> None:
    """Without the survey files, the rating condition has no data, and check says so."""
    ws = new_workspace(tmp_path)
    ingest(ws, [CASE, *HISTORY, STATUS, SESSIONS])
    result = check(load_definition(DEFINITION), Workspace.open(ws), as_of="2026-06-30")
    parts = dict(result.parts)
    assert parts["anchor"] == "ok"
    assert parts["satisfied"] == "missing"
    assert result.status == "missing"


# --------------------------------------------------------------------------- (d) bad input


def quarantine(ws: Path) -> list[tuple[str, int, str, str]]:
    return events(
        ws, "SELECT file, row_number, column_name, reason FROM quarantine ORDER BY row_number"
    )


def test_truncated_line_and_unknown_agent_type(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path)
    bad = BAD / "MessagingSession_truncated.jsonl"
    report = ingest(ws, [CASE, bad])
    f = next(f for f in report["files"] if f["file"].endswith(bad.name))
    lines = [line for line in bad.read_text().splitlines() if line.strip()]
    broken = []
    unknown = []
    for n, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            broken.append(n)
            continue
        if record["AgentType"] not in ("Agent", "Bot", "BotToAgent", "System"):
            unknown.append((n, record["Id"], record["AgentType"]))
    assert (f["rows_read"], f["quarantined"], f["loaded"]) == (
        len(lines),
        len(broken) + len(unknown),
        len(lines) - len(broken) - len(unknown),
    )
    got = quarantine(ws)
    assert [r for _, r, _, _ in got] == sorted([*broken, *(n for n, _, _ in unknown)])
    reasons = {r: (c, reason) for _, r, c, reason in got}
    assert "is not valid JSON" in reasons[broken[0]][1]
    n, sid, value = unknown[0]
    column, reason = reasons[n]
    assert column == "AgentType" and sid in reason and f"'{value}'" in reason
    assert "Agent, Bot, BotToAgent, System" in reason
    assert all(file.endswith(bad.name) for file, _, _, _ in got)


def test_unparseable_date_is_quarantined(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path)
    bad = BAD / "Case_bad_date.csv"
    report = ingest(ws, [bad])
    f = report["files"][0]
    wrong = [r for r in rows(bad) if "/" in (r["CreatedDate"] or "")]
    assert (f["rows_read"], f["loaded"], f["quarantined"]) == (
        record_count(bad),
        record_count(bad) - len(wrong),
        len(wrong),
    )
    [(file, row, column, reason)] = quarantine(ws)
    assert file.endswith(bad.name) and row == 2 and column == "CreatedDate"
    assert wrong[0]["CreatedDate"] in reason and wrong[0]["Id"] in reason


def test_a_15_character_id_is_a_duplicate_only_of_the_same_record(tmp_path: Path) -> None:
    a, b, c = rows(CASE)[:3]
    copies = [
        a,
        # a's Id in its 15-character form, but another case number and creation time
        {
            **a,
            "Id": a["Id"][:15],
            "CaseNumber": "09999999",
            "CreatedDate": "2026-01-06T10:00:00.000Z",
        },
        {**b, "Id": b["Id"][:15]},  # b itself, its Id in the 15-character form
        b,
        c,
    ]
    path = tmp_path / "Case.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(a), lineterminator="\n")
        writer.writeheader()
        writer.writerows([{k: v or "" for k, v in r.items()} for r in copies])
    # Expected from the rows: one Id is the 18-character form; copies that agree on every
    # other field are one record (the first loaded, the rest duplicates), else all are bad.
    by_id: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for n, r in enumerate(copies, start=1):
        by_id[id18(r["Id"])].append((n, r))
    loaded, duplicate, bad = set(), set(), set()
    for same in by_id.values():
        if len({json.dumps({**r, "Id": None}, sort_keys=True) for _, r in same}) > 1:
            bad |= {n for n, _ in same}
        else:
            loaded.add(same[0][0])
            duplicate |= {n for n, _ in same[1:]}
    assert (loaded, duplicate, bad) == ({1 + 2, 5}, {4}, {1, 2})  # the story of this test
    ws = new_workspace(tmp_path)
    f = ingest(ws, [path])["files"][0]
    assert (f["rows_read"], f["loaded"], f["duplicate"], f["quarantined"]) == (5, 2, 1, 2)
    got = quarantine(ws)
    assert [r for _, r, _, _ in got] == sorted(bad)
    for _, _, column, reason in got:
        assert column == "Id" and id18(a["Id"]) in reason
        assert f"row 1: Id {a['Id']}, CaseNumber {a['CaseNumber']}" in reason
        assert f"row 2: Id {a['Id'][:15]}, CaseNumber 09999999" in reason
    stored = events(ws, "SELECT entity_id, attrs->>'case_number' FROM events ORDER BY 1")
    assert stored == sorted([(id18(b["Id"]), b["CaseNumber"]), (id18(c["Id"]), c["CaseNumber"])])


@pytest.mark.parametrize(
    ("name", "shown"),
    [("CaseHistory2.csv", "PreviousUpdate"), ("zendesk_tickets.json", "tickets")],
)
def test_other_shapes_are_refused(tmp_path: Path, name: str, shown: str) -> None:
    """Another API's or vendor's file stops the ingest, naming the file and what it holds."""
    ws = new_workspace(tmp_path)
    con = duckdb.connect(str(Workspace.open(ws).store_path))
    try:
        with pytest.raises(InputError) as caught:
            ingest_source(con, "salesforce", [CASE, BAD / name])
        text = str(caught.value)
        assert name in text and "not a Salesforce export" in text and shown in text
        assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)
    finally:
        con.close()


def test_missing_companion_file(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path)
    result = runner.invoke(app, ["ingest", "--source", "salesforce", "-w", str(ws), str(ANSWERS)])
    assert isinstance(result.exception, InputError)  # the command line exits 2 with it
    message = str(result.exception)
    assert ANSWERS.name in message and "survey_subject" in message and "--partial" in message
    # with --partial every answer is read, and each one says why it has no case
    report = ingest(ws, [ANSWERS], partial=True)
    f = report["files"][0]
    assert (f["rows_read"], f["quarantined"], f["loaded"]) == (
        record_count(ANSWERS),
        record_count(ANSWERS),
        0,
    )
    assert all("no SurveySubject links" in reason for _, _, _, reason in quarantine(ws))


# --------------------------------------------------------------------------- (e) options


def test_options_change_the_count_and_are_logged(tmp_path: Path) -> None:
    bot = IDS["BOT_USER"]
    late = dt.datetime(2026, 6, 30)
    ws = new_workspace(tmp_path / "a")
    report = ingest(ws, ALL, f"ai_user_ids={bot[:15]}")  # a 15-character Id works too
    got = verdicts(ws, as_of="2026-06-30")
    assert got == expected_verdicts(late, ai_users=[bot])
    assert got[CASES["C09"]] == "counted"  # the bot user closed an email case
    chosen = json.loads(report["mapping"].split(" options ", 1)[1])
    assert chosen["ai_user_ids"] == [bot] and chosen["closed_statuses"] is None
    logged = events(ws, "SELECT mapping FROM ingest_log")
    assert len(logged) == len(ALL)
    assert all(f'"ai_user_ids":["{bot}"]' in m and "source salesforce:" in m for (m,) in logged)

    ws = new_workspace(tmp_path / "b")
    ingest(ws, ALL, "closed_statuses=Closed")
    got = verdicts(ws, as_of="2026-06-30")
    assert got == expected_verdicts(late, closed={"Closed"})
    assert CASES["C14"] not in got  # "Resolved" is no longer a close
    assert events(
        ws, "SELECT DISTINCT attrs ->> 'closed_statuses_from' FROM events WHERE type = 'closed'"
    ) == [("option closed_statuses",)]

    ws = new_workspace(tmp_path / "c")
    ingest(ws, ALL, "ai_close_by_sessions=false", f"ai_user_ids={bot}")
    got = verdicts(ws, as_of="2026-06-30")
    assert got == expected_verdicts(late, ai_users=[bot], by_sessions=False)
    assert {KEY[k] for k in got} == {"C09", "C24"}

    ws = new_workspace(tmp_path / "d")
    ingest(ws, ALL, 'ai_agent_types=["Bot","System"]')
    got = verdicts(ws, as_of="2026-06-30")
    assert got == expected_verdicts(late, ai_types=("Bot", "System"))
    assert got[CASES["C25"]] == "counted"


def test_rating_questions_option(tmp_path: Path) -> None:
    """NPS answers (0-10) beside the 1-5 question: quarantined by default, kept as
    survey_answer once the rating question is named."""
    nps = [BAD / "SurveySubject_nps.csv", BAD / "SurveyQuestionResponse_nps.json"]
    answers = rows(nps[1])
    outside = [a for a in answers if not 1 <= a["NumberValue"] <= 5]
    ws = new_workspace(tmp_path / "a")
    report = ingest(ws, [CASE, *nps])
    f = next(f for f in report["files"] if f["file"].endswith(nps[1].name))
    assert (f["quarantined"], f["loaded"]) == (len(outside), len(answers) - len(outside))
    [(_, _, column, reason)] = quarantine(ws)
    assert column == "NumberValue" and "rating_question_ids" in reason
    assert str(outside[0]["NumberValue"]) in reason

    ws = new_workspace(tmp_path / "b")
    report = ingest(ws, [CASE, *nps], f"rating_question_ids={IDS['Q_CSAT']}")
    assert report["totals"]["quarantined"] == 0
    got = events(
        ws,
        "SELECT type, attrs ->> 'question_id', value FROM events "
        "WHERE attrs ->> 'record' = 'survey_question_response' ORDER BY ALL",
    )
    assert sorted(got) == sorted(
        (
            "rated" if a["QuestionId"] == IDS["Q_CSAT"] else "survey_answer",
            a["QuestionId"],
            float(a["NumberValue"]),
        )
        for a in answers
    )

    ws = new_workspace(tmp_path / "c")
    ingest(ws, [CASE, *nps], f"rating_question_ids={IDS['Q_CSAT']}", "rating_scale=10")
    values = events(ws, "SELECT value, attrs ->> 'raw' FROM events WHERE type = 'rated'")
    assert sorted(v for v, _ in values) == sorted(
        1 + (a["NumberValue"] - 1) * 4 / 9 for a in answers if a["QuestionId"] == IDS["Q_CSAT"]
    )


def test_options_are_checked() -> None:
    adapter = get_adapter("salesforce")
    with pytest.raises(InputError, match="unknown AgentType"):
        adapter.parse_options({"ai_agent_types": "Copilot"})
    with pytest.raises(InputError, match="not a Salesforce Id"):
        adapter.parse_options({"ai_user_ids": "bob"})
    with pytest.raises(InputError, match="closed_statuses"):
        adapter.parse_options({"closed_status": "Closed"})
    shown = adapter.options_model().described()
    assert shown["ai_agent_types"] == ["Bot"] and shown["closed_statuses"] is None


def test_sources_lists_the_options() -> None:
    result = runner.invoke(app, ["sources", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = {s["source"]: s for s in json.loads(result.output)["sources"]}
    names = {o["name"] for o in listed["salesforce"]["options"]}
    assert {"ai_agent_types", "ai_user_ids", "closed_statuses", "rating_question_ids"} <= names


def test_record_of_another_object_in_a_page(tmp_path: Path) -> None:
    """REST records carry attributes.type; a record of another object is set aside, named."""
    records = [r for r in rows(HISTORY[0]) if r["Field"] == "Status"][:3]
    stray = dict(records[1], attributes={"type": "CaseFeed", "url": "/x"})
    page = tmp_path / "CaseHistory_mixed.json"
    page.write_text(
        json.dumps({"totalSize": 3, "done": True, "records": [records[0], stray, records[2]]})
    )
    ws = new_workspace(tmp_path)
    report = ingest(ws, [CASE, page])
    f = next(f for f in report["files"] if f["file"].endswith(page.name))
    assert (f["rows_read"], f["loaded"], f["quarantined"]) == (3, 2, 1)
    [(_, row, column, reason)] = quarantine(ws)
    assert (row, column) == (2, "attributes.type")
    assert "CaseFeed" in reason and "not a CaseHistory" in reason
