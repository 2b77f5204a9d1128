"""The packaged definition library, checked against independent computations of its meaning.

Every library file must load with the ordinary loader, compile for every dialect and use only
the event vocabulary of docs/events.md. Then, for each definition, a seeded generator writes an
export of a few hundred entities that walks through the definition's edge cases (an event
exactly at a window's end and one second after it, a missing rating, ties broken by ``seq``,
events after the as-of time, candidates still pending...). The engine counts it, and the
verdict of every candidate is compared with a per-entity pandas computation written here from
the definition's meaning: not from the engine, not from tests/reference.py.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import truecount.cli.library_cmds  # noqa: F401  (registers the verbs)
from reference import SCHEMA
from truecount import library
from truecount.cli.app import app
from truecount.definition import load_definition
from truecount.engine.compile import DIALECTS, compile_sql
from truecount.engine.run import count

ROOT = Path(__file__).resolve().parents[1]
SEED = 20260115
ENTITIES = 300
T0 = datetime(2026, 1, 5, 8, 0, 0)
SEC = timedelta(seconds=1)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

EVENT_SCHEMA = SCHEMA  # the canonical columns, shared by every test

runner = CliRunner()


# --------------------------------------------------------------------------- files


def test_library_lists_every_packaged_file() -> None:
    folder = resources.files("truecount.library")
    yaml_names = sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )
    assert sorted(library.names()) == yaml_names
    assert len(yaml_names) >= 8
    for entry in library.entries():
        assert entry.category != "other" and entry.follows, entry.name
        assert entry.path.name == f"{entry.name}.yaml"


@pytest.mark.parametrize("name", library.names())
def test_definition_loads_and_compiles(name: str) -> None:
    entry = library.find(name)
    with resources.as_file(entry.path) as path:
        d = load_definition(path)  # the loader a buyer's own file goes through
    assert d.name == name and d.version == entry.version and d.sha256 == entry.sha256
    assert d.description and d.unit == entry.unit
    for dialect in DIALECTS:
        sql = compile_sql(d, datetime(2026, 3, 31, 23, 59, 59), dialect=dialect)
        assert f"sha256:{d.sha256}" in sql
    assert library.load(name) == d


@pytest.mark.parametrize("name", library.names())
def test_definition_has_comments_and_a_doc(name: str) -> None:
    entry = library.find(name)
    text = entry.text()
    assert text.lstrip().startswith("#"), "the file opens with a comment saying what counts"
    assert text.count("\n#") + text.count("  #") >= 4, "each choice is explained"
    doc = entry.doc()
    assert doc.startswith(f"# {name}")
    for heading in ("## What counts", "## Vendor wording", "## Events", "## Parameters"):
        assert heading in doc, heading
    assert "## Known limits" in doc
    # every event type the definition uses is named in its doc
    for t in _types_used(entry.definition()):
        assert f"`{t}`" in doc, t


def _vocabulary() -> set[str]:
    """Event types of the 'Event vocabulary' table in docs/events.md."""
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    section = text.split("## Event vocabulary", 1)[1]
    types: set[str] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[1].startswith("`"):
            types.update(re.findall(r"`([a-z_]+)`", cells[1]))
    return types


def _types_used(d: Any) -> set[str]:
    return {d.anchor.type, *(s.type for s in d.selectors())}


@pytest.mark.parametrize("name", library.names())
def test_definition_uses_the_event_vocabulary(name: str) -> None:
    vocabulary = _vocabulary()
    assert {"message", "closed", "call_started", "qa_review"} <= vocabulary
    unknown = _types_used(library.load(name)) - vocabulary
    assert not unknown, f"{name} uses types outside docs/events.md: {unknown}"


def test_library_page_lists_every_definition() -> None:
    page = (ROOT / "docs" / "library.md").read_text(encoding="utf-8")
    for entry in library.entries():
        assert f"`{entry.name}`" in page, entry.name
    assert "truecount new" in page


def test_unknown_name_has_a_hint() -> None:
    with pytest.raises(library.LibraryError, match="did you mean 'deflected_call'"):
        library.find("deflected_cal")
    with pytest.raises(library.LibraryError) as info:
        library.find("support")
    assert "support_resolution_vendor" in info.value.first_line
    assert "support_resolution_strict" in info.value.first_line
    with pytest.raises(library.LibraryError, match="the library has"):
        library.find("zzz")


# --------------------------------------------------------------------------- generated data


class Log:
    """The events of one generated export; ids are unique and sort in insertion order."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        entity: str,
        ts: datetime,
        type: str,
        actor: str | None = None,
        value: float | None = None,
        attrs: dict[str, Any] | None = None,
        seq: int | None = None,
    ) -> str:
        event_id = f"{entity}-{len(self.rows):06d}"
        self.rows.append(
            {
                "event_id": event_id,
                "entity_id": entity,
                "ts": ts,
                "type": type,
                "actor": actor,
                "value": value,
                "attrs": None if attrs is None else json.dumps(attrs),
                "source": "generated",
                "recorded_at": ts,
                "seq": seq,
            }
        )
        return event_id

    def table(self) -> pa.Table:
        rows = list(self.rows)
        random.Random(SEED).shuffle(rows)  # file order must never matter
        return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def offset(rng: random.Random, days: int) -> timedelta:
    """A whole number of seconds up to ``days`` days."""
    return timedelta(seconds=rng.randrange(days * 86400))


