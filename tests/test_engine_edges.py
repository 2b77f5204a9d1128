"""Edge cases of docs/definition.md, each on a hand-built log with a hand-written verdict.

Every expectation here was worked out by hand from the doc, never copied from a run. Each test
runs twice: against the engine (``truecount.count``) and against the independent reference in
``reference.py``, so the same hand-written truth holds both to account. The engine variant is
skipped until ``truecount.count`` exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from textwrap import dedent
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import yaml

import truecount
from reference import SCHEMA, canonical_rows, evaluate

T0 = datetime(2026, 1, 10, 10, 0, 0)


def ev(
    event_id: str,
    entity_id: str,
    ts: datetime | str,
    type: str,
    actor: str | None = None,
    value: float | None = None,
    attrs: dict[str, Any] | None = None,
    seq: int | None = None,
) -> dict[str, Any]:
    """One canonical event row; ``ts`` may be ISO text (naive, meaning UTC)."""
    when = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    return {
        "event_id": event_id,
        "entity_id": entity_id,
        "ts": when,
        "type": type,
        "actor": actor,
        "value": value,
        "attrs": None if attrs is None else json.dumps(attrs),
        "source": f"test:{event_id}",
        "recorded_at": when,
        "seq": seq,
    }


def table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=SCHEMA)


def definition(body: str, period: str = "{every: month, timezone: UTC}") -> str:
    """A full definition text around a body of ``anchor`` / ``conditions`` / ``quantity``."""
    head = f"truecount: 1\nname: edge\nversion: 1\nunit: ticket\nperiod: {period}\n"
    return head + dedent(body)


Runner = Callable[[str, pa.Table, datetime | None], pd.DataFrame]


def run_reference(text: str, events: pa.Table, as_of: datetime | None) -> pd.DataFrame:
    return evaluate(yaml.safe_load(text), events.to_pandas(), as_of)


def run_engine(text: str, events: pa.Table, as_of: datetime | None) -> pd.DataFrame:
    res = truecount.count(truecount.parse_definition(text), events, as_of=as_of)
    frame: pd.DataFrame = res.verdicts.to_pandas()
    return frame


@pytest.fixture(params=["engine", "reference"])
def run(request: pytest.FixtureRequest) -> Runner:
    if request.param == "engine":
        return run_engine
    return run_reference


def by_anchor(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Verdicts keyed by anchor event id (unique in every log below)."""
    return {k[1]: v for k, v in canonical_rows(frame).items()}


def statuses(frame: pd.DataFrame) -> dict[str, str]:
    return {k: v["status"] for k, v in by_anchor(frame).items()}


CLOSED_NO_REOPEN_14D = definition(
    """
    anchor: {type: closed, actor: ai, pick: first}
    conditions:
      not_reopened:
        absent: {type: reopened, within: 14d}
    """
)


# ---------------------------------------------------------------------------------- windows


def test_event_exactly_on_window_end_is_inside(run: Runner) -> None:
    events = table(
        [
            ev("c1", "t1", T0, "closed", "ai"),
            ev("r1", "t1", T0 + timedelta(days=14), "reopened", "customer"),
        ]
    )
    v = by_anchor(run(CLOSED_NO_REOPEN_14D, events, None))
    # The default as-of is the reopen, exactly at the window end: decided, not pending.
    assert v["c1"]["status"] == "not_counted"
    assert v["c1"]["reason"] == {"not_reopened"}
    assert v["c1"]["cond_not_reopened"] is False
    assert v["c1"]["quantity"] == 0.0


def test_event_one_second_after_window_end_is_outside(run: Runner) -> None:
    events = table(
        [
            ev("c1", "t1", T0, "closed", "ai"),
            ev("r1", "t1", T0 + timedelta(days=14, seconds=1), "reopened", "customer"),
        ]
    )
    v = by_anchor(run(CLOSED_NO_REOPEN_14D, events, None))
    assert v["c1"]["status"] == "counted"
    assert v["c1"]["reason"] == frozenset()
    assert v["c1"]["cond_not_reopened"] is True
    assert v["c1"]["quantity"] == 1.0


