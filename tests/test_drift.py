"""`truecount drift`: paired statistics, the per-period table, and the alarm on a generated year.

Every figure is checked against an independent computation: the statistics against statsmodels
and scipy (and published values) on fixed tables; the paired tables against pandas over the
generator's truth table and the invoice file; the first alarm against a CUSUM written out here
as a plain loop over a stream built in pandas. The "done when" of the issue runs the CLI on a
generated year where the vendor's billing drifts from month 7, and on the same year without
drift.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from truecount.billing.invoice import load_invoice_into
from truecount.cli.app import _load_verbs, app
from truecount.definition import load_definition
from truecount.demo.generate import SupportData, SupportScenario, generate
from truecount.drift.report import DriftReport, drift_in
from truecount.drift.stats import (
    clopper_pearson,
    mcnemar_exact,
    newcombe_paired,
    paired_stats,
)
from truecount.drift.stats import (
    cohens_kappa as my_kappa,
)
from truecount.engine.run import VERDICTS_TABLE, CountResult, count
from truecount.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "src" / "truecount" / "demo" / "resolved_ticket.yaml"
ISSUE_PERIOD_KEYS = [
    "period", "vendor_billed", "buyer_counted", "agreed", "vendor_only", "buyer_only",
    "vendor_only_rate", "buyer_only_rate", "mcnemar_p", "kappa",
]  # fmt: skip

# Fixed paired tables (a, b, c, d): ordinary, small, and every degenerate shape.
TABLES = [
    (59, 6, 16, 80),  # Cavo et al. 2012 (Fagerland, Lydersen & Laake 2017, ch. 8)
    (1, 1, 7, 12),  # Bentur et al. 2009, same book
    (3876, 111, 66, 1247),  # a generated month
    (10, 0, 0, 1),  # b = c = 0
    (5, 3, 0, 0),  # the buyer says yes to everything
    (0, 0, 0, 7),  # nobody says yes
    (3, 0, 0, 0),  # everybody says yes
    (0, 5, 5, 0),  # total disagreement
    (1, 2, 3, 4),
    (0, 1, 0, 0),  # n = 1
    (0, 0, 2, 1),
    (100, 1, 0, 0),
]


# ------------------------------------------------------------------------------ statistics
@pytest.mark.parametrize("table", TABLES)
def test_rates_match_statsmodels_and_scipy_clopper_pearson(table: tuple[int, ...]) -> None:
    a, b, c, d = table
    n = a + b + c + d
    s = paired_stats([a], [b], [c], [d])
    for k, rate, low, high in (
        (b, s.vendor_only_rate, s.vendor_only_low, s.vendor_only_high),
        (c, s.buyer_only_rate, s.buyer_only_low, s.buyer_only_high),
    ):
        ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="beta")
        ci = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert rate[0] == pytest.approx(k / n)
        assert low[0] == pytest.approx(ref_low, abs=1e-12)
        assert high[0] == pytest.approx(ref_high, abs=1e-12)
        assert low[0] == pytest.approx(ci.low, abs=1e-9)
        assert high[0] == pytest.approx(ci.high, abs=1e-9)
    assert s.agreement[0] == pytest.approx((a + d) / n)
    assert s.difference[0] == pytest.approx((b - c) / n)
    assert s.ratio[0] == pytest.approx((a + b) / (a + c)) if a + c else math.isnan(s.ratio[0])


@pytest.mark.parametrize("table", TABLES)
def test_mcnemar_matches_statsmodels_exact(table: tuple[int, ...]) -> None:
    a, b, c, d = table
    ref = mcnemar(np.array([[a, b], [c, d]]), exact=True).pvalue
    assert mcnemar_exact([b], [c])[0] == pytest.approx(ref, rel=1e-12)
    # and the two-sided binomial test on the discordant pairs, from scipy
    if b + c:
        assert mcnemar_exact([b], [c])[0] == pytest.approx(sps.binomtest(b, b + c).pvalue)


@pytest.mark.parametrize("table", TABLES)
def test_kappa_matches_statsmodels(table: tuple[int, ...]) -> None:
    a, b, c, d = table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cohens_kappa(np.array([[a, b], [c, d]]))
        kappa, se, low, high = (float(x[0]) for x in my_kappa([a], [b], [c], [d]))
    # statsmodels takes the square root of a variance that rounding can leave at -1e-17 (a
    # table with a zero margin); it then reports NaN where the variance is 0.
    their_se = ref.std_kappa
    if math.isnan(their_se) and abs(ref.var_kappa) < 1e-12:
        their_se = 0.0
        ref_low = ref_high = ref.kappa
    else:
        ref_low, ref_high = ref.kappa_low, ref.kappa_upp
    for mine, theirs in ((kappa, ref.kappa), (se, their_se), (low, ref_low), (high, ref_high)):
        if math.isnan(theirs):
            assert math.isnan(mine)
        else:
            assert mine == pytest.approx(theirs, abs=1e-12)


def test_newcombe_against_published_values() -> None:
    """Fagerland, Lydersen & Laake (2017), Table 8.x, as their R package's tests print it."""
    low, high = newcombe_paired([59], [6], [16], [80])
    assert round(float(low[0]), 4) == -0.1186
    assert round(float(high[0]), 4) == -0.0046
    assert round(float(mcnemar_exact([6], [16])[0]), 6) == 0.052479


