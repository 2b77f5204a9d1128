"""Intercom exports in the shapes buyers hold: the legacy Operator bot, any assignee type,
API 1.x conversations, and Airbyte's flattened streams.

Every expectation is computed in plain Python from the raw fixture records, with the model of
docs/sources/intercom.md in test_adapter_intercom.py (who is the AI, when a conversation
reopens); the Airbyte shape is also compared, event by event and verdict by verdict, with the
same conversations in the API shape.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from test_adapter_intercom import (
    AS_OF,
    FIX,
    V1X,
    V215,
    V216,
    actor,
    counted,
    events,
    ingest,
    options,
    quarantine,
    records,
    story,
    strict_counted,
    unix,
    vendor_counted,
)
from truecount import library
from truecount.adapters import get_adapter
from truecount.engine.run import count
from truecount.errors import InputError
from truecount.workspace import Workspace

AIRBYTE = FIX / "airbyte"
AB_FILE = AIRBYTE / "intercom.jsonl"
AB_CONVERSATIONS = AIRBYTE / "conversations.jsonl"
AB_PARTS = AIRBYTE / "conversation_parts.jsonl"
BAD_PARTS = FIX / "bad" / "conversation_parts_millis.jsonl"
#: attrs that say where an event was read from, not what happened: they differ by shape.
SHAPE_ATTRS = frozenset({"record", "channel", "parts_from", "conversation_total_parts"})


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "ws")


def other(ws: Workspace, name: str) -> Workspace:
    return Workspace.init(ws.root.parent / name)


def raw(path: Path) -> list[dict[str, Any]]:
    found = records(path)
    assert all(r is not None for r in found)
    return [r for r in found if r is not None]


def comparable(ws: Workspace) -> set[tuple[Any, ...]]:
    """Events as facts: entity, time, type, actor, value, order and attrs (not event ids)."""
    return {
        (
            e["entity_id"],
            e["ts"],
            e["type"],
            e["actor"],
            e["value"],
            e["seq"],
            json.dumps(
                {k: v for k, v in e["attrs"].items() if k not in SHAPE_ATTRS}, sort_keys=True
            ),
        )
        for e in events(ws)
    }


def verdicts(definition: str, ws: Workspace) -> dict[str, str]:
    result = count(library.load(definition), ws, as_of=AS_OF)
    try:
        return {v["entity_id"]: v["status"] for v in result.verdicts.to_pylist()}
    finally:
        result.con.close()


# --------------------------------------------------------------------------- (a) Operator


@pytest.mark.parametrize("bot_actor", ["system", "ai"])
def test_operator_canned_reply_is_not_an_ai_answer(ws: Workspace, bot_actor: str) -> None:
    ingest(ws, [V216, V1X], {"bot_actor": bot_actor} if bot_actor != "system" else {})
    o = options(bot_actor=bot_actor)
    for rec in raw(V216) + raw(V1X):
        parts = rec["conversation_parts"]["conversation_parts"]
        got = [
            (e["attrs"]["part_id"], e["actor"], e["attrs"]["actor_basis"])
            for e in events(ws, f"entity_id = '{rec['id']}'")
            if e["event_id"].startswith("intercom:part:") and e["event_id"].count(":") == 2
        ]
        want = [(p["id"], actor(p["author"], o)) for p in parts]
        assert sorted((pid, who) for pid, who, _ in got) == sorted(want), rec["id"]
    operator = [
        e for e in events(ws, "attrs->>'author_id' = '8100003'") if e["event_id"].count(":") == 2
    ]
    assert operator, "the fixtures hold Operator parts"
    assert {e["actor"] for e in operator} == {bot_actor}
    assert {e["attrs"]["actor_basis"] for e in operator} == {"bot_actor"}
    # The vendor's rule bills a conversation whose only "AI answer" is Operator's canned
    # reply exactly when every bot is taken for the AI.
    reference = {story(rec, o).cid for rec in raw(V216) + raw(V1X) if vendor_counted(story(rec, o))}
    assert counted("support_resolution_vendor", ws) == reference
    assert ("50001" in reference) == (bot_actor == "ai")
    assert "50002" in reference  # Fin's own answer counts under either reading


def test_default_is_recorded_and_bot_ids_can_be_named(ws: Workspace) -> None:
    assert get_adapter("intercom").parse_options({}).described()["bot_actor"] == "system"
    # An export without AI-agent flags (API 1.x): Fin's bot id named in ai_admin_ids.
    ingest(ws, [V1X], {"ai_admin_ids": "8100003"})
    o = options(ai_admin_ids="8100003")
    closes = {e["entity_id"]: e for e in events(ws, "type = 'closed'")}
    assert closes["60003"]["actor"] == "ai"
    assert closes["60003"]["attrs"]["actor_basis"] == "ai_admin_ids"
    reference = {s.cid for s in map(lambda r: story(r, o), raw(V1X)) if strict_counted(s)}
    assert counted("support_resolution_strict", ws) == reference == {"60003"}


def test_fin_without_flags_is_named_not_guessed(ws: Workspace, tmp_path: Path) -> None:
    """An export whose parts carry no AI-agent flags: Fin's parts are a bot's like Operator's.
    The conversation says Fin took part, so the created event says no part could be
    attributed; naming Fin's bot id attributes them."""
    rec = next(r for r in raw(V215) if r["id"] == "20003")
    for p in rec["conversation_parts"]["conversation_parts"]:
        for flag in ("from_ai_agent", "is_ai_answer"):
            p["author"].pop(flag, None)
    path = tmp_path / "unflagged.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    fin_id = rec["conversation_parts"]["conversation_parts"][0]["author"]["id"]
    for given, ai_parts in (({}, 0), ({"ai_admin_ids": fin_id}, 2)):
        target = other(ws, f"w{ai_parts}")
        ingest(target, [path], given)
        o = options(**given)
        want = sum(
            1
            for p in rec["conversation_parts"]["conversation_parts"]
            if actor(p["author"], o) == "ai"
        )
        [created] = events(target, "type = 'created'")
        assert created["attrs"]["ai_parts"] == want == ai_parts
        assert created["attrs"]["ai_unattributed"] is (ai_parts == 0)
        assert rec["ai_agent_participated"] is True