def test_before_window_ends_are_inclusive(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed}
        conditions:
          messaged_before:
            exists: {type: message, before: 1d}
        """
    )
    events = table(
        [
            # t1: a message exactly one day before the anchor: inside.
            ev("m1", "t1", T0 - timedelta(days=1), "message"),
            ev("c1", "t1", T0, "closed"),
            # t2: a message one day and one second before: outside.
            ev("m2", "t2", T0 - timedelta(days=1, seconds=1), "message"),
            ev("c2", "t2", T0, "closed"),
            # t3: a message after the anchor is not in a `before` window.
            ev("c3", "t3", T0, "closed"),
            ev("m3", "t3", T0 + timedelta(seconds=1), "message"),
        ]
    )
    assert statuses(run(text, events, None)) == {
        "c1": "counted",
        "c2": "not_counted",
        "c3": "not_counted",
    }


def test_same_instant_as_anchor_is_inside_but_anchor_itself_is_not(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed, actor: ai}
        conditions:
          no_other_close:
            absent: {type: closed, within: 1h}
          messaged_before:
            exists: {type: message, before: 1h}
          rated_after:
            exists: {type: rated, within: 1h}
        """
    )
    events = table(
        [
            # t1: a human close at the very instant of the AI close is inside the window;
            # messages and ratings at the same instant are inside `before` and `within`.
            ev("c1", "t1", T0, "closed", "ai"),
            ev("h1", "t1", T0, "closed", "human"),
            ev("m1", "t1", T0, "message", "customer"),
            ev("r1", "t1", T0, "rated", "customer", 5),
            # t2: the only close is the anchor itself, which a condition never sees.
            ev("c2", "t2", T0, "closed", "ai"),
            ev("m2", "t2", T0, "message", "customer"),
            ev("r2", "t2", T0, "rated", "customer", 5),
        ]
    )
    v = by_anchor(run(text, events, T0 + timedelta(days=1)))
    assert v["c1"]["status"] == "not_counted"
    assert v["c1"]["reason"] == {"no_other_close"}
    assert v["c1"]["cond_messaged_before"] is True
    assert v["c1"]["cond_rated_after"] is True
    assert v["c2"]["status"] == "counted"
    assert v["c2"]["cond_no_other_close"] is True


def test_anchor_not_counted_by_a_condition_on_its_own_type(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed, pick: each}
        conditions:
          closed_once_more:
            count: {type: closed, within: 1d, equals: 1}
        """
    )
    events = table(
        [
            ev("c1", "t1", T0, "closed"),
            ev("c2", "t1", T0 + timedelta(hours=1), "closed"),
        ]
    )
    # c1 sees c2 (not itself); c2 sees nothing: c1 is before it, outside its `within` window.
    assert statuses(run(text, events, T0 + timedelta(days=2))) == {
        "c1": "counted",
        "c2": "not_counted",
    }


# ---------------------------------------------------------------------------------- anchors


def test_each_anchor_on_an_entity_closed_twice(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed, actor: ai, pick: each}
        conditions:
          not_reopened:
            absent: {type: reopened, within: 2d}
        """
    )
    events = table(
        [
            ev("c1", "t1", T0, "closed", "ai"),
            ev("r1", "t1", T0 + timedelta(days=1), "reopened", "customer"),
            ev("c2", "t1", T0 + timedelta(days=3), "closed", "ai"),
            ev("x1", "t1", T0 + timedelta(days=10), "message", "customer"),
        ]
    )
    v = by_anchor(run(text, events, None))
    assert set(v) == {"c1", "c2"}
    assert v["c1"]["status"] == "not_counted"
    assert v["c2"]["status"] == "counted"
    assert v["c1"]["entity_id"] == v["c2"]["entity_id"] == "t1"
    assert v["c2"]["anchor_ts"] == T0 + timedelta(days=3)


@pytest.mark.parametrize(("pick", "expected"), [("first", "b"), ("last", "a")])
def test_first_and_last_ties_broken_by_seq(run: Runner, pick: str, expected: str) -> None:
    text = definition(
        f"""
        anchor: {{type: closed, pick: {pick}}}
        conditions:
          any_message:
            exists: {{type: message}}
            if_no_data: pass
        """
    )
    events = table(
        [
            # Same instant: seq decides, against event_id order and against file order.
            ev("a", "t1", T0, "closed", seq=2),
            ev("b", "t1", T0, "closed", seq=1),
        ]
    )
    v = by_anchor(run(text, events, None))
    assert list(v) == [expected]


@pytest.mark.parametrize(("pick", "expected"), [("first", "a"), ("last", "b")])
def test_first_and_last_ties_on_seq_broken_by_event_id(
    run: Runner, pick: str, expected: str
) -> None:
    text = definition(f"anchor: {{type: closed, pick: {pick}}}\n")
    events = table([ev("b", "t1", T0, "closed", seq=7), ev("a", "t1", T0, "closed", seq=7)])
    assert list(by_anchor(run(text, events, None))) == [expected]


def test_entity_without_anchor_gets_no_verdict(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed, actor: ai}
        conditions:
          not_reopened:
            absent: {type: reopened, within: 1d}
        """
    )
    events = table(
        [
            ev("c1", "t1", T0, "closed", "ai"),
            ev("m2", "t2", T0, "message", "customer"),
            ev("c3", "t3", T0, "closed", "human"),  # wrong actor: not an anchor
        ]
    )
    frame = run(text, events, T0 + timedelta(days=2))
    assert list(frame["entity_id"]) == ["t1"]


def test_anchor_where_filter(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed, where: "attrs.channel == 'chat'", pick: first}
        """
    )
    events = table(
        [
            ev("c1", "t1", T0, "closed", attrs={"channel": "email"}),
            ev("c2", "t1", T0 + timedelta(hours=1), "closed", attrs={"channel": "chat"}),
            ev("c3", "t2", T0, "closed"),  # no attrs: the expression is unknown, no match
        ]
    )
    v = by_anchor(run(text, events, None))
    assert list(v) == ["c2"]
    assert v["c2"]["status"] == "counted"  # no conditions: counted


