"""Price scenarios before signing: four ways to buy the same outcomes over a contract term.

The headline price of a vendor-defined outcome is only a price at month one. When the vendor's
classifier counts more events as outcomes each month than the buyer's own definition would, the
same work costs more every month. This module puts numbers on that, for four options:

``vendor_headline``
    the vendor-defined outcome at the quoted unit price;
``vendor_discounted``
    the same, less the **drift-adjusted discount**: the constant discount that makes the
    term's cost equal to the cost without drift, computed from the drift rate;
``hybrid``
    a platform fee per month plus the vendor-defined outcome at the quoted price, with the
    outcome charges capped per contract year;
``buyer_defined``
    the buyer's own definition, at a higher unit price, immune to the vendor's drift.

The drift model. ``volume`` is the buyer's count per month (its own definition). The vendor
counts ``ratio`` times as many at signing, and the ratio rises by ``drift`` per year,
compounded monthly: in month ``m`` (0 for the first month) the vendor counts
``volume x ratio x (1 + drift)^(m/12)``. With ``S`` the sum of those growth factors over the
``M`` months of the term, the drift-adjusted discount is ``1 - M / S``; in closed form, with
``q = (1 + drift)^(1/12)``, ``S = (q^M - 1) / (q - 1)``.

Deterministic figures are exact :class:`~decimal.Decimal` arithmetic (40 significant digits),
rounded half up to the currency's minor unit once per contract year; a total is the sum of its
rounded years. The risk figures come from a seeded Monte Carlo in binary floating point,
vectorised over draws: per draw, one drift rate ``Normal(drift, drift_sd)`` (floored at -99%
a year) and one volume multiplier ``LogNormal(0, volume_sd)`` (median 1) for the whole term,
drawn in that order from ``numpy.random.default_rng(seed)``; percentiles use NumPy's default
linear interpolation and are rounded to the minor unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from truecount.billing.terms import Terms
from truecount.errors import InputError, Location, Problem

OPTION_KEYS: Final[tuple[str, ...]] = (
    "vendor_headline",
    "vendor_discounted",
    "hybrid",
    "buyer_defined",
)
OPTION_LABELS: Final[dict[str, str]] = {
    "vendor_headline": "vendor-defined, headline",
    "vendor_discounted": "vendor-defined, discounted",
    "hybrid": "hybrid: fee + capped units",
    "buyer_defined": "buyer-defined",
}
PERCENTILES: Final[tuple[int, int, int]] = (10, 50, 90)
DEFAULT_DRAWS: Final[int] = 10_000
DEFAULT_DRIFT_SD: Final[Decimal] = Decimal("0.05")
DEFAULT_VOLUME_SD: Final[Decimal] = Decimal("0.20")
DEFAULT_BUYER_PREMIUM: Final[Decimal] = Decimal("0.10")
#: Draws x months above this would need more memory than a laptop should give a scenario.
MAX_CELLS: Final[int] = 50_000_000
_PREC: Final[int] = 40

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PriceInputs:
    """Everything a price scenario depends on; rates are fractions (``0.05`` is 5%)."""

    currency: str
    digits: int
    unit_price: Decimal
    volume: Decimal
    buyer_price: Decimal
    months: int = 24
    drift: Decimal = Decimal(0)
    ratio: Decimal = Decimal(1)
    platform_fee: Decimal = Decimal(0)
    annual_cap: Decimal | None = None
    agreed_discount: Decimal = Decimal(0)
    draws: int = DEFAULT_DRAWS
    seed: int = 0
    drift_sd: Decimal = DEFAULT_DRIFT_SD
    volume_sd: Decimal = DEFAULT_VOLUME_SD

    @classmethod
    def from_terms(
        cls,
        terms: Terms,
        volume: Decimal,
        *,
        months: int = 24,
        drift: Decimal = Decimal(0),
        ratio: Decimal = Decimal(1),
        buyer_price: Decimal | None = None,
        buyer_premium: Decimal = DEFAULT_BUYER_PREMIUM,
        platform_fee: Decimal | None = None,
        annual_cap: Decimal | None = None,
        draws: int = DEFAULT_DRAWS,
        seed: int = 0,
        drift_sd: Decimal = DEFAULT_DRIFT_SD,
        volume_sd: Decimal = DEFAULT_VOLUME_SD,
    ) -> PriceInputs:
        """Inputs from the terms file, with options overriding or adding to it.

        The buyer-defined unit price is ``buyer_price`` when given, else the headline price
        plus ``buyer_premium``; the platform fee (per month) and the annual cap are the terms'
        unless given here.
        """
        if buyer_price is None:
            buyer_price = terms.unit_price * (1 + buyer_premium)
        return cls(
            currency=terms.currency,
            digits=terms.digits,
            unit_price=terms.unit_price,
            volume=volume,
            buyer_price=buyer_price,
            months=months,
            drift=drift,
            ratio=ratio,
            platform_fee=terms.platform_fee if platform_fee is None else platform_fee,
            annual_cap=terms.annual_cap if annual_cap is None else annual_cap,
            agreed_discount=terms.discount_pct / 100,
            draws=draws,
            seed=seed,
            drift_sd=drift_sd,
            volume_sd=volume_sd,
        )

    def validate(self) -> None:
        """Refuse inputs that have no meaning, naming the option to change."""

        def bad(key: str, message: str, hint: str) -> InputError:
            return InputError(Problem(message, Location(key=key), hint))

        if self.volume <= 0:
            raise bad("volume", f"volume {self.volume} is not positive", "give outcomes per month")
        if not 1 <= self.months <= 600:
            raise bad("months", f"{self.months} months is not a term", "give 1 to 600 months")
        if self.drift <= -1:
            raise bad("drift", f"a drift of {_pct(self.drift)} a year is impossible", "above -100%")
        if self.ratio <= 0:
            raise bad("ratio", f"ratio {self.ratio} is not positive", "vendor count / buyer count")
        for key, value in (
            ("unit_price", self.unit_price),
            ("buyer-price", self.buyer_price),
            ("platform-fee", self.platform_fee),
        ):
            if value < 0:
                raise bad(key, f"{value} is negative", "prices and fees are zero or more")
        if self.annual_cap is not None and self.annual_cap < 0:
            raise bad("cap", f"{self.annual_cap} is negative", "a cap is zero or more")
        for key, spread in (("drift-sd", self.drift_sd), ("volume-sd", self.volume_sd)):
            if spread < 0:
                raise bad(key, f"a spread of {_pct(spread)} is negative", "give 0% or more")
        if self.draws < 1 or self.draws * self.months > MAX_CELLS:
            raise bad(
                "draws",
                f"{self.draws:,} draws over {self.months} months is not a usable simulation",
                f"give 1 to {MAX_CELLS // self.months:,} draws",
            )

    def to_json(self, places: int | None = None) -> dict[str, Any]:
        """``places``: decimals of the unit prices (default: as many as either needs)."""
        if places is None:
            places = price_places((self.unit_price, self.buyer_price), self.digits)
        return {
            "currency": self.currency,
            "unit_price": show_price(self.unit_price, places),
            "buyer_price": show_price(self.buyer_price, places),
            "volume": _num_text(self.volume),
            "months": self.months,
            "drift": _pct(self.drift),
            "ratio": _num_text(self.ratio),
            "platform_fee": _money_text(self.platform_fee, self.digits),
            "annual_cap": (
                None if self.annual_cap is None else _money_text(self.annual_cap, self.digits)
            ),
            "agreed_discount": _pct(self.agreed_discount),
            "monte_carlo": {
                "draws": self.draws,
                "seed": self.seed,
                "drift_sd": _pct(self.drift_sd),
                "volume_sd": _pct(self.volume_sd),
            },
        }


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Risk:
    """Mean and percentiles of a cost over the Monte Carlo draws, in money."""

    mean: Decimal
    p10: Decimal
    p50: Decimal
    p90: Decimal

    def to_json(self, digits: int) -> dict[str, str]:
        return {
            "mean": _money_text(self.mean, digits),
            "p10": _money_text(self.p10, digits),
            "p50": _money_text(self.p50, digits),
            "p90": _money_text(self.p90, digits),
        }


@dataclass(frozen=True)
class OptionCost:
    """One option over the term: exact months, rounded years and total, and its risk."""

    key: str
    label: str
    unit_price: Decimal
    basis: str  # whose count is billed: vendor or buyer
    monthly: tuple[Decimal, ...]
    years: tuple[Decimal, ...]
    total: Decimal
    risk: Risk
    years_risk: tuple[Risk, ...]

    def to_json(self, digits: int, places: int | None = None) -> dict[str, Any]:
        """Money at ``digits`` decimals; the unit price at ``places`` (default ``digits``, or
        more when the price has more)."""
        return {
            "key": self.key,
            "label": self.label,
            "unit_price": show_price(self.unit_price, digits if places is None else places),
            "basis": self.basis,
            "total": _money_text(self.total, digits),
            "years": [
                {"year": i + 1, "amount": _money_text(y, digits), "risk": r.to_json(digits)}
                for i, (y, r) in enumerate(zip(self.years, self.years_risk, strict=True))
            ],
            "risk": self.risk.to_json(digits),
        }


@dataclass(frozen=True)
class PriceResult:
    """The four options side by side, with the break-even figures between them."""

    inputs: PriceInputs
    options: tuple[OptionCost, ...]
    #: 1 - M / S: the constant discount that keeps the term's cost flat against the drift.
    drift_discount: Decimal
    #: ``drift_discount`` as the percentage to write into a contract (rounded up to 0.01%).
    stated_discount_pct: Decimal
    #: The discount at which the vendor-defined outcome costs as much as the buyer-defined one.
    discount_vs_buyer: Decimal
    #: The highest buyer-defined unit price that costs no more than the headline option.
    break_even_buyer_price: Decimal
    #: Sum of the vendor's monthly growth factors over the term (``S``).
    growth_sum: Decimal
    notes: tuple[str, ...] = field(default=())

    def option(self, key: str) -> OptionCost:
        return next(o for o in self.options if o.key == key)

    @property
    def price_places(self) -> int:
        """Decimals that show every unit price of the scenario exactly, at least the
        currency's: one column of prices all written to the same decimals."""
        prices = [o.unit_price for o in self.options]
        return price_places((*prices, self.inputs.unit_price, self.inputs.buyer_price),
                            self.inputs.digits)  # fmt: skip

    def label(self, key: str) -> str:
        """The words a reader sees for an option key."""
        return self.option(key).label

    @property
    def cheapest(self) -> str:
        return min(self.options, key=lambda o: o.total).key

    @property
    def cheapest_p50(self) -> str:
        return min(self.options, key=lambda o: o.risk.p50).key

    @property
    def cheapest_p90(self) -> str:
        return min(self.options, key=lambda o: o.risk.p90).key

    def to_json(self) -> dict[str, Any]:
        """The stable shape of ``truecount price --format json`` (docs/contract.md)."""
        d = self.inputs.digits
        places = self.price_places
        agreed = self.inputs.agreed_discount * 100
        return {
            "inputs": self.inputs.to_json(places),
            "years": math.ceil(self.inputs.months / 12),
            "options": [o.to_json(d, places) for o in self.options],
            "break_even": {
                "drift_discount": f"{_round(self.drift_discount * 100, 4)}%",
                "stated_discount": f"{self.stated_discount_pct}%",
                "agreed_discount": _pct(self.inputs.agreed_discount),
                "agreed_covers_drift": agreed >= self.stated_discount_pct,
                "discount_vs_buyer_defined": f"{_round(self.discount_vs_buyer * 100, 2)}%",
                "buyer_price": _money_text(self.break_even_buyer_price, d),
                "mean_growth": str(_round(self.growth_sum / self.inputs.months, 6)),
            },
            "cheapest": {
                "total": self.cheapest,
                "p50": self.cheapest_p50,
                "p90": self.cheapest_p90,
            },
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- arithmetic


def _round(value: Decimal, places: int, rounding: str = ROUND_HALF_UP) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=rounding)


