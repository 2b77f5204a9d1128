"""Write the Zendesk example: a quarter of a small help desk's export, and the vendor's invoice.

A help desk whose messaging is fronted by Zendesk's AI agent and whose email and web form
tickets go to people. The files are in the shapes Zendesk's API returns (see
docs/sources/zendesk.md):

* ``tickets.json``: one page of ``GET /api/v2/incremental/tickets/cursor``;
* ``ticket_audits.jsonl``: every ticket's audits, one audit a line (``jq -c '.audits[]'`` over
  the pages of ``GET /api/v2/ticket_audits``), each ticket's history whole;
* ``satisfaction_ratings.json``: one page of ``GET /api/v2/satisfaction_ratings`` (legacy
  CSAT, ``good`` / ``bad``).

``invoice.csv`` bills the vendor's looser rule: an automated resolution for every AI agent
ticket solved without an escalation, whatever the customer did next (reopened, rated it bad,
never rated it), billed three days (Zendesk's 72 hours of inactivity) after the solve. It also
carries a line billed twice and a line for a ticket that is not in the export, as real
invoices do. ``terms.yaml`` is hand-written.

People: requesters are ``30000 + ticket id``; agents 501 and 502; the messaging AI agent's
bot user 778; Zendesk's system user -1. Run: ``python examples/zendesk/generate.py`` (the
output is the same on every run).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BASE = "https://example-help.zendesk.com/api/v2"
START = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
END = dt.datetime(2026, 3, 31, 18, 0, tzinfo=dt.UTC)
AGENTS, BOT, SYSTEM, GROUP = (501, 502), 778, -1, 360
PRICE = "1.50"
TICKETS = 72

#: The stories a ticket can have, with their weights in the mix.
STORIES: dict[str, int] = {
    "ai_rated_good": 30,  # the AI agent answers, the system solves it, rated good
    "ai_rated_bad": 6,
    "ai_unrated": 14,
    "ai_reopened": 8,  # the customer comes back within 14 days; an agent solves it
    "ai_followup": 3,  # closed, then a follow-up ticket within 14 days
    "ai_late_rating": 4,  # rated good, but after 9 days
    "escalated": 12,  # the AI agent hands over to the support group; an agent solves it
    "human_email": 16,  # an email ticket an agent solves
    "open": 4,  # still open at the end of the export
}


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def via(channel: str, rel: str | None = None, **source: Any) -> dict[str, Any]:
    return {"channel": channel, "source": {"from": source, "to": {}, "rel": rel}}


MSG = via("native_messaging")
EMAIL = via("email")
WEB = via("web")
SOLVE_AT_END = via("rule", "trigger", id=4001, title="Solve AI agent ticket at session end")
AUTO_CLOSE = via("rule", "automation", id=4002, title="Close 4 days after solved")


def comment(author: int, body: str, channel: dict[str, Any], public: bool = True) -> dict[str, Any]:
    return {
        "type": "Comment",
        "author_id": author,
        "body": body,
        "html_body": f"<p>{body}</p>",
        "plain_body": body,
        "public": public,
        "attachments": [],
        "via": channel,
    }


def change(field: str, value: Any, previous: Any) -> dict[str, Any]:
    return {"type": "Change", "field_name": field, "value": value, "previous_value": previous}


class Export:
    """Tickets, audits and ratings; ids are handed out in time order, as Zendesk's grow."""

    def __init__(self) -> None:
        self.tickets: list[dict[str, Any]] = []
        self.audits: list[tuple[dt.datetime, int, dict[str, Any]]] = []
        self.ratings: list[dict[str, Any]] = []
        self.billed: list[tuple[int, dt.datetime]] = []

    def ticket(
        self, tid: int, t0: dt.datetime, channel: dict[str, Any], status: str, followup_of: int = 0
    ) -> None:
        self.tickets.append(
            {
                "url": f"{BASE}/tickets/{tid}.json",
                "id": tid,
                "external_id": None,
                "via": channel,
                "created_at": iso(t0),
                "updated_at": iso(t0),
                "generated_timestamp": int(t0.timestamp()),
                "type": "question",
                "subject": f"Request {tid}",
                "raw_subject": f"Request {tid}",
                "description": "Where is my order?",
                "priority": "normal",
                "status": status,
                "requester_id": 30000 + tid,
                "submitter_id": 30000 + tid,
                "assignee_id": None,
                "organization_id": None,
                "group_id": None,
                "collaborator_ids": [],
                "follower_ids": [],
                "email_cc_ids": [],
                "has_incidents": False,
                "is_public": True,
                "due_at": None,
                "tags": [],
                "custom_fields": [],
                "custom_status_id": 1,
                "satisfaction_rating": None,
                "sharing_agreement_ids": [],
                "followup_ids": [],
                "via_followup_source_id": followup_of or None,
                "from_messaging_channel": channel["channel"] == "native_messaging",
                "brand_id": 1,
                "allow_channelback": False,
                "allow_attachments": True,
            }
        )

    def audit(
        self,
        tid: int,
        at: dt.datetime,
        author: int,
        channel: dict[str, Any],
        events: list[dict[str, Any]],
    ) -> None:
        self.audits.append(
            (
                at,
                len(self.audits),
                {
                    "id": None,
                    "ticket_id": tid,
                    "created_at": iso(at),
                    "author_id": author,
                    "metadata": {"system": {"client": "Zendesk"}, "custom": {}},
                    "via": channel,
                    "events": events,
                },
            )
        )

    def create(self, tid: int, at: dt.datetime, channel: dict[str, Any], text: str) -> None:
        requester = 30000 + tid
        self.audit(
            tid,
            at,
            requester,
            channel,
            [
                {"type": "Create", "field_name": "subject", "value": f"Request {tid}"},
                {"type": "Create", "field_name": "requester_id", "value": str(requester)},
                {"type": "Create", "field_name": "status", "value": "new"},
                {"type": "Create", "field_name": "priority", "value": "normal"},
                comment(requester, text, channel),
            ],
        )

    def rating(self, tid: int, at: dt.datetime, score: str) -> None:
        rid = 71_000 + len(self.ratings)
        self.ratings.append(
            {
                "url": f"{BASE}/satisfaction_ratings/{rid}.json",
                "id": rid,
                "assignee_id": None,
                "group_id": None,
                "requester_id": 30000 + tid,
                "ticket_id": tid,
                "score": score,
                "created_at": iso(at - dt.timedelta(minutes=20)),
                "updated_at": iso(at),
                "comment": None,
                "reason": "No reason provided" if score == "bad" else None,
                "reason_id": 0,
                "reason_code": 0,
            }
        )

    def numbered_audits(self) -> list[dict[str, Any]]:
        out = []
        event_id = 91_000_000
        for n, (_, _, audit) in enumerate(sorted(self.audits, key=lambda a: a[:2])):
            audit["id"] = 51_000_000 + n * 10
            for event in audit["events"]:
                event_id += 1
                event["id"] = event_id
                if event["type"] == "Comment":
                    event["audit_id"] = audit["id"]
            out.append(audit)
        return out


