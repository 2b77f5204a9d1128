"""The contract schedule, written from the definition model itself.

A contract that says "resolution" and points at the vendor's documentation lets the vendor
decide what is billed. The schedule written here states the outcome as operational clauses
over the raw event export — one numbered clause per condition, in the order of the definition —
and adds the clauses that make the definition enforceable: the raw-event export (exactly the
event types and fields the definition reads, from the same plan ``check`` uses), the
counterfactual replay, the re-classification right with the tolerance and billing source of the
terms, the charges, and notice of any change to the vendor's own outcome documentation or
classifier. The compiled query and the canonical definition are annexed, with its SHA-256.

Every number in the clauses is read from the definition, the terms or an explicit option, and
recorded as a :class:`Parameter` with the key it came from; nothing is typed in by hand, so a
changed window or tolerance changes the text. The schedule is a tree of spans (plain text,
code, defined terms) rather than a string, so that the Markdown and HTML renderers can escape
every piece of user text for their own syntax.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

from truecount.billing.terms import Terms
from truecount.definition.duration import describe_duration, format_duration
from truecount.definition.model import (
    AggregateSpec,
    Condition,
    CountSpec,
    Definition,
    EventFilter,
    QuantityAgg,
    QuantitySpec,
    Selector,
)
from truecount.definition.where import (
    And,
    Between,
    Compare,
    Expr,
    Field,
    InList,
    IsNull,
    Lit,
    Not,
    Or,
)
from truecount.engine.compile import DIALECTS, compile_sql
from truecount.engine.coverage import Requirement, requirements
from truecount.errors import InputError, Location, Problem

SpanKind = Literal["text", "code", "term"]
Delivery = Literal["daily", "weekly", "period"]
DELIVERIES: Final[tuple[str, ...]] = ("daily", "weekly", "period")

_PERIOD_WORDS: Final[dict[str, str]] = {
    "day": "calendar day",
    "week": "ISO calendar week (Monday to Sunday)",
    "month": "calendar month",
    "quarter": "calendar quarter",
    "year": "calendar year",
}
_CMP_WORDS: Final[dict[str, str]] = {
    ">=": "at least",
    "<=": "at most",
    ">": "more than",
    "<": "less than",
    "=": "exactly",
}
_WHERE_OPS: Final[dict[str, str]] = {
    "==": "is",
    "!=": "is not",
    "<": "is less than",
    "<=": "is at most",
    ">": "is more than",
    ">=": "is at least",
}
#: An aggregate condition over "the Events that ... have a number in F": what is compared.
_AGG_WORDS: Final[dict[str, str]] = {
    "min": "the smallest of their {f}",
    "max": "the largest of their {f}",
    "sum": "the sum of their {f}",
    "avg": "the average of their {f}",
    "first": "the {f} of the first of them in Event Order",
    "last": "the {f} of the last of them in Event Order",
}
#: A quantity term: "the sum of the `value` of the Events ...".
_QUANTITY_WORDS: Final[dict[str, str]] = {
    "sum": "the sum of the {f}",
    "min": "the smallest {f}",
    "max": "the largest {f}",
    "avg": "the average {f}",
}
_LETTERS: Final[str] = "abcdefghijklmnopqrstuvwxyz"
_ROMAN: Final[tuple[str, ...]] = (
    "i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii",
)  # fmt: skip


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Span:
    """A run of text: ``text`` (plain), ``code`` (an identifier or value from a file, shown
    verbatim) or ``term`` (a defined term where it is defined)."""

    kind: SpanKind
    text: str


Spans = tuple[Span, ...]


@dataclass(frozen=True)
class Item:
    """A numbered clause (``2.2``) or a lettered sub-item (``(a)``), with its own sub-items."""

    label: str
    spans: Spans
    title: Spans = ()
    items: tuple[Item, ...] = ()

    def plain(self) -> str:
        return plain(self.spans)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.label,
            "title": plain(self.title) or None,
            "text": self.plain(),
            "items": [i.to_json() for i in self.items],
        }


@dataclass(frozen=True)
class Section:
    number: str
    title: str
    clauses: tuple[Item, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "clauses": [c.to_json() for c in self.clauses],
        }


@dataclass(frozen=True)
class Annex:
    """Verbatim material: the compiled query, the canonical definition."""

    letter: str
    title: str
    spans: Spans
    code: str
    language: str

    def to_json(self) -> dict[str, Any]:
        return {
            "letter": self.letter,
            "title": self.title,
            "text": plain(self.spans),
            "language": self.language,
            "content": self.code,
        }


@dataclass(frozen=True)
class Parameter:
    """A value the schedule's text uses, and the key of the file (or option) it came from."""

    clause: str
    source: Literal["definition", "terms", "option"]
    key: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {"clause": self.clause, "source": self.source, "key": self.key, "value": self.value}


@dataclass(frozen=True)
class ClauseOptions:
    """Choices the files do not make: the query's as-of time and dialect, delivery, notice."""

    as_of: dt.datetime
    dialect: str = "duckdb"
    delivery: Delivery = "period"
    notice_days: int = 30