def _money_text(value: Decimal, digits: int) -> str:
    return str(_round(value, digits))


def show_price(value: Decimal, digits: int) -> str:
    """A unit price with at least ``digits`` decimals and no trailing zeros beyond them.

    Given the :func:`price_places` of all the prices shown together, every price is written
    to the same decimals, so a column of prices lines up and none looks rounded.
    """
    value = value.normalize()
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent < digits:
        value = value.quantize(Decimal(1).scaleb(-digits))
    return f"{value:f}"


def price_places(values: tuple[Decimal, ...] | list[Decimal], digits: int) -> int:
    """The decimals that show each of ``values`` exactly, and at least the currency's
    ``digits`` (a discounted price such as 4.359 has more than the currency's two)."""
    places = digits
    for value in values:
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int):
            places = max(places, -exponent)
    return places


def _num_text(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _pct(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def growth_factors(drift: Decimal, months: int) -> list[Decimal]:
    """``(1 + drift)^(m/12)`` for each month ``m`` of the term: the vendor/buyer ratio's rise."""
    with localcontext() as ctx:
        ctx.prec = _PREC
        base = Decimal(1) + drift
        return [+(base ** (Decimal(m) / 12)) for m in range(months)]


def break_even_discount(drift: Decimal, months: int) -> Decimal:
    """``1 - M / S`` with ``S = (q^M - 1) / (q - 1)``, ``q = (1 + drift)^(1/12)``.

    The constant discount on a vendor-defined unit that makes the term's cost equal to what
    it would be if the vendor counted, every month, what it counts in the first. Negative when
    the drift is negative (the vendor's count falls).
    """
    if drift == 0:
        return Decimal(0)
    with localcontext() as ctx:
        ctx.prec = _PREC
        base = Decimal(1) + drift
        q = base ** (Decimal(1) / 12)
        total = (base ** (Decimal(months) / 12) - 1) / (q - 1)
        return +(1 - Decimal(months) / total)


def _years(monthly: list[Decimal], digits: int) -> tuple[Decimal, ...]:
    """Contract years of 12 months from signing (the last may be shorter), each rounded once."""
    return tuple(
        _round(sum(monthly[i : i + 12], Decimal(0)), digits) for i in range(0, len(monthly), 12)
    )


def _capped(outcome: list[Decimal], cap: Decimal | None) -> list[Decimal]:
    """Outcome charges after a cap on each contract year's running total."""
    if cap is None:
        return list(outcome)
    out: list[Decimal] = []
    used = Decimal(0)
    for i, charge in enumerate(outcome):
        if i % 12 == 0:
            used = Decimal(0)
        allowed = min(charge, max(cap - used, Decimal(0)))
        used += allowed
        out.append(allowed)
    return out


# --------------------------------------------------------------------------- Monte Carlo


def _simulate(inp: PriceInputs, discount: Decimal) -> dict[str, FloatArray]:
    """Per option, the cost of each draw in each contract year: an array ``draws x years``."""
    rng = np.random.default_rng(inp.seed)
    drift = np.maximum(rng.normal(float(inp.drift), float(inp.drift_sd), inp.draws), -0.99)
    volume = rng.lognormal(0.0, float(inp.volume_sd), inp.draws)
    n_years = math.ceil(inp.months / 12)
    month = np.arange(n_years * 12, dtype=np.float64)
    live = (month < inp.months).astype(np.float64)  # months past the term cost nothing
    growth = np.power(1.0 + drift[:, None], month[None, :] / 12.0) * live[None, :]
    buyer_units = float(inp.volume) * volume
    vendor_units = buyer_units[:, None] * float(inp.ratio) * growth
    vendor_year = vendor_units.reshape(inp.draws, n_years, 12).sum(axis=2)
    months_in_year = live.reshape(n_years, 12).sum(axis=1)
    price = float(inp.unit_price)
    outcome = price * vendor_year
    if inp.annual_cap is not None:
        outcome = np.minimum(outcome, float(inp.annual_cap))
    return {
        "vendor_headline": price * vendor_year,
        "vendor_discounted": price * (1.0 - float(discount)) * vendor_year,
        "hybrid": outcome + float(inp.platform_fee) * months_in_year[None, :],
        "buyer_defined": float(inp.buyer_price) * buyer_units[:, None] * months_in_year[None, :],
    }


def _risk(values: FloatArray, digits: int) -> Risk:
    p10, p50, p90 = np.percentile(values, PERCENTILES)
    return Risk(*(_to_money(float(v), digits) for v in (values.mean(), p10, p50, p90)))


def _to_money(value: float, digits: int) -> Decimal:
    return _round(Decimal(repr(value)), digits)


# --------------------------------------------------------------------------- entry point


def price(inp: PriceInputs) -> PriceResult:
    """The four options over the term, their break-even figures and their risk."""
    inp.validate()
    d = inp.digits
    with localcontext() as ctx:
        ctx.prec = _PREC
        growth = growth_factors(inp.drift, inp.months)
        growth_sum = sum(growth, Decimal(0))
        delta = break_even_discount(inp.drift, inp.months)
        stated = _round(delta * 100, 2, ROUND_CEILING)
        keep = 1 - stated / 100
        vendor_units = [inp.volume * inp.ratio * g for g in growth]
        headline = [inp.unit_price * u for u in vendor_units]
        monthly = {
            "vendor_headline": headline,
            "vendor_discounted": [inp.unit_price * keep * u for u in vendor_units],
            "hybrid": [c + inp.platform_fee for c in _capped(headline, inp.annual_cap)],
            "buyer_defined": [inp.buyer_price * inp.volume] * inp.months,
        }
        vendor_total = inp.unit_price * inp.volume * inp.ratio * growth_sum
        buyer_total = inp.buyer_price * inp.volume * inp.months
        discount_vs_buyer = 1 - buyer_total / vendor_total if vendor_total else Decimal(0)
        buyer_break_even = _round(vendor_total / (inp.volume * inp.months), d, ROUND_FLOOR)

    simulated = _simulate(inp, stated / 100)
    prices = {
        "vendor_headline": inp.unit_price,
        "vendor_discounted": inp.unit_price * keep,
        "hybrid": inp.unit_price,
        "buyer_defined": inp.buyer_price,
    }
    options = []
    for key in OPTION_KEYS:
        years = _years(monthly[key], d)
        sims = simulated[key]
        options.append(
            OptionCost(
                key=key,
                label=OPTION_LABELS[key],
                unit_price=prices[key],
                basis="buyer" if key == "buyer_defined" else "vendor",
                monthly=tuple(monthly[key]),
                years=years,
                total=sum(years, Decimal(0)),
                risk=_risk(sims.sum(axis=1), d),
                years_risk=tuple(_risk(sims[:, y], d) for y in range(sims.shape[1])),
            )
        )

    notes: list[str] = []
    if inp.drift == 0:
        notes.append(
            "no drift given (--drift): the vendor's count stays at its signing level, so the "
            "options differ only by price; take the rate from `truecount drift` or state one"
        )
    if inp.annual_cap is None:
        notes.append("no annual cap (terms annual_cap or --cap): the hybrid is not capped")
    elif sum(headline[:12], Decimal(0)) > inp.annual_cap:
        notes.append("the annual cap binds in the first contract year already")
    if inp.agreed_discount * 100 < stated:
        notes.append(
            f"the terms' discount ({_pct(inp.agreed_discount)}) is below the drift-adjusted "
            f"discount ({stated}%)"
        )
    return PriceResult(
        inputs=inp,
        options=tuple(options),
        drift_discount=delta,
        stated_discount_pct=stated,
        discount_vs_buyer=discount_vs_buyer,
        break_even_buyer_price=buyer_break_even,
        growth_sum=growth_sum,
        notes=tuple(notes),
    )


__all__ = [
    "OPTION_KEYS",
    "OPTION_LABELS",
    "PERCENTILES",
    "OptionCost",
    "PriceInputs",
    "PriceResult",
    "Risk",
    "break_even_discount",
    "growth_factors",
    "price",
    "price_places",
    "show_price",
]
