"""The contract schedule and the price scenarios, checked against the files and by hand.

Clauses: every number in the text is traced back to the definition or terms file it came from
(read here with a regular expression and PyYAML, not through the model), changing a file
changes the text, user text is escaped, and the annexes are the compiled query and the bytes
whose SHA-256 (computed here with hashlib) identifies the definition.

Price: closed forms worked out by hand in the comments, the drift-adjusted discount against a
brute-force search written here in plain floats, the Monte Carlo against its own seed and
against the published normal quantile, and the seed's 41,000-against-27,000 arithmetic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from truecount.billing.terms import load_terms, parse_terms
from truecount.contract import (
    ClauseOptions,
    PriceInputs,
    break_even_discount,
    build_schedule,
    price,
    price_chart_svg,
    render_html,
    render_markdown,
)
from truecount.definition import load_definition, parse_definition
from truecount.engine.compile import compile_sql
from truecount.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
DEMO_DEF = ROOT / "src" / "truecount" / "demo" / "resolved_ticket.yaml"
DEMO_TERMS = ROOT / "src" / "truecount" / "demo" / "terms.yaml"
LIBRARY = ROOT / "src" / "truecount" / "library"
AS_OF = dt.datetime(2026, 4, 15, 0, 0, 0)

# A definition and terms whose every number is distinctive, so that a number in the text can
# only have come from one place.
DEFINITION = """\
truecount: 1
name: strict_resolution
version: 3
description: Closed by the AI, not reopened within 13 days, rated 3.5 or more within 6 days.
unit: ticket
period: {every: month, timezone: Europe/Berlin}
anchor: {type: closed, actor: ai, pick: first}
conditions:
  not_reopened:
    absent: {type: reopened, within: 13d}
  satisfied:
    exists: {type: rated, within: 6d, where: "value >= 3.5"}
    if_no_data: fail
  few_human_replies:
    count: {type: message, actor: human, within: 9d, at_most: 2}
  no_prior_escalation:
    absent: {type: escalated, before: 40d}
  channel_ok:
    any:
      - exists: {type: created, lifetime: true, where: "attrs.channel in ('chat', 'email')"}
      - aggregate: {fn: max, field: attrs.priority, type: assigned, within: 11d, less_than: 4.25}
