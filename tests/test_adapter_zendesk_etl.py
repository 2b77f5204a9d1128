"""Zendesk through ETL tools: Fivetran's tables and Airbyte's comment stream.

The fixtures under fixtures/zendesk/fivetran and fixtures/zendesk/airbyte are derived by
make_fixtures.py from the very tickets of the API fixtures. Expectations are computed here in
plain Python from the ETL files themselves, by the rules of docs/sources/zendesk.md ("Through
Fivetran", "Through Airbyte"), never from the events table. The same tickets loaded through the
API shape and the ETL shape must give the same events and verdicts, except where the ETL shape
cannot carry a fact; those exceptions are listed in ``ETL_CANNOT_CARRY`` and checked to be the
only ones.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

import truecount.cli.workspace_cmds  # noqa: F401 - registers the verbs
from truecount import library
from truecount.adapters import get_adapter
from truecount.adapters.base import sniff
from truecount.cli.app import app
from truecount.engine.run import count
from truecount.workspace import Workspace

FIX = Path(__file__).resolve().parent / "fixtures" / "zendesk"
FT = FIX / "fivetran"
AB = FIX / "airbyte"
FIVETRAN_FILES = [
    FT / "ticket.csv",
    FT / "ticket_field_history.csv",
    FT / "ticket_comment.csv",
    FT / "satisfaction_rating.csv",
]
API_FILES = [
    FIX / "tickets_page1.json",
    FIX / "tickets_page2.json",
    FIX / "tickets_incremental.json",
    FIX / "ticket_audits.json",
    FIX / "ticket_audits.jsonl",
    FIX / "satisfaction_ratings.json",
]
AS_OF = "2026-03-01T00:00:00"
CLOSED = {"solved", "closed"}
OPEN = {"new", "open", "pending", "hold"}
AI_AGENT_CHANNELS = {"native_messaging"}
#: Event types compared between shapes (``audit_event`` is everything else Zendesk records,
#: and Fivetran's history has no Notification events, so it is not one of them).
COMPARED = (
    "created",
    "followup_created",
    "status_changed",
    "closed",
    "reopened",
    "message",
    "note",
    "assigned",
    "escalated",
    "rated",
    "rating_offered",
    "rating_unoffered",
)
#: Tickets whose events the ETL shape cannot give as the API does, and why:
#: 1012 - its AI solve and the customer's reopening reply are in the same second; Fivetran's
#:        ticket_field_history keeps one row per (ticket, field, second), so only the last
#:        status ('open') is left: no close, no reopen.
#: 1015 - solved through the Answer Bot channel by the customer accepting an article; the
#:        update's via is not in Fivetran's tables, so ai_channels / ai_source_rels cannot
#:        name it, and the close is the customer's.
ETL_CANNOT_CARRY = {"1012", "1015"}

runner = CliRunner()


# --------------------------------------------------------------------------- plain reading


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def when(text: str) -> dt.datetime:
    """A Fivetran time (``... UTC``) or ISO 8601 with Z, as naive UTC."""
    if text.endswith(" UTC"):
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f UTC")
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


Event = tuple[str, dt.datetime, str, str | None, float | None, str | None, str | None]


def actor(user: int, requester: int, ai_author_ids: frozenset[int], ai_ticket: bool) -> str:
    """The audit rules for an update's author; ``ai_ticket``: an AI agent ticket not yet
    escalated at the update's time."""
    if user in ai_author_ids:
        return "ai"
    if user == requester:
        return "customer"
    if ai_ticket:
        return "ai"
    return "system" if user == -1 else "human"