@dataclass(frozen=True)
class Schedule:
    """The contract schedule: title, sections of clauses, annexes, and where each value came
    from. :meth:`to_json` is the stable shape of ``truecount clauses --format json``."""

    title: str
    intro: Spans
    definition: Definition
    terms: Terms | None
    options: ClauseOptions
    sections: tuple[Section, ...]
    annexes: tuple[Annex, ...]
    parameters: tuple[Parameter, ...]

    def clause(self, number: str) -> Item:
        """The clause numbered ``number`` (``"2.2"``)."""
        for s in self.sections:
            for c in s.clauses:
                if c.label == number:
                    return c
        raise KeyError(number)

    def to_json(self) -> dict[str, Any]:
        return {
            "schedule": 1,
            "title": self.title,
            "definition": self.definition.identity(),
            "terms": self.terms.summary() if self.terms is not None else None,
            "as_of": self.options.as_of.isoformat(sep=" "),
            "dialect": self.options.dialect,
            "delivery": self.options.delivery,
            "notice_days": self.options.notice_days,
            "intro": plain(self.intro),
            "sections": [s.to_json() for s in self.sections],
            "annexes": [a.to_json() for a in self.annexes],
            "parameters": [p.to_json() for p in self.parameters],
        }


def plain(spans: Spans) -> str:
    """Spans as plain text, code in backticks (the JSON and terminal form)."""
    return "".join(f"`{s.text}`" if s.kind == "code" else s.text for s in spans)


# --------------------------------------------------------------------------- span building

Piece = Span | Spans | list[Span] | str


def code(text: str) -> Span:
    return Span("code", text)


def term(text: str) -> Span:
    return Span("term", text)


_SLOT_RE: Final = re.compile(r"\{(\w+)\}")


def say(template: str, **values: Piece) -> Spans:
    """Spans from a trusted template whose ``{slots}`` take spans (user text stays a span).

    The template is this module's own prose; a value is never parsed for slots, so a name or
    a ``where`` literal containing braces stays literal text.
    """
    out: list[Span] = []
    pos = 0
    for m in _SLOT_RE.finditer(template):
        if m.start() > pos:
            out.append(Span("text", template[pos : m.start()]))
        out.extend(_spans(values[m.group(1)]))
        pos = m.end()
    if pos < len(template):
        out.append(Span("text", template[pos:]))
    return _merge(out)


def _spans(piece: Piece) -> list[Span]:
    if isinstance(piece, str):
        return [Span("text", piece)]
    if isinstance(piece, Span):
        return [piece]
    return list(piece)


def _merge(spans: list[Span]) -> Spans:
    """Join neighbouring plain-text spans (equal text, simpler renderings)."""
    out: list[Span] = []
    for s in spans:
        if not s.text:
            continue
        if out and s.kind == "text" and out[-1].kind == "text":
            out[-1] = Span("text", out[-1].text + s.text)
        else:
            out.append(s)
    return tuple(out)


def join(parts: list[Spans], sep: str = ", ", last: str = " and ") -> Spans:
    """``a, b and c`` over span sequences."""
    out: list[Span] = []
    for i, p in enumerate(parts):
        if i:
            out.append(Span("text", last if i == len(parts) - 1 else sep))
        out.extend(p)
    return _merge(out)


def _number(v: float | int) -> str:
    """A number as the definition wrote it (4, not 4.0)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v) if isinstance(v, int) else repr(v)


def _title(name: str) -> str:
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _money(terms: Terms, amount: Decimal) -> str:
    """``USD 5.00``: at least the currency's minor digits, never fewer than the terms give."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent < terms.digits:
        amount = amount.quantize(Decimal(1).scaleb(-terms.digits))
    return f"{terms.currency} {amount:,}"


def _pct(value: Decimal) -> str:
    return f"{value.normalize():f}%"


# --------------------------------------------------------------------------- the builder


