"""A realistic support team's quarter, generated with its ground truth and the vendor's invoice.

Why a generator at all: truecount's tenet is that *the count is right*, and the only way to show
that on realistic volumes is data whose truth is known independently of the engine. The
generator draws every ticket's story from latent variables (who closed it and when, whether and
when it was reopened, whether and how the customer rated it), writes the story out as canonical
events (DESIGN §5), and derives the truth table and the vendor invoice from the *same latent
variables*, never by re-reading the events. A meter that disagrees with the truth table is
wrong, whichever side of the comparison it sits on.

The default scenario is calibrated on the case in ``seed/``: over a quarter the vendor bills
about 41,000 tickets, and the buyer's definition (first close by the AI, no reopen within 14 days,
a rating of 4 or more within 7 days) counts about 27,000 of them.

Everything is vectorised with numpy and deterministic for a seed. Tickets are generated in fixed
blocks of :data:`BLOCK_TICKETS`, each with its own random stream derived from the seed and the
block number, so the data do not depend on how the caller chunks the output: ten one-million
ticket Parquet files hold exactly the rows :func:`generate` would return in one table.

The vendor's billing rule, stated precisely (it is the rule of the case: "a ticket marked closed
in the vendor's own system"): **a ticket is billed once, in the UTC month of its first
``closed`` event (by any actor), when that first close falls inside the billing span
[``start``, ``start + months``)**. Realistic invoice defects can be switched on: duplicate lines,
billed tickets missing from the event export, lines put in the following month, and (rarely)
closed tickets the vendor forgot to bill.

A second billing rule, ``vendor_rule='classifier'``, stands for a vendor that bills by its own
outcome classifier instead (docs/drift.md): among tickets first closed in the span it bills those
the buyer counts, except a share ``vendor_miss_rate`` it misses, and a share
``vendor_false_rate`` of those the buyer does not count. With ``drift_start_month`` the false
share grows linearly from the start of that month to ``vendor_false_rate + drift_extra`` at the
end of the span, by the time of the first close: the slow slip that ``truecount drift`` exists to
catch. The classifier draws from a random stream of its own, so a scenario with drift and the
same scenario without it share every ticket's story and differ only in the extra billed tickets.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "BLOCK_TICKETS",
    "CELLS",
    "GENERATOR_VERSION",
    "REASONS",
    "VENDOR_RULES",
    "ChunkFiles",
    "SupportData",
    "SupportScenario",
    "generate",
    "iter_blocks",
    "write_parquet_chunks",
]

#: Bump when a change to the generator changes its output for the same scenario; caches key on it.
GENERATOR_VERSION: Final[int] = 1

#: Tickets per random block. Part of the output's identity: changing it changes the data.
BLOCK_TICKETS: Final[int] = 100_000

#: Reconciliation cells of the truth table (DESIGN §4), one per ticket. ``neither``: not billed
#: and not counted (never closed, closed after the span, or unbilled and failing the definition).
#: Duplicates and billing-period shifts are invoice-line facts, kept in their own columns.
CELLS: Final[tuple[str, ...]] = ("agreed", "vendor_only", "buyer_only", "unknown", "neither")

#: The truth table's ``reason`` vocabulary (null for ``agreed``), most specific first.
REASONS: Final[tuple[str, ...]] = (
    "no_ai_close",  # no close by the AI: the buyer's definition has no anchor
    "ai_close_outside_period",  # the first AI close falls after the span
    "reopened_within_14d",
    "no_rating",
    "rating_outside_7d",
    "rating_below_4",
    "not_billed",  # buyer_only: closed in the span, the vendor did not bill it
    "not_closed",
    "closed_after_period",
    "not_in_export",  # unknown: billed, but missing from the event export
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

_US: Final[int] = 1_000_000
_MINUTE: Final[int] = 60 * _US
_HOUR: Final[int] = 60 * _MINUTE
_DAY: Final[int] = 24 * _HOUR
_NEVER: Final[int] = np.iinfo(np.int64).max

_TYPES: Final[tuple[str, ...]] = ("created", "message", "escalated", "closed", "reopened", "rated")
_T_CREATED, _T_MESSAGE, _T_ESCALATED, _T_CLOSED, _T_REOPENED, _T_RATED = range(6)
_ACTORS: Final[tuple[str, ...]] = ("customer", "ai", "human", "system")
_A_CUSTOMER, _A_AI, _A_HUMAN, _A_SYSTEM = range(4)

_CHANNELS: Final[tuple[str, ...]] = ("chat", "email", "whatsapp")

#: The vendor's billing rules (see the module doc).
VENDOR_RULES: Final[tuple[str, ...]] = ("all_closed", "classifier")
#: Scenario fields added with the classifier rule (left out of fingerprints at their defaults).
_VENDOR_KNOBS: Final[tuple[str, ...]] = (
    "vendor_rule", "vendor_miss_rate", "vendor_false_rate", "drift_start_month", "drift_extra",
)  # fmt: skip


def _json(obj: dict[str, str]) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


#: attrs texts, indexed by code (-1 = null).
_ATTRS: Final[tuple[str, ...]] = (
    *(_json({"channel": c}) for c in _CHANNELS),  # 0..2: created
    _json({"to": "human"}),  # 3: escalated
    _json({"via": "customer_reply"}),  # 4: reopened by the customer
    _json({"via": "agent"}),  # 5: reopened by a human agent
    _json({"survey": "csat"}),  # 6: rated
)
_ATTR_ESCALATED, _ATTR_REOPEN_CUSTOMER, _ATTR_REOPEN_AGENT, _ATTR_RATED = 3, 4, 5, 6

#: Relative ticket volume per UTC hour: a team serving Europe and the Americas.
_HOUR_PROFILE: Final[tuple[float, ...]] = (
    0.25, 0.2, 0.18, 0.18, 0.22, 0.35, 0.6, 0.85, 1.0, 1.1, 1.15, 1.15,
    1.2, 1.35, 1.45, 1.45, 1.35, 1.2, 1.0, 0.85, 0.7, 0.55, 0.42, 0.32,
)  # fmt: skip


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _epoch_us(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * _DAY


@dataclass(frozen=True)
class SupportScenario:
    """Every knob of the generated span; the defaults give the case (~41k billed, ~27k counted).

    Rates are probabilities per ticket unless the name says otherwise. Durations are medians of
    log-normal delays, because support response times are heavy-tailed: most tickets close in
    minutes, some take days.
    """

    seed: int = 7
    #: Tickets created during the span (the billed count is a little lower: some never close).
    tickets: int = 41_600
    start: dt.date = dt.date(2026, 1, 1)
    months: int = 3
    #: The export is pulled this many days after the span ends. Longer than the buyer's longest
    #: window (14 days), so every outcome anchored in the span is final in the export.
    export_lag_days: int = 16
    weekend_factor: float = 0.45

    channel_weights: tuple[float, float, float] = (0.62, 0.28, 0.10)
    messages_mean: float = 0.8
    never_closed_rate: float = 0.012
    escalation_rate: float = 0.10
    #: Share of first closes made by the AI, for tickets not escalated / escalated to a human.
    ai_close_rate: float = 0.975
    ai_close_rate_escalated: float = 0.08
    ai_close_median_minutes: float = 20.0
    human_close_median_hours: float = 16.0

    #: Probability of a reopen after the first close, by who closed it.
    reopen_rate_ai: float = 0.105
    reopen_rate_human: float = 0.05
    #: Share of reopens that come after the 14-day window (they do not spoil the outcome).
    reopen_late_share: float = 0.22
    reopen_by_customer: float = 0.72
    reopen_message_rate: float = 0.8
    second_close_rate: float = 0.95
    second_close_ai_rate: float = 0.3
    second_close_median_hours: float = 6.0

    rating_rate: float = 0.91
    rating_delay_median_days: float = 1.5
    rating_delay_sigma: float = 0.8
    #: Rating distributions (1..5): reopened within 14 days, closed by a human, by the AI.
    rating_p_reopened: tuple[float, ...] = (0.30, 0.25, 0.20, 0.15, 0.10)
    rating_p_human: tuple[float, ...] = (0.04, 0.04, 0.10, 0.32, 0.50)
    rating_p_ai: tuple[float, ...] = (0.02, 0.02, 0.04, 0.25, 0.67)

    #: The buyer's definition in the case; the truth table is computed for exactly this.
    reopen_window_days: int = 14
    rating_window_days: int = 7
    min_rating: float = 4.0

    unit_price: str = "5.00"
    currency: str = "USD"
    #: Switch every invoice defect on or off at once; the rates below apply when on.
    defects: bool = True
    duplicate_rate: float = 0.0003
    unknown_rate: float = 0.002
    #: Share of closes in the last two days of a month (not the span's last) billed a month late.
    wrong_month_rate: float = 0.02
    unbilled_rate: float = 0.0015

    source: str = "helpdesk-export"

    #: How the vendor decides what it bills: 'all_closed' (every ticket first closed in the span,
    #: the rule of the case) or 'classifier' (its own outcome classifier, see the module doc).
    vendor_rule: str = "all_closed"
    #: 'classifier' only: share of the tickets the buyer counts that the vendor does not bill.
    vendor_miss_rate: float = 0.02
    #: 'classifier' only: share of closed tickets the buyer does not count that it bills anyway.
    vendor_false_rate: float = 0.05
    #: 'classifier' only: first month of drift (1 = the span's first month); None = no drift.
    drift_start_month: int | None = None
    #: Added to ``vendor_false_rate`` by the end of the span, ramping linearly from zero at the
    #: start of ``drift_start_month``.
    drift_extra: float = 0.0

    def __post_init__(self) -> None:
        if self.tickets < 0:
            raise ValueError(f"tickets must be >= 0, got {self.tickets}")
        if self.months < 1:
            raise ValueError(f"months must be >= 1, got {self.months}")
        if self.export_lag_days <= self.reopen_window_days:
            raise ValueError(
                f"export_lag_days ({self.export_lag_days}) must exceed reopen_window_days "
                f"({self.reopen_window_days}) so that outcomes anchored in the span are final"
            )
        for name in ("rating_p_reopened", "rating_p_human", "rating_p_ai"):
            probs = getattr(self, name)
            if len(probs) != 5 or abs(sum(probs) - 1.0) > 1e-9:
                raise ValueError(f"{name} must be 5 probabilities summing to 1, got {probs}")
        if abs(sum(self.channel_weights) - 1.0) > 1e-9:
            raise ValueError(f"channel_weights must sum to 1, got {self.channel_weights}")
        if self.vendor_rule not in VENDOR_RULES:
            raise ValueError(f"vendor_rule must be one of {VENDOR_RULES}, got {self.vendor_rule!r}")
        top = self.vendor_false_rate + max(self.drift_extra, 0.0)
        rates = (self.vendor_miss_rate, self.vendor_false_rate, top)
        if not all(0.0 <= r <= 1.0 for r in rates) or self.drift_extra < 0:
            raise ValueError(
                "vendor_miss_rate, vendor_false_rate and vendor_false_rate + drift_extra must lie "
                f"in [0, 1] and drift_extra must be >= 0, got {rates} and {self.drift_extra}"
            )
        if self.drift_start_month is not None and not 1 <= self.drift_start_month <= self.months:
            raise ValueError(
                f"drift_start_month must lie in 1..{self.months}, got {self.drift_start_month}"
            )

    @property
    def end(self) -> dt.date:
        """First day after the span (exclusive end)."""
        return _add_months(self.start, self.months)

    @property
    def export_at(self) -> dt.datetime:
        """When the export was pulled: events recorded later are not in it."""
        return dt.datetime.combine(self.end, dt.time()) + dt.timedelta(days=self.export_lag_days)

    @property
    def id_width(self) -> int:
        """Digits in a ticket id ("T0000123"): at least 7, more for very large scenarios."""
        return max(7, len(str(max(self.tickets - 1, 0))))

    def entity_id(self, index: int) -> str:
        """The ticket id of the ``index``-th ticket (0-based, in creation order)."""
        return f"T{index:0{self.id_width}d}"

    def fingerprint(self) -> dict[str, Any]:
        """A JSON-able identity of the generated data (for caches): parameters + version."""
        params = asdict(self)
        params["start"] = self.start.isoformat()
        # The vendor-rule knobs came later: left out at their defaults, so cached data made
        # before them (the same rows) keep their key.
        defaults = {f.name: f.default for f in fields(self)}
        for name in _VENDOR_KNOBS:
            if params[name] == defaults[name]:
                del params[name]
        return {"generator_version": GENERATOR_VERSION, "block": BLOCK_TICKETS, **params}


# ------------------------------------------------------------------------------------------
# The calendar: when tickets are created
# ------------------------------------------------------------------------------------------


class _Calendar:
    """Inverse CDF of ticket arrivals over the span, by hour, with weekday and daily variation.

    Ticket ``k`` of ``N`` is created at the ``(k + u) / N`` quantile (``u`` uniform): a
    stratified draw, so ticket ids increase with creation time as in a real help desk, and any
    block of tickets can be generated without the others.
    """

    def __init__(self, sc: SupportScenario) -> None:
        rng = np.random.default_rng([sc.seed, 0])
        days = (sc.end - sc.start).days
        dow = (np.arange(days) + sc.start.weekday()) % 7
        day_w = np.where(dow >= 5, sc.weekend_factor, 1.0) * rng.lognormal(0.0, 0.08, days)
        weights = (day_w[:, None] * np.asarray(_HOUR_PROFILE)[None, :]).ravel()
        self._cum = np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
        self._hours = weights.size
        self._start_us = _epoch_us(sc.start)
        self._total = max(sc.tickets, 1)

    def times(self, k: I64, u: F64) -> I64:
        q = (k + u) / self._total
        h = np.clip(np.searchsorted(self._cum, q, side="right") - 1, 0, self._hours - 1)
        width = self._cum[h + 1] - self._cum[h]
        frac = np.clip((q - self._cum[h]) / np.where(width > 0, width, 1.0), 0.0, 1.0 - 1e-12)
        out: I64 = ((h + frac) * _HOUR).astype(np.int64) + np.int64(self._start_us)
        return out


# ------------------------------------------------------------------------------------------
# One block of tickets
# ------------------------------------------------------------------------------------------


@dataclass
class _Block:
    events: Any  # pyarrow.Table
    invoice: Any  # pyarrow.Table (line_id filled in by the caller: it is a running number)
    truth: Any  # pyarrow.Table


def _lognormal_us(rng: np.random.Generator, median_us: float, sigma: float, n: int) -> I64:
    """Heavy-tailed positive delays, at least one second so event order is strict."""
    draw = median_us * np.exp(sigma * rng.standard_normal(n))
    return np.maximum(draw, float(_US)).astype(np.int64)


def _categorical(rng: np.random.Generator, probs: F64, n: int) -> I64:
    """One draw per row from per-row probability vectors ``probs`` (shape n x k)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(n)
    draws: I64 = np.minimum((u[:, None] > cum).sum(axis=1), probs.shape[1] - 1).astype(np.int64)
    return draws