# ---------------------------------------------------------------------------------- periods


def _period_of(run: Runner, ts: str, period: str) -> str:
    text = definition("anchor: {type: closed}\n", period=period)
    frame = run(text, table([ev("c", "t", ts, "closed")]), None)
    assert len(frame) == 1
    return str(frame["period"].iloc[0])


@pytest.mark.parametrize(
    ("ts", "period", "key"),
    [
        # Europe/Berlin springs forward on 2026-03-29 (UTC+1 -> UTC+2): April starts 22:00 UTC.
        ("2026-03-31T21:59:59", "{every: month, timezone: Europe/Berlin}", "2026-03"),
        ("2026-03-31T22:00:00", "{every: month, timezone: Europe/Berlin}", "2026-04"),
        ("2026-03-31T22:00:00", "{every: quarter, timezone: Europe/Berlin}", "2026-Q2"),
        ("2026-03-31T22:00:00", "{every: quarter, timezone: UTC}", "2026-Q1"),
        ("2026-03-28T22:59:59", "{every: day, timezone: Europe/Berlin}", "2026-03-28"),
        ("2026-03-28T23:00:00", "{every: day, timezone: Europe/Berlin}", "2026-03-29"),
        ("2026-03-29T21:59:59", "{every: day, timezone: Europe/Berlin}", "2026-03-29"),
        ("2026-03-29T22:00:00", "{every: day, timezone: Europe/Berlin}", "2026-03-30"),
        # America/New_York falls back on 2026-11-01 (UTC-4 -> UTC-5): November starts 04:00 UTC.
        ("2026-11-01T03:59:59", "{every: month, timezone: America/New_York}", "2026-10"),
        ("2026-11-01T04:00:00", "{every: month, timezone: America/New_York}", "2026-11"),
        ("2026-11-02T04:59:59", "{every: day, timezone: America/New_York}", "2026-11-01"),
        ("2026-11-02T05:00:00", "{every: day, timezone: America/New_York}", "2026-11-02"),
        # ISO weeks: 2026 has 53; 2027-01-01 (Friday) still belongs to 2026-W53.
        ("2026-12-31T12:00:00", "{every: week, timezone: UTC}", "2026-W53"),
        ("2027-01-01T12:00:00", "{every: week, timezone: UTC}", "2026-W53"),
        ("2027-01-03T23:59:59", "{every: week, timezone: UTC}", "2026-W53"),
        ("2027-01-04T00:00:00", "{every: week, timezone: UTC}", "2027-W01"),
        ("2025-12-29T00:00:00", "{every: week, timezone: UTC}", "2026-W01"),
        ("2026-01-15T00:00:00", "{every: week, timezone: UTC}", "2026-W03"),
        # Sunday 23:30 UTC is already Monday in Tokyo: the next ISO week.
        ("2027-01-03T15:30:00", "{every: week, timezone: Asia/Tokyo}", "2027-W01"),
        ("2026-12-31T15:00:00", "{every: year, timezone: Asia/Tokyo}", "2027"),
        ("2026-12-31T15:00:00", "{every: year, timezone: UTC}", "2026"),
        ("2026-01-15T10:00:00", "{every: day, timezone: UTC}", "2026-01-15"),
        ("2026-01-01T04:59:59", "{every: month, timezone: America/New_York}", "2025-12"),
    ],
)
def test_period_keys(run: Runner, ts: str, period: str, key: str) -> None:
    assert _period_of(run, ts, period) == key


def test_period_defaults_to_utc(run: Runner) -> None:
    text = "truecount: 1\nname: edge\nversion: 1\nunit: ticket\nperiod: {every: month}\n"
    text += "anchor: {type: closed}\n"
    frame = run(text, table([ev("c", "t", "2026-03-31T23:30:00", "closed")]), None)
    assert list(frame["period"]) == ["2026-03"]


# ---------------------------------------------------------------------------------- as-of


def test_pending_until_window_closes_then_decided(run: Runner) -> None:
    events = table(
        [
            ev("c1", "t1", T0, "closed", "ai"),
            ev("c2", "t2", T0, "closed", "ai"),
            ev("r2", "t2", T0 + timedelta(days=2), "reopened", "customer"),
        ]
    )
    at_13d = by_anchor(run(CLOSED_NO_REOPEN_14D, events, T0 + timedelta(days=13)))
    # Both pending, even t2 whose reopen already decides it: the window is still open.
    assert {k: r["status"] for k, r in at_13d.items()} == {"c1": "pending", "c2": "pending"}
    assert all(r["quantity"] == 0.0 for r in at_13d.values())
    # The doc defines reasons only for not-counted candidates, so a pending one's is not checked.
    just_before = T0 + timedelta(days=14) - timedelta(seconds=1)
    assert statuses(run(CLOSED_NO_REOPEN_14D, events, just_before)) == {
        "c1": "pending",
        "c2": "pending",
    }
    exactly = statuses(run(CLOSED_NO_REOPEN_14D, events, T0 + timedelta(days=14)))
    assert exactly == {"c1": "counted", "c2": "not_counted"}


