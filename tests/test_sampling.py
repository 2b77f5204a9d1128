"""Audit sampling: sizes against the published AICPA tables, limits against statsmodels, the draw
against an independent re-draw of the documented algorithm, the worksheet and its evaluation."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import subprocess
import sys
from collections import Counter, defaultdict
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from truecount.cli.app import main
from truecount.sampling import (
    Parameters,
    SamplingError,
    attribute_sample_size,
    default_seed,
    draw,
    load_frame,
    make_plan,
    parse_rate,
    upper_limit,
)

# --------------------------------------------------------------------------- helpers

FRAME_SIZES = {
    "agreed": 500,
    "vendor_only": 300,
    "unknown": 40,
    "duplicate": 70,
    "period_mismatch": 5,
    "pending": 3,
}


def write_frame(path: Path, sizes: dict[str, int] = FRAME_SIZES, shuffle: int = 1) -> Path:
    """A synthetic entities.csv (the dispute pack's shape), rows in a shuffled order."""
    rows = []
    for cell, n in sizes.items():
        for i in range(n):
            rows.append(
                {
                    "entity_id": f"{cell}-{i:05d}",
                    "cell": cell,
                    "disputed": "false" if cell == "agreed" else "true",
                    "reason": "" if cell == "agreed" else "not_reopened",
                    "lines": "2" if cell == "duplicate" else "1",
                    "line_ids": f"L{i}",
                    "billed_period": "2026-01",
                    "billed_amount": "5.00",
                    "buyer_status": "counted" if cell == "agreed" else "not_counted",
                    "buyer_period": "2026-01",
                    "anchor_ts": "2026-01-02 03:04:05",
                }
            )
    random.Random(shuffle).shuffle(rows)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(*args: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The CLI in process, through main() and its error boundary; (exit code, stdout, stderr)."""
    argv = sys.argv
    sys.argv = ["truecount", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


def read_worksheet_rows(path: Path) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """The header block (#key -> cells) and the item rows, read with the csv module."""
    meta: dict[str, list[str]] = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as fh:
        lines = list(csv.reader(fh))
    start = next(i for i, r in enumerate(lines) if r and r[0] == "stratum")
    for r in lines[:start]:
        if r[0] == "#stratum":
            meta[f"stratum:{r[1]}"] = r[2:]
        else:
            meta[r[0]] = r[1:]
    header = lines[start]
    return meta, [dict(zip(header, r, strict=True)) for r in lines[start + 1 :]]


def fill(path: Path, out: Path, deviations: dict[str, int], outcome_ok: str = "ok") -> None:
    """Mark the first k items of each stratum as deviations, the rest ok."""
    with path.open(encoding="utf-8", newline="") as fh:
        lines = list(csv.reader(fh))
    start = next(i for i, r in enumerate(lines) if r and r[0] == "stratum")
    header = lines[start]
    seen: Counter[str] = Counter()
    for r in lines[start + 1 :]:
        seen[r[0]] += 1
        r[header.index("review_outcome")] = (
            "deviation" if seen[r[0]] <= deviations.get(r[0], 0) else outcome_ok
        )
        r[header.index("reviewer")] = "J. Reviewer"
    with out.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(lines)


def redraw(frame: Path, seed: int, sizes: dict[str, int]) -> dict[str, list[str]]:
    """The selection as docs/sampling.md states it, written again with the csv module."""
    with frame.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows.sort(key=lambda r: r["entity_id"].encode("utf-8"))
    keys = np.random.PCG64(seed).random_raw(len(rows))
    by_cell: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for i, (row, key) in enumerate(zip(rows, keys, strict=True)):
        by_cell[row["cell"]].append((int(key), i, row["entity_id"]))
    return {
        cell: [e for _, _, e in sorted(items)[: sizes[cell]]] for cell, items in by_cell.items()
    }


# --------------------------------------------------------------------------- sample sizes

# AICPA Audit Sampling guide, Table A-1 (5% risk of overreliance) and Table A-2 (10% risk):
# (tolerable, expected, risk) -> sample size (allowed deviations), as published.
AICPA = [
    # Table A-1, 0.00% expected row
    ("2%", "0%", "5%", 149, 0),
    ("3%", "0%", "5%", 99, 0),
    ("4%", "0%", "5%", 74, 0),
    ("5%", "0%", "5%", 59, 0),
    ("6%", "0%", "5%", 49, 0),
    ("7%", "0%", "5%", 42, 0),
    ("8%", "0%", "5%", 36, 0),
    ("9%", "0%", "5%", 32, 0),
    ("10%", "0%", "5%", 29, 0),
    ("15%", "0%", "5%", 19, 0),
    ("20%", "0%", "5%", 14, 0),
    # Table A-1, rows with expected deviations
    ("5%", "0.25%", "5%", 93, 1),
    ("3%", "0.75%", "5%", 208, 2),
    ("5%", "1%", "5%", 93, 1),
    ("4%", "1%", "5%", 156, 2),
    ("5%", "1.5%", "5%", 124, 2),
    ("5%", "1.75%", "5%", 153, 3),
    ("5%", "2%", "5%", 181, 4),
    ("6%", "2.5%", "5%", 150, 4),
    ("10%", "3%", "5%", 61, 2),
    ("10%", "4%", "5%", 89, 4),
    ("9%", "5%", "5%", 158, 8),
    # Table A-2, 0.00% expected row
    ("2%", "0%", "10%", 114, 0),
    ("3%", "0%", "10%", 76, 0),
    ("4%", "0%", "10%", 57, 0),
    ("5%", "0%", "10%", 45, 0),
    ("10%", "0%", "10%", 22, 0),
    # Table A-2, rows with expected deviations
    ("5%", "0.5%", "10%", 77, 1),
    ("3%", "1%", "10%", 176, 2),
    ("5%", "1.5%", "10%", 105, 2),
    ("6%", "2%", "10%", 88, 2),
]


@pytest.mark.parametrize(("tolerable", "expected", "risk", "n", "k"), AICPA)
def test_sizes_match_the_published_aicpa_tables(
    tolerable: str, expected: str, risk: str, n: int, k: int
) -> None:
    confidence = 1 - parse_rate(risk, "risk")
    assert attribute_sample_size(tolerable, confidence, expected) == (n, k)


@pytest.mark.parametrize(
    ("tolerable", "allowed", "n"),
    [
        # /work/shared reference notes §2.4: 5% risk, 0, 1, 2 deviations allowed
        ("2%", 1, 236), ("2%", 2, 313),
        ("3%", 1, 157), ("3%", 2, 208),
        ("5%", 1, 93), ("5%", 2, 124),
        ("10%", 1, 46), ("10%", 2, 61),
    ],
)  # fmt: skip
def test_sizes_with_deviations_allowed(tolerable: str, allowed: int, n: int) -> None:
    assert attribute_sample_size(tolerable, "95%", "0%", min_allowed=allowed) == (n, allowed)


@pytest.mark.parametrize("tolerable", ["1%", "2%", "5%", "7.5%", "10%", "25%"])
@pytest.mark.parametrize("confidence", ["90%", "95%", "99%"])
def test_zero_deviation_size_is_the_closed_form(tolerable: str, confidence: str) -> None:
    """k = 0: (1 - T)^n <= 1 - C, so n = ceil(ln(1 - C) / ln(1 - T))."""
    t = float(parse_rate(tolerable, "t"))
    c = float(parse_rate(confidence, "c"))
    assert attribute_sample_size(tolerable, confidence)[0] == math.ceil(
        math.log(1 - c) / math.log(1 - t)
    )


@pytest.mark.parametrize(
    ("tolerable", "confidence", "expected"),
    [("5%", "95%", "0%"), ("5%", "95%", "1%"), ("3%", "90%", "1%"), ("10%", "99%", "2.5%")],
)
def test_size_and_upper_limit_are_one_inequality(
    tolerable: str, confidence: str, expected: str
) -> None:
    """At the planned n the allowed k deviations give an upper limit <= T; one more does not,
    and neither does n - 1 with the same k (statsmodels' exact interval as the reference)."""
    n, k = attribute_sample_size(tolerable, confidence, expected)
    t = float(parse_rate(tolerable, "t"))
    alpha = 2 * (1 - float(parse_rate(confidence, "c")))  # one-sided C = two-sided 1 - 2(1 - C)
    assert proportion_confint(k, n, alpha=alpha, method="beta")[1] <= t
    assert proportion_confint(k + 1, n, alpha=alpha, method="beta")[1] > t
    assert proportion_confint(k, n - 1, alpha=alpha, method="beta")[1] > t
    assert k == math.ceil(n * Fraction(str(parse_rate(expected, "e", allow_zero=True))))


def test_sizes_refuse_an_expected_rate_at_the_tolerable() -> None:
    with pytest.raises(SamplingError, match="below the tolerable"):
        attribute_sample_size("5%", "95%", "5%")
    with pytest.raises(SamplingError, match="no sample of up to"):
        attribute_sample_size("2%", "95%", "1.99%")


@pytest.mark.parametrize(
    ("text", "value"),
    [("5%", "0.05"), ("0.05", "0.05"), (" 2.5 % ", "0.025"), ("95%", "0.95"), ("0", "0")],
)
def test_rates_parse(text: str, value: str) -> None:
    assert parse_rate(text, "rate", allow_zero=True) == Decimal(value)


@pytest.mark.parametrize("text", ["5", "100%", "-1%", "abc", "0", "nan", "0.000000001"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(SamplingError):
        parse_rate(text, "tolerable rate")


# --------------------------------------------------------------------------- upper limits


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    # reference notes §2.4 (there called "90%": the two-sided 90% interval's upper end, which
    # is the one-sided 95% limit)
    [(1, 100, 0.0466), (3, 300, 0.0256), (2, 400, 0.0157)],
)
def test_upper_limits_reproduce_the_reference_examples(k: int, n: int, expected: float) -> None:
    ul = float(upper_limit(k, n, Decimal("0.95")))
    assert round(ul, 4) == expected
    assert ul == pytest.approx(
        binomtest(k, n).proportion_ci(confidence_level=0.90, method="exact").high, rel=1e-9
    )


def test_upper_limits_match_statsmodels_on_a_grid() -> None:
    rng = np.random.default_rng(5)
    n = rng.integers(1, 2000, size=300)
    k = rng.integers(0, n + 1)
    for conf in (Decimal("0.90"), Decimal("0.95"), Decimal("0.99")):
        got = upper_limit(k, n, conf)
        alpha = 2 * (1 - float(conf))
        want = np.array(
            [
                proportion_confint(int(a), int(b), alpha=alpha, method="beta")[1]
                for a, b in zip(k, n, strict=True)
            ]
        )
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_rule_of_three_and_census() -> None:
    """0 in n: exactly 1 - (1 - C)^(1/n) (59 clean items bound the rate at 4.95%); a stratum
    reviewed whole has its observed rate as the limit."""
    for n in (30, 59, 100, 300):
        assert float(upper_limit(0, n, Decimal("0.95"))) == pytest.approx(1 - 0.05 ** (1 / n))
    assert round(float(upper_limit(0, 59, Decimal("0.95"))), 4) == 0.0495  # 4.9508%, below 5%
    got = upper_limit([0, 2, 1], [13, 40, 40], Decimal("0.95"), population=[13, 40, 41])
    assert got[0] == 0.0 and got[1] == pytest.approx(2 / 40)
    assert got[2] == pytest.approx(proportion_confint(1, 40, alpha=0.1, method="beta")[1])
    assert float(upper_limit(5, 5, Decimal("0.95"))) == 1.0


# --------------------------------------------------------------------------- plan and draw


def test_plan_allocation(tmp_path: Path) -> None:
    frame = load_frame(write_frame(tmp_path / "entities.csv"))
    plan = make_plan(frame.populations(), Parameters(Decimal("0.05"), Decimal("0.95")))
    got = {s.name: (s.population, s.sample, s.allowed) for s in plan.strata}
    assert got == {
        "vendor_only": (300, 93, 1),  # oversampled: planned for one deviation more
        "unknown": (40, 40, 2),  # whole stratum; floor(5% of 40) deviations keep it at 5%
        "duplicate": (70, 59, 0),
        "pending": (3, 3, 0),
        "period_mismatch": (5, 5, 0),
        "agreed": (500, 59, 0),
    }
    assert plan.strata[0].name == "vendor_only"
    assert plan.sample == sum(
        min(n, 93 if c == "vendor_only" else 59) for c, n in FRAME_SIZES.items()
    )
    assert plan.population == sum(FRAME_SIZES.values())
    weights = [s.to_json(plan.population)["weight"] for s in plan.strata]
    assert sum(weights) == pytest.approx(1.0, abs=1e-5)


def test_draw_matches_an_independent_redraw_and_repeats(tmp_path: Path) -> None:
    path = write_frame(tmp_path / "entities.csv")
    frame = load_frame(path)
    plan = make_plan(frame.populations(), Parameters(Decimal("0.05"), Decimal("0.95")))
    seed = default_seed(frame.sha256)
    assert seed == int(hashlib.sha256(path.read_bytes()).hexdigest()[:12], 16) < 10**15
    sample = draw(frame, plan, seed)
    got: dict[str, list[str]] = defaultdict(list)
    for row in sample.to_pylist():
        got[row["stratum"]].append(row["entity_id"])
    assert dict(got) == redraw(path, seed, {s.name: s.sample for s in plan.strata})
    # the same frame in another row order, read again: the same sample
    shuffled = write_frame(tmp_path / "other.csv", shuffle=99)
    assert shuffled.read_bytes() != path.read_bytes()
    again = draw(load_frame(shuffled), plan, seed)
    assert again.column("entity_id").to_pylist() == sample.column("entity_id").to_pylist()
    other = draw(frame, plan, seed + 1)
    assert other.column("entity_id").to_pylist() != sample.column("entity_id").to_pylist()
    # a larger plan from the same seed contains the smaller sample
    bigger = make_plan(frame.populations(), Parameters(Decimal("0.03"), Decimal("0.95")))
    big = set(draw(frame, bigger, seed).column("entity_id").to_pylist())
    assert set(sample.column("entity_id").to_pylist()) <= big


def test_frame_errors(tmp_path: Path) -> None:
    bad = tmp_path / "dup.csv"
    bad.write_text("entity_id,cell\nA,agreed\nB,agreed\nA,vendor_only\n", encoding="utf-8")
    with pytest.raises(SamplingError, match="'A' appears more than once"):
        load_frame(bad)
    bad.write_text("entity_id,cell\nA,agreed\nB,\n", encoding="utf-8")
    with pytest.raises(SamplingError, match=r"dup.csv:3, column 'cell'"):
        load_frame(bad)
    bad.write_text("entity_id,status\nA,agreed\n", encoding="utf-8")
    with pytest.raises(SamplingError, match="missing column 'cell'"):
        load_frame(bad)
    with pytest.raises(SamplingError, match=r"no entities\.csv"):
        load_frame(tmp_path)


# --------------------------------------------------------------------------- worksheet


def test_worksheet_neutralises_formula_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "entities.csv").write_text(
        "entity_id,cell,reason,lines,billed_period,buyer_status,buyer_period\n"
        '"=HYPERLINK(""http://x"")",vendor_only,@SUM(1),1,2026-01,not_counted,+1\n'
        "-2+3,agreed,,1,2026-01,counted,2026-01\n"
        "plain,agreed,\tx,1,2026-01,counted,2026-01\n",
        encoding="utf-8",
    )
    ws = tmp_path / "ws.csv"
    code, _, err = run("sample", pack, "--out", ws, capsys=capsys)
    assert code == 0, err
    meta, rows = read_worksheet_rows(ws)
    by_id = {r["entity_id"]: r for r in rows}
    assert set(by_id) == {'\'=HYPERLINK("http://x")', "'-2+3", "plain"}
    assert by_id['\'=HYPERLINK("http://x")']["reason"] == "'@SUM(1)"
    assert by_id['\'=HYPERLINK("http://x")']["buyer_period"] == "'+1"
    assert by_id["plain"]["reason"] == "'\tx"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert meta["#frame_sha256"] == [
        hashlib.sha256((pack / "entities.csv").read_bytes()).hexdigest()
    ]


def test_cli_draw_and_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_frame(tmp_path / "entities.csv")
    ws = tmp_path / "ws.csv"
    code, out, err = run(
        "sample", tmp_path, "--tolerable", "5%", "--confidence", "0.95", "--out", ws,
        "--format", "json", capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    plan = json.loads(out)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert plan["frame_sha256"] == digest and plan["seed"] == int(digest[:12], 16)
    assert plan["seed_source"] == "frame digest"
    assert plan["sample"] == sum(s["sample"] for s in plan["strata"]) == 259
    meta, rows = read_worksheet_rows(ws)
    assert meta["#seed"] == [str(plan["seed"])] and meta["#tolerable"] == ["0.05"]
    assert meta["stratum:vendor_only"] == ["300", "93", "1", "93"]
    assert Counter(r["stratum"] for r in rows) == {
        s["stratum"]: s["sample"] for s in plan["strata"]
    }
    assert all(r["stratum"] == r["cell"] and r["review_outcome"] == "" for r in rows)
    assert [int(r["draw"]) for r in rows if r["stratum"] == "agreed"] == list(range(1, 60))
    # an existing worksheet is not overwritten; --force does, and --seed re-draws the same rows
    code, _, err = run("sample", tmp_path, "--out", ws, capsys=capsys)
    assert code == 2 and "exists" in err
    code, _, _ = run(
        "sample", path, "--out", ws, "--seed", str(plan["seed"]), "--force", capsys=capsys
    )
    assert code == 0 and read_worksheet_rows(ws)[1] == rows

    # reviewed: one deviation in vendor_only (allowed), two in the whole unknown stratum (5%)
    filled = tmp_path / "filled.csv"
    fill(ws, filled, {"vendor_only": 1, "unknown": 2}, outcome_ok=" OK ")
    code, out, err = run("sample", "--evaluate", filled, "-f", "json", capsys=capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["supports_reliance"] is True and result["conclusion"] == "supports reliance"
    strata = {s["stratum"]: s for s in result["strata"]}
    vo = strata["vendor_only"]
    assert (vo["sample"], vo["deviations"]) == (93, 1)
    assert vo["upper_limit"] == pytest.approx(
        proportion_confint(1, 93, alpha=0.10, method="beta")[1], abs=1e-6
    )
    assert strata["unknown"]["census"] and strata["unknown"]["upper_limit"] == 0.05
    assert strata["agreed"]["upper_limit"] == pytest.approx(1 - 0.05 ** (1 / 59), abs=1e-6)
    n_total = sum(FRAME_SIZES.values())
    rate = Fraction(300, n_total) * Fraction(1, 93) + Fraction(40, n_total) * Fraction(2, 40)
    assert result["overall"]["weighted_rate"] == pytest.approx(float(rate), abs=1e-6)
    sizes = {
        "vendor_only": 93,
        "unknown": 40,
        "duplicate": 59,
        "pending": 3,
        "period_mismatch": 5,
        "agreed": 59,
    }
    dev = {"vendor_only": 1, "unknown": 2}
    ul = 0.0
    for cell, size in sizes.items():
        x = dev.get(cell, 0)
        if size == FRAME_SIZES[cell]:
            limit = x / size
        else:
            limit = proportion_confint(x, size, alpha=0.10, method="beta")[1]
        ul += FRAME_SIZES[cell] / n_total * limit
    assert result["overall"]["weighted_upper_limit"] == pytest.approx(ul, abs=1e-6)
    assert result["overall"]["projected_deviations"] == pytest.approx(300 / 93 + 2, abs=0.01)

    # one deviation in agreed: its limit exceeds 5%, exit 1
    fill(ws, filled, {"agreed": 1})
    code, out, _ = run("sample", "--evaluate", filled, capsys=capsys)
    assert code == 1
    assert "does not support reliance" in out and "agreed 7.79%" in out


def test_evaluate_errors_name_file_row_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_frame(tmp_path / "entities.csv")
    ws = tmp_path / "ws.csv"
    assert run("sample", tmp_path, "--out", ws, capsys=capsys)[0] == 0
    with ws.open(encoding="utf-8", newline="") as fh:
        lines = list(csv.reader(fh))
    start = next(i for i, r in enumerate(lines) if r and r[0] == "stratum")
    filled = tmp_path / "filled.csv"
    fill(ws, filled, {})
    # an unreviewed row
    with filled.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows[start + 5][lines[start].index("review_outcome")] = ""
    rows[start + 9][lines[start].index("review_outcome")] = "maybe"
    bad = tmp_path / "bad.csv"
    with bad.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    code, _, err = run("sample", "--evaluate", bad, capsys=capsys)
    assert code == 2
    assert f"bad.csv, row {start + 6}, column 'review_outcome': not reviewed yet" in err
    assert "valid values: deviation, ok" in err
    assert f"row {start + 10}, column 'review_outcome': 'maybe' is not a review outcome" in err
    # a deleted row
    del rows[start + 5]
    rows[start + 8][lines[start].index("review_outcome")] = "ok"
    with bad.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    code, _, err = run("sample", "--evaluate", bad, capsys=capsys)
    assert code == 2 and "has 92 rows, the plan drew 93" in err
    # the plan comes from the worksheet, not from options
    code, _, err = run("sample", "--evaluate", filled, "--tolerable", "10%", capsys=capsys)
    assert code == 2 and "drop --tolerable" in err
    code, _, err = run(
        "sample", tmp_path, "--tolerable", "5", "--out", tmp_path / "x.csv", capsys=capsys
    )
    assert code == 2 and "--tolerable '5' is above 1 (write 5% or 0.05)" in err


def test_statement_digest_is_checked_and_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_frame(tmp_path / "entities.csv")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    statement = tmp_path / "statement.json"
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "entities.csv", "digest": {"sha256": digest}}],
        "predicateType": "https://example.org/truecount/evidence/v1",
        "predicate": {},
    }
    statement.write_text(json.dumps(doc), encoding="utf-8")
    ws = tmp_path / "ws.csv"
    code, out, err = run("sample", tmp_path, "--out", ws, "-f", "json", capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["statement_sha256"] == hashlib.sha256(statement.read_bytes()).hexdigest()
    meta, _ = read_worksheet_rows(ws)
    assert meta["#statement_sha256"] == [hashlib.sha256(statement.read_bytes()).hexdigest()]
    doc["subject"] = [{"name": "entities.csv", "digest": {"sha256": "0" * 64}}]
    statement.write_text(json.dumps(doc), encoding="utf-8")
    code, _, err = run("sample", tmp_path, "--out", tmp_path / "ws2.csv", capsys=capsys)
    assert code == 2 and "the statement records" in err


# --------------------------------------------------------------------------- a real pack


def test_sample_from_a_demo_dispute_pack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A small generated quarter, reconciled into a dispute pack by the CLI, then sampled; the
    strata's sizes are counted again from the pack's CSV and every item is in the frame."""
    from truecount.cli.demo_cmds import package_text
    from truecount.demo.generate import SupportScenario, generate

    data = generate(SupportScenario(seed=11, tickets=3000))
    pq.write_table(data.events, tmp_path / "events.parquet")
    pacsv.write_csv(data.invoice, tmp_path / "invoice.csv")
    (tmp_path / "def.yaml").write_text(package_text("resolved_ticket.yaml"), encoding="utf-8")
    (tmp_path / "terms.yaml").write_text(package_text("terms.yaml"), encoding="utf-8")
    code, _, err = run(
        "reconcile", tmp_path / "def.yaml", "--events", tmp_path / "events.parquet",
        "--invoice", tmp_path / "invoice.csv", "--terms", tmp_path / "terms.yaml",
        "--out", tmp_path / "pack", "-f", "json", capsys=capsys,
    )  # fmt: skip
    assert code in (0, 1), err
    with (tmp_path / "pack" / "entities.csv").open(encoding="utf-8", newline="") as fh:
        frame = {r["entity_id"]: r["cell"] for r in csv.DictReader(fh)}
    counts = Counter(frame.values())
    assert counts["vendor_only"] > 93 and counts["agreed"] > 59
    ws = tmp_path / "ws.csv"
    code, out, err = run("sample", tmp_path / "pack", "--out", ws, "-f", "json", capsys=capsys)
    assert code == 0, err
    plan = json.loads(out)
    assert {s["stratum"]: s["population"] for s in plan["strata"]} == dict(counts)
    sizes = {s["stratum"]: s["sample"] for s in plan["strata"]}
    assert sizes["vendor_only"] == 93 and sizes["agreed"] == 59
    assert all(sizes[c] == n for c, n in counts.items() if n <= 59)
    _, rows = read_worksheet_rows(ws)
    assert len(rows) == plan["sample"]
    assert all(frame[r["entity_id"]] == r["cell"] for r in rows)
    assert redraw(tmp_path / "pack" / "entities.csv", plan["seed"], sizes) == {
        c: [r["entity_id"] for r in rows if r["stratum"] == c] for c in sizes
    }
    filled = tmp_path / "filled.csv"
    fill(ws, filled, {})
    code, out, _ = run("sample", "--evaluate", filled, capsys=capsys)
    assert code == 0 and "supports reliance" in out


def test_exit_code_through_the_console_script(tmp_path: Path) -> None:
    """The installed entry point, not only main(): a failing review exits 1."""
    write_frame(tmp_path / "entities.csv", {"agreed": 80, "vendor_only": 20})
    ws = tmp_path / "ws.csv"
    sample = subprocess.run(
        [sys.executable, "-m", "truecount", "sample", str(tmp_path), "--out", str(ws)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert sample.returncode == 0, sample.stderr
    filled = tmp_path / "filled.csv"
    fill(ws, filled, {"vendor_only": 2})
    proc = subprocess.run(
        [sys.executable, "-m", "truecount", "sample", "--evaluate", str(filled), "-f", "json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    # vendor_only is reviewed whole (20 < 93): 2 of 20 is 10%, above 5%
    assert data["failing_strata"] == ["vendor_only"]
    assert data["strata"][0]["upper_limit"] == 0.1


def test_a_worksheet_saved_in_another_encoding_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_frame(tmp_path / "entities.csv", {"agreed": 3})
    ws = tmp_path / "ws.csv"
    assert run("sample", tmp_path, "--out", ws, capsys=capsys)[0] == 0
    filled = tmp_path / "filled.csv"
    fill(ws, filled, {})
    text = filled.read_text(encoding="utf-8").replace("J. Reviewer", "J. Müller")
    filled.write_bytes(text.encode("latin-1"))
    code, _, err = run("sample", "--evaluate", filled, capsys=capsys)
    assert code == 2 and "cannot read as a UTF-8 CSV" in err and "CSV UTF-8" in err