def _month_index(ts_us: I64) -> I64:
    months: I64 = ts_us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    return months


def _month_labels(month_index: I64, valid: B) -> Any:
    """'YYYY-MM' strings (null where not ``valid``), built from the few distinct months."""
    uniq, inverse = np.unique(np.where(valid, month_index, 0), return_inverse=True)
    labels = pa.array(np.datetime_as_string(uniq.astype("datetime64[M]"), unit="M").tolist())
    return labels.take(pa.array(inverse.astype(np.int32), mask=~valid))


def _take_names(names: tuple[str, ...], codes: I64, valid: B | None = None) -> Any:
    mask = None if valid is None else ~valid
    return pa.array(names).take(pa.array(codes.astype(np.int32), mask=mask))


def _ts(values: I64, valid: B | None = None) -> Any:
    mask = None if valid is None else ~valid
    return pa.array(values, type=pa.timestamp("us"), mask=mask)


def _vendor_classifier(sc: SupportScenario, block: int, c1: I64, buyer_counts: B) -> B:
    """What the vendor's own classifier calls an outcome (``vendor_rule='classifier'``).

    A noisy copy of the buyer's verdict: it misses ``vendor_miss_rate`` of the counted tickets
    and calls ``vendor_false_rate`` of the others outcomes, plus the drift's linear ramp by the
    time of the first close. One uniform draw per ticket from a stream of its own, so the same
    scenario with and without drift differs only in the tickets the ramp adds.
    """
    u = np.random.default_rng([sc.seed, 2, block]).random(c1.size)
    false_rate = np.full(c1.size, sc.vendor_false_rate)
    if sc.drift_start_month is not None and sc.drift_extra > 0:
        drift_us = _epoch_us(_add_months(sc.start, sc.drift_start_month - 1))
        end_us = _epoch_us(sc.end)
        ramp = np.clip((c1 - drift_us) / max(end_us - drift_us, 1), 0.0, 1.0)
        false_rate = false_rate + sc.drift_extra * ramp
    says: B = np.where(buyer_counts, u >= sc.vendor_miss_rate, u < false_rate)
    return says


