"""A sequential alarm on the per-entity vendor-only stream against a frozen baseline.

Why a CUSUM, and why frozen: a slow slip in how the vendor classifies outcomes adds a few
vendor-only entities a week, invisible ticket by ticket and in any single month, but it
accumulates. Page's CUSUM accumulates exactly that evidence and is the fastest detector of a
sustained rise for a given false-alarm rate. Its reference is *frozen* — a stated baseline period
or a contractual rate — so it is explicit, auditable and cannot drift with the vendor: a detector
whose reference is the stream's own running mean (Page-Hinkley, ADWIN) slowly takes a ramp in as
the new normal, and its threshold says nothing about false alarms until it is re-tuned for the
volume at hand. The simulation behind the defaults is ``bench/drift_sim.py``; its tables, and the
comparison with Page-Hinkley and ADWIN, are in docs/drift-alarm.md.

The statistic is the Bernoulli log-likelihood-ratio CUSUM for a rise of the rate from ``p0`` to
``p1 = shift * p0``::

    S_0 = 0,   S_t = max(0, S_{t-1} + llr_t),
    llr_t = log(p1 / p0) if x_t == 1 else log((1 - p1) / (1 - p0))

computed without a loop: with ``W_t`` the cumulative sum of ``llr`` (and ``W_0 = 0``),
``S_t = W_t - min(0, min_{s <= t} W_s)``. ``W_t`` is formed from the integer running count of
ones, so its rounding error does not grow with the length of the stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from truecount.errors import TruecountError

BaselineBound = Literal["estimate", "upper"]
_BOUNDS: Final[tuple[str, ...]] = ("estimate", "upper")


class AlarmSettingsError(TruecountError, ValueError):
    """Settings, baseline or stream the alarm cannot work with (also a ``ValueError``)."""


@dataclass(frozen=True)
class AlarmSettings:
    """What rise to look for and how much evidence to demand before raising the alarm.

    ``shift``: the smallest rise worth catching, as a ratio of the baseline rate (``p1 = shift *
    p0``); the CUSUM is tuned to it and reacts to larger rises faster. ``threshold``: the decision
    interval ``h`` in log-likelihood units; the false-alarm rate falls roughly as ``exp(-h)`` and
    the delay grows linearly in ``h``. ``baseline_bound``: which baseline rate to freeze —
    ``"estimate"`` (the baseline period's observed rate) or ``"upper"`` (its one-sided
    Clopper-Pearson upper limit at ``confidence``), which keeps a baseline that happened to come
    out low from turning into a stream of false alarms. A contractual rate bypasses this: pass it
    to :func:`bernoulli_cusum` directly.

    ``reference_per_day``: the volume (entities a day) ``threshold`` was calibrated for. The
    CUSUM's false-alarm rate is per *entity*, so ten times the volume means about ten times the
    false alarms per year at the same ``h``; :meth:`for_volume` raises ``h`` by ``ln`` of the
    volume ratio to keep false alarms per year where the simulation put them.
    """

    shift: float
    threshold: float
    baseline_bound: BaselineBound = "upper"
    confidence: float = 0.9
    reference_per_day: float = 300.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.shift) and self.shift > 1.0):
            raise AlarmSettingsError(
                f"alarm shift must be a finite number greater than 1 (the rise p1 = shift * p0 to "
                f"detect), got {self.shift!r}"
            )
        if not (math.isfinite(self.threshold) and self.threshold > 0.0):
            raise AlarmSettingsError(
                f"alarm threshold must be a finite number greater than 0 (log-likelihood units), "
                f"got {self.threshold!r}"
            )
        if self.baseline_bound not in _BOUNDS:
            raise AlarmSettingsError(
                f"alarm baseline_bound must be one of {', '.join(_BOUNDS)}, "
                f"got {self.baseline_bound!r}"
            )
        if not (0.5 <= self.confidence < 1.0):
            raise AlarmSettingsError(
                f"alarm confidence must be in [0.5, 1), got {self.confidence!r}"
            )
        if not (math.isfinite(self.reference_per_day) and self.reference_per_day > 0.0):
            raise AlarmSettingsError(
                f"alarm reference_per_day must be a positive number, got {self.reference_per_day!r}"
            )

    def for_volume(self, per_day: float) -> AlarmSettings:
        """These settings with the threshold raised for a stream of ``per_day`` entities a day.

        ``h + ln(per_day / reference_per_day)`` above the reference volume, unchanged at or
        below it: at lower volumes the baseline's own uncertainty, not the CUSUM, sets the
        false alarms, and lowering ``h`` there would let them through (docs/drift-alarm.md).
        """
        if not (math.isfinite(per_day) and per_day > 0.0):
            raise AlarmSettingsError(f"entities per day must be a positive number, got {per_day!r}")
        raise_by = max(0.0, math.log(per_day / self.reference_per_day))
        return replace(self, threshold=self.threshold + raise_by)


#: Chosen by ``bench/drift_sim.py`` (docs/drift-alarm.md): at 300 entities a day, a 2% vendor-only
#: background and a 90-day baseline, 0.03 false alarms per two years without drift, and a median
#: of 81 days (quartiles 66-93) from the start of a 60% -> 63% billable-share ramp over a year to
#: the alarm. Use ``DEFAULT_ALARM.for_volume(entities_per_day)`` at higher volumes.
DEFAULT_ALARM: Final[AlarmSettings] = AlarmSettings(
    shift=1.25, threshold=7.0, baseline_bound="upper", confidence=0.9, reference_per_day=300.0
)


@dataclass(frozen=True)
class AlarmResult:
    """Outcome of one pass of the CUSUM over a stream.

    ``index`` is the 0-based position of the first entity at which ``S >= threshold``, and
    ``statistic`` is ``S`` there; both are ``None`` without an alarm. ``peak`` is the largest
    ``S`` over the whole stream (0 for an empty stream), which says how close a quiet stream came.
    """

    alarm: bool
    index: int | None
    statistic: float | None
    peak: float


def llr_weights(p0: float, shift: float) -> tuple[float, float]:
    """The CUSUM's increment for a one and its (positive) decrement for a zero.

    A one adds ``log(p1 / p0)``; a zero subtracts ``log((1 - p0) / (1 - p1))``. Exposed so a
    simulation can reuse the exact same weights.
    """
    if not (math.isfinite(p0) and 0.0 < p0 < 1.0):
        raise AlarmSettingsError(f"baseline rate p0 must be in (0, 1), got {p0!r}")
    p1 = shift * p0
    if not p1 < 1.0:
        raise AlarmSettingsError(
            f"shift * p0 = {shift!r} * {p0!r} = {p1!r} is not a rate below 1; lower the shift "
            f"or check the baseline rate"
        )
    return math.log(shift), math.log1p(-p0) - math.log1p(-p1)


def _as_stream(x: npt.ArrayLike) -> npt.NDArray[np.int64]:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise AlarmSettingsError(f"the stream must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise AlarmSettingsError("the stream must hold only 0/1 (or False/True) values")
    return arr.astype(np.int64)


def cusum_path(
    x: npt.ArrayLike, p0: float, settings: AlarmSettings | None = None
) -> npt.NDArray[np.float64]:
    """``S_t`` after each entity of the 0/1 stream ``x`` (in time order), as a float array."""
    settings = DEFAULT_ALARM if settings is None else settings
    up, down = llr_weights(p0, settings.shift)
    stream = _as_stream(x)
    ones = np.cumsum(stream)
    t = np.arange(1, stream.size + 1, dtype=np.float64)
    walk = (up + down) * ones - down * t
    floor = np.minimum(np.minimum.accumulate(walk), 0.0) if walk.size else walk
    path: npt.NDArray[np.float64] = walk - floor
    return path


def bernoulli_cusum(
    x: npt.ArrayLike, p0: float, settings: AlarmSettings | None = None
) -> AlarmResult:
    """Run the CUSUM over the 0/1 stream ``x`` (in time order) against the frozen rate ``p0``.

    ``p0`` is the baseline vendor-only rate (from :func:`baseline_rate` or a contract); the alarm
    is raised at the first entity where the accumulated evidence for ``shift * p0`` reaches the
    threshold.
    """
    settings = DEFAULT_ALARM if settings is None else settings
    return alarm_on_path(cusum_path(x, p0, settings), settings)


def alarm_on_path(path: npt.NDArray[np.float64], settings: AlarmSettings) -> AlarmResult:
    """The alarm of :func:`bernoulli_cusum` read from a path :func:`cusum_path` computed, for a
    caller that keeps the path too (the report draws it) and so computes it once."""
    if path.size == 0:
        return AlarmResult(alarm=False, index=None, statistic=None, peak=0.0)
    crossed = path >= settings.threshold
    peak = float(path.max())
    if not crossed.any():
        return AlarmResult(alarm=False, index=None, statistic=None, peak=peak)
    first = int(np.argmax(crossed))
    return AlarmResult(alarm=True, index=first, statistic=float(path[first]), peak=peak)


def clopper_pearson_upper(successes: int, n: int, confidence: float) -> float:
    """One-sided exact (Clopper-Pearson) upper confidence limit of a binomial rate.

    The ``p`` at which seeing ``successes`` or fewer has probability ``1 - confidence``: the
    ``confidence`` quantile of Beta(successes + 1, n - successes), the same quantile function
    the interval tables use (:func:`truecount.drift.stats.clopper_pearson`). A bisection on a
    binomial sum in log space gave the same value but cost seconds at millions of baseline
    entities and lost about eleven digits of its sixteen to rounding there.
    """
    if successes >= n:
        return 1.0
    alpha = 1.0 - confidence
    if successes == 0:
        return float(-math.expm1(math.log(alpha) / n))
    return float(stats.beta.ppf(confidence, successes + 1, n - successes))


def baseline_rate(successes: int, n: int, settings: AlarmSettings | None = None) -> float:
    """The baseline rate ``p0`` the alarm freezes, from ``successes`` of ``n`` baseline entities.

    With ``baseline_bound="estimate"`` it is ``successes / n``; with ``"upper"`` it is the
    one-sided Clopper-Pearson upper limit at ``settings.confidence``. The upper limit trades a
    little delay for protection against a baseline that came out low by chance, which the
    simulation shows is the main source of false alarms for short baselines.
    """
    settings = DEFAULT_ALARM if settings is None else settings
    if isinstance(successes, bool) or isinstance(n, bool):
        raise AlarmSettingsError("baseline counts must be integers, not booleans")
    successes, n = int(successes), int(n)
    if n <= 0:
        raise AlarmSettingsError(
            f"the baseline has no entities (n = {n}); choose a baseline period with data"
        )
    if not 0 <= successes <= n:
        raise AlarmSettingsError(
            f"baseline successes must be between 0 and n = {n}, got {successes}"
        )
    if settings.baseline_bound == "estimate":
        rate = successes / n
    else:
        rate = clopper_pearson_upper(successes, n, settings.confidence)
    if rate <= 0.0:
        raise AlarmSettingsError(
            f"the baseline has no vendor-only entities (0 of {n}), so its rate estimate is 0; "
            f"use baseline_bound='upper' or a contractual rate"
        )
    if rate >= 1.0:
        raise AlarmSettingsError(
            f"every baseline entity is vendor-only ({successes} of {n}); no rise can be detected"
        )
    return rate
