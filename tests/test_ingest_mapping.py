"""Mappings: validation errors with file:line:key, and every transformation they describe."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from truecount.errors import MappingError
from truecount.ingest import load_events_into, load_mapping

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "support"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


HISTORY_MAPPING = """\
truecount_mapping: 1
timezone: UTC
columns:
  entity_id: ticket
  ts: at
  seq: n
  actor: {column: who, map: {bot: ai, agent: human, customer: customer}, strict: true}
status_history:
  status: status
  closed_statuses: [solved, closed]
"""


def test_status_history_with_ties_broken_by_seq(tmp_path: Path) -> None:
    # Rows are deliberately out of order; rows 2 and 3 share a timestamp and only the
    # update number says the agent's 'open' (n=2) came before the bot's 'solved' (n=3).
    data = _write(
        tmp_path,
        "updates.csv",
        "ticket,n,at,status,who\n"
        "A,1,2026-01-01T10:00:00Z,new,customer\n"
        "A,3,2026-01-01T10:05:00Z,solved,bot\n"
        "A,2,2026-01-01T10:05:00Z,open,agent\n"
        "A,4,2026-01-03T09:00:00Z,open,customer\n"
        "A,5,2026-01-03T10:00:00Z,closed,agent\n"
        "A,6,2026-01-04T10:00:00Z,solved,agent\n"
        "B,1,2026-01-02T00:00:00Z,solved,bot\n",
    )
    mapping = _write(tmp_path, "map.yaml", HISTORY_MAPPING)
    con = duckdb.connect()
    report = load_events_into(con, [data], mapping=mapping)
    assert (report.rows_read, report.loaded, report.quarantined) == (7, 7, 0)
    rows = con.execute(
        "SELECT entity_id, seq, type, actor, attrs->>'from', attrs->>'to' FROM events "
        "ORDER BY entity_id, ts, seq, type DESC"
    ).fetchall()
    assert rows == [
        ("A", 1, "status_changed", "customer", None, "new"),
        ("A", 2, "status_changed", "human", "new", "open"),
        ("A", 3, "status_changed", "ai", "open", "solved"),
        ("A", 3, "closed", "ai", "open", "solved"),
        ("A", 4, "status_changed", "customer", "solved", "open"),
        ("A", 4, "reopened", "customer", "solved", "open"),
        ("A", 5, "status_changed", "human", "open", "closed"),
        ("A", 5, "closed", "human", "open", "closed"),
        ("A", 6, "status_changed", "human", "closed", "solved"),
        ("B", 1, "status_changed", "ai", None, "solved"),
        ("B", 1, "closed", "ai", None, "solved"),
    ]
    assert report.events_loaded == 11
    again = load_events_into(con, [data], mapping=mapping)
    assert (again.loaded, again.duplicate, again.events_loaded) == (0, 7, 0)


def test_timezone_conversion_across_dst(tmp_path: Path) -> None:
    local = [
        "03/07/2026 12:00",  # EST, UTC-5
        "03/08/2026 01:59",  # just before the change
        "03/08/2026 03:00",  # just after: EDT, UTC-4
        "03/09/2026 12:00",
        "11/01/2026 12:00",  # back on EST
    ]
    data = _write(
        tmp_path,
        "r.csv",
        "id,when,score\n" + "".join(f"r{i},{t},4\n" for i, t in enumerate(local)),
    )
    mapping = _write(
        tmp_path,
        "m.yaml",
        "truecount_mapping: 1\n"
        "timezone: America/New_York\n"
        "columns:\n"
        "  entity_id: id\n"
        "  ts: {column: when, format: '%m/%d/%Y %H:%M'}\n"
        "  type: {const: rated}\n"
        "  value: score\n",
    )
    con = duckdb.connect()
    load_events_into(con, [data], mapping=mapping)
    got = [r[0] for r in con.execute("SELECT ts FROM events ORDER BY entity_id").fetchall()]
    zone = zoneinfo.ZoneInfo("America/New_York")
    want = [
        dt.datetime.strptime(t, "%m/%d/%Y %H:%M")
        .replace(tzinfo=zone)
        .astimezone(dt.UTC)
        .replace(tzinfo=None)
        for t in local
    ]
    assert got == want
    assert got[2] - got[1] == dt.timedelta(minutes=1)  # 01:59 EST -> 03:00 EDT


def test_offsets_win_over_the_mapping_zone(tmp_path: Path) -> None:
    data = _write(
        tmp_path,
        "e.csv",
        "id,ts\nx,2026-06-01T12:00:00+02:00\ny,2026-06-01T12:00:00\n",
    )
    mapping = _write(
        tmp_path,
        "m.yaml",
        "truecount_mapping: 1\ntimezone: Europe/Berlin\n"
        "columns: {entity_id: id, ts: ts, type: {const: created}}\n",
    )
    con = duckdb.connect()
    load_events_into(con, [data], mapping=mapping)
    got = con.execute("SELECT entity_id, ts FROM events ORDER BY 1").fetchall()
    assert got == [("x", dt.datetime(2026, 6, 1, 10)), ("y", dt.datetime(2026, 6, 1, 10))]


def test_jsonl_paths_constants_value_maps_and_attrs(tmp_path: Path) -> None:
    records = [
        {"id": 1, "ticket": {"id": "T1"}, "at": 1767225600, "csat": "good", "via": {"ch": "chat"}},
        {"id": 2, "ticket": {"id": "T2"}, "at": 1767312000, "csat": "bad", "via": {"ch": "mail"}},
        {"id": 3, "ticket": {"id": "T3"}, "at": 1767312000, "csat": "meh", "via": None},
    ]
    data = tmp_path / "r.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    mapping = _write(
        tmp_path,
        "m.yaml",
        """\