def _block(sc: SupportScenario, cal: _Calendar, block: int) -> _Block:
    """Tickets ``block * BLOCK_TICKETS`` onward: their events, invoice lines and truth.

    Three steps, in this order on purpose: draw each ticket's story as latent arrays; derive the
    vendor's and the buyer's view from those arrays; only then render events. The truth never
    looks at the rendered events, so it can catch a meter that reads them wrongly.
    """
    lo = block * BLOCK_TICKETS
    hi = min(lo + BLOCK_TICKETS, sc.tickets)
    n = hi - lo
    rng = np.random.default_rng([sc.seed, 1, block])
    start_us = _epoch_us(sc.start)
    end_us = _epoch_us(sc.end)
    export_us = end_us + sc.export_lag_days * _DAY
    idx = np.arange(n, dtype=np.int64)

    # --- the ticket's story, as latent variables ------------------------------------------
    t0 = cal.times(np.arange(lo, hi, dtype=np.int64), rng.random(n))
    channel = _categorical(rng, np.tile(np.asarray(sc.channel_weights), (n, 1)), n)
    closed = rng.random(n) >= sc.never_closed_rate
    escalated = rng.random(n) < sc.escalation_rate
    c1_ai = rng.random(n) < np.where(escalated, sc.ai_close_rate_escalated, sc.ai_close_rate)
    c1_delay = np.where(
        c1_ai,
        _lognormal_us(rng, sc.ai_close_median_minutes * _MINUTE, 1.0, n),
        _lognormal_us(rng, sc.human_close_median_hours * _HOUR, 0.9, n),
    )
    c1 = t0 + c1_delay
    # Escalation happens part-way through the conversation (or within hours if it never closes).
    esc_ts = np.where(
        closed,
        t0 + (c1_delay * rng.uniform(0.2, 0.7, n)).astype(np.int64),
        t0 + _lognormal_us(rng, 2 * _HOUR, 1.0, n),
    )

    window_us = sc.reopen_window_days * _DAY
    reopened = closed & (rng.random(n) < np.where(c1_ai, sc.reopen_rate_ai, sc.reopen_rate_human))
    late = rng.random(n) < sc.reopen_late_share
    early_delay = np.minimum(
        (window_us * rng.beta(0.7, 2.2, n)).astype(np.int64) + _US, window_us - _US
    )
    late_delay = window_us + _HOUR + (rng.exponential(12.0, n) * _DAY).astype(np.int64)
    reopen_ts = c1 + np.where(late, late_delay, early_delay)
    reopen_actor = np.where(rng.random(n) < sc.reopen_by_customer, _A_CUSTOMER, _A_HUMAN)
    c2_exists = reopened & (rng.random(n) < sc.second_close_rate)
    c2_ai = rng.random(n) < sc.second_close_ai_rate
    c2_delay = _lognormal_us(rng, sc.second_close_median_hours * _HOUR, 1.0, n)
    c2 = reopen_ts + c2_delay
    reopen_msg = reopened & (rng.random(n) < sc.reopen_message_rate)
    reopen_msg_ts = reopen_ts + np.minimum(_lognormal_us(rng, 4 * _MINUTE, 1.0, n), c2_delay // 2)

    # The survey goes out at the close that stuck: the second close after a quick reopen.
    rated = closed & (rng.random(n) < sc.rating_rate)
    base_is_c2 = c2_exists & ~late
    base_ts = np.where(base_is_c2, c2, c1)
    base_ai = np.where(base_is_c2, c2_ai, c1_ai)
    rating_ts = base_ts + _lognormal_us(
        rng, sc.rating_delay_median_days * _DAY, sc.rating_delay_sigma, n
    )
    group = np.where(reopened & ~late, 0, np.where(base_ai, 2, 1))
    table = np.asarray([sc.rating_p_reopened, sc.rating_p_human, sc.rating_p_ai])
    rating = (_categorical(rng, table[group], n) + 1).astype(np.float64)

    n_msg = rng.poisson(sc.messages_mean, n)
    msg_owner = np.repeat(idx, n_msg)
    msg_probs = np.where(
        escalated[msg_owner][:, None], np.asarray([[0.4, 0.2, 0.4]]), np.asarray([[0.5, 0.5, 0.0]])
    )
    msg_actor = _categorical(rng, msg_probs, msg_owner.size)  # 0 customer, 1 ai, 2 human
    # Messages fall between creation and the first close; a human only writes after the handoff.
    msg_end = np.where(closed, c1, t0 + 2 * _DAY)[msg_owner]
    msg_start = np.where(msg_actor == _A_HUMAN, esc_ts[msg_owner], t0[msg_owner])
    msg_ts = (
        msg_start
        + _US
        + (rng.random(msg_owner.size) * np.maximum(msg_end - msg_start - 2 * _US, 0)).astype(
            np.int64
        )
    )

    # --- events, each with its delivery delay; the export holds what was recorded in time -----
    slots: list[tuple[I64, I64, int, I64, int | I64, F64 | None, int | I64]] = []
    # (owner, ts, type, actor codes, attrs code, value, slot order) for the present events.

    def add(
        present: B, ts: I64, typ: int, actor: int | I64, attrs: int | I64, value: F64 | None = None
    ) -> None:
        owner = idx[present]
        act = np.full(owner.size, actor) if isinstance(actor, int) else actor[present]
        att = np.full(owner.size, attrs) if isinstance(attrs, int) else attrs[present]
        val = None if value is None else value[present]
        slots.append((owner, ts[present], typ, act, att, val, len(slots)))

    every = np.ones(n, dtype=bool)
    add(every, t0, _T_CREATED, _A_CUSTOMER, channel)
    slots.append(
        (msg_owner, msg_ts, _T_MESSAGE, msg_actor, np.full(msg_owner.size, -1), None, len(slots))
    )
    add(escalated, esc_ts, _T_ESCALATED, _A_AI, _ATTR_ESCALATED)
    add(closed, c1, _T_CLOSED, np.where(c1_ai, _A_AI, _A_HUMAN), -1)
    add(
        reopened,
        reopen_ts,
        _T_REOPENED,
        reopen_actor,
        np.where(reopen_actor == _A_CUSTOMER, _ATTR_REOPEN_CUSTOMER, _ATTR_REOPEN_AGENT),
    )
    add(reopen_msg, reopen_msg_ts, _T_MESSAGE, _A_CUSTOMER, -1)
    add(c2_exists, c2, _T_CLOSED, np.where(c2_ai, _A_AI, _A_HUMAN), -1)
    add(rated, rating_ts, _T_RATED, _A_CUSTOMER, _ATTR_RATED, rating)

    owner = np.concatenate([s[0] for s in slots])
    ts = np.concatenate([s[1] for s in slots])
    typ = np.concatenate([np.full(s[0].size, s[2], dtype=np.int64) for s in slots])
    actor = np.concatenate([np.asarray(s[3], dtype=np.int64) for s in slots])
    attrs = np.concatenate([np.asarray(s[4], dtype=np.int64) for s in slots])
    value = np.concatenate([np.full(s[0].size, np.nan) if s[5] is None else s[5] for s in slots])
    order = np.concatenate([np.full(s[0].size, s[6], dtype=np.int64) for s in slots])
    # Most events arrive within a couple of minutes; a few come with an hours-late batch sync.
    delay = _US + (rng.exponential(90.0, ts.size) * _US).astype(np.int64)
    batch = rng.random(ts.size) < 0.02
    delay = np.where(
        batch, delay + (rng.uniform(1.0, 8.0, ts.size) * _HOUR).astype(np.int64), delay
    )
    recorded = ts + delay
    visible = recorded <= export_us

    # Visibility of the latent events the truth depends on, in slot order (created=0, msgs=1).
    def seen(slot: int) -> B:
        out = np.zeros(n, dtype=bool)
        sel = order == slot
        out[owner[sel]] = visible[sel]
        return out

    vis_c1, vis_reopen, vis_c2, vis_rating = seen(3), seen(4), seen(6), seen(7)

    # --- the vendor's side ---------------------------------------------------------------------
    closed_in_period = closed & (c1 >= start_us) & (c1 < end_us)
    on = sc.defects
    unknown = closed_in_period & on & (rng.random(n) < sc.unknown_rate)
    in_export = ~unknown

    # --- the buyer's side: its definition applied to the latent story --------------------------
    a1 = np.where(closed & c1_ai & vis_c1 & in_export, c1, _NEVER)
    a2 = np.where(c2_exists & c2_ai & vis_c2 & in_export, c2, _NEVER)
    anchor = np.minimum(a1, a2)
    has_anchor = anchor != _NEVER
    anchor_in_period = has_anchor & (anchor >= start_us) & (anchor < end_us)
    safe_anchor = np.where(has_anchor, anchor, 0)
    reopened_in_window = (
        reopened
        & vis_reopen
        & in_export
        & (reopen_ts >= safe_anchor)
        & (reopen_ts <= safe_anchor + window_us)
    )
    rating_in_window = (
        rated
        & vis_rating
        & in_export
        & (rating_ts >= safe_anchor)
        & (rating_ts <= safe_anchor + sc.rating_window_days * _DAY)
    )
    satisfied = rating_in_window & (rating >= sc.min_rating)
    buyer_counts = anchor_in_period & ~reopened_in_window & satisfied

    # The vendor's rule: every ticket first closed in the span, or its classifier's verdict.
    if sc.vendor_rule == "classifier":
        vendor_says = unknown | _vendor_classifier(sc, block, c1, buyer_counts)
    else:
        vendor_says = np.ones(n, dtype=bool)
    unbilled = closed_in_period & ~unknown & on & (rng.random(n) < sc.unbilled_rate)
    vendor_bills = closed_in_period & ~unbilled & vendor_says
    c1_month = _month_index(c1)
    last_month = _month_index(np.asarray([end_us - 1], dtype=np.int64))[0]
    next_month_us = (c1_month + 1).astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)
    near_month_end = (next_month_us - c1) <= 2 * _DAY
    wrong_month = (
        vendor_bills
        & on
        & near_month_end
        & (c1_month < last_month)
        & (rng.random(n) < sc.wrong_month_rate)
    )
    billed_month = c1_month + wrong_month.astype(np.int64)
    duplicate = vendor_bills & on & (rng.random(n) < sc.duplicate_rate)

    cell_code = np.select(
        [vendor_bills & ~in_export, vendor_bills & buyer_counts, vendor_bills, buyer_counts],
        [3, 0, 1, 2],
        default=4,
    )
    buyer_reason = np.select(
        [
            ~has_anchor,
            ~anchor_in_period,
            reopened_in_window,
            ~(rated & vis_rating),
            ~rating_in_window,
            ~satisfied,
        ],
        [0, 1, 2, 3, 4, 5],
        default=-1,
    )
    reason = np.select(
        [
            cell_code == 0,
            cell_code == 3,
            cell_code == 2,
            (cell_code == 4) & ~closed,
            (cell_code == 4) & ~closed_in_period,
        ],
        [-1, 9, 6, 7, 8],
        default=buyer_reason,
    )
    failing = np.select(
        [
            has_anchor & reopened_in_window & ~satisfied,
            has_anchor & reopened_in_window,
            has_anchor & ~satisfied,
        ],
        [2, 0, 1],
        default=-1,
    )

    # --- tables ----------------------------------------------------------------------------------
    digits = pc.utf8_lpad(
        pa.array(np.arange(lo, hi, dtype=np.int64)).cast(pa.string()),
        width=sc.id_width,
        padding="0",
    )
    ids = pc.binary_join_element_wise("T", digits, "")

    keep = visible & in_export[owner]
    owner, ts, typ, actor, attrs, value, order, recorded = (
        a[keep] for a in (owner, ts, typ, actor, attrs, value, order, recorded)
    )
    sort = np.lexsort((order, ts, owner))
    owner, ts, typ, actor, attrs, value, recorded = (
        a[sort] for a in (owner, ts, typ, actor, attrs, value, recorded)
    )
    per_ticket = np.bincount(owner, minlength=n)
    first = np.cumsum(per_ticket) - per_ticket
    seq = np.arange(owner.size, dtype=np.int64) - first[owner] + 1
    entity = ids.take(pa.array(owner.astype(np.int64)))
    seq_text = pc.utf8_lpad(pa.array(seq).cast(pa.string()), width=3, padding="0")
    events = pa.table(
        {
            "event_id": pc.binary_join_element_wise(entity, seq_text, "-"),
            "entity_id": entity,
            "ts": _ts(ts),
            "type": _take_names(_TYPES, typ),
            "actor": _take_names(_ACTORS, actor),
            "value": pa.array(value, mask=np.isnan(value)),
            "attrs": _take_names(_ATTRS, np.maximum(attrs, 0), attrs >= 0),
            "source": pa.array([sc.source]).take(pa.array(np.zeros(owner.size, np.int32))),
            "recorded_at": _ts(recorded),
            "seq": pa.array(seq),
        }
    )

    # Invoice: one line per billed ticket, a second one for duplicates, in billing order.
    line_owner = np.concatenate([idx[vendor_bills], idx[duplicate]])
    line_dup = np.concatenate(
        [np.zeros(int(vendor_bills.sum()), np.int64), np.ones(int(duplicate.sum()), np.int64)]
    )
    line_sort = np.lexsort((line_dup, line_owner, c1[line_owner]))
    line_owner = line_owner[line_sort]
    lines = line_owner.size
    invoice = pa.table(
        {
            "entity_id": ids.take(pa.array(line_owner)),
            "billed_at": _ts(c1[line_owner]),
            "period": _month_labels(billed_month[line_owner], np.ones(lines, dtype=bool)),
            "amount": pa.array([sc.unit_price]).take(pa.array(np.zeros(lines, np.int32))),
            "currency": pa.array([sc.currency]).take(pa.array(np.zeros(lines, np.int32))),
        }
    )

    first_close_actor = np.where(c1_ai, _A_AI, _A_HUMAN)
    truth = pa.table(
        {
            "entity_id": ids,
            "created_ts": _ts(t0),
            "first_close_ts": _ts(c1, closed),
            "first_close_actor": _take_names(_ACTORS, first_close_actor, closed),
            "first_ai_close_ts": _ts(safe_anchor, has_anchor),
            "anchor_period": _month_labels(_month_index(safe_anchor), has_anchor),
            "reopened_within_14d": pa.array(reopened_in_window, mask=~has_anchor),
            "rated_4plus_within_7d": pa.array(satisfied, mask=~has_anchor),
            "buyer_counts": pa.array(buyer_counts),
            "closed_in_period": pa.array(closed_in_period),
            "vendor_bills": pa.array(vendor_bills),
            "billed_period": _month_labels(billed_month, vendor_bills),
            "invoice_lines": pa.array(vendor_bills.astype(np.int64) + duplicate),
            "in_export": pa.array(in_export),
            "cell": _take_names(CELLS, cell_code),
            "reason": _take_names(REASONS, np.maximum(reason, 0), reason >= 0),
            "failing_conditions": _take_names(
                ("not_reopened", "satisfied", "not_reopened,satisfied"),
                np.maximum(failing, 0),
                failing >= 0,
            ),
        }
    )
    return _Block(events=events, invoice=invoice, truth=truth)