def test_pending_uses_longest_within_including_quantity(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed}
        conditions:
          not_reopened:
            absent: {type: reopened, within: 1d}
          no_earlier_escalation:
            absent: {type: escalated, before: 30d}
        quantity:
          sum: {type: payment, field: value, within: 3d}
        """
    )
    events = table(
        [ev("c1", "t1", T0, "closed"), ev("p1", "t1", T0 + timedelta(days=1), "payment", value=10)]
    )
    assert statuses(run(text, events, T0 + timedelta(days=2))) == {"c1": "pending"}
    v = by_anchor(run(text, events, T0 + timedelta(days=3)))
    assert v["c1"]["status"] == "counted"
    assert v["c1"]["quantity"] == 10.0


def test_no_within_window_never_pending(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed}
        conditions:
          never_reopened:
            absent: {type: reopened, lifetime: true}
          messaged_before:
            exists: {type: message, before: 1d}
        """
    )
    events = table(
        [ev("m1", "t1", T0 - timedelta(hours=1), "message"), ev("c1", "t1", T0, "closed")]
    )
    assert statuses(run(text, events, T0)) == {"c1": "counted"}


def test_events_after_as_of_are_invisible(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed, pick: last}
        conditions:
          never_reopened:
            absent: {type: reopened}
        """
    )
    as_of = T0 + timedelta(days=5)
    events = table(
        [
            ev("c1", "t1", T0, "closed"),
            ev("r1", "t1", as_of + timedelta(seconds=1), "reopened"),  # invisible
            ev("c2", "t1", as_of + timedelta(days=1), "closed"),  # invisible: not the last
            ev("c3", "t2", as_of + timedelta(seconds=1), "closed"),  # anchor after as-of
            ev("c4", "t3", T0, "closed"),
            ev("r4", "t3", as_of, "reopened"),  # exactly at as-of: visible
        ]
    )
    res = run(text, events, as_of)
    assert statuses(res) == {"c1": "counted", "c4": "not_counted"}


def test_default_as_of_is_latest_event(run: Runner) -> None:
    events = table(
        [
            ev("c1", "t1", T0, "closed", "ai"),
            ev("m1", "t2", T0 + timedelta(days=13, hours=23), "message"),
        ]
    )
    assert statuses(run(CLOSED_NO_REOPEN_14D, events, None)) == {"c1": "pending"}


# 1 March 2026 in every ISO 8601 date spelling: each means the end of that day (UTC).
MARCH_1 = ["2026-03-01", "20260301", "2026-W09-7", "2026W097"]


@pytest.mark.parametrize("known_at", [False, True])
@pytest.mark.parametrize("spelling", MARCH_1)
def test_every_spelling_of_a_bare_date_means_the_end_of_that_day(
    spelling: str, known_at: bool
) -> None:
    """A closure at 15:00 on the day is seen, whichever way the date is written; the
    reference is the same count at the day's last microsecond, given as a datetime."""
    end = datetime(2026, 3, 1, 23, 59, 59, 999999)
    events = table(
        [
            ev("c1", "t1", datetime(2026, 2, 1, 10), "closed", "ai"),
            ev("c2", "t2", datetime(2026, 3, 1, 15), "closed", "ai"),
            ev("r2", "t2", end + timedelta(microseconds=1), "reopened"),  # the next day
        ]
    )
    d = truecount.parse_definition(CLOSED_NO_REOPEN_14D)
    if known_at:
        res = truecount.count(d, events, known_at=spelling)
    else:
        res = truecount.count(d, events, as_of=spelling)
    ref = truecount.count(d, events, as_of=end)
    try:
        assert res.as_of == end
        assert statuses(res.verdicts.to_pandas()) == {"c1": "counted", "c2": "pending"}
        assert res.periods == ref.periods
    finally:
        res.close()
        ref.close()


def test_empty_export(run: Runner) -> None:
    frame = run(CLOSED_NO_REOPEN_14D, table([]), None)
    assert len(frame) == 0
    frame = run(CLOSED_NO_REOPEN_14D, table([]), T0)
    assert len(frame) == 0


def test_pandas_input_with_missing_optional_columns(run: Runner) -> None:
    """A bare export (no actor, value, attrs, seq...) is a valid input, as a pandas frame too."""
    text = definition(
        """
        anchor: {type: closed}
        conditions:
          not_reopened:
            absent: {type: reopened, within: 1d}
          unrated:
            absent: {type: rated, where: "value >= 4"}
        """
    )
    frame = pd.DataFrame(
        {
            "event_id": ["c1", "r1", "c2"],
            "entity_id": ["t1", "t1", "t2"],
            "ts": pd.to_datetime(["2026-01-10 10:00", "2026-01-11 10:00", "2026-01-10 11:00"]),
            "type": ["closed", "reopened", "closed"],
        }
    )
    if run is run_engine:
        res = truecount.count(truecount.parse_definition(text), frame)
        got = res.verdicts.to_pandas()
    else:
        got = evaluate(yaml.safe_load(text), frame, None)
    v = by_anchor(got)
    assert {k: r["status"] for k, r in v.items()} == {"c1": "not_counted", "c2": "pending"}
    assert v["c1"]["reason"] == {"not_reopened"}