QUESTIONS = ["Where is my order?", "How do I reset my password?", "Can I change my address?"]
ANSWERS = ["It ships tomorrow.", "Use the link under Settings.", "Done, it is updated."]


def build(rng: random.Random) -> Export:
    x = Export()
    minute, hour, day = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
    kinds = list(STORIES)
    weights = list(STORIES.values())
    next_followup = 4000
    for n in range(TICKETS):
        tid = 2001 + n
        kind = rng.choices(kinds, weights)[0]
        t0 = START + dt.timedelta(minutes=rng.randint(0, 83 * 24 * 60))
        if n >= TICKETS - 4:  # the last few are solved in the export's final days: pending
            kind, t0 = "ai_rated_good", END - dt.timedelta(days=2 + n - TICKETS + 4, hours=3)
        requester = 30000 + tid
        agent = rng.choice(AGENTS)
        question = rng.choice(QUESTIONS)
        if kind == "human_email":
            x.ticket(tid, t0, EMAIL, "closed")
            x.create(tid, t0, EMAIL, question)
            first = t0 + rng.randint(20, 300) * minute
            x.audit(
                tid,
                first,
                agent,
                WEB,
                [
                    change("assignee_id", str(agent), None),
                    comment(agent, rng.choice(ANSWERS), EMAIL),
                ],
            )
            solved = first + rng.randint(5, 120) * minute
            x.audit(tid, solved, agent, WEB, [change("status", "solved", "open")])
            x.audit(
                tid, solved + 4 * day, SYSTEM, AUTO_CLOSE, [change("status", "closed", "solved")]
            )
            if rng.random() < 0.6:
                x.rating(
                    tid, solved + rng.randint(1, 30) * hour, rng.choice(["good", "good", "bad"])
                )
            continue
        # Every other story starts as an AI agent ticket on messaging.
        x.create(tid, t0, MSG, question)
        x.audit(tid, t0 + minute, BOT, MSG, [comment(BOT, rng.choice(ANSWERS), MSG)])
        if kind == "open":
            x.ticket(tid, t0, MSG, "open")
            continue
        if kind == "escalated":
            x.ticket(tid, t0, MSG, "closed")
            x.audit(tid, t0 + 2 * minute, requester, MSG, [comment(requester, "Agent please", MSG)])
            x.audit(tid, t0 + 3 * minute, SYSTEM, MSG, [change("group_id", str(GROUP), None)])
            taken = t0 + rng.randint(10, 90) * minute
            x.audit(
                tid,
                taken,
                agent,
                WEB,
                [change("assignee_id", str(agent), None), comment(agent, "I can help.", MSG)],
            )
            solved = taken + rng.randint(10, 60) * minute
            x.audit(tid, solved, agent, WEB, [change("status", "solved", "open")])
            x.audit(
                tid, solved + 4 * day, SYSTEM, AUTO_CLOSE, [change("status", "closed", "solved")]
            )
            if rng.random() < 0.5:
                x.rating(tid, solved + 2 * hour, "good")
            continue
        solved = t0 + rng.randint(15, 120) * minute
        x.audit(tid, solved, SYSTEM, SOLVE_AT_END, [change("status", "solved", "open")])
        x.billed.append((tid, solved))
        pending = t0 > END - 8 * day
        if kind == "ai_reopened":
            back = solved + rng.randint(1, 12) * day
            x.ticket(tid, t0, MSG, "closed")
            x.audit(
                tid,
                back,
                requester,
                MSG,
                [comment(requester, "It did not work.", MSG), change("status", "open", "solved")],
            )
            x.audit(tid, back + hour, agent, WEB, [change("assignee_id", str(agent), None)])
            again = back + 2 * hour
            x.audit(tid, again, agent, WEB, [change("status", "solved", "open")])
            x.audit(
                tid, again + 4 * day, SYSTEM, AUTO_CLOSE, [change("status", "closed", "solved")]
            )
            if rng.random() < 0.5:
                x.rating(tid, solved + 3 * hour, "good")
            continue
        closed_at = solved + 4 * day
        if not pending:
            x.audit(tid, closed_at, SYSTEM, AUTO_CLOSE, [change("status", "closed", "solved")])
        x.ticket(tid, t0, MSG, "solved" if pending else "closed")
        if kind == "ai_followup":
            next_followup += 1
            later = closed_at + rng.randint(1, 8) * day
            x.ticket(
                next_followup,
                later,
                via("closed_ticket", "follow_up", ticket_id=tid, subject=f"Request {tid}"),
                "closed",
                followup_of=tid,
            )
            x.create(next_followup, later, MSG, "Still not fixed.")
            x.audit(
                next_followup,
                later + 30 * minute,
                agent,
                WEB,
                [change("assignee_id", str(agent), None)],
            )
            x.audit(next_followup, later + hour, agent, WEB, [change("status", "solved", "new")])
            x.rating(tid, solved + 2 * hour, "good")
        elif kind == "ai_rated_good":
            x.rating(tid, solved + rng.randint(1, 48) * hour, "good")
        elif kind == "ai_rated_bad":
            x.rating(tid, solved + rng.randint(1, 48) * hour, "bad")
        elif kind == "ai_late_rating":
            x.rating(tid, solved + 9 * day, "good")
    return x