def fivetran_model(ai_author_ids: frozenset[int] = frozenset()) -> set[Event]:
    """The events the docs say the Fivetran tables give: (entity, ts, type, actor, value,
    from, to)."""
    out: set[Event] = set()
    tickets = {int(t["id"]): t for t in rows(FT / "ticket.csv") if t["_fivetran_deleted"] != "true"}
    for tid, t in tickets.items():
        out.add((str(tid), when(t["created_at"]), "created", "customer", None, None, None))
        if t["via_channel"] == "closed_ticket" and t["via_source_from_id"]:
            source = t["via_source_from_id"]
            out.add(
                (source, when(t["created_at"]), "followup_created", "customer", None, None, None)
            )

    history: dict[int, list[dict[str, str]]] = defaultdict(list)
    for n, r in enumerate(rows(FT / "ticket_field_history.csv")):
        history[int(r["ticket_id"])].append({**r, "n": str(n)})
    escalated_at: dict[int, dt.datetime] = {}
    requester: dict[int, int] = {}
    for tid, hist in history.items():
        hist.sort(key=lambda r: (when(r["updated"]), int(r["n"])))
        first = when(hist[0]["updated"])
        req_rows = [r for r in hist if r["field_name"] == "requester_id"]
        req = int(req_rows[0]["value"]) if req_rows else int(tickets[tid]["requester_id"])
        requester[tid] = req
        ai_ticket = tickets[tid]["via_channel"] in AI_AGENT_CHANNELS
        ai_seen = min((when(r["updated"]) for r in hist if int(r["user_id"]) in ai_author_ids),
                      default=None)  # fmt: skip

        def signal(r: dict[str, str], first: dt.datetime = first) -> bool:
            if r["field_name"] == "assignee_id" and r["value"]:
                return int(r["value"]) not in ai_author_ids
            return r["field_name"] == "group_id" and bool(r["value"]) and when(r["updated"]) > first

        esc_rows = [
            r for r in hist
            if signal(r) and (ai_ticket or (ai_seen is not None and when(r["updated"]) >= ai_seen))
        ]  # fmt: skip
        esc = when(esc_rows[0]["updated"]) if esc_rows else None

        if esc is not None:
            escalated_at[tid] = esc
            r = esc_rows[0]
            who = actor(int(r["user_id"]), req, ai_author_ids, ai_ticket=False)
            out.add((str(tid), esc, "escalated", who, None, None, None))
        prev: str | None = None
        for r in hist:
            at, user, value = when(r["updated"]), int(r["user_id"]), r["value"]
            who = actor(user, req, ai_author_ids, ai_ticket and (esc is None or at < esc))
            if r["field_name"] == "status":
                out.add((str(tid), at, "status_changed", who, None, prev, value))
                if value in CLOSED and prev not in CLOSED:
                    out.add((str(tid), at, "closed", who, None, prev, value))
                if prev in CLOSED and value in OPEN:
                    out.add((str(tid), at, "reopened", who, None, prev, value))
                prev = value
            elif r["field_name"] in ("assignee_id", "group_id") and value:
                out.add((str(tid), at, "assigned", who, None, None, None))

    for c in rows(FT / "ticket_comment.csv"):
        tid, user, at = int(c["ticket_id"]), int(c["user_id"]), when(c["created"])
        ai_ticket = tickets[tid]["via_channel"] in AI_AGENT_CHANNELS
        esc = escalated_at.get(tid)
        if user in ai_author_ids:
            who = "ai"
        elif user == int(tickets[tid]["requester_id"]):
            who = "customer"
        elif ai_ticket and tid in history and (esc is None or at < esc):
            who = "ai"
        else:
            who = "system" if user == -1 else "human"
        kind = "message" if c["public"] == "true" else "note"
        out.add((str(tid), at, kind, who, None, None, None))

    for r in rows(FT / "satisfaction_rating.csv"):
        score = r["score"]
        value = {"good": 5.0, "bad": 1.0}.get(score)
        at = when(r["updated_at"] if value is not None else r["created_at"])
        kind = "rated" if value is not None else f"rating_{score}"
        out.add((r["ticket_id"], at, kind, "customer", value, None, None))
    return out


Verdict = tuple[str, dict[str, bool]]


def judged(end: dt.datetime, as_of: dt.datetime, conditions: dict[str, bool]) -> Verdict:
    if end > as_of:
        return "pending", conditions
    return ("not_counted" if not all(conditions.values()) else "counted"), conditions


