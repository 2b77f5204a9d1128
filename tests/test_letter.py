"""The dispute letter: its figures against the reconcile JSON, money per cell and reason adding up
to the credit, plain words instead of ids, the letter details, escaping, times to the second."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from truecount.billing.dispute import render_letter, write_dispute_pack
from truecount.billing.reconcile import reconcile
from truecount.billing.terms import parse_terms
from truecount.cli.demo_cmds import run_demo

DETAILS = (
    "letter:\n  buyer: Acme Support Ltd\n  vendor: Botco Inc.\n  invoice_number: INV-0042\n"
    "  invoice_date: 2026-04-02\n  contract: MSA-17\n"
)


def tc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "truecount", *map(str, args)], capture_output=True, text=True
    )


class Tables(HTMLParser):
    """Every <table data-table=NAME> of a page as rows of cell texts (with the row's class)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[str, list[str]]]] = {}
        self._name: str | None = None
        self._row: list[str] | None = None
        self._cls = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._name = a.get("data-table") or ""
            self.tables[self._name] = []
        elif tag == "tr" and self._name is not None:
            self._row, self._cls = [], a.get("class") or ""
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._name is not None:
            if self._row:
                self.tables[self._name].append((self._cls, self._row))
            self._row = None
        elif tag == "table":
            self._name = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[tuple[str, list[str]]]]:
    p = Tables()
    p.feed(html)
    return p.tables


def amount(text: str) -> Decimal:
    return Decimal(text.split()[0].replace(",", ""))