def write_json(name: str, body: Any) -> None:
    (HERE / name).write_text(json.dumps(body, separators=(",", ":")) + "\n", encoding="utf-8")


def main() -> None:
    rng = random.Random(20260105)
    x = build(rng)
    tickets = sorted(x.tickets, key=lambda t: t["id"])
    last = max(t["generated_timestamp"] for t in tickets)
    write_json(
        "tickets.json",
        {
            "tickets": tickets,
            "after_url": None,
            "after_cursor": "MTc3NDk4MDAwMC4wfHwxMDA=",
            "before_url": None,
            "before_cursor": None,
            "end_of_stream": True,
            "end_time": last,
        },
    )
    with (HERE / "ticket_audits.jsonl").open("w", encoding="utf-8") as out:
        for audit in x.numbered_audits():
            out.write(json.dumps(audit, separators=(",", ":")) + "\n")
    write_json(
        "satisfaction_ratings.json",
        {
            "satisfaction_ratings": x.ratings,
            "next_page": None,
            "previous_page": None,
            "count": len(x.ratings),
        },
    )
    # Billed once 72 hours have passed without activity: a solve in the last three days of
    # the quarter is not on this invoice yet.
    lines = [(tid, at + dt.timedelta(days=3)) for tid, at in x.billed]
    lines = [(tid, at) for tid, at in lines if at <= END]
    lines.append((lines[5][0], lines[5][1] + dt.timedelta(hours=1)))  # billed twice
    lines.append((1999, START + dt.timedelta(days=30)))  # a ticket the export does not have
    lines.sort(key=lambda line: (line[1], line[0]))
    with (HERE / "invoice.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["line_id", "entity_id", "billed_at", "amount", "currency"])
        for n, (tid, at) in enumerate(lines, start=1):
            writer.writerow([f"ZD-AR-{n:05d}", tid, iso(at), PRICE, "USD"])


if __name__ == "__main__":
    main()
