"""Airbyte's envelopes around a vendor's records: protocol messages, bare records, raw and
typed destination tables, one or several streams per file, plain or gzipped.

A toy adapter keeps the framework's test independent of any one platform; the expectations
are computed in plain Python from the lines written here, not from the engine."""

from __future__ import annotations

import csv
import gzip
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import duckdb
import pytest

import truecount.adapters as adapters
from truecount.adapters.base import Adapter, AdapterOptions, FileKind, Sniff
from truecount.errors import InputError


class ToyOptions(AdapterOptions):
    pass


class Toy(Adapter):
    """Tickets (closed events) and comments (message events); comments need tickets."""

    name: ClassVar[str] = "toy"
    title: ClassVar[str] = "Toy desk"
    options_model = ToyOptions
    kinds: ClassVar[dict[str, FileKind]] = {
        "tickets": FileKind("tickets", "tickets", array_key="tickets"),
        "comments": FileKind("comments", "comments", needs=("tickets",)),
    }
    airbyte_streams: ClassVar[dict[str, str]] = {
        "tickets": "tickets",
        "ticket_comments": "comments",
    }

    def recognize(self, sniff: Sniff) -> str | None:
        if "tickets" in sniff.keys:
            return "tickets"
        return "comments" if "ticket_id" in sniff.keys else None

    def events_sql(self, kind: str, options: AdapterOptions) -> tuple[str, dict[str, object]]:
        entity = "__tc_record ->> 'id'" if kind == "tickets" else "__tc_record ->> 'ticket_id'"
        sql = f"""
        SELECT 'toy:' || $kind || ':' || (__tc_record ->> 'id') AS event_id,
               {entity} AS entity_id,
               TRY_CAST(__tc_record ->> 'at' AS TIMESTAMP) AS ts,
               CASE WHEN $kind = 'tickets' THEN 'closed' ELSE 'message' END AS type,
               __tc_record ->> 'by' AS actor, NULL AS value,
               json_object('origin', json_object('ts', 'at')) AS attrs,
               NULL AS source, NULL AS recorded_at, NULL AS seq, __tc_row, 0 AS __tc_sub,
               CASE WHEN __tc_record ->> 'id' IS NULL THEN 'no id' END AS __tc_problem,
               CASE WHEN __tc_record ->> 'id' IS NULL THEN 'id' END AS __tc_problem_column,
               CASE WHEN __tc_record ->> 'id' IS NULL THEN __tc_record END AS __tc_raw
        FROM __tc_records
        """
        return sql, {"kind": kind}


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    module = types.ModuleType("truecount.adapters.toy")
    module.ADAPTER = Toy()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "truecount.adapters.toy", module)
    monkeypatch.setitem(adapters._MODULES, "toy", "truecount.adapters.toy")
    yield


TICKETS = [
    {"id": "1", "at": "2026-01-05T10:00:00", "by": "ai"},
    {"id": "2", "at": "2026-01-06T10:00:00", "by": "human"},
]
COMMENTS = [
    {"id": "c1", "ticket_id": "1", "at": "2026-01-05T09:00:00", "by": "customer"},
    {"id": "c2", "ticket_id": "2", "at": "2026-01-06T09:00:00", "by": "human"},
    {"id": "c3", "ticket_id": "2", "at": "2026-01-06T09:30:00", "by": "customer"},
]
USERS = [{"id": "u1", "name": "Ann"}]


def _expected() -> list[tuple[str, str, str]]:
    rows = [(t["id"], "closed", t["by"]) for t in TICKETS]
    rows += [(c["ticket_id"], "message", c["by"]) for c in COMMENTS]
    return sorted(rows)


