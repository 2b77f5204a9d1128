"""Write the Salesforce example: a quarter of Service Cloud cases with an Agentforce agent.

An org where an Agentforce service agent takes every Enhanced Messaging conversation first,
hands over to a person (``BotToAgent``) when it cannot help, and a flow run by the Automated
Process user closes the case when the session ends. Email cases go to people. The files are
what the Bulk API 2.0 and the REST ``query`` endpoint return (see docs/sources/salesforce.md):

* ``Case.csv``, ``CaseStatus.csv``, ``SurveySubject.csv``: Bulk API 2.0 query results (every
  value quoted, empty for null, ``...000Z`` dates, ``true``/``false``);
* ``CaseHistory.json``: one REST ``query`` page (``SELECT ... FROM CaseHistory ORDER BY
  CreatedDate``), records with their ``attributes``;
* ``MessagingSession.jsonl``: REST records, one a line;
* ``SurveyQuestionResponse.json``: one REST ``query`` page of the one-question CSAT survey
  (1-5) sent when a case closes.

``invoice.csv`` bills the vendor's looser rule: one resolution per closed case that had an
agent session (``Bot`` or ``BotToAgent``), billed at the end of its last session, whatever
came later. ``terms.yaml`` is hand-written.

Run: ``python examples/salesforce/generate.py`` (the output is the same on every run).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
API = "/services/data/v62.0"
START = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
END = dt.datetime(2026, 3, 31, 18, 0, tzinfo=dt.UTC)
CASES = 80
PRICE = "2.00"

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_serial = [4000]


def new_id(prefix: str) -> str:
    """An 18-character Id whose record number grows in creation order, as the platform's do."""
    _serial[0] += 1
    n = _serial[0] * 1_000_003
    digits = ""
    for _ in range(9):
        n, r = divmod(n, 62)
        digits = _B62[r] + digits
    i15 = prefix + "8d0" + digits
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(i15[chunk * 5 : chunk * 5 + 5]) if ch.isupper())
        suffix += _SUFFIX[bits]
    return i15 + suffix


AUTO_USER = new_id("005")  # Automated Process: the flow that closes a case when a session ends
AGENTS = [new_id("005"), new_id("005")]
QUEUE = new_id("00G")
NAMES = {AUTO_USER: "Automated Process", AGENTS[0]: "Dana Reyes", AGENTS[1]: "Sam Okafor"}
NAMES[QUEUE] = "Tier 1 Support"
Q_CSAT = new_id("0Kb")

#: The stories a case can have, with their weights in the mix.
STORIES: dict[str, int] = {
    "bot_rated_good": 26,  # the agent answers, the flow closes the case, rated 4-5
    "bot_rated_low": 6,
    "bot_unrated": 12,
    "bot_reopened": 8,  # the customer writes back within 14 days; a person closes it again
    "bot_followup": 3,  # a child case for the same problem within 14 days
    "bot_to_agent": 12,  # handed to a person in the session; the person closes it
    "email": 10,  # an email case a person works and closes
    "open": 3,
}


