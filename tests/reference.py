"""An independent reference evaluator for outcome definitions, written from docs/definition.md.

The engine compiles a definition to SQL; this module evaluates the same definition with plain
Python loops over one entity at a time. It shares no code with the engine (not even the
where-expression parser), so a test that compares the two catches a mistake in either. It is
meant to be *obviously* correct rather than fast: it runs on the small logs the tests build.

Readings chosen where docs/definition.md leaves room (each is listed in the test report):

* ``seq`` nulls sort after every non-null ``seq`` at the same instant (SQL ``NULLS LAST``).
* ``first`` / ``last`` aggregates, like ``min`` / ``max`` / ``sum`` / ``avg``, ignore null
  fields: they take the first / last non-null value in event order. The doc says the aggregate is
  null "with no matching events", which only holds for every function if nulls are skipped.
* ``if_no_data`` counts the anchor event itself as data when its type is the condition's type.
* The anchor event is also left out of quantity aggregates, as it is for conditions.
* An ``if_no_data: exclude`` leaf nested inside ``any`` / ``all`` / ``not`` excludes the whole
  candidate, and the top-level condition holding it reads ``None``.
* The reason of an excluded candidate is the list of top-level conditions that excluded it.
* Where expressions use SQL three-valued logic: ``not (value >= 4)`` is unknown (no match)
  when ``value`` is null; an ``attrs`` value that is not a number compares as null with a number.
* An event with no actor may be by the actor a leaf names: it is a match of an ``absent`` leaf
  (of an ``exists`` under an odd number of ``not``), so it never makes "no such event" pass, and
  not a match otherwise (it never proves that the actor acted). The same holds for a ``where``
  that reads ``actor``: unknown on an event without an actor, it counts as true there.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa

# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


#: Canonical events as the tests build them (the columns of DESIGN §5, Arrow types).
SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("entity_id", pa.string()),
        ("ts", pa.timestamp("us")),
        ("type", pa.string()),
        ("actor", pa.string()),
        ("value", pa.float64()),
        ("attrs", pa.string()),
        ("source", pa.string()),
        ("recorded_at", pa.timestamp("us")),
        ("seq", pa.int64()),
    ]
)


@dataclass(frozen=True)
class Event:
    """One canonical event, with nulls as ``None`` and ``attrs`` already decoded."""

    event_id: str
    entity_id: str
    ts: datetime
    type: str
    actor: str | None
    value: float | None
    attrs: Mapping[str, Any] | None
    seq: int | None

    def order_key(self) -> tuple[datetime, bool, int, str]:
        """Order by ts, then seq (nulls last), then event_id: never by file order."""
        return (self.ts, self.seq is None, self.seq or 0, self.event_id)


def _is_null(x: Any) -> bool:
    if x is None:
        return True
    if x is pd.NaT:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _to_datetime(x: Any) -> datetime:
    """A naive UTC ``datetime`` from whatever pandas hands back."""
    t = pd.Timestamp(x)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.to_pydatetime()


def events_from_frame(frame: pd.DataFrame) -> list[Event]:
    """Decode a canonical events frame; missing optional columns read as null."""
    out: list[Event] = []
    for rec in frame.to_dict("records"):
        attrs_raw = rec.get("attrs")
        attrs: Mapping[str, Any] | None
        if _is_null(attrs_raw):
            attrs = None
        elif isinstance(attrs_raw, Mapping):
            attrs = attrs_raw
        else:
            decoded = json.loads(str(attrs_raw))
            attrs = decoded if isinstance(decoded, Mapping) else None
        seq_raw = rec.get("seq")
        value_raw = rec.get("value")
        actor_raw = rec.get("actor")
        out.append(
            Event(
                event_id=str(rec["event_id"]),
                entity_id=str(rec["entity_id"]),
                ts=_to_datetime(rec["ts"]),
                type=str(rec["type"]),
                actor=None if _is_null(actor_raw) else str(actor_raw),
                value=None if _is_null(value_raw) else float(value_raw),  # type: ignore[arg-type]
                attrs=attrs,
                seq=None if _is_null(seq_raw) else int(seq_raw),  # type: ignore[arg-type]
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Where expressions: a separate tokenizer, recursive-descent parser and 3-valued evaluator
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>\d+(?:\.\d+)?)
      | (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<op>==|!=|<>|<=|>=|=|<|>|\(|\)|,|-)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?)
    )""",
    re.VERBOSE,
)