quantity: 1
"""
TERMS = """\
truecount_terms: 1
currency: USD
unit_price: 4.37
tolerance: 2.5%
billing_source: buyer_beyond_tolerance
platform_fee: 1234.56
annual_cap: 98765.43
discount: 7.5%
"""
NOTICE_DAYS = 45

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _numbers(text: str) -> set[Decimal]:
    return {Decimal(m.replace(",", "")) for m in _NUMBER.findall(text)}


def _body(md: str) -> str:
    """The clauses without the annexes, clause numbering, digests and fixed names of standards."""
    body = md[: md.index("## Annex A")]
    body = re.sub(r"[0-9a-f]{64}", " ", body)  # SHA-256 digests (checked separately)
    body = re.sub(r"^## \d+\.", " ", body, flags=re.M)  # section headings
    body = re.sub(r"\*\*\d+(?:\.\d+)+\*\*", " ", body)  # clause numbers
    body = re.sub(r"clauses? \d+(?:\.\d+)*(?:\(\w+\))?(?: (?:and|to) \d+(?:\.\d+)*)?", " ", body)
    return body.replace("SHA-256", " ").replace("UTF-8", " ")


def _schedule_md(definition: str, terms: str | None, **options: Any) -> str:
    d = parse_definition(definition)
    t = parse_terms(terms) if terms is not None else None
    opts = ClauseOptions(as_of=AS_OF, **options)
    return render_markdown(build_schedule(d, t, opts))


# --------------------------------------------------------------------------- clauses


def test_every_number_in_the_clauses_comes_from_the_files() -> None:
    md = _schedule_md(DEFINITION, TERMS, notice_days=NOTICE_DAYS)
    allowed = _numbers(DEFINITION) | _numbers(TERMS) | {Decimal(NOTICE_DAYS)}
    found = _numbers(_body(md))
    assert found, "the clauses should state numbers"
    assert found <= allowed, f"numbers from nowhere: {sorted(found - allowed)}"
    # and the parameters are all there, in words a reader can check against the files
    for text in (
        "within 13 days after the Anchor Event",
        "within 6 days after the Anchor Event",
        "within 40 days before the Anchor Event",
        "is at least 3.5",
        "is at most 2",
        "less than 4.25",
        "version 3",
        "by more than 2.5% of the Customer Count",
        "USD 4.37, less a discount of 7.5%",
        "USD 1,234.56",
        "USD 98,765.43",
        "at least 45 days",
        "plus 13 days",  # the Count Time waits for the longest window after the anchor
        "`Europe/Berlin`",
    ):
        assert text in md, text


def test_changing_the_definition_or_terms_changes_the_clause() -> None:
    base = _schedule_md(DEMO_DEF.read_text(), DEMO_TERMS.read_text())
    changed = _schedule_md(
        DEMO_DEF.read_text().replace("within: 14d", "within: 10d"),
        DEMO_TERMS.read_text().replace("tolerance: 2%", "tolerance: 3%"),
    )
    clause = re.compile(r"^\*\*2\.2\*\* .*$", re.M)
    assert "within 14 days after" in clause.search(base).group()  # type: ignore[union-attr]
    assert "within 10 days after" in clause.search(changed).group()  # type: ignore[union-attr]
    assert "plus 14 days" in base and "plus 10 days" in changed
    assert "more than 2% of" in base and "more than 3% of" in changed
    assert "14 days" not in _body(changed).replace("within 14 days", "")


def test_one_clause_per_condition_in_definition_order() -> None:
    d = parse_definition(DEFINITION)
    s = build_schedule(d, None, ClauseOptions(as_of=AS_OF))
    outcome = next(sec for sec in s.sections if sec.number == "2")
    names = list(yaml.safe_load(DEFINITION)["conditions"])
    titled = [c for c in outcome.clauses[1 : 1 + len(names)]]
    assert [c.label for c in titled] == [f"2.{i + 2}" for i in range(len(names))]
    for c, name in zip(titled, names, strict=True):
        assert f"`{name}`" in "".join(f"`{s.text}`" for s in c.title if s.kind == "code")
    # the any-combinator is written as lettered alternatives
    any_clause = titled[names.index("channel_ok")]
    assert any_clause.plain().startswith("At least one of the following is met")
    assert [i.label for i in any_clause.items] == ["(a)", "(b)"]
    assert "`chat` or `email`" in any_clause.items[0].plain()


def test_parameters_trace_to_the_yaml_keys() -> None:
    """Every value recorded as coming from a file is at that key of the file (read by PyYAML)."""
    d = parse_definition(DEFINITION)
    s = build_schedule(d, parse_terms(TERMS), ClauseOptions(as_of=AS_OF, notice_days=NOTICE_DAYS))
    raw_def = yaml.safe_load(DEFINITION)
    raw_terms = yaml.safe_load(TERMS)

    def lookup(data: Any, key: str) -> Any:
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", key):
            data = data[int(part[1:-1])] if part.startswith("[") else data[part]
        return data

    def same(expected: Any, value: str) -> bool:
        if isinstance(expected, int | float):
            return Decimal(str(expected)) == Decimal(value)
        return str(expected) == value

    checked = 0
    for p in s.parameters:
        if p.source == "definition" and not p.key.startswith(("derived.", "sha256")):
            if re.fullmatch(r"conditions\.\w+", p.key):
                assert p.value in raw_def["conditions"]
                continue
            expected = lookup(raw_def, p.key)
            if p.key.endswith(".where"):  # normalised by the parser: compare without spacing
                assert re.sub(r"[\s()]", "", expected) == re.sub(r"[\s()]", "", p.value), p
            else:
                assert same(expected, p.value), p
        elif p.source == "terms":
            expected = raw_terms[p.key]  # money is written with its currency: USD 4.37
            assert str(expected) == p.value or _numbers(str(expected)) == _numbers(p.value), p
        else:
            continue
        checked += 1
    assert checked >= 25
    placed = [(p.clause, p.key) for p in s.parameters]
    assert len(placed) == len(set(placed)), "a value is recorded once per clause"
    assert {p.key: p.value for p in s.parameters if p.source == "option"}["notice_days"] == "45"


@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_packaged_definition_becomes_a_schedule(path: Path) -> None:
    d = load_definition(path)
    s = build_schedule(d, load_terms(DEMO_TERMS), ClauseOptions(as_of=AS_OF))
    outcome = next(sec for sec in s.sections if sec.number == "2")
    names = [span.text for c in outcome.clauses for span in c.title if span.kind == "code"]
    assert names == list(yaml.safe_load(path.read_text())["conditions"])
    assert render_html(s).count('<p class="clause">') == sum(len(x.clauses) for x in s.sections)
    json.dumps(s.to_json())


def test_export_clause_lists_exactly_the_types_and_fields_needed() -> None:
    md = _schedule_md(DEMO_DEF.read_text(), None)
    section = md[md.index("## 3.") : md.index("## 4.")]
    items = re.findall(r"^- \(\w\) `([^`]+)`(.*)$", section, flags=re.M)
    assert [t for t, _ in items] == ["closed", "reopened", "rated"]
    rest = dict(items)
    assert "Events by `ai`" in rest["closed"] and "clause 2.1" in rest["closed"]
    assert "`value`" in rest["rated"] and "clause 2.3" in rest["rated"]
    assert "with" not in rest["reopened"]

    vendor = (LIBRARY / "support_resolution_vendor.yaml").read_text()
    md = _schedule_md(vendor, None)
    section = md[md.index("## 3.") : md.index("## 4.")]
    items = re.findall(r"^- \(\w\) `([^`]+)`(.*)$", section, flags=re.M)
    assert [t for t, _ in items] == ["message", "escalated", "ai_outcome"]
    assert "`ai` and `customer`" in dict(items)["message"]
    assert "attribute `state`" in dict(items)["ai_outcome"]
    assert "(`attrs`), including `state`" in section
    assert "(`value`)" not in section  # nothing reads value here


def test_annexes_are_the_compiled_query_and_the_hashed_definition() -> None:
    d = load_definition(DEMO_DEF)
    s = build_schedule(d, None, ClauseOptions(as_of=AS_OF, dialect="spark"))
    query, canonical = s.annexes
    assert query.code == compile_sql(d, AS_OF, dialect="spark")
    assert hashlib.sha256(canonical.code.encode("utf-8")).hexdigest() == d.sha256
    assert json.loads(canonical.code)["conditions"]["not_reopened"]["absent"]["within"] == "14d"
    md = render_markdown(s)
    assert "```sql\n" + query.code.rstrip("\n") + "\n```" in md
    assert f"which is `{hashlib.sha256(canonical.code.encode()).hexdigest()}`" in md


def test_without_terms_there_are_no_charges_and_the_tolerance_is_left_open() -> None:
    md = _schedule_md(DEMO_DEF.read_text(), None)
    assert "## 6. Changes to the Vendor" in md and "## 6. Charges" not in md
    assert "[tolerance to be agreed]" in md.replace("\\[", "[").replace("\\]", "]")
    assert "clause 6.1(b)" in md


def test_billing_source_rules_are_written_as_the_terms_say() -> None:
    def source(rule: str) -> str:
        md = _schedule_md(
            DEMO_DEF.read_text(), DEMO_TERMS.read_text().replace("buyer_beyond_tolerance", rule)
        )
        return re.search(r"^\*\*5\.2\*\* .*$", md, re.M).group()  # type: ignore[union-attr]

    assert "Otherwise the Vendor Count is the billing source" in source("buyer_beyond_tolerance")
    assert "Customer Count is the billing source for every" in source("buyer")
    assert "The Vendor Count is the billing source." in source("vendor")


def test_user_text_is_escaped_in_html_and_markdown() -> None:
    hostile = """\
