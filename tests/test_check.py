"""`truecount check`: data sufficiency on full and deliberately thin exports.

Every coverage and if_no_data number is compared with a pandas computation written from
docs/check.md and docs/definition.md over the same events, not with the engine's own output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import truecount.cli.check_cmds  # noqa: F401  (registers the verb)
from truecount.cli.app import app
from truecount.definition import load_definition, parse_definition
from truecount.demo.generate import SupportScenario, generate
from truecount.engine.check import CheckResult, check

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "examples" / "resolved_ticket.yaml"
runner = CliRunner()


# --------------------------------------------------------------------------- exports


@pytest.fixture(scope="module")
def full() -> pa.Table:
    """A generated support export: 3,000 tickets over three months, ratings for ~91%."""
    return generate(SupportScenario(tickets=3000, seed=11)).events


def _entities_kept(table: pa.Table, share_in_ten: int) -> set[str]:
    """A deterministic subset of tickets: those whose number ends in 0..share_in_ten-1."""
    ids = set(pc.unique(table.column("entity_id")).to_pylist())
    return {e for e in ids if int(e[1:]) % 10 < share_in_ten}


@pytest.fixture(scope="module")
def no_ratings(full: pa.Table) -> pa.Table:
    return full.filter(pc.not_equal(full.column("type"), "rated"))


@pytest.fixture(scope="module")
def thin_ratings(full: pa.Table) -> pa.Table:
    """Ratings kept for 30% of tickets only: the vendor sent a partial survey export."""
    keep = pa.array(sorted(_entities_kept(full, 3)))
    is_rated = pc.equal(full.column("type"), "rated")
    kept = pc.is_in(full.column("entity_id"), value_set=keep)
    return full.filter(pc.or_(pc.invert(is_rated), kept))


@pytest.fixture(scope="module")
def no_values(full: pa.Table) -> pa.Table:
    """Rating events without their score: the export mapped the rating column wrongly."""
    i = full.schema.get_field_index("value")
    is_rated = pc.equal(full.column("type"), "rated")
    nulls = pa.nulls(full.num_rows, pa.float64())
    return full.set_column(i, "value", pc.if_else(is_rated, nulls, full.column("value")))


# --------------------------------------------------------------------------- pandas reference


def reference(table: pa.Table | pd.DataFrame) -> dict[str, Any]:
    """Coverage and if_no_data of resolved_ticket.yaml, written directly in pandas.

    Candidates: the first `closed` by `ai` per ticket; period: its UTC month; pending: the
    14-day window ends after the as-of (the latest event). A candidate is covered for
    `satisfied` when its ticket has any `rated` event with a value, for `not_reopened` when it
    has any `reopened` event; if_no_data decides `satisfied` when the ticket has no `rated`
    event at all.
    """
    ev = table.to_pandas() if isinstance(table, pa.Table) else table
    as_of = ev["ts"].max()
    ev = ev[ev["ts"] <= as_of]
    closes = ev[(ev["type"] == "closed") & (ev["actor"] == "ai")]
    closes = closes.sort_values(["entity_id", "ts", "seq", "event_id"], na_position="last")
    anchors = closes.groupby("entity_id").head(1).set_index("entity_id")
    out = pd.DataFrame(index=anchors.index)
    out["period"] = anchors["ts"].dt.strftime("%Y-%m")
    out["pending"] = anchors["ts"] + pd.Timedelta(days=14) > as_of
    rated = ev[ev["type"] == "rated"]
    out["rated_any"] = out.index.isin(rated["entity_id"])
    out["rated_value"] = out.index.isin(rated[rated["value"].notna()]["entity_id"])
    out["reopened_any"] = out.index.isin(ev[ev["type"] == "reopened"]["entity_id"])
    periods = {}
    for period, sub in out.groupby("period"):
        periods[period] = {
            "candidates": len(sub),
            "pending": int(sub["pending"].sum()),
            "satisfied_covered": int(sub["rated_value"].sum()),
            "satisfied_no_data": int((~sub["rated_any"]).sum()),
            "not_reopened_covered": int(sub["reopened_any"].sum()),
        }
    return {
        "periods": periods,
        "rated": int((ev["type"] == "rated").sum()),
        "rated_with_value": int(((ev["type"] == "rated") & ev["value"].notna()).sum()),
        "rated_4plus": int(((ev["type"] == "rated") & (ev["value"] >= 4)).sum()),
        "reopened": int((ev["type"] == "reopened").sum()),
        "anchor_events": int(((ev["type"] == "closed") & (ev["actor"] == "ai")).sum()),
    }


def assert_matches_reference(result: CheckResult, table: pa.Table | pd.DataFrame) -> None:
    ref = reference(table)
    got = result.to_json()
    assert [p["period"] for p in got["anchor"]["periods"]] == sorted(ref["periods"])
    for p in got["anchor"]["periods"]:
        r = ref["periods"][p["period"]]
        assert (p["candidates"], p["pending"]) == (r["candidates"], r["pending"])
    assert got["anchor"]["events_matching"] == ref["anchor_events"]
    conds = {c["name"]: c for c in got["conditions"]}
    for p in conds["satisfied"]["periods"]:
        r = ref["periods"][p["period"]]
        assert p["candidates"] == r["candidates"]
        assert p["covered"] == r["satisfied_covered"], p
        assert p["coverage"] == round(r["satisfied_covered"] / r["candidates"], 4)
        assert p["decided_by_if_no_data"] == r["satisfied_no_data"], p
    for p in conds["not_reopened"]["periods"]:
        r = ref["periods"][p["period"]]
        assert p["covered"] == r["not_reopened_covered"]
        assert p["decided_by_if_no_data"] == 0
    need = conds["satisfied"]["needs"][0]
    assert need["events_of_type"] == ref["rated"]
    assert need["fields"] == [{"name": "value", "events": ref["rated_with_value"]}]
    assert need["events_usable"] == ref["rated_with_value"]
    assert need["events_matching"] == conds["satisfied"]["events_matching"] == ref["rated_4plus"]
    assert conds["not_reopened"]["events_matching"] == ref["reopened"]


# --------------------------------------------------------------------------- library


def test_full_export_is_ok(full: pa.Table) -> None:
    result = check(load_definition(DEFINITION), full)
    assert_matches_reference(result, full)
    assert result.ok and result.status == "ok" and result.missing == []
    assert [(c.name, c.status) for c in result.conditions] == [
        ("not_reopened", "ok"),
        ("satisfied", "ok"),
    ]
    assert result.anchor.status == "ok" and result.quantity is None
    not_reopened = result.conditions[0].needs[0]
    # absence passes, so a low share of tickets with a reopen is expected, never "thin"
    assert not not_reopened.expects_data and (not_reopened.total.coverage or 0) < 0.5


def test_no_ratings_is_missing_and_decided_by_if_no_data(no_ratings: pa.Table) -> None:
    result = check(load_definition(DEFINITION), no_ratings)
    assert_matches_reference(result, no_ratings)
    satisfied = result.conditions[1]
    assert satisfied.status == "missing" and result.missing == ["satisfied"]
    assert not result.ok
    total = satisfied.total
    assert total.covered == 0 and total.decided_by_if_no_data == total.candidates > 0
    assert "the export has none" in satisfied.note
    assert f"every candidate is decided by if_no_data: fail ({total.candidates:,} verdicts)" in (
        satisfied.note
    )


def test_thirty_percent_ratings_is_thin_per_period(thin_ratings: pa.Table) -> None:
    result = check(load_definition(DEFINITION), thin_ratings)
    assert_matches_reference(result, thin_ratings)
    satisfied = result.conditions[1]
    assert satisfied.status == "thin" and result.status == "thin"
    assert result.ok  # thin is reported, not a failure
    for p in satisfied.periods:
        assert p.coverage is not None and 0.2 < p.coverage < 0.35
    assert "only" in satisfied.note and "below 50.0%" in satisfied.note
    # a lower bar turns it back to ok
    lenient = check(load_definition(DEFINITION), thin_ratings, min_coverage=0.2)
    assert lenient.conditions[1].status == "ok"


def test_ratings_without_value_are_a_missing_field(no_values: pa.Table) -> None:
    result = check(load_definition(DEFINITION), no_values)
    assert_matches_reference(result, no_values)
    satisfied = result.conditions[1]
    need = satisfied.needs[0]
    assert satisfied.status == "missing"
    assert need.events_of_type > 0 and need.events_usable == 0
    assert [(f.name, f.events) for f in need.fields] == [("value", 0)]
    assert "none carries `value`" in satisfied.note
    # tickets that have a rating event are not decided by if_no_data: they fail for lack of a value
    ref = reference(no_values)
    no_data = sum(p["satisfied_no_data"] for p in ref["periods"].values())
    assert satisfied.total.decided_by_if_no_data == no_data < satisfied.total.candidates


def test_period_restricts_coverage(thin_ratings: pa.Table) -> None:
    d = load_definition(DEFINITION)
    whole = check(d, thin_ratings)
    first = whole.anchor.periods[0].period
    one = check(d, thin_ratings, period=first)
    assert [p.period for p in one.anchor.periods] == [first]
    assert one.conditions[1].periods == whole.conditions[1].periods[:1]
    p = whole.conditions[1].periods[0]
    t = one.conditions[1].total
    assert (t.candidates, t.covered, t.decided_by_if_no_data) == (
        p.candidates,
        p.covered,
        p.decided_by_if_no_data,
    )
    assert one.events == whole.events  # event counts stay export-wide


DEF_HEAD = """
truecount: 1
name: probe
version: 1
anchor: {type: closed, actor: ai}
"""


def test_any_is_as_good_as_its_best_alternative(full: pa.Table) -> None:
    text = (
        DEF_HEAD
        + """