# ---------------------------------------------------------------------------------- if_no_data

IF_NO_DATA_EVENTS = [
    # t1: no rated event at all.
    ev("c1", "t1", T0, "closed", "ai"),
    # t2: a rating exists but outside the window: there is data, so no override applies.
    ev("c2", "t2", T0, "closed", "ai"),
    ev("r2", "t2", T0 + timedelta(days=30), "rated", "customer", 5),
    # t3: a good rating inside the window.
    ev("c3", "t3", T0, "closed", "ai"),
    ev("r3", "t3", T0 + timedelta(days=1), "rated", "customer", 5),
    # t4: only a bad rating (data exists, but no matching event).
    ev("c4", "t4", T0, "closed", "ai"),
    ev("r4", "t4", T0 + timedelta(days=1), "rated", "customer", 2),
]


@pytest.mark.parametrize(
    ("override", "expected_t1", "cond_t1"),
    [
        ("", "not_counted", False),
        ("if_no_data: fail", "not_counted", False),
        ("if_no_data: pass", "counted", True),
        ("if_no_data: exclude", "excluded", None),
    ],
)
def test_if_no_data(run: Runner, override: str, expected_t1: str, cond_t1: bool | None) -> None:
    text = definition(
        f"""
        anchor: {{type: closed, actor: ai}}
        conditions:
          satisfied:
            exists: {{type: rated, within: 7d, where: "value >= 4"}}
            {override}
        """
    )
    v = by_anchor(run(text, table(IF_NO_DATA_EVENTS), T0 + timedelta(days=40)))
    assert v["c1"]["status"] == expected_t1
    assert v["c1"]["cond_satisfied"] is cond_t1
    assert v["c2"]["status"] == "not_counted"
    assert v["c3"]["status"] == "counted"
    assert v["c4"]["status"] == "not_counted"
    assert v["c1"]["quantity"] == (1.0 if expected_t1 == "counted" else 0.0)
    if expected_t1 == "not_counted":
        assert v["c1"]["reason"] == {"satisfied"}


def test_if_no_data_on_absent_and_exclude_beats_pending(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed}
        conditions:
          not_reopened:
            absent: {type: reopened, within: 14d}
            if_no_data: fail
          rated:
            exists: {type: rated, within: 7d}
            if_no_data: exclude
        """
    )
    events = table(
        [
            ev("c1", "t1", T0, "closed"),  # no reopen data -> not_reopened fails; no rating
            ev("c2", "t2", T0, "closed"),
            ev("x2", "t2", T0 - timedelta(days=1), "rated", value=3),  # data, before anchor
        ]
    )
    # as-of inside the window: t1 is excluded anyway (exclude wins over pending).
    v = by_anchor(run(text, events, T0 + timedelta(days=1)))
    assert v["c1"]["status"] == "excluded"
    assert v["c1"]["cond_rated"] is None
    assert v["c1"]["cond_not_reopened"] is False
    assert v["c1"]["quantity"] == 0.0
    assert v["c2"]["status"] == "pending"
    later = by_anchor(run(text, events, T0 + timedelta(days=20)))
    assert later["c1"]["status"] == "excluded"
    assert later["c2"]["status"] == "not_counted"
    assert later["c2"]["reason"] == {"not_reopened", "rated"}


def test_if_no_data_ignores_data_after_as_of(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed}
        conditions:
          rated_well:
            exists: {type: rated, where: "value >= 4"}
            if_no_data: pass
        """
    )
    events = table(
        [ev("c1", "t1", T0, "closed"), ev("r1", "t1", T0 + timedelta(days=2), "rated", value=1)]
    )
    # Before the rating is known there is no data (pass); once known, the bad rating fails.
    assert statuses(run(text, events, T0 + timedelta(days=1))) == {"c1": "counted"}
    assert statuses(run(text, events, T0 + timedelta(days=2))) == {"c1": "not_counted"}


# ---------------------------------------------------------------------------------- quantity


