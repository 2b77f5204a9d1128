"""The `where` expression language: tokenized, parsed into a small syntax tree, checked.

The language is deliberately tiny (fields of one event, literals, comparisons, ``in``,
``is null``, ``between``, ``and`` / ``or`` / ``not``). It is parsed here by hand rather than by
handing the text to a SQL parser, because a SQL parser accepts far more than we allow (function
calls, subqueries, casts) and its error messages speak SQL rather than this language. The tree
defined here is the only thing the compiler sees; the user's text never reaches SQL.

The parser is recursive, and so are everything that walks its tree (printing, the compiler,
SQLGlot's generator). A hostile or generated expression of ten thousand parentheses or ``and``s
would exhaust the interpreter's stack in any of them, so the size of an expression is bounded
where it is read: at most :data:`MAX_TEXT` characters, :data:`MAX_TESTS` tests, and a tree at
most :data:`MAX_DEPTH` deep (``a and b and c`` is two levels: the printed form brackets each
``and``). The text may nest parentheses and ``not`` :data:`MAX_NESTING` levels, twice the tree's
depth, so that the printed form of any accepted tree (``not (x)`` is two levels) reads back.
Each bound sits far above what a person writes in a definition. Numbers obey the same bound
as every number of a definition (:data:`MAX_NUMBER`): a literal that reads as infinity could
not be printed back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from truecount.errors import Location, Problem, WhereError, suggest

#: Fields of an event a where expression may use (besides ``attrs.<key>``).
FIELDS: Final[dict[str, str]] = {"value": "number", "actor": "text", "type": "text"}

#: The longest where expression read, in characters.
MAX_TEXT: Final[int] = 10_000
#: The deepest syntax tree: ``and`` / ``or`` / ``not`` nodes above a test.
MAX_DEPTH: Final[int] = 50
#: The deepest nesting of parentheses and ``not`` in the text.
MAX_NESTING: Final[int] = 2 * MAX_DEPTH
#: The most tests (comparisons, ``in``, ``is null``, ``between``) one expression may join.
MAX_TESTS: Final[int] = 100
#: The largest magnitude of a number literal (the bound of every number in a definition).
MAX_NUMBER: Final[float] = 1e15
#: How much of a long expression an error message shows around the position it names.
_EXCERPT: Final[int] = 60

CompareOp = Literal["==", "!=", "<", "<=", ">", ">="]
LiteralValue = float | int | str | bool | None


@dataclass(frozen=True)
class Field:
    """A field of the event: ``value``, ``actor``, ``type`` or ``attrs.<key>`` (``attr`` set)."""

    name: str
    attr: str | None = None

    def __str__(self) -> str:
        return f"attrs.{self.attr}" if self.attr is not None else self.name


@dataclass(frozen=True)
class Lit:
    value: LiteralValue

    def __str__(self) -> str:
        if self.value is None:
            return "null"
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        if isinstance(self.value, str):
            return "'" + self.value.replace("'", "''") + "'"
        return _number_text(self.value)


@dataclass(frozen=True)
class Compare:
    op: CompareOp
    field: Field
    literal: Lit

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.literal}"


@dataclass(frozen=True)
class InList:
    field: Field
    items: tuple[Lit, ...]
    negated: bool = False

    def __str__(self) -> str:
        inner = ", ".join(str(i) for i in self.items)
        return f"{self.field} {'not in' if self.negated else 'in'} ({inner})"


@dataclass(frozen=True)
class IsNull:
    field: Field
    negated: bool = False

    def __str__(self) -> str:
        return f"{self.field} is {'not ' if self.negated else ''}null"


@dataclass(frozen=True)
class Between:
    field: Field
    low: Lit
    high: Lit

    def __str__(self) -> str:
        return f"{self.field} between {self.low} and {self.high}"


@dataclass(frozen=True)
class And:
    left: Expr
    right: Expr

    def __str__(self) -> str:
        return f"({self.left} and {self.right})"


@dataclass(frozen=True)
class Or:
    left: Expr
    right: Expr

    def __str__(self) -> str:
        return f"({self.left} or {self.right})"


@dataclass(frozen=True)
class Not:
    operand: Expr

    def __str__(self) -> str:
        return f"not ({self.operand})"


Expr = Compare | InList | IsNull | Between | And | Or | Not


def _number_text(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


# --------------------------------------------------------------------------- tokenizer

_TOKEN_RE: Final = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<op>==|!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_\-]*)?)
    """,
    re.VERBOSE,
)

_KEYWORDS: Final[frozenset[str]] = frozenset(
    {"and", "or", "not", "in", "is", "null", "true", "false", "between"}
)


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, op, punct, word, keyword, end
    text: str
    pos: int