conditions:
  liked:
    any:
      - exists: {type: rated, where: "value >= 4"}
      - exists: {type: survey_answered}
  both:
    all:
      - exists: {type: rated, where: "value >= 4"}
      - exists: {type: survey_answered}
"""
    )
    result = check(parse_definition(text), full)
    liked, both = result.conditions
    assert [n.status for n in liked.needs] == ["ok", "missing"]
    assert liked.status == "ok" and both.status == "missing"
    assert result.missing == ["both"]
    # coverage of `any`: one alternative's data is enough; of `all`: every part's
    ref = reference(full)
    with_value = sum(p["satisfied_covered"] for p in ref["periods"].values())
    assert liked.total.covered == with_value and both.total.covered == 0
    assert liked.needs[1].path == "liked.any[1]"


def test_anchor_without_events_by_its_actor(full: pa.Table) -> None:
    text = (
        DEF_HEAD.replace("actor: ai", "actor: robot")
        + """
conditions:
  not_reopened:
    absent: {type: reopened, within: 14d}
"""
    )
    result = check(parse_definition(text), full)
    assert result.anchor.status == "missing" and result.anchor.candidates == 0
    assert result.missing == ["anchor"]
    assert "none by `robot`" in result.anchor.note and "ai " in result.anchor.note
    assert result.conditions[0].periods == []


def test_quantity_and_actor_filters_and_unknown_actors(full: pa.Table) -> None:
    i = full.schema.get_field_index("actor")
    is_human = pc.equal(full.column("actor"), "human")
    relabelled = full.set_column(
        i, "actor", pc.if_else(is_human, pa.scalar("agent"), full.column("actor"))
    )
    text = (
        DEF_HEAD
        + """