_KEYWORDS = {"and", "or", "not", "in", "is", "null", "between", "true", "false"}


class WhereSyntaxError(ValueError):
    """The reference's own parse error (the tests only feed it valid expressions)."""


@dataclass(frozen=True)
class Field:
    name: str  # 'value', 'actor', 'type' or 'attrs.<key>'


@dataclass(frozen=True)
class Literal:
    value: float | str | bool | None


Operand = Field | Literal


@dataclass(frozen=True)
class Compare:
    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class IsNull:
    operand: Operand
    negated: bool


@dataclass(frozen=True)
class InList:
    operand: Operand
    items: tuple[Operand, ...]
    negated: bool


@dataclass(frozen=True)
class Between:
    operand: Operand
    low: Operand
    high: Operand
    negated: bool


@dataclass(frozen=True)
class Logic:
    op: str  # 'and' | 'or'
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    inner: Node


Node = Compare | IsNull | InList | Between | Logic | Not


def _tokenize(text: str) -> list[tuple[str, str]]:
    pos = 0
    tokens: list[tuple[str, str]] = []
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise WhereSyntaxError(f"unexpected character at {pos} in {text!r}")
        kind = m.lastgroup
        assert kind is not None
        tok = m.group(kind)
        if kind == "word" and tok.lower() in _KEYWORDS:
            tokens.append(("kw", tok.lower()))
        else:
            tokens.append((kind, tok))
        pos = m.end()
    return tokens


class _Parser:
    """Precedence, loosest first: or, and, not, predicate."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.text = text

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def accept(self, kind: str, tok: str | None = None) -> bool:
        t = self.peek()
        if t is not None and t[0] == kind and (tok is None or t[1] == tok):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, tok: str | None = None) -> str:
        t = self.peek()
        if t is None or t[0] != kind or (tok is not None and t[1] != tok):
            raise WhereSyntaxError(f"expected {tok or kind} at token {self.i} in {self.text!r}")
        self.i += 1
        return t[1]

    def parse(self) -> Node:
        node = self.or_()
        if self.peek() is not None:
            raise WhereSyntaxError(f"trailing input at token {self.i} in {self.text!r}")
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.accept("kw", "or"):
            node = Logic("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.accept("kw", "and"):
            node = Logic("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.accept("kw", "not"):
            return Not(self.not_())
        return self.predicate()

    def predicate(self) -> Node:
        if self.accept("op", "("):
            node = self.or_()
            self.expect("op", ")")
            return node
        left = self.operand()
        if self.accept("kw", "is"):
            negated = self.accept("kw", "not")
            self.expect("kw", "null")
            return IsNull(left, negated)
        negated = self.accept("kw", "not")
        if self.accept("kw", "in"):
            self.expect("op", "(")
            items = [self.operand()]
            while self.accept("op", ","):
                items.append(self.operand())
            self.expect("op", ")")
            return InList(left, tuple(items), negated)
        if self.accept("kw", "between"):
            low = self.operand()
            self.expect("kw", "and")
            high = self.operand()
            return Between(left, low, high, negated)
        if negated:
            raise WhereSyntaxError(f"expected 'in' or 'between' after 'not' in {self.text!r}")
        t = self.peek()
        if t is None or t[0] != "op" or t[1] not in {"==", "=", "!=", "<>", "<", "<=", ">", ">="}:
            raise WhereSyntaxError(f"expected a comparison at token {self.i} in {self.text!r}")
        self.i += 1
        op = {"=": "==", "<>": "!="}.get(t[1], t[1])
        return Compare(op, left, self.operand())

    def operand(self) -> Operand:
        t = self.peek()
        if t is None:
            raise WhereSyntaxError(f"unexpected end of {self.text!r}")
        kind, tok = t
        self.i += 1
        if kind == "op" and tok == "-":
            return Literal(-float(self.expect("num")))
        if kind == "num":
            return Literal(float(tok))
        if kind == "str":
            quote = tok[0]
            return Literal(tok[1:-1].replace(quote * 2, quote))
        if kind == "kw" and tok in {"true", "false"}:
            return Literal(tok == "true")
        if kind == "kw" and tok == "null":
            return Literal(None)
        if kind == "word" and (tok in {"value", "actor", "type"} or tok.startswith("attrs.")):
            return Field(tok)
        raise WhereSyntaxError(f"unexpected {tok!r} in {self.text!r}")


def parse_where(text: str) -> Node:
    """Parse one where expression into the reference's own syntax tree."""
    return _Parser(text).parse()


