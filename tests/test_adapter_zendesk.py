"""The Zendesk adapter against its fixtures, checked by an independent reading of the records.

Every expectation here is computed in plain Python from the fixture files themselves (the
JSON the Zendesk API returns), following the rules written in docs/sources/zendesk.md — never
from the events table or with the engine. The same records are ingested through the command
line, and the store, the quarantine and the verdicts must agree with that reading.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

import truecount.cli.check_cmds  # registers the verbs
import truecount.cli.workspace_cmds  # noqa: F401
from truecount import library
from truecount.adapters import get_adapter, source_names
from truecount.cli.app import app
from truecount.definition import load_definition
from truecount.engine.run import count
from truecount.workspace import Workspace

FIX = Path(__file__).resolve().parent / "fixtures" / "zendesk"
BAD = FIX / "bad"
GOOD_FILES = [
    FIX / "tickets_page1.json",
    FIX / "tickets_page2.json",
    FIX / "tickets_incremental.json",
    FIX / "ticket_audits.json",
    FIX / "ticket_audits.jsonl",
    FIX / "satisfaction_ratings.json",
    FIX / "csat_survey_responses.json",
    FIX / "ticket_metric_events.json",
]
PAGE_KEYS = (
    "tickets",
    "audits",
    "satisfaction_ratings",
    "survey_responses",
    "ticket_metric_events",
)
AS_OF = "2026-03-01T00:00:00"
CLOSED = {"solved", "closed"}
OPEN = {"new", "open", "pending", "hold"}

DEFINITION = """\
truecount: 1
name: zendesk_resolution
version: 1
description: Closed by the AI, no reopen or follow-up within 14 days, rated 4+ within 7 days.
unit: ticket
period: {every: month, timezone: UTC}
anchor: {type: closed, actor: ai, pick: first}
conditions:
  not_reopened:
    absent: {type: reopened, within: 14d}
  no_followup:
    absent: {type: followup_created, within: 14d}
  satisfied:
    exists: {type: rated, within: 7d, where: "value >= 4"}
    if_no_data: fail
quantity: 1
"""

runner = CliRunner()


def _scenarios() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zendesk_fixtures", FIX / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- reading fixtures


def records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The vendor records of a fixture file, and how many lines of it do not parse."""
    if path.suffix == ".jsonl":
        good: list[dict[str, Any]] = []
        broken = 0
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                good.append(json.loads(line))
            except json.JSONDecodeError:
                broken += 1
        return good, broken
    doc = json.loads(path.read_text(encoding="utf-8"))
    key = next(k for k in PAGE_KEYS if k in doc)
    return list(doc[key]), 0


def all_records(*names: str) -> list[dict[str, Any]]:
    return [r for p in GOOD_FILES if p.name.startswith(names) for r in records(p)[0]]


