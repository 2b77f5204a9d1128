"""Write the Intercom example: a quarter of conversations with Fin, and the vendor's invoice.

A workspace where Fin answers every new conversation in the Messenger and hands over to the
support team when it cannot help. The file is what ``GET /conversations/{id}`` returns under
``Intercom-Version: 2.15``, one response a line (see docs/sources/intercom.md):

* ``conversations.jsonl``: every conversation **with** its ``conversation_parts``, its
  ``ai_agent`` object (``resolution_state``, the AI rating) and the teammate rating.

Fin's parts carry Intercom's own markers (``from_ai_agent``, ``is_ai_answer``), so who the AI is
does not rest on an option's default.

``invoice.csv`` bills the vendor's looser rule: one resolution per conversation whose
``resolution_state`` is ``assumed_resolution`` or ``confirmed_resolution``, billed 24 hours
after Fin's last answer, whatever came later (a customer coming back after the close, a low
rating, no rating). It also bills one conversation twice. ``terms.yaml`` is hand-written.

Run: ``python examples/intercom/generate.py`` (the output is the same on every run).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
START = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
END = dt.datetime(2026, 3, 31, 18, 0, tzinfo=dt.UTC)
MIN, HOUR, DAY = 60, 3_600, 86_400
CONVERSATIONS = 90
PRICE = "0.99"

FIN = {
    "type": "bot",
    "id": "8200001",
    "name": "Fin",
    "email": "operator+example@intercom.io",
    "from_ai_agent": True,
    "is_ai_answer": True,
}
FIN_ACTION = {**FIN, "is_ai_answer": False}  # Fin closing or handing over: not an answer
TEAMMATES = [
    {"type": "admin", "id": "9101", "name": "Ana Lopez", "email": "ana@example.com"},
    {"type": "admin", "id": "9102", "name": "Ben Okoro", "email": "ben@example.com"},
]
TEAM = {"type": "team", "id": "5101"}

#: The stories a conversation can have, with their weights in the mix.
STORIES: dict[str, int] = {
    "fin_confirmed": 18,  # the customer says it helped; Fin closes; AI rating 4-5
    "fin_assumed_rated": 14,  # the customer leaves; Fin closes after inactivity; rated
    "fin_assumed_unrated": 16,
    "fin_low_rating": 6,  # assumed resolution, AI rating 1-3
    "fin_reopened": 8,  # the customer writes again within 14 days; a teammate answers
    "fin_escalated": 14,  # Fin hands over to the team; a teammate closes it
    "teammate_only": 10,  # no AI at all (an email to the inbox)
    "open": 4,
}
QUESTIONS = ["How do I export my data?", "Can I change my plan?", "Where is my invoice?"]
ANSWERS = ["Go to Settings > Export.", "Yes, under Billing > Plan.", "It is under Billing."]


def unix(t: dt.datetime) -> int:
    return int(t.timestamp())


class Parts:
    """Conversation parts with ids that grow across the workspace, as Intercom's do."""

    def __init__(self) -> None:
        self.next_id = 32_000_000_000

    def __call__(
        self,
        at: int,
        part_type: str,
        author: dict[str, Any],
        body: str | None = None,
        assigned_to: dict[str, Any] | None = None,
        state: str = "open",
    ) -> dict[str, Any]:
        self.next_id += 1
        return {
            "type": "conversation_part",
            "id": str(self.next_id),
            "part_type": part_type,
            "body": f"<p>{body}</p>" if body else None,
            "created_at": at,
            "updated_at": at,
            "notified_at": at,
            "assigned_to": assigned_to,
            "author": dict(author),
            "attachments": [],
            "external_id": None,
            "redacted": False,
            "state": state,
        }