def _newcombe_reference(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """Newcombe (1998) method 10, written from the paper with scipy's Wilson intervals."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    ci1 = sps.binomtest(a + b, n).proportion_ci(0.95, method="wilson")
    ci2 = sps.binomtest(a + c, n).proportion_ci(0.95, method="wilson")
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    if margins == 0:
        phi = 0.0
    elif cross > n / 2:
        phi = (cross - n / 2) / math.sqrt(margins)
    elif cross >= 0:
        phi = 0.0
    else:
        phi = cross / math.sqrt(margins)
    dl, du = p1 - ci1.low, ci1.high - p1
    el, eu = p2 - ci2.low, ci2.high - p2
    theta = p1 - p2
    return (
        theta - math.sqrt(max(dl**2 - 2 * phi * dl * eu + eu**2, 0.0)),
        theta + math.sqrt(max(el**2 - 2 * phi * el * du + du**2, 0.0)),
    )


def test_newcombe_matches_a_scalar_reference_on_random_tables() -> None:
    rng = np.random.default_rng(3)
    tables = np.vstack([rng.integers(0, 40, size=(300, 4)), np.asarray(TABLES)])
    tables = tables[tables.sum(axis=1) > 0]
    low, high = newcombe_paired(*tables.T)
    for i, (a, b, c, d) in enumerate(tables.tolist()):
        ref = _newcombe_reference(a, b, c, d)
        assert (low[i], high[i]) == pytest.approx(ref, abs=1e-12), (a, b, c, d)
        assert -1.0 <= low[i] <= (b - c) / (a + b + c + d) <= high[i] <= 1.0


def test_vectorised_equals_one_table_at_a_time() -> None:
    arr = np.asarray(TABLES)
    together = paired_stats(*arr.T)
    for i, t in enumerate(TABLES):
        alone = paired_stats(*([x] for x in t))
        assert together.row(i) == alone.row(0)


def test_empty_table_is_undefined_not_zero() -> None:
    row = paired_stats([0], [0], [0], [0]).row(0)
    assert row["entities"] == 0
    assert row["vendor_only_rate"] is None and row["kappa"] is None
    assert row["vendor_only_ci"] == [None, None]
    low, high = clopper_pearson([0], [0])
    assert math.isnan(low[0]) and math.isnan(high[0])


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        paired_stats([1], [-1], [0], [0])


# ------------------------------------------------------------------------------ generated year
PER_DAY = 200  # tickets a day: ~73,000 in the year, modest enough for seconds per run


def year(drift: bool) -> SupportScenario:
    sc = SupportScenario(
        seed=7,
        tickets=PER_DAY * 365,
        start=date(2026, 1, 1),
        months=12,
        vendor_rule="classifier",
        drift_start_month=7,
        drift_extra=0.08,
    )
    return sc if drift else replace(sc, drift_start_month=None, drift_extra=0.0)


@pytest.fixture(scope="module")
def data() -> dict[str, SupportData]:
    return {"drift": generate(year(True)), "flat": generate(year(False))}


@pytest.fixture(scope="module")
def files(data: dict[str, SupportData], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("drift")
    for name, d in data.items():
        pq.write_table(d.events, folder / f"{name}_events.parquet")
        pq.write_table(d.invoice, folder / f"{name}_invoice.parquet")
    # the first half-year as a buyer would see it mid-July: January to June billed
    half = data["drift"].invoice
    half = half.filter(pc.less_equal(half["period"], "2026-06"))
    pq.write_table(half, folder / "half_invoice.parquet")
    return folder


def tc(*args: str | Path) -> tuple[int, str]:
    """The CLI in this process (as the user types it, without the interpreter's start-up)."""
    _load_verbs()
    res = CliRunner().invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout


def drift_args(files: Path, name: str, invoice: str | None = None) -> list[str | Path]:
    return ["drift", DEFINITION, "--events", files / f"{name}_events.parquet",
            "--invoice", files / f"{invoice or name}_invoice.parquet"]  # fmt: skip


def drift_json(files: Path, name: str, *extra: str, invoice: str | None = None) -> tuple[int, Any]:
    code, out = tc(*drift_args(files, name, invoice), "-f", "json", *extra)
    assert code in (0, 1), out
    return code, json.loads(out)


@pytest.fixture(scope="module")
def full(files: Path) -> tuple[int, Any]:
    """The drifting year, with days, counted late enough that no window is still open."""
    return drift_json(files, "drift", "--by", "day", "--as-of", "2027-03-01")


def test_classifier_mode_keeps_the_truth_and_the_stories(data: dict[str, SupportData]) -> None:
    drift, flat = data["drift"], data["flat"]
    assert drift.events.equals(flat.events)  # same tickets, same stories
    t = drift.truth.to_pandas().set_index("entity_id")
    f = flat.truth.to_pandas().set_index("entity_id")
    assert (t["buyer_counts"] == f["buyer_counts"]).all()
    # the drift only adds billed tickets, all of them not counted and closed from July on
    added = t["vendor_bills"] & ~f["vendor_bills"]
    assert not (f["vendor_bills"] & ~t["vendor_bills"]).any()
    assert added.sum() > 300
    assert not t.loc[added, "buyer_counts"].any()
    assert (t.loc[added, "first_close_ts"] >= pd.Timestamp("2026-07-01")).all()
    # the invoice is the truth's billed set, and the cells follow from it
    inv = drift.invoice.to_pandas()
    assert set(inv["entity_id"]) == set(t.index[t["vendor_bills"]])
    billed = t["vendor_bills"]
    expected = np.select(
        [billed & ~t["in_export"], billed & t["buyer_counts"], billed, t["buyer_counts"]],
        ["unknown", "agreed", "vendor_only", "buyer_only"],
        default="neither",
    )
    assert (t["cell"] == expected).all()
    # the vendor's classifier: about 2% of counted tickets missed, 5% of the rest billed at first
    closed = t["closed_in_period"] & t["in_export"]
    h1 = closed & (t["first_close_ts"] < pd.Timestamp("2026-07-01"))
    assert 0.01 < (~billed[h1 & t["buyer_counts"]]).mean() < 0.03
    assert 0.04 < billed[h1 & ~t["buyer_counts"]].mean() < 0.06
    dec = closed & (t["first_close_ts"] >= pd.Timestamp("2026-12-01"))
    assert 0.11 < billed[dec & ~t["buyer_counts"]].mean() < 0.15  # 5% + 8% at the end


def test_default_scenario_is_not_touched_by_the_new_knobs() -> None:
    sc = SupportScenario(seed=3, tickets=3_000)
    assert "vendor_rule" not in sc.fingerprint()
    same = replace(sc, vendor_false_rate=0.5, drift_extra=0.3, drift_start_month=2)
    a, b = generate(sc), generate(same)  # knobs of the classifier rule do nothing without it
    assert a.invoice.equals(b.invoice) and a.truth.equals(b.truth)
    with pytest.raises(ValueError, match="vendor_rule"):
        SupportScenario(vendor_rule="magic")
    with pytest.raises(ValueError, match="drift_start_month"):
        SupportScenario(vendor_rule="classifier", drift_start_month=4, months=3)


def reference_entities(d: SupportData) -> pd.DataFrame:
    """The paired universe by hand, from the truth labels, the invoice and the events."""
    t = d.truth.to_pandas().set_index("entity_id")
    inv = d.invoice.to_pandas()
    in_export = t.index.isin(d.events.column("entity_id").unique().to_pylist())
    first = inv.groupby("entity_id").agg(period=("period", "min"), billed_at=("billed_at", "min"))
    billed = t.index.isin(first.index)
    has_anchor = t["first_ai_close_ts"].notna().to_numpy()
    yes = (
        has_anchor
        & (t["reopened_within_14d"] == False).to_numpy()  # noqa: E712
        & (t["rated_4plus_within_7d"] == True).to_numpy()  # noqa: E712
    )
    lo, hi = first["period"].min(), first["period"].max()
    in_span = t["anchor_period"].between(lo, hi).to_numpy()
    kind = np.select(
        [
            billed & ~in_export,
            billed & yes,
            billed,
            ~billed & yes & in_span,
            ~billed & has_anchor & in_span,
        ],
        ["unknown", "a", "b", "c", "d"],
        default="",
    )
    out = pd.DataFrame({"k": kind}, index=t.index)
    out["period"] = first["period"].reindex(t.index).fillna(t["anchor_period"])
    when = t["first_ai_close_ts"].fillna(first["billed_at"].reindex(t.index))
    out["t"] = when.fillna(t["created_ts"])
    out["date"] = out["t"].dt.strftime("%Y-%m-%d")
    return out[out["k"] != ""]


def cells_by(ref: pd.DataFrame, key: str) -> pd.DataFrame:
    return ref.groupby([key, "k"]).size().unstack(fill_value=0)


def test_periods_match_pandas(full: tuple[int, Any], data: dict[str, SupportData]) -> None:
    _, out = full
    ref = cells_by(reference_entities(data["drift"]), "period")
    got = pd.DataFrame(out["periods"]).set_index("period")
    assert list(got.index) == list(ref.index)
    for ours, theirs in (("agreed", "a"), ("vendor_only", "b"), ("buyer_only", "c"),
                         ("neither", "d"), ("unknown", "unknown")):  # fmt: skip
        assert (got[ours] == ref[theirs]).all(), ours
    assert (got["vendor_billed"] == ref["a"] + ref["b"]).all()
    assert (got["buyer_counted"] == ref["a"] + ref["c"]).all()
    assert (got["pending"] == 0).all()
    n = ref[["a", "b", "c", "d"]].sum(axis=1)
    assert np.allclose(got["vendor_only_rate"], ref["b"] / n)
    assert np.allclose(got["buyer_only_rate"], ref["c"] / n)
    # statistics of each row, against statsmodels on the same counts
    for period, row in got.iterrows():
        a, b, c, d = (int(ref.loc[period, k]) for k in "abcd")
        assert row["mcnemar_p"] == pytest.approx(
            mcnemar(np.array([[a, b], [c, d]]), exact=True).pvalue
        )
        assert row["kappa"] == pytest.approx(cohens_kappa(np.array([[a, b], [c, d]])).kappa)
        assert row["vendor_only_ci"] == pytest.approx(
            list(proportion_confint(b, a + b + c + d, method="beta"))
        )
    assert out["totals"]["vendor_only"] == int(ref["b"].sum())


def test_json_has_the_issues_names(full: tuple[int, Any]) -> None:
    _, out = full
    assert {"definition", "baseline", "alarm", "first_alarm", "periods"} <= set(out)
    assert set(out["first_alarm"]) >= {"period", "date", "statistic"}
    for row in out["periods"]:
        assert list(row)[: len(ISSUE_PERIOD_KEYS)] == ISSUE_PERIOD_KEYS
    assert out["definition"]["name"] == "resolved_ticket"
    assert out["baseline"]["source"] == "default"
    assert (out["baseline"]["from"], out["baseline"]["to"]) == ("2026-01", "2026-03")
    assert out["alarm_settings"]["method"] == "bernoulli_cusum"


def test_days_match_pandas(full: tuple[int, Any], data: dict[str, SupportData]) -> None:
    _, out = full
    ref = cells_by(reference_entities(data["drift"]), "date")
    got = pd.DataFrame(out["days"]).set_index("date")
    assert list(got.index) == list(ref.index)
    for ours, theirs in (("agreed", "a"), ("vendor_only", "b"), ("buyer_only", "c"),
                         ("neither", "d")):  # fmt: skip
        assert (got[ours] == ref[theirs]).all(), ours
    assert got["vendor_only"].sum() == out["totals"]["vendor_only"]


def cusum_by_hand(x: list[int], p0: float, shift: float, h: float) -> tuple[int | None, float]:
    """Page's Bernoulli CUSUM as a loop: S = max(0, S + llr), alarm at the first S >= h."""
    p1 = shift * p0
    up, down = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))
    s = 0.0
    for i, v in enumerate(x):
        s = max(0.0, s + (up if v else down))
        if s >= h:
            return i, s
    return None, s


