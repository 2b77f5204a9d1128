"""The dispute pack: formula cells neutralised, the letter's waterfall and hash, the JSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from truecount.billing.dispute import (
    md_escape,
    neutralize,
    with_invoice_warnings,
    write_dispute_pack,
)
from truecount.billing.reconcile import reconcile
from truecount.billing.terms import parse_terms


class _Def:
    class period:  # noqa: N801 - mimics the definition model
        every = "month"
        timezone = "UTC"

    class anchor:  # noqa: N801
        pick = "first"

    conditions: ClassVar[dict[str, None]] = {"satisfied": None}
    name = "resolved_ticket"
    version = 2
    sha256 = "ab" * 32


def test_pack(tmp_path: Path) -> None:
    v = pa.table(
        {
            "entity_id": ["=HYPERLINK(1)", "B", "C"],
            "period": ["2026-01"] * 3,
            "status": ["counted", "not_counted", "counted"],
            "cond_satisfied": [True, False, True],
        }
    )
    inv = pa.table(
        {
            "entity_id": ["=HYPERLINK(1)", "B", "@x"],
            "period": ["2026-01"] * 3,
            "amount": ["1.00", "1.00", "1.00"],
        }
    )
    terms = parse_terms("truecount_terms: 1\ncurrency: USD\nunit_price: 1\ntolerance: 2%\n")
    r = reconcile(v, inv, definition=_Def, terms=terms, known_entities=["=HYPERLINK(1)", "B"])
    text = "truecount: 1\nname: resolved_ticket  # ```` fences inside\n"
    pack = write_dispute_pack(
        tmp_path / "out", r, definition_text=text, invoice_files=["inv|oice.csv"]
    )
    rows = list(csv.DictReader(pack.entities_csv.open(encoding="utf-8")))
    ids = {row["entity_id"] for row in rows}
    assert ids == {"'=HYPERLINK(1)", "B", "'@x", "C"}
    assert all(not row["entity_id"].startswith(("=", "+", "-", "@")) for row in rows)
    letter = pack.letter.read_text(encoding="utf-8")
    assert "ab" * 32 in letter and "`````yaml" in letter  # fence longer than the text's
    assert "inv\\|oice.csv" in letter
    assert "| **billed on your invoice** | **3** |" in letter
    assert "| **= counted by us** | **2** |" in letter
    assert "credit of **1.00 USD**" in letter
    assert pack.letter_html is not None and pack.letter_html.name == "letter.html"
    assert "inv|oice.csv" in pack.letter_html.read_text(encoding="utf-8")
    data = json.loads(pack.json.read_text(encoding="utf-8"))
    assert data["totals"]["credit"] == "1.00"
    assert set(data["periods"][0]) >= {
        "period",
        "vendor_billed",
        "buyer_counted",
        "agreed",
        "vendor_only",
        "buyer_only",
        "pending",
        "unknown",
        "duplicate",
        "period_mismatch",
        "difference_pct",
        "beyond_tolerance",
        "billing_source",
        "amount_billed",
        "amount_due",
        "credit",
    }
    assert pack.definition is not None and pack.definition.read_text() == text


def test_neutralize_and_escape() -> None:
    assert [neutralize(x) for x in ("=1", "+1", "-1", "@a", "\tx", "\rx", "ok")] == [
        "'=1",
        "'+1",
        "'-1",
        "'@a",
        "'\tx",
        "'\rx",
        "ok",
    ]
    assert md_escape("a|b <i>*x*</i> _y_ snake_case") == (
        "a\\|b \\<i\\>\\*x\\*\\</i\\> \\_y\\_ snake_case"
    )


def test_pack_carries_repeated_line_warnings(tmp_path: Path) -> None:
    """Lines repeated verbatim are named in the pack's JSON and in the letter, even when the
    caller (the dashboard, a script) did not add the warnings to the reconciliation itself."""
    import duckdb

    from truecount.billing.invoice import load_invoice_into
    from truecount.billing.reconcile import reconcile_in
    from truecount.workspace import configure

    invoice = tmp_path / "invoice.csv"
    lines = [
        "line_id,entity_id,period,amount",
        "L1,A,2026-01,1.00",
        "L1,A,2026-01,1.00",  # the same line listed twice under its id: counted once
        "L2,B,2026-01,1.00",
        ",C,2026-01,1.00",
        ",C,2026-01,1.00",  # no id: nothing tells it from a rebilling, kept
        ",C,2026-01,1.00",
    ]
    invoice.write_text("\n".join(lines) + "\n", encoding="utf-8")
    con = duckdb.connect()
    configure(con)
    con.execute(
        "CREATE TABLE verdicts AS SELECT * FROM (VALUES "
        "('A', '2026-01', 'counted', true), ('B', '2026-01', 'not_counted', false), "
        "('C', '2026-01', 'counted', true)) AS v(entity_id, period, status, cond_satisfied)"
    )
    load_invoice_into(con, [invoice], None, table="invoice")
    terms = parse_terms("truecount_terms: 1\ncurrency: USD\nunit_price: 1\ntolerance: 2%\n")
    recon = reconcile_in(con, "verdicts", "invoice", definition=_Def, terms=terms, cells=True)
    pack = write_dispute_pack(tmp_path / "out", recon, con, terms=terms)
    # by hand: L1 once more with its id (1 line counted once); C twice more without an id (2 kept)
    expected = [
        "1 invoice line repeats an earlier line verbatim",
        "2 invoice lines without a line_id repeat an earlier line verbatim",
    ]
    warnings = json.loads(pack.json.read_text(encoding="utf-8"))["warnings"]
    for start in expected:
        assert sum(w.startswith(start) for w in warnings) == 1, warnings
    letter = pack.letter.read_text(encoding="utf-8")
    html = pack.letter_html.read_text(encoding="utf-8") if pack.letter_html else ""
    assert "About the invoice's lines" in letter
    for start in expected:
        assert start in letter and start in html
    # written once, even when the caller already added them (as `reconcile --out` does)
    added = with_invoice_warnings(recon, con)
    assert list(added.warnings) == warnings
    again = write_dispute_pack(tmp_path / "again", added, con, terms=terms)
    assert json.loads(again.json.read_text(encoding="utf-8"))["warnings"] == warnings