@dataclass
class _Builder:
    definition: Definition
    terms: Terms | None
    options: ClauseOptions
    params: list[Parameter] = field(default_factory=list)
    clause: str = ""
    #: Where each part of the definition is stated: ``anchor``, a condition name, ``quantity``.
    refs: dict[str, str] = field(default_factory=dict)

    # -- parameters
    def param(self, source: Literal["definition", "terms", "option"], key: str, value: str) -> str:
        self.params.append(Parameter(self.clause, source, key, value))
        return value

    def duration(self, key: str, seconds: int) -> str:
        self.param("definition", key, format_duration(seconds))
        return describe_duration(seconds)

    # -- events
    def event_phrase(self, flt: EventFilter, key: str, plural: bool = False) -> Spans:
        """``Event of type `rated` whose actor is `customer` for which …``."""
        parts: list[Span] = [Span("text", "Events of type " if plural else "Event of type ")]
        parts.append(code(self.param("definition", f"{key}.type", flt.type)))
        if flt.actor is not None:
            parts.append(Span("text", " whose actor is "))
            parts.append(code(self.param("definition", f"{key}.actor", flt.actor)))
        expr = flt.where_expr
        if expr is not None:
            formula = self.param("definition", f"{key}.where", str(expr))
            parts.append(Span("text", " for which "))
            parts.extend(where_words(expr))
            parts.append(Span("text", " (formula: "))
            parts.append(code(formula))
            parts.append(Span("text", ")"))
        return _merge(parts)

    def window(self, sel: Selector, key: str) -> Spans:
        if sel.within is not None:
            d = self.duration(f"{key}.within", sel.within)
            return say("within {d} after the Anchor Event (both ends inclusive)", d=d)
        if sel.before is not None:
            d = self.duration(f"{key}.before", sel.before)
            return say("within {d} before the Anchor Event (both ends inclusive)", d=d)
        return say("at any time, before or after the Anchor Event, up to the time of counting")

    def comparisons(self, spec: CountSpec | AggregateSpec, key: str) -> Spans:
        names = {">=": "at_least", "<=": "at_most", ">": "more_than", "<": "less_than"}
        parts: list[Spans] = []
        for op, v in spec.comparisons():
            text = self.param("definition", f"{key}.{names.get(op, 'equals')}", _number(v))
            parts.append(say("{w} {n}", w=_CMP_WORDS[op], n=text))
        return join(parts)

    # -- conditions
    def leaf(self, cond: Condition, key: str) -> Spans:
        sel = cond.leaf
        assert sel is not None
        k = f"{key}.{cond.form}"
        events = self.event_phrase(sel, k, plural=cond.form in {"count", "aggregate"})
        window = self.window(sel, k)
        if cond.form == "exists":
            text = say("At least one {e} occurs {w}.", e=events, w=window)
        elif cond.form == "absent":
            text = say("No {e} occurs {w}.", e=events, w=window)
        elif isinstance(sel, CountSpec):
            text = say(
                "The number of {e} that occur {w} is {c}.",
                e=events,
                w=window,
                c=self.comparisons(sel, k),
            )
        else:
            assert isinstance(sel, AggregateSpec)
            fld = _field_words(self.param("definition", f"{k}.field", sel.field))
            text = say(
                "Taking the {e} that occur {w} and have a number in {f}, {agg} is {c}; "
                "if there is no such Event, this condition is not met.",
                e=events,
                w=window,
                f=fld,
                agg=say(_AGG_WORDS[sel.fn], f=fld),
                c=self.comparisons(sel, k),
            )
            self.param("definition", f"{k}.fn", sel.fn)
        if cond.if_no_data is not None:
            text = text + self.if_no_data(cond, sel, key)
        return text

    def if_no_data(self, cond: Condition, sel: Selector, key: str) -> Spans:
        value = self.param("definition", f"{key}.if_no_data", cond.if_no_data or "")
        outcome = {
            "fail": "this condition is not met",
            "pass": "this condition is met",
            "exclude": (
                "the Candidate is excluded: it is neither an Outcome nor rejected, it is not "
                "billable, and it is reported separately"
            ),
        }[value]
        anchor_note = (
            "; the Anchor Event is such an Event" if sel.type == self.definition.anchor.type else ""
        )
        return say(
            " If the Raw Event Export holds no Event of type {t} for the Entity at all (at any "
            "time up to the time of counting, whatever its actor, content or time{a}), {o}.",
            t=code(sel.type),
            a=anchor_note,
            o=outcome,
        )

    def condition(self, cond: Condition, key: str, depth: int) -> tuple[Spans, tuple[Item, ...]]:
        """A condition's sentence and, for a combinator, its lettered sub-items."""
        if cond.leaf is not None:
            return self.leaf(cond, key), ()
        lead = {
            "all": "All of the following are met:",
            "any": "At least one of the following is met:",
            "not": "The following is not met:",
        }[cond.form]
        labels = _LETTERS if depth % 2 == 0 else _ROMAN
        items: list[Item] = []
        for i, child in enumerate(cond.children):
            child_key = f"{key}.{cond.form}[{i}]" if cond.form != "not" else f"{key}.not"
            text, sub = self.condition(child, child_key, depth + 1)
            label = f"({labels[i % len(labels)]})"
            items.append(Item(label, text, (), sub))
        return say(lead), tuple(items)

    def quantity(self) -> Spans:
        q = self.definition.quantity
        if not isinstance(q, QuantitySpec):
            if float(q) == 1.0:
                return say("Each Outcome is one Unit.")
            return say(
                "Each Outcome counts as {n} Units.",
                n=self.param("definition", "quantity", _number(q)),
            )
        terms: list[Spans] = []
        key = "quantity"
        while True:
            if not isinstance(q, QuantitySpec):
                terms.append(say("{n}", n=self.param("definition", key, _number(q))))
                break
            terms.append(self.quantity_term(q.fn, q.agg, f"{key}.{q.fn}"))
            if q.minus is None:
                break
            q = q.minus
            key += ".minus"
        body = join(terms, sep=", minus ", last=", minus ")
        return say(
            "The quantity of each Outcome, in Units, is {b}. An aggregate over no Events is zero.",
            b=body,
        )

    def quantity_term(self, fn: str, agg: QuantityAgg, key: str) -> Spans:
        events = self.event_phrase(agg, key, plural=True)
        window = self.window(agg, key)
        if fn == "count":
            return say("the number of {e} that occur {w}", e=events, w=window)
        fld = _field_words(self.param("definition", f"{key}.field", agg.field))
        return say(
            _QUANTITY_WORDS[fn] + " of the {e} that occur {w} and have a number in {f}",
            f=fld,
            e=events,
            w=window,
        )


