"""The adapter framework itself: the CLI around --source, the choices that follow the events
into every report, and the record reader's handling of pages, bare records and broken lines.

A toy adapter (registered for the test only) keeps these independent of any one platform."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import duckdb
import pytest
from pydantic import Field
from typer.testing import CliRunner

import truecount.adapters as adapters
import truecount.cli.meter_cmds
import truecount.cli.reconcile_cmds
import truecount.cli.workspace_cmds  # noqa: F401  (registers the verbs)
from truecount.adapters.base import Adapter, AdapterOptions, FileKind, Sniff
from truecount.cli.app import app
from truecount.errors import InputError
from truecount.ingest.choices import parse_label, recorded_choices

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SERVICENOW = ROOT / "tests" / "fixtures" / "servicenow"


class ToyOptions(AdapterOptions):
    bot: str = Field("bot", description="the author name that is the AI")


class Toy(Adapter):
    """Tickets in pages {"items": [...]}; notes need tickets."""

    name: ClassVar[str] = "toy"
    title: ClassVar[str] = "Toy desk"
    options_model = ToyOptions
    kinds: ClassVar[dict[str, FileKind]] = {
        "tickets": FileKind("tickets", "tickets", array_key="items"),
        "notes": FileKind("notes", "notes on tickets", needs=("tickets",), array_key="notes"),
    }

    def recognize(self, sniff: Sniff) -> str | None:
        if "items" in sniff.keys or "closed_by" in sniff.record_keys:
            return "tickets"
        if "notes" in sniff.keys:
            return "notes"
        return None

    def events_sql(self, kind: str, options: AdapterOptions) -> tuple[str, dict[str, object]]:
        assert isinstance(options, ToyOptions)
        sql = """
        SELECT 'toy:' || $kind || ':' || (__tc_record ->> 'id') AS event_id, __tc_record ->> 'id' AS entity_id,
               TRY_CAST(__tc_record ->> 'at' AS TIMESTAMP) AS ts, 'closed' AS type,
               CASE WHEN __tc_record ->> 'closed_by' = $bot THEN 'ai' ELSE 'human' END AS actor,
               NULL AS value, json_object('origin', json_object('ts', 'item.at')) AS attrs,
               NULL AS source, NULL AS recorded_at, NULL AS seq, __tc_row, 0 AS __tc_sub,
               CASE WHEN __tc_record ->> 'id' IS NULL THEN 'item without an id' END
                   AS __tc_problem,
               CASE WHEN __tc_record ->> 'id' IS NULL THEN 'id' END AS __tc_problem_column,
               CASE WHEN __tc_record ->> 'id' IS NULL THEN __tc_record END AS __tc_raw
        FROM __tc_records
        """
        return sql, {"bot": options.bot, "kind": kind}


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    module = types.ModuleType("truecount.adapters.toy")
    module.ADAPTER = Toy()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "truecount.adapters.toy", module)
    monkeypatch.setitem(adapters._MODULES, "toy", "truecount.adapters.toy")
    yield


PAGE_1 = {"items": [{"id": "1", "at": "2026-01-05T10:00:00", "closed_by": "bot"},
                    {"id": "2", "at": "2026-01-06T10:00:00", "closed_by": "ann"}],
          "next_page": "p2"}  # fmt: skip
PAGE_2 = {"items": [{"id": "2", "at": "2026-01-06T10:00:00", "closed_by": "ann"},
                    {"at": "2026-01-07T10:00:00"}],
          "next_page": None}  # fmt: skip


def test_pages_overlap_broken_line_and_counts_add_up(toy: None, tmp_path: Path) -> None:
    f = tmp_path / "tickets.jsonl"
    f.write_text(json.dumps(PAGE_1) + "\n" + json.dumps(PAGE_2) + '\n{"items": [{"id": "9"\n')
    con = duckdb.connect()
    report = adapters.ingest_source(con, "toy", [f])
    (r,) = report.files
    # 2 + 2 records in the pages, and the broken third line is one record
    assert (r.rows_read, r.loaded, r.duplicate, r.quarantined) == (5, 2, 1, 2)
    reasons = dict(con.execute("SELECT row_number, reason FROM quarantine").fetchall())
    assert reasons[4] == "item without an id"
    assert "line 3 is not valid JSON" in reasons[5]
    rows = con.execute("SELECT entity_id, actor, attrs FROM events ORDER BY 1").fetchall()
    assert [(e, a) for e, a, _ in rows] == [("1", "ai"), ("2", "human")]
    attrs = json.loads(rows[0][2])
    assert attrs["vendor"] == "toy" and attrs["record"] == "tickets"
    assert attrs["origin"] == {"ts": "item.at"}


def test_bare_records_and_a_json_array_read_like_pages(toy: None, tmp_path: Path) -> None:
    bare = tmp_path / "bare.jsonl"
    bare.write_text("\n".join(json.dumps(x) for x in PAGE_1["items"]) + "\n\n")
    array = tmp_path / "array.json"
    array.write_text(json.dumps(PAGE_1["items"]))
    for f in (bare, array):
        con = duckdb.connect()
        (r,) = adapters.ingest_source(con, "toy", [f]).files
        assert (r.rows_read, r.loaded) == (2, 2), f


def test_truncated_json_document_is_refused_with_its_position(toy: None, tmp_path: Path) -> None:
    f = tmp_path / "tickets.json"
    f.write_text(json.dumps(PAGE_1)[:-20])
    with pytest.raises(InputError) as err:
        adapters.ingest_source(duckdb.connect(), "toy", [f])
    assert "tickets.json" in str(err.value) and "not valid JSON" in str(err.value)
    assert "line 1, column" in str(err.value)


def test_missing_companion_file_and_partial(toy: None, tmp_path: Path) -> None:
    notes = tmp_path / "notes.json"
    notes.write_text(json.dumps({"notes": [{"id": "1", "at": "2026-01-05T11:00:00"}]}))
    con = duckdb.connect()
    with pytest.raises(InputError) as err:
        adapters.ingest_source(con, "toy", [notes])
    assert "needs the Toy desk tickets export" in str(err.value) and "--partial" in str(err.value)
    assert adapters.ingest_source(con, "toy", [notes], partial=True).loaded == 1
    # once tickets were ingested before, notes alone are fine
    con2 = duckdb.connect()
    tickets = tmp_path / "t.json"
    tickets.write_text(json.dumps(PAGE_1))
    adapters.ingest_source(con2, "toy", [tickets])
    assert adapters.ingest_source(con2, "toy", [notes]).loaded == 1


def test_other_vendor_file_names_the_right_source(toy: None) -> None:
    with pytest.raises(InputError) as err:
        adapters.ingest_source(duckdb.connect(), "toy", [SERVICENOW / "incident_updates.csv"])
    text = str(err.value)
    assert "incident_updates.csv" in text and "not a Toy desk export" in text
    assert "--source servicenow" in text


def test_options_are_checked_and_recorded(toy: None, tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        adapters.ingest_source(duckdb.connect(), "toy", [], {"bott": "x"})
    assert "unknown option 'bott'" in str(err.value) and "bot" in str(err.value)
    f = tmp_path / "t.json"
    f.write_text(json.dumps(PAGE_1))
    con = duckdb.connect()
    adapters.ingest_source(con, "toy", [f], {"bot": "ann"})
    assert con.execute("SELECT actor FROM events ORDER BY entity_id").fetchall() == [
        ("human",),
        ("ai",),
    ]
    (label,) = con.execute("SELECT mapping FROM ingest_log").fetchone() or ()
    assert parse_label(str(label)) == ("toy", "tickets", {"bot": "ann"})
    (choice,) = recorded_choices(con)
    assert (choice.source, choice.options, choice.kinds) == ("toy", {"bot": "ann"}, ("tickets",))


def test_unknown_source_suggests(toy: None) -> None:
    with pytest.raises(InputError) as err:
        adapters.get_adapter("servicenw")
    assert "servicenow" in str(err.value)


# ------------------------------------------------------------------------------- the CLI


def test_cli_source_choices_reach_count_and_sources_lists_options(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws)]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "ingest", "--source", "servicenow", "--option", "ai_users=virtual.agent",
            str(SERVICENOW / "incident_updates.csv"), "-w", str(ws), "--format", "json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "source servicenow" in json.loads(result.output)["mapping"]
    result = runner.invoke(
        app,
        ["count", str(ROOT / "examples" / "resolved_ticket.yaml"), "-w", str(ws), "-f", "json"],
    )
    assert result.exit_code == 0, result.output
    (choice,) = json.loads(result.output)["choices"]
    assert choice["source"] == "servicenow" and choice["options"]["ai_users"] == ["virtual.agent"]
    table = runner.invoke(
        app, ["count", str(ROOT / "examples" / "resolved_ticket.yaml"), "-w", str(ws)]
    )
    assert "events read with --source servicenow" in table.output

    listed = runner.invoke(app, ["sources", "--format", "json"])
    assert listed.exit_code == 0
    names = {s["source"]: s for s in json.loads(listed.output)["sources"]}
    assert "servicenow" in names
    assert any(o["name"] == "ai_users" and o["description"] for o in names["servicenow"]["options"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "servicenow", "--mapping", "m.yaml"], "not both"),
        (["--option", "a=b"], "apply to --source"),
        (["--source", "servicenow", "--option", "novalue"], "KEY=VALUE"),
    ],
)
def test_cli_source_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    ws = tmp_path / "ws"
    runner.invoke(app, ["init", str(ws)])
    result = runner.invoke(
        app, ["ingest", *args, str(SERVICENOW / "incident_updates.csv"), "-w", str(ws)]
    )
    assert result.exit_code == 2
    assert message in result.output


def test_cli_unknown_source_is_an_input_error(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    runner.invoke(app, ["init", str(ws)])
    result = runner.invoke(
        app,
        [
            "ingest",
            "--source",
            "servicenw",
            str(SERVICENOW / "incident_updates.csv"),
            "-w",
            str(ws),
        ],
    )
    assert result.exit_code == 2
    assert "did you mean 'servicenow'" in result.output