conditions:
  no_human_reply:
    absent: {type: message, actor: human, within: 14d}
quantity:
  sum: {type: payment, field: value}
"""
    )
    result = check(parse_definition(text), relabelled)
    reply = result.conditions[0].needs[0]
    assert reply.status == "missing" and reply.events_by_actor == 0
    assert reply.actors is not None and "agent" in reply.actors
    assert "none by `human`" in reply.note and "passes for every candidate" in reply.note
    assert result.quantity is not None and result.quantity.status == "missing"
    assert "it is 0 for every candidate" in result.quantity.needs[0].note
    assert set(result.missing) == {"no_human_reply", "quantity"}
    assert any("`agent`" in n for n in result.notes)


def test_user_text_never_reaches_sql_as_code(full: pa.Table) -> None:
    text = (
        DEF_HEAD
        + """
conditions:
  odd:
    exists: {type: "rated'); DROP TABLE events; --", actor: "x'y", where: "attrs.k == 'a''b'"}
"""
    )
    result = check(parse_definition(text), full)
    assert result.conditions[0].status == "missing"
    assert result.events == full.num_rows


def test_bad_min_coverage_is_an_input_error(full: pa.Table) -> None:
    from truecount.errors import InputError

    with pytest.raises(InputError, match="not a share"):
        check(load_definition(DEFINITION), full, min_coverage=50)


# --------------------------------------------------------------------------- command line


def _write(table: pa.Table, path: Path) -> Path:
    pq.write_table(table, path)
    return path


def test_cli_full_export_exits_0(full: pa.Table, tmp_path: Path) -> None:
    events = _write(full, tmp_path / "full.parquet")
    res = runner.invoke(app, ["check", str(DEFINITION), "--events", str(events)])
    assert res.exit_code == 0, res.output
    assert "ok:" in res.output and "coverage per period" in res.output
    res = runner.invoke(app, ["check", str(DEFINITION), "-e", str(events), "--format", "json"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert set(data) == {
        "definition",
        "as_of",
        "source",
        "period",
        "min_coverage",
        "status",
        "ok",
        "missing",
        "events",
        "types",
        "anchor",
        "conditions",
        "quantity",
        "notes",
        "choices",
    }
    assert data["ok"] is True and data["status"] == "ok"
    assert data["definition"]["name"] == "resolved_ticket"


def test_cli_no_ratings_explains_and_exits_1(no_ratings: pa.Table, tmp_path: Path) -> None:
    events = _write(no_ratings, tmp_path / "thin.parquet")
    res = runner.invoke(app, ["check", str(DEFINITION), "-e", str(events)])
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    assert "satisfied: needs `rated` events with `value`; the export has none" in text
    assert "every candidate is decided by if_no_data: fail" in text
    assert "not supported" in text
    res = runner.invoke(app, ["check", str(DEFINITION), "-e", str(events), "-f", "json"])
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    assert data["ok"] is False and data["missing"] == ["satisfied"]
    sat = data["conditions"][1]
    assert sat["status"] == "missing" and sat["coverage"] == 0.0
    assert sat["decided_by_if_no_data"] == sat["candidates"] > 0
    assert set(sat["needs"][0]) >= {"type", "actor", "fields", "status", "periods"}


def test_cli_thin_ratings_exit_0_and_period(thin_ratings: pa.Table, tmp_path: Path) -> None:
    events = _write(thin_ratings, tmp_path / "thin.parquet")
    ref = reference(thin_ratings)
    first = sorted(ref["periods"])[0]
    res = runner.invoke(
        app, ["check", str(DEFINITION), "-e", str(events), "--period", first, "-f", "json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    sat = data["conditions"][1]
    assert sat["status"] == "thin" and data["period"] == first
    r = ref["periods"][first]
    assert [p["period"] for p in sat["periods"]] == [first]
    assert sat["covered"] == r["satisfied_covered"]
    assert sat["coverage"] == round(r["satisfied_covered"] / r["candidates"], 4)
    res = runner.invoke(app, ["check", str(DEFINITION), "-e", str(events)])
    assert res.exit_code == 0 and "thin:" in res.output


def test_cli_bad_input_exits_2(full: pa.Table, tmp_path: Path) -> None:
    events = _write(full, tmp_path / "full.parquet")
    cmd = [sys.executable, "-c", "from truecount.cli import main; main()"]
    base = [*cmd, "check", str(DEFINITION), "-e", str(events)]
    done = subprocess.run([*base, "--period", "1999-01"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "period '1999-01' has no candidates" in " ".join(done.stderr.split())
    done = subprocess.run([*base, "--min-coverage", "50"], capture_output=True, text=True)
    assert done.returncode == 2 and "'50' is above 1: write 50%" in done.stderr
    res = runner.invoke(app, ["check", str(DEFINITION), "-e", str(events), "-f", "csv"])
    assert res.exit_code == 2


def test_cli_workspace_without_ratings_export(tmp_path: Path) -> None:
    """The example helpdesk export ingested without its ratings file: a deliberately thin
    workspace, checked against pandas on the same events (events.csv without ratings)."""
    import truecount.cli.workspace_cmds  # noqa: F401  (registers init and ingest)

    support = ROOT / "examples" / "support"
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws)]).exit_code == 0
    mapping = ["--mapping", str(support / "mapping.yaml"), "-w", str(ws)]
    res = runner.invoke(app, ["ingest", str(support / "ticket_updates.csv"), *mapping])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["check", str(DEFINITION), "-w", str(ws), "--format", "json"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.stdout)
    assert data["missing"] == ["satisfied"]
    csv = pd.read_csv(support / "events.csv")
    csv["ts"] = pd.to_datetime(csv["ts"], utc=True).dt.tz_localize(None)
    csv = csv[csv["type"] != "rated"]
    ref = reference(csv)
    for cond in data["conditions"]:
        for p in cond["periods"]:
            r = ref["periods"][p["period"]]
            assert p["candidates"] == r["candidates"]
            if cond["name"] == "satisfied":
                assert p["covered"] == 0 and p["decided_by_if_no_data"] == r["candidates"]
            else:
                assert p["covered"] == r["not_reopened_covered"]


@pytest.mark.parametrize("folded", [False, True], ids=["grouped", "folded"])
@pytest.mark.parametrize("name", ["full", "no_ratings", "thin_ratings", "no_values"])
def test_check_on_the_counts_verdict_table(
    name: str, folded: bool, request: pytest.FixtureRequest
) -> None:
    """The report counts once and checks on the same connection, reading the count's verdict
    table instead of running the verdict query again, and (folded) the coverage's event counts
    the count added to it instead of grouping the events again; the figures are still
    pandas'."""
    from truecount.engine.check import check_source
    from truecount.engine.coverage import COVERAGE_PREFIX, coverage_counts
    from truecount.engine.run import VERDICTS_TABLE, count

    table = request.getfixturevalue(name)
    definition = load_definition(DEFINITION)
    extra = coverage_counts(definition) if folded else []
    assert not folded or extra, "the demo definition's coverage can be folded"
    result = count(definition, table, event_counts=extra)
    try:
        cols = [str(r[0]) for r in result.con.execute(f"DESCRIBE {VERDICTS_TABLE}").fetchall()]
        assert any(c.startswith(COVERAGE_PREFIX) for c in cols) == folded
        checked = check_source(
            definition, result.source, as_of=result.as_of, verdicts=VERDICTS_TABLE
        )
    finally:
        result.close()
    if name == "no_values":
        plain = check(definition, table)
        assert checked.to_json() == plain.to_json()
    else:
        assert_matches_reference(checked, table)