def _field_words(name: str) -> Spans:
    """``value`` or ``attribute `amount```: a numeric field, named as the export names it."""
    if name.startswith("attrs."):
        return say("attribute {k}", k=code(name.split(".", 1)[1]))
    return (code(name),)


# --------------------------------------------------------------------------- where in words


def where_words(expr: Expr) -> Spans:
    """An expression of the where language in plain words, one event at a time.

    Nesting is kept with brackets whenever a sub-expression is a different connective, so the
    words read the same way the expression groups (``and`` binds tighter than ``or``).
    """
    match expr:
        case Compare(op=op, field=f, literal=lit):
            return say("{f} {op} {v}", f=_where_field(f), op=_WHERE_OPS[op], v=_lit(lit))
        case InList(field=f, items=items, negated=negated):
            values = join([_lit(i) for i in items], last=" or ")
            return say(
                "{f} {w} {v}",
                f=_where_field(f),
                w="is none of" if negated else "is one of",
                v=values,
            )
        case IsNull(field=f, negated=negated):
            return say("{f} {w}", f=_where_field(f), w="is present" if negated else "is missing")
        case Between(field=f, low=lo, high=hi):
            return say(
                "{f} is between {lo} and {hi} (inclusive)",
                f=_where_field(f),
                lo=_lit(lo),
                hi=_lit(hi),
            )
        case And(left=a, right=b):
            return say("{a} and {b}", a=_nested(a, And), b=_nested(b, And))
        case Or(left=a, right=b):
            return say("{a} or {b}", a=_nested(a, Or), b=_nested(b, Or))
        case Not(operand=a):
            return say("it is not true that {a}", a=_bracket(where_words(a)))
    raise AssertionError(f"unknown node {expr!r}")  # pragma: no cover


def _nested(expr: Expr, parent: type) -> Spans:
    words = where_words(expr)
    if isinstance(expr, And | Or) and not isinstance(expr, parent):
        return _bracket(words)
    return words


def _bracket(spans: Spans) -> Spans:
    return say("({s})", s=spans)


def _where_field(f: Field) -> Spans:
    if f.attr is not None:
        return say("its attribute {k}", k=code(f.attr))
    if f.name == "value":
        return say("its {k}", k=code("value"))
    return say("its {k}", k=code(f.name))


def _lit(lit: Lit) -> Spans:
    v = lit.value
    if isinstance(v, str):
        return (code(v),) if v else (Span("text", "the empty text"),)
    return (Span("text", str(lit)),)


# --------------------------------------------------------------------------- sections


def build_schedule(definition: Definition, terms: Terms | None, options: ClauseOptions) -> Schedule:
    """The contract schedule for ``definition`` under ``terms`` (commercial clauses need them)."""
    if options.dialect not in DIALECTS:
        raise InputError(
            Problem(
                f"unknown dialect '{options.dialect}'",
                Location(key="dialect"),
                f"use one of {', '.join(DIALECTS)}",
            )
        )
    if options.delivery not in DELIVERIES:
        raise InputError(
            Problem(
                f"unknown delivery '{options.delivery}'",
                Location(key="delivery"),
                f"use one of {', '.join(DELIVERIES)}",
            )
        )
    if options.notice_days < 1:
        raise InputError(
            Problem(
                f"a notice period of {options.notice_days} days gives no notice",
                Location(key="notice-days"),
                "give a whole number of days, 1 or more",
            )
        )
    b = _Builder(definition, terms, options)
    sections = [
        _definitions(b),
        _outcome(b),
        _export(b),
        _replay(b),
        _reclassification(b),
    ]
    if terms is not None:
        sections.append(_charges(b, terms))
    sections.append(_changes(b, str(len(sections) + 1)))
    annexes = _annexes(b)
    title = "Schedule: the Outcome, the raw event export and the charges"
    intro = say(
        "This Schedule forms part of the Agreement between the Vendor and the Customer. It "
        "defines the outcome for which the Customer pays, the data the Vendor provides so that "
        "the Customer can compute that outcome itself, and how the charges follow from it. It "
        "prevails over the Vendor's documentation, dashboards, reports and any definition of an "
        "outcome held in the Vendor's systems."
    )
    return Schedule(
        title=title,
        intro=intro,
        definition=definition,
        terms=terms,
        options=options,
        sections=tuple(sections),
        annexes=annexes,
        parameters=tuple(b.params),
    )


def _clause_range(numbers: list[str]) -> str:
    if len(numbers) == 1:
        return f"clause {numbers[0]}"
    if len(numbers) == 2:
        return f"clauses {numbers[0]} and {numbers[1]}"
    return f"clauses {numbers[0]} to {numbers[-1]}"