def conversation(
    cid: str,
    created: int,
    contact: dict[str, Any],
    question: str,
    parts: list[dict[str, Any]],
    channel: str,
    resolution_state: str | None,
    ai_rating: tuple[int, int] | None,
    teammate_rating: tuple[int, int, str] | None,
) -> dict[str, Any]:
    last = max([created, *(p["created_at"] for p in parts)])
    is_open = not parts or parts[-1]["part_type"] != "close"
    closes = [p for p in parts if p["part_type"] == "close"]
    ai = resolution_state is not None or any(p["author"].get("from_ai_agent") for p in parts)
    record: dict[str, Any] = {
        "type": "conversation",
        "id": cid,
        "title": None,
        "created_at": created,
        "updated_at": last,
        "waiting_since": None,
        "snoozed_until": None,
        "open": is_open,
        "state": "open" if is_open else "closed",
        "read": True,
        "priority": "not_priority",
        "admin_assignee_id": None,
        "team_assignee_id": None,
        "tags": {"type": "tag.list", "tags": []},
        "conversation_rating": None,
        "source": {
            "type": channel,
            "id": f"{cid}0",
            "delivered_as": "customer_initiated",
            "subject": "",
            "body": f"<p>{question}</p>",
            "author": contact,
            "attachments": [],
            "url": None,
            "redacted": False,
        },
        "contacts": {
            "type": "contact.list",
            "contacts": [{"type": "contact", "id": contact["id"], "external_id": None}],
        },
        "teammates": {"type": "admin.list", "teammates": []},
        "custom_attributes": {},
        "first_contact_reply": {"created_at": created, "type": channel, "url": None},
        "sla_applied": None,
        "statistics": {
            "type": "conversation_statistics",
            "first_close_at": closes[0]["created_at"] if closes else None,
            "last_close_at": closes[-1]["created_at"] if closes else None,
            "last_closed_by_id": closes[-1]["author"]["id"] if closes else None,
            "count_reopens": sum(1 for p in parts if p["part_type"] == "open"),
            "count_assignments": sum(1 for p in parts if p["assigned_to"]),
            "count_conversation_parts": len(parts) + 1,
        },
        "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
        "ai_agent_participated": ai,
        "ai_agent": None,
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": parts,
            "total_count": len(parts),
        },
    }
    if ai:
        at = ai_rating[1] if ai_rating else None
        record["ai_agent"] = {
            "source_type": "workflow",
            "source_title": "Fin in the Messenger",
            "last_answer_type": "ai_answer",
            "resolution_state": resolution_state,
            "rating": ai_rating[0] if ai_rating else None,
            "rating_remark": None,
            "created_at": at,
            "updated_at": at,
            "content_sources": {
                "type": "content_source.list",
                "total_count": 0,
                "content_sources": [],
            },
        }
    if teammate_rating:
        record["conversation_rating"] = {
            "rating": teammate_rating[0],
            "remark": None,
            "created_at": teammate_rating[1],
            "updated_at": teammate_rating[1],
            "contact": {"type": "contact", "id": contact["id"]},
            "teammate": {"type": "admin", "id": teammate_rating[2]},
        }
    return record