def test_first_alarm_matches_a_cusum_by_hand(
    full: tuple[int, Any], data: dict[str, SupportData]
) -> None:
    _, out = full
    ref = reference_entities(data["drift"])
    ref = ref[ref["k"].isin(["a", "b", "c", "d"])]
    base = ref[ref["period"].between("2026-01", "2026-03")]
    b, n = int((base["k"] == "b").sum()), len(base)
    assert (out["baseline"]["entities"], out["baseline"]["vendor_only"]) == (n, b)
    settings = out["alarm_settings"]
    p0 = float(sps.beta.ppf(settings["confidence"], b + 1, n - b))  # one-sided upper limit
    assert out["baseline"]["rate"] == pytest.approx(p0, rel=1e-9)
    # The threshold: 7, times the baseline days' dispersion when a chi-square test finds one
    # (no volume scaling here: fewer than 300 entities a day).
    days = base.assign(vo=base["k"] == "b").groupby("date").agg(n=("vo", "size"), b=("vo", "sum"))
    rate = b / n
    statistic = float(
        (((days["b"] - days["n"] * rate) ** 2) / (days["n"] * rate * (1 - rate))).sum()
    )
    df = len(days) - 1
    phi = statistic / df if statistic > sps.chi2.ppf(0.95, df) else 1.0
    assert out["baseline"]["dispersion"] == pytest.approx(phi, rel=1e-9)
    assert settings["threshold"] == pytest.approx(7.0 * phi, rel=1e-9)
    watched = ref[ref["period"] > "2026-03"].reset_index().sort_values(["t", "entity_id"])
    x = (watched["k"] == "b").astype(int).tolist()
    assert out["watched"]["entities"] == len(x)
    index, s = cusum_by_hand(x, p0, settings["shift"], settings["threshold"])
    assert index is not None
    hit = watched.iloc[index]
    assert out["first_alarm"]["date"] == hit["date"]
    assert out["first_alarm"]["period"] == hit["period"]
    assert out["first_alarm"]["entity_id"] == hit["entity_id"]
    assert out["first_alarm"]["statistic"] == pytest.approx(s, rel=1e-9)


