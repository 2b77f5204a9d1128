"""The outcome definition as frozen, validated models (DESIGN §6, docs/definition.md).

Validation happens once, at the YAML boundary: after :func:`truecount.definition.load` returns,
every window is a number of seconds, every ``where`` has parsed, every condition has exactly one
form. The compiler can then trust the model and stay free of checks.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zoneinfo
from functools import cached_property
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from truecount.definition.duration import format_duration, parse_duration
from truecount.definition.where import Expr, parse_where
from truecount.errors import WhereError

IDENTIFIER_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FORMAT_VERSION: Final[int] = 1

#: A window length in seconds; written in YAML as ``14d`` and dumped back the same way.
Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]

#: The largest magnitude a number in a definition may have. A threshold or quantity beyond it
#: is a typo, and past about 1e308 it is not a number at all (YAML's 1e400 reads as infinity).
MAX_NUMBER: Final[float] = 1e15


def _bounded(value: float) -> float:
    if value != value or abs(value) > MAX_NUMBER:  # NaN, infinity, or absurdly large
        shown = (
            "a number too large to hold (it reads as infinity)"
            if value == value and abs(value) == float("inf")
            else repr(value)
        )
        raise ValueError(
            f"{shown} is not a usable number here; numbers in a definition are finite and at "
            f"most {MAX_NUMBER:,.0f} in size"
        )
    return value


#: A number in exponent form without a dot or an exponent sign (``1e3``, ``2.5E6``): YAML 1.2
#: reads it as a number, PyYAML (YAML 1.1) as text.
_EXPONENT_RE: Final = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+")


def _exponent_number(value: object) -> object:
    """``1e3`` as the number YAML 1.2 reads; every other text is left for strict refusal."""
    if isinstance(value, str) and _EXPONENT_RE.fullmatch(value.strip()):
        return float(value)  # 1e400 becomes infinity, which _bounded explains
    return value


#: A threshold or fixed quantity: a finite float of sane size. Strict: YAML's ``true`` and a
#: quoted ``"3"`` are refused, not read as 1 and 3 (a whole number is still read as a float).
Number = Annotated[StrictFloat, BeforeValidator(_exponent_number), AfterValidator(_bounded)]

Pick = Literal["first", "last", "each"]
IfNoData = Literal["fail", "pass", "exclude"]
Every = Literal["day", "week", "month", "quarter", "year"]
AggregateFn = Literal["min", "max", "sum", "avg", "first", "last"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _check_where(text: str | None) -> str | None:
    """Parse at validation time so a bad expression is reported at its YAML line."""
    if text is not None:
        try:
            parse_where(text)
        except WhereError as exc:
            problem = exc.problems[0]
            hint = f" ({problem.hint})" if problem.hint else ""
            raise ValueError(problem.message + hint) from None
    return text


def _check_field(text: str) -> str:
    if text == "value" or (text.startswith("attrs.") and len(text) > len("attrs.")):
        return text
    raise ValueError(f"'{text}' is not a numeric field; use 'value' or 'attrs.<key>'")


class EventFilter(_Model):
    """Which events a condition or anchor looks at: a type, optionally an actor and a where."""

    type: str = Field(min_length=1)
    actor: str | None = None
    where: str | None = None

    _where = field_validator("where")(_check_where)

    @cached_property
    def where_expr(self) -> Expr | None:
        return parse_where(self.where) if self.where is not None else None


class Window(_Model):
    """Where, relative to the anchor, a condition looks. Both ends are inclusive."""

    within: Duration | None = None
    before: Duration | None = None
    lifetime: StrictBool | None = None

    @model_validator(mode="after")
    def _one_window(self) -> Window:
        given = [k for k in ("within", "before", "lifetime") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one window, not {' and '.join(given)}")
        if self.lifetime is False:
            raise ValueError("lifetime: false means nothing; give within or before instead")
        return self

    @property
    def kind(self) -> Literal["within", "before", "lifetime"]:
        if self.within is not None:
            return "within"
        if self.before is not None:
            return "before"
        return "lifetime"


class Selector(EventFilter, Window):
    """An event filter plus a window: the events one leaf condition sees."""


class Comparison(_Model):
    """Comparisons a count or aggregate must satisfy; all that are given must hold."""

    at_least: Number | None = None
    at_most: Number | None = None
    more_than: Number | None = None
    less_than: Number | None = None
    equals: Number | None = None

    #: What no value can do when the comparisons contradict each other (for the message).
    NEVER: ClassVar[str] = "no number passes them all"

    @model_validator(mode="after")
    def _some_comparison(self) -> Comparison:
        if not self.comparisons():
            raise ValueError(
                "needs a comparison: at_least, at_most, more_than, less_than or equals"
            )
        if not self._can_hold():
            given = " and ".join(f"{k}: {_shown(v)}" for k, v in self._given())
            raise ValueError(
                f"{given} can never all hold ({self.NEVER}), so the condition would fail for "
                "every candidate; check the numbers (every comparison given must hold at once)"
            )
        return self

    def comparisons(self) -> list[tuple[str, float]]:
        ops = {"at_least": ">=", "at_most": "<=", "more_than": ">", "less_than": "<", "equals": "="}
        return [(op, v) for key, op in ops.items() if (v := getattr(self, key)) is not None]

    def _given(self) -> list[tuple[str, float]]:
        keys = ("at_least", "at_most", "more_than", "less_than", "equals")
        return [(k, v) for k in keys if (v := getattr(self, k)) is not None]

    def _can_hold(self) -> bool:
        """Whether some number passes every comparison given (any real number here)."""
        lows = [v for v in (self.at_least, self.more_than, self.equals) if v is not None]
        highs = [v for v in (self.at_most, self.less_than, self.equals) if v is not None]
        low, high = max(lows, default=-math.inf), min(highs, default=math.inf)
        if low != high:
            return low < high  # an open interval between two numbers is never empty
        return low not in (self.more_than, self.less_than)  # one number, if it is allowed


def _shown(value: float) -> str:
    """A threshold as written: ``5`` for 5.0, ``2.5`` for 2.5."""
    return str(int(value)) if value.is_integer() else repr(value)


class CountSpec(Selector, Comparison):
    """``count``: how many matching events are in the window."""

    NEVER: ClassVar[str] = "no count, a whole number 0 or more, passes them all"

    @field_validator("at_least", "at_most", "more_than", "less_than", "equals")
    @classmethod
    def _not_negative(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and value < 0:
            always = info.field_name in ("at_least", "more_than")
            raise ValueError(
                f"{_shown(value)} is below zero, and a count is 0 or more, so "
                f"{info.field_name}: {_shown(value)} would {'always' if always else 'never'} "
                "hold; give 0 or a larger number"
            )
        return value

    def _can_hold(self) -> bool:
        """Whether some count (a whole number, 0 or more) passes every comparison given."""
        low, high = 0, math.inf
        for value, step in ((self.at_least, 0), (self.more_than, 1)):
            if value is not None:  # the least count that passes
                low = max(low, math.floor(value) + step if step else math.ceil(value))
        for value, step in ((self.at_most, 0), (self.less_than, 1)):
            if value is not None:  # the largest count that passes
                high = min(high, math.ceil(value) - step if step else math.floor(value))
        if self.equals is not None:
            return self.equals.is_integer() and low <= self.equals <= high
        return low <= high


class AggregateSpec(Selector, Comparison):
    """``aggregate``: min / max / sum / avg / first / last of a field over matching events."""

    fn: AggregateFn
    field: str = "value"

    _field = field_validator("field")(_check_field)


class Condition(_Model):
    """One condition: exactly one form, plus ``if_no_data`` on leaf forms."""

    exists: Selector | None = None
    absent: Selector | None = None
    count: CountSpec | None = None
    aggregate: AggregateSpec | None = None
    all_: list[Condition] | None = Field(default=None, alias="all", min_length=1)
    any_: list[Condition] | None = Field(default=None, alias="any", min_length=1)
    not_: Condition | None = Field(default=None, alias="not")
    if_no_data: IfNoData | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        forms = [name for name in FORMS if getattr(self, FORMS[name]) is not None]
        if len(forms) != 1:
            got = ", ".join(forms) if forms else "none"
            raise ValueError(f"a condition needs exactly one of {', '.join(FORMS)} (got {got})")
        if self.if_no_data is not None and forms[0] in {"all", "any", "not"}:
            raise ValueError(
                f"if_no_data belongs on a leaf condition (exists, absent, count, aggregate), "
                f"not on '{forms[0]}'"
            )
        return self

    @property
    def form(self) -> str:
        return next(name for name, attr in FORMS.items() if getattr(self, attr) is not None)

    @property
    def leaf(self) -> Selector | None:
        """The selector of a leaf form, or None for a combinator."""
        for attr in ("exists", "absent", "count", "aggregate"):
            spec = getattr(self, attr)
            if spec is not None:
                return spec  # type: ignore[no-any-return]
        return None

    @property
    def children(self) -> list[Condition]:
        if self.all_ is not None:
            return self.all_
        if self.any_ is not None:
            return self.any_
        if self.not_ is not None:
            return [self.not_]
        return []


FORMS: Final[dict[str, str]] = {
    "exists": "exists",
    "absent": "absent",
    "count": "count",
    "aggregate": "aggregate",
    "all": "all_",
    "any": "any_",
    "not": "not_",
}


class Anchor(EventFilter):
    """The event that makes an entity a candidate outcome and dates it."""

    pick: Pick = "first"


class Period(_Model):
    """The billing period of an outcome, read on the wall clock of ``timezone``."""

    every: Every = "month"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone '{value}'; use an IANA name such as UTC, Europe/Berlin "
                "or America/New_York"
            ) from None
        return value


class QuantityAgg(Selector):
    """The selector of a quantity aggregate; ``field`` is ignored by ``count``."""

    field: str = "value"

    _field = field_validator("field")(_check_field)


class QuantitySpec(_Model):
    """A numeric quantity: one aggregate, optionally minus another quantity."""

    sum: QuantityAgg | None = None
    count: QuantityAgg | None = None
    min: QuantityAgg | None = None
    max: QuantityAgg | None = None
    avg: QuantityAgg | None = None
    minus: Quantity | None = None

    @model_validator(mode="after")
    def _one_aggregate(self) -> QuantitySpec:
        given = [k for k in QUANTITY_FNS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a quantity needs exactly one of {', '.join(QUANTITY_FNS)} "
                f"(got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def fn(self) -> str:
        return next(k for k in QUANTITY_FNS if getattr(self, k) is not None)

    @property
    def agg(self) -> QuantityAgg:
        spec = getattr(self, self.fn)
        assert isinstance(spec, QuantityAgg)
        return spec


QUANTITY_FNS: Final[tuple[str, ...]] = ("sum", "count", "min", "max", "avg")
Quantity = Number | QuantitySpec


class Definition(_Model):
    """A buyer's outcome definition. Identity: :attr:`sha256` of :attr:`canonical_text`."""

    truecount: Literal[1]
    name: str
    version: StrictInt = Field(ge=1)
    description: str = ""
    unit: str = "outcome"
    period: Period = Period()
    anchor: Anchor
    conditions: dict[str, Condition] = Field(default_factory=dict)
    quantity: Quantity = 1.0

    @field_validator("truecount", mode="before")
    @classmethod
    def _format_number(cls, value: object) -> object:
        if isinstance(value, bool | float):  # Literal[1] alone takes true and 1.0 for 1
            raise ValueError(f"{value!r} is not allowed; expected 1 (the format version)")
        return value

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not IDENTIFIER_RE.match(value):
            raise ValueError(f"'{value}' is not a name; use letters, digits and underscores")
        return value

    @field_validator("conditions")
    @classmethod
    def _condition_names(cls, value: dict[str, Condition]) -> dict[str, Condition]:
        for name in value:
            if not IDENTIFIER_RE.match(name):
                raise ValueError(
                    f"condition name '{name}' is not an identifier; "
                    "use letters, digits and underscores"
                )
        return value

    @field_validator("quantity")
    @classmethod
    def _finite_quantity(cls, value: Quantity) -> Quantity:
        if isinstance(value, float) and value != value:  # NaN
            raise ValueError("quantity must be a number or an aggregate")
        return value

    # ----------------------------------------------------------------- identity
    def canonical(self) -> dict[str, Any]:
        """The definition as plain data with defaults filled and where expressions normalised."""
        data = _normalise_where(self.model_dump(mode="json", by_alias=True, exclude_none=True))
        assert isinstance(data, dict)
        return data

    @cached_property
    def canonical_text(self) -> str:
        """Sorted-key, whitespace-free JSON of :meth:`canonical`: the bytes that are hashed."""
        return json.dumps(
            self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_text.encode("utf-8")).hexdigest()

    def identity(self) -> dict[str, Any]:
        """Name, version and hash: how every JSON output names the definition it used."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    # ----------------------------------------------------------------- windows
    def longest_within(self) -> int:
        """Seconds after the anchor until every ``within`` window has closed (0 if none)."""
        longest = 0
        for selector in self.selectors():
            if selector.within is not None:
                longest = max(longest, selector.within)
        return longest

    def selectors(self) -> list[Selector]:
        """Every leaf selector in conditions and quantity, in definition order."""
        found: list[Selector] = []

        def walk(cond: Condition) -> None:
            if cond.leaf is not None:
                found.append(cond.leaf)
            for child in cond.children:
                walk(child)

        for cond in self.conditions.values():
            walk(cond)
        q = self.quantity
        while isinstance(q, QuantitySpec):
            found.append(q.agg)
            q = q.minus if q.minus is not None else 1.0
        return found


def _normalise_where(data: object) -> object:
    if isinstance(data, dict):
        out: dict[str, object] = {}
        for key, value in data.items():
            if key == "where" and isinstance(value, str):
                out[key] = str(parse_where(value))
            else:
                out[key] = _normalise_where(value)
        return out
    if isinstance(data, list):
        return [_normalise_where(v) for v in data]
    return data


Condition.model_rebuild()
QuantitySpec.model_rebuild()
Definition.model_rebuild()
