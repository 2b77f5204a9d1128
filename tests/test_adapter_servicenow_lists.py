"""ServiceNow list exports (labels, legacy names, local date formats, no update counter) and
single-record Table API responses: events, quarantine and verdicts, each checked against an
expectation computed here from the fixture files with csv/json and plain Python."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

import truecount.library
from truecount.adapters import ingest_source
from truecount.definition.load import parse_definition
from truecount.engine.check import check
from truecount.engine.run import count
from truecount.errors import InputError
from truecount.ingest import ingest_files
from truecount.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "servicenow"
AS_OF = dt.datetime(2026, 3, 31)

#: Header names (lower case) -> field, written out here from the base instance's labels.
NAMES = {
    "number": "number",
    "state": "state",
    "incident_state": "state",
    "updated": "sys_updated_on",
    "sys_updated_on": "sys_updated_on",
    "sys_updated_at": "sys_updated_on",
    "updated by": "sys_updated_by",
    "sys_updated_by": "sys_updated_by",
    "updates": "sys_mod_count",
    "opened": "opened_at",
    "opened_at": "opened_at",
    "assigned to": "assigned_to",
    "assigned_to": "assigned_to",
    "resolution code": "close_code",
    "close_code": "close_code",
}
CODES = {"new": "1", "in progress": "2", "on hold": "3", "resolved": "6", "closed": "7"}
CODES["canceled"] = "8"
CLOSED = {"6", "7"}
AI = {"virtual.agent", "now.assist", "virtual agent", "now assist"}

BERLIN = ("Europe/Berlin", "dd/MM/yyyy HH:mm:ss", "%d/%m/%Y %H:%M:%S")
NEW_YORK = ("America/New_York", "MM-dd-yyyy hh:mm:ss a", "%m-%d-%Y %I:%M:%S %p")


# --------------------------------------------------------------------------- reading fixtures


@dataclass(frozen=True)
class Update:
    record: int
    number: str
    ts: dt.datetime  # UTC
    mod: int | None
    state: str
    by: str | None
    fields: tuple[tuple[str, str | None], ...]  # the whole row, to tell repeats


def utc(text: str, zone: str, fmt: str) -> dt.datetime:
    local = dt.datetime.strptime(text, fmt).replace(tzinfo=ZoneInfo(zone))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def read_list(name: str, zone: str, fmt: str) -> list[Update]:
    """Every row of a list export, under field names, with '?' and '' as no value."""
    out = []
    with (FIX / name).open(newline="", encoding="utf-8") as handle:
        for i, row in enumerate(csv.DictReader(handle), 1):
            f = {
                NAMES[k.lower()]: (None if v in ("", "?") else v)
                for k, v in row.items()
                if k.lower() in NAMES
            }
            mod = f.get("sys_mod_count")
            out.append(
                Update(
                    record=i,
                    number=str(f["number"]),
                    ts=utc(str(f["sys_updated_on"]), zone, fmt),
                    mod=None if mod is None else int(mod),
                    state=CODES[str(f["state"]).lower()],
                    by=f.get("sys_updated_by"),
                    fields=tuple(sorted(row.items())),
                )
            )
    return out


def actor(user: str | None) -> str | None:
    if user is None:
        return None
    return "ai" if user.lower() in AI else "system" if user == "system" else "human"


@dataclass
class Expected:
    events: set[tuple[str, str, dt.datetime, str, str | None]]  # id, entity, ts, type, actor
    duplicate: int
    tied_out: list[int]  # records set aside: same second, no counter


def expected(rows: list[Update], tie_order: str = "counter") -> Expected:
    """status_changed / closed / reopened per update, walking each incident in (time,
    counter) order, or (time, file order) without a counter when tie_order allows."""
    firsts: dict[tuple[Any, ...], Update] = {}
    duplicate = 0
    for row in rows:
        key = (row.number, row.mod) if row.mod is not None else (row.number, row.fields)
        if key in firsts:
            duplicate += 1
        else:
            firsts[key] = row
    same_time: dict[tuple[str, dt.datetime], list[Update]] = defaultdict(list)
    for row in firsts.values():
        same_time[(row.number, row.ts)].append(row)
    tied = {
        r.record
        for group in same_time.values()
        if len(group) > 1 and group[0].mod is None
        for r in group
    }
    tied_out = (
        sorted(r.record for r in rows if r.record in tied or _repeat_of(r, firsts) in tied)
        if tie_order == "counter"
        else []
    )
    by_incident: dict[str, list[Update]] = defaultdict(list)
    for row in firsts.values():
        if row.record not in tied_out:
            by_incident[row.number].append(row)
    events: set[tuple[str, str, dt.datetime, str, str | None]] = set()
    for number, updates in by_incident.items():
        order = sorted(
            updates,
            key=lambda r: (
                r.ts,
                r.mod if r.mod is not None else 0,
                -r.record if tie_order == "reverse_file" else r.record,
            ),
        )
        previous: str | None = None
        for i, row in enumerate(order):
            if row.mod is not None:
                rid = f"servicenow:incident:{number}:{row.mod}"
            else:
                group = same_time[(number, row.ts)]
                rid = f"servicenow:incident:{number}:at:{row.ts:%Y-%m-%dT%H:%M:%S}"
                if len(group) > 1:
                    rank = sorted(r.record for r in group)
                    if tie_order == "reverse_file":
                        rank.reverse()
                    rid += f"#{rank.index(row.record) + 1}"
            who = actor(row.by)
            events.add((rid, number, row.ts, "status_changed", who))
            if row.state in CLOSED and (
                (i == 0 and row.mod == 0) or (i > 0 and previous not in CLOSED)
            ):
                events.add((rid + "/closed", number, row.ts, "closed", who))
            if i > 0 and previous in CLOSED and row.state not in CLOSED:
                events.add((rid + "/reopened", number, row.ts, "reopened", who))
            previous = row.state
    return Expected(events, duplicate, tied_out)


def _repeat_of(row: Update, firsts: dict[tuple[Any, ...], Update]) -> int:
    key = (row.number, row.mod) if row.mod is not None else (row.number, row.fields)
    return firsts[key].record


def ratings() -> dict[str, list[tuple[dt.datetime, float]]]:
    out: dict[str, list[tuple[dt.datetime, float]]] = defaultdict(list)
    with (FIX / "survey_results.csv").open(newline="", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            when = dt.datetime.strptime(r["taken_on"], "%Y-%m-%d %H:%M:%S")
            out[r["trigger_id"]].append((when, float(r["actual_value"])))
    return out


def strict_verdicts(events: set[tuple[str, str, dt.datetime, str, str | None]]) -> dict[str, str]:
    """support_resolution_strict: the first AI close; no reopen within 14 days; the last
    rating within 7 days is 4 or more (none: not counted); pending until 14 days passed."""
    closes = sorted((ts, e) for _, e, ts, t, a in events if t == "closed" and a == "ai")
    anchors: dict[str, dt.datetime] = {}
    for ts, entity in closes:
        anchors.setdefault(entity, ts)
    rated = ratings()
    out = {}
    for entity, at in anchors.items():
        end = at + dt.timedelta(days=14)
        if end > AS_OF:
            out[entity] = "pending"
            continue
        reopened = any(
            e == entity and t == "reopened" and at <= ts <= end for _, e, ts, t, _ in events
        )
        week = sorted(r for r in rated.get(entity, []) if at <= r[0] <= at + dt.timedelta(days=7))
        ok = bool(week) and week[-1][1] >= 4 and not reopened
        out[entity] = "counted" if ok else "not_counted"
    return out


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def ingest(con: duckdb.DuckDBPyConnection, *paths: Path, **options: str) -> list[Any]:
    return list(ingest_source(con, "servicenow", list(paths), options=options).files)


def core(con: duckdb.DuckDBPyConnection) -> set[tuple[Any, ...]]:
    return set(
        con.execute(
            "SELECT event_id, entity_id, ts, type, actor FROM events "
            "WHERE type IN ('status_changed', 'closed', 'reopened')"
        ).fetchall()
    )


def strict() -> Any:
    text = resources.files(truecount.library).joinpath("support_resolution_strict.yaml")
    return parse_definition(text.read_text(), "support_resolution_strict.yaml")


def verdicts_of(tmp_path: Path, name: str, **options: str) -> tuple[Workspace, dict[str, str]]:
    ws = Workspace.init(tmp_path / "ws")
    with ws.connect() as c:
        ingest_source(c, "servicenow", [FIX / name], options=options)
    ingest_files(ws, [FIX / "survey_results.csv"], mapping=FIX / "survey_mapping.yaml")
    table = count(strict(), ws, as_of=AS_OF).verdicts.to_pylist()
    return ws, {r["entity_id"]: r["status"] for r in table}


# --------------------------------------------------------------------------- label lists


def test_label_list_gives_the_same_events_as_the_api(con: duckdb.DuckDBPyConnection) -> None:
    """The same updates as a List view export (labels, Berlin time, dd/MM/yyyy, newest
    first, '?') and as Table API records: the same events, attribute by attribute."""
    zone, pattern, _ = BERLIN

    def events(path: Path, **options: str) -> list[tuple[Any, ...]]:
        c = duckdb.connect()
        ingest_source(c, "servicenow", [path], options=options)
        rows = c.execute(
            "SELECT event_id, entity_id, ts, type, actor, seq, CAST(attrs AS VARCHAR) "
            "FROM events ORDER BY event_id"
        ).fetchall()
        c.close()
        out = []
        for *head, attrs in rows:
            a = json.loads(attrs)
            # a list shows the channel's label and no sys_id; the kind differs by shape
            for key in ("channel", "sys_id", "record", "origin"):
                a.pop(key, None)
            out.append((*head, a))
        return out

    api = events(FIX / "incident_list_api.json")
    listed = events(FIX / "incident_list_labels.csv", timezone=zone, time_format=pattern)
    assert api and listed == api
    # Days above 12 prove the day-first order, so the file reads the same without the option.
    assert events(FIX / "incident_list_labels.csv", timezone=zone) == api


def test_label_list_events_match_the_fixture(con: duckdb.DuckDBPyConnection) -> None:
    zone, pattern, fmt = BERLIN
    rows = read_list("incident_list_labels.csv", zone, fmt)
    want = expected(rows)
    (got,) = ingest(con, FIX / "incident_list_labels.csv", timezone=zone, time_format=pattern)
    assert (got.rows_read, got.loaded, got.quarantined) == (len(rows), len(rows), 0)
    assert core(con) == want.events
    # the "Resolved" column (a time) is not the state: every state is read from "State"
    got_to = dict(
        con.execute(
            "SELECT event_id, attrs->>'to_code' FROM events WHERE type = 'status_changed'"
        ).fetchall()
    )
    assert got_to == {f"servicenow:incident:{r.number}:{r.mod}": r.state for r in rows}
    # a '?' is no value
    codes = con.execute(
        "SELECT DISTINCT attrs->>'close_code' FROM events WHERE attrs->>'to' = 'New'"
    ).fetchall()
    assert codes == [(None,)]


def test_label_list_verdicts(tmp_path: Path) -> None:
    zone, pattern, fmt = BERLIN
    want = strict_verdicts(expected(read_list("incident_list_labels.csv", zone, fmt)).events)
    _, got = verdicts_of(tmp_path, "incident_list_labels.csv", timezone=zone, time_format=pattern)
    assert got == want
    assert got["INC0010008"] == "not_counted"  # reopened in the same second, by the counter
    assert "counted" in got.values()


# --------------------------------------------------------------------------- no counter


def test_legacy_list_without_counter(con: duckdb.DuckDBPyConnection) -> None:
    """Legacy names, 12-hour New York times, no counter: same-second updates are set aside
    (their order is unknown), an identical repeat is a duplicate, and a first row already
    Resolved gives no close."""
    zone, _, fmt = NEW_YORK
    rows = read_list("incident_list_legacy.csv", zone, fmt)
    want = expected(rows)
    (got,) = ingest(con, FIX / "incident_list_legacy.csv", timezone=zone)
    assert want.tied_out and want.duplicate == 1
    assert got.rows_read == len(rows)
    assert (got.duplicate, got.quarantined) == (want.duplicate, len(want.tied_out))
    assert got.loaded == len(rows) - want.duplicate - len(want.tied_out)
    assert core(con) == want.events
    reasons = con.execute("SELECT row_number, column_name, reason FROM quarantine").fetchall()
    assert sorted(r[0] for r in reasons) == want.tied_out
    assert all(r[1] == "sys_updated_at" and "tie_order=file" in r[2] for r in reasons)
    assert not con.execute(
        "SELECT 1 FROM events WHERE entity_id = 'INC0010405' AND type = 'closed'"
    ).fetchall()
    # every event says what the missing counter costs
    caveats = con.execute("SELECT DISTINCT attrs->>'caveat' FROM events").fetchall()
    assert len(caveats) == 1 and "without an update counter" in str(caveats[0][0])


@pytest.mark.parametrize("tie_order", ["file", "reverse_file"])
def test_tie_order_decides_same_second_updates(
    con: duckdb.DuckDBPyConnection, tie_order: str
) -> None:
    zone, _, fmt = NEW_YORK
    rows = read_list("incident_list_legacy.csv", zone, fmt)
    want = expected(rows, tie_order)
    (got,) = ingest(con, FIX / "incident_list_legacy.csv", timezone=zone, tie_order=tie_order)
    assert got.quarantined == 0 and core(con) == want.events
    reopened = {e for e in want.events if e[1] == "INC0010404" and e[3] == "reopened"}
    # the file lists the AI's resolve before the caller's reopen: read in that order the
    # reopen is seen; read newest first, the resolve comes last and nothing reopens
    assert bool(reopened) is (tie_order == "file")


def test_legacy_list_verdicts(tmp_path: Path) -> None:
    zone, _, fmt = NEW_YORK
    want = strict_verdicts(
        expected(read_list("incident_list_legacy.csv", zone, fmt), "file").events
    )
    _, got = verdicts_of(tmp_path, "incident_list_legacy.csv", timezone=zone, tie_order="file")
    assert got == want
    assert got["INC0010401"] == "counted" and got["INC0010402"] == "not_counted"
    assert got["INC0010404"] == "not_counted" and "INC0010405" not in got


def test_check_states_the_missing_counter(tmp_path: Path) -> None:
    zone, _, _ = NEW_YORK
    ws, _ = verdicts_of(tmp_path, "incident_list_legacy.csv", timezone=zone, tie_order="file")
    notes = check(strict(), ws, as_of=AS_OF).notes
    incidents = {r.number for r in read_list("incident_list_legacy.csv", *NEW_YORK[::2])}
    said = {
        "tie" if "ordered by their place in the file" in n else "plain": int(n.split(" ")[0])
        for n in notes
        if "without an update counter" in n
    }
    # every incident of the file; the one with same-second updates also read by file order
    assert said == {"plain": len(incidents), "tie": 1}


def test_check_is_silent_with_a_counter(tmp_path: Path) -> None:
    zone, pattern, _ = BERLIN
    ws, _ = verdicts_of(tmp_path, "incident_list_labels.csv", timezone=zone, time_format=pattern)
    assert not [n for n in check(strict(), ws, as_of=AS_OF).notes if "counter" in n]


# --------------------------------------------------------------------------- dates


def test_ambiguous_dates_are_refused_not_guessed(tmp_path: Path) -> None:
    """Every day is 12 or less: a date whose day and month differ reads two ways, and is
    quarantined naming the file, row, column, value and the option; 03-03 reads one way."""
    name = "incident_list_ambiguous.csv"
    with (FIX / name).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    two_ways = [
        i
        for i, r in enumerate(rows, 1)
        if any(r[c][:2] != r[c][3:5] for c in ("Updated", "Opened"))
    ]
    assert 0 < len(two_ways) < len(rows)
    ws = Workspace.init(tmp_path / "ws")
    with ws.connect() as c:
        (got,) = ingest(c, FIX / name)
        reasons = c.execute(
            "SELECT file, row_number, column_name, reason FROM quarantine ORDER BY row_number"
        ).fetchall()
    assert (got.quarantined, got.loaded) == (len(two_ways), len(rows) - len(two_ways))
    assert [r[1] for r in reasons] == two_ways
    for file, row, column, reason in reasons:
        value = rows[row - 1][column]
        assert name in file and column in ("Updated", "Opened")
        assert "ambiguous" in reason and f"'{value}'" in reason and "time_format" in reason

    def times(pattern: str, fmt: str) -> None:
        c = duckdb.connect()
        (loaded,) = ingest(c, FIX / name, time_format=pattern)
        want = {
            (f"servicenow:incident:{r['Number']}:{r['Updates']}", utc(r["Updated"], "UTC", fmt))
            for r in rows
        }
        got_ts = set(
            c.execute("SELECT event_id, ts FROM events WHERE type = 'status_changed'").fetchall()
        )
        assert loaded.quarantined == 0 and got_ts == want
        c.close()

    times("dd-MM-yyyy HH:mm", "%d-%m-%Y %H:%M")
    times("MM-dd-yyyy HH:mm", "%m-%d-%Y %H:%M")  # the option decides, nothing else


def test_a_file_with_both_orders_is_refused(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "Number,State,Updated,Updates\n"
        "INC1,New,13/01/2026 09:00,0\n"  # only day first
        "INC1,Resolved,01/14/2026 09:00,1\n",  # only month first
        encoding="utf-8",
    )
    (got,) = ingest(con, path)
    assert got.quarantined == 2
    reasons = [r[0] for r in con.execute("SELECT reason FROM quarantine").fetchall()]
    assert all("only read day first and others that only read month first" in r for r in reasons)


def test_month_first_is_proven_by_the_file(con: duckdb.DuckDBPyConnection) -> None:
    """The legacy file has days above 12 in the second place: read month first, no option."""
    zone, pattern, fmt = NEW_YORK
    rows = read_list("incident_list_legacy.csv", zone, fmt)
    (a,) = ingest(con, FIX / "incident_list_legacy.csv", timezone=zone, tie_order="file")
    c = duckdb.connect()
    (b,) = ingest(
        c, FIX / "incident_list_legacy.csv", timezone=zone, tie_order="file", time_format=pattern
    )
    assert core(con) == core(c) == expected(rows, "file").events
    assert (a.loaded, a.quarantined) == (b.loaded, b.quarantined)
    c.close()


# --------------------------------------------------------------------------- options


def test_columns_option_names_other_columns(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_text(
        "Number,State,Updated,Changed by,Seq\n"
        "INC7,New,2026-01-05 09:00:00,virtual.agent,0\n"
        "INC7,Resolved,2026-01-05 09:20:00,virtual.agent,1\n",
        encoding="utf-8",
    )
    ingest(con, path, columns=json.dumps({"Changed by": "sys_updated_by", "Seq": "sys_mod_count"}))
    got = set(
        con.execute("SELECT event_id, actor, seq FROM events WHERE type = 'closed'").fetchall()
    )
    assert got == {("servicenow:incident:INC7:1/closed", "ai", 1)}
    c = duckdb.connect()
    ingest(c, path)  # without it: no updater, no counter, so no close on a first row either
    assert c.execute("SELECT count(*) FROM events WHERE actor IS NOT NULL").fetchall() == [(0,)]
    c.close()


def test_null_markers_option(con: duckdb.DuckDBPyConnection) -> None:
    zone = NEW_YORK[0]
    ingest(
        con, FIX / "incident_list_legacy.csv", timezone=zone, tie_order="file", null_markers="[]"
    )
    codes = {
        r[0]
        for r in con.execute(
            "SELECT attrs->>'close_code' FROM events WHERE attrs->>'to' = 'New'"
        ).fetchall()
    }
    assert codes == {"?"}


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("time_format", "dd/MM/yyyy HH:mm Z", "is not a date or time pattern"),
        ("time_format", "HH:mm:ss", "has no year"),
        ("columns", '{"Updated": "updated"}', "not a field this source reads"),
        ("tie_order", "random", "tie_order"),
    ],
)
def test_bad_list_options_are_refused(
    con: duckdb.DuckDBPyConnection, key: str, value: str, words: str
) -> None:
    with pytest.raises(InputError, match=words):
        ingest(con, FIX / "incident_list_labels.csv", **{key: value})


# --------------------------------------------------------------------------- single records


def test_single_record_response_loads(con: duckdb.DuckDBPyConnection) -> None:
    record = json.loads((FIX / "incident_single.json").read_text())["result"]
    (got,) = ingest(con, FIX / "incident_single.json")
    assert (got.rows_read, got.loaded, got.quarantined) == (1, 1, 0)
    rows = con.execute(
        "SELECT event_id, type, ts, attrs->>'to_code', CAST(attrs->>'missing_updates' AS INT) "
        "FROM events WHERE type <> 'created'"
    ).fetchall()
    mod = int(record["sys_mod_count"])
    when = dt.datetime.strptime(record["sys_updated_on"], "%Y-%m-%d %H:%M:%S")
    # the incident's current row: its state, but not when it was entered (no close)
    assert rows == [
        (
            f"servicenow:incident:{record['number']}:{mod}",
            "status_changed",
            when,
            record["state"],
            mod,
        )
    ]


def test_single_record_polls_read_like_a_page(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    lines = (FIX / "incident_single_polls.jsonl").read_text().splitlines()
    records = [json.loads(line)["result"] for line in lines]
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"result": records}))
    ingest(con, FIX / "incident_single_polls.jsonl")
    c = duckdb.connect()
    ingest(c, page)
    events = "SELECT event_id, entity_id, ts, type, actor, seq FROM events ORDER BY event_id"
    assert con.execute(events).fetchall() == c.execute(events).fetchall()
    c.close()
    previous = None
    want = set()
    for r in records:
        first = previous is None and r["sys_mod_count"] == "0"
        if r["state"] in CLOSED and (first or (previous is not None and previous not in CLOSED)):
            when = dt.datetime.strptime(r["sys_updated_on"], "%Y-%m-%d %H:%M:%S")
            want.add((r["number"], when, actor(r["sys_updated_by"])))
        previous = r["state"]
    got = set(
        con.execute("SELECT entity_id, ts, actor FROM events WHERE type = 'closed'").fetchall()
    )
    assert got == want and len(want) == 1
