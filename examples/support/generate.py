"""Regenerate the example help-desk export (ticket_updates.csv, ratings.csv, events.csv).

The export is deliberately in a *foreign* shape: one row per ticket update with the status
after the update, local New York wall-clock times (the data crosses the 2026-03-08 daylight
saving change), and the author's role as the help desk names it. ``events.csv`` is the same
data in canonical shape, produced by truecount itself from the two mappings.

Run: python examples/support/generate.py
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

HERE = Path(__file__).parent
START = dt.datetime(2026, 2, 2, 9, 0)
FMT = "%m/%d/%Y %H:%M"

# (scenario, how many tickets). Each scenario is a list of updates: (minutes after the previous
# update, status, author role); a rating is (minutes after the first close, score) or None.
SCENARIOS: list[tuple[str, int]] = [
    ("ai_close_sticks", 12),
    ("ai_close_reopened_within_14d", 6),
    ("ai_close_reopened_after_14d", 4),
    ("human_close", 8),
    ("ai_closed_twice", 3),
    ("same_minute_updates", 3),
    ("still_open", 2),
    ("ai_close_late", 2),
]


def updates_for(kind: str, rng: random.Random) -> list[tuple[int, str, str]]:
    minutes = rng.randint(5, 90)
    if kind == "ai_close_sticks":
        return [(0, "new", "customer"), (minutes, "solved", "bot"), (3 * 24 * 60, "closed", "bot")]
    if kind == "ai_close_reopened_within_14d":
        return [
            (0, "new", "customer"),
            (minutes, "solved", "bot"),
            (rng.randint(1, 10) * 24 * 60, "open", "customer"),
            (120, "solved", "agent"),
        ]
    if kind == "ai_close_reopened_after_14d":
        return [
            (0, "new", "customer"),
            (minutes, "solved", "bot"),
            (rng.randint(16, 25) * 24 * 60, "open", "customer"),
            (240, "solved", "agent"),
        ]
    if kind == "human_close":
        return [(0, "new", "customer"), (minutes, "open", "agent"), (600, "solved", "agent")]
    if kind == "ai_closed_twice":
        return [
            (0, "new", "customer"),
            (minutes, "solved", "bot"),
            (2 * 24 * 60, "open", "customer"),
            (30, "solved", "bot"),
        ]
    if kind == "same_minute_updates":
        # The customer's reply and the bot's close land in the same minute; only the update
        # number says which came first (reply, then close).
        return [(0, "new", "customer"), (minutes, "pending", "bot"), (0, "solved", "bot")]
    if kind == "still_open":
        return [(0, "new", "customer"), (minutes, "open", "agent")]
    # ai_close_late: closed by the AI near the end of the data, so windows are still open.
    return [(0, "new", "customer"), (minutes, "solved", "bot")]


def main() -> None:
    rng = random.Random(20260301)
    update_rows: list[list[str]] = []
    rating_rows: list[list[str]] = []
    number = 1000
    for kind, count in SCENARIOS:
        for _ in range(count):
            number += 1
            ticket = f"T-{number}"
            opened = START + dt.timedelta(hours=rng.randint(0, 24 * 40))
            if kind == "ai_close_late":
                opened = START + dt.timedelta(days=55)
            when = opened
            first_close: dt.datetime | None = None
            channel = rng.choice(["email", "chat", "web"])
            for n, (delay, status, role) in enumerate(updates_for(kind, rng), start=1):
                when += dt.timedelta(minutes=delay)
                if status in ("solved", "closed") and first_close is None:
                    first_close = when
                update_rows.append([ticket, str(n), when.strftime(FMT), status, role, channel])
            if first_close is not None and rng.random() < 0.8:
                good = rng.random() < 0.65
                score = rng.choice([4, 5]) if good else rng.choice([1, 2, 3])
                later = first_close + dt.timedelta(hours=rng.choice([2, 20, 60, 200]))
                rating_rows.append([ticket, str(score), later.strftime(FMT)])
    with (HERE / "ticket_updates.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["ticket_id", "update_no", "updated_at", "status", "author_role", "channel"]
        )
        writer.writerows(update_rows)
    with (HERE / "ratings.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["ticket_id", "score", "rated_at"])
        writer.writerows(rating_rows)
    write_canonical()


def write_canonical() -> None:
    import duckdb

    from truecount.ingest import load_events_into

    con = duckdb.connect()
    load_events_into(con, [HERE / "ticket_updates.csv"], mapping=HERE / "mapping.yaml")
    load_events_into(con, [HERE / "ratings.csv"], mapping=HERE / "ratings_mapping.yaml")
    canonical = con.sql(
        "SELECT event_id, entity_id, strftime(ts, '%Y-%m-%dT%H:%M:%SZ') AS ts, type, actor, "
        "value, attrs, source, seq FROM events ORDER BY entity_id, ts, seq, event_id"
    )
    canonical.write_csv(str(HERE / "events.csv"), header=True)


if __name__ == "__main__":
    main()