def test_quantity_sum_minus_sum(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: assigned}
        conditions:
          paid:
            exists: {type: payment, within: 90d}
        quantity:
          sum: {type: payment, field: value, within: 90d}
          minus:
            sum: {type: chargeback, field: value, within: 90d}
        """
    )
    d = timedelta(days=1)
    events = table(
        [
            ev("a1", "d1", T0, "assigned"),
            ev("p1", "d1", T0 + 5 * d, "payment", value=100),
            ev("p2", "d1", T0 + 90 * d, "payment", value=50),  # on the window end: in
            ev("p3", "d1", T0 + 91 * d, "payment", value=1000),  # outside
            ev("p4", "d1", T0 + 10 * d, "payment", value=None),  # null: ignored by sum
            ev("k1", "d1", T0 + 20 * d, "chargeback", value=30),
            # d2: payments but no chargeback: the missing aggregate is 0.
            ev("a2", "d2", T0, "assigned"),
            ev("p5", "d2", T0 + 1 * d, "payment", value=40),
            # d3: no payment -> not counted -> quantity 0 (although the chargeback exists).
            ev("a3", "d3", T0, "assigned"),
            ev("k3", "d3", T0 + 1 * d, "chargeback", value=70),
        ]
    )
    v = by_anchor(run(text, events, T0 + 100 * d))
    assert v["a1"]["quantity"] == pytest.approx(120.0)
    assert v["a2"]["quantity"] == pytest.approx(40.0)
    assert v["a3"]["status"] == "not_counted"
    assert v["a3"]["quantity"] == 0.0


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("2.5", 2.5),
        ("{count: {type: message, within: 1d}}", 2.0),
        ("{min: {type: message, field: value, within: 1d}}", 3.0),
        ("{max: {type: message, field: value, within: 1d}}", 7.0),
        ("{avg: {type: message, field: value, within: 1d}}", 5.0),
        ("{sum: {type: message, field: attrs.amount}}", 12.0),
        ("{max: {type: refund, field: value}}", 0.0),
        ("{count: {type: message}, minus: 1}", 2.0),
    ],
)
def test_quantity_forms(run: Runner, quantity: str, expected: float) -> None:
    text = definition(f"anchor: {{type: closed}}\nquantity: {quantity}\n")
    events = table(
        [
            ev("c1", "t1", T0, "closed"),
            ev("m1", "t1", T0 + timedelta(hours=1), "message", value=3, attrs={"amount": 5}),
            ev("m2", "t1", T0 + timedelta(hours=2), "message", value=7, attrs={"amount": "7"}),
            ev("m3", "t1", T0 + timedelta(days=2), "message", attrs={"amount": "n/a"}),
        ]
    )
    v = by_anchor(run(text, events, T0 + timedelta(days=3)))
    assert v["c1"]["status"] == "counted"
    assert v["c1"]["quantity"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        # minus takes a whole quantity: 3 - (1 - 1), not 3 - 1 - 1.
        ("{count: {type: message}, minus: {count: {type: rated}, minus: 1}}", 3.0),
        ("{count: {type: message}, minus: {count: {type: rated}, minus: {count: {type: x}}}}", 2.0),
        # 3 - (1 - 3) = 5
        (
            "{count: {type: message}, minus: {count: {type: rated}, minus: {count: {type: message}}}}",
            5.0,
        ),
        ("{sum: {type: message, field: value}, minus: {max: {type: rated, field: value}}}", 2.0),
    ],
)
def test_quantity_nested_minus(run: Runner, quantity: str, expected: float) -> None:
    text = definition(f"anchor: {{type: closed}}\nquantity: {quantity}\n")
    events = table(
        [
            ev("c1", "t1", T0, "closed"),
            ev("m1", "t1", T0, "message", value=1),
            ev("m2", "t1", T0, "message", value=2),
            ev("m3", "t1", T0, "message", value=3),
            ev("r1", "t1", T0, "rated", value=4),
        ]
    )
    assert by_anchor(run(text, events, None))["c1"]["quantity"] == pytest.approx(expected)


# ---------------------------------------------------------------------------------- aggregates


@pytest.mark.parametrize(
    ("fn", "comparison", "counted"),
    [
        ("first", "at_least: 4", False),  # first rating (by seq) is 2
        ("last", "at_least: 4", True),  # last rating is 5
        ("first", "equals: 2", True),
        ("last", "less_than: 5", False),
        ("min", "equals: 2", True),
        ("max", "more_than: 4", True),
        ("avg", "equals: 3.5", True),
        ("sum", "at_most: 6", False),
        ("sum", "equals: 7", True),
    ],
)
def test_aggregate_functions(run: Runner, fn: str, comparison: str, counted: bool) -> None:
    text = definition(
        f"""
        anchor: {{type: closed}}
        conditions:
          rating:
            aggregate: {{fn: {fn}, field: value, type: rated, within: 7d, {comparison}}}
        """
    )
    t = T0 + timedelta(days=1)
    events = table(
        [
            ev("c1", "t1", T0, "closed"),
            # Same instant: seq says "z" (2) came first, then "a" (5).
            ev("a", "t1", t, "rated", value=5, seq=2),
            ev("z", "t1", t, "rated", value=2, seq=1),
            ev("late", "t1", T0 + timedelta(days=8), "rated", value=1),  # outside window
        ]
    )
    expected = "counted" if counted else "not_counted"
    assert statuses(run(text, events, T0 + timedelta(days=10))) == {"c1": expected}


@pytest.mark.parametrize(("fn", "expected"), [("first", 3.0), ("last", 4.0)])
def test_first_and_last_skip_null_fields(run: Runner, fn: str, expected: float) -> None:
    """A rating event without a score carries no value, as for every other aggregate."""
    text = definition(
        f"""
        anchor: {{type: closed}}
        conditions:
          rating:
            aggregate: {{fn: {fn}, field: value, type: rated, equals: {expected}}}
          score:
            aggregate: {{fn: {fn}, field: attrs.score, type: rated, equals: {expected}}}
        """
    )
    h = timedelta(hours=1)
    events = table(
        [
            ev("c1", "t1", T0, "closed"),
            ev("r1", "t1", T0 + h, "rated", value=None, attrs={}),
            ev("r2", "t1", T0 + 2 * h, "rated", value=3, attrs={"score": 3}),
            ev("r3", "t1", T0 + 3 * h, "rated", value=4, attrs={"score": 4}),
            ev("r4", "t1", T0 + 4 * h, "rated", value=None, attrs={"score": None}),
        ]
    )
    assert statuses(run(text, events, None)) == {"c1": "counted"}


def test_aggregate_on_attrs_and_with_no_events_fails(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed}
        conditions:
          csat:
            aggregate: {fn: max, field: attrs.csat, type: survey, at_least: 8}
          no_surveys_is_null:
            not:
              aggregate: {fn: sum, field: value, type: nothing, at_most: 0}
        """
    )
    events = table(
        [
            ev("c1", "t1", T0, "closed"),
            ev("s1", "t1", T0, "survey", attrs={"csat": 9}),
            ev("c2", "t2", T0, "closed"),
            ev("s2", "t2", T0, "survey", attrs={"csat": "7"}),
            ev("c3", "t3", T0, "closed"),  # no survey: aggregate null, fails
        ]
    )
    v = by_anchor(run(text, events, T0))
    assert v["c1"]["status"] == "counted"
    assert v["c2"]["reason"] == {"csat"}
    assert v["c3"]["reason"] == {"csat"}
    # An aggregate over no events is null, so the inner condition fails and `not` passes.
    assert all(r["cond_no_surveys_is_null"] is True for r in v.values())