def build(rng: random.Random) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
    part = Parts()
    out: list[dict[str, Any]] = []
    billed: list[tuple[str, int]] = []
    kinds, weights = list(STORIES), list(STORIES.values())
    for n in range(CONVERSATIONS):
        cid = str(215_000_100 + n)
        kind = rng.choices(kinds, weights)[0]
        start = START + dt.timedelta(minutes=rng.randint(0, 83 * 24 * 60))
        if n >= CONVERSATIONS - 3:  # answered in the export's last days: windows still open
            kind, start = "fin_confirmed", END - dt.timedelta(days=n - CONVERSATIONS + 5)
        c = unix(start)
        contact = {"type": "user", "id": f"65c0{n:04d}", "name": f"Customer {n}", "email": None}
        mate = rng.choice(TEAMMATES)
        question = rng.choice(QUESTIONS)
        answer_at = c + rng.randint(1, 3) * MIN
        fin_answer = part(answer_at, "comment", FIN, rng.choice(ANSWERS))
        ai_rating: tuple[int, int] | None = None
        mate_rating: tuple[int, int, str] | None = None
        state: str | None = "assumed_resolution"
        if kind == "teammate_only":
            reply = c + rng.randint(30, 300) * MIN
            parts = [
                part(reply, "comment", mate, rng.choice(ANSWERS)),
                part(reply + rng.randint(10, 60) * MIN, "close", mate, state="closed"),
            ]
            state = None
            if rng.random() < 0.6:
                mate_rating = (rng.choice([3, 4, 5, 5]), reply + 2 * HOUR, mate["id"])
            out.append(
                conversation(cid, c, contact, question, parts, "email", state, None, mate_rating)
            )
            continue
        if kind == "open":
            parts = [fin_answer, part(answer_at + 4 * MIN, "comment", contact, "Hmm, let me try")]
            out.append(
                conversation(cid, c, contact, question, parts, "conversation", None, None, None)
            )
            continue
        if kind == "fin_escalated":
            hand = answer_at + 3 * MIN
            parts = [
                fin_answer,
                part(answer_at + 2 * MIN, "comment", contact, "That is not it, a person please"),
                part(hand, "assignment", FIN_ACTION, "Passing you to the team", TEAM),
                part(hand + rng.randint(20, 180) * MIN, "comment", mate, "Hi, I can help."),
            ]
            parts.append(part(parts[-1]["created_at"] + HOUR, "close", mate, state="closed"))
            if rng.random() < 0.6:
                mate_rating = (rng.choice([4, 5]), parts[-1]["created_at"] + HOUR, mate["id"])
            out.append(
                conversation(
                    cid, c, contact, question, parts, "conversation", "escalated", None, mate_rating
                )
            )
            continue
        if kind == "fin_confirmed":
            thanks = answer_at + rng.randint(1, 5) * MIN
            parts = [
                fin_answer,
                part(thanks, "comment", contact, "That helped, thanks"),
                part(thanks + MIN, "close", FIN_ACTION, state="closed"),
            ]
            state = "confirmed_resolution"
            ai_rating = (rng.choice([4, 5, 5]), thanks + 2 * MIN)
        else:
            # The customer goes quiet; Fin closes the conversation after its inactivity timer.
            parts = [fin_answer, part(answer_at + 3 * HOUR, "close", FIN_ACTION, state="closed")]
            if kind == "fin_assumed_rated":
                ai_rating = (rng.choice([4, 5]), answer_at + 3 * HOUR + 5 * MIN)
            elif kind == "fin_low_rating":
                ai_rating = (rng.choice([1, 2, 3]), answer_at + 3 * HOUR + 5 * MIN)
            elif kind == "fin_reopened":
                back = answer_at + rng.randint(1, 12) * DAY
                parts += [
                    part(back, "comment", contact, "It still does not work"),
                    part(back + 2 * HOUR, "comment", mate, "Fixed it on our side."),
                    part(back + 3 * HOUR, "close", mate, state="closed"),
                ]
                if rng.random() < 0.5:
                    ai_rating = (5, answer_at + 3 * HOUR + 5 * MIN)
        billed.append((cid, answer_at + DAY))
        out.append(
            conversation(cid, c, contact, question, parts, "conversation", state, ai_rating, None)
        )
    return out, billed


def main() -> None:
    rng = random.Random(20260106)
    conversations, billed = build(rng)
    with (HERE / "conversations.jsonl").open("w", encoding="utf-8") as out:
        for record in conversations:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    # Billed 24 hours after Fin's last answer, within the quarter; one conversation twice.
    lines = [(cid, at) for cid, at in billed if at <= unix(END)]
    lines.append((lines[7][0], lines[7][1] + HOUR))
    lines.sort(key=lambda line: (line[1], line[0]))
    with (HERE / "invoice.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["line_id", "entity_id", "billed_at", "amount", "currency"])
        for n, (cid, at) in enumerate(lines, start=1):
            when = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            writer.writerow([f"FIN-{n:05d}", cid, when, PRICE, "USD"])


if __name__ == "__main__":
    main()
