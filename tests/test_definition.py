"""Definition loading: every bad input names file, line and key; the where language."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import truecount
from truecount.definition.where import parse_where
from truecount.errors import DefinitionError, WhereError

GOOD = """truecount: 1
name: r
version: 1
anchor: {type: closed, actor: ai}
conditions:
  ok:
    exists: {type: rated, within: 7d, where: "value >= 4"}
"""


def _error(text: str) -> str:
    with pytest.raises(DefinitionError) as info:
        truecount.parse_definition(text, file="def.yaml")
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("truecount: 1\nname: r\nversion: 1\nanchor: [1\n", "def.yaml:5: not valid YAML"),
        (
            GOOD.replace("within: 7d", "withn: 7d"),
            "def.yaml:7, key 'conditions.ok.exists.withn': unknown key 'withn' (did you mean 'within'?)",
        ),
        (GOOD.replace("exists:", "exsits:"), "unknown key 'exsits' (did you mean 'exists'?)"),
        (GOOD.replace("version: 1", "version: one"), "def.yaml:3, key 'version'"),
        (
            GOOD.replace("7d", "7 days"),
            "'7 days' is not a duration; expected a positive whole number and a unit",
        ),
        (GOOD.replace("7d", "1mo"), "'1mo' is not a duration"),
        (GOOD.replace("7d", "0d"), "'0d' must be longer than zero"),
        (
            GOOD.replace("value >= 4", "vaule >= 4"),
            "unknown field 'vaule' at position 1 of 'vaule >= 4' (did you mean 'value'?)",
        ),
        (
            GOOD.replace("value >= 4", "lower(actor) == 'x'"),
            "function calls are not part of the where language",
        ),
        (GOOD.replace("value >= 4", "value >= 4; drop"), "unexpected character ';'"),
        (GOOD.replace("value >= 4", "value ~ 4"), "unexpected character '~'"),
        (GOOD.replace("value >= 4", "actor > 3"), "'actor' is text; write 3 in quotes"),
        (GOOD.replace("value >= 4", "value == null"), "comparison with null is never true"),
        (GOOD.replace("exists:", "maybe:"), "unknown key 'maybe'"),
        (
            GOOD.replace("actor: ai}", "actor: ai, pick: second}"),
            "def.yaml:4, key 'anchor.pick': 'second' is not allowed; expected 'first', 'last' or 'each'",
        ),
        (GOOD + "period: {every: fortnight}\n", "key 'period.every'"),
        (GOOD + "period: {timezone: Mars/Olympus}\n", "unknown time zone 'Mars/Olympus'"),
        (GOOD.replace("truecount: 1\n", ""), "missing 'truecount: 1'"),
        (
            GOOD.replace("truecount: 1", "truecount: 2"),
            "key 'truecount': 2 is not allowed; expected 1",
        ),
        (GOOD.replace("name: r", "name: 'two words'"), "'two words' is not a name"),
        (
            GOOD + "  twice:\n    exists: {type: a}\n    absent: {type: b}\n",
            "a condition needs exactly one of exists, absent",
        ),
        (
            GOOD + "  bad:\n    all: [{exists: {type: a}}]\n    if_no_data: pass\n",
            "if_no_data belongs on a leaf condition",
        ),
        (
            GOOD + "  w:\n    exists: {type: a, within: 2d, before: 1d}\n",
            "give one window, not within and before",
        ),
        (GOOD + "  c:\n    count: {type: a}\n", "needs a comparison"),
        (
            GOOD + "  c:\n    aggregate: {fn: median, type: a, at_least: 1}\n",
            "'median' is not allowed",
        ),
        (
            GOOD + "quantity: {sum: {type: p}, count: {type: q}}\n",
            "a quantity needs exactly one of sum",
        ),
        (GOOD + "quantity: {sum: {type: p, field: amount}}\n", "'amount' is not a numeric field"),
        ("", "the file is empty"),
        ("- a\n- b\n", "a definition must be a mapping"),
        (GOOD + "name: again\n", "key 'name' appears twice"),
    ],
)
def test_bad_definitions_name_line_and_key(text: str, expected: str) -> None:
    assert expected in _error(text)


COUNT = GOOD + "  c:\n    count: {type: reopened, within: 14d, %s}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            COUNT % "at_most: true",
            "def.yaml:9, key 'conditions.c.count.at_most': true is a boolean, not a number "
            "(write a number without quotes, e.g. at_most: 3)",
        ),
        (
            COUNT % 'at_most: "3"',
            "def.yaml:9, key 'conditions.c.count.at_most': '3' is text, not a number",
        ),
        (
            GOOD.replace("version: 1", "version: true"),
            "def.yaml:3, key 'version': true is a boolean, not a whole number "
            "(write a whole number without quotes, e.g. version: 2)",
        ),
        (GOOD.replace("version: 1", 'version: "2"'), "key 'version': '2' is text"),
        (GOOD.replace("version: 1", "version: 1.5"), "key 'version': 1.5 is a decimal"),
        (GOOD.replace("truecount: 1", "truecount: true"), "key 'truecount': True is not allowed"),
        (
            GOOD + "  w:\n    exists: {type: a, lifetime: 'yes'}\n",
            "key 'conditions.w.exists.lifetime': 'yes' is text, not true or false",
        ),
        (GOOD + "quantity: true\n", "key 'quantity': true is a boolean, not a number"),
        (
            COUNT % "at_least: -1",
            "def.yaml:9, key 'conditions.c.count.at_least': -1 is below zero, and a count is 0 "
            "or more, so at_least: -1 would always hold",
        ),
        (COUNT % "at_most: -1", "so at_most: -1 would never hold"),
        (
            COUNT % "at_least: 5, at_most: 2",
            "def.yaml:9, key 'conditions.c.count': at_least: 5 and at_most: 2 can never all "
            "hold (no count, a whole number 0 or more, passes them all)",
        ),
        (COUNT % "less_than: 0", "less_than: 0 can never all hold"),
        (COUNT % "more_than: 2, less_than: 3", "more_than: 2 and less_than: 3 can never"),
        (COUNT % "equals: 1.5", "equals: 1.5 can never all hold"),
        (
            GOOD + "  s:\n    aggregate: {fn: sum, type: p, more_than: 10, at_most: 10}\n",
            "key 'conditions.s.aggregate': at_most: 10 and more_than: 10 can never all hold "
            "(no number passes them all)",
        ),
    ],
)
def test_wrong_types_and_impossible_comparisons_are_refused(text: str, expected: str) -> None:
    assert expected in _error(text)


def test_a_quantity_of_the_wrong_type_gets_one_message() -> None:
    with pytest.raises(DefinitionError) as info:
        truecount.parse_definition(GOOD + 'quantity: "2"\n', file="def.yaml")
    assert [p.message for p in info.value.problems] == ["'2' is text, not a number"]


@pytest.mark.parametrize(
    ("comparisons", "expected"),
    [
        ("at_least: 2, at_most: 2", [(">=", 2.0), ("<=", 2.0)]),
        ("at_least: 0", [(">=", 0.0)]),
        ("more_than: 1.5, less_than: 3", [(">", 1.5), ("<", 3.0)]),
        ("at_least: 1e3", [(">=", 1000.0)]),  # YAML 1.2 reads it as a number, PyYAML as text
    ],
)
def test_comparisons_that_can_hold_are_kept_as_numbers(
    comparisons: str, expected: list[tuple[str, float]]
) -> None:
    d = truecount.parse_definition(COUNT % comparisons)
    spec = d.conditions["c"].count
    assert spec is not None and spec.comparisons() == expected
    assert all(type(v) is float for _, v in spec.comparisons())
    assert truecount.parse_definition(
        GOOD + "  s:\n    aggregate: {fn: sum, type: p, at_most: -5}\n"
    )


def test_all_problems_are_reported_at_once() -> None:
    text = GOOD.replace("version: 1", "version: 0").replace("7d", "7x")
    with pytest.raises(DefinitionError) as info:
        truecount.parse_definition(text, file="def.yaml")
    assert len(info.value.problems) == 2
    assert [p.location.line for p in info.value.problems] == [3, 7]


def test_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("within", "witin"), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "truecount", "sql", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "bad.yaml:7" in proc.stderr and "did you mean 'within'" in proc.stderr
    assert proc.stdout == ""


# ---------------------------------------------------------------- where language

FIELDS = st.sampled_from(["value", "actor", "type", "attrs.channel", "attrs.score"])
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8)


@st.composite
def comparisons(draw: st.DrawFn) -> str:
    field = draw(FIELDS)
    numeric = field in {"value", "attrs.score"} or (
        field.startswith("attrs") and draw(st.booleans())
    )
    lit = str(draw(st.integers(-5, 5))) if numeric else "'" + draw(TEXT).replace("'", "''") + "'"
    form = draw(st.sampled_from(["cmp", "in", "null", "between"]))
    if form == "cmp":
        return (
            f"{field} {draw(st.sampled_from(['==', '!=', '<', '<=', '>', '>=', '=', '<>']))} {lit}"
        )
    if form == "in":
        return f"{field} {draw(st.sampled_from(['in', 'not in']))} ({lit}, {lit})"
    if form == "null":
        return f"{field} is {draw(st.sampled_from(['', 'not ']))}null"
    return f"{field} between {lit} and {lit}"


expressions = st.recursive(
    comparisons(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
        inner.map(lambda e: f"not ({e})"),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_where_round_trips_through_its_canonical_text(text: str) -> None:
    """Printing a parsed expression and parsing it again gives the same tree."""
    tree = parse_where(text)
    assert parse_where(str(tree)) == tree


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_where_never_crashes_on_garbage(text: str) -> None:
    """Any text either parses or raises WhereError: never another exception."""
    with contextlib.suppress(WhereError):
        parse_where(text)


def test_where_precedence_and_binds_tighter_than_or() -> None:
    tree = parse_where("value > 1 or value < 0 and actor == 'ai'")
    assert str(tree) == "(value > 1 or (value < 0 and actor == 'ai'))"


def test_a_known_key_in_the_wrong_place_is_not_suggested_back() -> None:
    """``description`` on a condition: refused where it is, with what to do instead, never
    "did you mean 'description'?" (docs/definition.md: only the definition has one)."""
    text = GOOD + "    description: rated well\n"
    message = _error(text)
    assert "def.yaml:8, key 'conditions.ok.description'" in message
    assert "key 'description' is not allowed in 'conditions.ok'" in message
    assert "YAML comment" in message and "did you mean" not in message
    # a key known nowhere still gets its suggestion
    assert "did you mean 'within'?" in _error(GOOD.replace("within: 7d", "withn: 7d"))


def test_a_scalar_where_a_section_belongs_says_how_to_write_it(tmp_path: Path) -> None:
    text = (
        "truecount: 1\nname: x\nversion: 1\nunit: ticket\nperiod: month\n"
        "anchor: {type: closed}\nquantity: 1\n"
    )
    with pytest.raises(DefinitionError) as err:
        truecount.parse_definition(text, file="d.yaml")
    said = str(err.value)
    assert "d.yaml:5, key 'period': 'period' is a section of keys, not 'month'" in said
    assert "period: {every: month, timezone: UTC}" in said
    assert "instance of Period" not in said


def test_a_folder_given_as_a_definition_is_named_so(tmp_path: Path) -> None:
    folder = tmp_path / "defs.yaml"
    folder.mkdir()
    with pytest.raises(DefinitionError, match="a folder, not a file"):
        truecount.load_definition(folder)