def _definitions(b: _Builder) -> Section:
    d = b.definition
    items: list[Item] = []

    def add(text: Spans) -> None:
        n = f"1.{len(items) + 1}"
        b.clause = n
        items.append(Item(n, text))

    b.clause = "1.1"
    name = b.param("definition", "name", d.name)
    version = b.param("definition", "version", str(d.version))
    add(
        say(
            "{t} means the outcome definition {n}, version {v}, set out in Annex B. It is "
            "identified by the SHA-256 digest of the text of Annex B encoded in UTF-8, which is "
            "{h}. The Definition can be changed only by a written amendment of this Schedule "
            "that states the new version and its digest.",
            t=term("Definition"),
            n=code(name),
            v=version,
            h=code(b.param("definition", "sha256", d.sha256)),
        )
    )
    b.clause = "1.2"
    add(
        say(
            "{t} means one record of the Raw Event Export (clause 3): one thing that happened "
            "to one Entity at one time.",
            t=term("Event"),
        )
    )
    b.clause = "1.3"
    add(
        say(
            "{t} means the item the Events belong to and the Vendor bills for, identified by "
            "its {id}. {u} means the unit in which Outcomes are counted and billed: {unit}.",
            t=term("Entity"),
            id=code("entity_id"),
            u=term("Unit"),
            unit=code(b.param("definition", "unit", d.unit)),
        )
    )
    b.clause = "1.4"
    add(
        say(
            "{t} means the order of an Entity's Events by the time they occurred ({ts}), then "
            "by the sequence number the export states ({seq}; an Event without one comes after "
            "those with one at the same instant), then by the Event identifier ({eid}). The "
            "order of records in a file is never used.",
            t=term("Event Order"),
            ts=code("ts"),
            seq=code("seq"),
            eid=code("event_id"),
        )
    )
    b.clause = "1.5"
    every = b.param("definition", "period.every", d.period.every)
    tz = b.param("definition", "period.timezone", d.period.timezone)
    add(
        say(
            "{t} means the {p}, read on the clock of the time zone {tz}. An Outcome belongs to "
            "the Billing Period in which its Anchor Event occurs.",
            t=term("Billing Period"),
            p=_PERIOD_WORDS[every],
            tz=code(tz),
        )
    )
    b.clause = "1.6"
    longest = d.longest_within()
    if longest:
        lw = b.duration("derived.longest_within", longest)
        text = say(
            "{t} of a Billing Period means the end of that Billing Period plus {lw}, the longest "
            "window after the Anchor Event in clause 2. The Outcomes of a Billing Period are "
            "counted at its Count Time, on the Events that occurred at or before it; by then no "
            "Outcome of the period is pending.",
            t=term("Count Time"),
            lw=lw,
        )
    else:
        text = say(
            "{t} of a Billing Period means the end of that Billing Period. The Outcomes of a "
            "Billing Period are counted at its Count Time, on the Events that occurred at or "
            "before it.",
            t=term("Count Time"),
        )
    add(text)
    b.clause = "1.7"
    add(
        say(
            "{c} means the number of Outcomes of a Billing Period counted under clause 2 from "
            "the Raw Event Export. {v} means the number of distinct Entities the Vendor "
            "invoices for the Billing Period; an Entity invoiced more than once is counted once.",
            c=term("Customer Count"),
            v=term("Vendor Count"),
        )
    )
    b.clause = "1.8"
    add(
        say(
            "Times are in Coordinated Universal Time unless this Schedule names a time zone. "
            "Every window in clause 2 includes both of its ends: an Event exactly at the end of "
            "a window is inside it."
        )
    )
    if any(s.where_expr is not None for s in [d.anchor, *d.selectors()]):
        b.clause = f"1.{len(items) + 1}"
        add(
            say(
                "A test on a field of an Event (such as its {v} or one of its attributes) is met "
                "only when the Event has that field: an Event without the field meets neither "
                "the test nor its negation. An attribute compared with a number is read as a "
                "number, and an attribute that is not a number is then treated as missing.",
                v=code("value"),
            )
        )
    b.clause = f"1.{len(items) + 1}"
    add(
        say(
            "Annex A is the Definition compiled into a database query; run on the Raw Event "
            "Export it gives the Outcomes of clause 2. If the words of clause 2 and the "
            "Definition in Annex B ever differ, Annex B prevails."
        )
    )
    return Section("1", "Definitions and interpretation", tuple(items))


