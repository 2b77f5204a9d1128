"""Events with no actor: never a silent pass (docs/definition.md, "Events with no actor").

Hand-built logs with hand-written verdicts, run against the engine and the independent
reference alike, as in ``test_engine_edges.py``. An event whose actor is NULL may be by the
actor a filter names, so it cannot prove that actor absent (an ``absent`` leaf fails, and so
does ``not exists``), and it cannot prove them present either (``exists`` does not pass on it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest

import truecount
from test_engine_edges import definition, ev, run_engine, run_reference, statuses, table
from truecount.engine.check import check
from truecount.engine.explain import explain

T0 = datetime(2026, 1, 10, 10, 0, 0)
H = timedelta(hours=1)
Runner = Callable[[str, pa.Table, datetime | None], pd.DataFrame]


def by_ticket(frame: pd.DataFrame) -> dict[str, str]:
    """Verdict per ticket (the anchor ids are ``<ticket>-close``)."""
    return {k.removesuffix("-close"): v for k, v in statuses(frame).items()}


@pytest.fixture(params=["engine", "reference"])
def run(request: pytest.FixtureRequest) -> Runner:
    return run_engine if request.param == "engine" else run_reference


def log() -> pa.Table:
    """t1: a message with no actor; t2: by the customer; t3: by a human; t4: none;
    t5: a note (not public) with no actor, which the where filter leaves out."""
    rows = []
    for t in ("t1", "t2", "t3", "t4", "t5"):
        rows.append(ev(f"{t}-close", t, T0, "closed", "ai"))
    rows += [
        ev("m1", "t1", T0 + H, "message", None, attrs={"public": True}),
        ev("m2", "t2", T0 + H, "message", "customer", attrs={"public": True}),
        ev("m3", "t3", T0 + H, "message", "human", attrs={"public": True}),
        ev("m5", "t5", T0 + H, "message", None, attrs={"public": False}),
        ev("later", "t4", T0 + 30 * 24 * H, "rated", "customer", value=5),
    ]
    return table(rows)


ANCHOR = "anchor: {type: closed, actor: ai, pick: first}\nquantity: 1\n"
FILTER = 'type: message, actor: human, within: 14d, where: "attrs.public == true"'

CASES = {
    # "no human message": NULL cannot prove absence -> t1 fails; t5's NULL is not public
    "absent": (
        f"conditions:\n  no_human:\n    absent: {{{FILTER}}}\n",
        {"t1": "not_counted", "t2": "counted", "t3": "not_counted", "t4": "counted"}
        | {"t5": "counted"},
    ),
    # the same, written as `not exists`: the NULL is a possible hit of the exists -> t1 fails
    "not_exists": (
        f"conditions:\n  no_human:\n    not: {{exists: {{{FILTER}}}}}\n",
        {"t1": "not_counted", "t2": "counted", "t3": "not_counted", "t4": "counted"}
        | {"t5": "counted"},
    ),
    # the actor read by a where instead of `actor:`: unknown on t1's message, so a match
    "absent_where": (
        "conditions:\n  no_human:\n    absent: {type: message, within: 14d, "
        "where: \"actor in ('human', 'system') and attrs.public == true\"}\n",
        {"t1": "not_counted", "t2": "counted", "t3": "not_counted", "t4": "counted"}
        | {"t5": "counted"},
    ),
    "exists_where": (
        "conditions:\n  human_replied:\n    exists: {type: message, within: 14d, "
        "where: \"actor == 'human' and attrs.public == true\"}\n",
        {"t1": "not_counted", "t2": "not_counted", "t3": "counted", "t4": "not_counted"}
        | {"t5": "not_counted"},
    ),
    # "a human replied": a NULL does not prove it -> t1 fails
    "exists": (
        f"conditions:\n  human_replied:\n    exists: {{{FILTER}}}\n",
        {"t1": "not_counted", "t2": "not_counted", "t3": "counted", "t4": "not_counted"}
        | {"t5": "not_counted"},
    ),
    # `not absent` is `exists`: the NULL does not prove it either
    "not_absent": (
        f"conditions:\n  human_replied:\n    not: {{absent: {{{FILTER}}}}}\n",
        {"t1": "not_counted", "t2": "not_counted", "t3": "counted", "t4": "not_counted"}
        | {"t5": "not_counted"},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_unknown_actor_never_makes_a_condition_pass(run: Runner, case: str) -> None:
    body, expected = CASES[case]
    text = definition(ANCHOR + body)
    assert by_ticket(run(text, log(), T0 + 40 * 24 * H)) == expected


def test_conditions_without_an_actor_filter_are_unchanged(run: Runner) -> None:
    """Without ``actor:``, a NULL actor is just an event: t1, t2, t3 and t5 have a message."""
    body = "conditions:\n  quiet:\n    absent: {type: message, within: 14d}\n"
    got = by_ticket(run(definition(ANCHOR + body), log(), T0 + 40 * 24 * H))
    assert got == {
        "t1": "not_counted",
        "t2": "not_counted",
        "t3": "not_counted",
        "t4": "counted",
        "t5": "not_counted",
    }


def test_explain_names_the_unknown_actor_event_that_decided_it() -> None:
    text = definition(ANCHOR + CASES["absent"][0])
    found = explain(truecount.parse_definition(text), log(), "t1", as_of=T0 + 40 * 24 * H)
    cond = found.anchors[0].conditions[0]
    assert cond.passed is False
    assert cond.decided_by == "m1"


def test_check_counts_unknown_actors_per_condition_and_file() -> None:
    """t1's and t5's messages have no actor; both come from the file ``test`` (source
    ``test:<id>``), but only t1's is public, as the condition's where asks."""
    text = definition(ANCHOR + CASES["absent"][0])
    result = check(truecount.parse_definition(text), log(), as_of=T0 + 40 * 24 * H)
    need = result.conditions[0].needs[0]
    assert need.unknown_actor == 1
    assert need.unknown_actor_files == {"test": 1}
    assert "1 `message` events have no actor (test 1)" in result.conditions[0].note
    assert "cannot pass this condition" in result.conditions[0].note
    # the anchor filters by actor too: its `closed` events all have one
    assert result.anchor.unknown_actor == 0
    shown = result.to_json()
    assert shown["conditions"][0]["needs"][0]["unknown_actor_files"] == {"test": 1}
    assert shown["anchor"]["unknown_actor"] == 0
