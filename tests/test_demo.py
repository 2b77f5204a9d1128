"""The demo end to end, checked against the generator's truth labels (not fixed numbers)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from truecount.cli.app import _load_verbs, app
from truecount.cli.demo_cmds import run_demo
from truecount.demo.generate import SupportScenario, generate


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return run_demo(tmp_path_factory.mktemp("demo") / "out")


def test_cells_match_the_generators_truth(demo) -> None:  # type: ignore[no-untyped-def]
    truth = generate(SupportScenario(seed=7)).truth
    con = duckdb.connect()
    con.register("truth", truth)
    cells = duckdb.read_csv(str(demo.pack.entities_csv), connection=con)
    con.register("cells", cells)
    rows = con.execute(
        "SELECT t.cell AS truth, t.invoice_lines > 1 AS dup, "
        "t.billed_period IS DISTINCT FROM t.anchor_period AS other_period, c.cell, count(*) "
        "FROM truth t FULL JOIN cells c USING (entity_id) GROUP BY ALL"
    ).fetchall()
    for truth_cell, dup, other_period, cell, n in rows:
        if truth_cell == "neither":
            assert cell is None, (truth_cell, cell, n)  # neither billed nor counted: no cell
        elif dup:
            assert cell == "duplicate"
        elif truth_cell == "agreed":
            assert cell == ("period_mismatch" if other_period else "agreed")
        elif truth_cell == "vendor_only":
            # pending only when the buyer's anchor is too late for its window to have closed
            assert cell in ("vendor_only", "pending")
        else:
            assert cell == truth_cell, (truth_cell, cell, n)
    pending = [n for t, _, _, c, n in rows if c == "pending"]
    assert sum(pending) < 10
    t = demo.recon.totals
    summary = generate(SupportScenario(seed=7)).summary()
    assert t.vendor_billed == summary["billed"] and t.buyer_counted == summary["counted"]
    assert 39_000 < t.vendor_billed < 43_000 and 25_000 < t.buyer_counted < 29_000


def test_pack_and_money(demo) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(demo.pack.json.read_text(encoding="utf-8"))
    t = data["totals"]
    assert t["beyond_tolerance"] is True and t["billing_source"] == "buyer"
    from decimal import Decimal

    assert Decimal(t["amount_due"]) == Decimal(t["buyer_counted"]) * Decimal("5.00")
    assert Decimal(t["credit"]) == Decimal(t["amount_billed"]) - Decimal(t["amount_due"])
    assert "resolved_ticket" in demo.pack.letter.read_text(encoding="utf-8")


def test_cli_demo_and_reconcile_exit_codes(tmp_path: Path) -> None:
    _load_verbs()
    runner = CliRunner()
    out = tmp_path / "d"
    res = runner.invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Credit due to the buyer" in res.output
    res = runner.invoke(
        app,
        [
            "reconcile",
            str(out / "resolved_ticket.yaml"),
            "--invoice",
            str(out / "invoice.csv"),
            "--terms",
            str(out / "terms.yaml"),
            "--workspace",
            str(out / "workspace"),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 1  # beyond tolerance
    assert json.loads(res.stdout)["totals"]["vendor_billed"] > 0