# ------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupportData:
    """A generated span: canonical events, the vendor's invoice, and the truth per ticket.

    ``truth`` columns: ``entity_id``; ``created_ts``; ``first_close_ts`` / ``first_close_actor``;
    ``first_ai_close_ts`` (the buyer's anchor, null if none) and its ``anchor_period``;
    ``reopened_within_14d`` and ``rated_4plus_within_7d`` (null without an anchor);
    ``buyer_counts`` (counted, anchored in the span); ``closed_in_period``; ``vendor_bills``;
    ``billed_period``; ``invoice_lines`` (2 for a duplicate); ``in_export``; ``cell`` (one of
    :data:`CELLS`); ``reason`` (one of :data:`REASONS`); ``failing_conditions`` (the
    definition's condition names, comma-separated).
    """

    scenario: SupportScenario
    events: Any = field(repr=False)  # pyarrow.Table, canonical columns (DESIGN §5)
    invoice: Any = field(repr=False)  # pyarrow.Table: line_id, entity_id, billed_at, period, ...
    truth: Any = field(repr=False)  # pyarrow.Table, one row per ticket

    @property
    def as_of(self) -> dt.datetime | None:
        """The default as-of of a count over these events: the latest event time."""
        latest = pc.max(self.events.column("ts")).as_py()
        return latest if isinstance(latest, dt.datetime) else None

    def summary(self) -> dict[str, Any]:
        """Headline numbers from the truth table: billed, counted, tickets per cell and reason."""
        truth = self.truth
        cells = dict.fromkeys(CELLS, 0)
        for row in pc.value_counts(truth.column("cell")).to_pylist():
            cells[row["values"]] = row["counts"]
        reasons = {
            row["values"]: row["counts"]
            for row in pc.value_counts(truth.column("reason").drop_null()).to_pylist()
        }
        return {
            "tickets": truth.num_rows,
            "events": self.events.num_rows,
            "invoice_lines": self.invoice.num_rows,
            "billed": int(pc.sum(truth.column("vendor_bills")).as_py() or 0),
            "counted": int(pc.sum(truth.column("buyer_counts")).as_py() or 0),
            "cells": cells,
            "reasons": dict(sorted(reasons.items())),
        }