def strict_verdicts(events: set[Event]) -> dict[str, Verdict]:
    """support_resolution_strict, read from its YAML, over a set of events."""
    as_of = dt.datetime.fromisoformat(AS_OF)
    by: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by[e[0]].append(e)
    out: dict[str, Verdict] = {}
    for tid, evs in by.items():
        closes = [e[1] for e in evs if e[2] == "closed" and e[3] == "ai" and e[1] <= as_of]
        if not closes:
            continue
        anchor = min(closes)

        def inside(at: dt.datetime, days: int, anchor: dt.datetime = anchor) -> bool:
            return anchor <= at <= min(anchor + dt.timedelta(days=days), as_of)

        week = sorted((e[1], e[4]) for e in evs if e[2] == "rated" and inside(e[1], 7))
        conditions = {
            "not_reopened": not any(e[2] == "reopened" and inside(e[1], 14) for e in evs),
            "no_followup": not any(e[2] == "followup_created" and inside(e[1], 14) for e in evs),
            "satisfied": bool(week) and (week[-1][1] or 0) >= 4,
            "no_human_message": not any(
                e[2] == "message" and e[3] == "human"
                and anchor - dt.timedelta(days=365) <= e[1] <= anchor
                for e in evs
            ),
        }  # fmt: skip
        out[tid] = judged(anchor + dt.timedelta(days=14), as_of, conditions)
    return out


def automated_verdicts(events: set[Event]) -> dict[str, Verdict]:
    """automated_resolution, read from its YAML, over a set of events."""
    as_of = dt.datetime.fromisoformat(AS_OF)
    by: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by[e[0]].append(e)
    out: dict[str, Verdict] = {}
    for tid, evs in by.items():
        said = [e for e in evs if e[2] == "message" and e[1] <= as_of]
        answers = [e[1] for e in said if e[3] == "ai"]
        if not answers:
            continue
        anchor = max(answers)
        end = anchor + dt.timedelta(hours=72)
        conditions = {
            "never_escalated": not any(e[2] == "escalated" and e[1] <= as_of for e in evs),
            "inactive_72h": not any(
                anchor <= e[1] <= min(end, as_of) and e[3] in ("customer", "human") for e in said
            ),
        }
        out[tid] = judged(end, as_of, conditions)
    return out


# --------------------------------------------------------------------------- helpers


def init(path: Path) -> Path:
    result = runner.invoke(app, ["init", str(path)])
    assert result.exit_code == 0, result.output
    return path


def ingest(ws: Path, files: list[Path], *extra: str, code: int = 0) -> dict[str, Any]:
    args = ["ingest", "--source", "zendesk", *extra, *map(str, files), "-w", str(ws)]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == code, result.output
    if code:
        return {"output": result.output + result.stderr + str(result.exception or "")}
    report: dict[str, Any] = json.loads(result.output)
    return report


def query(ws: Path, sql: str) -> list[tuple[Any, ...]]:
    with Workspace.open(ws).connect(read_only=True) as con:
        return con.execute(sql).fetchall()


def stored(ws: Path) -> set[Event]:
    types = ", ".join(f"'{t}'" for t in COMPARED)
    return {
        (r[0], r[1], r[2], r[3], r[4], r[5], r[6])
        for r in query(
            ws,
            "SELECT entity_id, ts, type, actor, value, attrs ->> '$.from', attrs ->> '$.to' "
            f"FROM events WHERE type IN ({types})",
        )
    }


def engine_verdicts(ws: Path, name: str) -> dict[str, Verdict]:
    definition = library.load(name)
    result = count(definition, Workspace.open(ws), as_of=AS_OF)
    try:
        table = result.verdicts.to_pylist()
    finally:
        result.close()
    return {
        str(r["entity_id"]): (str(r["status"]), {n: r[f"cond_{n}"] for n in definition.conditions})
        for r in table
    }


def without(events: set[Event], tickets: set[str]) -> set[Event]:
    return {e for e in events if e[0] not in tickets}


@pytest.fixture(scope="module")
def api_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = init(tmp_path_factory.mktemp("api") / "ws")
    ingest(ws, API_FILES)
    return ws


@pytest.fixture(scope="module")
def fivetran_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    ws = init(tmp_path_factory.mktemp("fivetran") / "ws")
    return ws, ingest(ws, FIVETRAN_FILES)