# --------------------------------------------------------------------------- (b) assignees


def test_any_assignee_type_is_read(ws: Workspace, tmp_path: Path) -> None:
    recs = raw(V216)
    shared = next(r for r in recs if r["id"] == "50003")
    odd = json.loads(json.dumps(shared))
    odd["id"] = "50099"
    for p in odd["conversation_parts"]["conversation_parts"]:
        p["id"] = "9" + p["id"]
    odd["conversation_parts"]["conversation_parts"][1]["assigned_to"] = {
        "type": "custom_object_instance",
        "id": "77",
    }
    path = tmp_path / "unstable.jsonl"
    path.write_text(json.dumps(shared) + "\n" + json.dumps(odd) + "\n")
    report = ingest(ws, [path], {"api_version": "unstable"})
    assert (report.files[0].loaded, report.files[0].quarantined) == (2, 0)
    assert quarantine(ws) == []
    by_conv = defaultdict(list)
    for e in events(ws, "type = 'assigned'"):
        by_conv[e["entity_id"]].append(
            (e["attrs"].get("assignee_type"), e["attrs"].get("assignee_raw_type"))
        )
    assert sorted(by_conv["50003"]) == [("customer", "contact"), ("team", "team")]
    assert sorted(by_conv["50099"]) == [("other", "custom_object_instance"), ("team", "team")]
    # A contact "assignee" is not a hand-over to a person: only Fin's hand-over to the team
    # is an escalation.
    escalated = events(ws, "type = 'escalated'")
    assert [(e["entity_id"], e["attrs"]["assignee_type"]) for e in escalated] == [
        ("50003", "team"),
        ("50099", "team"),
    ]