def sf_time(t: dt.datetime, rest: bool = False) -> str:
    """REST writes ``+0000``, Bulk CSV writes ``Z``."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.000") + ("+0000" if rest else "Z")


def attributes(obj: str, rid: str) -> dict[str, str]:
    return {"type": obj, "url": f"{API}/sobjects/{obj}/{rid}"}


class Export:
    def __init__(self) -> None:
        self.cases: list[dict[str, object]] = []
        self.history: list[tuple[dt.datetime, int, dict[str, object]]] = []
        self.sessions: list[dict[str, object]] = []
        self.subjects: list[dict[str, object]] = []
        self.answers: list[dict[str, object]] = []
        self.billed: list[tuple[str, dt.datetime]] = []

    def hist(self, case: str, at: dt.datetime, field: str, old: Any, new: Any, user: str) -> None:
        base: dict[str, object] = {"CaseId": case, "Field": field, "CreatedById": user}
        if field == "Owner":  # a lookup change is written twice: names, then Ids
            names = {**base, "OldValue": NAMES[old], "NewValue": NAMES[new], "DataType": "Text"}
            self.history.append((at, len(self.history), names))
            ids = {**base, "OldValue": old, "NewValue": new, "DataType": "EntityId"}
            self.history.append((at, len(self.history), ids))
            return
        kind = "DynamicEnum" if field == "Status" else None
        row = {**base, "OldValue": old, "NewValue": new, "DataType": kind}
        self.history.append((at, len(self.history), row))

    def session(
        self, case: str, agent_type: str, start: dt.datetime, end: dt.datetime, accept: Any
    ) -> str:
        sid = new_id("0Mw")
        self.sessions.append(
            {
                "attributes": attributes("MessagingSession", sid),
                "Id": sid,
                "CaseId": case,
                "AgentType": agent_type,
                "Status": "Ended",
                "StartTime": sf_time(start, rest=True),
                "EndTime": sf_time(end, rest=True),
                "AcceptTime": None if accept is None else sf_time(accept, rest=True),
                "Origin": "InboundInitiated",
                "ChannelType": "EmbeddedMessaging",
                "ConversationId": new_id("0dw"),
            }
        )
        return sid

    def rating(self, case: str, at: dt.datetime, score: int) -> None:
        invitation, response, rid = new_id("0Ki"), new_id("0Kd"), new_id("0Kf")
        self.subjects.append(
            {
                "Id": new_id("0Kr"),
                "Name": "Case survey",
                "SubjectId": case,
                "SubjectEntityType": "Case",
                "ParentId": invitation,
                "CreatedDate": sf_time(at - dt.timedelta(minutes=10)),
            }
        )
        self.answers.append(
            {
                "attributes": attributes("SurveyQuestionResponse", rid),
                "Id": rid,
                "InvitationId": invitation,
                "ResponseId": response,
                "QuestionId": Q_CSAT,
                "Datatype": "Int",
                "NumberValue": score,
                "ChoiceValue": None,
                "ResponseShortText": None,
                "IsTrueOrFalse": False,
                "CreatedDate": sf_time(at, rest=True),
            }
        )


def build(rng: random.Random) -> Export:
    x = Export()
    minute, hour, day = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
    kinds, weights = list(STORIES), list(STORIES.values())
    contact, account = new_id("003"), new_id("001")
    parents: list[tuple[str, dt.datetime]] = []
    for n in range(CASES):
        kind = rng.choices(kinds, weights)[0]
        created = START + dt.timedelta(minutes=rng.randint(0, 83 * 24 * 60))
        if n >= CASES - 3:  # closed in the export's last days: windows still open
            kind, created = "bot_rated_good", END - dt.timedelta(days=n - CASES + 5)
        parent = ""
        if kind == "bot_followup" and parents:
            parent_id, parent_closed = parents.pop(0)
            parent, created = parent_id, parent_closed + rng.randint(2, 10) * day
            kind = "email"
        case = new_id("500")
        agent = rng.choice(AGENTS)
        origin = "Email" if kind == "email" else "Messaging"
        status, owner, closed_at = "New", QUEUE, None
        x.hist(case, created, "created", None, None, AUTO_USER)
        if kind == "email":
            x.hist(case, created + hour, "Owner", QUEUE, agent, agent)
            x.hist(case, created + hour, "Status", "New", "Working", agent)
            closed_at = created + rng.randint(2, 30) * hour
            x.hist(case, closed_at, "Status", "Working", "Closed", agent)
            status, owner = "Closed", agent
            if rng.random() < 0.5:
                x.rating(case, closed_at + rng.randint(1, 24) * hour, rng.choice([3, 4, 5]))
        elif kind == "bot_to_agent":
            accept = created + rng.randint(3, 8) * minute
            end = accept + rng.randint(10, 40) * minute
            x.session(case, "BotToAgent", created, end, accept)
            x.hist(case, accept, "Owner", QUEUE, agent, agent)
            closed_at = end + minute
            x.hist(case, closed_at, "Status", "New", "Closed", agent)
            status, owner = "Closed", agent
            x.billed.append((case, end))
            if rng.random() < 0.5:
                x.rating(case, closed_at + 2 * hour, rng.choice([4, 5]))
        elif kind == "open":
            x.session(case, "Bot", created, created + 6 * minute, None)
        else:
            end = created + rng.randint(4, 15) * minute
            x.session(case, "Bot", created, end, None)
            closed_at = end + minute
            x.hist(case, closed_at, "Status", "New", "Closed", AUTO_USER)
            status = "Closed"
            x.billed.append((case, end))
            if kind == "bot_followup":
                parents.append((case, closed_at))
            if kind in ("bot_rated_good", "bot_followup"):
                x.rating(case, closed_at + rng.randint(1, 72) * hour, rng.choice([4, 5, 5]))
            elif kind == "bot_rated_low":
                x.rating(case, closed_at + rng.randint(1, 72) * hour, rng.choice([1, 2, 3]))
            elif kind == "bot_reopened":
                back = closed_at + rng.randint(1, 12) * day
                x.hist(case, back, "Status", "Closed", "New", AUTO_USER)  # email-to-case reply
                x.hist(case, back + hour, "Owner", QUEUE, agent, agent)
                closed_at = back + 3 * hour
                x.hist(case, closed_at, "Status", "New", "Closed", agent)
                owner = agent
        x.cases.append(
            {
                "Id": case,
                "CaseNumber": f"{20000 + n:08d}",
                "Status": status,
                "IsClosed": "true" if status == "Closed" else "false",
                "ClosedDate": sf_time(closed_at) if closed_at else "",
                "CreatedDate": sf_time(created),
                "Origin": origin,
                "OwnerId": owner,
                "IsEscalated": "false",
                "Reason": "",
                "Type": "Question",
                "Priority": "Medium",
                "ContactId": contact,
                "AccountId": account,
                "ParentId": parent,
                "CreatedById": AUTO_USER,
            }
        )
    return x


def write_csv(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    """Bulk API 2.0 CSV: a header of API names, every value quoted, empty for null."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(list(rows[0]))
        for row in rows:
            writer.writerow(["" if v is None else v for v in row.values()])