# --------------------------------------------------------------------------- recognition


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (FT / "ticket.csv", "fivetran_ticket"),
        (FT / "ticket_field_history.csv", "fivetran_ticket_field_history"),
        (FT / "ticket_comment.csv", "fivetran_ticket_comment"),
        (FT / "satisfaction_rating.csv", "fivetran_satisfaction_rating"),
        (AB / "ticket_comments.jsonl", "ticket_comments"),
        (FIX / "ticket_audits.jsonl", "audits"),
    ],
)
def test_each_etl_file_is_recognised_by_its_columns(path: Path, kind: str) -> None:
    with duckdb.connect() as con:
        assert get_adapter("zendesk").recognize(sniff(con, path)) == kind


def test_airbyte_streams_name_the_kinds_that_read_them() -> None:
    adapter = get_adapter("zendesk")
    assert dict(adapter.airbyte_streams) == {
        "tickets": "tickets",
        "ticket_audits": "audits",
        "ticket_comments": "ticket_comments",
        "satisfaction_ratings": "satisfaction_ratings",
        "ticket_metric_events": "ticket_metric_events",
    }
    assert set(adapter.airbyte_streams.values()) <= set(adapter.kinds)


# --------------------------------------------------------------------------- Fivetran


def test_fivetran_tables_give_the_documented_events(
    fivetran_ws: tuple[Path, dict[str, Any]],
) -> None:
    ws, report = fivetran_ws
    assert stored(ws) == fivetran_model()
    for f in report["files"]:
        assert f["rows_read"] == f["loaded"] + f["duplicate"] + f["quarantined"]
        assert f["rows_read"] == len(rows(Path(f["file"])))


def test_a_deleted_fivetran_row_is_quarantined_with_the_reason(
    fivetran_ws: tuple[Path, dict[str, Any]],
) -> None:
    ws, report = fivetran_ws
    deleted = [r for r in rows(FT / "ticket.csv") if r["_fivetran_deleted"] == "true"]
    assert len(deleted) == 1
    ticket_file = next(f for f in report["files"] if f["file"].endswith("ticket.csv"))
    assert ticket_file["quarantined"] == 1
    (file, row, column, reason), *rest = query(
        ws, "SELECT file, row_number, column_name, reason FROM quarantine"
    )
    assert not rest
    assert file.endswith("ticket.csv") and column == "_fivetran_deleted"
    assert row == rows(FT / "ticket.csv").index(deleted[0]) + 1
    assert f"ticket {deleted[0]['id']}" in reason and "deleted in Zendesk" in reason
    assert not query(ws, f"SELECT 1 FROM events WHERE entity_id = '{deleted[0]['id']}'")


def test_fivetran_verdicts_match_a_plain_reading(
    fivetran_ws: tuple[Path, dict[str, Any]],
) -> None:
    ws, _ = fivetran_ws
    model = fivetran_model()
    assert engine_verdicts(ws, "support_resolution_strict") == strict_verdicts(model)
    assert engine_verdicts(ws, "automated_resolution") == automated_verdicts(model)


def test_ai_author_ids_apply_to_the_field_history_and_comments(tmp_path: Path) -> None:
    ws = init(tmp_path / "ws")
    ingest(ws, FIVETRAN_FILES, "--option", "ai_author_ids=[777]")
    model = fivetran_model(frozenset({777}))
    assert stored(ws) == model
    # the email AI agent's solves (tickets 1017, 1018) are now the AI's
    assert {e[0] for e in model if e[2] == "closed" and e[3] == "ai"} >= {"1017", "1018"}


def test_parquet_tables_with_typed_columns_load_as_the_csv(
    tmp_path: Path, fivetran_ws: tuple[Path, dict[str, Any]]
) -> None:
    """Fivetran's Parquet holds timestamps, booleans and integers, not text."""
    types = {
        "created_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ", "updated": "TIMESTAMPTZ",
        "created": "TIMESTAMPTZ", "_fivetran_synced": "TIMESTAMPTZ", "_fivetran_deleted": "BOOLEAN",
        "public": "BOOLEAN", "id": "BIGINT", "ticket_id": "BIGINT", "user_id": "BIGINT",
        "requester_id": "BIGINT",
    }  # fmt: skip
    out = []
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        for path in FIVETRAN_FILES:
            cols = rows(path)[0].keys()
            select = ", ".join(
                f"CAST(regexp_replace(\"{c}\", ' UTC$', '+00') AS {types[c]}) AS \"{c}\""
                if c in types
                else f'"{c}"'
                for c in cols
            )
            target = tmp_path / path.with_suffix(".parquet").name
            con.execute(
                f"COPY (SELECT {select} FROM read_csv($p, all_varchar = true)) "
                f"TO '{target}' (FORMAT parquet)",
                {"p": str(path)},
            )
            out.append(target)
    ws = init(tmp_path / "ws")
    report = ingest(ws, out)
    assert {Path(f["file"]).stem: f["quarantined"] for f in report["files"]} == {
        "ticket": 1, "ticket_field_history": 0, "ticket_comment": 0, "satisfaction_rating": 0,
    }  # fmt: skip
    assert stored(ws) == stored(fivetran_ws[0])