def _stored(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    return sorted(con.execute("SELECT entity_id, type, actor FROM events").fetchall())


def _message(stream: str, data: dict[str, str]) -> str:
    record = {"stream": stream, "data": data, "emitted_at": 1767600000000}
    return json.dumps({"type": "RECORD", "record": record})


def test_protocol_messages_several_streams_in_one_file(toy: None, tmp_path: Path) -> None:
    lines = [json.dumps({"type": "STATE", "state": {"data": {}}})]
    lines += [_message("tickets", t) for t in TICKETS]
    lines += [_message("ticket_comments", c) for c in COMMENTS]
    lines += [_message("users", u) for u in USERS]
    lines += [json.dumps({"type": "LOG", "log": {"level": "INFO", "message": "done"}})]
    lines += ['{"type": "RECORD", "record": {"stream": "tickets"', ""]
    f = tmp_path / "sync.jsonl.gz"
    f.write_bytes(gzip.compress("\n".join(lines).encode()))
    con = duckdb.connect()
    report = adapters.ingest_source(con, "toy", [f])
    assert _stored(con) == _expected()
    by_part = {r.file.rsplit("#", 1)[1]: r for r in report.files}
    assert set(by_part) == {"tickets", "ticket_comments", "other-streams"}
    assert by_part["tickets"].loaded == len(TICKETS)
    assert by_part["ticket_comments"].loaded == len(COMMENTS)
    # the users record and the broken line are quarantined, each with its reason
    other = by_part["other-streams"]
    assert (other.rows_read, other.quarantined) == (len(USERS) + 1, len(USERS) + 1)
    reasons = [r for (r,) in con.execute("SELECT reason FROM quarantine ORDER BY 1").fetchall()]
    assert any("stream 'users' is not read by --source toy" in r for r in reasons)
    # rows point at the line of the whole file, whichever part read it
    users_line = 1 + len(TICKETS) + len(COMMENTS) + 1
    rows = con.execute("SELECT row_number, reason FROM quarantine").fetchall()
    assert [n for n, r in rows if "'users'" in r] == [users_line]
    sources = {
        s for (s,) in con.execute("SELECT source FROM events WHERE type = 'closed'").fetchall()
    }
    assert sources == {f"{f.name}:{2 + i}" for i in range(len(TICKETS))}
    assert any("is not valid JSON" in r for r in reasons)
    # every record line of the file is in exactly one part: 2 protocol messages skipped
    records = len(TICKETS) + len(COMMENTS) + len(USERS) + 1
    assert sum(r.rows_read for r in report.files) == records
    labels = [r for (r,) in con.execute("SELECT mapping FROM ingest_log").fetchall()]
    assert any('"skipped_messages": 2' in label for label in labels)


def test_bare_records_one_stream_per_file(toy: None, tmp_path: Path) -> None:
    f = tmp_path / "tickets.jsonl"
    f.write_text(
        "\n".join(
            json.dumps({"stream": "tickets", "data": t, "emitted_at": 1767600000000})
            for t in TICKETS
        )
    )
    g = tmp_path / "ticket_comments.jsonl"
    g.write_text(
        "\n".join(
            json.dumps({"stream": "ticket_comments", "data": c, "emitted_at": 1767600000000})
            for c in COMMENTS
        )
    )
    con = duckdb.connect()
    adapters.ingest_source(con, "toy", [g, f])  # order given does not matter
    assert _stored(con) == _expected()


def test_raw_tables_json_and_csv_name_their_stream_by_file(toy: None, tmp_path: Path) -> None:
    f = tmp_path / "_airbyte_raw_tickets.jsonl"
    f.write_text(
        "\n".join(
            json.dumps(
                {
                    "_airbyte_ab_id": f"a{i}",
                    "_airbyte_emitted_at": 1767600000000,
                    "_airbyte_data": t,
                }
            )
            for i, t in enumerate(TICKETS)
        )
    )
    folder = tmp_path / "ticket_comments"
    folder.mkdir()
    g = folder / "2026_01_07_1767600000000_0.csv"
    with g.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta", "_airbyte_data"])
        for i, c in enumerate(COMMENTS):
            w.writerow([f"r{i}", "2026-01-07 00:00:00", "{}", json.dumps(c)])
    con = duckdb.connect()
    adapters.ingest_source(con, "toy", [f, g])
    assert _stored(con) == _expected()


def test_typed_final_table_drops_airbyte_columns(toy: None, tmp_path: Path) -> None:
    f = tmp_path / "tickets.jsonl"
    f.write_text(
        "\n".join(
            json.dumps(
                {
                    **t,
                    "_airbyte_raw_id": f"r{i}",
                    "_airbyte_extracted_at": "2026-01-07T00:00:00Z",
                    "_airbyte_meta": {"changes": []},
                }
            )
            for i, t in enumerate(TICKETS)
        )
    )
    con = duckdb.connect()
    adapters.ingest_source(con, "toy", [f], partial=True)
    assert _stored(con) == sorted((t["id"], "closed", t["by"]) for t in TICKETS)
    raw = con.execute("SELECT attrs FROM events LIMIT 1").fetchone()
    assert raw is not None and "_airbyte" not in raw[0]


def test_a_stream_that_needs_another_is_refused_without_it(toy: None, tmp_path: Path) -> None:
    f = tmp_path / "comments.jsonl"
    f.write_text("\n".join(_message("ticket_comments", c) for c in COMMENTS))
    with pytest.raises(InputError, match="needs the Toy desk tickets"):
        adapters.ingest_source(duckdb.connect(), "toy", [f])


def test_unnamed_raw_table_and_foreign_streams_are_refused(toy: None, tmp_path: Path) -> None:
    f = tmp_path / "export.jsonl"
    f.write_text(json.dumps({"_airbyte_ab_id": "a", "_airbyte_data": TICKETS[0]}))
    with pytest.raises(InputError, match="does not say which stream"):
        adapters.ingest_source(duckdb.connect(), "toy", [f])
    g = tmp_path / "users.jsonl"
    g.write_text("\n".join(_message("users", u) for u in USERS))
    with pytest.raises(InputError, match=r"streams \(users\) --source toy does not read"):
        adapters.ingest_source(duckdb.connect(), "toy", [g])


# --------------------------------------------------------------------------- real sources

FIXTURES = Path(__file__).parent / "fixtures"


def _canonical(con: duckdb.DuckDBPyConnection) -> set[tuple[object, ...]]:
    """Events as a buyer compares them: everything but where the record was read from."""
    return set(
        con.execute(
            "SELECT event_id, entity_id, ts, type, actor, value, seq, "
            "CAST(json_merge_patch(attrs, '{\"record\": null}') AS VARCHAR) FROM events"
        ).fetchall()
    )


def test_zendesk_airbyte_sync_gives_the_api_exports_events(tmp_path: Path) -> None:
    """One Airbyte sync file holding five streams (and a STATE message) gives exactly the
    events of the API exports of the same records; the comments stream repeats the audits'
    comments, so its records are duplicates, not new messages."""
    sync = FIXTURES / "zendesk" / "airbyte" / "zendesk.jsonl"
    lines = [json.loads(line) for line in sync.read_text().splitlines()]
    by_stream: dict[str, list[dict[str, object]]] = {}
    for line in lines:
        if line["type"] == "RECORD":
            by_stream.setdefault(line["record"]["stream"], []).append(line["record"]["data"])
    api = duckdb.connect()
    api_files = {
        "tickets": "tickets.json",
        "ticket_audits": "ticket_audits.json",
        "satisfaction_ratings": "satisfaction_ratings.json",
        "ticket_metric_events": "ticket_metric_events.json",
    }
    pages = []
    for stream, name in api_files.items():
        # the API's page keys: /api/v2/ticket_audits pages list "audits"
        key = "audits" if stream == "ticket_audits" else stream
        page = tmp_path / name
        page.write_text(json.dumps({key: by_stream[stream]}))
        pages.append(page)
    adapters.ingest_source(api, "zendesk", pages)
    con = duckdb.connect()
    report = adapters.ingest_source(con, "zendesk", [sync])
    parts = {r.file.rsplit("#", 1)[1]: r for r in report.files}
    assert {k: parts[k].rows_read for k in parts} == {k: len(v) for k, v in by_stream.items()}
    assert sum(r.quarantined for r in report.files) == 0
    assert parts["ticket_comments"].duplicate == len(by_stream["ticket_comments"])
    assert _canonical(con) == _canonical(api)


def test_a_json_document_holding_an_array_of_messages(toy: None, tmp_path: Path) -> None:
    messages = [_message("tickets", t) for t in TICKETS]
    messages += [_message("ticket_comments", c) for c in COMMENTS]
    f = tmp_path / "sync.json"
    f.write_text("[" + ",\n".join(messages) + "]")
    con = duckdb.connect()
    adapters.ingest_source(con, "toy", [f])
    assert _stored(con) == _expected()
