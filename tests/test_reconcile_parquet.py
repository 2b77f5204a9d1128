"""A Parquet invoice read against a workspace (``-w``, the store opened read-only), and invoice
lines repeated verbatim, checked against pandas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from truecount.billing.invoice import load_invoice_into

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = ROOT / "examples" / "support"
DEFINITION = ROOT / "examples" / "resolved_ticket.yaml"


def tc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "truecount", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("parquet")
    ws = root / "ws"
    assert tc("init", ws).returncode == 0
    assert tc("ingest", SUPPORT / "events.csv", "-w", ws).returncode == 0
    invoice = root / "invoice.parquet"
    pd.read_csv(SUPPORT / "invoice.csv").to_parquet(invoice)
    return ws, invoice


def test_reconcile_reads_a_parquet_invoice_with_a_workspace(setup: tuple[Path, Path]) -> None:
    ws, invoice = setup
    parquet = tc("reconcile", DEFINITION, "-w", ws, "-i", invoice, "-f", "json")
    csv = tc("reconcile", DEFINITION, "-w", ws, "-i", SUPPORT / "invoice.csv", "-f", "json")
    assert "Traceback" not in parquet.stderr, parquet.stderr
    assert parquet.returncode == csv.returncode
    assert json.loads(parquet.stdout)["totals"] == json.loads(csv.stdout)["totals"]


def test_drift_reads_a_parquet_invoice_with_a_workspace(setup: tuple[Path, Path]) -> None:
    ws, invoice = setup
    proc = tc("drift", DEFINITION, "-w", ws, "-i", invoice, "--shift", "1.05", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["definition"]["name"] == "resolved_ticket"


def test_evidence_reads_a_parquet_invoice_with_a_workspace(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    ws, invoice = setup
    key = tmp_path / "k.key"
    assert tc("keygen", "-o", key).returncode == 0
    proc = tc("evidence", DEFINITION, "-w", ws, "-i", invoice, "--key", key, "-o", tmp_path / "p")
    assert proc.returncode in (0, 1), proc.stderr  # 1: beyond tolerance, a finding
    assert (tmp_path / "p" / "reconciliation.json").is_file()


def test_verbatim_repeats_count_once_and_are_reported(tmp_path: Path) -> None:
    """With a line_id a verbatim repeat is one line; without one it stays (pandas agrees)."""
    path = tmp_path / "invoice.csv"
    path.write_text(
        "line_id,entity_id,billed_at,amount\n"
        "L1,T-1,2026-01-05,1.00\nL1,T-1,2026-01-05,1.00\nL1,T-1,2026-01-05,1.00\n"
        "L2,T-2,2026-01-05,1.00\nL3,T-2,2026-01-06,1.00\n"
        ",T-3,2026-01-05,1.00\n,T-3,2026-01-05,1.00\n",
        encoding="utf-8",
    )
    frame = pd.read_csv(path, dtype=str)
    with_id = frame[frame["line_id"].notna()]
    expected = len(with_id.drop_duplicates()) + int(frame["line_id"].isna().sum())
    con = duckdb.connect()
    summary = load_invoice_into(con, [path], summary=True)
    assert summary is not None
    assert summary.lines == expected == 5
    assert summary.duplicate_entities == 2  # T-2 twice (two line ids), T-3 twice (no id)
    assert any("2 invoice lines repeat an earlier line verbatim" in w for w in summary.warnings)
    assert any("without a line_id" in w for w in summary.warnings)


def test_reconcile_json_carries_the_repeats(tmp_path: Path) -> None:
    invoice = tmp_path / "invoice.csv"
    source = pd.read_csv(SUPPORT / "invoice.csv")
    pd.concat([source, source.head(1)]).to_csv(invoice, index=False)
    proc = tc(
        "reconcile", DEFINITION, "--events", SUPPORT / "events.csv", "-i", invoice, "-f", "json"
    )
    data = json.loads(proc.stdout)
    base = json.loads(
        tc("reconcile", DEFINITION, "--events", SUPPORT / "events.csv", "-i",
           SUPPORT / "invoice.csv", "-f", "json").stdout
    )  # fmt: skip
    if "line_id" in source.columns and source["line_id"].notna().all():
        assert data["totals"] == base["totals"]
        assert any("counted once" in w for w in data["warnings"])
    else:
        assert any("without a line_id" in w for w in data["warnings"])
