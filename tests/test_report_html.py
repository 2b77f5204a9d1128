"""``truecount report``: the figures on the page are the JSON's, text is escaped, nothing is fetched.

The HTML is parsed with the standard library; every element marked ``data-figure`` is matched to
``reconcile --format json`` / ``drift --format json`` for the same inputs, and the two figures the
report derives (a waterfall step's money, the CUSUM's daily high) to an independent computation.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from decimal import ROUND_HALF_UP, Decimal
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from scipy.stats import beta
from typer.testing import CliRunner

from truecount.cli.app import _load_verbs, app
from truecount.cli.demo_cmds import package_text
from truecount.demo.generate import SupportScenario, generate
from truecount.drift.alarm import cusum_path
from truecount.errors import InputError
from truecount.report.charts import to_svg, waterfall_bars
from truecount.report.html import cusum_by_day

_load_verbs()
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
ZENDESK = ROOT / "examples" / "zendesk"
SUPPORT = ROOT / "examples" / "support"
EVIL = '<script>alert("x")</script>'


# ------------------------------------------------------------------------------- parsing
class _Figures(HTMLParser):
    """Collects every element with data-figure: (scope, key, figure) -> (value, text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: dict[tuple[str, str, str], tuple[Any, str]] = {}
        self.open: list[tuple[str, tuple[str, str, str], Any, list[str]]] = []
        self.rows: list[dict[str, str]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script":
            self.scripts += 1
        if tag == "tr" and "data-cell" in a:
            self.rows.append(a)
        for item in self.open:
            item[3].append("")
        if "data-figure" in a:
            key = (a["data-scope"], a["data-key"], a["data-figure"])
            self.open.append((tag, key, json.loads(a["data-value"]), []))

    def handle_data(self, data: str) -> None:
        for item in self.open:
            item[3].append(data)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1][0] == tag:
            _, key, value, text = self.open.pop()
            assert key not in self.figures or self.figures[key][0] == value, key
            self.figures[key] = (value, "".join(text).strip())


def figures(html: str) -> _Figures:
    p = _Figures()
    p.feed(html)
    p.close()
    return p


def _shown(value: Any, text: str) -> None:
    """The text a reader sees says the same as the value."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        assert text == f"{value:,}", (value, text)
    elif isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        assert text == f"{Decimal(value):,}", (value, text)


# ------------------------------------------------------------------------------- inputs
def _cli(*args: str) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code in (0, 1), result.output
    return result


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small generated quarter (events file, invoice, the demo's definition and terms)."""
    folder = tmp_path_factory.mktemp("report-demo")
    data = generate(SupportScenario(tickets=3000, seed=11))
    events, invoice = data.events, data.invoice
    # one billed and counted id, and one billed id alone, carry markup: they must be escaped
    ids = events.column("entity_id")
    first = ids[0].as_py()
    lone = next(e for e in sorted(set(invoice.column("entity_id").to_pylist())) if e != first)
    mapping = {first: f"{first}{EVIL}", lone: f'{lone}"{EVIL}'}

    def swap(table: pa.Table) -> pa.Table:
        col = table.column("entity_id").to_pylist()
        i = table.schema.get_field_index("entity_id")
        return table.set_column(i, "entity_id", pa.array([mapping.get(x, x) for x in col]))

    pq.write_table(swap(events), folder / "events.parquet")
    pacsv.write_csv(swap(invoice), folder / "invoice.csv")
    definition = package_text("resolved_ticket.yaml").replace(
        "description:", f"description: '{EVIL} \"quoted\"' #", 1
    )
    (folder / "def.yaml").write_text(definition, encoding="utf-8")
    (folder / "terms.yaml").write_text(package_text("terms.yaml"), encoding="utf-8")
    return {
        "events": folder / "events.parquet",
        "invoice": folder / "invoice.csv",
        "definition": folder / "def.yaml",
        "terms": folder / "terms.yaml",
        "folder": folder,
    }


def _run(inputs: list[str], out: Path, *extra: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The report, and the reconcile and drift JSON for the same inputs."""
    recon = json.loads(_cli("reconcile", *inputs, "--format", "json").stdout)
    drift_inputs = [a for a in inputs if a not in ("--terms",)]
    if "--terms" in inputs:
        i = inputs.index("--terms")
        drift_inputs = inputs[:i] + inputs[i + 2 :]
    drift = json.loads(_cli("drift", *drift_inputs, *extra, "--format", "json").stdout)
    _cli("report", *inputs, *extra, "--out", str(out))
    return out.read_text(encoding="utf-8"), recon, drift


@pytest.fixture(scope="module")
def demo_report(demo_inputs: dict[str, Path]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    i = demo_inputs
    args = [
        str(i["definition"]),
        "--events",
        str(i["events"]),
        "--invoice",
        str(i["invoice"]),
        "--terms",
        str(i["terms"]),
    ]
    return _run(args, i["folder"] / "report.html", "--baseline", "2026-01..2026-02")


@pytest.fixture(scope="module")
def zendesk_report(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    folder = tmp_path_factory.mktemp("report-zd")
    ws = folder / "zd"
    _cli("init", ws)
    _cli(
        "ingest",
        "--source",
        "zendesk",
        "-w",
        ws,
        ZENDESK / "tickets.json",
        ZENDESK / "ticket_audits.jsonl",
        ZENDESK / "satisfaction_ratings.json",
    )
    mine = folder / "mine.yaml"
    _cli("new", "support_resolution_strict", mine)
    args = [
        str(mine),
        "-w",
        str(ws),
        "--invoice",
        str(ZENDESK / "invoice.csv"),
        "--terms",
        str(ZENDESK / "terms.yaml"),
    ]
    return _run(args, folder / "report.html", "--baseline", "2026-01..2026-02")


# ------------------------------------------------------------------------------- checks
def _step_money(terms: dict[str, Any], entities: int) -> str:
    keep = 1 - Decimal(terms["discount"].rstrip("%")) / 100
    amount = Decimal(entities) * Decimal(terms["unit_price"]) * keep
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _matches_json(html: str, recon: dict[str, Any], drift: dict[str, Any]) -> _Figures:
    f = figures(html)
    seen: set[tuple[str, str, str]] = set()

    def expect(scope: str, key: str, name: str, value: Any) -> None:
        got = f.figures.get((scope, key, name))
        assert got is not None, (scope, key, name)
        assert got[0] == value, (scope, key, name, got[0], value)
        if (scope, name) == ("totals", "credit") and value and Decimal(value) < 0:
            # a negative credit is said as "billed less than due", without the minus sign
            assert got[1] == f"{-Decimal(value):,}", (value, got[1])
        else:
            _shown(value, got[1])
        seen.add((scope, key, name))

    for (scope, key, name), _ in f.figures.items():
        if scope == "totals":
            expect(scope, key, name, recon["totals"][name])
        elif scope == "period":
            rows = {r["period"]: r for r in recon["periods"]} | {"total": recon["totals"]}
            expect(scope, key, name, rows[key][name])
        elif scope == "waterfall":
            step = recon["waterfall"][int(key)]
            if name == "step":
                expect(scope, key, name, step["step"])
            elif name == "entities":
                expect(scope, key, name, step["entities"])
            else:  # the report's own figure: entities at the unit price, independently
                expect(scope, key, name, _step_money(recon["terms"], step["entities"]))
        elif scope == "reason":
            reasons = {r["condition"]: r["entities"] for r in recon["reasons"]}
            expect(scope, key, name, reasons[key])
        elif scope == "drift-period":
            rows = {r["period"]: r for r in drift["periods"]} | {"total": drift["totals"]}
            expect(scope, key, name, rows[key][name])
        elif scope == "drift":
            source = {
                "first_alarm": drift["first_alarm"] or {},
                "settings": drift["alarm_settings"],
                "baseline": drift["baseline"],
                "result": {"alarm": drift["alarm"], "cusum_peak": drift["cusum_peak"]},
            }[key]
            expect(scope, key, name, source[name])
        elif scope == "disputed":
            cells = ("vendor_only", "unknown", "duplicate", "pending", "period_mismatch")
            expect(scope, key, name, sum(recon["totals"][c] for c in cells))
        else:
            seen.add((scope, key, name))  # coverage, cusum, pack, definition: checked below
    assert seen == set(f.figures)
    # every period and waterfall step of the JSON is on the page
    for p in recon["periods"]:
        assert ("period", p["period"], "vendor_billed") in f.figures
    shown_steps = {int(k) for s, k, n in f.figures if s == "waterfall" and n == "entities"}
    for i, step in enumerate(recon["waterfall"]):
        if step["entities"] or step["kind"] not in ("minus", "plus"):
            assert i in shown_steps
    for p in drift["periods"]:
        assert ("drift-period", p["period"], "vendor_only_rate") in f.figures
    # the CUSUM's daily highs peak where the drift JSON says
    highs = [v for (s, _, n), (v, _) in f.figures.items() if s == "cusum"]
    if drift["watched"]["entities"]:
        assert max(highs) == pytest.approx(drift["cusum_peak"])
    assert ("definition", "definition", "sha256") in f.figures
    assert f.figures[("definition", "definition", "sha256")][0] == recon["definition"]["sha256"]
    return f


def test_demo_figures_equal_the_json(
    demo_report: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    html, recon, drift = demo_report
    f = _matches_json(html, recon, drift)
    assert recon["totals"]["credit"] is not None
    assert ("totals", "total", "credit") in f.figures
    assert drift["watched"]["entities"] > 0
    # each step is said in words, not by the JSON's label or a cell's id
    for (scope, _, name), (label, text) in f.figures.items():
        if scope == "waterfall" and name == "step":
            assert label not in text and "_" not in text.split("(")[0], text
    assert any(s == "cusum" for s, _, _ in f.figures)
    # the disputed table lists every disputed entity (below the cap) and says which cell
    total = f.figures[("disputed", "total", "entities")][0]
    assert len(f.rows) == min(total, 2000)
    assert 'id="cap-note"' not in html


def test_alarm_figures_equal_the_json(demo_inputs: dict[str, Path]) -> None:
    """A contractual rate far below the vendor's: the alarm is raised and marked."""
    i = demo_inputs
    args = [str(i["definition"]), "--events", str(i["events"]), "--invoice", str(i["invoice"])]
    html, recon, drift = _run(args, i["folder"] / "alarm.html", "--baseline-rate", "0.05")
    assert drift["alarm"] is True
    f = _matches_json(html, recon, drift)
    assert ("drift", "first_alarm", "date") in f.figures
    assert f"alarm {drift['first_alarm']['date']}" in html  # marked on the CUSUM chart


def test_zendesk_figures_equal_the_json(
    zendesk_report: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    html, recon, drift = zendesk_report
    f = _matches_json(html, recon, drift)
    t = recon["totals"]
    assert (t["amount_billed"], t["amount_due"], t["credit"]) == ("67.50", "27.00", "40.50")
    assert f.figures[("totals", "total", "credit")][1] == "40.50"
    assert "zendesk" in html  # the adapter choices behind the numbers


def test_alarm_without_room_is_a_note(tmp_path: Path) -> None:
    """The bundled support example: most billed tickets are not outcomes, so the rise the alarm
    watches for (1.25 times the baseline's rate) is above 100%. The report is still written,
    with reconcile's figures, the exit code of its tolerance result, and a drift section that
    says why there is no alarm, with the baseline's own counts."""
    args = [
        str(ROOT / "examples" / "resolved_ticket.yaml"),
        "--events",
        str(SUPPORT / "events.csv"),
        "--invoice",
        str(SUPPORT / "invoice.csv"),
    ]
    terms = ["--terms", str(SUPPORT / "terms.yaml")]
    out = tmp_path / "report.html"
    written = runner.invoke(app, ["report", *args, *terms, "--out", str(out)])
    recon = json.loads(_cli("reconcile", *args, *terms, "--format", "json").stdout)
    beyond = any(p["beyond_tolerance"] for p in recon["periods"])
    assert written.exit_code == (1 if beyond else 0), written.output
    html = out.read_text(encoding="utf-8")
    _matches_json(html, recon, {"periods": [], "watched": {"entities": 0}})
    # the paired counts do not depend on the shift: read them where the alarm can run
    runs = json.loads(_cli("drift", *args, "--shift", "1.05", "--format", "json").stdout)
    b, n = runs["baseline"]["vendor_only"], runs["baseline"]["entities"]
    p0 = float(beta.ppf(0.9, b + 1, n - b))  # the 90% upper limit the alarm freezes
    assert 1.25 * p0 >= 1.0
    note = re.search(r"No drift figures for these inputs: ([^<]*)</p>", html)
    assert note is not None
    text = unescape(note.group(1))
    assert text.startswith("the drift alarm cannot run on these data: ")
    assert f"{b} of the {n} entities" in text and f"({b / n:.1%})" in text
    assert f"1.25 times {p0:.1%}" in text and f"is {1.25 * p0:.1%}" in text
    largest = int(1000 / p0) / 1000
    assert f"a --shift of at most {largest:.3f}" in text
    assert "<input>" not in text and "p0" not in text
    # the shift the note offers runs; the next one up does not
    assert runner.invoke(app, ["drift", *args, "--shift", f"{largest:.3f}"]).exit_code in (0, 1)
    refused = runner.invoke(app, ["drift", *args, "--shift", f"{largest + 0.001:.3f}"])
    assert isinstance(refused.exception, InputError)
    assert "cannot run on these data" in refused.exception.first_line


def test_user_text_is_escaped(demo_report: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    html, _, _ = demo_report
    assert "alert(" in html  # the crafted text is there ...
    assert EVIL not in html  # ... but never as markup
    assert "&lt;script&gt;alert(" in html
    assert figures(html).scripts == 1  # the report's own sort-and-filter script only
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &#34;quoted&#34;" in html


def test_no_network_at_view_time(demo_report: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    html, _, _ = demo_report
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(link|img|iframe|object|embed)\b", html)
    assert not re.search(r"\ssrc=", html)
    assert "@import" not in html and "url(" not in html
    assert "@media print" in html and "@page" in html
    assert html.count("<svg") >= 4  # waterfall, periods, drift rate, CUSUM: inline


def test_cap_note_and_pack_digest(demo_inputs: dict[str, Path]) -> None:
    i = demo_inputs
    pack = i["folder"] / "pack"
    pack.mkdir()
    statement = b'{"_type": "https://in-toto.io/Statement/v1", "subject": []}'
    (pack / "statement.json").write_bytes(statement)
    out = i["folder"] / "capped.html"
    args = [i["definition"], "--events", i["events"], "--invoice", i["invoice"]]
    _cli("report", *args, "--max-rows", "5", "--pack", pack, "--out", out)
    html = out.read_text(encoding="utf-8")
    f = figures(html)
    assert len(f.rows) == 5
    assert 'id="cap-note"' in html and "entities.csv" in html
    total = f.figures[("disputed", "total", "entities")][0]
    assert f"Showing 5 of {total:,}" in html
    # the cap is shared among the cells: each disputed cell of the JSON shows up
    recon = json.loads(_cli("reconcile", *args, "--format", "json").stdout)
    cells = ("vendor_only", "unknown", "duplicate", "pending", "period_mismatch")
    present = [c for c in cells if recon["totals"][c]]
    assert len(present) >= 3
    assert {r["data-cell"] for r in f.rows} == set(present[:5])
    digest = f.figures[("pack", "pack", "digest")]
    assert digest[0] == hashlib.sha256(statement).hexdigest() == digest[1]
    assert "credit" not in {n for _, _, n in f.figures}  # no terms, no money


def test_demo_writes_the_report(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    report = tmp_path / "demo" / "report.html"
    assert report.is_file() and f"Report: {report}" in result.output
    recon = json.loads((tmp_path / "demo" / "dispute" / "reconciliation.json").read_text())
    f = figures(report.read_text(encoding="utf-8"))
    assert f.figures[("totals", "total", "credit")][0] == recon["totals"]["credit"]


# ------------------------------------------------------------------------------- pieces
def test_waterfall_bars_run_from_billed_to_counted() -> None:
    steps = [("b", "start", 10), ("u", "minus", 2), ("f", "minus", 3), ("a", "subtotal", 5)]
    steps += [("o", "plus", 4), ("c", "total", 9)]
    bars = waterfall_bars(steps)
    assert [(b.low, b.high) for b in bars] == [(0, 10), (8, 10), (5, 8), (0, 5), (5, 9), (0, 9)]


def test_cusum_by_day_is_the_daily_high() -> None:
    rng = np.random.default_rng(3)
    x = (rng.random(500) < 0.05).astype(np.int8)
    days = np.array(sorted(f"2026-03-{d:02d}" for d in rng.integers(1, 20, 500)))
    path = cusum_path(x, 0.03)
    expected: dict[str, float] = {}
    for d, s in zip(days, path, strict=True):
        expected[str(d)] = max(expected.get(str(d), -1.0), float(s))
    assert cusum_by_day(days, path) == list(expected.items())
    assert cusum_by_day([], np.array([])) == []
    # entities with no time come last and belong to no day: no point, not 1970-01-01
    undated = np.concatenate((days.astype("datetime64[D]"), [np.datetime64("NaT")] * 3))
    longer = cusum_path(np.concatenate((x, [1, 1, 1])).astype(np.int8), 0.03)
    assert cusum_by_day(undated, longer) == list(expected.items())
    assert cusum_by_day(np.array(["NaT"], dtype="datetime64[D]"), np.array([1.0])) == []


def test_chart_labels_are_escaped() -> None:
    svg = str(to_svg(waterfall_spec_with(EVIL)))
    assert "<script" not in svg and "http" not in svg


def waterfall_spec_with(label: str) -> dict[str, Any]:
    from truecount.report.charts import waterfall_spec

    return waterfall_spec(waterfall_bars([(label, "start", 3), ("b", "total", 3)]))


# ------------------------------------------------------------------ billed amount and credit
def _text(html: str) -> str:
    """The page's visible text on one line (charts and tags left out)."""
    body = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body)))


def _support_args(invoice: Path, terms: Path) -> list[str]:
    """The report's arguments over the support example's events, with this invoice and terms."""
    return [
        str(ROOT / "examples" / "resolved_ticket.yaml"),
        *("--events", str(SUPPORT / "events.csv")),
        *("--invoice", str(invoice), "--terms", str(terms)),
    ]


def test_billed_amount_is_bridged_to_the_first_step_and_under_billing_is_said(
    tmp_path: Path,
) -> None:
    """The invoice bills one ticket twice, prices every line at 0.10 against the contract's 0.99,
    and the terms add a platform fee: the headline's billed amount and the first step's money
    differ, and rows between them add up to the difference. The invoice bills less than is
    due, which the headline, the sentence under it and the letter say in the same words."""
    lines = [
        ("L0", "T-1005", "2026-03-10T22:14:00Z", "2026-03", "0.10"),
        ("L1", "T-1006", "2026-02-20T07:46:00Z", "2026-02", "0.10"),
        ("L2", "T-1007", "2026-02-11T08:07:00Z", "2026-02", "0.10"),
        ("L3", "T-1007", "2026-02-11T08:07:00Z", "2026-02", "0.10"),
    ]
    invoice = tmp_path / "invoice.csv"
    invoice.write_text(
        "line_id,entity_id,billed_at,period,amount,currency\n"
        + "".join(",".join(line) + ",USD\n" for line in lines),
        encoding="utf-8",
    )
    terms = tmp_path / "terms.yaml"
    terms.write_text(
        "truecount_terms: 1\ncurrency: USD\nunit_price: 0.99\ntolerance: 2%\nplatform_fee: 1.50\n",
        encoding="utf-8",
    )
    args = _support_args(invoice, terms)
    html, recon, drift = _run(args, tmp_path / "report.html")
    f = _matches_json(html, recon, drift)

    # independently, from the invoice's lines and the terms
    unit, fee = Decimal("0.99"), Decimal("1.50")
    entities = {e for _, e, _, _, _ in lines}
    periods = len(recon["periods"])
    on_invoice = sum(Decimal(a) for *_, a in lines) + fee * periods
    extra = (len(lines) - len(entities)) * unit
    price = sum(Decimal(a) for *_, a in lines) - len(lines) * unit  # below the contract's price
    first = len(entities) * unit
    bridge = {k: v for (s, k, n), v in f.figures.items() if s == "bridge" and n == "amount"}
    assert list(bridge) == ["invoice", "platform_fee", "extra_lines", "price"]
    assert Decimal(bridge["invoice"][0]) == on_invoice
    assert Decimal(f.figures[("totals", "total", "amount_billed")][0]) == on_invoice
    assert Decimal(bridge["platform_fee"][0]) == fee * periods
    assert Decimal(bridge["extra_lines"][0]) == extra
    assert Decimal(bridge["price"][0]) == price < 0
    assert Decimal(bridge["price"][1]) == -price  # shown without its sign, as an added row
    start = f.figures[("waterfall", "0", "amount")]
    assert Decimal(start[0]) == first
    assert on_invoice - fee * periods - extra - price == first
    text = _text(html)
    assert f"Billed on the invoice ({len(lines)} lines) {on_invoice:,}" in text
    assert f"+ Invoice amounts below the contract's 0.99 USD per ticket {-price:,}" in text
    assert f"= Billed by the vendor, at 0.99 USD per ticket {len(entities)} {first:,}" in text

    # the credit: negative, said as the letter says it
    due = Decimal(recon["totals"]["buyer_counted"]) * unit + fee * periods
    assert recon["totals"]["billing_source"] == "buyer"
    assert Decimal(recon["totals"]["credit"]) == on_invoice - due < 0
    short = f"{due - on_invoice:,} USD"
    sentence = f"The invoice bills less than is due, by {short}; we ask for no credit."
    assert f"Billed less than due (USD) {due - on_invoice:,}" in text
    assert sentence in text and "Credit due to us" not in text
    out = tmp_path / "pack"
    _cli("reconcile", *args, "--out", str(out))
    letter = (out / "letter.md").read_text(encoding="utf-8").replace("**", "")
    assert sentence in letter


def test_counted_in_is_blank_unless_counted(tmp_path: Path) -> None:
    """The disputed table's "counted in" is the period our definition counts the entity in:
    blank for entities billed but not an outcome, not yet decided or not in the export. The
    support example's invoice, with one counted ticket billed a second time (a disputed entity
    that is counted)."""
    invoice = tmp_path / "invoice.csv"
    with (SUPPORT / "invoice.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    agreed = "T-1005"  # counted in 2026-03 and billed once in the example
    again = next(r for r in rows if r[1] == agreed)
    rows.append(["INV-AGAIN", *again[1:]])
    with invoice.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    args = _support_args(invoice, SUPPORT / "terms.yaml")
    _cli("report", *args, "--out", str(tmp_path / "report.html"))
    _cli("reconcile", *args, "--out", str(tmp_path / "pack"))
    with (tmp_path / "pack" / "entities.csv").open(encoding="utf-8", newline="") as fh:
        listed = [r for r in csv.DictReader(fh) if r["disputed"] == "true"]
    expected = {
        r["entity_id"]: (r["buyer_period"] if r["buyer_status"] == "counted" else "")
        for r in listed
    }
    assert expected[agreed] == "2026-03"
    assert {r["cell"] for r in listed if r["buyer_status"] != "counted"} >= {
        "vendor_only",
        "pending",
        "unknown",
    }
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    table = html[html.index('<table id="disputed">') :]
    table = table[: table.index("</table>")]
    heads = [unescape(re.sub("<[^>]+>", "", h)) for h in re.findall(r"<th[^>]*>(.*?)</th>", table)]
    column = heads.index("counted in")
    shown = {}
    for row in re.findall(r"<tr data-cell[^>]*>(.*?)</tr>", table, re.S):
        cells = [
            unescape(re.sub("<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        shown[cells[0]] = cells[column]
    assert shown == expected