def test_weekday_mix_is_not_an_alarm(tmp_path: Path) -> None:
    """The demo's vendor bills every closed ticket, with no drift at all, but weekend days have
    more tickets closed by people (vendor-only) than weekdays: the baseline's days vary more
    than independent tickets would, and the threshold follows, so the weekend is no alarm."""
    quarter = generate(SupportScenario())  # the demo itself
    pq.write_table(quarter.events, tmp_path / "events.parquet")
    pq.write_table(quarter.invoice, tmp_path / "invoice.parquet")
    code, text = tc(
        "drift", DEFINITION, "--events", tmp_path / "events.parquet",
        "--invoice", tmp_path / "invoice.parquet", "--format", "json",
    )  # fmt: skip
    out = json.loads(text)
    assert code == 0 and out["alarm"] is False, out["first_alarm"]
    assert out["baseline"]["dispersion"] > 1.5
    # without the correction (an explicit --threshold is used as given) the weekend crosses it
    code, text = tc(
        "drift", DEFINITION, "--events", tmp_path / "events.parquet",
        "--invoice", tmp_path / "invoice.parquet", "--format", "json",
        "--threshold", "7",
    )  # fmt: skip
    plain = json.loads(text)
    assert plain["alarm_settings"]["threshold"] == 7 and code == 1 and plain["alarm"] is True