truecount: 1
name: hostile
version: 1
description: "<script>alert(1)</script> [click](javascript:alert(2)) *bold* `tick`"
unit: "</code><img src=x onerror=alert(3)>"
anchor: {type: "<img src=x onerror=alert(4)>", actor: '"><b>x</b>'}
conditions:
  rated_ok:
    exists: {type: "a`b``c", where: "attrs.note == '<script>x</script>'"}
"""
    d = parse_definition(hostile)
    s = build_schedule(d, None, ClauseOptions(as_of=AS_OF))
    page = render_html(s)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(4)&gt;" in page
    assert "&quot;&gt;&lt;b&gt;x&lt;/b&gt;" in page
    # the page is one self-contained document: no external resources, no scripts
    assert not re.search(r"(src|href)\s*=", page.replace("src=x", ""))
    md = render_markdown(s)
    assert "\\<script\\>alert(1)\\</script\\>" in md
    assert "\\[click\\](javascript:alert(2))" in md and "\\*bold\\*" in md
    assert "```a`b``c```" in md  # a code span fenced longer than any backtick run inside
    sql = s.annexes[0].code
    longest = max(len(m) for m in re.findall(r"`+", sql))
    fence = "`" * max(3, longest + 1)
    assert fence + "sql\n" in md


def test_clause_options_are_checked() -> None:
    d = load_definition(DEMO_DEF)
    with pytest.raises(InputError, match="dialect"):
        build_schedule(d, None, ClauseOptions(as_of=AS_OF, dialect="oracle"))
    with pytest.raises(InputError, match="notice"):
        build_schedule(d, None, ClauseOptions(as_of=AS_OF, notice_days=0))


def tc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "truecount", *map(str, args)], capture_output=True, text=True
    )


def test_cli_clauses_writes_md_html_and_json(tmp_path: Path) -> None:
    out = tmp_path / "schedule.html"
    proc = tc(
        "clauses",
        DEMO_DEF,
        "--terms",
        DEMO_TERMS,
        "-f",
        "html",
        "-o",
        out,
        "--as-of",
        "2026-04-15T00:00:00",
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    proc = tc(
        "clauses", DEMO_DEF, "--terms", DEMO_TERMS, "-f", "json", "--as-of", "2026-04-15T00:00:00"
    )
    data = json.loads(proc.stdout)
    assert data["definition"]["sha256"] == load_definition(DEMO_DEF).sha256
    assert data["terms"]["unit_price"] == "5.00"
    assert [s["number"] for s in data["sections"]] == ["1", "2", "3", "4", "5", "6", "7"]
    assert [a["letter"] for a in data["annexes"]] == ["A", "B"]
    assert data["annexes"][0]["content"] == compile_sql(
        load_definition(DEMO_DEF), dt.datetime(2026, 4, 15)
    )
    proc = tc("clauses", DEMO_DEF, "--as-of", "2026-04-15T00:00:00")
    assert proc.returncode == 0 and proc.stdout.startswith("# Schedule")
    proc = tc("clauses", DEMO_DEF, "--dialect", "oracle")
    assert proc.returncode == 2 and "dialect" in proc.stderr


# --------------------------------------------------------------------------- price


def inputs(**kw: Any) -> PriceInputs:
    base: dict[str, Any] = {
        "currency": "USD",
        "digits": 2,
        "unit_price": Decimal("5.00"),
        "volume": Decimal(1000),
        "buyer_price": Decimal("5.50"),
        "months": 24,
        "draws": 2000,
    }
    base.update(kw)
    return PriceInputs(**base)


def test_without_drift_every_option_is_a_simple_product() -> None:
    r = price(inputs(platform_fee=Decimal(2000)))
    # 5.00 x 1,000 x 12 = 60,000 a year; fee 2,000 x 12 = 24,000; buyer 5.50 x 1,000 x 12
    assert r.option("vendor_headline").years == (Decimal("60000.00"), Decimal("60000.00"))
    assert r.option("vendor_headline").total == Decimal("120000.00")
    assert r.option("vendor_discounted").total == Decimal("120000.00")
    assert r.option("hybrid").total == Decimal("168000.00")
    assert r.option("buyer_defined").total == Decimal("132000.00")
    assert r.drift_discount == 0 and r.stated_discount_pct == Decimal("0.00")
    # vendor = buyer when 5.00 x (1 - x) = 5.50: x = -10%; a buyer price up to 5.00 breaks even
    assert r.discount_vs_buyer == Decimal("-0.1")
    assert r.break_even_buyer_price == Decimal("5.00")


def test_a_cap_that_binds_and_one_that_does_not() -> None:
    binding = price(inputs(platform_fee=Decimal(2000), annual_cap=Decimal(50000)))
    # min(60,000, 50,000) + 24,000 = 74,000 a year
    assert binding.option("hybrid").years == (Decimal("74000.00"), Decimal("74000.00"))
    loose = price(inputs(platform_fee=Decimal(2000), annual_cap=Decimal(70000)))
    # min(60,000, 70,000) + 24,000 = 84,000 a year
    assert loose.option("hybrid").years == (Decimal("84000.00"), Decimal("84000.00"))
    # 18 months: year 2 has 6 months: min(30,000, 50,000) + 12,000 = 42,000
    short = price(inputs(months=18, platform_fee=Decimal(2000), annual_cap=Decimal(50000)))
    assert short.option("hybrid").years == (Decimal("74000.00"), Decimal("42000.00"))
    assert short.option("hybrid").total == Decimal("116000.00")


def test_drifting_costs_against_plain_floats() -> None:
    r = price(inputs(drift=Decimal("0.12")))
    # month m costs 5 x 1000 x 1.12^(m/12); each year rounded to the cent
    for y in range(2):
        expected = sum(5 * 1000 * 1.12 ** (m / 12) for m in range(12 * y, 12 * y + 12))
        assert abs(float(r.option("vendor_headline").years[y]) - expected) < 0.006
    # the buyer-defined option does not drift
    assert r.option("buyer_defined").years == (Decimal("66000.00"), Decimal("66000.00"))


def _brute_force_discount(drift: float, months: int) -> float:
    """Bisection on the discount x until the drifting cost equals the flat cost."""

    def excess(x: float) -> float:
        drifting = sum((1 - x) * (1 + drift) ** (m / 12) for m in range(months))
        return drifting - months

    lo, hi = -1.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if excess(mid) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@pytest.mark.parametrize(
    ("drift", "months"), [("0.05", 24), ("0.15", 24), ("0.30", 36), ("-0.08", 12), ("0.2", 7)]
)
def test_break_even_discount_matches_a_brute_force_search(drift: str, months: int) -> None:
    formula = float(break_even_discount(Decimal(drift), months))
    assert abs(formula - _brute_force_discount(float(drift), months)) < 1e-12
    r = price(inputs(drift=Decimal(drift), months=months))
    # the contract figure is the exact discount rounded up to 0.01%
    assert r.stated_discount_pct == Decimal(math.ceil(formula * 10000 - 1e-9)) / 100
    # so the discounted option costs at most the flat cost; rounding up by less than 0.01
    # points takes off less than 0.0001 / (1 - x) of it
    flat = 5 * 1000 * months
    total = sum(float(m) for m in r.option("vendor_discounted").monthly)
    assert flat * (1 - 0.0001 / (1 - formula)) <= total <= flat + 1e-6


def test_the_seed_rule_of_thumb_range() -> None:
    """15% a year over 24 months calls for about 12.8%: inside the seed's 10-20% rule."""
    r = price(inputs(drift=Decimal("0.15")))
    assert r.stated_discount_pct == Decimal("12.82")