# --------------------------------------------------------------------------- (c) API 1.x


def test_api_1x_conversations_are_read_whole(ws: Workspace) -> None:
    report = ingest(ws, [V1X])
    assert (report.files[0].loaded, report.files[0].quarantined) == (3, 0)
    o = options()
    for rec in raw(V1X):
        evs = events(ws, f"entity_id = '{rec['id']}'")
        [created] = [e for e in evs if e["type"] == "created"]
        message = rec["conversation_message"]
        assert unix(created["ts"]) == rec["created_at"]
        assert created["actor"] == actor(message["author"], o) != "system"
        assert created["attrs"]["api_shape"] == "1.x"
        assert created["attrs"]["origin"]["actor"] == "conversation_message.author"
        assert created["attrs"]["source_author_type"] == message["author"]["type"]
        s = story(rec, o)
        closes = sorted((unix(e["ts"]), e["actor"]) for e in evs if e["type"] == "closed")
        assert closes == sorted((t, who) for t, _, who in s.closes)
        reopens = sorted(unix(e["ts"]) for e in evs if e["type"] == "reopened")
        assert reopens == sorted(s.reopens)
        messages = sorted((unix(e["ts"]), e["actor"]) for e in evs if e["type"] == "message")
        assert messages == sorted((t, who) for t, _, who in s.messages)
        rated = [(unix(e["ts"]), e["value"]) for e in evs if e["type"] == "rated"]
        rating = rec.get("conversation_rating")
        assert rated == ([(rating["created_at"], rating["rating"])] if rating else [])
    assert events(ws, "entity_id = '60002' AND type = 'created'")[0]["actor"] == "human"


# --------------------------------------------------------------------------- (d) Airbyte