def test_field_history_needs_the_ticket_table(tmp_path: Path) -> None:
    ws = init(tmp_path / "ws")
    out = ingest(ws, [FT / "ticket_field_history.csv"], code=1)["output"]
    assert "needs the Zendesk fivetran_ticket export" in out


def test_bad_fivetran_rows_are_quarantined_with_file_row_and_column(tmp_path: Path) -> None:
    src = rows(FT / "ticket_field_history.csv")
    header = list(src[0])
    bad = [dict(r) for r in src[:6]]
    bad[1]["updated"] = "05/01/2026 09:00"
    status_row = next(i for i, r in enumerate(bad) if r["field_name"] == "status")
    bad[status_row]["value"] = "archived"
    path = tmp_path / "ticket_field_history.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(bad)
    ws = init(tmp_path / "ws")
    report = ingest(ws, [FT / "ticket.csv", path])
    history = report["files"][-1]
    assert (history["rows_read"], history["quarantined"]) == (6, 2)
    got = query(ws, "SELECT row_number, column_name, reason FROM quarantine "
                    "WHERE file LIKE '%history%' ORDER BY 1")  # fmt: skip
    assert [(r[0], r[1]) for r in got] == sorted([(2, "updated"), (status_row + 1, "value")])
    assert any("'05/01/2026 09:00' is not a timestamp" in r[2] for r in got)
    assert any("unknown status 'archived'" in r[2] for r in got)


# --------------------------------------------------------------------------- copies of a row

SYNC_1 = "2026-03-01 02:00:00.000000 UTC"
SYNC_2 = "2026-03-02 02:00:00.000000 UTC"
TICKET_HEADER = "id,_fivetran_synced,_fivetran_deleted,created_at,requester_id,status,via_channel"
HISTORY_HEADER = "field_name,ticket_id,updated,_fivetran_synced,user_id,value"