@pytest.mark.parametrize(
    "example", sorted(p.name for p in (ROOT / "examples").glob("*.yaml")), ids=str
)
def test_folded_coverage_equals_grouped_on_every_example(example: str, full: pa.Table) -> None:
    """Every example definition, on the support export: the coverage read from the count's
    added event counts equals the one that groups the events itself, figure for figure, and
    the verdicts are unchanged by the added columns."""
    from truecount.engine.check import check_source
    from truecount.engine.coverage import COVERAGE_PREFIX, coverage_counts
    from truecount.engine.run import VERDICTS_TABLE, count

    definition = load_definition(ROOT / "examples" / example)
    results = []
    verdicts = []
    for extra in ([], coverage_counts(definition)):
        result = count(definition, full, event_counts=extra)
        try:
            results.append(
                check_source(
                    definition, result.source, as_of=result.as_of, verdicts=VERDICTS_TABLE
                ).to_json()
            )
            cols = [
                str(r[0])
                for r in result.con.execute(f"DESCRIBE {VERDICTS_TABLE}").fetchall()
                if not str(r[0]).startswith(COVERAGE_PREFIX)
            ]
            verdicts.append(
                result.con.execute(
                    f"SELECT {', '.join(chr(34) + c + chr(34) for c in cols)} "
                    f"FROM {VERDICTS_TABLE} ORDER BY ALL"
                ).fetchall()
            )
        finally:
            result.close()
    assert results[0] == results[1]
    assert verdicts[0] == verdicts[1]