def _raw(operand: Operand, ev: Event) -> Any:
    if isinstance(operand, Literal):
        return operand.value
    if operand.name == "value":
        return ev.value
    if operand.name == "actor":
        return ev.actor
    if operand.name == "type":
        return ev.type
    key = operand.name.split(".", 1)[1]
    return None if ev.attrs is None else ev.attrs.get(key)


def as_number(x: Any) -> float | None:
    """A JSON value read as a number: numbers and numeric text; anything else is null."""
    if x is None or isinstance(x, bool):
        return None
    if isinstance(x, int | float):
        return None if isinstance(x, float) and math.isnan(x) else float(x)
    if isinstance(x, str):
        try:
            f = float(x.strip())
        except ValueError:
            return None
        return None if math.isnan(f) else f
    return None


def _as_text(x: Any) -> str | None:
    if x is None:
        return None
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, str):
        return x
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return str(int(x)) if x.is_integer() else repr(x)
    return json.dumps(x, separators=(",", ":"))


def _numeric_mode(operands: Iterable[Operand]) -> bool:
    """Compare as numbers when any side is a number literal or the numeric field ``value``."""
    for o in operands:
        if isinstance(o, Literal) and isinstance(o.value, float):
            return True
        if isinstance(o, Field) and o.name == "value":
            return True
    return False