def write_lines(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


#: Copies of Fivetran's history key (field_name, ticket_id, updated), as appends and CDC
#: re-syncs leave them, each with its role: 1003 at 10:00 has a stale 'solved' copy, the
#: current 'open' (the latest sync) and an older copy that agrees with it (the first of the
#: two in the file is loaded, the other is a duplicate); 1005 at 11:00 has two copies that
#: disagree with the same sync time, so neither can be taken.
HISTORY_COPIES = [
    (f"status,1003,2026-01-07 09:00:00.000000 UTC,{SYNC_1},21003,open", "current"),
    (f"status,1003,2026-01-07 10:00:00.000000 UTC,{SYNC_1},-1,solved", "superseded"),
    (f"status,1003,2026-01-07 10:00:00.000000 UTC,{SYNC_2},-1,open", "current"),
    (f"status,1003,2026-01-07 10:00:00.000000 UTC,{SYNC_1},-1,open", "current"),
    (f"status,1005,2026-01-07 09:00:00.000000 UTC,{SYNC_1},21005,open", "current"),
    (f"status,1005,2026-01-07 11:00:00.000000 UTC,{SYNC_1},-1,solved", "tied"),
    (f"status,1005,2026-01-07 11:00:00.000000 UTC,{SYNC_1},-1,pending", "tied"),
]


@pytest.mark.parametrize("reverse", [False, True], ids=["file_order", "reversed"])
def test_field_history_copies_are_settled_by_the_latest_sync_in_any_order(
    tmp_path: Path, reverse: bool
) -> None:
    ordered = HISTORY_COPIES[::-1] if reverse else HISTORY_COPIES
    tickets = write_lines(
        tmp_path / "ticket.csv",
        TICKET_HEADER,
        [
            f"1003,{SYNC_1},false,2026-01-07 09:00:00.000000 UTC,21003,open,native_messaging",
            f"1005,{SYNC_1},false,2026-01-07 09:00:00.000000 UTC,21005,open,native_messaging",
        ],
    )
    history = write_lines(
        tmp_path / "ticket_field_history.csv", HISTORY_HEADER, [line for line, _ in ordered]
    )
    ws = init(tmp_path / "ws")
    report = ingest(ws, [tickets, history])["files"][-1]
    role = {n: r for n, (_, r) in enumerate(ordered, start=1)}
    quarantined = {n for n, r in role.items() if r in ("superseded", "tied")}
    first_of: dict[str, int] = {}  # the first row in the file of each current fact
    for n, (line, r) in enumerate(ordered, start=1):
        fact = line.replace(SYNC_2, SYNC_1)  # copies that agree differ only in their sync
        if r == "current":
            first_of.setdefault(fact, n)
    loaded = set(first_of.values())
    assert (report["rows_read"], report["loaded"], report["duplicate"], report["quarantined"]) == (
        7,
        3,
        1,
        3,
    )
    at = dt.datetime(2026, 1, 7)
    hour = dt.timedelta(hours=1)
    # 1003's current 10:00 value is 'open': no close and no reopen; 1005's 11:00 is unknown
    assert stored(ws) == {
        ("1003", at + 9 * hour, "created", "customer", None, None, None),
        ("1005", at + 9 * hour, "created", "customer", None, None, None),
        ("1003", at + 9 * hour, "status_changed", "customer", None, None, "open"),
        ("1003", at + 10 * hour, "status_changed", "ai", None, "open", "open"),
        ("1005", at + 9 * hour, "status_changed", "customer", None, None, "open"),
    }
    # every stored event of the history comes from a loaded row, never from a duplicate
    sources = query(ws, "SELECT DISTINCT source FROM events WHERE source LIKE 'ticket_field%'")
    assert {int(s.rsplit(":", 1)[1]) for (s,) in sources} == loaded
    got = {
        r[0]: (r[1], r[2])
        for r in query(ws, "SELECT row_number, column_name, reason FROM quarantine")
    }
    assert set(got) == quarantined
    assert {column for column, _ in got.values()} == {"_fivetran_synced"}
    stale = next(n for n, r in role.items() if r == "superseded")
    current = first_of[f"status,1003,2026-01-07 10:00:00.000000 UTC,{SYNC_1},-1,open"]
    assert f"row {stale} (value 'solved'" in got[stale][1]
    assert f"superseded by row {current} (value 'open'" in got[stale][1]
    tied = sorted(n for n, r in role.items() if r == "tied")
    for n in tied:
        assert all(f"row {m}: value" in got[n][1] for m in tied)
        assert f"the same latest _fivetran_synced {SYNC_1[:19]}" in got[n][1]


@pytest.mark.parametrize("reverse", [False, True], ids=["file_order", "reversed"])
def test_fivetran_ticket_copies_keep_the_latest_sync_in_any_order(
    tmp_path: Path, reverse: bool
) -> None:
    lines = [
        (f"1004,{SYNC_1},false,2026-01-08 09:00:00.000000 UTC,21004,open,email", "superseded"),
        (f"1004,{SYNC_2},false,2026-01-09 09:00:00.000000 UTC,21004,solved,email", "loaded"),
        (f"1006,{SYNC_1},false,2026-01-08 09:00:00.000000 UTC,21006,open,email", "tied"),
        (f"1006,{SYNC_1},false,2026-01-10 09:00:00.000000 UTC,21006,open,email", "tied"),
        (f"1007,{SYNC_1},false,2026-01-08 09:00:00.000000 UTC,21007,open,email", "same"),
        (f"1007,{SYNC_2},false,2026-01-08 09:00:00.000000 UTC,21007,open,email", "same"),
        (f"1008,{SYNC_1},false,2026-01-08 09:00:00.000000 UTC,21008,open,email", "superseded"),
        (f"1008,{SYNC_2},true,2026-01-08 09:00:00.000000 UTC,21008,open,email", "deleted"),
    ]
    ordered = lines[::-1] if reverse else lines
    path = write_lines(tmp_path / "ticket.csv", TICKET_HEADER, [line for line, _ in ordered])
    ws = init(tmp_path / "ws")
    report = ingest(ws, [path])["files"][0]
    # 1004 and one 1007 loaded, the other 1007 a duplicate; the rest quarantined
    assert (report["rows_read"], report["loaded"], report["duplicate"], report["quarantined"]) == (
        8,
        2,
        1,
        5,
    )
    assert query(ws, "SELECT entity_id, ts FROM events ORDER BY 1") == [
        ("1004", dt.datetime(2026, 1, 9, 9)),
        ("1007", dt.datetime(2026, 1, 8, 9)),
    ]
    role = {n: r for n, (_, r) in enumerate(ordered, start=1)}
    got = dict(query(ws, "SELECT row_number, reason FROM quarantine"))
    assert set(got) == {n for n, r in role.items() if r in ("superseded", "tied", "deleted")}
    for n, r in role.items():
        if r == "superseded":
            assert "is superseded by row" in got[n] and "synced later" in got[n]
        if r == "tied":
            assert all(f"row {m}: status open" in got[n] for m, q in role.items() if q == "tied")
        if r == "deleted":
            assert "deleted in Zendesk" in got[n]


# --------------------------------------------------------------------------- equivalence


def test_api_and_fivetran_give_the_same_events_but_what_fivetran_cannot_carry(
    api_ws: Path, fivetran_ws: tuple[Path, dict[str, Any]]
) -> None:
    api, etl = stored(api_ws), stored(fivetran_ws[0])
    assert without(api, ETL_CANNOT_CARRY) == without(etl, ETL_CANNOT_CARRY)
    assert {e[0] for e in api ^ etl} == ETL_CANNOT_CARRY
    # 1015: the same close, the customer's instead of the AI's
    close = {(e[1], e[3]) for e in api if e[0] == "1015" and e[2] == "closed"}
    assert {(t, "customer") for t, _ in close} == {
        (e[1], e[3]) for e in etl if e[0] == "1015" and e[2] == "closed"
    }
    assert {a for _, a in close} == {"ai"}
    # 1012: two status changes in one second leave one history row, the last
    same = max(e[1] for e in api if e[0] == "1012" and e[2] == "reopened")
    statuses = [e[5:] for e in etl if e[0] == "1012" and e[1] == same and e[2] == "status_changed"]
    assert statuses == [("open", "open")]


@pytest.mark.parametrize("name", ["support_resolution_strict", "automated_resolution"])
def test_api_and_fivetran_give_the_same_verdicts(
    api_ws: Path, fivetran_ws: tuple[Path, dict[str, Any]], name: str
) -> None:
    api, etl = engine_verdicts(api_ws, name), engine_verdicts(fivetran_ws[0], name)
    assert {k: v for k, v in api.items() if k not in ETL_CANNOT_CARRY} == {
        k: v for k, v in etl.items() if k not in ETL_CANNOT_CARRY
    }
    if name == "support_resolution_strict":
        # the AI's close of 1015 and 1012 is not in the ETL shape: no candidate there
        assert api["1015"][0] == "counted" and api["1012"][0] == "not_counted"
        assert "1015" not in etl and "1012" not in etl


# --------------------------------------------------------------------------- Airbyte


def airbyte_comment_records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (AB / "ticket_comments.jsonl").read_text().splitlines()]


