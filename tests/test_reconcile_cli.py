"""`truecount reconcile` on examples/ as the README shows it, checked against pandas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = ROOT / "examples" / "support"
DEFINITION = ROOT / "examples" / "resolved_ticket.yaml"
PERIOD_KEYS = {
    "period", "vendor_billed", "buyer_counted", "agreed", "vendor_only", "buyer_only",
    "pending", "unknown", "duplicate", "period_mismatch", "difference_pct",
    "beyond_tolerance", "billing_source", "amount_billed", "amount_due", "credit",
}  # fmt: skip


def tc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "truecount", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def result() -> tuple[int, dict[str, object]]:
    proc = tc(
        "reconcile", DEFINITION, "--events", SUPPORT / "events.csv",
        "--invoice", SUPPORT / "invoice.csv", "--terms", SUPPORT / "terms.yaml", "-f", "json",
    )  # fmt: skip
    return proc.returncode, json.loads(proc.stdout)


def test_json_has_the_documented_names(result: tuple[int, dict[str, object]]) -> None:
    _, data = result
    assert {"definition", "terms", "as_of", "periods", "totals", "reasons"} <= set(data)
    periods = data["periods"]
    assert isinstance(periods, list) and periods
    for period in periods:
        assert set(period) >= PERIOD_KEYS
    assert isinstance(data["totals"], dict) and PERIOD_KEYS - {"period"} <= set(data["totals"])


def test_billed_and_duplicates_match_pandas(result: tuple[int, dict[str, object]]) -> None:
    """Billed entities, duplicates and unknown ids, computed directly from the files."""
    _, data = result
    invoice = pd.read_csv(SUPPORT / "invoice.csv")
    events = pd.read_csv(SUPPORT / "events.csv")
    lines = invoice.groupby("entity_id").size()
    totals = data["totals"]
    assert isinstance(totals, dict)
    assert totals["vendor_billed"] == invoice["entity_id"].nunique()
    assert totals["duplicate"] == int((lines > 1).sum())
    unknown = set(invoice["entity_id"]) - set(events["entity_id"])
    assert totals["unknown"] == len(unknown)


def test_exit_code_1_beyond_tolerance(result: tuple[int, dict[str, object]]) -> None:
    code, data = result
    periods = data["periods"]
    assert isinstance(periods, list)
    beyond = any(p["beyond_tolerance"] for p in periods)
    assert code == (1 if beyond else 0)


def test_ids_in_another_format_name_file_and_row(tmp_path: Path) -> None:
    bad = tmp_path / "inv.csv"
    bad.write_text("line_id,entity_id,billed_at\nL1,T-1001,2026-02-15\nL2,t-1002,2026-03-01\n")
    proc = tc("reconcile", DEFINITION, "--events", SUPPORT / "events.csv", "--invoice", bad)
    assert proc.returncode == 2
    assert f"{bad}, row 2, column 'entity_id'" in proc.stderr
    assert "differ in letter case" in proc.stderr


def test_a_currency_other_than_the_terms_names_file_and_row(tmp_path: Path) -> None:
    """Every line in JPY against terms in USD: the error names the invoice file and the row of
    its first JPY line (row 1: the first data row), not '<input>'."""
    inv = tmp_path / "inv_jpy.csv"
    inv.write_text(
        "line_id,entity_id,billed_at,period,amount,currency\n"
        "L1,T-1001,2026-02-15T06:00:00Z,2026-02,150,jpy\n"
        "L2,T-1002,2026-03-01T06:00:00Z,2026-03,150,jpy\n",
        encoding="utf-8",
    )
    proc = tc(
        "reconcile", DEFINITION, "--events", SUPPORT / "events.csv", "--invoice", inv,
        "--terms", SUPPORT / "terms.yaml",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"{inv}, row 1, column 'currency'" in proc.stderr
    assert "bills in JPY (2 lines) but the terms are in USD" in proc.stderr
    assert "<input>" not in proc.stderr