def _outcome(b: _Builder) -> Section:
    d = b.definition
    a = d.anchor
    items: list[Item] = []
    b.clause = "2.1"
    pick = b.param("definition", "anchor.pick", a.pick)
    which = {
        "first": say("Its {t} is the first such Event in Event Order.", t=term("Anchor Event")),
        "last": say(
            "Its {t} is the last such Event in Event Order known at the time of counting.",
            t=term("Anchor Event"),
        ),
        "each": say("Every such Event is the {t} of a separate Candidate.", t=term("Anchor Event")),
    }[pick]
    items.append(
        Item(
            "2.1",
            say(
                "An Entity is a candidate for an Outcome (a {c}) when it has an {e}. {w}",
                c=term("Candidate"),
                e=b.event_phrase(a, "anchor"),
                w=which,
            ),
            say("Anchor Event"),
        )
    )
    b.refs["anchor"] = "2.1"
    numbers: list[str] = []
    for name, cond in d.conditions.items():
        n = f"2.{len(items) + 1}"
        b.clause = n
        numbers.append(n)
        text, sub = b.condition(cond, f"conditions.{name}", 0)
        b.param("definition", f"conditions.{name}", name)
        b.refs[name] = n
        items.append(Item(n, text, say("{t} ({n})", t=_title(name), n=code(name)), sub))

    n = f"2.{len(items) + 1}"
    b.clause = n
    if numbers:
        counted = say(
            "A Candidate is an {o}, and billable, when every condition in {r} is met. The "
            "Anchor Event itself is never taken into account by a condition{q}.",
            o=term("Outcome"),
            r=_clause_range(numbers),
            q=" or by the quantity" if isinstance(d.quantity, QuantitySpec) else "",
        )
    else:
        counted = say("Every Candidate is an {o}, and billable.", o=term("Outcome"))
    items.append(Item(n, counted, say("Outcome")))

    longest = d.longest_within()
    if longest:
        n = f"2.{len(items) + 1}"
        b.clause = n
        lw = b.duration("derived.longest_within", longest)
        items.append(
            Item(
                n,
                say(
                    "For {lw} after its Anchor Event, a Candidate is {p}: it is neither an "
                    "Outcome nor rejected, and it is not billable until it is decided.",
                    lw=lw,
                    p=term("pending"),
                ),
                say("Pending"),
            )
        )
    n = f"2.{len(items) + 1}"
    b.clause = n
    b.refs["quantity"] = n
    items.append(Item(n, b.quantity(), say("Quantity")))
    return Section("2", "The Outcome", tuple(items))


def _export(b: _Builder) -> Section:
    """Clause 3: exactly the event types and fields the definition reads (``check``'s plan)."""
    by_type: dict[str, list[Requirement]] = {}
    for r in requirements(b.definition):
        by_type.setdefault(r.type, []).append(r)

    def used_in(r: Requirement) -> str:
        if r.path.startswith("quantity"):
            return b.refs["quantity"]
        return b.refs[r.path.split(".", 1)[0]]

    b.clause = "3.1"
    kinds: list[Item] = []
    actors_used = value_used = False
    attrs_used: list[str] = []
    for i, (typ, rs) in enumerate(by_type.items()):
        actors = sorted({r.actor for r in rs if r.actor is not None})
        parts: list[Spans] = []
        if actors:
            actors_used = True
            names = join([(code(x),) for x in actors], last=" and ")
            parts.append(say("its actor, so that Events by {a} can be told apart", a=names))
        for f in dict.fromkeys(f for r in rs for f in r.fields):
            if f == "value":
                value_used = True
                parts.append(say("its {v}", v=code("value")))
            elif f == "actor":
                actors_used = True
                if not actors:
                    parts.append(say("its actor"))
            elif f.startswith("attrs."):
                key = f.split(".", 1)[1]
                attrs_used.append(key)
                parts.append(say("its attribute {k}", k=code(key)))
        refs = sorted({used_in(r) for r in rs}, key=lambda s: [int(x) for x in s.split(".")])
        end = "." if i == len(by_type) - 1 else ";"
        kinds.append(
            Item(
                f"({_LETTERS[i % 26]})",
                say(
                    "{t}{w} (read by {c}){end}",
                    t=code(typ),
                    w=say(", with {p}", p=join(parts)) if parts else "",
                    c=_clause_range(refs),
                    end=end,
                ),
            )
        )
    items: list[Item] = [
        Item(
            "3.1",
            say(
                "The Vendor shall provide the Customer with an export of raw Events (the {r}) "
                "holding every Event of the following types for every Entity it handles under "
                "the Agreement, including Events the Vendor does not count as outcomes, "
                "whatever the Event's actor or content:",
                r=term("Raw Event Export"),
            ),
            say("Content"),
            tuple(kinds),
        )
    ]
    fields: list[Spans] = [
        say(
            "its identifier ({c}), unique in the export and the same in every delivery",
            c=code("event_id"),
        ),
        say("its Entity ({c})", c=code("entity_id")),
        say("the time it occurred ({c}), in UTC", c=code("ts")),
        say("its type ({c})", c=code("type")),
    ]
    if actors_used:
        fields.append(
            say("its actor ({c}), using the actor names of the Definition", c=code("actor"))
        )
    if value_used:
        fields.append(say("its value ({c}), as a number", c=code("value")))
    if attrs_used:
        keys = join([(code(k),) for k in dict.fromkeys(attrs_used)])
        fields.append(say("its attributes ({c}), including {k}", c=code("attrs"), k=keys))
    fields.append(
        say(
            "the sequence number that orders the Entity's Events at the same instant ({c}), "
            "where the Vendor's systems record one",
            c=code("seq"),
        )
    )
    fields.append(say("the time the Vendor recorded it ({c})", c=code("recorded_at")))
    b.clause = "3.2"
    items.append(
        Item("3.2", say("Every Event carries {f}.", f=join(fields, "; ", "; and ")), say("Fields"))
    )
    b.clause = "3.3"
    items.append(
        Item(
            "3.3",
            say(
                "One record per Event, in CSV with a header row, JSON Lines or Parquet, with "
                "the field names of clause 3.2 (the canonical event format of truecount), or "
                "in another documented format the parties agree in writing together with a "
                "mapping from which every field of clause 3.2 can be read."
            ),
            say("Format"),
        )
    )
    b.clause = "3.4"
    delivery = b.param("option", "delivery", b.options.delivery)
    how_often = {
        "daily": "every day",
        "weekly": "every week",
        "period": "once for every Billing Period",
    }[delivery]
    items.append(
        Item(
            "3.4",
            say(
                "The Vendor delivers the Raw Event Export {o}, at no additional charge, by a "
                "secure means from which the Customer can retrieve it without the Vendor's "
                "intervention, and in any case delivers every Event that occurred up to a "
                "Billing Period's Count Time promptly after that Count Time.",
                o=how_often,
            ),
            say("Delivery"),
        )
    )
    b.clause = "3.5"
    items.append(
        Item(
            "3.5",
            say(
                "The Vendor retains every Event it has delivered, and delivers it again on "
                "request, for the term of the Agreement and until the charges of every Billing "
                "Period of the term are finally settled, including any dispute about them. A "
                "delivered Event is never changed or withdrawn silently: a correction is "
                "delivered as a new record with its own {r} and names the record it corrects.",
                r=code("recorded_at"),
            ),
            say("Retention and corrections"),
        )
    )
    b.clause = "3.6"
    items.append(
        Item(
            "3.6",
            say(
                "Each invoice lists the Entities it bills by their {e} and the Billing Period of "
                "each. If the Vendor invoices an Entity whose Events are not in the Raw Event "
                "Export, the Customer may withhold payment for that Entity until they are "
                "delivered.",
                e=code("entity_id"),
            ),
            say("Completeness"),
        )
    )
    return Section("3", "Raw event export", tuple(items))


