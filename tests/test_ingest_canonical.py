"""Canonical files: round trips, idempotence, derived ids, quarantine and whole-file errors.

Expected values are computed independently (pandas, hashlib, hand-written lists), never by
reading back what the loader decided.
"""

from __future__ import annotations

import csv
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from truecount.errors import InputError
from truecount.ingest import load_events_into

ROWS = [
    # event_id, entity_id, ts (as written), type, actor, value, attrs
    ("e1", "t1", "2026-01-15T09:30:00Z", "closed", "ai", None, '{"channel": "chat"}'),
    ("e2", "t1", "2026-01-15T12:00:00+02:00", "rated", "customer", 4.0, None),
    ("e3", "t2", "2026-01-16 08:00:00", "closed", "human", None, None),
    ("e4", "t2", "2026-01-17T23:30:00-05:00", "reopened", "customer", None, '{"why": "x"}'),
    ("e5", "t3", "2026-01-18", "rated", None, 2.5, None),
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        ROWS, columns=["event_id", "entity_id", "ts", "type", "actor", "value", "attrs"]
    )


def _expected() -> pd.DataFrame:
    df = _frame()
    df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601").dt.tz_localize(None)
    df["attrs"] = [json.loads(a) if isinstance(a, str) else None for a in df["attrs"]]
    return df