@pytest.mark.parametrize("in_place", [False, True], ids=["table", "parquet"])
def test_caveats_found_with_and_without_escaped_keys(
    full: pa.Table, in_place: bool, tmp_path: Path
) -> None:
    """Caveats are found by a text search before the JSON is parsed; a key spelled with a
    \\u escape is still found (the text search lets such rows through to the parser). Parquet
    read in place is searched as the file's text (the events' text view), a table as JSON."""
    ev = full.to_pandas()
    first = sorted(ev["entity_id"].unique())[:3]
    plain = '{"caveat": "no update counter"}'
    escaped = '{"c\\u0061veat": "no update counter"}'
    ev["attrs"] = ev["attrs"].astype(object)
    ev.loc[ev["entity_id"] == first[0], "attrs"] = plain
    ev.loc[ev["entity_id"] == first[1], "attrs"] = escaped
    expected_events = int(ev["entity_id"].isin(first[:2]).sum())
    events: Any = ev
    if in_place:
        events = tmp_path / "caveats.parquet"
        pq.write_table(pa.Table.from_pandas(ev, preserve_index=False), events)
    result = check(load_definition(DEFINITION), events)
    note = next(n for n in result.notes if "no update counter" in n)
    assert note.startswith(f"2 entities ({expected_events:,} events)")