# ---------------------------------------------------------------------------------- count


@pytest.mark.parametrize(
    ("comparison", "passes"),
    [
        ("at_least: 3", True),
        ("at_least: 4", False),
        ("at_most: 3", True),
        ("at_most: 2", False),
        ("more_than: 3", False),
        ("more_than: 2", True),
        ("less_than: 4", True),
        ("less_than: 3", False),
        ("equals: 3", True),
        ("equals: 0", False),
        ("at_least: 2, at_most: 2", False),
        ("at_least: 2, less_than: 4", True),
    ],
)
def test_count_comparisons(run: Runner, comparison: str, passes: bool) -> None:
    text = definition(
        f"""
        anchor: {{type: closed}}
        conditions:
          chatty:
            count: {{type: message, actor: customer, within: 1d, {comparison}}}
        """
    )
    h = timedelta(hours=1)
    events = table(
        [
            ev("c1", "t1", T0, "closed"),
            ev("m1", "t1", T0, "message", "customer"),
            ev("m2", "t1", T0 + h, "message", "customer"),
            ev("m3", "t1", T0 + 24 * h, "message", "customer"),
            ev("m4", "t1", T0 + 2 * h, "message", "human"),  # wrong actor
            ev("m5", "t1", T0 - h, "message", "customer"),  # before the anchor
        ]
    )
    v = by_anchor(run(text, events, T0 + 48 * h))
    assert v["c1"]["cond_chatty"] is passes