def test_monte_carlo_is_seeded_and_its_percentiles_ordered() -> None:
    kw = {"drift": Decimal("0.1"), "annual_cap": Decimal(70000), "platform_fee": Decimal(500)}
    a, b = price(inputs(**kw, seed=3)), price(inputs(**kw, seed=3))
    c = price(inputs(**kw, seed=4))
    assert [o.risk for o in a.options] == [o.risk for o in b.options]
    assert [o.risk for o in a.options] != [o.risk for o in c.options]
    for o in a.options:
        for risk in (o.risk, *o.years_risk):
            assert risk.p10 <= risk.p50 <= risk.p90
    # the cap bounds the hybrid's worst case: 2 x (70,000 + 12 x 500)
    assert a.option("hybrid").risk.p90 <= Decimal("152000.00")


def test_monte_carlo_without_spread_is_the_exact_figure() -> None:
    r = price(inputs(drift=Decimal("0.1"), drift_sd=Decimal(0), volume_sd=Decimal(0)))
    for o in r.options:
        assert abs(o.risk.p10 - o.total) <= Decimal("0.02")
        assert o.risk.p10 == o.risk.p50 == o.risk.p90


def test_volume_risk_follows_the_lognormal_quantiles() -> None:
    """Buyer-defined cost = price x volume x months x V, V ~ LogNormal(0, s): its P10 and P90
    are exp(-/+1.2815516 s) times the median (the normal distribution's 10% quantile)."""
    s = 0.2
    r = price(inputs(volume_sd=Decimal(str(s)), draws=40000, seed=11))
    o = r.option("buyer_defined")
    median = 5.5 * 1000 * 24
    assert abs(float(o.risk.p50) / median - 1) < 0.01
    assert abs(float(o.risk.p10) / median - math.exp(-1.2815516 * s)) < 0.01
    assert abs(float(o.risk.p90) / median - math.exp(1.2815516 * s)) < 0.01


