"""A zone written after a timestamp is honoured when exact and refused otherwise, never dropped.

DuckDB's text-to-timestamp cast reads ``2026-01-31 20:00:00 EST`` as 20:00 and ``08:00 PM`` as
08:00. Expected instants here come from Python's ``zoneinfo`` and fixed offsets, not from
DuckDB; the readers are checked end to end: canonical files, a mapping with a time zone, the
Zendesk and Salesforce adapters and the invoice.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truecount.adapters import ingest_source
from truecount.billing.invoice import load_invoice
from truecount.errors import InputError
from truecount.ingest import load_events_into
from truecount.ingest.zones import text_to_utc_sql

UTC = dt.UTC
ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Asia/Tokyo",
    "America/Argentina/Buenos_Aires",
    "Etc/GMT+5",
]
REFUSED = ["EST", "PST", "CET", "IST", "CST", "PM", "am", "Zulu", "xyz", "Foo/Bar"]


def _read(texts: list[str | None]) -> list[dt.datetime | None]:
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        sql = text_to_utc_sql("t")
        return [
            con.execute(f"SELECT {sql} FROM (SELECT CAST(? AS VARCHAR) AS t)", [t]).fetchall()[0][0]
            for t in texts
        ]


def _naive_utc(local: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    return local.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


@settings(max_examples=60, deadline=None)
@given(
    local=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2035, 12, 31)),
    zone=st.sampled_from(ZONES),
    sep=st.sampled_from(["T", " "]),
)
def test_a_zone_name_is_the_instant_zoneinfo_gives(local: dt.datetime, zone: str, sep: str) -> None:
    local = local.replace(microsecond=0)
    tz = ZoneInfo(zone)
    # skip the hour a clock change removes or repeats: the text alone cannot say which
    if _naive_utc(local, tz) != _naive_utc(local.replace(fold=1), tz):
        return
    text = local.isoformat(sep=sep) + " " + zone
    assert _read([text]) == [_naive_utc(local, tz)]


@pytest.mark.parametrize(
    ("suffix", "hours"),
    [("UTC", 0), ("utc", 0), ("GMT", 0), ("GMT+2", 2), ("GMT-0530", -5.5), ("UTC+2", 2)],
)
def test_utc_and_gmt_with_or_without_an_offset(suffix: str, hours: float) -> None:
    local = dt.datetime(2026, 1, 31, 20, 0)
    zone = dt.timezone(dt.timedelta(hours=hours))
    assert _read([f"2026-01-31 20:00:00 {suffix}"]) == [_naive_utc(local, zone)]


@pytest.mark.parametrize("word", REFUSED)
def test_an_abbreviation_or_a_clock_half_is_refused_not_dropped(word: str) -> None:
    assert _read([f"2026-01-31 08:00:00 {word}", f"2026-01-31T08:00 {word}"]) == [None, None]


def test_text_without_a_zone_and_offsets_read_as_before() -> None:
    texts = [
        "2026-01-31 20:00:00",
        "2026-01-31",
        "2026-01-31T20:00:00Z",
        "2026-01-31T20:00:00.5+02:00",
        "2026-01-31 20:00:00-0500",
        None,
    ]
    assert _read(texts) == [
        dt.datetime(2026, 1, 31, 20),
        dt.datetime(2026, 1, 31),
        dt.datetime(2026, 1, 31, 20),
        dt.datetime(2026, 1, 31, 18, 0, 0, 500000),
        dt.datetime(2026, 2, 1, 1),
        None,
    ]


def test_canonical_file_quarantines_abbreviations_and_converts_names(tmp_path: Path) -> None:
    rows = [
        ("a", "2026-01-31 20:00:00 EST"),
        ("b", "2026-01-31 20:00:00 America/New_York"),
        ("c", "2026-01-31 08:00:00 PM"),
        ("d", "2026-01-31 20:00:00 UTC"),
        ("e", "2026-01-31T20:00:00-05:00"),
    ]
    path = tmp_path / "events.csv"
    path.write_text(
        "entity_id,ts,type\n" + "".join(f"{e},{t},closed\n" for e, t in rows), encoding="utf-8"
    )
    con = duckdb.connect()
    report = load_events_into(con, [path])
    assert (report.rows_read, report.loaded, report.quarantined) == (5, 3, 2)
    stored = dict(con.execute("SELECT entity_id, ts FROM events").fetchall())
    new_york = ZoneInfo("America/New_York")
    assert stored == {
        "b": _naive_utc(dt.datetime(2026, 1, 31, 20), new_york),
        "d": dt.datetime(2026, 1, 31, 20),
        "e": dt.datetime(2026, 2, 1, 1),
    }
    bad = con.execute(
        "SELECT row_number, column_name, reason FROM quarantine ORDER BY 1"
    ).fetchall()
    assert [(r, c) for r, c, _ in bad] == [(1, "ts"), (3, "ts")]
    assert "EST" in bad[0][2] and "abbreviations" in bad[0][2]


def test_a_mapping_time_zone_does_not_move_text_that_says_utc(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "id,when,what\nA,2026-01-31 20:00:00 UTC,closed\nB,2026-01-31 20:00:00,closed\n"
        "C,2026-01-31 20:00:00 EST,closed\n",
        encoding="utf-8",
    )
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "truecount_mapping: 1\ntimezone: America/New_York\n"
        "columns:\n  entity_id: id\n  ts: when\n  type: what\n",
        encoding="utf-8",
    )
    con = duckdb.connect()
    report = load_events_into(con, [path], mapping=mapping)
    assert (report.loaded, report.quarantined) == (2, 1)
    stored = dict(con.execute("SELECT entity_id, ts FROM events").fetchall())
    assert stored == {
        "A": dt.datetime(2026, 1, 31, 20),
        "B": _naive_utc(dt.datetime(2026, 1, 31, 20), ZoneInfo("America/New_York")),
    }


def _zendesk_ticket(ticket_id: int, created: str) -> dict[str, object]:
    return {
        "id": ticket_id,
        "url": f"https://example.zendesk.com/api/v2/tickets/{ticket_id}.json",
        "via": {"channel": "email", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": created,
        "updated_at": "2026-03-15T13:41:00Z",
        "status": "closed",
        "requester_id": 1,
        "assignee_id": None,
        "subject": "s",
        "tags": [],
    }


def test_zendesk_and_salesforce_read_zone_names_and_refuse_abbreviations(tmp_path: Path) -> None:
    tickets = tmp_path / "tickets.json"
    tickets.write_text(
        json.dumps(
            {
                "tickets": [
                    _zendesk_ticket(1, "2026-01-31T22:56:00 PST"),
                    _zendesk_ticket(2, "2026-01-31T22:56:00 America/Los_Angeles"),
                ]
            }
        ),
        encoding="utf-8",
    )
    la = ZoneInfo("America/Los_Angeles")
    want = _naive_utc(dt.datetime(2026, 1, 31, 22, 56), la)
    con = duckdb.connect()
    ingest_source(con, "zendesk", [tickets], partial=True)
    created = con.execute(
        "SELECT entity_id, min(ts) FROM events WHERE type = 'created' GROUP BY 1"
    ).fetchall()
    assert created == [("2", want)]
    reasons = [r for (r,) in con.execute("SELECT reason FROM quarantine").fetchall()]
    assert len(reasons) == 1 and "PST" in reasons[0]

    cases = tmp_path / "Case.csv"
    cases.write_text(
        "Id,CaseNumber,Status,IsClosed,ClosedDate,CreatedDate,Origin,OwnerId\n"
        "5008d00004Nia5nAAB,00020005,New,FALSE,,2026-01-31T22:56:00.000 PST,Web,"
        "0058d00004Mq28kAAB\n"
        "5008d00004Nia6nAAB,00020006,New,FALSE,,2026-01-31 22:56:00 America/Los_Angeles,Web,"
        "0058d00004Mq28kAAB\n",
        encoding="utf-8",
    )
    con = duckdb.connect()
    ingest_source(con, "salesforce", [cases], partial=True)
    created = con.execute(
        "SELECT entity_id, min(ts) FROM events WHERE type = 'created' GROUP BY 1"
    ).fetchall()
    assert [ts for _, ts in created] == [want]
    reasons = [r for (r,) in con.execute("SELECT reason FROM quarantine").fetchall()]
    assert len(reasons) == 1 and "PST" in reasons[0] and "CreatedDate" in reasons[0]


def test_an_invoice_reads_zone_names_and_refuses_abbreviations(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        "line_id,entity_id,billed_at,amount\nL1,T-1,2026-01-31T22:27:00 America/New_York,1.50\n"
        "L2,T-2,2026-01-31 22:27:00 UTC,1.50\nL3,T-3,2026-01-31,1.50\n",
        encoding="utf-8",
    )
    table = load_invoice(good).to_pylist()
    assert [r["billed_at"] for r in table] == [
        _naive_utc(dt.datetime(2026, 1, 31, 22, 27), ZoneInfo("America/New_York")),
        dt.datetime(2026, 1, 31, 22, 27),
        dt.datetime(2026, 1, 31),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "line_id,entity_id,billed_at,amount\nL1,T-1,2026-01-31T22:27:00 EST,1.50\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        load_invoice(bad)
    text = str(info.value)
    assert "bad.csv" in text and "row 1" in text and "EST" in text and "billed_at" in text