class _Parser:
    """Recursive descent: or_expr := and_expr ('or' and_expr)*; and_expr := not_expr ..."""

    def __init__(self, text: str, where: Location) -> None:
        self.text = text
        self.where = where
        self.depth = 0
        self.tests = 0
        if len(text) > MAX_TEXT:
            raise self.error(
                f"the expression is {len(text):,} characters long, more than {MAX_TEXT:,}",
                MAX_TEXT,
                "split the condition into several conditions",
            )
        self.tokens = self._tokenize()
        self.i = 0

    # -- helpers
    def error(self, message: str, pos: int, hint: str | None = None) -> WhereError:
        pointer = f"at position {pos + 1} of '{self._excerpt(pos)}'"
        return WhereError(Problem(f"{message} {pointer}", self.where, hint))

    def _excerpt(self, pos: int) -> str:
        """The expression, or for a long one the stretch around ``pos``, for a message."""
        if len(self.text) <= 2 * _EXCERPT:
            return self.text
        start, end = max(0, pos - _EXCERPT), min(len(self.text), pos + _EXCERPT)
        return ("…" if start else "") + self.text[start:end] + ("…" if end < len(self.text) else "")

    def enter(self, pos: int) -> None:
        """One level deeper (a parenthesis or a ``not``); refused past :data:`MAX_NESTING`."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(
                f"the expression is nested more than {MAX_NESTING} levels deep",
                pos,
                "flatten it, e.g. with 'in (...)' or by splitting the condition",
            )

    def count_test(self, pos: int) -> None:
        self.tests += 1
        if self.tests > MAX_TESTS:
            raise self.error(
                f"the expression joins more than {MAX_TESTS} tests",
                pos,
                "use 'in (...)' for a list of values, or split the condition",
            )

    def _tokenize(self) -> list[_Token]:
        tokens: list[_Token] = []
        pos = 0
        while pos < len(self.text):
            m = _TOKEN_RE.match(self.text, pos)
            if m is None:
                raise self.error(
                    f"unexpected character {self.text[pos]!r}",
                    pos,
                    "the where language has fields, literals, comparisons, in, is null, "
                    "between, and, or, not and parentheses",
                )
            kind = m.lastgroup or ""
            if kind != "ws":
                text = m.group()
                if kind == "word" and text.lower() in _KEYWORDS:
                    tokens.append(_Token("keyword", text.lower(), pos))
                else:
                    tokens.append(_Token(kind, text, pos))
            pos = m.end()
        tokens.append(_Token("end", "", len(self.text)))
        return tokens

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def accept(self, kind: str, text: str | None = None) -> _Token | None:
        tok = self.tok
        if tok.kind == kind and (text is None or tok.text == text):
            self.i += 1
            return tok
        return None

    def expect(self, kind: str, text: str, what: str) -> _Token:
        tok = self.accept(kind, text)
        if tok is None:
            found = self.tok.text or "the end"
            raise self.error(f"expected {what}, found '{found}'", self.tok.pos)
        return tok

    # -- grammar
    def parse(self) -> Expr:
        if self.tok.kind == "end":
            raise self.error("empty expression", 0, "write e.g. value >= 4")
        expr = self.or_expr()
        if self.tok.kind != "end":
            raise self.error(
                f"unexpected '{self.tok.text}'", self.tok.pos, "join tests with 'and' or 'or'"
            )
        if depth(expr) > MAX_DEPTH:
            raise self.error(
                f"the expression is nested more than {MAX_DEPTH} levels deep (each 'and', 'or' "
                "and 'not' is a level)",
                0,
                "use 'in (...)' for a list of values, or split the condition",
            )
        return expr

    def or_expr(self) -> Expr:
        left = self.and_expr()
        while self.accept("keyword", "or"):
            left = Or(left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.not_expr()
        while self.accept("keyword", "and"):
            left = And(left, self.not_expr())
        return left

    def not_expr(self) -> Expr:
        tok = self.accept("keyword", "not")
        if tok:
            self.enter(tok.pos)
            operand = self.not_expr()
            self.depth -= 1
            return Not(operand)
        return self.primary()

    def primary(self) -> Expr:
        tok = self.accept("punct", "(")
        if tok:
            self.enter(tok.pos)
            inner = self.or_expr()
            self.expect("punct", ")", "')'")
            self.depth -= 1
            return inner
        self.count_test(self.tok.pos)
        field = self.field()
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            op = {"=": "==", "<>": "!="}.get(tok.text, tok.text)
            lit = self.literal()
            if lit.value is None:
                raise self.error(
                    "comparison with null is never true", tok.pos, "use 'is null' or 'is not null'"
                )
            self.check_type(field, lit, tok.pos)
            return Compare(op, field, lit)  # type: ignore[arg-type]
        if self.accept("keyword", "is"):
            negated = self.accept("keyword", "not") is not None
            self.expect("keyword", "null", "'null' after 'is'")
            return IsNull(field, negated)
        if self.accept("keyword", "between"):
            low = self.literal()
            self.expect("keyword", "and", "'and' in 'between A and B'")
            high = self.literal()
            for lit in (low, high):
                self.check_type(field, lit, tok.pos)
            self.check_one_kind(field, (low, high), tok.pos)
            return Between(field, low, high)
        negated = False
        if tok.kind == "keyword" and tok.text == "not":
            self.advance()
            negated = True
            if self.tok.kind != "keyword" or self.tok.text != "in":
                raise self.error("expected 'in' after 'not'", self.tok.pos)
        if self.accept("keyword", "in"):
            self.expect("punct", "(", "'(' to start the list")
            items = [self.literal()]
            while self.accept("punct", ","):
                items.append(self.literal())
            self.expect("punct", ")", "')' to end the list")
            for lit in items:
                if lit.value is None:
                    raise self.error("null in an 'in' list never matches", tok.pos, "use 'is null'")
                self.check_type(field, lit, tok.pos)
            self.check_one_kind(field, items, tok.pos)
            return InList(field, tuple(items), negated)
        found = tok.text or "the end"
        raise self.error(
            f"expected a comparison after '{field}', found '{found}'",
            tok.pos,
            "use ==, !=, <, <=, >, >=, in (...), is null, or between",
        )

    def field(self) -> Field:
        tok = self.tok
        if tok.kind != "word":
            found = tok.text or "the end"
            raise self.error(
                f"expected a field, found '{found}'",
                tok.pos,
                "fields are value, actor, type and attrs.<key>",
            )
        self.advance()
        if self.tok.kind == "punct" and self.tok.text == "(":
            raise self.error(
                f"function calls are not part of the where language ('{tok.text}(')", tok.pos
            )
        name = tok.text
        if name.startswith("attrs."):
            return Field("attrs", name.split(".", 1)[1])
        if name in FIELDS:
            return Field(name)
        hint = (
            suggest(name, [*FIELDS, "attrs.<key>"])
            or "fields are value, actor, type and attrs.<key>"
        )
        raise self.error(f"unknown field '{name}'", tok.pos, hint)

    def literal(self) -> Lit:
        tok = self.advance()
        if tok.kind == "number":
            num = float(tok.text)
            if not abs(num) <= MAX_NUMBER:
                raise self.error(
                    f"the number {tok.text[:40]} is too large",
                    tok.pos,
                    f"numbers in a definition are finite and at most {MAX_NUMBER:,.0f} in size",
                )
            return Lit(int(num) if num.is_integer() and "." not in tok.text else num)
        if tok.kind == "string":
            quote = tok.text[0]
            return Lit(tok.text[1:-1].replace(quote * 2, quote))
        if tok.kind == "keyword" and tok.text in {"true", "false"}:
            return Lit(tok.text == "true")
        if tok.kind == "keyword" and tok.text == "null":
            return Lit(None)
        found = tok.text or "the end"
        hint = "quote text values, e.g. 'ai'" if tok.kind == "word" else None
        raise self.error(f"expected a literal value, found '{found}'", tok.pos, hint)

    def check_one_kind(self, field: Field, lits: Sequence[Lit], pos: int) -> None:
        """Refuse numbers beside text in one list or range.

        A list or range holding a number compares the field as a number, and the engine would
        then have to read the text items as numbers too: a query error at run time rather
        than a definition error here.
        """
        numbers = [_is_number(lit) for lit in lits]
        if any(numbers) and not all(numbers):
            raise self.error(
                f"'{field}' is compared with numbers and text in one list or range",
                pos,
                "use only numbers, or only quoted text",
            )

    def check_type(self, field: Field, lit: Lit, pos: int) -> None:
        """Reject comparisons that can never be true, e.g. ``actor > 3`` or ``value == 'x'``."""
        kind = FIELDS.get(field.name)
        if (kind == "number" and not isinstance(lit.value, int | float)) or (
            kind == "number" and isinstance(lit.value, bool)
        ):
            raise self.error(f"'{field}' is a number; {lit} is not", pos)
        if kind == "text" and not isinstance(lit.value, str):
            raise self.error(f"'{field}' is text; write {lit} in quotes", pos)


def _is_number(lit: Lit) -> bool:
    return isinstance(lit.value, int | float) and not isinstance(lit.value, bool)


def parse_where(text: str, where: Location | None = None) -> Expr:
    """Parse and check a where expression. Raises :class:`WhereError` naming the position."""
    return _Parser(text, where or Location()).parse()


def depth(expr: Expr) -> int:
    """How many ``and`` / ``or`` / ``not`` nodes the deepest test sits under (0 for a test).

    Walked with a list rather than recursion: it is the check that keeps recursive walks safe.
    """
    deepest = 0
    todo: list[tuple[Expr, int]] = [(expr, 0)]
    while todo:
        node, level = todo.pop()
        deepest = max(deepest, level)
        match node:
            case And(left=a, right=b) | Or(left=a, right=b):
                todo += [(a, level + 1), (b, level + 1)]
            case Not(operand=a):
                todo.append((a, level + 1))
    return deepest


def fields_used(expr: Expr) -> set[str]:
    """The fields an expression reads, as written (``value``, ``attrs.channel``, ...)."""
    match expr:
        case Compare(field=f) | InList(field=f) | IsNull(field=f) | Between(field=f):
            return {str(f)}
        case And(left=a, right=b) | Or(left=a, right=b):
            return fields_used(a) | fields_used(b)
        case Not(operand=a):
            return fields_used(a)
    raise AssertionError(f"unknown node {expr!r}")  # pragma: no cover