# ------------------------------------------------------------------------------ done when
def test_done_when_drift_alarms_within_a_few_months_of_month_7(
    full: tuple[int, Any], files: Path
) -> None:
    code, out = full
    assert code == 1 and out["alarm"] is True
    first = out["first_alarm"]
    assert "2026-07-01" <= first["date"] <= "2026-10-31"
    assert "2026-07" <= first["period"] <= "2026-10"
    assert first["statistic"] >= out["alarm_settings"]["threshold"]
    # the realistic run (as of the export, table output) says the same
    code, text = tc(*drift_args(files, "drift"))
    assert code == 1, text
    assert f"first crossed on {first['date']}, period {first['period']}" in text
    assert "alarm: vendor-only rate up from" in text


def test_done_when_quiet_on_the_first_six_months(files: Path) -> None:
    code, out = drift_json(files, "drift", "--as-of", "2026-07-16", invoice="half")
    assert code == 0 and out["alarm"] is False and out["first_alarm"] is None
    assert [p["period"] for p in out["periods"]] == [f"2026-{m:02d}" for m in range(1, 7)]
    assert out["watched"]["from"] == "2026-04" and out["watched"]["entities"] > 10_000
    assert out["cusum_peak"] < out["alarm_settings"]["threshold"]


def test_done_when_quiet_on_the_same_year_without_drift(files: Path) -> None:
    code, out = drift_json(files, "flat")
    assert code == 0 and out["alarm"] is False and out["first_alarm"] is None
    assert len(out["periods"]) == 12
    assert out["cusum_peak"] < out["alarm_settings"]["threshold"]