def scenario(i: int, names: list[str]) -> str:
    """Every scenario in turn, so each appears ENTITIES / len(names) times."""
    return names[i % len(names)]


Generated = tuple[pa.Table, datetime]


def gen_support_vendor(rng: random.Random) -> Generated:
    log, as_of = Log(), T0 + 100 * DAY
    names = [
        "assumed", "customer_back", "customer_at_24h", "customer_after_24h", "confirmed_reply",
        "confirmed_late", "assumed_state", "escalated", "escalated_earlier", "human_reply",
        "tie", "no_ai", "pending", "after_as_of", "null_actor",
    ]  # fmt: skip
    for i in range(ENTITIES):
        c, s = f"conv{i:04d}", scenario(i, names)
        t = T0 + offset(rng, 90)
        if s == "pending":
            t = as_of - timedelta(hours=rng.randint(2, 20))
        elif s == "after_as_of":
            t = as_of - 40 * HOUR
        log.add(c, t, "created", "customer", attrs={"channel": "chat"})
        log.add(c, t, "message", "customer")
        for _ in range(rng.randint(0, 2)):
            t += rng.randint(1, 5) * MIN
            log.add(c, t, "message", "ai")
            t += rng.randint(1, 9) * MIN
            log.add(c, t, "message", "customer")
        if s == "escalated_earlier":
            t += MIN
            log.add(c, t, "escalated", "customer")
        if s == "no_ai":
            log.add(c, t + HOUR, "message", "human")
            continue
        last = t + rng.randint(1, 3) * MIN
        if s == "tie":  # same instant: seq says which is last, not the event id
            log.add(c, last, "message", "ai", seq=2)
            log.add(c, last, "message", "ai", seq=1)
            if rng.random() < 0.5:
                log.add(c, last, "message", "customer", seq=3)
        else:
            log.add(c, last, "message", "ai")
        log.add(c, last + rng.randint(1, 30) * MIN, "note", "ai")  # a note is no answer
        if s == "customer_back":
            log.add(c, last + timedelta(hours=23, minutes=59), "message", "customer")
        elif s == "customer_at_24h":
            log.add(c, last + 24 * HOUR, "message", "customer")
        elif s == "customer_after_24h":
            log.add(c, last + 24 * HOUR + SEC, "message", "customer")
        elif s == "confirmed_reply":
            log.add(c, last + 2 * MIN, "message", "customer")
            state = {"state": "confirmed_resolution"}
            log.add(c, last + 3 * MIN, "ai_outcome", "system", attrs=state)
        elif s == "confirmed_late":
            log.add(c, last + 2 * MIN, "message", "customer")
            state = {"state": "confirmed_resolution"}
            log.add(c, last + 24 * HOUR + SEC, "ai_outcome", "system", attrs=state)
        elif s == "assumed_state":
            log.add(c, last + HOUR, "message", "customer")
            state = {"state": "assumed_resolution"}
            log.add(c, last + 2 * HOUR, "ai_outcome", "system", attrs=state)
        elif s == "escalated":
            log.add(
                c, last + rng.choice([MIN, 24 * HOUR, 24 * HOUR + SEC]), "escalated", "customer"
            )
        elif s == "human_reply":
            log.add(c, last + HOUR, "message", "human")
        elif s == "after_as_of":
            log.add(c, as_of + HOUR, "message", "customer")
            log.add(c, as_of + 2 * HOUR, "message", "ai")
        elif s == "null_actor":
            log.add(c, last + HOUR, "message", None)
    return log.table(), as_of


