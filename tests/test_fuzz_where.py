"""Fuzzing the where language: any text gives a tree or a located error, never a crash.

Three kinds of input: arbitrary text; token soup (the language's own words, operators and
literals in random order, which reaches far deeper into the parser than random characters);
and generated trees, printed, parsed back, compiled to SQL and run on DuckDB, where every row's
result is compared with a plain-Python evaluation under SQL's three-valued logic.
"""

from __future__ import annotations

import json
import math

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import fuzz
from truecount.definition.where import (
    MAX_DEPTH,
    MAX_NESTING,
    MAX_TESTS,
    MAX_TEXT,
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
    parse_where,
)
from truecount.engine.compile import where_sql
from truecount.errors import Location, WhereError
from truecount.ingest.canonical import create_table_sql

HERE = Location(file="def.yaml", line=7, key="conditions.c.exists.where")


def parses_or_refuses(text: str) -> None:
    """The expression parses, or the error is a WhereError naming the file, line and position."""
    try:
        tree = parse_where(text, HERE)
    except WhereError as exc:
        problem = exc.problems[0]
        assert problem.location == HERE
        assert "at position" in problem.message
        assert len(problem.message) < 600, "a message quotes a stretch, not the whole text"
        return
    assert parse_where(str(tree)) == tree


@fuzz(300)
@given(st.text(max_size=80))
def test_arbitrary_text(text: str) -> None:
    parses_or_refuses(text)


TOKENS = [
    "value", "actor", "type", "attrs.x", "attrs.a-b", "attrs.", "valu", "attrs",
    "==", "=", "!=", "<>", "<", "<=", ">", ">=", "in", "not", "is", "null", "between", "and",
    "or", "true", "false", "(", ")", ",", "1", "-2.5", "1e3", "1e999", ".5", "'ai'", "'it''s'",
    '"x"', "'", '"', "f(", ";", "--", "*", "$", "\\", "\u00e9", "\x00",
]  # fmt: skip


@fuzz(400)
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from([" ", ""]))
def test_token_soup(tokens: list[str], sep: str) -> None:
    parses_or_refuses(sep.join(tokens))


# --------------------------------------------------------------------------- generated trees
INTS = st.integers(min_value=-50, max_value=50)
WORDS = st.sampled_from(["ai", "human", "it's", "", "x y", "é", "a\nb", "true"])


@st.composite
def single_tests(draw: st.DrawFn) -> Expr:
    """One test over a field, with literals of the field's kind (so it always type-checks)."""
    name = draw(st.sampled_from(["value", "actor", "attrs.n", "attrs.s"]))
    field = Field("attrs", name[6:]) if name.startswith("attrs.") else Field(name)
    numeric = name in {"value", "attrs.n"}
    lit = st.builds(Lit, INTS if numeric else WORDS)
    kind = draw(st.sampled_from(["cmp", "in", "null", "between"]))
    if kind == "cmp":
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        return Compare(op, field, draw(lit))
    if kind == "in":
        items = tuple(draw(st.lists(lit, min_size=1, max_size=4)))
        return InList(field, items, draw(st.booleans()))
    if kind == "null":
        return IsNull(field, draw(st.booleans()))
    return Between(field, draw(lit), draw(lit))


trees = st.recursive(
    single_tests(),
    lambda inner: st.one_of(
        st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)
    ),
    max_leaves=8,
)

Row = tuple[int | None, str | None, int | None, str | None]
rows = st.lists(
    st.tuples(
        st.none() | INTS,
        st.none() | WORDS,
        st.none() | INTS,
        st.none() | WORDS,
    ),
    min_size=1,
    max_size=6,
)


def _read(field: Field, row: Row) -> object:
    value, actor, n, s = row
    return (
        {"value": value, "actor": actor, "type": "message"}.get(field.name)
        if (field.attr is None)
        else {"n": n, "s": s}[field.attr]
    )