@pytest.fixture(scope="module")
def flat_count(files: Path) -> Iterator[CountResult]:
    """The year without drift counted once, with its invoice loaded, for library calls."""
    result = count(load_definition(DEFINITION), [str(files / "flat_events.parquet")])
    load_invoice_into(result.con, [files / "flat_invoice.parquet"], None, table="invoice")
    yield result
    result.close()


def drift_of(result: CountResult, **options: Any) -> DriftReport:
    return drift_in(
        result.con, result.definition, VERDICTS_TABLE, "invoice", events_table="events",
        as_of=result.as_of, **options,
    )  # fmt: skip


def test_stated_baseline_and_contract_rate(flat_count: CountResult) -> None:
    report = drift_of(flat_count, baseline="2026-04..2026-06")
    out = report.to_json()
    assert not report.alarm
    assert out["baseline"]["source"] == "periods" and out["watched"]["from"] == "2026-07"
    flags = [p["baseline"] for p in out["periods"]]
    assert flags == [False] * 3 + [True] * 3 + [False] * 6
    rows = out["periods"][3:6]
    assert out["baseline"]["entities"] == sum(r["entities"] for r in rows)
    assert out["baseline"]["vendor_only"] == sum(r["vendor_only"] for r in rows)
    # a contractual rate far below the truth alarms at once; the whole year is watched
    report = drift_of(flat_count, contract_rate=0.005)
    out = report.to_json()
    assert report.alarm and out["baseline"]["source"] == "contract"
    assert out["first_alarm"]["period"] == "2026-01"
    assert out["watched"]["entities"] == out["totals"]["entities"]
    assert not any(p["baseline"] for p in out["periods"])