def _cmp(op: str, a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    if op == ">=":
        return bool(a >= b)
    raise AssertionError(op)


def _and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _not(a: bool | None) -> bool | None:
    return None if a is None else not a


def eval_where(node: Node, ev: Event) -> bool | None:
    """SQL three-valued evaluation of a where tree on one event (None = unknown)."""
    if isinstance(node, Logic):
        left, right = eval_where(node.left, ev), eval_where(node.right, ev)
        return _and(left, right) if node.op == "and" else _or(left, right)
    if isinstance(node, Not):
        return _not(eval_where(node.inner, ev))
    if isinstance(node, IsNull):
        raw = _raw(node.operand, ev)
        return (raw is not None) if node.negated else (raw is None)
    operands: list[Operand]
    if isinstance(node, Compare):
        operands = [node.left, node.right]
    elif isinstance(node, InList):
        operands = [node.operand, *node.items]
    else:
        operands = [node.operand, node.low, node.high]
    conv: Callable[[Any], Any] = as_number if _numeric_mode(operands) else _as_text
    vals = [conv(_raw(o, ev)) for o in operands]
    if isinstance(node, Compare):
        return _cmp(node.op, vals[0], vals[1])
    if isinstance(node, InList):
        result: bool | None = False
        for item in vals[1:]:
            result = _or(result, _cmp("==", vals[0], item))
        return _not(result) if node.negated else result
    result = _and(_cmp(">=", vals[0], vals[1]), _cmp("<=", vals[0], vals[2]))
    return _not(result) if node.negated else result


def _reads_actor(node: Node) -> bool:
    """Whether a where expression reads the ``actor`` field anywhere."""
    return any(isinstance(part, Field) and part.name == "actor" for part in _walk(node))


def _walk(node: Any) -> list[Any]:
    """Every node and operand below ``node`` (dataclass fields, recursively)."""
    out = [node]
    for value in getattr(node, "__dict__", {}).values():
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if hasattr(item, "__dict__"):
                out.extend(_walk(item))
    return out


def where_matches(text: str | None, ev: Event) -> bool:
    """An event matches only when the expression is true (unknown is no match)."""
    if text is None:
        return True
    return eval_where(parse_where(text), ev) is True


# --------------------------------------------------------------------------------------------
# Definitions
# --------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^([1-9][0-9]*)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "at_least": lambda x, n: x >= n,
    "at_most": lambda x, n: x <= n,
    "more_than": lambda x, n: x > n,
    "less_than": lambda x, n: x < n,
    "equals": lambda x, n: x == n,
}
LEAF_FORMS = ("exists", "absent", "count", "aggregate")
QUANTITY_FNS = ("sum", "count", "min", "max", "avg")


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(str(text).strip())
    if m is None:
        raise ValueError(f"not a duration: {text!r}")
    return timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)])


def _window_bounds(
    spec: Mapping[str, Any], anchor_ts: datetime
) -> tuple[datetime | None, datetime | None]:
    """(low, high), both inclusive; None means unbounded (as-of still applies)."""
    if "within" in spec:
        return anchor_ts, anchor_ts + parse_duration(spec["within"])
    if "before" in spec:
        return anchor_ts - parse_duration(spec["before"]), anchor_ts
    return None, None


def _matching(
    spec: Mapping[str, Any], anchor: Event, visible: Sequence[Event], unknown_actor: bool = False
) -> list[Event]:
    """Events of the entity that pass the filter and window, the anchor itself left out.

    ``unknown_actor``: an event without an actor passes an actor filter (it may be theirs)."""
    low, high = _window_bounds(spec, anchor.ts)
    out = []
    for ev in visible:
        if ev.event_id == anchor.event_id:
            continue
        if ev.type != spec["type"]:
            continue
        maybe_theirs = unknown_actor and ev.actor is None
        if spec.get("actor") is not None and ev.actor != spec["actor"] and not maybe_theirs:
            continue
        where = spec.get("where")
        if maybe_theirs and where is not None and _reads_actor(parse_where(where)):
            if eval_where(parse_where(where), ev) is False:
                continue
        elif not where_matches(where, ev):
            continue
        if low is not None and ev.ts < low:
            continue
        if high is not None and ev.ts > high:
            continue
        out.append(ev)
    return sorted(out, key=Event.order_key)


def _field(ev: Event, field: str) -> float | None:
    if field == "value":
        return ev.value
    key = field.split(".", 1)[1]
    return as_number(None if ev.attrs is None else ev.attrs.get(key))


def _aggregate(fn: str, events: Sequence[Event], field: str | None) -> float | None:
    if fn == "count":
        return float(len(events))
    assert field is not None
    vals = [v for v in (_field(e, field) for e in events) if v is not None]  # in event order
    if not vals:
        return None
    if fn == "first":
        return vals[0]
    if fn == "last":
        return vals[-1]
    if fn == "sum":
        return float(sum(vals))
    if fn == "min":
        return min(vals)
    if fn == "max":
        return max(vals)
    if fn == "avg":
        return sum(vals) / len(vals)
    raise AssertionError(fn)


def _compare_all(x: float | None, spec: Mapping[str, Any]) -> bool:
    if x is None:
        return False
    return all(COMPARISONS[k](x, float(spec[k])) for k in COMPARISONS if k in spec)