def integer(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The demo reconciled again by the CLI, the letter details partly from terms, partly options."""
    demo = run_demo(tmp_path_factory.mktemp("demo") / "out")
    root = demo.pack.folder.parent
    terms = root / "terms_letter.yaml"
    terms.write_text((root / "terms.yaml").read_text(encoding="utf-8") + DETAILS, "utf-8")
    out = root / "pack"
    proc = tc(
        "reconcile", root / "resolved_ticket.yaml", "-w", root / "workspace",
        "--invoice", root / "invoice.csv", "--terms", terms, "-f", "json", "--out", out,
        "--buyer", "Acme <Support> & Co", "--contract", "MSA-17 | order form 3",
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    return out, json.loads(proc.stdout)


def test_figures_equal_the_json(pack: tuple[Path, dict[str, Any]]) -> None:
    out, data = pack
    t = tables((out / "letter.html").read_text(encoding="utf-8"))
    rows = [r for _, r in t["periods"]]
    assert len(rows) == len(data["periods"]) + 1
    for row, p in zip(rows, [*data["periods"], data["totals"]], strict=True):
        assert row[0] == p["period"]
        assert (integer(row[1]), integer(row[2])) == (p["vendor_billed"], p["buyer_counted"])
        assert row[3] == f"{p['difference_pct']:+.2f}%"
        assert [amount(x) for x in row[6:9]] == [
            Decimal(p[k]) for k in ("amount_billed", "amount_due", "credit")
        ]
        assert all(x.endswith(" USD") for x in row[6:9])
    steps = [integer(r[1]) for _, r in t["waterfall"]]
    assert steps == [s["entities"] for s in data["waterfall"]]
    md = (out / "letter.md").read_text(encoding="utf-8")
    assert f"credit of **{Decimal(data['totals']['credit']):,} USD**" in md


def test_money_per_cell_and_reason_adds_up_to_the_credit(
    pack: tuple[Path, dict[str, Any]],
) -> None:
    out, data = pack
    rows = tables((out / "letter.html").read_text(encoding="utf-8"))["credit"]
    credit = Decimal(data["totals"]["credit"])
    top = [(r, cls) for cls, r in rows if cls == "total" or r[0] in ("Adjustment", "Counted")]
    assert top[-1][0][0] == "Credit" and amount(top[-1][0][3]) == credit
    assert sum(amount(r[3]) for r, _ in top[:-1]) == credit
    # each cell's sub-rows add up to the cell
    blocks: list[list[list[str]]] = []
    for cls, r in rows:
        if cls == "total":
            blocks.append([r])
        elif r[0] == "" and blocks:
            blocks[-1].append(r)
    for head, *parts in blocks:
        if parts:
            assert sum(amount(p[3]) for p in parts) == amount(head[3]), head
    # independently: every period is beyond tolerance in the demo, so each billed entity that
    # is not an outcome is credited at the unit price (no discount in the demo's terms)
    assert all(p["billing_source"] == "buyer" for p in data["periods"])
    price = Decimal(data["terms"]["unit_price"])
    with (out / "entities.csv").open(encoding="utf-8") as f:
        entities = list(csv.DictReader(f))
    by_cell = Counter(e["cell"] for e in entities)
    by_reason = Counter(e["reason"] for e in entities if e["cell"] == "vendor_only")
    heads = {r[0]: r for r in (b[0] for b in blocks)}
    vo = heads["Billed, not an outcome"]
    assert integer(vo[2]) == by_cell["vendor_only"] == data["totals"]["vendor_only"]
    assert amount(vo[3]) == by_cell["vendor_only"] * price
    reason_rows = next(b[1:] for b in blocks if b[0][0] == "Billed, not an outcome")
    assert sorted(integer(r[2]) for r in reason_rows) == sorted(by_reason.values())
    unknown = heads["Not in the export"]
    assert amount(unknown[3]) == by_cell["unknown"] * price


def test_no_internal_ids_in_the_prose(pack: tuple[Path, dict[str, Any]]) -> None:
    out, data = pack
    md = (out / "letter.md").read_text(encoding="utf-8")
    prose = re.sub(r"(?ms)^(`{3,})yaml$.*?^\1$", "", md)  # the definition's text is quoted
    html = (out / "letter.html").read_text(encoding="utf-8")
    html_prose = unescape(re.sub(r"(?s)<pre>.*?</pre>", "", html))
    ids = {
        "vendor_only", "buyer_only", "period_mismatch", "no_anchor", "buyer_beyond_tolerance",
        "not_reopened", "not_counted", "duplicate_counted",
    }  # fmt: skip
    ids |= {r["condition"] for r in data["reasons"] if "_" in r["condition"]}
    for text in (prose, html_prose):
        found = {i for i in ids if re.search(rf"(?<![A-Za-z]){re.escape(i)}(?![A-Za-z])", text)}
        assert not found
        assert "fails the condition 'not reopened'" in text


def test_details_from_the_terms_and_the_options(pack: tuple[Path, dict[str, Any]]) -> None:
    out, _ = pack
    md = (out / "letter.md").read_text(encoding="utf-8")
    assert "To: Botco Inc.  " in md  # from the terms
    assert "From: Acme \\<Support\\> & Co  " in md  # --buyer overrides the terms
    assert "Invoice: INV-0042 of 2026-04-02  " in md
    assert "Contract: MSA-17 \\| order form 3" in md
    assert "Your invoice INV-0042 of 2026-04-02 bills" in md
    html = (out / "letter.html").read_text(encoding="utf-8")
    assert "From: Acme &lt;Support&gt; &amp; Co" in html
    assert "Yours sincerely," in md and md.rstrip().endswith("Acme \\<Support\\> & Co")


def test_pending_listed_as_not_yet_due(pack: tuple[Path, dict[str, Any]]) -> None:
    out, data = pack
    n = data["totals"]["pending"]
    assert n > 0
    md = (out / "letter.md").read_text(encoding="utf-8")
    assert "not yet due — may be billed once decided" in md
    with (out / "entities.csv").open(encoding="utf-8") as f:
        pending = sorted(e["entity_id"] for e in csv.DictReader(f) if e["cell"] == "pending")
    rows = tables((out / "letter.html").read_text(encoding="utf-8"))["pending"]
    assert [r[0] for _, r in rows] == pending[:50]
    price = Decimal(data["terms"]["unit_price"])
    assert f"includes {n * price:,} USD for them" in md


def test_times_to_the_second(pack: tuple[Path, dict[str, Any]]) -> None:
    out, _ = pack
    for name in ("letter.md", "letter.html"):
        text = (out / name).read_text(encoding="utf-8")
        assert not re.search(r"\d\d:\d\d:\d\d[.,]\d", text)
        assert re.search(r"Events known as of: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text)


def test_a_bad_invoice_date_option_is_refused(tmp_path: Path) -> None:
    proc = tc(
        "reconcile", tmp_path / "d.yaml", "--invoice", tmp_path / "i.csv",
        "--invoice-date", "03/02/2026",
    )  # fmt: skip
    assert proc.returncode == 2 and "--invoice-date" in proc.stderr and "YYYY-MM-DD" in proc.stderr


# ------------------------------------------------------------------ small, hostile inputs
class _Def:
    class period:  # noqa: N801 - mimics the definition model
        every = "month"
        timezone = "UTC"

    class anchor:  # noqa: N801
        pick = "first"

    conditions: dict[str, None] = {"satisfied": None}  # noqa: RUF012
    name = "resolved_ticket"
    version = 1
    sha256 = "cd" * 32


HOSTILE = "<script>alert(1)</script> | *x* [y](javascript:z)"


def _recon(as_of: dt.datetime | None = None) -> Any:
    v = pa.table(
        {
            "entity_id": ["A", "B", "<img src=x onerror=alert(2)>|*"],
            "period": ["2026-01"] * 3,
            "status": ["counted", "not_counted", "pending"],
            "cond_satisfied": [True, False, None],
            "anchor_ts": [dt.datetime(2026, 1, 5, 10, 11, 12, 345678)] * 3,
        }
    )
    inv = pa.table(
        {
            "entity_id": ["A", "B", "<img src=x onerror=alert(2)>|*", "A"],
            "period": ["2026-01"] * 4,
        }
    )
    terms = parse_terms(
        "truecount_terms: 1\ncurrency: EUR\nunit_price: 0.99\ntolerance: 0%\n"
        f"letter:\n  vendor: '{HOSTILE}'\n"
    )
    r = reconcile(v, inv, definition=_Def, terms=terms, known_entities=["A", "B", "C"], as_of=as_of)
    return r, terms


def test_hostile_names_and_ids_are_escaped(tmp_path: Path) -> None:
    r, terms = _recon(dt.datetime(2026, 2, 1, 8, 0, 1, 999999))
    p = write_dispute_pack(tmp_path, r, terms=terms, buyer="Buyer & <b>Sons</b>")
    html = p.letter_html.read_text(encoding="utf-8") if p.letter_html else ""
    assert "<script>" not in html and "<img" not in html and "<b>Sons" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;|*" in html
    md = p.letter.read_text(encoding="utf-8")
    assert "\\<script\\>" in md and "\\[y\\](javascript:z)" in md
    assert not re.search(r"(?<!\\)<(img|script|b)", md)
    assert "\\<img src=x onerror=alert(2)\\>\\|\\*" in md
    assert "Events known as of: 2026-02-01 08:00:01 UTC" in md
    assert "2026-01-05 10:11:12 UTC" in md  # the pending entity's anchor, to the second


def test_missing_details_get_neutral_wording() -> None:
    v = pa.table({"entity_id": ["A"], "period": ["2026-01"], "status": ["counted"]})
    r = reconcile(v, pa.table({"entity_id": ["A", "B"], "period": ["2026-01"] * 2}))
    md = render_letter(r)
    assert "To:" not in md and "From:" not in md and "Contract:" not in md
    assert "<" not in md.replace("\\<", "") and "None" not in md
    assert "Your invoice bills" in md and md.rstrip().endswith("Yours sincerely,")
    html = render_letter(r, html=True)
    assert html.startswith("<!DOCTYPE html>") and "Your invoice bills" in html


def test_money_items_add_up_with_a_discount_a_cap_and_rounding() -> None:
    from truecount.billing.reconcile import PeriodResult
    from truecount.billing.terms import apply_terms, credit_breakdown

    terms = parse_terms(
        "truecount_terms: 1\ncurrency: USD\nunit_price: 0.995\ntolerance: 2%\n"
        "platform_fee: 10\nannual_cap: 20\ndiscount: 10%\n"
    )
    periods = apply_terms(
        terms,
        [
            PeriodResult("2026-01", vendor_billed=20, buyer_counted=10, agreed=9, vendor_only=11, beyond_tolerance=True,
                         buyer_only=1, vendor_lines=23, amount_billed=Decimal("23.50")),
            PeriodResult("2026-02", vendor_billed=20, buyer_counted=20, agreed=20, vendor_lines=21),
        ],
    )  # fmt: skip
    items = credit_breakdown(terms, periods, {"2026-01": {"satisfied": 7, "no_anchor": 4}})
    for p in periods:
        assert sum(i.amount for i in items[p.period]) == p.credit
    jan = {(i.kind, i.name): i for i in items["2026-01"]}
    assert jan[("reason", "satisfied")].amount == Decimal("6.27")  # 7 x 0.8955
    assert jan[("counted", "buyer_only")].amount == Decimal("-0.90")
    feb = {(i.kind, i.name): i for i in items["2026-02"]}
    assert ("cap", "") in feb  # 20 - 8.955 left of the cap
    assert feb[("extra_lines", "")].amount == Decimal("0.90")  # within tolerance: only the line


def test_the_evidence_pack_signs_the_letter(pack: tuple[Path, dict[str, Any]]) -> None:
    from truecount.evidence import generate_key, load_public_key, verify_pack

    root = pack[0].parent
    keys = generate_key(root / "signer.key")
    out = root / "evidence"
    proc = tc(
        "evidence", root / "resolved_ticket.yaml", "-w", root / "workspace",
        "--invoice", root / "invoice.csv", "--terms", root / "terms_letter.yaml",
        "--key", keys.private, "--out", out, "--vendor", "Other Vendor GmbH", "-f", "json",
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    md = (out / "letter.md").read_text(encoding="utf-8")
    assert "To: Other Vendor GmbH  " in md and "From: Acme Support Ltd  " in md
    assert "Invoice: INV-0042 of 2026-04-02" in md and (out / "letter.html").is_file()
    statement = json.loads((out / "statement.json").read_text(encoding="utf-8"))
    assert {"letter.md", "letter.html"} <= {s["name"] for s in statement["subject"]}
    v = verify_pack(out, load_public_key(keys.public), [root / "events.parquet"])
    assert v.ok, [c.detail for c in v.failed]


def test_a_condition_is_said_with_its_description() -> None:
    r, terms = _recon()
    md = render_letter(r, terms=terms, descriptions={"satisfied": "rated 4 or more in 7 days"})
    assert "fails 'satisfied': rated 4 or more in 7 days" in md
    assert "fails the condition 'satisfied'" in render_letter(r, terms=terms)


def test_one_and_none_are_said_in_words() -> None:
    """One billed outcome on one line is said in the singular; when we count nothing, the
    letter says so instead of a percentage it cannot give ("n/a")."""
    terms = parse_terms("truecount_terms: 1\ncurrency: USD\nunit_price: 0.99\ntolerance: 2%\n")
    one = pa.table({"entity_id": ["A"], "period": ["2026-02"], "status": ["not_counted"]})
    r = reconcile(one, pa.table({"entity_id": ["A"], "period": ["2026-02"]}), terms=terms)
    assert (r.totals.vendor_billed, r.totals.vendor_lines, r.totals.buyer_counted) == (1, 1, 0)
    md = render_letter(r, terms=terms)
    assert "bills **1** outcome (outcome definition) on 1 line for 2026-02." in md
    assert "we count **none**." in md
    assert "n/a billed against counted" not in md and " 1 outcomes" not in md
    # several: the plural, and the percentage (3 billed on 4 lines, 1 counted: +200.00%)
    three = pa.table(
        {
            "entity_id": ["A", "B", "C"],
            "period": ["2026-02"] * 3,
            "status": ["counted", "pending", "not_counted"],
        }
    )
    inv = pa.table({"entity_id": ["A", "B", "C", "C"], "period": ["2026-02"] * 4})
    md = render_letter(reconcile(three, inv, terms=terms), terms=terms)
    assert "bills **3** outcomes (outcome definition) on 4 lines for 2026-02." in md
    assert "we count **1** (+200.00% billed against counted)." in md
    assert "1 billed entity was not yet decided" in md and "It is listed below" in md