def test_table_output_is_readable(flat_count: CountResult) -> None:
    from rich.console import Console

    from truecount.cli.drift_cmds import alarm_line, counts_table, stats_table

    report = drift_of(flat_count, by_day=True)
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(counts_table(report.periods, "t", "period", report.totals))
    console.print(stats_table(report.periods, "t", "period", report.confidence, report.totals))
    console.print(alarm_line(report))
    text = console.export_text()
    assert "2026-01 *" in text and "2026-04 *" not in text  # the baseline is marked
    assert "…" not in text  # nothing cut off at 120 columns
    assert "no alarm: vendor-only rate watched against" in text
    assert report.days is not None and len(report.days.keys) >= 365
    # wide values (two-digit rates, negative intervals, six-digit counts) wrap, never get cut
    from truecount.drift.report import DriftTable

    worst = DriftTable(
        keys=("2026-W01", "2026-12-31"),
        stats=paired_stats([5, 90_000], [40, 12_000], [45, 15_000], [10, 900_000]),
        pending=np.zeros(2, dtype=np.int64),
        unknown=np.asarray([0, 123_456]),
        baseline=(True, False),
    )
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(counts_table(worst, "t", "period", worst))
    console.print(stats_table(worst, "t", "period", 0.95, worst))
    assert "…" not in console.export_text()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"baseline": "2025-01..2025-03"}, "not in the data"),
        ({"baseline": "2026-05..2026-02"}, "ends before it starts"),
        ({"baseline": "2026-01", "contract_rate": 0.02}, "not both"),
        ({"contract_rate": 1.5}, "between 0 and 1"),
    ],
)
def test_bad_baselines_are_input_errors(
    flat_count: CountResult, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        drift_of(flat_count, **options)


def test_bad_input_exits_2_with_one_line(files: Path) -> None:
    # the two ways out: a usage error in the command, and an input error from the library
    code, _ = tc(*drift_args(files, "flat"), "--baseline", "2026-01", "--baseline-rate", "0.02")
    assert code == 2
    proc = subprocess.run(
        [sys.executable, "-m", "truecount", *map(str, drift_args(files, "flat")),
         "--baseline", "2026-05..2026-02"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error:") and "ends before it starts" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def drift_tables(
    verdicts: list[tuple[Any, ...]], invoice: list[tuple[Any, ...]], events: list[tuple[Any, ...]]
) -> Any:
    """A connection with the verdicts ``v``, the invoice ``inv`` and the events ``ev`` as
    written in a test (times in UTC)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE v (entity_id VARCHAR, status VARCHAR, period VARCHAR, anchor_ts TIMESTAMP)"
    )
    con.executemany("INSERT INTO v VALUES (?, ?, ?, ?)", verdicts)
    con.execute("CREATE TABLE inv (entity_id VARCHAR, billed_at TIMESTAMP, period VARCHAR)")
    con.executemany("INSERT INTO inv VALUES (?, ?, ?)", invoice)
    con.execute("CREATE TABLE ev (entity_id VARCHAR, ts TIMESTAMP)")
    con.executemany("INSERT INTO ev VALUES (?, ?)", events)
    return con


# ------------------------------------------------------------------------------ every cell
@pytest.mark.parametrize("pick_each", [False, True])
def test_every_kind_of_entity_lands_where_the_docs_say(pick_each: bool) -> None:
    """A hand-made count and invoice with one entity per case of docs/drift.md.

    With ``pick: each`` an entity has one verdict per candidate and counts once, with its best
    candidate's verdict: T-04 gets a counted candidate (now buyer-only), T-05 a second
    not-counted one (still one "neither").
    """

    # entity, status, period, anchor time (None: no verdict)
    verdicts = [
        ("T-01", "counted", "2026-01", "2026-01-05 10:00"),  # billed once: a
        ("T-02", "not_counted", "2026-01", "2026-01-06 10:00"),  # billed: b
        ("T-03", "counted", "2026-02", "2026-02-03 10:00"),  # not billed: c
        ("T-04", "not_counted", "2026-02", "2026-02-04 10:00"),  # not billed: d
        ("T-05", "excluded", "2026-01", "2026-01-07 10:00"),  # not billed: d
        ("T-06", "excluded", "2026-02", "2026-02-05 10:00"),  # billed: b
        ("T-07", "pending", "2026-02", "2026-02-26 10:00"),  # billed: pending
        ("T-08", "pending", "2026-02", "2026-02-27 10:00"),  # not billed: pending
        ("T-11", "counted", "2026-01", "2026-01-08 10:00"),  # billed twice: a
        ("T-12", "not_counted", "2026-02", "2026-02-06 10:00"),  # billed twice: b
        ("T-13", "not_counted", "2026-03", "2026-03-02 10:00"),  # outside the invoice: none
        ("T-14", "counted", "2026-01", "2026-01-31 22:00"),  # billed in February: a, 2026-02
    ]
    invoice = [  # entity, billed_at, period
        ("T-01", "2026-01-05 11:00", "2026-01"),
        ("T-02", "2026-01-06 11:00", "2026-01"),
        ("T-06", "2026-02-05 11:00", "2026-02"),
        ("T-07", "2026-02-26 11:00", "2026-02"),
        ("T-09", "2026-01-09 11:00", "2026-01"),  # not in the export: unknown
        ("T-10", "2026-02-10 11:00", "2026-02"),  # in the export, no anchor: b
        ("T-11", "2026-01-08 11:00", "2026-01"),
        ("T-11", "2026-01-08 12:00", "2026-01"),
        ("T-12", "2026-02-06 11:00", "2026-02"),
        ("T-12", "2026-02-06 12:00", "2026-02"),
        ("T-14", "2026-02-01 09:00", "2026-02"),
    ]
    d = load_definition(DEFINITION)
    if pick_each:
        verdicts += [
            ("T-04", "counted", "2026-02", "2026-02-08 10:00"),
            ("T-05", "not_counted", "2026-01", "2026-01-09 10:00"),
        ]
        d = d.model_copy(update={"anchor": d.anchor.model_copy(update={"pick": "each"})})
    known = [(e, "2026-01-01 08:00") for e, *_ in verdicts] + [("T-10", "2026-02-01 08:00")]
    con = drift_tables(verdicts, invoice, known)
    report = drift_in(con, d, "v", "inv", events_table="ev", contract_rate=0.1)
    got = {r["period"]: r for r in report.to_json()["periods"]}
    assert list(got) == ["2026-01", "2026-02"]
    expected = {
        "2026-01": {"agreed": 2, "vendor_only": 1, "buyer_only": 0, "neither": 1, "pending": 0,
                    "unknown": 1},
        "2026-02": {"agreed": 1, "vendor_only": 3, "buyer_only": 1, "neither": 1, "pending": 2,
                    "unknown": 0},
    }  # fmt: skip
    if pick_each:
        expected["2026-02"].update(buyer_only=2, neither=0)
    for period, cells in expected.items():
        assert {k: got[period][k] for k in cells} == cells, period
    kinds = dict(
        con.execute("SELECT entity_id, CAST(day AS VARCHAR) FROM drift_entities").fetchall()
    )
    assert kinds["T-10"] == "2026-02-10"  # no anchor: dated by its billed_at
    assert kinds["T-14"] == "2026-01-31"  # dated by its anchor, in the period it was billed
    assert "T-13" not in kinds


def test_days_are_local_dates_in_the_definitions_timezone() -> None:
    """An entity's day is the date of its time in the definition's timezone: an anchor at
    03:00 UTC belongs to the day before in New York. Checked against pandas' own conversion,
    for anchored entities, one dated by its billed_at and one by its first event."""

    tz = "America/New_York"
    d = load_definition(DEFINITION)
    d = d.model_copy(update={"period": d.period.model_copy(update={"timezone": tz})})
    verdicts = [  # entity, status, period, anchor time (UTC)
        ("A1", "counted", "2026-01", "2026-01-10 03:00"),
        ("A2", "counted", "2026-01", "2026-01-10 12:00"),
        ("A3", "not_counted", "2026-01", "2026-01-11 04:59"),
        ("A4", "counted", "2026-01", "2026-01-11 05:00"),
        ("A5", "not_counted", "2026-01", "2026-01-12 23:30"),
    ]
    invoice = [  # entity, billed_at (UTC), period
        ("A1", "2026-01-10 04:00", "2026-01"),
        ("A3", "2026-01-11 06:00", "2026-01"),
        ("B1", "2026-01-13 02:00", "2026-01"),  # no verdict, dated by billed_at
        ("B2", None, "2026-01"),  # no verdict, no billed_at: dated by its first event
    ]
    events = [("A1", "2026-01-09 20:00"), ("B1", "2026-01-12 01:00"), ("B2", "2026-01-14 04:30")]
    con = drift_tables(verdicts, invoice, events)
    report = drift_in(con, d, "v", "inv", events_table="ev", contract_rate=0.1, by_day=True)
    assert report.days is not None
    got = dict(zip(report.days.keys, report.days.stats.n.tolist(), strict=True))

    first_event = pd.DataFrame(events, columns=["entity_id", "ts"]).groupby("entity_id")["ts"].min()
    when = {e: t for e, _, _, t in verdicts}
    for e, billed_at, _ in invoice:
        when.setdefault(e, billed_at or first_event[e])
    local = pd.to_datetime(pd.Series(when)).dt.tz_localize("UTC").dt.tz_convert(tz)
    expected = local.dt.strftime("%Y-%m-%d").value_counts().sort_index().to_dict()
    assert got == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_stream_breaks_time_ties_by_entity_id_as_pandas_sorts(seed: int) -> None:
    """Whole-second times, so most entities share theirs with others, and two without any
    time at all: the watched stream must be in pandas' order of (time, entity id), times
    missing last, whatever order the entities were written in."""
    rng = np.random.default_rng(seed)
    seconds = [f"2026-01-{d:02d} 10:00:{s:02d}" for d in (5, 6) for s in range(15)]
    verdicts, invoice = [], []
    for i in rng.permutation(300):
        e = f"E{int(rng.integers(10**6)):06d}-{i}"
        anchor = str(rng.choice(seconds))
        status = str(rng.choice(["counted", "not_counted"]))
        verdicts.append((e, status, "2026-01", anchor))
        if rng.random() < 0.7:
            invoice.append((e, anchor, "2026-01"))
    for e in ("Z-undated-2", "A-undated-1"):  # billed, with no time anywhere
        verdicts.append((e, "counted", "2026-01", None))
        invoice.append((e, None, "2026-01"))
    con = drift_tables(verdicts, invoice, [("not-billed", "2026-01-01 08:00")])
    report = drift_in(
        con, load_definition(DEFINITION), "v", "inv", events_table="ev", contract_rate=0.2,
        keep_stream=True,
    )  # fmt: skip
    assert report.stream is not None
    view = con.execute("SELECT entity_id, CAST(k AS VARCHAR) AS k, t FROM drift_entities").fetchdf()
    paired = view[view["k"].isin(["a", "b", "c", "d"])]
    assert paired["t"].isna().sum() == 2 and paired["t"].duplicated().sum() > 200
    expected = paired.sort_values(["t", "entity_id"], na_position="last")
    assert report.stream.x.tolist() == (expected["k"] == "b").astype(int).tolist()
    days = [None if pd.isna(t) else str(t.date()) for t in expected["t"]]
    assert [None if np.isnat(d) else str(d) for d in report.stream.day] == days