def main() -> None:
    rng = random.Random(20260107)
    x = build(rng)
    write_csv(HERE / "Case.csv", x.cases)
    statuses = [("New", False, 1), ("Working", False, 2), ("Escalated", False, 3)]
    statuses.append(("Closed", True, 4))
    write_csv(
        HERE / "CaseStatus.csv",
        [
            {
                "Id": new_id("01J"),
                "ApiName": name,
                "MasterLabel": name,
                "IsClosed": "true" if closed else "false",
                "IsDefault": "true" if name == "New" else "false",
                "SortOrder": order,
                "LastModifiedDate": "2025-06-01T12:00:00.000Z",
            }
            for name, closed, order in statuses
        ],
    )
    # CaseHistory Ids are handed out in creation order, as the platform does.
    records = []
    for at, _, row in sorted(x.history, key=lambda h: (h[0], h[1])):
        hid = new_id("017")
        records.append(
            {
                "attributes": attributes("CaseHistory", hid),
                "Id": hid,
                "IsDeleted": False,
                **row,
                "CreatedDate": sf_time(at, rest=True),
            }
        )
    history = {"totalSize": len(records), "done": True, "records": records}
    (HERE / "CaseHistory.json").write_text(json.dumps(history) + "\n", encoding="utf-8")
    with (HERE / "MessagingSession.jsonl").open("w", encoding="utf-8") as handle:
        for record in x.sessions:
            handle.write(json.dumps(record) + "\n")
    write_csv(HERE / "SurveySubject.csv", x.subjects)
    page = {"totalSize": len(x.answers), "done": True, "records": x.answers}
    (HERE / "SurveyQuestionResponse.json").write_text(json.dumps(page) + "\n", encoding="utf-8")
    lines = sorted((at, case) for case, at in x.billed if at <= END)
    with (HERE / "invoice.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["line_id", "entity_id", "billed_at", "amount", "currency"])
        for n, (at, case) in enumerate(lines, start=1):
            writer.writerow([f"AF-{n:05d}", case, at.strftime("%Y-%m-%dT%H:%M:%SZ"), PRICE, "USD"])


if __name__ == "__main__":
    main()
