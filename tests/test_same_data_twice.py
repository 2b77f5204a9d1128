"""The same data loaded twice: a renamed copy is skipped, an overlapping export adds only the new.

Why: ids derived from the file name (a mapped file without an event id column, a vendor record
without its own id) are new for a renamed copy, so without the hash check its events would be
counted twice and nothing would say so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
from typer.testing import CliRunner

import truecount.cli.workspace_cmds  # noqa: F401  (registers the verbs)
from truecount.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "support"
ZENDESK = ROOT / "tests" / "fixtures" / "zendesk"
runner = CliRunner()


def _ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws)]).exit_code == 0
    return ws


def _ingest(ws: Path, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["ingest", *args, "-w", str(ws), "--format", "json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    for f in report["files"]:  # the counts add up per file
        assert f["rows_read"] == f["loaded"] + f["duplicate"] + f["quarantined"]
    return report


def _events(ws: Path) -> int:
    with duckdb.connect(str(ws / "truecount.duckdb"), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])


def test_renamed_copy_of_a_mapped_file_is_skipped(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    copy = tmp_path / "copy_of_updates.csv"
    shutil.copyfile(EXAMPLES / "ticket_updates.csv", copy)
    mapping = ["--mapping", str(EXAMPLES / "mapping.yaml")]
    first = _ingest(ws, str(EXAMPLES / "ticket_updates.csv"), *mapping)
    events = _events(ws)
    assert first["totals"]["loaded"] > 0

    second = _ingest(ws, str(copy), *mapping)
    assert second["files"][0]["same_as"] == str(EXAMPLES / "ticket_updates.csv")
    assert second["totals"]["rows_read"] == 0
    assert _events(ws) == events

    result = runner.invoke(app, ["ingest", str(copy), *mapping, "-w", str(ws)])
    assert result.exit_code == 0
    assert "skipped, the same bytes were loaded as" in result.stderr
    assert "--again" in result.stderr

    # forced: the ids derive from the file name, so the copy's events are new ones
    forced = _ingest(ws, str(copy), *mapping, "--again")
    assert forced["files"][0]["same_as"] is None
    assert forced["totals"]["loaded"] == first["totals"]["loaded"]


def test_renamed_copy_of_a_vendor_export_is_skipped(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    copy = tmp_path / "satisfaction_ratings_again.json"
    shutil.copyfile(ZENDESK / "satisfaction_ratings.json", copy)
    source = ["--source", "zendesk", "--partial"]
    first = _ingest(ws, str(ZENDESK / "satisfaction_ratings.json"), *source)
    events = _events(ws)
    assert first["totals"]["rows_read"] > 0
    second = _ingest(ws, str(copy), *source)
    assert second["files"][0]["same_as"] == str(ZENDESK / "satisfaction_ratings.json")
    assert _events(ws) == events


def test_same_name_again_shows_duplicates(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    path = str(EXAMPLES / "events.csv")
    first = _ingest(ws, path)
    second = _ingest(ws, path)
    assert second["files"][0]["same_as"] is None
    assert second["totals"]["duplicate"] == first["totals"]["loaded"]
    assert second["totals"]["loaded"] == 0


def test_partially_overlapping_export_adds_only_the_new(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    head = "event_id,entity_id,ts,type\n"
    january = tmp_path / "january.csv"
    january.write_text(
        head + "a1,T-1,2026-01-01T00:00:00,created\na2,T-2,2026-01-02T00:00:00,created\n"
    )
    overlap = tmp_path / "january_to_february.csv"
    overlap.write_text(
        head + "a2,T-2,2026-01-02T00:00:00,created\na3,T-3,2026-02-01T00:00:00,created\n"
    )
    _ingest(ws, str(january))
    report = _ingest(ws, str(overlap))
    assert (report["totals"]["loaded"], report["totals"]["duplicate"]) == (1, 1)
    assert _events(ws) == 3