def test_airbyte_comments_give_the_api_messages(tmp_path: Path, api_ws: Path) -> None:
    """API tickets and ratings, the status history from Fivetran, the comments from
    Airbyte's ticket_comments stream: the same events as the API's audits."""
    ws = init(tmp_path / "ws")
    ingest(ws, [p for p in API_FILES if not p.name.startswith("ticket_audits")])
    report = ingest(
        ws, [FT / "ticket_field_history.csv", AB / "ticket_comments.jsonl"], "--partial"
    )
    comments = report["files"][-1]
    assert (comments["rows_read"], comments["loaded"]) == (len(airbyte_comment_records()),) * 2
    api, mixed = stored(api_ws), stored(ws)
    assert without(api, ETL_CANNOT_CARRY) == without(mixed, ETL_CANNOT_CARRY)
    kinds = ("message", "note")
    assert {e for e in api if e[2] in kinds} == {e for e in mixed if e[2] in kinds}


def test_airbyte_comments_after_the_audits_are_the_same_comments(tmp_path: Path) -> None:
    """A comment of the stream is the audit's Comment event: the same event id, so loading
    both streams repeats nothing (the stream's records are duplicates)."""
    ws = init(tmp_path / "ws")
    before = ingest(ws, API_FILES)
    events = before["totals"]["events_loaded"]
    report = ingest(ws, [AB / "ticket_comments.jsonl"])
    n = len(airbyte_comment_records())
    assert (report["files"][0]["rows_read"], report["files"][0]["duplicate"]) == (n, n)
    assert report["totals"]["events_loaded"] == 0
    assert query(ws, "SELECT count(*) FROM events")[0][0] == events