def test_count_zero_on_no_events(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed}
        conditions:
          quiet:
            count: {type: message, equals: 0}
        """
    )
    assert statuses(run(text, table([ev("c1", "t1", T0, "closed")]), None)) == {"c1": "counted"}


# ---------------------------------------------------------------------------------- logic


def test_any_all_not(run: Runner) -> None:
    text = definition(
        """
        anchor: {type: closed}
        conditions:
          good:
            any:
              - exists: {type: rated, where: "value >= 4"}
              - all:
                  - exists: {type: message, actor: customer}
                  - not:
                      exists: {type: reopened}
        """
    )
    events = table(
        [
            ev("c1", "t1", T0, "closed"),
            ev("r1", "t1", T0, "rated", value=5),
            ev("c2", "t2", T0, "closed"),
            ev("m2", "t2", T0, "message", "customer"),
            ev("c3", "t3", T0, "closed"),
            ev("m3", "t3", T0, "message", "customer"),
            ev("o3", "t3", T0, "reopened"),
            ev("c4", "t4", T0, "closed"),
            ev("r4", "t4", T0, "rated", value=None),
        ]
    )
    assert statuses(run(text, events, None)) == {
        "c1": "counted",
        "c2": "counted",
        "c3": "not_counted",
        "c4": "not_counted",
    }


@pytest.mark.parametrize(
    ("where", "matching"),
    [
        ("value >= 4", {"e1"}),
        ("not (value >= 4)", {"e2"}),  # null value: unknown, and not unknown is unknown
        ("value is null", {"e3"}),
        ("value between 1 and 3", {"e2"}),
        ("attrs.channel in ('chat', 'email')", {"e1", "e2"}),
        ("attrs.channel not in ('chat')", {"e2"}),
        ("attrs.channel is null", {"e3"}),
        ("actor == 'ai' and attrs.channel = 'chat' or value < 4", {"e1", "e2"}),
        ("actor <> 'ai'", {"e2"}),
        ("attrs.score > 10", {"e2"}),  # "12" as a number, not as text ("12" < "9")
        ("attrs.score == '9'", {"e1"}),
        ("type = 'rated' and value != 5", {"e2"}),
    ],
)
def test_where_expressions(run: Runner, where: str, matching: set[str]) -> None:
    text = definition(
        f"""
        anchor: {{type: rated, where: "{where}", pick: each}}
        """
    )
    events = table(
        [
            ev("e1", "t1", T0, "rated", "ai", 5, {"channel": "chat", "score": 9}),
            ev("e2", "t2", T0, "rated", "human", 2, {"channel": "email", "score": "12"}),
            ev("e3", "t3", T0, "rated", None, None, None),
        ]
    )
    assert set(by_anchor(run(text, events, None))) == matching


# ---------------------------------------------------------------------------------- summaries


def _consistency_logs() -> list[tuple[str, pa.Table, datetime | None]]:
    text = definition(
        """
        anchor: {type: closed, pick: each}
        conditions:
          not_reopened:
            absent: {type: reopened, within: 2d}
          rated:
            exists: {type: rated, within: 2d}
            if_no_data: exclude
          no_human:
            absent: {type: message, actor: human, within: 1d}
        quantity: {count: {type: message, within: 2d}}
        """,
        period="{every: day, timezone: Europe/Berlin}",
    )
    rows = []
    for i in range(12):
        base = T0 + timedelta(hours=7 * i)
        e = f"t{i % 5}"
        rows.append(ev(f"c{i}", e, base, "closed"))
        if i % 2:
            rows.append(ev(f"r{i}", e, base + timedelta(hours=5), "reopened"))
        if i % 3:
            rows.append(ev(f"s{i}", e, base + timedelta(hours=1), "rated", value=i % 5))
        if i % 4 == 1:
            rows.append(ev(f"m{i}", e, base + timedelta(hours=2), "message", "human"))
    return [
        (text, table(rows), None),
        (text, table(rows), T0 + timedelta(days=5)),
        (text, table([]), None),
        (CLOSED_NO_REOPEN_14D, table(IF_NO_DATA_EVENTS), None),
    ]


@pytest.mark.parametrize("case", range(4))
def test_periods_and_reasons_add_up(case: int) -> None:
    text, events, as_of = _consistency_logs()[case]
    res = truecount.count(truecount.parse_definition(text), events, as_of=as_of)
    verdicts = res.verdicts.to_pandas()
    if as_of is not None:
        assert res.as_of == as_of
    elif len(verdicts):
        assert res.as_of == events.to_pandas()["ts"].max().to_pydatetime()

    # Per period: candidates and each status count, and the quantity sum.
    expected: dict[str, dict[str, float]] = {}
    for rec in verdicts.to_dict("records"):
        p = expected.setdefault(
            rec["period"],
            {
                "candidates": 0,
                "counted": 0,
                "not_counted": 0,
                "pending": 0,
                "excluded": 0,
                "quantity": 0.0,
            },
        )
        p["candidates"] += 1
        p[rec["status"]] += 1
        p["quantity"] += rec["quantity"]
    got = {
        p.period: {
            "candidates": p.candidates,
            "counted": p.counted,
            "not_counted": p.not_counted,
            "pending": p.pending,
            "excluded": p.excluded,
            "quantity": pytest.approx(p.quantity),
        }
        for p in res.periods
    }
    assert got == expected
    grouped = verdicts.groupby("period")["quantity"].sum().to_dict() if len(verdicts) else {}
    assert {k: pytest.approx(v["quantity"]) for k, v in got.items()} == grouped

    # Per condition: the not-counted candidates that fail it (a count or a list of entities).
    conditions = yaml.safe_load(text)["conditions"]
    reasons = {r.condition: r.entities for r in res.reasons}
    assert set(reasons) <= set(conditions)
    failing = verdicts[verdicts["status"] == "not_counted"]
    for name in conditions:
        rows = failing[failing[f"cond_{name}"] == False]  # noqa: E712 - a pandas mask
        entities = reasons.get(name)
        if entities is None:
            assert len(rows) == 0, name
        elif isinstance(entities, int):
            assert entities == len(rows), name
        else:
            assert sorted(entities) == sorted(rows["entity_id"]), name


@pytest.mark.parametrize(("fn", "expected"), [("first", 2), ("last", 5)])
def test_first_and_last_aggregate_put_events_without_seq_after(
    run: Runner, fn: str, expected: int
) -> None:
    """At one instant an event without seq comes after those with one (docs/definition.md)."""
    text = definition(
        f"""
        anchor: {{type: closed}}
        conditions:
          rating:
            aggregate: {{fn: {fn}, field: value, type: rated, within: 7d, equals: {expected}}}
        """
    )
    later = T0 + timedelta(hours=1)
    events = table(
        [
            ev("c", "t1", T0, "closed", actor="ai"),
            ev("a", "t1", later, "rated", value=5),
            ev("b", "t1", later, "rated", value=2, seq=1),
        ]
    )
    assert statuses(run(text, events, later + timedelta(days=8))) == {"c": "counted"}