def _blocks_count(sc: SupportScenario) -> int:
    return -(-sc.tickets // BLOCK_TICKETS)


def _with_line_ids(invoice: Any, first_line: int) -> Any:
    numbers = pa.array(np.arange(first_line, first_line + invoice.num_rows, dtype=np.int64))
    text = pc.utf8_lpad(numbers.cast(pa.string()), width=9, padding="0")
    return invoice.add_column(0, "line_id", pc.binary_join_element_wise("L", text, ""))


def iter_blocks(scenario: SupportScenario) -> Iterator[SupportData]:
    """Generate the scenario one block of :data:`BLOCK_TICKETS` tickets at a time.

    Invoice line ids run on across blocks, so concatenating the blocks gives exactly
    :func:`generate`'s output while holding only one block in memory.
    """
    cal = _Calendar(scenario)
    next_line = 1
    for block in range(_blocks_count(scenario)):
        part = _block(scenario, cal, block)
        invoice = _with_line_ids(part.invoice, next_line)
        next_line += invoice.num_rows
        yield SupportData(scenario, part.events, invoice, part.truth)


def generate(scenario: SupportScenario | None = None) -> SupportData:
    """Generate the whole scenario in memory (fine up to a few million tickets)."""
    sc = scenario or SupportScenario()
    parts = list(iter_blocks(sc))
    if not parts:
        empty = _block(sc, _Calendar(sc), 0)
        return SupportData(sc, empty.events, _with_line_ids(empty.invoice, 1), empty.truth)
    return SupportData(
        sc,
        pa.concat_tables([p.events for p in parts]),
        pa.concat_tables([p.invoice for p in parts]),
        pa.concat_tables([p.truth for p in parts]),
    )


@dataclass(frozen=True)
class ChunkFiles:
    """Where :func:`write_parquet_chunks` put the data."""

    events: list[Path]
    invoice: Path
    truth: Path
    manifest: Path


def write_parquet_chunks(
    scenario: SupportScenario, out_dir: Path | str, chunk_tickets: int = 1_000_000
) -> ChunkFiles:
    """Write events as ``events-NNNNN.parquet`` files of about ``chunk_tickets`` tickets each.

    Built for the ten-million-ticket benchmark: only one block is in memory at a time, each
    block becomes one row group, and the invoice and truth table stream into one file each.
    ``chunk_tickets`` is rounded up to whole blocks; it changes the file layout, never the rows.
    A ``manifest.json`` records the scenario and the row counts.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_file = max(1, -(-chunk_tickets // BLOCK_TICKETS))
    event_files: list[Path] = []
    writer: Any = None
    invoice_writer: Any = None
    truth_writer: Any = None
    counts = {"tickets": 0, "events": 0, "invoice_lines": 0, "billed": 0, "counted": 0}
    try:
        for i, part in enumerate(iter_blocks(scenario)):
            if i % per_file == 0:
                if writer is not None:
                    writer.close()
                path = out / f"events-{len(event_files):05d}.parquet"
                event_files.append(path)
                writer = pq.ParquetWriter(path, part.events.schema, compression="zstd")
            writer.write_table(part.events, row_group_size=part.events.num_rows)
            if invoice_writer is None:
                invoice_writer = pq.ParquetWriter(out / "invoice.parquet", part.invoice.schema)
                truth_writer = pq.ParquetWriter(out / "truth.parquet", part.truth.schema)
            invoice_writer.write_table(part.invoice)
            truth_writer.write_table(part.truth)
            counts["tickets"] += part.truth.num_rows
            counts["events"] += part.events.num_rows
            counts["invoice_lines"] += part.invoice.num_rows
            counts["billed"] += int(pc.sum(part.truth.column("vendor_bills")).as_py() or 0)
            counts["counted"] += int(pc.sum(part.truth.column("buyer_counts")).as_py() or 0)
    finally:
        for w in (writer, invoice_writer, truth_writer):
            if w is not None:
                w.close()
    manifest = out / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "scenario": scenario.fingerprint(),
                "counts": counts,
                "events": [p.name for p in event_files],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return ChunkFiles(event_files, out / "invoice.parquet", out / "truth.parquet", manifest)