def gen_support_strict(rng: random.Random) -> Generated:
    log, as_of = Log(), T0 + 120 * DAY
    names = [
        "good", "no_rating", "rating_late", "rating_at_7d", "rating_down", "rating_up",
        "rating_seq_tie", "rating_before_close", "rating_no_value", "reopened_at_14d",
        "reopened_after_14d", "followup", "human_before", "human_at_close", "human_long_before",
        "human_after_close", "human_close_first", "second_close", "no_ai_close", "pending",
    ]  # fmt: skip
    for i in range(ENTITIES):
        k, s = f"tkt{i:04d}", scenario(i, names)
        close = T0 + offset(rng, 100)
        if s == "pending":
            close = as_of - timedelta(days=rng.randint(1, 13))
        opened = close - timedelta(hours=rng.randint(1, 72))
        if s == "human_long_before":
            opened = close - 400 * DAY
            log.add(k, close - 366 * DAY, "message", "human")
        log.add(k, opened, "created", "customer")
        log.add(k, opened, "message", "customer")
        log.add(k, opened + MIN, "message", "ai")
        if s == "human_close_first":
            log.add(k, close - DAY, "closed", "human")
            log.add(k, close - 12 * HOUR, "reopened", "customer")
        if s == "no_ai_close":
            log.add(k, close, "closed", "human")
        else:
            log.add(k, close, "closed", "ai", attrs={"from": "open", "to": "solved"})
        rating: tuple[timedelta, float | None] | None = (
            offset(rng, 6),
            float(rng.choice([5, 5, 4, 4, 3, 2, 1])),
        )
        if s == "no_rating":
            rating = None
        elif s == "rating_late":
            rating = (7 * DAY + SEC, 5.0)
        elif s == "rating_at_7d":
            rating = (7 * DAY, 4.0)
        elif s == "rating_before_close":
            rating = (-HOUR, 5.0)
        elif s == "rating_no_value":
            rating = (HOUR, None)
        elif s == "rating_down":
            log.add(k, close + HOUR, "rated", "customer", 5.0)
            rating = (2 * HOUR, 2.0)
        elif s == "rating_up":
            log.add(k, close + HOUR, "rated", "customer", 2.0)
            rating = (2 * HOUR, 4.0)
        elif s == "rating_seq_tie":  # the later seq wins, whatever the event ids say
            first, second = rng.choice([(2.0, 5.0), (5.0, 2.0)])
            log.add(k, close + HOUR, "rated", "customer", second, seq=2)
            log.add(k, close + HOUR, "rated", "customer", first, seq=1)
            rating = None
        if rating is not None:
            log.add(k, close + rating[0], "rated", "customer", rating[1], {"scale": 5})
        if s == "reopened_at_14d":
            log.add(k, close + 14 * DAY, "reopened", "customer")
        elif s == "reopened_after_14d":
            log.add(k, close + 14 * DAY + SEC, "reopened", "customer")
        elif s == "followup":
            log.add(k, close + offset(rng, 14), "followup_created", "customer")
        elif s == "human_before":
            log.add(k, opened + 2 * MIN, "message", "human")
        elif s == "human_at_close":
            log.add(k, close, "message", "human")
        elif s == "human_after_close":
            log.add(k, close + HOUR, "message", "human")
        elif s == "second_close":
            log.add(k, close + 2 * DAY, "reopened", "customer")
            log.add(k, close + 3 * DAY, "closed", "ai")
        if rng.random() < 0.1:
            log.add(k, close + offset(rng, 20), "reopened", "customer")
    return log.table(), as_of


def gen_automated(rng: random.Random) -> Generated:
    log, as_of = Log(), T0 + 100 * DAY
    names = [
        "quiet", "customer_at_72h", "customer_after_72h", "customer_within", "human_within",
        "escalated_before", "escalated_late", "escalated_after_as_of", "note_after",
        "notes_only", "null_actor", "tie", "pending",
    ]  # fmt: skip
    for i in range(ENTITIES):
        c, s = f"zd{i:04d}", scenario(i, names)
        t = T0 + offset(rng, 85)
        if s == "pending":
            t = as_of - timedelta(hours=rng.randint(2, 70))
        elif s == "escalated_after_as_of":
            t = as_of - 4 * DAY
        log.add(c, t, "created", "customer")
        log.add(c, t, "message", "customer")
        if s == "escalated_before":
            log.add(c, t + MIN, "escalated", "ai")
        if s == "notes_only":
            log.add(c, t + 2 * MIN, "note", "ai")
            continue
        last = t + rng.randint(2, 9) * MIN
        if s == "tie":
            log.add(c, last, "message", "ai", seq=7)
            log.add(c, last, "message", "ai", seq=3)
        else:
            log.add(c, last, "message", "ai")
        after = {
            "customer_at_72h": (72 * HOUR, "customer"),
            "customer_after_72h": (72 * HOUR + SEC, "customer"),
            "customer_within": (offset(rng, 3), "customer"),
            "human_within": (offset(rng, 3), "human"),
            "null_actor": (HOUR, None),
        }
        if s in after:
            delay, actor = after[s]
            log.add(c, last + delay, "message", actor)
        elif s == "escalated_late":
            log.add(c, last + 5 * DAY, "escalated", "customer")
        elif s == "escalated_after_as_of":
            log.add(c, as_of + HOUR, "escalated", "customer")
        elif s == "note_after":
            log.add(c, last + HOUR, "note", "ai")
    return log.table(), as_of


