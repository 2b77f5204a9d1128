"""The drift alarm (truecount.drift.alarm) against independent computations.

- the vectorised CUSUM against the textbook recursion S_t = max(0, S_{t-1} + llr_t) written here,
  and against the window form S_t = max over s <= t of the sum of llr over (s, t];
- the alarm on seeded per-ticket streams with and without the issue's drift;
- the baseline bound against scipy.stats.beta and statsmodels' Clopper-Pearson interval;
- bad settings and inputs raise clear errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_confint  # type: ignore[import-untyped]

from truecount.drift.alarm import (
    DEFAULT_ALARM,
    AlarmResult,
    AlarmSettings,
    AlarmSettingsError,
    baseline_rate,
    bernoulli_cusum,
    cusum_path,
)
from truecount.errors import TruecountError


def reference_path(x: list[int], p0: float, shift: float) -> list[float]:
    """Page's recursion, one observation at a time, straight from the definition."""
    p1 = shift * p0
    s = 0.0
    out = []
    for v in x:
        llr = math.log(p1 / p0) if v else math.log((1 - p1) / (1 - p0))
        s = max(0.0, s + llr)
        out.append(s)
    return out


def reference_alarm(path: list[float], h: float) -> int | None:
    for i, s in enumerate(path):
        if s >= h:
            return i
    return None


@settings(max_examples=200, deadline=None)
@given(
    x=st.lists(st.booleans(), max_size=400),
    p0=st.floats(0.001, 0.45),
    shift=st.floats(1.05, 2.2),
    h=st.floats(0.1, 8.0),
)
def test_cusum_equals_the_recursion(x: list[bool], p0: float, shift: float, h: float) -> None:
    ref = reference_path([int(v) for v in x], p0, shift)
    # no threshold within rounding of a path value, so the first crossing is unambiguous
    assume(all(abs(s - h) > 1e-9 for s in ref))
    cfg = AlarmSettings(shift=shift, threshold=h)
    path = cusum_path(np.array(x, dtype=bool), p0, cfg)
    np.testing.assert_allclose(path, ref, rtol=0, atol=1e-9)
    got = bernoulli_cusum(np.array(x, dtype=np.int8), p0, cfg)
    want = reference_alarm(ref, h)
    assert got.alarm == (want is not None)
    assert got.index == want
    if want is not None:
        assert got.statistic == pytest.approx(ref[want], abs=1e-9)
    else:
        assert got.statistic is None
    assert got.peak == pytest.approx(max(ref, default=0.0), abs=1e-9)


def test_cusum_equals_the_window_form_on_a_long_seeded_stream() -> None:
    """S_t = max(0, max_{s<t} sum_{(s, t]} llr): an independent formula, O(n^2) on a prefix."""
    rng = np.random.default_rng(11)
    x = (rng.random(200_000) < 0.03).astype(np.int64)
    p0, shift = 0.02, 1.5
    llr = np.where(x == 1, math.log(shift), math.log((1 - shift * p0) / (1 - p0)))
    cum = np.concatenate(([0.0], np.cumsum(llr)))
    path = cusum_path(x, p0, AlarmSettings(shift=shift, threshold=5.0))
    # the long stream's tail against the recursion (rounding must not grow with length)
    ref = reference_path(x.tolist(), p0, shift)
    np.testing.assert_allclose(path, ref, rtol=0, atol=1e-8)
    # the first 2000 entries against the window form
    n = 2000
    windows = cum[1 : n + 1][:, None] - cum[:n][None, :]
    windows[np.triu_indices(n, k=1)] = -np.inf
    np.testing.assert_allclose(path[:n], np.maximum(windows.max(axis=1), 0.0), atol=1e-9)


def test_alarm_index_and_statistic_by_hand() -> None:
    # p0 = 0.1, p1 = 0.2: a one adds log 2, a zero subtracts log(0.9 / 0.8)
    cfg = AlarmSettings(shift=2.0, threshold=2.0)
    down = math.log(0.9 / 0.8)
    x = [0, 0, 1, 1, 0, 1, 1, 0, 0]
    # S: 0, 0, l2, 2 l2, 2 l2 - d, 3 l2 - d (= 1.962 < 2), 4 l2 - d (= 2.655 >= 2) at index 6
    got = bernoulli_cusum(x, 0.1, cfg)
    assert (got.alarm, got.index) == (True, 6)
    assert got.statistic == pytest.approx(4 * math.log(2) - down)
    assert got.peak == pytest.approx(4 * math.log(2) - down)
    # the alarm fires when S reaches h (S >= h), not only once it is clearly past it
    at = 4 * math.log(2) - down - 1e-12
    assert bernoulli_cusum(x, 0.1, AlarmSettings(shift=2.0, threshold=at)).index == 6
    past = 4 * math.log(2) - down + 1e-9
    assert not bernoulli_cusum(x, 0.1, AlarmSettings(shift=2.0, threshold=past)).alarm
    quiet = bernoulli_cusum([0] * 50, 0.1, cfg)
    assert quiet == AlarmResult(alarm=False, index=None, statistic=None, peak=0.0)
    empty = bernoulli_cusum(np.array([], dtype=bool), 0.1, cfg)
    assert empty == AlarmResult(alarm=False, index=None, statistic=None, peak=0.0)
    # the peak of a quiet stream is the largest S, reached at the third one
    near = bernoulli_cusum([1, 1, 0, 1, 0], 0.1, AlarmSettings(shift=2.0, threshold=5.0))
    assert not near.alarm
    assert near.peak == pytest.approx(3 * math.log(2) - down)


