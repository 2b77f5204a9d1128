"""The workspace verbs through the command line: init, ingest, quarantine, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import truecount.cli.workspace_cmds  # noqa: F401  (registers the verbs)
from truecount.cli.app import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "support"
runner = CliRunner()


def test_init_ingest_quarantine(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["init", str(ws)])
    assert result.exit_code == 0, result.output
    assert (ws / "truecount.yaml").is_file()

    args = ["ingest", str(EXAMPLES / "ticket_updates.csv"), "--mapping"]
    result = runner.invoke(app, [*args, str(EXAMPLES / "mapping.yaml"), "-w", str(ws)])
    assert result.exit_code == 0, result.output
    assert "ticket_updates.csv" in result.output and "loaded" in result.output

    bad = tmp_path / "bad.csv"
    bad.write_text("entity_id,ts,type\nt1,2026-01-01,closed\nt2,never,closed\n")
    result = runner.invoke(app, ["ingest", str(bad), str(bad), "-w", str(ws), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(f["loaded"], f["duplicate"], f["quarantined"]) for f in report["files"]] == [
        (1, 0, 1),
        (0, 2, 0),  # the same bytes under the same name: its bad row is quarantined once
    ]
    assert report["totals"]["rows_read"] == 4

    result = runner.invoke(app, ["quarantine", "-w", str(ws), "--format", "json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert listing["total"] == 1
    assert {(r["row"], r["column"]) for r in listing["rows"]} == {(2, "ts")}
    assert "never" in listing["rows"][0]["reason"]

    bad.write_text("entity_id,ts,type\nt3,2026-01-02,closed\nt4,soon,closed\n")  # new bytes
    result = runner.invoke(app, ["ingest", str(bad), "-w", str(ws)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["quarantine", "-w", str(ws), "--limit", "1"])
    assert result.exit_code == 0
    assert "showing 1 of 2" in result.output


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    runner.invoke(app, ["init", str(ws)])
    cmd = [sys.executable, "-c", "from truecount.cli import main; main()"]
    done = subprocess.run(
        [*cmd, "ingest", str(EXAMPLES / "ratings.csv"), "-w", str(ws)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    message = " ".join(done.stderr.split())  # the error console may wrap long lines
    assert "missing required column 'entity_id'" in message
    assert "--mapping" in message
    done = subprocess.run(
        [*cmd, "ingest", str(EXAMPLES / "ratings.csv"), "-w", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "truecount init" in " ".join(done.stderr.split())