def gen_calls(rng: random.Random) -> Generated:
    log, as_of = Log(), T0 + 60 * DAY
    gaps = [HOUR, DAY, 3 * DAY, 3 * DAY + SEC, 3 * DAY - SEC, 5 * DAY, 20 * DAY]
    for i in range(ENTITIES // 2):  # callers, with one to four calls each: ~ENTITIES calls
        caller = f"caller{i:04d}"
        t = T0 + offset(rng, 62)  # some calls land after the as-of time, some near it
        for _ in range(rng.randint(1, 4)):
            gap = rng.choice(gaps)
            log.add(caller, t, "call_started", attrs={"channel": "voice"})
            duration = timedelta(seconds=rng.randint(20, 1200))
            if rng.random() < 0.35:
                when = rng.choice([30 * SEC, 5 * MIN, 2 * HOUR, 2 * HOUR + SEC])
                if when >= 2 * HOUR and gap <= HOUR:
                    when = 5 * MIN  # calls of one caller do not overlap
                log.add(caller, t + when, "transferred", rng.choice(["ai", None]))
                duration = max(duration, when + MIN)
            log.add(caller, t + duration, "call_ended", value=duration.total_seconds())
            t += max(gap, duration + MIN)
    return log.table(), as_of


NEW_YORK = ZoneInfo("America/New_York")


def gen_meetings(rng: random.Random) -> Generated:
    log, as_of = Log(), T0 + 120 * DAY
    names = [
        "held", "held_at_14d", "held_after_14d", "no_show_then_held", "no_show", "cancelled",
        "disqualified_at_30d", "disqualified_after_30d", "disqualified_early",
        "human_booking_only", "human_then_ai", "rebooked_held", "month_edge", "pending",
        "held_before_booking",
    ]  # fmt: skip
    edges = [datetime(2026, m, d, 23, 30) for m, d in ((1, 31), (2, 28), (3, 31))]
    for i in range(ENTITIES):
        lead, s = f"lead{i:04d}", scenario(i, names)
        booked = T0 + offset(rng, 85)
        if s == "month_edge":  # late evening in New York is already next month in UTC
            local = rng.choice(edges) + timedelta(minutes=rng.randint(0, 29))
            booked = local.replace(tzinfo=NEW_YORK).astimezone(ZoneInfo("UTC"))
            booked = booked.replace(tzinfo=None)
        elif s == "pending":
            booked = as_of - timedelta(days=rng.randint(1, 29))
        kind = {"kind": rng.choice(["demo", "discovery"])}
        if s in {"human_booking_only", "human_then_ai"}:
            log.add(lead, booked - DAY, "meeting_booked", "human", attrs=kind)
        if s == "human_booking_only":
            log.add(lead, booked + 2 * DAY, "meeting_held")
            continue
        if s == "held_before_booking":
            log.add(lead, booked - DAY, "meeting_held")
        log.add(lead, booked, "meeting_booked", "ai", attrs=kind)
        held = {
            "held": offset(rng, 13),
            "held_at_14d": 14 * DAY,
            "held_after_14d": 14 * DAY + SEC,
            "human_then_ai": offset(rng, 10),
            "month_edge": 3 * DAY,
            "pending": offset(rng, 1),
            "disqualified_at_30d": 2 * DAY,
            "disqualified_after_30d": 2 * DAY,
            "disqualified_early": 2 * DAY,
        }
        if s in held:
            log.add(lead, booked + held[s], "meeting_held")
        if s == "no_show_then_held":
            log.add(lead, booked + 2 * DAY, "no_show")
            log.add(lead, booked + 3 * DAY, "meeting_booked", "ai", attrs=kind)
            log.add(lead, booked + 5 * DAY, "meeting_held")
        elif s == "no_show":
            log.add(lead, booked + 14 * DAY, "no_show")
        elif s == "cancelled":
            log.add(lead, booked + DAY, "cancelled", "customer")
        elif s == "rebooked_held":
            log.add(lead, booked + DAY, "cancelled", "customer")
            log.add(lead, booked + 2 * DAY, "meeting_booked", "ai", attrs=kind)
            log.add(lead, booked + 6 * DAY, "meeting_held")
        reason = {"reason": "no budget"}
        if s == "disqualified_at_30d":
            log.add(lead, booked + 30 * DAY, "disqualified", "human", attrs=reason)
        elif s == "disqualified_after_30d":
            log.add(lead, booked + 30 * DAY + SEC, "disqualified", "human", attrs=reason)
        elif s == "disqualified_early":
            log.add(lead, booked + 3 * DAY, "disqualified", "human", attrs=reason)
    return log.table(), as_of


def gen_collections(rng: random.Random) -> Generated:
    log, as_of = Log(), T0 + 200 * DAY
    names = [
        "paid", "paid_at_90d", "paid_after_90d", "paid_before_contact", "no_payment",
        "zero_payment", "payment_no_value", "charged_back", "net_negative", "human_then_ai",
        "human_only", "pending", "chargeback_after_90d",
    ]  # fmt: skip
    for i in range(ENTITIES):
        debt, s = f"debt{i:04d}", scenario(i, names)
        contact = T0 + offset(rng, 105)
        if s == "pending":
            contact = as_of - timedelta(days=rng.randint(1, 89))
        if s in {"human_then_ai", "human_only"}:
            log.add(debt, contact - 5 * DAY, "contacted", "human")
            log.add(debt, contact - 4 * DAY, "payment", value=50.0, attrs={"currency": "USD"})
        if s == "human_only":
            continue
        log.add(debt, contact, "contacted", "ai")
        usd = {"currency": "USD"}

        def pay(
            delay: timedelta, amount: float | None, *, debt: str = debt, at: datetime = contact
        ) -> None:
            log.add(debt, at + delay, "payment", value=amount, attrs={"currency": "USD"})

        def cents() -> float:
            return rng.randint(100, 90000) / 100

        if s not in {"no_payment", "zero_payment", "payment_no_value", "paid_before_contact"}:
            for _ in range(rng.randint(1, 3)):
                pay(offset(rng, 89), cents())
        if s == "paid_at_90d":
            pay(90 * DAY, 120.5)
        elif s == "paid_after_90d":
            pay(90 * DAY + SEC, 999.0)
        elif s == "paid_before_contact":
            pay(-DAY, 300.0)
        elif s == "zero_payment":
            pay(DAY, 0.0)
        elif s == "payment_no_value":
            pay(DAY, None)
        elif s == "charged_back":
            log.add(debt, contact + 60 * DAY, "chargeback", value=25.25, attrs=usd)
        elif s == "net_negative":
            log.add(debt, contact + 90 * DAY, "chargeback", value=100000.0, attrs=usd)
        elif s == "chargeback_after_90d":
            log.add(debt, contact + 90 * DAY + SEC, "chargeback", value=10.0, attrs=usd)
    return log.table(), as_of


def gen_contracts(rng: random.Random) -> Generated:
    log, as_of = Log(), T0 + 120 * DAY
    names = [
        "unreviewed", "pass", "fail", "pass_and_fail", "pass_at_30d", "pass_after_30d",
        "no_result", "review_before", "review_after_as_of", "reprocessed_after_fail",
        "human_processed_only", "sampled_pass", "sampled_fail", "pending", "other_result",
    ]  # fmt: skip
    for i in range(ENTITIES):
        doc, s = f"doc{i:04d}", scenario(i, names)
        processed = T0 + offset(rng, 85)
        if s == "pending":
            processed = as_of - timedelta(days=rng.randint(1, 29))
        elif s == "review_after_as_of":
            processed = as_of - 40 * DAY
        pages = float(rng.randint(1, 80))
        meta = {"doc_type": rng.choice(["nda", "msa", "dpa"])}
        if s == "human_processed_only":
            log.add(doc, processed, "document_processed", "human", pages, meta)
            continue
        log.add(doc, processed, "document_processed", "ai", pages, meta)

        def review(
            delay: timedelta,
            result: str | None,
            sampled: bool = False,
            *,
            doc: str = doc,
            at: datetime = processed,
        ) -> None:
            attrs: dict[str, Any] = {"sampled": sampled}
            if result is not None:
                attrs["result"] = result
            log.add(doc, at + delay, "qa_review", "human", attrs=attrs)

        match s:
            case "pass":
                review(offset(rng, 29), "pass")
            case "fail":
                review(offset(rng, 29), "fail")
            case "pass_and_fail":
                review(DAY, "pass")
                review(2 * DAY, "fail")
            case "pass_at_30d":
                review(30 * DAY, "pass")
            case "pass_after_30d":
                review(30 * DAY + SEC, "pass")
            case "no_result":
                review(DAY, None)
            case "other_result":
                review(DAY, "pass")
                review(DAY, "rework")
            case "review_before":
                review(-DAY, "pass")
            case "review_after_as_of":
                log.add(doc, as_of + DAY, "qa_review", "human", attrs={"result": "fail"})
            case "reprocessed_after_fail":
                review(2 * DAY, "fail")
                log.add(doc, processed + 3 * DAY, "document_processed", "ai", pages, meta)
                review(5 * DAY, "pass")
            case "sampled_pass":
                review(offset(rng, 29), "pass", sampled=True)
            case "sampled_fail":
                review(offset(rng, 29), "fail", sampled=True)
            case "pending":
                if rng.random() < 0.5:
                    review(HOUR, rng.choice(["pass", "fail"]))
    return log.table(), as_of


def gen_appointments(rng: random.Random) -> Generated:
    log, as_of = Log(), T0 + 90 * DAY
    names = [
        "kept", "attended", "cancelled_early", "cancelled_at_7d", "cancelled_after_7d",
        "cancelled_same_instant", "human_booked", "pending", "cancelled_after_as_of",
        "cancelled_before_booking",
    ]  # fmt: skip
    for i in range(ENTITIES):
        appt, s = f"appt{i:04d}", scenario(i, names)
        booked = T0 + offset(rng, 80)
        if s == "pending":
            booked = as_of - timedelta(days=rng.randint(1, 6))
        elif s == "cancelled_after_as_of":
            booked = as_of - 10 * DAY
        kind = {"kind": rng.choice(["cleaning", "consult"])}
        log.add(
            appt, booked, "appointment_booked", "human" if s == "human_booked" else "ai", None, kind
        )
        cancel = {
            "cancelled_early": offset(rng, 6),
            "cancelled_at_7d": 7 * DAY,
            "cancelled_after_7d": 7 * DAY + SEC,
            "cancelled_same_instant": timedelta(0),
            "cancelled_before_booking": -HOUR,
            "human_booked": DAY,
        }
        if s in cancel:
            log.add(appt, booked + cancel[s], "appointment_cancelled", "customer")
        elif s == "attended":
            log.add(appt, booked + offset(rng, 20), "appointment_attended")
        elif s == "cancelled_after_as_of":
            log.add(appt, as_of + SEC, "appointment_cancelled", "customer")
        elif s == "pending" and rng.random() < 0.5:
            log.add(appt, booked + HOUR, "appointment_cancelled", "customer")
    return log.table(), as_of


# --------------------------------------------------------------------------- expected, in pandas


@dataclass
class Candidate:
    """One candidate as the pandas side judges it: its anchor and each condition's result."""

    anchor: pd.Series
    conditions: dict[str, bool]
    quantity: float = 1.0


def of(e: pd.DataFrame, type: str, actor: str | None = None) -> pd.DataFrame:
    """The events of one type (and actor)."""
    mask = e["type"] == type
    if actor is not None:
        mask &= e["actor"] == actor
    return e[mask]


def unknown(e: pd.DataFrame) -> bool:
    """Some event has no actor: it may be by the actor a "no such message" condition names."""
    return bool(e["actor"].isna().any())


def after(e: pd.DataFrame, a: pd.Series, span: timedelta) -> pd.DataFrame:
    """Events from the anchor's instant to ``span`` later, both ends inclusive, anchor left out."""
    return e[(e["event_id"] != a["event_id"]) & (e["ts"] >= a["ts"]) & (e["ts"] <= a["ts"] + span)]


def before(e: pd.DataFrame, a: pd.Series, span: timedelta) -> pd.DataFrame:
    return e[(e["event_id"] != a["event_id"]) & (e["ts"] >= a["ts"] - span) & (e["ts"] <= a["ts"])]


def attr(e: pd.DataFrame, key: str) -> pd.Series:
    return e["attrs"].map(lambda a: a.get(key))


def judge_support_vendor(e: pd.DataFrame) -> list[Candidate]:
    answers = of(e, "message", "ai")
    if answers.empty:
        return []
    last = answers.iloc[-1]  # the AI's last answer
    day = after(e, last, 24 * HOUR)
    confirmed = (attr(of(day, "ai_outcome"), "state") == "confirmed_resolution").any()
    # a message with no actor may be the customer's: it cannot prove they stayed away
    came_back = not of(day, "message", "customer").empty or unknown(of(day, "message"))
    return [
        Candidate(
            last,
            {
                "no_escalation": of(day, "escalated").empty,
                "no_further_help": bool(confirmed) or not came_back,
            },
        )
    ]


def judge_support_strict(e: pd.DataFrame) -> list[Candidate]:
    closes = of(e, "closed", "ai")
    if closes.empty:
        return []
    close = closes.iloc[0]
    ratings = of(after(e, close, 7 * DAY), "rated")["value"].dropna()
    return [
        Candidate(
            close,
            {
                "not_reopened": of(after(e, close, 14 * DAY), "reopened").empty,
                "no_followup": of(after(e, close, 14 * DAY), "followup_created").empty,
                "satisfied": (not of(e, "rated").empty)
                and not ratings.empty
                and ratings.iloc[-1] >= 4,
                "no_human_message": of(before(e, close, 365 * DAY), "message", "human").empty
                and not unknown(of(before(e, close, 365 * DAY), "message")),
            },
        )
    ]


def judge_automated(e: pd.DataFrame) -> list[Candidate]:
    answers = of(e, "message", "ai")
    if answers.empty:
        return []
    last = answers.iloc[-1]
    replies = of(after(e, last, 72 * HOUR), "message")
    return [
        Candidate(
            last,
            {
                "never_escalated": of(e, "escalated").empty,
                "inactive_72h": not replies["actor"].isin(["customer", "human"]).any()
                and not unknown(replies),
            },
        )
    ]


def judge_calls(e: pd.DataFrame) -> list[Candidate]:
    out: list[Candidate] = []
    for _, call in of(e, "call_started").iterrows():
        out.append(
            Candidate(
                call,
                {
                    "no_transfer": of(after(e, call, 2 * HOUR), "transferred").empty,
                    "no_repeat_call": of(after(e, call, 3 * DAY), "call_started").empty,
                },
            )
        )
    return out


def judge_meetings(e: pd.DataFrame) -> list[Candidate]:
    bookings = of(e, "meeting_booked", "ai")
    if bookings.empty:
        return []
    b = bookings.iloc[0]
    two_weeks = after(e, b, 14 * DAY)
    return [
        Candidate(
            b,
            {
                "held": not of(two_weeks, "meeting_held").empty,
                "showed_up": of(two_weeks, "no_show").empty,
                "not_disqualified": of(after(e, b, 30 * DAY), "disqualified").empty,
            },
        )
    ]


def judge_collections(e: pd.DataFrame) -> list[Candidate]:
    contacts = of(e, "contacted", "ai")
    if contacts.empty:
        return []
    c = contacts.iloc[0]
    window = after(e, c, 90 * DAY)
    paid = float(of(window, "payment")["value"].sum())  # missing amounts are skipped
    charged_back = float(of(window, "chargeback")["value"].sum())
    return [Candidate(c, {"recovered": paid > 0}, quantity=paid - charged_back)]


def judge_contracts(e: pd.DataFrame) -> list[Candidate]:
    processed = of(e, "document_processed", "ai")
    if processed.empty:
        return []
    p = processed.iloc[0]
    reviews = of(after(e, p, 30 * DAY), "qa_review")
    results = attr(reviews, "result")
    ever_reviewed = not of(e, "qa_review").empty
    return [
        Candidate(
            p,
            {
                "no_failed_review": bool((results == "pass").all()),  # a missing result fails
                "passed_review": (results == "pass").any() or not ever_reviewed,
            },
        )
    ]


def judge_appointments(e: pd.DataFrame) -> list[Candidate]:
    bookings = of(e, "appointment_booked", "ai")
    if bookings.empty:
        return []
    b = bookings.iloc[0]
    return [
        Candidate(b, {"not_cancelled": of(after(e, b, 7 * DAY), "appointment_cancelled").empty})
    ]


def period_key(ts: pd.Timestamp, every: str, timezone: str) -> str:
    local = ts.tz_localize("UTC").tz_convert(timezone)
    assert every == "month"
    return f"{local.year:04d}-{local.month:02d}"


def expected_verdicts(
    events: pa.Table,
    as_of: datetime,
    judge: Callable[[pd.DataFrame], list[Candidate]],
    longest: timedelta,
    timezone: str,
) -> pd.DataFrame:
    """Judge each entity's visible events; status, quantity and period as docs/definition.md."""
    ev = events.to_pandas()
    ev = ev[ev["ts"] <= as_of].copy()
    ev["attrs"] = ev["attrs"].map(lambda t: json.loads(t) if isinstance(t, str) else {})
    rows: list[dict[str, Any]] = []
    for entity_id, e in ev.groupby("entity_id", sort=True):
        e = e.sort_values(["ts", "seq", "event_id"], na_position="last")
        for c in judge(e):
            if c.anchor["ts"] + longest > as_of:
                status = "pending"
            elif all(c.conditions.values()):
                status = "counted"
            else:
                status = "not_counted"
            rows.append(
                {
                    "entity_id": entity_id,
                    "anchor_event_id": c.anchor["event_id"],
                    "period": period_key(c.anchor["ts"], "month", timezone),
                    "status": status,
                    "quantity": c.quantity if status == "counted" else 0.0,
                    **{f"cond_{k}": bool(v) for k, v in c.conditions.items()},
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Case:
    generate: Callable[[random.Random], Generated]
    judge: Callable[[pd.DataFrame], list[Candidate]]
    longest: timedelta  # the longest `within` window, read from the definition's meaning
    timezone: str


CASES: dict[str, Case] = {
    "support_resolution_vendor": Case(gen_support_vendor, judge_support_vendor, 24 * HOUR, "UTC"),
    "support_resolution_strict": Case(gen_support_strict, judge_support_strict, 14 * DAY, "UTC"),
    "automated_resolution": Case(gen_automated, judge_automated, 72 * HOUR, "UTC"),
    "deflected_call": Case(gen_calls, judge_calls, 3 * DAY, "UTC"),
    "qualified_meeting": Case(gen_meetings, judge_meetings, 30 * DAY, "America/New_York"),
    "collections_net": Case(gen_collections, judge_collections, 90 * DAY, "UTC"),
    "contract_review": Case(gen_contracts, judge_contracts, 30 * DAY, "UTC"),
    "appointment_booked": Case(gen_appointments, judge_appointments, 7 * DAY, "UTC"),
}


def test_every_definition_has_a_generated_check() -> None:
    assert set(CASES) == set(library.names())


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_matches_pandas_entity_by_entity(name: str) -> None:
    case = CASES[name]
    events, as_of = case.generate(random.Random(f"{SEED}:{name}"))
    want = expected_verdicts(events, as_of, case.judge, case.longest, case.timezone)

    # the generated export exercises the definition: every status, every failing condition
    settled = want[want["status"] != "pending"]
    assert {"counted", "not_counted", "pending"} <= set(want["status"]), name
    conds = [c for c in want.columns if c.startswith("cond_")]
    for c in conds:
        assert (~settled[c]).any(), f"{name}: no candidate fails {c}"
    assert len(want) >= 150

    result = count(library.load(name), events, as_of=as_of)
    try:
        got = result.verdicts.to_pandas()
    finally:
        result.close()
    key = ["entity_id", "anchor_event_id"]
    got = got.set_index(key).sort_index()
    want = want.set_index(key).sort_index()
    assert list(got.index) == list(want.index), "different candidates"
    assert sorted(c for c in got.columns if c.startswith("cond_")) == sorted(conds)
    diffs: list[str] = []
    for col in ["status", "period", *conds]:
        bad = got[col].astype(object) != want[col].astype(object)
        diffs += [
            f"{i}: {col} engine={got.at[i, col]!r} pandas={want.at[i, col]!r}"
            for i in got.index[bad]
        ]
    quantity_bad = (got["quantity"] - want["quantity"]).abs() > 1e-6
    diffs += [
        f"{i}: quantity {got.at[i, 'quantity']} vs {want.at[i, 'quantity']}"
        for i in got.index[quantity_bad]
    ]
    assert not diffs, "\n".join(diffs[:20])


# --------------------------------------------------------------------------- CLI


def test_cli_definitions_table_and_json() -> None:
    res = runner.invoke(app, ["definitions"])
    assert res.exit_code == 0, res.output
    for name in library.names():
        assert name in res.stdout
    res = runner.invoke(app, ["definitions", "--format", "json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    assert [e["name"] for e in listed] == library.names()
    for item in listed:
        assert set(item) == {
            "name", "version", "unit", "category", "description", "follows", "sha256", "path",
        }  # fmt: skip
        assert item["sha256"] == library.load(item["name"]).sha256


def test_cli_new_writes_a_file_that_loads(tmp_path: Path) -> None:
    dest = tmp_path / "defs" / "my_resolution.yaml"
    res = runner.invoke(app, ["new", "support_resolution_strict", str(dest)])
    assert res.exit_code == 0, res.output
    assert dest.read_text(encoding="utf-8") == library.find("support_resolution_strict").text()
    assert load_definition(dest).sha256 == library.load("support_resolution_strict").sha256
    assert str(dest) in res.stdout
    assert "truecount check" in res.stdout and "truecount count" in res.stdout


def test_cli_new_into_a_directory(tmp_path: Path) -> None:
    res = runner.invoke(app, ["new", "deflected_call", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "deflected_call.yaml").is_file()
    # a folder that does not exist yet: trailing slash, or no extension
    res = runner.invoke(app, ["new", "collections_net", str(tmp_path / "a") + "/"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a" / "collections_net.yaml").is_file()
    res = runner.invoke(app, ["new", "collections_net", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert load_definition(tmp_path / "b" / "collections_net.yaml").name == "collections_net"


def test_cli_new_refuses_to_overwrite(tmp_path: Path) -> None:
    dest = tmp_path / "mine.yaml"
    dest.write_text("# my edited definition\n", encoding="utf-8")
    res = runner.invoke(app, ["new", "appointment_booked", str(dest)])
    assert res.exit_code == 2
    assert "already exists" in res.stderr and "--force" in res.stderr
    assert dest.read_text(encoding="utf-8") == "# my edited definition\n"
    res = runner.invoke(app, ["new", "appointment_booked", str(tmp_path)])
    assert res.exit_code == 0
    res = runner.invoke(app, ["new", "appointment_booked", str(tmp_path)])
    assert res.exit_code == 2 and "already exists" in res.stderr
    res = runner.invoke(app, ["new", "appointment_booked", str(dest), "--force"])
    assert res.exit_code == 0, res.output
    assert load_definition(dest).name == "appointment_booked"
    plain = tmp_path / "NOTES"  # an existing file without an extension is a file, not a folder
    plain.write_text("keep\n", encoding="utf-8")
    res = runner.invoke(app, ["new", "appointment_booked", str(plain)])
    assert res.exit_code == 2 and "already exists" in res.stderr
    assert plain.read_text(encoding="utf-8") == "keep\n"


def test_cli_new_reports_an_unwritable_destination(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x", encoding="utf-8")
    res = runner.invoke(app, ["new", "deflected_call", str(blocker / "sub" / "d.yaml")])
    assert res.exit_code == 2
    assert "cannot write the definition" in res.stderr


def test_cli_new_unknown_name(tmp_path: Path) -> None:
    res = runner.invoke(app, ["new", "qualified_meetings", str(tmp_path)])
    assert res.exit_code == 2
    assert "no definition named 'qualified_meetings'" in res.stderr
    assert "did you mean 'qualified_meeting'" in res.stderr
    assert list(tmp_path.iterdir()) == []