def _replay(b: _Builder) -> Section:
    b.clause = "4.1"
    items = [
        Item(
            "4.1",
            say(
                "The Customer, or an auditor it appoints, may at any time recompute the "
                "Outcomes of any Billing Period, including past Billing Periods, from the Raw "
                "Event Export under the Definition, using the query in Annex A or any other "
                "implementation that gives the same result on the same Events."
            ),
            say("Right to recompute"),
        ),
        Item(
            "4.2",
            say(
                "A recomputation of a Billing Period uses the Events that occurred at or before "
                "its Count Time and the version of the Definition in force for that period. The "
                "Vendor's own classification, dashboards and documentation are not inputs to it."
            ),
            say("Inputs"),
        ),
        Item(
            "4.3",
            say(
                "On request, the Vendor provides the list of Entities its own systems counted "
                "as outcomes in any Billing Period, so that the two counts can be compared "
                "Entity by Entity."
            ),
            say("Vendor's list"),
        ),
        Item(
            "4.4",
            say(
                "The Vendor shall not charge for, delay or make conditions on a recomputation, "
                "and may dispute its result only on the ground that the Definition was not "
                "applied correctly to the Raw Event Export, not on the ground that its own "
                "systems classified the Events differently."
            ),
            say("No objection from the Vendor's classification"),
        ),
    ]
    return Section("4", "Counterfactual replay", tuple(items))


def _reclassification(b: _Builder) -> Section:
    t = b.terms
    b.clause = "5.2"
    if t is not None:
        tolerance: Spans = say("{p}", p=b.param("terms", "tolerance", _pct(t.tolerance_pct)))
        rule = b.param("terms", "billing_source", t.billing_source)
    else:
        tolerance = say("[tolerance to be agreed]")
        rule = "buyer_beyond_tolerance"
    if rule == "buyer_beyond_tolerance":
        source = say(
            "If the Vendor Count differs from the Customer Count by more than {t} of the "
            "Customer Count, or the Customer Count is zero and the Vendor Count is not, the "
            "Customer Count is the billing source for that Billing Period. Otherwise the Vendor "
            "Count is the billing source.",
            t=tolerance,
        )
    elif rule == "buyer":
        source = say("The Customer Count is the billing source for every Billing Period.")
    else:
        source = say(
            "The Vendor Count is the billing source. If it differs from the Customer Count by "
            "more than {t} of the Customer Count, or the Customer Count is zero and the Vendor "
            "Count is not, the Vendor shall, at the Customer's request, identify the Entities "
            "behind the difference and explain for each why it counted it.",
            t=tolerance,
        )
    items = [
        Item(
            "5.1",
            say(
                "For each Billing Period the Customer may compute the Customer Count and "
                "compare it with the Vendor Count."
            ),
            say("Right to re-classify"),
        ),
        Item("5.2", source, say("Billing source")),
        Item(
            "5.3",
            say(
                "When the Customer Count is the billing source, the amount due for the Billing "
                "Period is computed from it{c}, and the Vendor credits the difference between "
                "the amount invoiced and the amount due on its next invoice, or refunds it if "
                "there is none.",
                c=" under clause 6" if t is not None else "",
            ),
            say("Credit"),
        ),
        Item(
            "5.4",
            say(
                "This right applies to every Billing Period, also after payment, for as long as "
                "the Vendor must retain the period's Events under clause 3.5."
            ),
            say("Duration"),
        ),
    ]
    return Section("5", "Re-classification and billing source", tuple(items))