def test_airbyte_comments_without_status_history_do_not_guess_the_ai(tmp_path: Path) -> None:
    """Without the history of an AI agent ticket no escalation can be seen, so the AI agent
    ticket rule is not applied, and the event says so."""
    ws = init(tmp_path / "ws")
    ingest(ws, [*API_FILES[:3], AB / "ticket_comments.jsonl"])
    records = airbyte_comment_records()
    bot = [r for r in records if r["author_id"] == 778]
    got = query(ws, "SELECT actor, attrs ->> '$.ai_agent_rule' FROM events "
                    "WHERE type = 'message' AND attrs ->> '$.comment_author_id' = '778'")  # fmt: skip
    assert len(got) == len(bot) and {g[0] for g in got} == {"human"}
    assert all(g[1] and g[1].startswith("not applied") for g in got)


def test_the_airbyte_record_file_carries_the_api_records() -> None:
    """The record file holds each stream's records as the API returns them (the streams the
    adapter maps), one RECORD message a line, and a STATE message."""
    lines = [json.loads(line) for line in (AB / "zendesk.jsonl").read_text().splitlines()]
    records = [m["record"] for m in lines if m["type"] == "RECORD"]
    assert {m["type"] for m in lines} == {"RECORD", "STATE"}
    streams = {r["stream"] for r in records}
    assert streams <= set(get_adapter("zendesk").airbyte_streams)
    assert {"tickets", "ticket_audits", "ticket_comments", "satisfaction_ratings"} <= streams
    assert all(set(r) == {"stream", "data", "emitted_at"} for r in records)
    comments = [r["data"] for r in records if r["stream"] == "ticket_comments"]
    assert comments == airbyte_comment_records()
    audits = json.loads((FIX / "ticket_audits.json").read_text())["audits"]
    by_id = {r["data"]["id"]: r["data"] for r in records if r["stream"] == "ticket_audits"}
    assert all(by_id[a["id"]] == a for a in audits)


def test_bad_comment_records_are_quarantined_with_the_field(tmp_path: Path) -> None:
    good, *_ = airbyte_comment_records()
    bad_ticket = {**good, "id": good["id"] + 1, "ticket_id": "ticket-1001"}
    bad_time = {**good, "id": good["id"] + 2, "created_at": "yesterday"}
    bad_public = {**good, "id": good["id"] + 3, "public": "maybe"}
    path = tmp_path / "ticket_comments.jsonl"
    path.write_text(
        "\n".join(json.dumps(r) for r in (good, bad_ticket, bad_time, bad_public)) + "\n",
        encoding="utf-8",
    )
    ws = init(tmp_path / "ws")
    report = ingest(ws, [*API_FILES[:3], path])
    comments = report["files"][-1]
    assert (comments["rows_read"], comments["loaded"], comments["quarantined"]) == (4, 1, 3)
    got = query(ws, "SELECT row_number, column_name, reason FROM quarantine ORDER BY 1")
    assert [(r[0], r[1]) for r in got] == [(2, "ticket_id"), (3, "created_at"), (4, "public")]
    assert "created_at 'yesterday' is not a timestamp" in got[1][2]