def test_the_seed_worked_example() -> None:
    """41,000 billed against 27,000 counted in a quarter, at 5.00 a unit, over a year."""
    t = load_terms(DEMO_TERMS)
    assert t.unit_price == Decimal("5.00")
    inp = PriceInputs.from_terms(
        t,
        Decimal(27000) / 3,
        months=12,
        ratio=Decimal(41000) / Decimal(27000),
        buyer_premium=Decimal(0),
    )
    r = price(inp)
    # vendor: 41,000 x 4 quarters x 5.00 = 820,000 ; buyer: 27,000 x 4 x 5.00 = 540,000
    assert r.option("vendor_headline").total == Decimal("820000.00")
    assert r.option("buyer_defined").total == Decimal("540000.00")
    overcharge = r.option("vendor_headline").total - r.option("buyer_defined").total
    assert overcharge == Decimal("280000.00")  # 14,000 a quarter x 4 x 5.00
    # paying the vendor's count, the discount that gets back to the buyer's: 1 - 27/41
    assert f"{r.discount_vs_buyer * 100:.2f}" == "34.15"
    # the buyer could pay up to 5.00 x 41/27 = 7.5925... per buyer-defined outcome
    assert r.break_even_buyer_price == Decimal("7.59")


def test_bad_price_inputs_name_the_option() -> None:
    with pytest.raises(InputError, match="volume"):
        price(inputs(volume=Decimal(0)))
    with pytest.raises(InputError, match="drift"):
        price(inputs(drift=Decimal(-1)))
    with pytest.raises(InputError, match="draws"):
        price(inputs(draws=0))