def _leaf_form(cond: Mapping[str, Any]) -> str | None:
    for form in LEAF_FORMS:
        if form in cond:
            return form
    return None


def eval_condition(
    cond: Mapping[str, Any], anchor: Event, visible: Sequence[Event], negated: bool = False
) -> bool | None:
    """True / False, or None when an ``if_no_data: exclude`` leaf inside had no data.
    ``negated``: the condition sits under an odd number of ``not``."""
    if "all" in cond:
        parts = [eval_condition(c, anchor, visible, negated) for c in cond["all"]]
        return None if None in parts else all(parts)
    if "any" in cond:
        parts = [eval_condition(c, anchor, visible, negated) for c in cond["any"]]
        return None if None in parts else any(parts)
    if "not" in cond:
        inner = eval_condition(cond["not"], anchor, visible, not negated)
        return None if inner is None else not inner
    form = _leaf_form(cond)
    assert form is not None, cond
    spec = cond[form]
    no_data = not any(ev.type == spec["type"] for ev in visible)
    if no_data and cond.get("if_no_data") is not None:
        return {"fail": False, "pass": True, "exclude": None}[cond["if_no_data"]]
    # a match that would make the condition fail: an unknown actor may be one
    cautious = (form == "absent" and not negated) or (form == "exists" and negated)
    events = _matching(spec, anchor, visible, unknown_actor=cautious)
    if form == "exists":
        return len(events) > 0
    if form == "absent":
        return len(events) == 0
    if form == "count":
        return _compare_all(float(len(events)), spec)
    return _compare_all(_aggregate(spec["fn"], events, spec["field"]), spec)


def _condition_withins(cond: Mapping[str, Any]) -> list[timedelta]:
    if "all" in cond or "any" in cond:
        return [d for c in cond.get("all", cond.get("any")) for d in _condition_withins(c)]
    if "not" in cond:
        return _condition_withins(cond["not"])
    spec = cond[_leaf_form(cond) or ""]
    return [parse_duration(spec["within"])] if "within" in spec else []


def _quantity_withins(q: Any) -> list[timedelta]:
    if not isinstance(q, Mapping):
        return []
    out: list[timedelta] = []
    for fn in QUANTITY_FNS:
        if fn in q and "within" in q[fn]:
            out.append(parse_duration(q[fn]["within"]))
    if "minus" in q:
        out.extend(_quantity_withins(q["minus"]))
    return out


def eval_quantity(q: Any, anchor: Event, visible: Sequence[Event]) -> float:
    """A number, or one aggregate (missing = 0) minus another quantity."""
    if not isinstance(q, Mapping):
        return float(q)
    fn = next(f for f in QUANTITY_FNS if f in q)
    spec = q[fn]
    total = _aggregate(fn, _matching(spec, anchor, visible), spec.get("field"))
    result = 0.0 if total is None else total
    if "minus" in q:
        result -= eval_quantity(q["minus"], anchor, visible)
    return result


def period_key(ts: datetime, every: str, timezone: str) -> str:
    """The billing period of a naive-UTC instant, on the wall clock of ``timezone``."""
    local = ts.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone))
    if every == "day":
        return local.strftime("%Y-%m-%d")
    if every == "week":
        iso = local.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"
    if every == "month":
        return local.strftime("%Y-%m")
    if every == "quarter":
        return f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}"
    if every == "year":
        return f"{local.year:04d}"
    raise ValueError(every)


# --------------------------------------------------------------------------------------------
# The evaluator
# --------------------------------------------------------------------------------------------


def default_as_of(frame: pd.DataFrame) -> datetime | None:
    """The latest event time in the data, so the same export always gives the same answer."""
    if len(frame) == 0:
        return None
    return _to_datetime(frame["ts"].max())


