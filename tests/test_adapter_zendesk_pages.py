"""Zendesk audits one API page per file: actors resolved across the pages, in any order.

``ticket_audits_page1.json`` (the newest audits) and ``ticket_audits_page2.json`` (the older
ones) cut many tickets' histories in two: their creating audit, which names the requester and
the channel, is on page 2 while later updates are on page 1. Every expectation is computed in
plain Python from the fixture files, by the rules of docs/sources/zendesk.md, with the ticket
facts taken from the audits *known to the ingest* (and the tickets file when loaded) — never
from the store or the engine.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import truecount.cli.check_cmds  # registers the verbs
import truecount.cli.workspace_cmds  # noqa: F401
from truecount.cli.app import app
from truecount.definition import parse_definition
from truecount.engine.run import count
from truecount.workspace import Workspace

FIX = Path(__file__).resolve().parent / "fixtures" / "zendesk"
PAGE1 = FIX / "ticket_audits_page1.json"
PAGE2 = FIX / "ticket_audits_page2.json"
TICKETS = [FIX / "tickets_page1.json", FIX / "tickets_page2.json", FIX / "tickets_incremental.json"]
CLOSED = {"solved", "closed"}
OPEN = {"new", "open", "pending", "hold"}
AI_TICKET_CHANNELS = {"native_messaging"}
AI_CHANNELS = {
    "answer_bot",
    "answer_bot_api",
    "answer_bot_for_sdk",
    "answer_bot_for_slack",
    "answer_bot_for_web_widget",
}
AI_RELS = {"answer_bot"}
AS_OF = dt.datetime(2026, 3, 1)
TYPES = ("status_changed", "closed", "reopened", "message", "note", "escalated")

DEFINITION = """\
truecount: 1
name: no_human_reply
version: 1
unit: ticket
period: {every: month, timezone: UTC}
anchor: {type: closed, actor: ai, pick: first}
conditions:
  no_human_reply:
    absent: {type: message, actor: human, within: 14d}
