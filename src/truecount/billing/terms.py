"""Contract terms: what a period's outcomes cost, and whose count decides (docs/terms.md).

The commercial side of an outcome contract, in a small YAML file:

```yaml
truecount_terms: 1
currency: USD
unit_price: 0.99
tolerance: 2%
billing_source: buyer_beyond_tolerance
platform_fee: 0
annual_cap: null
discount: 0%
letter:                     # optional: who writes the dispute letter, to whom, about what
  buyer: Example Corp
  vendor: Example AI Ltd
  invoice_number: INV-2026-0042
  invoice_date: 2026-02-03
  contract: MSA-2025-17, order form 3
```

Money is :class:`~decimal.Decimal` throughout and rounded once per period, half up, to the
currency's minor unit (ISO 4217), because a credit that differs by a cent from the letter that
demands it is a credit the vendor can argue about.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from truecount.errors import Location, Problem, TermsError, suggest
from truecount.yamlsource import parse_with_lines, read_text

if TYPE_CHECKING:
    from truecount.billing.periods import PeriodResult

#: ISO 4217's active codes by their minor units (digits after the decimal point), from the
#: standard's list; a code not listed here needs ``minor_units`` in the terms, so an amount is
#: never rounded to a guessed unit.
_ISO_4217: Final[dict[int, str]] = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: (
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
        "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
        "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW "
        "KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN "
        "NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
        "SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS "
        "VED VES WST XCD XCG ZAR ZMW ZWG"
    ),
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}
MINOR_UNITS: Final[dict[str, int]] = {
    code: digits for digits, codes in _ISO_4217.items() for code in codes.split()
}

BillingRule = Literal["buyer_beyond_tolerance", "vendor", "buyer"]


#: The largest price, fee or cap: units x price must stay within Decimal's 28 exact digits.
MAX_AMOUNT: Final[Decimal] = Decimal("1e12")


def _decimal(value: Any, what: str, limit: Decimal | None = MAX_AMOUNT) -> Decimal:
    """A Decimal from YAML text or number; floats go through their shortest repr (0.99 -> 0.99)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not {value!r}")
    try:
        result = Decimal(str(value).strip().replace("_", ""))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{what} must be a number, not {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"{what} must be a finite number")
    if limit is not None and abs(result) > limit:
        # Money is exact to 28 digits; a larger amount times the units could not be rounded.
        raise ValueError(f"{value} is too large for {what}; amounts are at most {limit:,.0f}")
    return result


def _percent(value: Any, what: str) -> Decimal:
    """'2%' -> Decimal('2'). A bare number is refused: 0.02 could mean 2% or 0.02%."""
    if isinstance(value, str) and value.strip().endswith("%"):
        return _decimal(value.strip()[:-1], what, limit=None)  # then checked against 0..100
    raise ValueError(f"write {what} as a percentage such as '2%', not {value!r}")


class LetterDetails(BaseModel):
    """Who sends the dispute letter, to whom, about which invoice under which contract.

    Not commercial terms: none of it changes a number, so it stays out of :meth:`Terms.summary`
    (and its hash) and a CLI option may override any of it. Every field is optional; the letter
    words around a missing one instead of printing a placeholder.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    buyer: str | None = None
    vendor: str | None = None
    invoice_number: str | None = None
    invoice_date: dt.date | None = None
    contract: str | None = None

    @field_validator("buyer", "vendor", "invoice_number", "contract", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool | dict | list):
            raise ValueError(f"write a name or reference as text, not {value!r}")
        text = " ".join(str(value).split())
        return text or None

    @field_validator("invoice_date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> dt.date | None:
        if isinstance(value, dt.datetime):
            return value.date()
        if value is None or isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"write the date as YYYY-MM-DD, not {value!r}") from None

    def merged(self, **overrides: Any) -> LetterDetails:
        """These details with every override that is not None put in its place (CLI options)."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return LetterDetails.model_validate(data)


LETTER_KEYS: Final[tuple[str, ...]] = tuple(LetterDetails.model_fields)