def _pick_anchors(anchor_spec: Mapping[str, Any], visible: Sequence[Event]) -> list[Event]:
    pool = [
        ev
        for ev in visible
        if ev.type == anchor_spec["type"]
        and (anchor_spec.get("actor") is None or ev.actor == anchor_spec["actor"])
        and where_matches(anchor_spec.get("where"), ev)
    ]
    pool.sort(key=Event.order_key)
    if not pool:
        return []
    pick = anchor_spec.get("pick", "first")
    if pick == "first":
        return [pool[0]]
    if pick == "last":
        return [pool[-1]]
    return pool


def evaluate(
    definition: Mapping[str, Any], frame: pd.DataFrame, as_of: datetime | None = None
) -> pd.DataFrame:
    """One verdict row per candidate, with the engine's columns, computed the slow plain way."""
    conditions: Mapping[str, Any] = definition.get("conditions") or {}
    names = list(conditions)
    quantity = definition.get("quantity", 1)
    period = definition.get("period") or {}
    every = period.get("every", "month")
    timezone = period.get("timezone", "UTC")

    withins = [d for c in conditions.values() for d in _condition_withins(c)]
    withins += _quantity_withins(quantity)
    longest = max(withins) if withins else None

    columns = [
        "entity_id",
        "anchor_event_id",
        "anchor_ts",
        "period",
        "status",
        "quantity",
        "reason",
        *[f"cond_{n}" for n in names],
    ]
    if as_of is None:
        as_of = default_as_of(frame)
    if as_of is None:
        return pd.DataFrame(columns=columns)

    events = [ev for ev in events_from_frame(frame) if ev.ts <= as_of]
    by_entity: dict[str, list[Event]] = {}
    for ev in events:
        by_entity.setdefault(ev.entity_id, []).append(ev)

    rows: list[dict[str, Any]] = []
    for entity_id in sorted(by_entity):
        visible = sorted(by_entity[entity_id], key=Event.order_key)
        for anchor in _pick_anchors(definition["anchor"], visible):
            results = {n: eval_condition(conditions[n], anchor, visible) for n in names}
            excluded_by = [n for n in names if results[n] is None]
            failing = [n for n in names if results[n] is False]
            reason: str | None = None
            qty = 0.0
            if excluded_by:
                status = "excluded"
                reason = ",".join(excluded_by)
            elif longest is not None and anchor.ts + longest > as_of:
                status = "pending"
            elif not failing:
                status = "counted"
                qty = eval_quantity(quantity, anchor, visible)
            else:
                status = "not_counted"
                reason = ",".join(failing)
            row: dict[str, Any] = {
                "entity_id": entity_id,
                "anchor_event_id": anchor.event_id,
                "anchor_ts": anchor.ts,
                "period": period_key(anchor.ts, every, timezone),
                "status": status,
                "quantity": qty,
                "reason": reason,
            }
            row.update({f"cond_{n}": results[n] for n in names})
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------------
# Comparison helpers shared by the tests
# --------------------------------------------------------------------------------------------


def reason_set(reason: Any) -> frozenset[str]:
    """A reason string as a set of condition names (order and separators do not matter)."""
    if _is_null(reason) or str(reason).strip() == "":
        return frozenset()
    return frozenset(p.strip() for p in re.split(r"[,;]", str(reason)) if p.strip())


def canonical_rows(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
    """Verdict rows keyed by (entity, anchor event), values normalised for comparison."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in frame.to_dict("records"):
        row: dict[str, Any] = {}
        for col, v in rec.items():
            k = str(col)
            if k == "reason":
                row[k] = reason_set(v)
            elif k == "anchor_ts":
                row[k] = _to_datetime(v)
            elif k == "quantity":
                row[k] = float(v)
            elif k.startswith("cond_"):
                row[k] = None if _is_null(v) else bool(v)
            else:
                row[k] = v
        key = (str(rec["entity_id"]), str(rec["anchor_event_id"]))
        assert key not in out, f"two verdicts for {key}"
        out[key] = row
    return out