def _charges(b: _Builder, t: Terms) -> Section:
    items: list[Item] = []

    def add(text: Spans, title: Spans) -> None:
        n = f"6.{len(items) + 1}"
        items.append(Item(n, text, title))

    b.clause = "6.1"
    price = b.param("terms", "unit_price", _money(t, t.unit_price))
    b.param("terms", "currency", t.currency)
    if t.discount_pct > 0:
        disc = b.param("terms", "discount", _pct(t.discount_pct))
        add(
            say("Each Unit due is charged at {p}, less a discount of {d}.", p=price, d=disc),
            say("Unit price and discount"),
        )
    else:
        add(say("Each Unit due is charged at {p}.", p=price), say("Unit price"))
    b.clause = f"6.{len(items) + 1}"
    add(
        say(
            "The Units due for a Billing Period are the count of the billing source under "
            "clause 5.2."
        ),
        say("Units due"),
    )
    if t.platform_fee > 0:
        b.clause = f"6.{len(items) + 1}"
        fee = b.param("terms", "platform_fee", _money(t, t.platform_fee))
        cap_note = " It is not subject to the annual cap." if t.annual_cap is not None else ""
        add(
            say("A platform fee of {f} is charged for each Billing Period.{n}", f=fee, n=cap_note),
            say("Platform fee"),
        )
    if t.annual_cap is not None:
        b.clause = f"6.{len(items) + 1}"
        cap = b.param("terms", "annual_cap", _money(t, t.annual_cap))
        add(
            say(
                "The charges for Units in a calendar year shall not exceed {c} in total; a "
                "Billing Period is charged no more than what remains of that amount after the "
                "earlier Billing Periods of the same year.",
                c=cap,
            ),
            say("Annual cap"),
        )
    b.clause = f"6.{len(items) + 1}"
    add(
        say(
            "Amounts are computed exactly and rounded once per Billing Period, half up, to the "
            "minor unit of {c}.",
            c=t.currency,
        ),
        say("Rounding"),
    )
    return Section("6", "Charges", tuple(items))


def _changes(b: _Builder, number: str) -> Section:
    b.clause = f"{number}.1"
    days = b.param("option", "notice_days", str(b.options.notice_days))
    what = (
        Item(
            "(a)",
            say(
                "any documentation, dashboard or report in which the Vendor describes what it "
                "counts as an outcome;"
            ),
        ),
        Item(
            "(b)",
            say(
                "the classifier, model, prompt, rules or pipeline by which the Vendor decides "
                "whether an Event or Entity is an outcome, including retraining or replacing a "
                "model; or"
            ),
        ),
        Item("(c)", say("the content, fields or format of the Raw Event Export.")),
    )
    items = [
        Item(
            f"{number}.1",
            say(
                "The Vendor shall give the Customer written notice at least {d} days before it "
                "changes:",
                d=days,
            ),
            say("Notice"),
            what,
        ),
        Item(
            f"{number}.2",
            say(
                "A notice describes the change, the date it takes effect and its expected effect "
                "on the Vendor Count; for a change under clause {n}.1(b) it also gives the Vendor "
                "Count of the last complete Billing Period recomputed as if the change had "
                "applied then.",
                n=number,
            ),
            say("Content of a notice"),
        ),
        Item(
            f"{number}.3",
            say(
                "No such change alters the Definition, the Raw Event Export or the billing "
                "source: the Definition changes only as clause 1.1 provides."
            ),
            say("The Definition stands"),
        ),
        Item(
            f"{number}.4",
            say(
                "If such a change takes effect without the notice this clause requires, the "
                "Customer Count is the billing source for every Billing Period from the change "
                "until the notice is given."
            ),
            say("Change without notice"),
        ),
    ]
    return Section(
        number, "Changes to the Vendor's outcome documentation and classifier", tuple(items)
    )


def _annexes(b: _Builder) -> tuple[Annex, ...]:
    d = b.definition
    o = b.options
    b.clause = "Annex A"
    sql = compile_sql(d, o.as_of, dialect=o.dialect)
    moment = b.param("option", "as_of", o.as_of.isoformat(sep=" "))
    query = Annex(
        "A",
        "The Definition as a query",
        say(
            "The Definition compiled to SQL ({dl} dialect), written for the as-of time {t} "
            "(UTC). To count a Billing Period, the as-of time is the period's Count Time; "
            "nothing else in the query changes. The query reads a table {e} with the fields of "
            "clause 3.2 and returns one row per Candidate with its status and reasons.",
            dl=code(b.param("option", "dialect", o.dialect)),
            t=code(moment),
            e=code("events"),
        ),
        sql,
        "sql",
    )
    b.clause = "Annex B"
    canonical = Annex(
        "B",
        "The Definition (canonical form)",
        say(
            "The Definition in canonical form: JSON with sorted keys and no insignificant "
            "whitespace. Its SHA-256 digest, over these characters encoded in UTF-8, is {h}.",
            h=code(d.sha256),
        ),
        d.canonical_text,
        "json",
    )
    return (query, canonical)


__all__ = [
    "DELIVERIES",
    "Annex",
    "ClauseOptions",
    "Item",
    "Parameter",
    "Schedule",
    "Section",
    "Span",
    "build_schedule",
    "plain",
    "where_words",
]