quantity: 1
"""

runner = CliRunner()


def audits_of(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["audits"])


def tickets() -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for path in TICKETS:
        for t in json.loads(path.read_text(encoding="utf-8"))["tickets"]:
            out[t["id"]] = t
    return out


def ts(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Event:
    ticket: str
    ts: dt.datetime
    type: str
    actor: str | None
    order: tuple[int, int, int]  # audit id, event index, derived rank


def explicit(author: int | None, via: dict[str, Any]) -> bool:
    rel = (via.get("source") or {}).get("rel")
    return via.get("channel") in AI_CHANNELS or rel in AI_RELS


def model(
    in_file: list[dict[str, Any]], known: list[dict[str, Any]], ticket_rows: dict[int, Any]
) -> list[Event]:
    """The audit events of ``in_file``, with ticket facts from ``known`` and ``ticket_rows``."""
    history: dict[int, dict[int, dict[str, Any]]] = {}
    for a in known:
        history.setdefault(a["ticket_id"], {})[a["id"]] = a
    out: list[Event] = []
    seen: set[int] = set()
    for a in in_file:
        if a["id"] in seen:
            continue
        seen.add(a["id"])
        hist = sorted(
            history[a["ticket_id"]].values(), key=lambda h: (ts(h["created_at"]), h["id"])
        )
        out.extend(audit_events(a, hist, ticket_rows.get(a["ticket_id"])))
    return out


def audit_events(
    a: dict[str, Any], hist: list[dict[str, Any]], ticket: dict[str, Any] | None
) -> list[Event]:
    def creates(h: dict[str, Any]) -> bool:
        return any(e["type"] == "Create" for e in h["events"])

    def field_values(kind: str) -> list[int]:
        return [
            int(e["value"])
            for h in hist
            for e in h["events"]
            if e["type"] == kind and e.get("field_name") == "requester_id"
        ]

    creating = [h for h in hist if creates(h)]
    channel = creating[0]["via"]["channel"] if creating else None
    if channel is None and ticket is not None:
        channel = ticket["via"]["channel"]
    requesters = field_values("Create") or field_values("Change")
    requester = requesters[0] if requesters else None
    if requester is None and ticket is not None:
        requester = ticket["requester_id"]
    ai_ticket = channel in AI_TICKET_CHANNELS

    escalation: int | None = None
    ai_seen = False
    for i, h in enumerate(hist):
        comments = [e for e in h["events"] if e["type"] == "Comment"]
        if explicit(h["author_id"], h["via"]) or any(
            explicit(c.get("author_id", h["author_id"]), c.get("via") or h["via"]) for c in comments
        ):
            ai_seen = True
        to_agent = any(
            e["type"] in ("Create", "Change")
            and e.get("field_name") == "assignee_id"
            and e.get("value")
            for e in h["events"]
        )
        to_group = any(
            e["type"] == "Change" and e.get("field_name") == "group_id" and e.get("value")
            for e in h["events"]
        ) and not creates(h)
        if escalation is None and (to_agent or to_group) and (ai_ticket or ai_seen):
            escalation = i

    def actor(author: int | None, via: dict[str, Any], before: bool) -> str | None:
        if explicit(author, via):
            return "ai"
        if author is None:
            return None
        if author == requester:
            return "customer"
        if ai_ticket and before:
            return "ai"
        if channel is None and before:
            return None  # whether it is an AI agent ticket cannot be told
        if author == -1:
            return "system"
        return "human" if requester is not None else None

    pos = next(i for i, h in enumerate(hist) if h["id"] == a["id"])
    before = escalation is None or pos < escalation
    who = actor(a["author_id"], a["via"], before)
    when = ts(a["created_at"])
    tid = str(a["ticket_id"])
    out: list[Event] = []
    if not a["events"]:
        out.append(Event(tid, when, "audit_event", None, (a["id"], 0, 0)))
    for idx, e in enumerate(a["events"]):
        if e["type"] == "Comment":
            speaker = actor(e.get("author_id", a["author_id"]), e.get("via") or a["via"], before)
            kind = "message" if e.get("public", True) else "note"
            out.append(Event(tid, when, kind, speaker, (a["id"], idx, 0)))
            continue
        name = e.get("field_name")
        if e["type"] in ("Create", "Change") and name == "status":
            value, prev = e["value"], e.get("previous_value")
            out.append(Event(tid, when, "status_changed", who, (a["id"], idx, 0)))
            if value in CLOSED and (e["type"] == "Create" or prev not in CLOSED):
                out.append(Event(tid, when, "closed", who, (a["id"], idx, 1)))
            if e["type"] == "Change" and prev in CLOSED and value in OPEN:
                out.append(Event(tid, when, "reopened", who, (a["id"], idx, 1)))
            continue
        assigned = name in ("assignee_id", "group_id") and e.get("value")
        out.append(
            Event(tid, when, "assigned" if assigned else "audit_event", who, (a["id"], idx, 0))
        )
    if pos == escalation:
        out.append(
            Event(tid, when, "escalated", actor(a["author_id"], a["via"], False), (a["id"], 99, 2))
        )
    return out


def comparable(events: list[Event]) -> Counter[tuple[str, dt.datetime, str, str | None]]:
    return Counter((e.ticket, e.ts, e.type, e.actor) for e in events if e.type in TYPES)


def verdicts_of(events: list[Event]) -> dict[str, str]:
    """DEFINITION by hand: the first close by the AI, and no public message by a human (or by
    no known actor) within 14 days after it."""
    by_ticket: dict[str, list[Event]] = {}
    for e in events:
        by_ticket.setdefault(e.ticket, []).append(e)
    out: dict[str, str] = {}
    for tid, evs in by_ticket.items():
        closes = sorted(
            (e for e in evs if e.type == "closed" and e.actor == "ai"),
            key=lambda e: (e.ts, e.order),
        )
        if not closes:
            continue
        anchor = closes[0]
        end = anchor.ts + dt.timedelta(days=14)
        if end > AS_OF:
            out[tid] = "pending"
            continue
        spoke = any(
            e.type == "message" and e.actor in ("human", None) and anchor.ts <= e.ts <= end
            for e in evs
        )
        out[tid] = "not_counted" if spoke else "counted"
    return out


# --------------------------------------------------------------------------- running


def ingest(ws: Path, files: list[Path], *extra: str) -> dict[str, Any]:
    if not ws.exists():
        assert runner.invoke(app, ["init", str(ws)]).exit_code == 0
    args = ["ingest", "--source", "zendesk", *extra, *map(str, files), "-w", str(ws)]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def stored(ws: Path) -> list[tuple[str, dt.datetime, str, str | None]]:
    with Workspace.open(ws).connect(read_only=True) as con:
        rows = con.execute(
            "SELECT entity_id, ts, type, actor FROM events "
            "WHERE attrs ->> '$.record' = 'audits' AND type IN "
            "('status_changed', 'closed', 'reopened', 'message', 'note', 'escalated')"
        ).fetchall()
    return [(str(r[0]), r[1], str(r[2]), r[3]) for r in rows]


def engine_verdicts(ws: Path) -> dict[str, str]:
    result = count(parse_definition(DEFINITION), Workspace.open(ws), as_of=AS_OF)
    try:
        return {str(r["entity_id"]): str(r["status"]) for r in result.verdicts.to_pylist()}
    finally:
        result.close()


P1, P2 = audits_of(PAGE1), audits_of(PAGE2)


def test_the_pages_cut_ticket_histories() -> None:
    """The fixture is what the test needs: tickets whose creating audit is on the other page."""
    created_on_2 = {a["ticket_id"] for a in P2 if any(e["type"] == "Create" for e in a["events"])}
    cut = {a["ticket_id"] for a in P1} & created_on_2
    assert len(cut) >= 3
    assert {a["id"] for a in P1}.isdisjoint({a["id"] for a in P2})


@pytest.mark.parametrize("with_tickets", [True, False], ids=["with-tickets", "audits-only"])
@pytest.mark.parametrize("order", ["page1-first", "page2-first"])
def test_pages_in_one_ingest_resolve_every_actor_in_any_order(
    tmp_path: Path, order: str, with_tickets: bool
) -> None:
    pages = [PAGE1, PAGE2] if order == "page1-first" else [PAGE2, PAGE1]
    extra = () if with_tickets else ("--partial",)
    report = ingest(tmp_path / "ws", [*(TICKETS if with_tickets else []), *pages], *extra)
    rows = tickets() if with_tickets else {}
    expected = model(P1 + P2, P1 + P2, rows)
    assert Counter(stored(tmp_path / "ws")) == comparable(expected)
    assert all(e.actor is not None for e in expected if e.type in ("message", "closed"))
    assert report["totals"]["unknown_actor"] == sum(e.actor is None for e in expected)
    assert engine_verdicts(tmp_path / "ws") == verdicts_of(expected)


def test_one_page_with_the_tickets_file_takes_the_facts_from_the_tickets(tmp_path: Path) -> None:
    report = ingest(tmp_path / "ws", [*TICKETS, PAGE1])
    expected = model(P1, P1, tickets())
    assert Counter(stored(tmp_path / "ws")) == comparable(expected)
    assert report["totals"]["unknown_actor"] == sum(e.actor is None for e in expected)
    assert engine_verdicts(tmp_path / "ws") == verdicts_of(expected)


def test_one_page_alone_says_which_actors_are_unknown(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    report = ingest(ws, [PAGE1], "--partial")
    expected = model(P1, P1, {})
    unknown = sum(e.actor is None for e in expected)
    assert unknown > 0
    assert Counter(stored(ws)) == comparable(expected)
    (page,) = report["files"]
    assert page["unknown_actor"] == unknown
    # every event without an actor says why
    with Workspace.open(ws).connect(read_only=True) as con:
        reasons = con.execute(
            "SELECT count(*), count(attrs ->> '$.actor_unknown') FROM events WHERE actor IS NULL"
        ).fetchone()
    assert reasons == (unknown, unknown)
    # the table output names the count too
    shown = runner.invoke(
        app, ["ingest", "--source", "zendesk", "--partial", str(PAGE1), "-w", str(ws)]
    )
    assert "no actor" in shown.output
    # check: per condition that filters by actor, the unknown ones of its type, per file
    definition = tmp_path / "def.yaml"
    definition.write_text(DEFINITION, encoding="utf-8")
    result = runner.invoke(
        app, ["check", str(definition), "-w", str(ws), "--as-of", "2026-03-01", "--format", "json"]
    )
    assert result.exit_code in (0, 1), result.output
    need = json.loads(result.output)["conditions"][0]["needs"][0]
    messages = sum(e.actor is None for e in expected if e.type == "message")
    assert need["unknown_actor_files"] == ({PAGE1.name: messages} if messages else {})
    # and the verdicts treat those messages as possibly human
    assert engine_verdicts(ws) == verdicts_of(expected)


def test_a_page_loaded_in_a_later_ingest_reads_the_earlier_pages(tmp_path: Path) -> None:
    """Page 2 first (its own facts), then page 1 alone: page 1 finds the creating audits in
    the store. Page 2's events were stored with what was known then."""
    ws = tmp_path / "ws"
    ingest(ws, [PAGE2], "--partial")
    ingest(ws, [PAGE1], "--partial")
    expected = model(P2, P2, {}) + model(P1, P1 + P2, {})
    assert Counter(stored(ws)) == comparable(expected)
    assert engine_verdicts(ws) == verdicts_of(expected)