truecount_mapping: 1
columns:
  event_id: id
  entity_id: $.ticket.id
  ts: {column: at, format: epoch}
  type: {const: rated}
  value: {column: csat, map: {good: 5, bad: 1}, strict: true}
  attrs:
    channel: $.via.ch
    source_id: id
""",
    )
    con = duckdb.connect()
    report = load_events_into(con, [data], mapping=mapping)
    assert (report.loaded, report.quarantined) == (2, 1)
    got = con.execute(
        "SELECT event_id, entity_id, ts, value, attrs FROM events ORDER BY 1"
    ).fetchall()
    assert [(g[0], g[1], g[2], g[3]) for g in got] == [
        ("1", "T1", dt.datetime(2026, 1, 1), 5.0),
        ("2", "T2", dt.datetime(2026, 1, 2), 1.0),
    ]
    assert json.loads(got[0][4]) == {"channel": "chat", "source_id": 1}
    bad = con.execute("SELECT row_number, column_name, reason FROM quarantine").fetchall()
    assert bad == [(3, "csat", "unmapped value 'meh' (the mapping lists: good, bad)")]


def test_declared_range_and_strict_enum_quarantine(tmp_path: Path) -> None:
    data = _write(
        tmp_path,
        "r.csv",
        "ticket_id,score,rated_at\nT1,5,2026-01-01 10:00\nT2,7,2026-01-01 10:00\n"
        "T3,0,2026-01-01 10:00\nT4,x,2026-01-01 10:00\n",
    )
    mapping = _write(
        tmp_path,
        "m.yaml",
        "truecount_mapping: 1\ncolumns:\n  entity_id: ticket_id\n  ts: rated_at\n"
        "  type: {const: rated}\n  value: {column: score, min: 1, max: 5}\n",
    )
    con = duckdb.connect()
    report = load_events_into(con, [data], mapping=mapping)
    assert (report.loaded, report.quarantined) == (1, 3)
    got = con.execute(
        "SELECT row_number, column_name, reason FROM quarantine ORDER BY 1"
    ).fetchall()
    assert got == [
        (2, "score", "value 7.0 is above the declared max 5"),
        (3, "score", "value 0.0 is below the declared min 1"),
        (4, "score", "not a number: 'x'"),
    ]


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    mapping = _write(
        tmp_path,
        "m.yaml",
        "truecount_mapping: 1\ncolumns:\n  entity_id: a\n  ts:\n    column: b\n"
        "    formt: '%Y'\n  type: {const: x}\n  entiti: c\n",
    )
    with pytest.raises(MappingError) as info:
        load_mapping(mapping)
    problems = {p.location.key: p for p in info.value.problems}
    formt = problems["columns.ts.formt"]
    assert formt.location.line == 6 and formt.location.file == str(mapping)
    assert "did you mean 'format'?" in (formt.hint or "")
    entiti = problems["columns.entiti"]
    assert entiti.location.line == 8
    assert "did you mean 'entity_id'?" in (entiti.hint or "")


def test_top_level_problems(tmp_path: Path) -> None:
    bad_version = _write(tmp_path, "v.yaml", "truecount_mapping: 2\ncolumns: {}\n")
    with pytest.raises(MappingError, match="truecount_mapping: 1"):
        load_mapping(bad_version)
    typo = _write(tmp_path, "t.yaml", "truecount_mapping: 1\ncolums: {}\n")
    with pytest.raises(MappingError) as info:
        load_mapping(typo)
    assert any("did you mean 'columns'?" in (p.hint or "") for p in info.value.problems)
    zone = _write(
        tmp_path,
        "z.yaml",
        "truecount_mapping: 1\ntimezone: America/New_Yrok\n"
        "columns: {entity_id: a, ts: b, type: c}\n",
    )
    with pytest.raises(MappingError, match="America/New_York") as zinfo:
        load_mapping(zone)
    assert zinfo.value.problems[0].location.line == 2
    history_type = _write(
        tmp_path,
        "h.yaml",
        "truecount_mapping: 1\ncolumns: {entity_id: a, ts: b, type: c, seq: d}\n"
        "status_history: {status: s}\n",
    )
    with pytest.raises(MappingError, match=r"remove columns\.type"):
        load_mapping(history_type)
    yaml_error = _write(tmp_path, "y.yaml", "truecount_mapping: 1\ncolumns: [a\n")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(yaml_error)


def test_missing_column_names_mapping_key_and_file_columns(tmp_path: Path) -> None:
    data = _write(tmp_path, "r.csv", "ticket_id,score,rated\nT1,5,2026-01-01\n")
    mapping = _write(
        tmp_path,
        "m.yaml",
        "truecount_mapping: 1\ncolumns:\n  entity_id: ticket_id\n"
        "  ts: {column: rated_at}\n  type: {const: rated}\n",
    )
    with pytest.raises(MappingError) as info:
        load_events_into(duckdb.connect(), [data], mapping=mapping)
    p = info.value.problems[0]
    assert p.location.file == str(mapping)
    assert p.location.line == 4
    assert p.location.key == "columns.ts.column"
    assert "rated_at" in p.message
    assert "rated, score, ticket_id" in (p.hint or "")
    assert "did you mean 'rated'?" in (p.hint or "")


def test_path_needs_json_input(tmp_path: Path) -> None:
    data = _write(tmp_path, "r.csv", "a,b\n1,2026-01-01\n")
    mapping = _write(
        tmp_path,
        "m.yaml",
        "truecount_mapping: 1\ncolumns: {entity_id: $.a, ts: b, type: {const: x}}\n",
    )
    with pytest.raises(MappingError, match="JSON Lines"):
        load_events_into(duckdb.connect(), [data], mapping=mapping)


def test_example_export_against_pandas(tmp_path: Path) -> None:
    """Close / reopen / rating events from the example, recomputed with pandas."""
    con = duckdb.connect()
    updates = load_events_into(
        con, [EXAMPLES / "ticket_updates.csv"], mapping=EXAMPLES / "mapping.yaml"
    )
    ratings = load_events_into(
        con, [EXAMPLES / "ratings.csv"], mapping=EXAMPLES / "ratings_mapping.yaml"
    )
    assert updates.quarantined == 0 and ratings.quarantined == 0

    df = pd.read_csv(EXAMPLES / "ticket_updates.csv")
    df["ts"] = (
        pd.to_datetime(df["updated_at"], format="%m/%d/%Y %H:%M")
        .dt.tz_localize("America/New_York")
        .dt.tz_convert("UTC")
        .dt.tz_localize(None)
    )
    df = df.sort_values(["ticket_id", "ts", "update_no"])
    df["prev"] = df.groupby("ticket_id")["status"].shift()
    closed = {"solved", "closed"}
    is_closed = df["status"].isin(closed)
    was_closed = df["prev"].isin(closed)
    actor = df["author_role"].map({"bot": "ai", "agent": "human", "customer": "customer"})
    want_closed = sorted(
        zip(
            df.loc[is_closed & ~was_closed, "ticket_id"],
            df.loc[is_closed & ~was_closed, "ts"],
            actor[is_closed & ~was_closed],
            strict=True,
        )
    )
    want_reopened = sorted(
        zip(
            df.loc[was_closed & ~is_closed, "ticket_id"],
            df.loc[was_closed & ~is_closed, "ts"],
            strict=True,
        )
    )
    got_closed = con.execute(
        "SELECT entity_id, ts, actor FROM events WHERE type = 'closed' ORDER BY ALL"
    ).fetchall()
    got_reopened = con.execute(
        "SELECT entity_id, ts FROM events WHERE type = 'reopened' ORDER BY ALL"
    ).fetchall()
    assert got_closed == [(t, ts.to_pydatetime(), a) for t, ts, a in want_closed]
    assert got_reopened == [(t, ts.to_pydatetime()) for t, ts in want_reopened]
    assert {a for _, _, a in got_closed} == {"ai", "human"}
    # Some ticket is closed twice, some reopen is within 14 days and some after.
    firsts = pd.DataFrame(want_closed, columns=["t", "ts", "a"]).groupby("t").size()
    assert (firsts >= 2).any()

    rt = pd.read_csv(EXAMPLES / "ratings.csv")
    got_rated = con.execute(
        "SELECT entity_id, value FROM events WHERE type = 'rated' ORDER BY ALL"
    ).fetchall()
    assert got_rated == sorted(zip(rt["ticket_id"], rt["score"].astype(float), strict=True))
    assert {v for _, v in got_rated} & {4.0, 5.0} and {v for _, v in got_rated} & {1.0, 2.0, 3.0}


def test_canonical_example_matches_the_mapped_export() -> None:
    mapped = duckdb.connect()
    load_events_into(mapped, [EXAMPLES / "ticket_updates.csv"], mapping=EXAMPLES / "mapping.yaml")
    load_events_into(mapped, [EXAMPLES / "ratings.csv"], mapping=EXAMPLES / "ratings_mapping.yaml")
    canonical = duckdb.connect()
    report = load_events_into(canonical, [EXAMPLES / "events.csv"])
    assert report.quarantined == 0
    query = "SELECT event_id, entity_id, ts, type, actor, value, seq FROM events ORDER BY ALL"
    assert canonical.execute(query).fetchall() == mapped.execute(query).fetchall()


def _epoch_mapping(tmp_path: Path, unit: str) -> Path:
    """A mapping reading ``at`` as an epoch in ``unit`` (epoch or epoch_ms)."""
    return _write(
        tmp_path,
        "m.yaml",
        f"truecount_mapping: 1\ncolumns:\n  event_id: id\n  entity_id: t\n"
        f"  ts: {{column: at, format: {unit}}}\n  type: {{const: created}}\n",
    )


@pytest.mark.parametrize(
    ("unit", "good", "wrong", "hint"),
    [
        ("epoch", 1767225600, 1767225600000, "is milliseconds"),
        ("epoch_ms", 1767225600000, 1767225600, "is seconds"),
    ],
)
def test_epoch_in_the_other_unit_is_quarantined_not_1970(
    tmp_path: Path, unit: str, good: int, wrong: int, hint: str
) -> None:
    data = _write(tmp_path, "e.csv", f"id,t,at\n1,T1,{good}\n2,T2,{wrong}\n")
    con = duckdb.connect()
    report = load_events_into(con, [data], mapping=_epoch_mapping(tmp_path, unit))
    assert (report.loaded, report.quarantined) == (1, 1)
    assert con.execute("SELECT ts FROM events").fetchall() == [(dt.datetime(2026, 1, 1),)]
    ((row, column, reason),) = con.execute(
        "SELECT row_number, column_name, reason FROM quarantine"
    ).fetchall()
    assert (row, column) == (2, "at") and hint in reason


@pytest.mark.parametrize(("unit", "good"), [("epoch", 1767225600), ("epoch_ms", 1767225600000)])
def test_an_epoch_with_digit_separators_is_quarantined(
    tmp_path: Path, unit: str, good: int
) -> None:
    separated = f"{good:_}"  # DuckDB's cast would read it as the number
    data = _write(tmp_path, "e.csv", f"id,t,at\n1,T1,{good}\n2,T2,{separated}\n")
    con = duckdb.connect()
    report = load_events_into(con, [data], mapping=_epoch_mapping(tmp_path, unit))
    assert (report.loaded, report.quarantined) == (1, 1)
    ((row, column, reason),) = con.execute(
        "SELECT row_number, column_name, reason FROM quarantine"
    ).fetchall()
    assert (row, column) == (2, "at") and separated in reason