def ts(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Opts:
    """The adapter's options as documented, with their documented defaults."""

    ai_author_ids: tuple[int, ...] = ()
    ai_channels: tuple[str, ...] = (
        "answer_bot",
        "answer_bot_api",
        "answer_bot_for_sdk",
        "answer_bot_for_slack",
        "answer_bot_for_web_widget",
    )
    ai_source_rels: tuple[str, ...] = ("answer_bot",)
    ai_agent_ticket_channels: tuple[str, ...] = ("native_messaging",)
    good: float = 5.0
    bad: float = 1.0
    scale_max: int = 5


# --------------------------------------------------------------------------- the model


@dataclass
class Ticket:
    closes: list[tuple[dt.datetime, int, str]] = field(default_factory=list)  # ts, audit, actor
    reopens: list[tuple[dt.datetime, str]] = field(default_factory=list)
    escalated: tuple[dt.datetime, str] | None = None
    messages: Counter[str] = field(default_factory=Counter)
    said: list[tuple[dt.datetime, str]] = field(default_factory=list)  # public comment: ts, actor
    audit_events: int = 0  # canonical events the ticket's audits give


def audit_model(audits: list[dict[str, Any]], o: Opts) -> dict[int, Ticket]:
    """Who closed, reopened and escalated each ticket, by the documented attribution rules."""
    by_ticket: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    for a in audits:
        by_ticket[a["ticket_id"]][a["id"]] = a  # an audit repeated by another page counts once
    return {
        tid: ticket_model(sorted(unique.values(), key=lambda a: (ts(a["created_at"]), a["id"])), o)
        for tid, unique in by_ticket.items()
    }


def creates(audit: dict[str, Any]) -> bool:
    return any(e["type"] == "Create" for e in audit["events"])


def ticket_model(hist: list[dict[str, Any]], o: Opts) -> Ticket:
    """One ticket's audits, in Zendesk's order, read as the documentation says."""
    creating = [a for a in hist if creates(a)]
    channel = creating[0]["via"]["channel"] if creating else None
    requester = next(
        int(e["value"])
        for a in hist
        for e in a["events"]
        if e["type"] == "Create" and e.get("field_name") == "requester_id"
    )
    ai_ticket = channel in o.ai_agent_ticket_channels

    def explicit(author: int, via: dict[str, Any]) -> bool:
        rel = (via.get("source") or {}).get("rel")
        return (
            author in o.ai_author_ids
            or via.get("channel") in o.ai_channels
            or rel in o.ai_source_rels
        )

    escalation: int | None = None
    ai_seen = False
    for i, a in enumerate(hist):
        comments = [e for e in a["events"] if e["type"] == "Comment"]
        if explicit(a["author_id"], a["via"]) or any(
            explicit(c.get("author_id", a["author_id"]), c.get("via") or a["via"]) for c in comments
        ):
            ai_seen = True
        to_agent = any(
            e["type"] in ("Create", "Change")
            and e.get("field_name") == "assignee_id"
            and e.get("value")
            and int(e["value"]) not in o.ai_author_ids
            for e in a["events"]
        )
        to_group = any(
            e["type"] == "Change" and e.get("field_name") == "group_id" and e.get("value")
            for e in a["events"]
        ) and not creates(a)
        if escalation is None and (to_agent or to_group) and (ai_ticket or ai_seen):
            escalation = i

    def actor(author: int, via: dict[str, Any], i: int) -> str:
        if explicit(author, via):
            return "ai"
        if author == requester:
            return "customer"
        if ai_ticket and (escalation is None or i < escalation):
            return "ai"
        return "system" if author == -1 else "human"

    t = Ticket()
    for i, a in enumerate(hist):
        when = ts(a["created_at"])
        who = actor(a["author_id"], a["via"], i)
        t.audit_events += len(a["events"]) or 1
        for e in a["events"]:
            if e["type"] == "Comment":
                if e["public"]:
                    author = e.get("author_id", a["author_id"])
                    speaker = actor(author, e.get("via") or a["via"], i)
                    t.messages[speaker] += 1
                    t.said.append((when, speaker))
                continue
            if e.get("field_name") != "status":
                continue
            value, prev = e["value"], e.get("previous_value")
            if value in CLOSED and (e["type"] == "Create" or prev not in CLOSED):
                t.closes.append((when, a["id"], who))
                t.audit_events += 1
            if e["type"] == "Change" and prev in CLOSED and value in OPEN:
                t.reopens.append((when, who))
                t.audit_events += 1
        if i == escalation:
            t.escalated = (when, who)
            t.audit_events += 1
    return t


def ratings_model(o: Opts) -> dict[int, list[tuple[dt.datetime, float]]]:
    """Every rating on the 1-5 scale: legacy good/bad by the options, survey answers scaled."""
    out: dict[int, set[tuple[dt.datetime, float]]] = defaultdict(set)
    for r in all_records("satisfaction_ratings"):
        if r["score"] in ("good", "bad"):
            value = o.good if r["score"] == "good" else o.bad
            out[r["ticket_id"]].add((ts(r["updated_at"] or r["created_at"]), value))
    for resp in all_records("csat_survey_responses"):
        tickets = [int(s["zrn"].rsplit(":", 1)[1]) for s in resp["subjects"]]
        for a in resp["answers"]:
            if a["rating"] is None:
                continue
            value = 1 + (a["rating"] - 1) * 4 / (o.scale_max - 1)
            for tid in tickets:
                out[tid].add((ts(a["updated_at"]), value))
    return {k: sorted(v) for k, v in out.items()}


def unique_tickets() -> dict[int, dict[str, Any]]:
    return {t["id"]: t for t in all_records("tickets")}


def followups() -> dict[int, list[tuple[dt.datetime, int]]]:
    out: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for t in unique_tickets().values():
        if t["via_followup_source_id"]:
            out[t["via_followup_source_id"]].append((ts(t["created_at"]), t["id"]))
    return dict(out)


def expected_verdicts(o: Opts) -> dict[str, str]:
    """The test definition evaluated by hand over the fixture records."""
    as_of = dt.datetime.fromisoformat(AS_OF)
    model = audit_model(all_records("ticket_audits"), o)
    rated = ratings_model(o)
    follow = followups()
    out: dict[str, str] = {}
    for tid, t in model.items():
        ai = sorted((when, aid) for when, aid, who in t.closes if who == "ai")
        if not ai:
            continue
        anchor = ai[0][0]

        def inside(when: dt.datetime, days: int, anchor: dt.datetime = anchor) -> bool:
            return anchor <= when <= anchor + dt.timedelta(days=days)

        reopened = any(inside(when, 14) for when, _ in t.reopens)
        followed = any(inside(when, 14) for when, _ in follow.get(tid, []))
        satisfied = any(inside(when, 7) and v >= 4 for when, v in rated.get(tid, []))
        if anchor + dt.timedelta(days=14) > as_of:
            out[str(tid)] = "pending"
        elif not reopened and not followed and satisfied:
            out[str(tid)] = "counted"
        else:
            out[str(tid)] = "not_counted"
    return out


#: A verdict as the model and the engine both give it: status, reason, and each condition.
Verdict = tuple[str, str | None, dict[str, bool]]


def judged(window_end: dt.datetime, as_of: dt.datetime, conditions: dict[str, bool]) -> Verdict:
    """The status rules of docs/definition.md: pending while the longest window is open."""
    failed = [name for name, ok in conditions.items() if not ok]
    if window_end > as_of:
        return "pending", "pending", conditions
    if failed:
        return "not_counted", ", ".join(failed), conditions
    return "counted", None, conditions


def strict_model(o: Opts) -> dict[str, Verdict]:
    """The packaged support_resolution_strict, read from its YAML and page, over the records:
    the AI's first close; no reopen and no follow-up ticket within 14 days; the latest rating
    within 7 days is 4 or more (no rating fails); no public human comment in the 365 days up
    to the close."""
    as_of = dt.datetime.fromisoformat(AS_OF)
    model = audit_model(all_records("ticket_audits"), o)
    rated = ratings_model(o)
    follow = followups()
    out: dict[str, Verdict] = {}
    for tid, t in model.items():
        ai = [when for when, _, who in t.closes if who == "ai" and when <= as_of]
        if not ai:
            continue
        anchor = min(ai)

        def inside(when: dt.datetime, span: dt.timedelta, anchor: dt.datetime = anchor) -> bool:
            return anchor <= when <= min(anchor + span, as_of)

        week = sorted(
            (when, v) for when, v in rated.get(tid, []) if inside(when, dt.timedelta(days=7))
        )
        if week:  # the latest by time: two in its second would need the engine's tie-break
            assert len({v for when, v in week if when == week[-1][0]}) == 1
        conditions = {
            "not_reopened": not any(inside(w, dt.timedelta(days=14)) for w, _ in t.reopens),
            "no_followup": not any(
                inside(w, dt.timedelta(days=14)) for w, _ in follow.get(tid, [])
            ),
            "satisfied": bool(week) and week[-1][1] >= 4,
            "no_human_message": not any(
                anchor - dt.timedelta(days=365) <= w <= anchor and who == "human"
                for w, who in t.said
            ),
        }
        out[str(tid)] = judged(anchor + dt.timedelta(days=14), as_of, conditions)
    return out


def automated_model(o: Opts) -> dict[str, Verdict]:
    """The packaged automated_resolution over the records: the AI's last public reply; the
    ticket never escalated; no public comment by the customer or a human within 72 hours."""
    as_of = dt.datetime.fromisoformat(AS_OF)
    out: dict[str, Verdict] = {}
    for tid, t in audit_model(all_records("ticket_audits"), o).items():
        said = [(when, who) for when, who in t.said if when <= as_of]
        answers = [when for when, who in said if who == "ai"]
        if not answers:
            continue
        anchor = max(answers)
        end = anchor + dt.timedelta(hours=72)
        conditions = {
            "never_escalated": t.escalated is None or t.escalated[0] > as_of,
            "inactive_72h": not any(
                anchor <= when <= end and who in ("customer", "human") for when, who in said
            ),
        }
        out[str(tid)] = judged(end, as_of, conditions)
    return out


# --------------------------------------------------------------------------- helpers


def init(path: Path) -> Path:
    result = runner.invoke(app, ["init", str(path)])
    assert result.exit_code == 0, result.output
    return path


def ingest(ws: Path, files: list[Path], *extra: str) -> dict[str, Any]:
    args = ["ingest", "--source", "zendesk", *extra, *map(str, files), "-w", str(ws)]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def query(ws: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with Workspace.open(ws).connect(read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def verdicts(ws: Path) -> dict[str, str]:
    definition = ws.parent / "zendesk_resolution.yaml"
    definition.write_text(DEFINITION, encoding="utf-8")
    result = count(load_definition(definition), Workspace.open(ws), as_of=AS_OF)
    try:
        table = result.verdicts.to_pylist()
    finally:
        result.close()
    return {str(r["entity_id"]): str(r["status"]) for r in table}


def library_verdicts(ws: Path, name: str) -> dict[str, Verdict]:
    """The engine's verdicts of a packaged definition, with the reason and every condition."""
    definition = library.load(name)
    result = count(definition, Workspace.open(ws), as_of=AS_OF)
    try:
        table = result.verdicts.to_pylist()
    finally:
        result.close()
    return {
        str(r["entity_id"]): (
            str(r["status"]),
            r["reason"],
            {n: r[f"cond_{n}"] for n in definition.conditions},
        )
        for r in table
    }


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    ws = init(tmp_path_factory.mktemp("zendesk") / "ws")
    yield ws, ingest(ws, GOOD_FILES)


# --------------------------------------------------------------------------- (a) counts


def test_every_record_is_loaded_or_a_duplicate(loaded: tuple[Path, dict[str, Any]]) -> None:
    """Per file: records read, loaded and repeated (overlapping pages) as the fixtures say."""
    _, report = loaded
    seen: set[object] = set()
    model = audit_model(all_records("ticket_audits"), Opts())
    # audits read the stored tickets, so they load after every other kind (in the order given)
    in_order = sorted(GOOD_FILES, key=lambda p: p.name.startswith("ticket_audits"))
    for path, got in zip(in_order, report["files"], strict=True):
        recs, broken = records(path)
        assert broken == 0
        loaded_n = duplicate = events = 0
        for r in recs:
            if path.name.startswith("tickets"):
                key: object = ("ticket", r["id"])
                n = 2 if r["via_followup_source_id"] else 1
            elif path.name.startswith("ticket_audits"):
                key = ("audit", r["id"])
                n = 0  # checked per ticket below
            elif path.name.startswith("satisfaction"):
                key, n = ("rating", r["id"], r["updated_at"]), 1
            elif path.name.startswith("csat"):
                rated = sum(a["rating"] is not None for a in r["answers"])
                key, n = ("survey", r["id"]), (rated or 1) * len(r["subjects"])
            else:
                key, n = ("metric", r["id"]), 1
            if key in seen:
                duplicate += 1
            else:
                seen.add(key)
                loaded_n += 1
                events += n
        assert got["file"] == str(path)
        assert (got["rows_read"], got["loaded"], got["duplicate"], got["quarantined"]) == (
            len(recs),
            loaded_n,
            duplicate,
            0,
        ), path.name
        if path.name.startswith("ticket_audits"):
            tickets = {r["ticket_id"] for r in recs}
            events = sum(model[t].audit_events for t in tickets)
        elif path.name.startswith("ticket_metric"):
            events += len(metric_reopens(recs))
        assert got["events_loaded"] == events, path.name
    assert report["totals"]["duplicate"] == 5  # 3 tickets repeated by page 2, 2 by the cursor


# --------------------------------------------------------------------------- (b) events


def metric_reopens(recs: list[dict[str, Any]]) -> set[tuple[str, dt.datetime]]:
    """Resolution time activated again after it was fulfilled, per ticket."""
    out: set[tuple[str, dt.datetime]] = set()
    state: dict[int, str] = {}
    for r in sorted(recs, key=lambda r: (ts(r["time"]), r["id"])):
        if r["metric"] != "resolution_time" or r["type"] not in ("activate", "fulfill"):
            continue
        if r["type"] == "activate" and state.get(r["ticket_id"]) == "fulfill":
            out.add((str(r["ticket_id"]), ts(r["time"])))
        state[r["ticket_id"]] = r["type"]
    return out


def test_closes_reopens_and_escalations_match_the_audits(
    loaded: tuple[Path, dict[str, Any]],
) -> None:
    ws, _ = loaded
    model = audit_model(all_records("ticket_audits"), Opts())
    closes = query(
        ws,
        "SELECT entity_id, ts, actor FROM events WHERE type = 'closed' ORDER BY entity_id, ts, seq",
    )
    assert closes == [
        (str(tid), when, who) for tid in sorted(model) for when, _, who in model[tid].closes
    ]
    reopens = query(
        ws, "SELECT entity_id, ts, actor FROM events WHERE type = 'reopened' ORDER BY ALL"
    )
    assert reopens == sorted(
        (str(tid), when, who) for tid, t in model.items() for when, who in t.reopens
    )
    escalations = query(
        ws, "SELECT entity_id, ts, actor FROM events WHERE type = 'escalated' ORDER BY ALL"
    )
    assert escalations == sorted(
        (str(tid), *t.escalated) for tid, t in model.items() if t.escalated is not None
    )
    assert {e[0] for e in escalations} == {"1006", "1007", "1024"}
    messages = query(
        ws,
        "SELECT entity_id, actor, count(*) FROM events WHERE type = 'message' GROUP BY ALL",
    )
    assert {(int(t), a): n for t, a, n in messages} == {
        (tid, who): n for tid, t in model.items() for who, n in t.messages.items()
    }


def test_ratings_followups_and_metric_reopens(loaded: tuple[Path, dict[str, Any]]) -> None:
    ws, _ = loaded
    rated = query(ws, "SELECT entity_id, ts, value FROM events WHERE type = 'rated' ORDER BY ALL")
    assert rated == sorted(
        (str(tid), when, v) for tid, values in ratings_model(Opts()).items() for when, v in values
    )
    offered = query(
        ws,
        "SELECT type, attrs ->> '$.raw', value FROM events "
        "WHERE type IN ('rating_offered', 'rating_unoffered') ORDER BY ALL",
    )
    raw = Counter(r["score"] for r in all_records("satisfaction_ratings"))
    assert (
        offered
        == [("rating_offered", "offered", None)] * raw["offered"]
        + [("rating_unoffered", "unoffered", None)] * raw["unoffered"]
    )
    got = query(
        ws,
        "SELECT entity_id, ts, CAST(attrs ->> '$.followup_id' AS BIGINT) FROM events "
        "WHERE type = 'followup_created' ORDER BY ALL",
    )
    assert got == sorted(
        (str(src), when, fid) for src, items in followups().items() for when, fid in items
    )
    reopen = query(ws, "SELECT entity_id, ts FROM events WHERE type = 'metric_reopen'")
    assert set(reopen) == metric_reopens(all_records("ticket_metric_events"))
    assert {t for t, _ in reopen} == {"1004", "1005"}


def test_same_second_updates_follow_zendesk_audit_order(
    loaded: tuple[Path, dict[str, Any]],
) -> None:
    """Ticket 1012's solve and the customer's reopening reply share a second, and the page
    lists the reply first; the audit id (seq) still puts the close first."""
    ws, _ = loaded
    page = [a for a in records(FIX / "ticket_audits.json")[0] if a["ticket_id"] == 1012]
    pair = [a for a in page if [b["created_at"] for b in page].count(a["created_at"]) == 2]
    assert pair[0]["id"] > pair[1]["id"]  # listed in reverse
    order = query(
        ws,
        "SELECT type, actor FROM events WHERE entity_id = '1012' "
        "AND type IN ('closed', 'reopened') ORDER BY ts, seq, event_id",
    )
    assert order == [("closed", "ai"), ("reopened", "customer")]
    order = query(
        ws,
        "SELECT type, actor FROM events WHERE entity_id = '1025' "
        "AND type IN ('closed', 'message') AND ts = (SELECT max(ts) FROM events "
        "WHERE entity_id = '1025' AND type = 'closed') ORDER BY ts, seq, event_id",
    )
    assert order == [("message", "customer"), ("closed", "ai")]


def test_every_event_says_where_it_came_from(loaded: tuple[Path, dict[str, Any]]) -> None:
    ws, _ = loaded
    rows = query(
        ws,
        "SELECT count(*), count(*) FILTER (WHERE json_type(attrs -> '$.origin') = 'OBJECT' "
        "AND attrs ->> '$.vendor' = 'zendesk' AND attrs ->> '$.record' IS NOT NULL), "
        "count(DISTINCT event_id) FROM events",
    )
    total, marked, ids = rows[0]
    assert total == marked == ids
    why = query(
        ws,
        "SELECT entity_id, attrs ->> '$.ai_by' FROM events WHERE type = 'closed' "
        "AND actor = 'ai' AND entity_id IN ('1001', '1015')",
    )
    assert sorted(why) == [("1001", "ai_agent_ticket_channels"), ("1015", "ai_channels")]


# --------------------------------------------------------------------------- (c) counting


def test_count_matches_a_hand_computed_expectation(loaded: tuple[Path, dict[str, Any]]) -> None:
    ws, _ = loaded
    expected = expected_verdicts(Opts())
    assert verdicts(ws) == expected
    scenarios = _scenarios()
    assert {t for t, s in expected.items() if s == "counted"} == {
        str(t) for t in scenarios.INTENDED_COUNTED
    }
    assert {t for t, s in expected.items() if s == "pending"} == {
        str(t) for t in scenarios.INTENDED_PENDING
    }


def failing(verdicts: dict[str, Verdict]) -> dict[str, tuple[str, list[str]]]:
    """Per ticket: status and the conditions that failed (readable in an assertion)."""
    return {
        tid: (status, [n for n, ok in conditions.items() if not ok])
        for tid, (status, _, conditions) in verdicts.items()
    }


@pytest.mark.parametrize(
    ("given", "opts"),
    [([], Opts()), (["--option", "ai_author_ids=[777]"], Opts(ai_author_ids=(777,)))],
    ids=["default", "email_ai_agent"],
)
def test_library_definitions_count_as_read_from_the_records(
    loaded: tuple[Path, dict[str, Any]], tmp_path: Path, given: list[str], opts: Opts
) -> None:
    """The packaged support_resolution_strict and automated_resolution, counted by the engine
    over the ingested fixtures, against the same definitions evaluated by hand over the JSON."""
    ws = loaded[0]
    if given:
        ws = init(tmp_path / "ws")
        ingest(ws, GOOD_FILES, *given)
    strict = library_verdicts(ws, "support_resolution_strict")
    assert strict == strict_model(opts)
    automated = library_verdicts(ws, "automated_resolution")
    assert automated == automated_model(opts)

    # The stories the fixtures were written to tell, so the model cannot drift with the engine.
    strict_failed = failing(strict)
    auto_failed = failing(automated)
    assert strict_failed["1002"] == ("not_counted", ["satisfied"])  # legacy bad
    assert strict_failed["1003"] == ("not_counted", ["satisfied"])  # never rated
    assert strict_failed["1004"] == ("not_counted", ["not_reopened"])
    assert strict_failed["1005"] == ("counted", [])  # reopened after 20 days
    assert strict_failed["1008"] == ("not_counted", ["no_followup"])  # follow-up 1030
    assert strict_failed["1012"] == ("not_counted", ["not_reopened"])  # same second
    assert strict_failed["1013"] == ("not_counted", ["satisfied"])  # rated after 9 days
    assert strict_failed["1014"][0] == "pending"
    assert not {"1006", "1007", "1016", "1023", "1030", "1031"} & set(strict)  # human closes
    assert auto_failed["1006"] == ("not_counted", ["never_escalated", "inactive_72h"])
    assert auto_failed["1007"] == ("not_counted", ["never_escalated", "inactive_72h"])
    assert auto_failed["1024"] == ("not_counted", ["never_escalated"])  # customer back after 74h
    assert auto_failed["1012"] == ("not_counted", ["inactive_72h"])
    assert auto_failed["1025"] == ("not_counted", ["inactive_72h"])
    assert auto_failed["1014"] == ("counted", [])  # 72 hours have passed by AS_OF
    # Solved without an AI reply: an Answer Bot article, an abandoned messaging ticket.
    assert not {"1015", "1019"} & set(automated)
    if not given:
        scenarios = _scenarios()
        assert {t for t, v in strict.items() if v[0] == "counted"} == {
            str(t) for t in scenarios.INTENDED_COUNTED
        }
        assert {"1017", "1018"}.isdisjoint(set(strict) | set(automated))
    else:
        # The email AI agent's user is the AI now: its solves and replies are candidates.
        assert strict_failed["1017"] == ("counted", [])
        assert strict_failed["1018"] == ("not_counted", ["satisfied"])
        assert auto_failed["1017"] == auto_failed["1018"] == ("counted", [])


# --------------------------------------------------------------------------- (d) bad input


def ingest_one(ws: Path, path: Path, *extra: str) -> tuple[int, str]:
    """Through the installed entry point, so errors come out as a user sees them (exit 2)."""
    args = ["ingest", "--source", "zendesk", *extra, str(path), "-w", str(ws), "--format", "json"]
    done = subprocess.run(
        [sys.executable, "-c", "from truecount.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout if done.returncode == 0 else done.stderr


@pytest.mark.parametrize(
    ("name", "row", "column", "words"),
    [
        ("ticket_audits_truncated.jsonl", 2, None, ["line 2", "not valid JSON"]),
        (
            "ticket_audits_unknown_status.json",
            2,
            "events[2].value",
            ["audit 50000720", "unknown status 'archived'", "solved, closed"],
        ),
        (
            "satisfaction_ratings_unknown_score.json",
            2,
            "score",
            ["satisfaction rating 79002", "unknown score 'great'", "good, bad"],
        ),
        (
            "csat_survey_responses_out_of_scale.json",
            1,
            "answers[0].rating",
            ["01JBADSCALE", "rating 7", "1 to 5", "survey_scale_max"],
        ),
        (
            "ticket_metric_events_unknown_type.json",
            2,
            "type",
            ["ticket metric event 89000002", "unknown type 'resume'", "fulfill"],
        ),
        ("tickets_unknown_status.json", 2, "status", ["ticket 3002", "unknown status 'escalated'"]),
    ],
)
def test_bad_records_are_quarantined_with_the_reason(
    tmp_path: Path, name: str, row: int, column: str | None, words: list[str]
) -> None:
    ws = init(tmp_path / "ws")
    path = BAD / name
    code, output = ingest_one(ws, path, "--partial")
    assert code == 0, output
    report = json.loads(output)["files"][0]
    recs, broken = records(path)
    read = len(recs) + broken
    assert report["rows_read"] == read
    assert report["rows_read"] == report["loaded"] + report["duplicate"] + report["quarantined"]
    assert (report["loaded"], report["quarantined"]) == (read - 1, 1)
    quarantined = query(ws, "SELECT file, row_number, column_name, reason FROM quarantine")
    assert len(quarantined) == 1
    file, got_row, got_column, reason = quarantined[0]
    assert file == str(path)
    assert (got_row, got_column) == (row, column)
    for word in words:
        assert word in reason


def test_an_id_with_a_fraction_is_quarantined_never_rounded(tmp_path: Path) -> None:
    ticket = {"created_at": "2026-01-05T09:00:00Z", "status": "open", "requester_id": 1}
    ids: list[Any] = [3010.5, "3011.5", 3010.0, 3012, "1.1e1"]
    path = tmp_path / "tickets.json"
    path.write_text(json.dumps({"tickets": [{**ticket, "id": i} for i in ids]}), encoding="utf-8")
    ws = init(tmp_path / "ws")
    report = ingest(ws, [path], "--partial")["files"][0]
    # as a JSON parser reads them: a whole number is that ticket, anything else is quarantined
    read = [json.loads(json.dumps(i)) if not isinstance(i, str) else i for i in ids]
    whole = {n: int(float(v)) for n, v in enumerate(read, start=1) if float(v) == int(float(v))}
    bad = {n: v for n, v in enumerate(read, start=1) if n not in whole}
    assert (report["rows_read"], report["loaded"], report["quarantined"]) == (5, 3, 2)
    assert {e for (e,) in query(ws, "SELECT entity_id FROM events")} == {
        str(v) for v in whole.values()
    }
    got = query(ws, "SELECT file, row_number, column_name, reason FROM quarantine ORDER BY 2")
    assert [(f, r, c) for f, r, c, _ in got] == [(str(path), n, "id") for n in sorted(bad)]
    for _, n, _, reason in got:
        assert f"(id: {bad[n]})" in reason and "whole-number" in reason


def test_whole_file_problems_stop_with_a_clear_error(tmp_path: Path) -> None:
    ws = init(tmp_path / "ws")
    code, output = ingest_one(ws, BAD / "intercom_conversations.json")
    assert code == 2
    text = " ".join(output.split())
    assert "intercom_conversations.json" in text and "not a Zendesk export" in text
    if "intercom" in source_names():
        assert "--source intercom" in text
    code, output = ingest_one(ws, BAD / "tickets_page_truncated.json")
    assert code == 2
    assert "not valid JSON" in " ".join(output.split())
    assert query(ws, "SELECT count(*) FROM events") == [(0,)]


def test_a_companion_file_is_required_unless_partial(tmp_path: Path) -> None:
    ws = init(tmp_path / "ws")
    for name in ("ticket_audits.json", "satisfaction_ratings.json", "csat_survey_responses.json"):
        code, output = ingest_one(ws, FIX / name)
        assert code == 2, name
        text = " ".join(output.split())
        assert name in text and "needs the Zendesk tickets export" in text and "--partial" in text
    assert query(ws, "SELECT count(*) FROM ingest_log") == [(0,)]
    code, output = ingest_one(ws, FIX / "ticket_audits.json", "--partial")
    assert code == 0, output
    # Once tickets are in the workspace, a later ingest of ratings alone is complete.
    ingest(ws, [FIX / "tickets_page1.json"])
    code, output = ingest_one(ws, FIX / "satisfaction_ratings.json")
    assert code == 0, output


def test_check_explains_a_thin_export(tmp_path: Path) -> None:
    """Tickets and audits without any ratings: the satisfaction condition has no data."""
    ws = init(tmp_path / "ws")
    ingest(ws, GOOD_FILES[:5])
    definition = tmp_path / "zendesk_resolution.yaml"
    definition.write_text(DEFINITION, encoding="utf-8")
    result = runner.invoke(
        app, ["check", str(definition), "-w", str(ws), "--format", "json", "--as-of", AS_OF]
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["ok"] is False and report["missing"] == ["satisfied"]
    parts = {c["name"]: c["status"] for c in report["conditions"]}
    assert parts == {"not_reopened": "ok", "no_followup": "ok", "satisfied": "missing"}
    assert report["anchor"]["status"] == "ok"
    assert report["anchor"]["candidates"] == len(expected_verdicts(Opts()))


# --------------------------------------------------------------------------- (e) options


@pytest.mark.parametrize(
    ("given", "opts", "changed"),
    [
        (
            ["--option", "ai_author_ids=[777]"],
            Opts(ai_author_ids=(777,)),
            {"1017": "counted", "1018": "not_counted"},
        ),
        (["--option", "good_rating_value=3"], Opts(good=3.0), None),
        (["--option", "survey_scale_max=10"], Opts(scale_max=10), None),
        (["--option", "ai_agent_ticket_channels=[]"], Opts(ai_agent_ticket_channels=()), None),
        (
            ["--option", "ai_channels=[]", "--option", "ai_source_rels=[]"],
            Opts(ai_channels=(), ai_source_rels=()),
            None,
        ),
    ],
)
def test_options_change_the_result_as_documented(
    tmp_path: Path, given: list[str], opts: Opts, changed: dict[str, str] | None
) -> None:
    ws = init(tmp_path / "ws")
    report = ingest(ws, GOOD_FILES, *given)
    expected = expected_verdicts(opts)
    got = verdicts(ws)
    assert got == expected
    default = expected_verdicts(Opts())
    assert got != default  # every option here moves the count
    if changed is not None:
        assert {k: v for k, v in got.items() if default.get(k) != v} == changed
    # The choice in force is in the report and in the ingest log of every file.
    key, _, value = given[1].partition("=")
    shown = json.dumps({key: json.loads(value)}, separators=(",", ":"))[1:-1]
    assert shown.replace(":", ": ").replace(",", ", ") in report["mapping"]
    logged = query(ws, "SELECT file, mapping FROM ingest_log ORDER BY ingest_id")
    assert len(logged) == len(GOOD_FILES)
    for file, mapping in logged:
        assert mapping.startswith("source zendesk:") and shown in mapping, file


def test_rating_choice_travels_with_each_rating(tmp_path: Path) -> None:
    ws = init(tmp_path / "ws")
    ingest(
        ws, [GOOD_FILES[0], FIX / "satisfaction_ratings.json"], "--option", "good_rating_value=4"
    )
    rows = query(
        ws,
        "SELECT DISTINCT attrs ->> '$.raw', value, attrs -> '$.assumed' FROM events "
        "WHERE type = 'rated' ORDER BY 1",
    )
    assert [(raw, value, json.loads(a)) for raw, value, a in rows] == [
        ("bad", 1.0, {"good": 4.0, "bad": 1.0}),
        ("good", 4.0, {"good": 4.0, "bad": 1.0}),
    ]


def test_bad_options_are_refused() -> None:
    adapter = get_adapter("zendesk")
    with pytest.raises(Exception, match="ai_autor_ids"):
        adapter.parse_options({"ai_autor_ids": "[1]"})
    with pytest.raises(Exception, match="survey_scale_max"):
        adapter.parse_options({"survey_scale_max": "1"})
    with pytest.raises(Exception, match="ai_author_ids"):
        adapter.parse_options({"ai_author_ids": "bot"})


def test_odd_audits_are_kept_or_quarantined_never_dropped(tmp_path: Path) -> None:
    """Audits Zendesk should not send but a broken export can: each one is accounted for."""
    ws = init(tmp_path / "ws")
    base = {"ticket_id": 5001, "author_id": 25001, "via": {"channel": "web"}}
    audits = [
        {
            **base,
            "id": 1,
            "created_at": "2026-01-05T09:00:00Z",
            "events": [
                {"id": 11, "type": "Create", "field_name": "status", "value": "new"},
                {"id": 12, "type": "Create", "field_name": "requester_id", "value": "25001"},
            ],
        },
        {**base, "id": 2, "created_at": "2026-01-05T09:01:00Z", "events": []},
        {**base, "id": 3, "created_at": "2026-01-05T09:02:00Z", "events": [{"id": 31}]},
        {**base, "id": 4, "created_at": "2026-01-05T09:03:00Z", "events": "oops"},
        {**base, "id": 5, "created_at": "2026-01-05T09:04:00Z", "events": [1]},
        {**base, "id": 6, "created_at": "yesterday", "events": []},
    ]
    path = tmp_path / "odd_audits.json"
    path.write_text(json.dumps({"audits": audits, "next_page": None}), encoding="utf-8")
    code, output = ingest_one(ws, path, "--partial")
    assert code == 0, output
    report = json.loads(output)["files"][0]
    assert (report["rows_read"], report["loaded"], report["quarantined"]) == (6, 3, 3)
    got = query(ws, "SELECT event_id, type, actor FROM events ORDER BY seq")
    assert got == [
        ("zendesk:audit:1:11", "status_changed", "customer"),
        ("zendesk:audit:1:12", "audit_event", "customer"),
        ("zendesk:audit:2", "audit_event", None),
        ("zendesk:audit:3:31", "audit_event", "customer"),
    ]
    reasons = query(ws, "SELECT row_number, column_name, reason FROM quarantine ORDER BY 1")
    assert [(r, c) for r, c, _ in reasons] == [(4, "events"), (5, "events[0]"), (6, "created_at")]
    assert "events is not a list" in reasons[0][2]
    assert "events[0] is not an object" in reasons[1][2]
    assert "'yesterday' is not a timestamp" in reasons[2][2]