def test_chart_is_self_contained_svg() -> None:
    r = price(inputs(drift=Decimal("0.1"), annual_cap=Decimal(65000)))
    svg = price_chart_svg(r)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert len(root.findall(f"{ns}polyline")) == 4
    assert "<script" not in svg and "href" not in svg and "@import" not in svg
    labels = [t.text or "" for t in root.iter(f"{ns}text")]
    assert any(f"{r.option('hybrid').total:,}" in t for t in labels)


def test_cli_price_json_and_chart(tmp_path: Path) -> None:
    chart = tmp_path / "price.svg"
    proc = tc(
        "price", DEMO_TERMS, "--volume", "9000", "--ratio", "41000/27000", "--months", "12",
        "--buyer-premium", "0%", "--draws", "500", "-f", "json", "--chart", chart,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    totals = {o["key"]: o["total"] for o in data["options"]}
    assert totals == {
        "vendor_headline": "820000.00",
        "vendor_discounted": "820000.00",
        "hybrid": "820000.00",
        "buyer_defined": "540000.00",
    }
    assert data["break_even"]["discount_vs_buyer_defined"] == "34.15%"
    assert data["inputs"]["monte_carlo"] == {
        "draws": 500, "seed": 0, "drift_sd": "5%", "volume_sd": "20%",
    }  # fmt: skip
    assert set(data["options"][0]["risk"]) == {"mean", "p10", "p50", "p90"}
    assert chart.read_text().startswith("<svg")
    proc = tc("price", DEMO_TERMS, "--volume", "9000", "--drift", "5")
    assert proc.returncode == 2 and "drift" in proc.stderr
    proc = tc("price", DEMO_TERMS, "--volume", "9000", "--drift", "8%")
    assert proc.returncode == 0 and "drift-adjusted discount" in proc.stdout