def part_ids(recs: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [
        (r["id"], [p["id"] for p in r["conversation_parts"]["conversation_parts"]]) for r in recs
    ]


def nested_from_airbyte() -> list[dict[str, Any]]:
    """The conversations rebuilt from the two Airbyte streams, in plain Python: each
    conversation with its parts in the stream's order."""
    parts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    total: dict[str, int] = {}
    for p in raw(AB_PARTS):
        cid = str(p["conversation_id"])
        parts[cid].append(p)
        total[cid] = p["conversation_total_parts"]
    return [
        {
            **c,
            "conversation_parts": {
                "type": "conversation_part.list",
                "conversation_parts": parts[c["id"]],
                "total_count": total[c["id"]],
            },
        }
        for c in raw(AB_CONVERSATIONS)
    ]


def test_airbyte_streams_give_the_api_shapes_events(ws: Workspace) -> None:
    ingest(ws, [V215])
    etl = other(ws, "etl")
    # The plain JSON Lines copies name no stream, so the conversations read as summaries,
    # which on their own would need the by-id export: --partial.
    report = ingest(etl, [AB_CONVERSATIONS, AB_PARTS], partial=True)
    names = [Path(f.file).name for f in report.files]
    assert names == [AB_PARTS.name, AB_CONVERSATIONS.name], "the parts are loaded first"
    by_name = {Path(f.file).name: f for f in report.files}
    assert by_name[AB_PARTS.name].rows_read == len(raw(AB_PARTS))
    assert by_name[AB_PARTS.name].quarantined == 0
    assert by_name[AB_CONVERSATIONS.name].rows_read == len(raw(AB_CONVERSATIONS))
    assert comparable(etl) == comparable(ws)
    created = events(etl, "type = 'created'")
    assert {e["attrs"]["parts_from"] for e in created} == {"conversation_parts"}
    assert not any(e["attrs"]["parts_missing"] for e in created)
    # Verdicts: the same in both shapes, and as the plain-Python reading of the streams says.
    o = options()
    nested = nested_from_airbyte()
    assert part_ids(nested) == part_ids(raw(V215)), "the same conversations and parts"
    strict = {story(r, o).cid for r in nested if strict_counted(story(r, o))}
    vendor = {story(r, o).cid for r in nested if vendor_counted(story(r, o))}
    for definition, reference in (
        ("support_resolution_strict", strict),
        ("support_resolution_vendor", vendor),
    ):
        assert verdicts(definition, etl) == verdicts(definition, ws)
        assert counted(definition, etl) == reference


def test_airbyte_record_file(ws: Workspace) -> None:
    """The Airbyte record file: every line a RECORD message naming its stream."""
    lines = [json.loads(line) for line in AB_FILE.read_text().splitlines()]
    assert {ln["type"] for ln in lines} == {"RECORD"}
    streams = [ln["record"]["stream"] for ln in lines]
    assert streams.count("conversations") == len(raw(AB_CONVERSATIONS))
    assert streams.count("conversation_parts") == len(raw(AB_PARTS))
    assert [ln["record"]["data"] for ln in lines] == raw(AB_CONVERSATIONS) + raw(AB_PARTS)
    assert get_adapter("intercom").airbyte_streams == {
        "conversations": "conversations",
        "conversation_parts": "conversation_parts",
    }
    report = ingest(ws, [AB_FILE])
    # One part of the report per stream, the parts first; every record loaded.
    got = [(Path(f.file).name, f.rows_read, f.loaded, f.quarantined) for f in report.files]
    assert got == [
        (f"{AB_FILE.name}#conversation_parts", len(raw(AB_PARTS)), len(raw(AB_PARTS)), 0),
        (
            f"{AB_FILE.name}#conversations",
            len(raw(AB_CONVERSATIONS)),
            len(raw(AB_CONVERSATIONS)),
            0,
        ),
    ]
    api = other(ws, "api")
    ingest(api, [V215])
    assert comparable(ws) == comparable(api)


def test_a_part_written_twice_is_a_duplicate(ws: Workspace, tmp_path: Path) -> None:
    """Overlapping incremental syncs repeat parts: the repeat changes nothing."""
    lines = AB_PARTS.read_text().splitlines()
    path = tmp_path / "conversation_parts.jsonl"
    path.write_text("\n".join([*lines, lines[0], lines[5]]) + "\n")
    report = ingest(ws, [path, AB_CONVERSATIONS], partial=True)
    parts = next(f for f in report.files if Path(f.file).name == path.name)
    assert (parts.rows_read, parts.loaded, parts.duplicate) == (len(lines) + 2, len(lines), 2)
    api = other(ws, "api")
    ingest(api, [V215])
    assert comparable(ws) == comparable(api)


def test_parts_alone_need_their_conversations(ws: Workspace) -> None:
    with pytest.raises(InputError) as err:
        ingest(ws, [AB_PARTS])
    text = str(err.value)
    assert "conversation_parts" in text and "conversations" in text and "--partial" in text


def test_a_bad_part_sets_its_conversation_aside(ws: Workspace) -> None:
    report = ingest(ws, [BAD_PARTS], partial=True)
    f = report.files[0]
    rows = raw(BAD_PARTS)
    bad = {str(p["conversation_id"]) for p in rows if p["created_at"] >= 10**11}
    want_quarantined = sum(1 for p in rows if str(p["conversation_id"]) in bad)
    assert (f.rows_read, f.loaded, f.quarantined) == (
        len(rows),
        len(rows) - want_quarantined,
        want_quarantined,
    )
    reasons = {row: (column, reason) for _, row, column, reason in quarantine(ws)}
    millis = next(i + 1 for i, p in enumerate(rows) if p["created_at"] >= 10**11)
    assert "milliseconds" in reasons[millis][1]
    assert all(c == "conversation_part.created_at" for c, _ in reasons.values())
    assert any("has a bad part" in r for _, r in reasons.values())
    assert {e["entity_id"] for e in events(ws)} == {str(p["conversation_id"]) for p in rows} - bad