# --- the scenario, seeded ----------------------------------------------------------------

PER_DAY = 300
BASELINE_DAYS = 90
STABLE_DAYS = 90
RAMP_DAYS = 365


def scenario(seed: int, drift: bool) -> tuple[int, int, np.ndarray]:
    """Baseline counts and the monitored 0/1 vendor-only stream, one draw per ticket.

    Vendor-only rate 2%; with drift it ramps linearly to 5% (billable share 60% -> 63%) over
    365 days starting after ``STABLE_DAYS`` monitored days; two years are monitored.
    """
    rng = np.random.default_rng(seed)
    baseline = rng.random(BASELINE_DAYS * PER_DAY) < 0.02
    days = STABLE_DAYS + 640
    day = np.repeat(np.arange(days), PER_DAY)
    ramp = np.clip((day - STABLE_DAYS + 1) / RAMP_DAYS, 0.0, 1.0) if drift else 0.0
    rate = 0.02 + 0.03 * np.where(day >= STABLE_DAYS, ramp, 0.0)
    return int(baseline.sum()), baseline.size, rng.random(day.size) < rate


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_alarms_after_the_onset_and_within_half_a_year(seed: int) -> None:
    k, n, stream = scenario(seed, drift=True)
    p0 = baseline_rate(k, n, DEFAULT_ALARM)
    got = bernoulli_cusum(stream, p0, DEFAULT_ALARM)
    assert got.alarm
    assert got.index is not None
    alarm_day = got.index // PER_DAY
    assert STABLE_DAYS <= alarm_day <= STABLE_DAYS + 180
    # the statistic at the alarm is the recursion's value there
    ref = reference_path(stream[: got.index + 1].astype(int).tolist(), p0, DEFAULT_ALARM.shift)
    assert got.statistic == pytest.approx(ref[-1], abs=1e-8)
    assert ref[-1] >= DEFAULT_ALARM.threshold
    assert max(ref[:-1], default=0.0) < DEFAULT_ALARM.threshold


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_stays_quiet_for_two_years_without_drift(seed: int) -> None:
    k, n, stream = scenario(seed, drift=False)
    got = bernoulli_cusum(stream, baseline_rate(k, n, DEFAULT_ALARM), DEFAULT_ALARM)
    assert not got.alarm
    assert got.index is None
    assert 0.0 <= got.peak < DEFAULT_ALARM.threshold


def test_same_stream_alarms_only_when_the_rate_rises() -> None:
    # one shared baseline; the rise is the only difference between the two monitored streams
    rng = np.random.default_rng(7)
    u = rng.random(400 * PER_DAY)
    day = np.arange(u.size) // PER_DAY
    flat = u < 0.02
    risen = u < np.where(day >= 100, 0.04, 0.02)
    cfg = AlarmSettings(shift=1.5, threshold=7.0, baseline_bound="estimate")
    assert not bernoulli_cusum(flat, 0.02, cfg).alarm
    got = bernoulli_cusum(risen, 0.02, cfg)
    assert got.index is not None and got.index >= 100 * PER_DAY


# --- the baseline rate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "conf"),
    [
        (0, 50, 0.9),
        (1, 10, 0.95),
        (7, 7 + 1, 0.8),
        (540, 27_000, 0.9),
        (108, 5_400, 0.95),
        (5_400, 270_000, 0.99),
        (3, 1_000_000, 0.5),
    ],
)
def test_upper_bound_is_clopper_pearson(k: int, n: int, conf: float) -> None:
    got = baseline_rate(k, n, AlarmSettings(shift=1.5, threshold=7.0, confidence=conf))
    assert got == pytest.approx(float(stats.beta.ppf(conf, k + 1, n - k)), rel=1e-9)
    # statsmodels' two-sided exact interval at alpha = 2 (1 - conf) has that upper end
    _, upper = proportion_confint(k, n, alpha=2 * (1 - conf), method="beta")
    assert got == pytest.approx(float(upper), rel=1e-9)
    # and it is the p at which seeing k or fewer has probability 1 - conf
    assert float(stats.binom.cdf(k, n, got)) == pytest.approx(1 - conf, rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 200_000),
    frac=st.floats(0.0, 0.999),
    conf=st.floats(0.5, 0.999),
)
def test_upper_bound_property(n: int, frac: float, conf: float) -> None:
    k = min(int(frac * n), n - 1)
    got = baseline_rate(k, n, AlarmSettings(shift=1.1, threshold=1.0, confidence=conf))
    assert got == pytest.approx(float(stats.beta.ppf(conf, k + 1, n - k)), rel=1e-8)
    assert got >= k / n