def test_counts_that_share_a_where_across_types_and_actors(full: pa.Table) -> None:
    # Three filters test the same `value >= 4` on different types and actors: the scan counts
    # the test once per type and actor group and each filter adds up its own groups, which
    # must give what pandas counts filter by filter.
    rng = np.random.default_rng(5)
    is_message = pc.equal(full.column("type"), "message").to_numpy(zero_copy_only=False)
    values = full.column("value").to_numpy(zero_copy_only=False).astype(float)
    drawn = rng.integers(1, 6, full.num_rows).astype(float)
    drawn[rng.random(full.num_rows) < 0.3] = np.nan  # some messages carry no value
    values = np.where(is_message, drawn, values)
    table = full.set_column(
        full.schema.get_field_index("value"),
        "value",
        pa.array(values, pa.float64(), from_pandas=True),
    )
    text = (
        DEF_HEAD
        + """
conditions:
  liked:
    exists: {type: rated, where: "value >= 4"}
  ai_high:
    exists: {type: message, actor: ai, where: "value >= 4"}
  people_high:
    exists: {type: message, actor: human, where: "value >= 4"}
  any_high:
    exists: {type: message, where: "value >= 4"}
"""
    )
    result = check(parse_definition(text), table)
    ev = table.to_pandas()
    ev = ev[ev["ts"] <= ev["ts"].max()]
    for cond, (kind, actor) in zip(
        result.conditions,
        [("rated", None), ("message", "ai"), ("message", "human"), ("message", None)],
        strict=True,
    ):
        of_type = ev[ev["type"] == kind]
        mine = of_type if actor is None else of_type[of_type["actor"] == actor]
        need = cond.needs[0]
        assert need.events_of_type == len(of_type), cond.name
        assert need.events_by_actor == len(mine), cond.name
        assert [f.events for f in need.fields] == [int(mine["value"].notna().sum())], cond.name
        assert need.events_usable == int(mine["value"].notna().sum()), cond.name
        assert need.events_matching == int((mine["value"] >= 4).sum()), cond.name
        assert cond.to_json()["events_matching"] == need.events_matching, cond.name
    assert result.conditions[1].needs[0].events_matching > 0