class Terms(BaseModel):
    """Validated contract terms. Frozen: a reconciliation cannot change the contract."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    truecount_terms: Literal[1]
    currency: str
    unit_price: Decimal
    tolerance_pct: Decimal = Field(default=Decimal(0), alias="tolerance")
    billing_source: BillingRule = "buyer_beyond_tolerance"
    platform_fee: Decimal = Decimal(0)
    annual_cap: Decimal | None = None
    discount_pct: Decimal = Field(default=Decimal(0), alias="discount")
    minor_units: int | None = Field(default=None, ge=0, le=6)
    letter: LetterDetails = Field(default_factory=LetterDetails)

    @field_validator("letter", mode="before")
    @classmethod
    def _letter(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(
                f"letter is a mapping of {', '.join(LETTER_KEYS)}, not {type(value).__name__}"
            )
        return value

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        text = str(value).strip().upper()
        if len(text) != 3 or not text.isalpha():
            raise ValueError(f"'{value}' is not an ISO 4217 currency code such as USD or EUR")
        return text

    @field_validator("unit_price", "platform_fee", mode="before")
    @classmethod
    def _money(cls, value: Any) -> Decimal:
        amount = _decimal(value, "an amount")
        if amount < 0:
            raise ValueError(f"{amount} is negative; prices and fees are zero or more")
        return amount

    @field_validator("annual_cap", mode="before")
    @classmethod
    def _cap(cls, value: Any) -> Decimal | None:
        if value is None:
            return None
        amount = _decimal(value, "annual_cap")
        if amount < 0:
            raise ValueError(f"{amount} is negative; a cap is zero or more (or null for none)")
        return amount

    @field_validator("tolerance_pct", "discount_pct", mode="before")
    @classmethod
    def _pct(cls, value: Any, info: ValidationInfo) -> Decimal:
        pct = _percent(value, _FIELD_TO_KEY.get(info.field_name or "", "a percentage"))
        if pct < 0 or pct > 100:
            raise ValueError(f"{pct}% is outside 0% to 100%")
        return pct

    # ----------------------------------------------------------------------- money
    @property
    def digits(self) -> int:
        """Minor units of the currency: the explicit setting, else ISO 4217."""
        if self.minor_units is not None:
            return self.minor_units
        return MINOR_UNITS.get(self.currency, 2)

    def round(self, amount: Decimal) -> Decimal:
        """Round half up to the currency's minor unit."""
        return amount.quantize(Decimal(1).scaleb(-self.digits), rounding=ROUND_HALF_UP)

    def _show(self, amount: Decimal) -> Decimal:
        """At least the currency's minor digits (5 -> 5.00), never fewer than given (0.995)."""
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and -exponent < self.digits:
            return amount.quantize(Decimal(1).scaleb(-self.digits))
        return amount

    def summary(self) -> dict[str, Any]:
        """The terms as they appear in the reconciliation JSON (money as decimal strings)."""
        data = {
            "currency": self.currency,
            "unit_price": str(self._show(self.unit_price)),
            "tolerance": f"{self.tolerance_pct}%",
            "billing_source": self.billing_source,
            "platform_fee": str(self._show(self.platform_fee)),
            "annual_cap": None if self.annual_cap is None else str(self._show(self.annual_cap)),
            "discount": f"{self.discount_pct}%",
        }
        data["sha256"] = hashlib.sha256(
            json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        return data

    @property
    def unit_value(self) -> Decimal:
        """What one outcome costs under the contract: the unit price less the discount."""
        return self.unit_price * (Decimal(1) - self.discount_pct / 100)

    def source_for(self, beyond_tolerance: bool) -> Literal["vendor", "buyer"]:
        """Whose count a period is billed on."""
        if self.billing_source == "vendor":
            return "vendor"
        if self.billing_source == "buyer":
            return "buyer"
        return "buyer" if beyond_tolerance else "vendor"


@dataclass(frozen=True)
class Charge:
    """How one period's outcome charge came about, before the fee and the rounding."""

    source: Literal["vendor", "buyer"]
    units: int
    #: Units x unit price x (1 - discount): the charge before the annual cap.
    uncapped: Decimal
    #: What the cap leaves of it (equal to ``uncapped`` without a cap).
    charge: Decimal


def charges(terms: Terms, periods: Sequence[PeriodResult]) -> dict[str, Charge]:
    """Each period's billing source, units and outcome charge, the cap applied in period order.

    The single place the charge is computed: :func:`apply_terms` turns it into money and
    :func:`credit_breakdown` explains it, so the two cannot disagree.
    """
    used: dict[str, Decimal] = defaultdict(Decimal)
    out: dict[str, Charge] = {}
    for p in sorted(periods, key=lambda r: r.period):
        source = terms.source_for(p.beyond_tolerance)
        units = p.vendor_billed if source == "vendor" else p.buyer_counted
        uncapped = Decimal(units) * terms.unit_value
        charge = uncapped
        if terms.annual_cap is not None:
            year = p.period[:4]
            room = max(terms.annual_cap - used[year], Decimal(0))
            charge = min(charge, room)
            used[year] += charge
        out[p.period] = Charge(source, units, uncapped, charge)
    return out


def apply_terms(terms: Terms, periods: Sequence[PeriodResult]) -> list[PeriodResult]:
    """Amount billed, amount due and credit per period, in period order.

    * units due: the vendor's billed entities (a duplicate line is never due) or the buyer's
      count, by the billing-source rule;
    * outcome charge: units x unit price x (1 - discount), then the annual cap — cumulative over
      the periods of a calendar year, in order; the platform fee is outside the cap;
    * amount billed: the invoice's amounts (or, without amounts, its lines at the unit price),
      plus the platform fee, which invoices list apart from the outcome lines;
    * credit: amount billed - amount due (negative when the vendor under-billed).
    """
    by_period = charges(terms, periods)
    out: list[PeriodResult] = []
    for p in sorted(periods, key=lambda r: r.period):
        c = by_period[p.period]
        due = terms.round(c.charge + terms.platform_fee)
        billed = terms.round(_billed_lines(terms, p) + terms.platform_fee)
        out.append(
            replace(
                p,
                billing_source=c.source,
                amount_billed=billed,
                amount_due=due,
                credit=billed - due,
            )
        )
    return out


def _billed_lines(terms: Terms, p: PeriodResult) -> Decimal:
    """The invoice's outcome lines: their amounts, or without amounts the lines at the price."""
    if p.amount_billed is not None:
        return p.amount_billed
    return Decimal(p.vendor_lines) * terms.unit_price


@dataclass(frozen=True)
class CreditItem:
    """One reason a period's credit is what it is: entities (or lines) and their money.

    ``kind`` is ``cell`` (``name`` a disputed cell), ``reason`` (``name`` the first failing
    condition of billed entities that are not outcomes, or ``no_anchor``), ``extra_lines``
    (further lines of entities billed more than once), ``counted`` (``name`` ``buyer_only``,
    ``duplicate`` or ``period_mismatch``: entities counted in the period that its billed
    entities do not cover; negative money), ``price`` (the invoice's amounts against the
    contract's unit price less the discount), ``cap`` (the annual cap) or ``rounding``.
    """

    kind: str
    name: str
    entities: int
    amount: Decimal


#: The cells a billed entity can be credited for, in the order the waterfall takes them.
CREDITED_CELLS: Final[tuple[str, ...]] = ("unknown", "duplicate", "pending", "period_mismatch")


def credit_breakdown(
    terms: Terms,
    periods: Sequence[PeriodResult],
    reasons: Mapping[str, Mapping[str, int]] | None = None,
    counted: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, list[CreditItem]]:
    """Each period's credit split by cell and reason; the items add up to the credit exactly.

    ``periods`` are a reconciliation's periods under these terms (with their credit);
    ``reasons`` maps a period to its vendor_only entities by first failing condition, and
    ``counted`` maps a period to the entities counted in it that were billed twice or in
    another period (keys ``duplicate`` and ``period_mismatch``) — both read from the cell
    table; without them vendor_only and those counted entities are one item each.

    When the buyer's count is the billing source, every entity billed but not counted is
    credited at the unit value (price less discount) and every counted entity not billed in the
    period is charged back; when the vendor's count is, only the further lines of entities
    billed more than once are. The difference between the invoice's amounts and the lines at the
    unit value, the cap and the rounding to the minor unit are items of their own, so the money
    per item is exact and the items add up to the credit to the cent.
    """
    by_period = charges(terms, periods)
    uv = terms.unit_value
    out: dict[str, list[CreditItem]] = {}
    for p in periods:
        if p.credit is None or p.period not in by_period:
            continue
        c = by_period[p.period]
        buyer = c.source == "buyer"

        def item(
            kind: str, name: str, n: int, units: int | None = None, buyer: bool = buyer
        ) -> CreditItem:
            money = Decimal(n if units is None else units) * uv if buyer else Decimal(0)
            return CreditItem(kind, name, n, terms.round(money))

        items: list[CreditItem] = []
        for cell in ("unknown", "duplicate", "pending"):
            if getattr(p, cell):
                items.append(item("cell", cell, getattr(p, cell)))
        split = dict((reasons or {}).get(p.period, {}))
        if p.vendor_only and sum(split.values()) == p.vendor_only:
            items += [item("reason", r, n) for r, n in split.items() if n]
        elif p.vendor_only:
            items.append(item("cell", "vendor_only", p.vendor_only))
        if p.period_mismatch:
            items.append(item("cell", "period_mismatch", p.period_mismatch))
        extra = p.vendor_lines - p.vendor_billed
        if extra:
            items.append(CreditItem("extra_lines", "", extra, terms.round(Decimal(extra) * uv)))
        if p.buyer_only:
            items.append(item("counted", "buyer_only", p.buyer_only, -p.buyer_only))
        others = p.buyer_counted - p.agreed - p.buyer_only
        here = dict((counted or {}).get(p.period, {}))
        if others and sum(here.values()) == others:
            for name in ("duplicate", "period_mismatch"):
                if here.get(name):
                    items.append(item("counted", name, here[name], -here[name]))
        elif others:
            items.append(item("counted", "elsewhere", others, -others))
        billed_lines = (p.amount_billed or Decimal(0)) - terms.platform_fee
        price = terms.round(billed_lines - Decimal(p.vendor_lines) * uv)
        if price:
            items.append(CreditItem("price", "", p.vendor_lines, price))
        cap = terms.round(c.uncapped - c.charge)
        if cap:
            items.append(CreditItem("cap", "", 0, cap))
        rest = p.credit - sum((i.amount for i in items), Decimal(0))
        if rest:
            items.append(CreditItem("rounding", "", 0, rest))
        out[p.period] = items
    return out


# ----------------------------------------------------------------------------- loading
_KEYS: Final[tuple[str, ...]] = (
    "truecount_terms", "currency", "unit_price", "tolerance", "billing_source", "platform_fee",
    "annual_cap", "discount", "minor_units", "letter",
)  # fmt: skip

_FIELD_TO_KEY: Final[dict[str, str]] = {"tolerance_pct": "tolerance", "discount_pct": "discount"}


def parse_terms(text: str, file: str = "<string>") -> Terms:
    """Validate terms YAML; every problem names file, line and key."""
    root, key_lines = parse_with_lines(text, file, TermsError)
    if not isinstance(root, dict):
        raise TermsError(
            Problem(
                "terms must be a mapping of keys",
                Location(file=file, line=1),
                "start with 'truecount_terms: 1'",
            )
        )
    lines: dict[str, int] = {str(k[0]): v for k, v in key_lines.items() if len(k) == 1}
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in root.items():
        if key not in _KEYS:
            problems.append(
                Problem(
                    f"unknown key '{key}'",
                    Location(file=file, line=lines.get(key), key=key),
                    suggest(key, _KEYS) or f"valid keys: {', '.join(_KEYS)}",
                )
            )
            continue
        data[key] = value
    try:
        terms = Terms.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = [str(x) for x in err["loc"]]
            where = _FIELD_TO_KEY.get(loc[0], loc[0]) if loc else None
            message = str(err["msg"]).removeprefix("Value error, ")
            if where == "letter" and len(loc) > 1:
                problems.append(_letter_problem(err, loc[1], file, key_lines))
                continue
            if err["type"] == "missing":
                message = "required key is missing"
                if where == "truecount_terms":
                    message += "; add 'truecount_terms: 1' as the first line"
            elif err["type"] == "literal_error":
                message = f"{message}, not {err.get('input')!r}"
            problems.append(
                Problem(
                    message,
                    Location(
                        file=file, line=lines.get(where or "", 1 if where else None), key=where
                    ),
                )
            )
    else:
        if terms.currency not in MINOR_UNITS and terms.minor_units is None:
            problems.append(
                Problem(
                    f"'{terms.currency}' is not a currency of ISO 4217's list, so its minor "
                    "unit is not known",
                    Location(file=file, line=lines.get("currency"), key="currency"),
                    suggest(terms.currency, MINOR_UNITS)
                    or "check the code; for a code this version does not list, give its "
                    "decimals with minor_units (e.g. minor_units: 2)",
                )
            )
    if problems:
        problems.sort(key=lambda p: p.location.line or 0)
        raise TermsError(problems)
    return terms


def _letter_problem(
    err: Mapping[str, Any], key: str, file: str, key_lines: Mapping[tuple[Any, ...], int]
) -> Problem:
    """A problem inside the ``letter:`` section, at the line of its own key."""
    line = key_lines.get(("letter", key), key_lines.get(("letter",)))
    where = Location(file=file, line=line, key=f"letter.{key}")
    if err["type"] == "extra_forbidden":
        return Problem(
            f"unknown key '{key}' in letter",
            where,
            suggest(key, LETTER_KEYS) or f"valid keys: {', '.join(LETTER_KEYS)}",
        )
    return Problem(str(err["msg"]).removeprefix("Value error, "), where)


def load_terms(path: str | Path) -> Terms:
    """Read and validate a terms file.

    The bytes go through the shared YAML reader so that a missing file, a folder, a size past
    the limit or text that is not UTF-8 is one :class:`TermsError` naming the file, exactly as
    for definitions and mappings.
    """
    return parse_terms(read_text(Path(path), TermsError), str(path))