def test_estimate_is_the_observed_rate() -> None:
    cfg = AlarmSettings(shift=1.5, threshold=7.0, baseline_bound="estimate")
    assert baseline_rate(540, 27_000, cfg) == 540 / 27_000
    assert baseline_rate(1, 3, cfg) == 1 / 3


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shift": 1.0, "threshold": 5.0},
        {"shift": 0.5, "threshold": 5.0},
        {"shift": math.nan, "threshold": 5.0},
        {"shift": math.inf, "threshold": 5.0},
        {"shift": 1.5, "threshold": 0.0},
        {"shift": 1.5, "threshold": -1.0},
        {"shift": 1.5, "threshold": math.inf},
        {"shift": 1.5, "threshold": 5.0, "baseline_bound": "lower"},
        {"shift": 1.5, "threshold": 5.0, "confidence": 1.0},
        {"shift": 1.5, "threshold": 5.0, "confidence": 0.3},
    ],
)
def test_bad_settings_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(AlarmSettingsError) as err:
        AlarmSettings(**kwargs)  # type: ignore[arg-type]
    assert isinstance(err.value, ValueError)
    assert isinstance(err.value, TruecountError)
    assert "alarm" in err.value.first_line


@pytest.mark.parametrize(
    ("x", "p0", "shift", "match"),
    [
        ([0, 1], 0.0, 1.5, "p0 must be in"),
        ([0, 1], 1.0, 1.5, "p0 must be in"),
        ([0, 1], -0.1, 1.5, "p0 must be in"),
        ([0, 1], math.nan, 1.5, "p0 must be in"),
        ([0, 1], 0.5, 2.0, "not a rate below 1"),
        ([0, 2, 1], 0.1, 1.5, "only 0/1"),
        ([[0, 1], [1, 0]], 0.1, 1.5, "one-dimensional"),
    ],
)
def test_bad_inputs_raise(x: object, p0: float, shift: float, match: str) -> None:
    with pytest.raises(AlarmSettingsError, match=match):
        bernoulli_cusum(x, p0, AlarmSettings(shift=shift, threshold=3.0))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("k", "n", "bound", "match"),
    [
        (0, 0, "upper", "no entities"),
        (5, 3, "upper", "between 0 and n"),
        (-1, 3, "estimate", "between 0 and n"),
        (0, 100, "estimate", "no vendor-only entities"),
        (100, 100, "upper", "every baseline entity"),
        (100, 100, "estimate", "every baseline entity"),
    ],
)
def test_bad_baselines_raise(k: int, n: int, bound: str, match: str) -> None:
    cfg = AlarmSettings(shift=1.5, threshold=5.0, baseline_bound=bound)  # type: ignore[arg-type]
    with pytest.raises(AlarmSettingsError, match=match):
        baseline_rate(k, n, cfg)


def test_default_is_valid_and_documented() -> None:
    assert DEFAULT_ALARM.shift > 1 and DEFAULT_ALARM.threshold > 0
    assert DEFAULT_ALARM.baseline_bound in ("estimate", "upper")


# --- volume ----------------------------------------------------------------------------------------


def test_for_volume_raises_the_threshold_by_the_log_volume_ratio() -> None:
    cfg = AlarmSettings(shift=1.25, threshold=7.0, reference_per_day=300.0)
    assert cfg.for_volume(3000).threshold == pytest.approx(7.0 + math.log(10.0))
    assert cfg.for_volume(300).threshold == 7.0
    assert cfg.for_volume(30).threshold == 7.0  # never lowered below the calibrated volume
    scaled = cfg.for_volume(600)
    assert (scaled.shift, scaled.baseline_bound, scaled.confidence) == (1.25, "upper", 0.9)
    for bad in (0.0, -5.0, math.nan, math.inf):
        with pytest.raises(AlarmSettingsError, match="entities per day"):
            cfg.for_volume(bad)
    with pytest.raises(AlarmSettingsError, match="reference_per_day"):
        AlarmSettings(shift=1.25, threshold=7.0, reference_per_day=0.0)


@pytest.mark.parametrize("seed", [1, 2])
def test_scaled_default_at_3000_a_day(seed: int) -> None:
    """Ten times the volume: quiet for two years without drift, and faster with it."""
    per_day = 3000
    cfg = DEFAULT_ALARM.for_volume(per_day)
    rng = np.random.default_rng(seed)
    k = int((rng.random(90 * per_day) < 0.02).sum())
    p0 = baseline_rate(k, 90 * per_day, cfg)
    day = np.arange(730 * per_day) // per_day
    u = rng.random(day.size)
    assert not bernoulli_cusum(u < 0.02, p0, cfg).alarm
    ramp = 0.02 + 0.03 * np.clip((day - STABLE_DAYS + 1) / RAMP_DAYS, 0.0, 1.0)
    got = bernoulli_cusum(u < np.where(day >= STABLE_DAYS, ramp, 0.02), p0, cfg)
    assert got.index is not None
    assert STABLE_DAYS <= got.index // per_day <= STABLE_DAYS + 90
