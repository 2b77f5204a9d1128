"""Write the ServiceNow example: a quarter of incidents with the Virtual Agent, and the invoice.

A service desk where the Virtual Agent opens an incident for every chat it takes, resolves
what it can, and hands the rest to the Service Desk group; phone and email incidents go to
people. The files (see docs/sources/servicenow.md):

* ``incident_updates.csv``: the update log, one row per update with the incident's values
  after it (a scheduled export of every update), in UTC, display values as a list export
  writes them (state labels, user names);
* ``survey_results.csv`` and ``survey_mapping.yaml``: the satisfaction survey's answers (a
  report export of the Assessment tables: survey instance, incident number, 1-5 answer, when),
  read with a mapping, since surveys are not on the incident.

``invoice.csv`` bills the vendor's looser rule: one resolution per incident the Virtual Agent
moved to Resolved, billed at that moment, whatever came later (a reopen, a low score, no
score). ``terms.yaml`` is hand-written.

Run: ``python examples/servicenow/generate.py`` (the output is the same on every run).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
START = dt.datetime(2026, 1, 5, 8, 0)
END = dt.datetime(2026, 3, 31, 18, 0)
INCIDENTS = 90
PRICE = "1.25"
VA, SYSTEM = "virtual.agent", "system"
AGENTS = {"beth.anglin": "Beth Anglin", "david.loo": "David Loo"}
CALLERS = ["abel.tuter", "fred.luddy", "bud.richman", "carol.coughlin", "don.goodliffe"]
COLUMNS = [
    "number",
    "sys_id",
    "opened_at",
    "state",
    "sys_updated_on",
    "sys_updated_by",
    "sys_mod_count",
    "contact_type",
    "caller_id",
    "assigned_to",
    "assignment_group",
    "close_code",
    "resolved_by",
    "reopen_count",
]

#: The stories an incident can have, with their weights in the mix.
STORIES: dict[str, int] = {
    "va_rated_good": 26,  # the Virtual Agent resolves it; the caller scores it 4-5
    "va_rated_low": 6,
    "va_unrated": 14,
    "va_reopened": 8,  # the caller reopens within 14 days; an agent resolves it
    "va_escalated": 14,  # handed to a person in the chat; the person resolves it
    "phone": 14,  # a person takes it on the phone and resolves it
    "open": 4,
}


def stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


class Incident:
    """The update rows of one incident: each row holds the values after its update."""

    def __init__(self, number: str, opened: dt.datetime, channel: str, caller: str) -> None:
        self.number, self.opened, self.channel, self.caller = number, opened, channel, caller
        self.rows: list[dict[str, str]] = []
        self.reopens = 0
        self.resolved_by = ""
        self.close_code = ""

    def update(self, at: dt.datetime, state: str, by: str, assignee: str, group: str) -> None:
        previous = self.rows[-1]["state"] if self.rows else ""
        if previous in ("Resolved", "Closed") and state not in ("Resolved", "Closed"):
            self.reopens += 1
            self.resolved_by = self.close_code = ""
        if state == "Resolved":
            self.resolved_by = AGENTS.get(by, "Virtual Agent" if by == VA else by)
            self.close_code = "Solution provided"
        self.rows.append(
            {
                "number": self.number,
                "sys_id": hashlib.md5(self.number.encode(), usedforsecurity=False).hexdigest(),
                "opened_at": stamp(self.opened),
                "state": state,
                "sys_updated_on": stamp(at),
                "sys_updated_by": by,
                "sys_mod_count": str(len(self.rows)),
                "contact_type": self.channel,
                "caller_id": self.caller.replace(".", " ").title(),  # a display value
                "assigned_to": assignee,
                "assignment_group": group,
                "close_code": self.close_code,
                "resolved_by": self.resolved_by,
                "reopen_count": str(self.reopens),
            }
        )


def build(
    rng: random.Random,
) -> tuple[list[Incident], list[tuple[str, dt.datetime]], list[tuple[str, int, dt.datetime]]]:
    minute, hour, day = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
    kinds, weights = list(STORIES), list(STORIES.values())
    incidents: list[Incident] = []
    billed: list[tuple[str, dt.datetime]] = []
    ratings: list[tuple[str, int, dt.datetime]] = []
    for n in range(INCIDENTS):
        kind = rng.choices(kinds, weights)[0]
        opened = START + dt.timedelta(minutes=rng.randint(0, 83 * 24 * 60))
        if n >= INCIDENTS - 3:  # resolved in the export's last days: windows still open
            kind, opened = "va_rated_good", END - dt.timedelta(days=n - INCIDENTS + 5)
        caller = rng.choice(CALLERS)
        agent = rng.choice(list(AGENTS))
        channel = "phone" if kind == "phone" else "virtual_agent"
        inc = Incident(f"INC{30001 + n:07d}", opened, channel, caller)
        incidents.append(inc)
        if kind == "phone":
            inc.update(opened, "New", agent, AGENTS[agent], "Service Desk")
            inc.update(opened + 5 * minute, "In Progress", agent, AGENTS[agent], "Service Desk")
            resolved = opened + rng.randint(1, 48) * hour
            inc.update(resolved, "Resolved", agent, AGENTS[agent], "Service Desk")
            inc.update(resolved + 3 * day, "Closed", SYSTEM, AGENTS[agent], "Service Desk")
            if rng.random() < 0.4:
                ratings.append((inc.number, rng.choice([3, 4, 5]), resolved + 5 * hour))
            continue
        inc.update(opened, "New", VA, "Virtual Agent", "Service Desk")
        if kind == "open":
            inc.update(opened + 4 * minute, "On Hold", VA, "Virtual Agent", "Service Desk")
            continue
        if kind == "va_escalated":
            taken = opened + rng.randint(5, 60) * minute
            inc.update(taken, "In Progress", agent, AGENTS[agent], "Service Desk")
            resolved = taken + rng.randint(1, 24) * hour
            inc.update(resolved, "Resolved", agent, AGENTS[agent], "Service Desk")
            inc.update(resolved + 3 * day, "Closed", SYSTEM, AGENTS[agent], "Service Desk")
            if rng.random() < 0.5:
                ratings.append((inc.number, rng.choice([4, 5]), resolved + 3 * hour))
            continue
        resolved = opened + rng.randint(3, 20) * minute
        inc.update(resolved, "Resolved", VA, "Virtual Agent", "Service Desk")
        if resolved <= END:
            billed.append((inc.number, resolved))
        if kind == "va_reopened":
            back = resolved + rng.randint(1, 12) * day
            inc.update(back, "In Progress", inc.caller, "Virtual Agent", "Service Desk")
            inc.update(back + hour, "In Progress", agent, AGENTS[agent], "Service Desk")
            again = back + 4 * hour
            inc.update(again, "Resolved", agent, AGENTS[agent], "Service Desk")
            inc.update(again + 3 * day, "Closed", SYSTEM, AGENTS[agent], "Service Desk")
            continue
        if resolved + 3 * day <= END:
            inc.update(resolved + 3 * day, "Closed", SYSTEM, "Virtual Agent", "Service Desk")
        if kind == "va_rated_good":
            ratings.append(
                (inc.number, rng.choice([4, 5, 5]), resolved + rng.randint(1, 72) * hour)
            )
        elif kind == "va_rated_low":
            ratings.append(
                (inc.number, rng.choice([1, 2, 3]), resolved + rng.randint(1, 72) * hour)
            )
    return incidents, billed, ratings


def main() -> None:
    rng = random.Random(20260108)
    incidents, billed, ratings = build(rng)
    rows = [row for inc in incidents for row in inc.rows]
    rows.sort(key=lambda r: (r["sys_updated_on"], r["number"], int(r["sys_mod_count"])))
    with (HERE / "incident_updates.csv").open("w", newline="", encoding="utf-8") as out:
        log = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        log.writeheader()
        log.writerows(rows)
    with (HERE / "survey_results.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["instance", "trigger_id", "metric", "actual_value", "taken_on"])
        for n, (number, score, at) in enumerate(sorted(ratings, key=lambda r: r[2]), start=1):
            metric = "How satisfied are you with the resolution?"
            writer.writerow([f"AINST{n + 4000:07d}", number, metric, score, stamp(at)])
    with (HERE / "invoice.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["line_id", "entity_id", "billed_at", "amount", "currency"])
        for n, (number, at) in enumerate(sorted(billed, key=lambda b: (b[1], b[0])), start=1):
            writer.writerow(
                [f"NOW-VA-{n:05d}", number, at.strftime("%Y-%m-%dT%H:%M:%SZ"), PRICE, "USD"]
            )


if __name__ == "__main__":
    main()