def _write(df: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        records = df.to_dict(orient="records")
        with path.open("w", encoding="utf-8") as out:
            for r in records:
                r = {k: (None if pd.isna(v) else v) for k, v in r.items()}
                if r["attrs"] is not None:
                    r["attrs"] = json.loads(r["attrs"])
                out.write(json.dumps(r) + "\n")
    else:
        df.to_parquet(path, index=False)


def _events(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    df = con.execute(
        "SELECT event_id, entity_id, ts, type, actor, value, attrs, source "
        "FROM events ORDER BY event_id"
    ).df()
    df["attrs"] = [json.loads(a) if isinstance(a, str) else None for a in df["attrs"]]
    return df


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"events{suffix}"
    _write(_frame(), path)
    con = duckdb.connect()
    report = load_events_into(con, [path])
    assert (report.rows_read, report.loaded, report.duplicate, report.quarantined) == (5, 5, 0, 0)
    got = _events(con)
    want = _expected()
    assert list(got["event_id"]) == list(want["event_id"])
    assert list(got["ts"]) == list(want["ts"])
    assert list(got["type"]) == list(want["type"])
    assert [a if isinstance(a, str) else None for a in got["actor"]] == [
        a if isinstance(a, str) else None for a in want["actor"]
    ]
    assert [None if pd.isna(v) else v for v in got["value"]] == [
        None if pd.isna(v) else v for v in want["value"]
    ]
    assert list(got["attrs"]) == list(want["attrs"])
    assert list(got["source"]) == [f"{path.name}:{i}" for i in range(1, 6)]


def test_reingest_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    _write(_frame(), path)
    con = duckdb.connect()
    load_events_into(con, [path])
    again = load_events_into(con, [path, path])
    assert [(f.loaded, f.duplicate) for f in again.files] == [(0, 5), (0, 5)]
    assert con.execute("SELECT count(*) FROM events").fetchone() == (5,)
    log = con.execute("SELECT rows_read, loaded, duplicate FROM ingest_log ORDER BY 1").fetchall()
    assert len(log) == 3


def test_missing_event_id_is_hash_of_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "no_ids.csv"
    _frame().drop(columns=["event_id"]).to_csv(path, index=False)
    con = duckdb.connect()
    load_events_into(con, [path])
    got = con.execute("SELECT source, event_id FROM events ORDER BY source").fetchall()
    want = sorted(
        (f"no_ids.csv:{n}", hashlib.sha256(f"no_ids.csv:{n}".encode()).hexdigest()[:32])
        for n in range(1, 6)
    )
    assert got == want
    # Same file again: same ids, so nothing new.
    assert load_events_into(con, [path]).duplicate == 5


def test_repeated_event_id_in_one_file_keeps_first(tmp_path: Path) -> None:
    path = tmp_path / "rep.csv"
    path.write_text(
        "event_id,entity_id,ts,type\n"
        "a,t1,2026-01-01T00:00:00Z,closed\n"
        "a,t2,2026-01-02T00:00:00Z,closed\n"
        "b,t3,2026-01-03T00:00:00Z,closed\n"
    )
    con = duckdb.connect()
    report = load_events_into(con, [path])
    assert (report.loaded, report.duplicate) == (2, 1)
    assert con.execute("SELECT entity_id FROM events WHERE event_id = 'a'").fetchall() == [("t1",)]


def test_quarantine_reasons(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "event_id,entity_id,ts,type,value,attrs,seq\n"
        "1,t1,2026-01-01T00:00:00Z,closed,,,1\n"
        "2,,2026-01-01T00:00:00Z,closed,,,\n"
        "3,t1,31/01/2026,closed,,,\n"
        "4,t1,2026-01-01T00:00:00Z,,,,\n"
        "5,t1,2026-01-01T00:00:00Z,rated,lots,,\n"
        '6,t1,2026-01-01T00:00:00Z,rated,3,"[1,2]",\n'
        "7,t1,2026-01-01T00:00:00Z,rated,3,,x\n"
        "8,t1,,rated,3,,\n"
    )
    con = duckdb.connect()
    report = load_events_into(con, [path])
    assert (report.rows_read, report.loaded, report.quarantined) == (8, 1, 7)
    got = con.execute(
        "SELECT row_number, column_name, reason FROM quarantine ORDER BY row_number"
    ).fetchall()
    assert [(r, c) for r, c, _ in got] == [
        (2, "entity_id"),
        (3, "ts"),
        (4, "type"),
        (5, "value"),
        (6, "attrs"),
        (7, "seq"),
        (8, "ts"),
    ]
    reasons = {r: reason for r, _, reason in got}
    assert "31/01/2026" in reasons[3] and "unparseable timestamp" in reasons[3]
    assert "not a number: 'lots'" in reasons[5]
    assert "missing" in reasons[8]
    raw = con.execute("SELECT raw FROM quarantine WHERE row_number = 5").fetchone()
    assert raw is not None and json.loads(raw[0])["value"] == "lots"


def test_missing_required_column_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("event_id,entity,ts,type\n1,t1,2026-01-01,closed\n")
    with pytest.raises(InputError) as info:
        load_events_into(duckdb.connect(), [path])
    problem = info.value.problems[0]
    assert problem.location.column == "entity_id"
    assert "entity" in (problem.hint or "") and "--mapping" in (problem.hint or "")


def test_bad_file_stops_before_anything_is_loaded(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    _write(_frame(), good)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    con = duckdb.connect()
    with pytest.raises(InputError):
        load_events_into(con, [good, bad])
    assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header = tmp_path / "header.csv"
    header.write_text("entity_id,ts,type\n")
    report = load_events_into(duckdb.connect(), [empty, header])
    assert [f.rows_read for f in report.files] == [0, 0]


def test_unreadable_file_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=r"broken\.parquet"):
        load_events_into(duckdb.connect(), [path])
    with pytest.raises(InputError, match="file not found"):
        load_events_into(duckdb.connect(), [tmp_path / "nope.csv"])


def test_custom_table(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    _write(_frame(), path)
    con = duckdb.connect()
    load_events_into(con, [path], table="my_events")
    assert con.execute("SELECT count(*) FROM my_events").fetchone() == (5,)
    with pytest.raises(ValueError, match="identifier"):
        load_events_into(con, [path], table="x; DROP TABLE y")


GOOD_TS = ["2026-01-01T00:00:00Z", "2026-02-03 04:05:06", "2026-03-08T02:30:00-05:00"]
BAD_TS = ["yesterday", "2026-13-01", "01/02/2026"]
row_strategy = st.fixed_dictionaries(
    {
        "event_id": st.sampled_from([f"e{i}" for i in range(12)]),
        "entity_id": st.sampled_from(["t1", "t2", "", "  "]),
        "ts": st.sampled_from(GOOD_TS + BAD_TS + [""]),
        "type": st.sampled_from(["closed", "rated", ""]),
        "value": st.sampled_from(["", "1", "4.5", "-2", "abc", "1e3"]),
    }
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(row_strategy, max_size=25), min_size=1, max_size=3))
def test_counts_add_up_and_bad_rows_name_their_column(
    tmp_path: Path, batches: list[list[dict[str, str]]]
) -> None:
    con = duckdb.connect()
    seen: set[str] = set()
    for n, rows in enumerate(batches):
        path = tmp_path / f"batch{n}_{id(rows)}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(
                out, fieldnames=["event_id", "entity_id", "ts", "type", "value"]
            )
            writer.writeheader()
            writer.writerows(rows)
        # Independent expectation: first failing check in column order, then first-seen ids.
        want_bad: dict[int, str] = {}
        want_loaded = want_dup = 0
        for i, r in enumerate(rows, start=1):
            if not r["entity_id"].strip():
                want_bad[i] = "entity_id"
            elif r["ts"] == "" or r["ts"] in BAD_TS:
                want_bad[i] = "ts"
            elif not r["type"]:
                want_bad[i] = "type"
            elif r["value"] == "abc":
                want_bad[i] = "value"
            elif r["event_id"] in seen:
                want_dup += 1
            else:
                seen.add(r["event_id"])
                want_loaded += 1
        report = load_events_into(con, [path], again=True)  # same bytes: counted, not skipped
        f = report.files[0]
        assert f.rows_read == len(rows) == f.loaded + f.duplicate + f.quarantined
        assert (f.loaded, f.duplicate, f.quarantined) == (want_loaded, want_dup, len(want_bad))
        got = dict(
            con.execute(
                "SELECT row_number, column_name FROM quarantine WHERE ingest_id = ?",
                [f.ingest_id],
            ).fetchall()
        )
        assert got == want_bad
    total = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
    assert total == (len(seen), len(seen))


def _jsonl(path: Path, lines: list[str]) -> Path:
    """JSON Lines written as text, so numbers keep the spelling under test (1001.0, 1e3)."""
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _record(entity_id: str, event_id: str | None = None) -> str:
    head = f'"event_id": {event_id}, ' if event_id is not None else ""
    return "{" + head + f'"entity_id": {entity_id}, "ts": "2026-03-04T10:00:00Z", "type": "x"}}'


def test_json_numbers_are_one_id_however_they_are_spelled(tmp_path: Path) -> None:
    spelled = ["1001", "1001.0", "1.001e3", "1001.000", "-0.0", '"1001.0"', "9007199254740991.0"]
    path = _jsonl(tmp_path / "ids.jsonl", [_record(s) for s in spelled] + [_record("5", "7.0")])
    con = duckdb.connect()
    report = load_events_into(con, [path])
    assert (report.rows_read, report.loaded, report.quarantined) == (8, 8, 0)
    got = [r[0] for r in con.execute("SELECT entity_id FROM events ORDER BY source").fetchall()]
    # a JSON number is its value (json.loads agrees); a JSON string stays the text it is
    want = [v if isinstance(v, str) else str(int(v)) for v in map(json.loads, spelled)]
    assert got == [*want, "5"] == [*["1001"] * 4, "0", "1001.0", "9007199254740991", "5"]
    assert con.execute("SELECT event_id FROM events WHERE entity_id = '5'").fetchone() == ("7",)


def test_json_numbers_that_are_no_exact_whole_number_are_quarantined(tmp_path: Path) -> None:
    lines = [
        _record("1001.5"),
        _record("1e22"),
        _record("9007199254740992.0"),
        _record("NaN"),
        _record("5", "13.5"),
        _record("12345678901234567890123"),  # an integer: its digits are exact
    ]
    path = _jsonl(tmp_path / "bad_ids.jsonl", lines)
    con = duckdb.connect()
    report = load_events_into(con, [path])
    assert (report.rows_read, report.loaded, report.quarantined) == (6, 1, 5)
    got = con.execute(
        "SELECT row_number, column_name, reason FROM quarantine ORDER BY row_number"
    ).fetchall()
    assert [(r, c) for r, c, _ in got] == [
        (1, "entity_id"),
        (2, "entity_id"),
        (3, "entity_id"),
        (4, "entity_id"),
        (5, "event_id"),
    ]
    reasons = [reason for _, _, reason in got]
    assert "1001.5 is a number with a fraction" in reasons[0]
    assert "1e22" in reasons[1] and "9007199254740991 (2^53 - 1)" in reasons[1]
    assert "9007199254740991 (2^53 - 1)" in reasons[2]
    assert "not a finite number" in reasons[3]
    assert "13.5 is a number with a fraction" in reasons[4]
    stored = con.execute("SELECT entity_id FROM events").fetchall()
    assert stored == [("12345678901234567890123",)]


def test_floating_point_and_decimal_parquet_ids(tmp_path: Path) -> None:
    path = tmp_path / "ids.parquet"
    ts = ["2026-03-04T10:00:00Z"] * 4
    pq.write_table(
        pa.table(
            {
                "entity_id": pa.array([1001.0, 1001.5, 2.0**53, 3.0], pa.float64()),
                "ts": ts,
                "type": ["x"] * 4,
            }
        ),
        path,
    )
    dec = tmp_path / "dec.parquet"
    amounts = [Decimal("1001.00"), Decimal("1001.50"), Decimal("12345678901234567.00")]
    pq.write_table(
        pa.table(
            {"entity_id": pa.array(amounts, pa.decimal128(20, 2)), "ts": ts[:3], "type": ["x"] * 3}
        ),
        dec,
    )
    con = duckdb.connect()
    report = load_events_into(con, [path, dec])
    assert [(f.loaded, f.quarantined) for f in report.files] == [(2, 2), (2, 1)]
    got = con.execute("SELECT entity_id FROM events ORDER BY source").fetchall()
    assert got == [("1001",), ("12345678901234567",), ("1001",), ("3",)]  # dec.*, ids.*
    bad = con.execute("SELECT row_number, column_name FROM quarantine ORDER BY 1, 2").fetchall()
    assert bad == [(2, "entity_id"), (2, "entity_id"), (3, "entity_id")]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_values_a_double_cannot_sum_exactly_are_quarantined(tmp_path: Path, suffix: str) -> None:
    texts = [
        "1e308",
        "12345678901234567890",
        "9007199254740991",
        "-9007199254740991",
        "9007199254740993",
        "-1e16",
        "0.5",
    ]
    frame = pd.DataFrame(
        {
            "entity_id": [f"P-{i}" for i in range(len(texts))],
            "ts": "2026-03-04 10:00:00",
            "type": "payment",
            "value": texts if suffix == ".csv" else [float(t) for t in texts],
        }
    )
    path = tmp_path / f"big{suffix}"
    _write(frame, path)
    con = duckdb.connect()
    report = load_events_into(con, [path])
    beyond = [i + 1 for i, t in enumerate(texts) if abs(float(t)) > 2**53 - 1]
    assert beyond == [1, 2, 5, 6]
    assert (report.rows_read, report.loaded, report.quarantined) == (7, 3, 4)
    got = con.execute(
        "SELECT row_number, column_name, reason FROM quarantine ORDER BY row_number"
    ).fetchall()
    assert [(r, c) for r, c, _ in got] == [(r, "value") for r in beyond]
    assert all("beyond ±9007199254740991 (2^53 - 1)" in reason for _, _, reason in got)
    total = con.execute("SELECT sum(value) FROM events").fetchone()
    assert total == (0.5,)


def test_digit_separators_are_not_numbers(tmp_path: Path) -> None:
    path = tmp_path / "sep.csv"
    path.write_text(
        "entity_id,ts,type,value\n"
        "T-1,2026-03-04,payment,1_000\n"
        "T-2,2026-03-04,payment,1.5_0\n"
        "T-3,2026-03-04,payment,1000\n"
    )
    con = duckdb.connect()
    report = load_events_into(con, [path])
    assert (report.rows_read, report.loaded, report.quarantined) == (3, 1, 2)
    got = con.execute("SELECT row_number, reason FROM quarantine ORDER BY 1").fetchall()
    assert [r for r, _ in got] == [1, 2]
    assert "not a plain number: '1_000'" in got[0][1]
    assert "not a plain number: '1.5_0'" in got[1][1]
    assert con.execute("SELECT entity_id, value FROM events").fetchall() == [("T-3", 1000.0)]


@pytest.mark.parametrize(
    ("header", "repeated", "positions"),
    [
        ("entity_id,ts,type,value,value", "value", "columns 4 and 5"),
        ("entity_id,ts,type,entity_id", "entity_id", "columns 1 and 4"),
        ("entity_id;ts;type;Value;value", "value", "columns 4 and 5"),
    ],
)
def test_a_header_naming_a_column_twice_is_refused(
    tmp_path: Path, header: str, repeated: str, positions: str
) -> None:
    path = tmp_path / "dup.csv"
    sep = ";" if ";" in header else ","
    row = sep.join(["T-1", "2026-03-04", "closed", "1", "2"][: header.count(sep) + 1])
    path.write_text(f"{header}\n{row}\n")
    con = duckdb.connect()
    with pytest.raises(InputError) as info:
        load_events_into(con, [path])
    problem = info.value.problems[0]
    assert problem.location.file == str(path) and problem.location.column == repeated
    assert f"'{repeated}' twice ({positions}, line 1: {header})" in problem.message
    assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_a_column_named_like_a_renamed_repeat_is_read(tmp_path: Path) -> None:
    path = tmp_path / "suffix.csv"
    path.write_text("entity_id,ts,type,value_1,value\nT-1,2026-03-04,closed,1,2\n")
    con = duckdb.connect()
    assert load_events_into(con, [path]).loaded == 1
    assert con.execute("SELECT value FROM events").fetchone() == (2.0,)


def test_a_json_record_naming_a_key_twice_is_refused(tmp_path: Path) -> None:
    good = '{"entity_id": "A", "ts": "2026-03-04T10:00:00Z", "type": "x"}'
    twice = '{"entity_id": "B", "entity_id": "C", "ts": "2026-03-04T10:00:00Z", "type": "x"}'
    path = _jsonl(tmp_path / "keys.jsonl", [good, good, twice, good])
    con = duckdb.connect()
    with pytest.raises(InputError) as info:
        load_events_into(con, [path])
    problem = info.value.problems[0]
    assert (problem.location.row, problem.location.column) == (3, "entity_id")
    assert "names key 'entity_id' twice" in problem.message
    assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_overlapping_export_without_ids_is_said(tmp_path: Path, suffix: str) -> None:
    """Derived ids are new for every row of a new file name, so an overlapping id-less export
    stores its overlap again; the report counts those events (pandas finds them here)."""
    cols = ["entity_id", "ts", "type", "actor", "value"]
    march = pd.DataFrame(
        [
            ("P-1", "2026-03-04 10:00:00", "contacted", "ai", None),
            ("P-1", "2026-03-05 10:00:00", "payment", None, 100.0),
            ("P-2", "2026-03-06 10:00:00", "payment", None, 20.0),
        ],
        columns=cols,
    )
    april = pd.DataFrame(
        [
            ("P-1", "2026-03-05 10:00:00", "payment", None, 100.0),  # overlap
            ("P-2", "2026-03-06 10:00:00", "payment", None, 21.0),  # another value
            ("P-1", "2026-04-01 10:00:00", "payment", None, 50.0),
        ],
        columns=cols,
    )
    first, second = tmp_path / f"march{suffix}", tmp_path / f"march_april{suffix}"
    _write(march, first)
    _write(april, second)
    want = len(april.merge(march, on=cols, how="inner"))
    assert want == 1
    con = duckdb.connect()
    assert load_events_into(con, [first]).overlap == 0
    report = load_events_into(con, [second])
    assert (report.loaded, report.duplicate, report.overlap) == (3, 0, want)
    assert report.to_dict()["totals"]["overlap"] == want
    # with the export's own ids the same overlap is a duplicate, not said as an overlap
    con = duckdb.connect()
    ids = []
    for frame, path in ((march, first), (april, second)):
        keyed = frame.assign(event_id=frame["entity_id"] + "@" + frame["ts"])
        ids.append(set(keyed["event_id"]))
        _write(keyed, path)
        report = load_events_into(con, [path])
    again = len(ids[0] & ids[1])
    assert (report.loaded, report.duplicate, report.overlap) == (3 - again, again, 0)


def test_a_comma_in_a_number_says_how_to_write_it(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text(
        "entity_id,ts,type,value\n"
        'T-1,2026-03-04,payment,"4,5"\nT-2,2026-03-04,payment,"1.234,56"\n'
        "T-3,2026-03-04,payment,abc\nT-4,2026-03-04,payment,4.5\n"
    )
    con = duckdb.connect()
    report = load_events_into(con, [path])
    assert (report.loaded, report.quarantined) == (1, 3)
    reasons = dict(con.execute("SELECT row_number, reason FROM quarantine").fetchall())
    hint = "a comma in a number: write decimals with a point, 4.5"
    assert hint in reasons[1] and "'4,5'" in reasons[1]
    assert hint in reasons[2] and "'1.234,56'" in reasons[2]
    assert reasons[3] == "not a number: 'abc'"