def evaluate(expr: Expr, row: Row) -> bool | None:
    """SQL's three-valued logic, written out in Python: None is unknown."""
    match expr:
        case Compare(op=op, field=f, literal=lit):
            x = _read(f, row)
            if x is None:
                return None
            a, b = x, lit.value
            return {
                "==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b,  # type: ignore[operator]
            }[op]  # fmt: skip
        case InList(field=f, items=items, negated=neg):
            x = _read(f, row)
            if x is None:
                return None
            found = any(x == i.value for i in items)
            return not found if neg else found
        case IsNull(field=f, negated=neg):
            return (_read(f, row) is not None) if neg else (_read(f, row) is None)
        case Between(field=f, low=lo, high=hi):
            x = _read(f, row)
            if x is None:
                return None
            return bool(lo.value <= x <= hi.value)  # type: ignore[operator]
        case And(left=a, right=b):
            left, right = evaluate(a, row), evaluate(b, row)
            if left is False or right is False:
                return False
            return None if left is None or right is None else True
        case Or(left=a, right=b):
            left, right = evaluate(a, row), evaluate(b, row)
            if left is True or right is True:
                return True
            return None if left is None or right is None else False
        case Not(operand=a):
            inner = evaluate(a, row)
            return None if inner is None else not inner
    raise AssertionError(expr)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute(create_table_sql("e"))
    return c


@fuzz(120)
@given(tree=trees, data=rows)
def test_generated_trees_print_parse_compile_and_agree(
    con: duckdb.DuckDBPyConnection, tree: Expr, data: list[Row]
) -> None:
    text = str(tree)
    assert parse_where(text) == tree
    for dialect in ("spark", "snowflake", "bigquery", "trino", "postgres"):
        assert where_sql(tree, "e").sql(dialect)
    con.execute("DELETE FROM e")
    for i, (value, actor, n, s) in enumerate(data):
        attrs = json.dumps({k: v for k, v in (("n", n), ("s", s)) if v is not None})
        con.execute(
            "INSERT INTO e (event_id, entity_id, ts, type, actor, value, attrs) "
            "VALUES (?, 'T', TIMESTAMP '2026-01-01', 'message', ?, ?, ?)",
            [str(i), actor, value, attrs],
        )
    predicate = where_sql(tree, "e").sql("duckdb")
    got = con.execute(f"SELECT event_id, {predicate} FROM e ORDER BY event_id::INT").fetchall()
    expected = [(str(i), evaluate(tree, row)) for i, row in enumerate(data)]
    assert got == expected, text


# --------------------------------------------------------------------------- the size bounds
@fuzz(60)
@given(st.integers(min_value=MAX_NESTING + 1, max_value=5000), st.sampled_from(["(", "not ("]))
def test_deep_nesting_is_refused_cleanly(depth: int, opener: str) -> None:
    text = opener * depth + "value > 1" + ")" * depth
    with pytest.raises(WhereError) as caught:
        parse_where(text, HERE)
    message = caught.value.problems[0].message
    assert "nested more than" in message or "characters long" in message


def test_the_deepest_allowed_expression_prints_back_and_compiles(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """At the bounds, printing, parsing back and compiling (recursive all) stay on the stack."""
    chain = " and ".join(["value >= 1"] * (MAX_DEPTH - 9))  # 40 levels of 'and'
    text = "not (" * 10 + chain + ")" * 10
    tree = parse_where(text)
    assert parse_where(str(tree)) == tree
    predicate = where_sql(tree, "e").sql("duckdb")
    con.execute("DELETE FROM e")
    con.execute(
        "INSERT INTO e (event_id, entity_id, ts, type, value) "
        "VALUES ('1', 'T', TIMESTAMP '2026-01-01', 'm', 2)"
    )
    assert con.execute(f"SELECT {predicate} FROM e").fetchall() == [(True,)]  # ten nots
    with pytest.raises(WhereError, match=f"more than {MAX_DEPTH} levels"):
        parse_where("not " + text)
    wide = " or ".join(f"({' and '.join(['value >= 1'] * 5)})" for _ in range(MAX_TESTS // 5))
    assert parse_where(wide)
    with pytest.raises(WhereError, match=f"more than {MAX_TESTS} tests"):
        parse_where(wide + " or value > 2")
    with pytest.raises(WhereError, match="characters long"):
        parse_where("value in (" + ", ".join(["1"] * MAX_TEXT) + ")")


@pytest.mark.parametrize("number", ["1e999", "-1e400", "1" * 400, "1e16"])
def test_numbers_beyond_the_bound_are_refused(number: str) -> None:
    with pytest.raises(WhereError, match="too large"):
        parse_where(f"value > {number}")
    assert math.isfinite(float(parse_where("value > 1e15").literal.value))  # type: ignore[union-attr, arg-type]


@pytest.mark.parametrize(
    "text", ["attrs.x in (1, 'a')", "attrs.x between 1 and 'b'", "attrs.x not in (true, 2)"]
)
def test_numbers_and_text_in_one_list_are_refused(text: str) -> None:
    """Found by the fuzzer: such a list compiled, then failed in the engine at run time."""
    with pytest.raises(WhereError, match="numbers and text in one list"):
        parse_where(text)
