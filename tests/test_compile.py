"""The compiler: golden SQL per example and dialect, and SQL that actually runs on DuckDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
import sqlglot

import truecount
from truecount.engine.compile import compile_sql
from truecount.ingest.canonical import create_table_sql

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
GOLDEN = Path(__file__).parent / "golden"
AS_OF = dt.datetime(2026, 6, 30, 23, 59, 59)
GOLDEN_DIALECTS = ("duckdb", "spark", "postgres")


@pytest.mark.parametrize("dialect", GOLDEN_DIALECTS)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_golden_sql(path: Path, dialect: str, update_golden: bool) -> None:
    """The SQL of every example is reviewed text: a change must show up in the diff."""
    sql = compile_sql(truecount.load_definition(path), AS_OF, dialect=dialect) + "\n"
    golden = GOLDEN / f"{path.stem}.{dialect}.sql"
    if update_golden or not golden.exists():
        golden.write_text(sql, encoding="utf-8")
        if not update_golden:
            pytest.fail(f"{golden.name} did not exist; written now, review and commit it")
    assert sql == golden.read_text(encoding="utf-8"), (
        f"SQL of {path.name} for {dialect} changed; run pytest --update-golden and review the diff"
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_sql_runs_on_duckdb(path: Path) -> None:
    """The printed DuckDB SQL is runnable as is on a canonical events table."""
    con = duckdb.connect()
    con.execute(create_table_sql())
    con.execute(
        "INSERT INTO events VALUES ('e1', 'X', TIMESTAMP '2026-01-01 00:00:00', 'closed', 'ai', "
        "NULL, '{\"kind\": \"demo\"}', 'test', NULL, 1)"
    )
    sql = compile_sql(truecount.load_definition(path), AS_OF)
    con.execute(sql).fetchall()


@pytest.mark.parametrize("dialect", ["spark", "snowflake", "bigquery", "trino", "postgres"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_other_dialects_parse_back(path: Path, dialect: str) -> None:
    """Every dialect's text is well-formed SQL of that dialect (a full parse succeeds)."""
    sql = compile_sql(truecount.load_definition(path), AS_OF, dialect=dialect)
    tree = sqlglot.parse_one(sql, read=dialect)
    assert tree.find(sqlglot.exp.Select) is not None


def test_user_text_becomes_literals_not_sql() -> None:
    """A type or where literal full of SQL stays a string literal: nothing is injected."""
    evil = "x'; DROP TABLE events; --"
    text = f"""
truecount: 1
name: evil
version: 1
anchor: {{type: "{evil}"}}
conditions:
  c:
    exists: {{type: rated, where: "attrs.note == 'a''; DROP TABLE events; -- */'"}}
"""
    d = truecount.parse_definition(text)
    sql = compile_sql(d, AS_OF)
    con = duckdb.connect()
    con.execute(create_table_sql())
    con.execute(sql).fetchall()
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
    statements = sqlglot.parse(sql, read="duckdb")
    assert len(statements) == 1


def test_hash_ignores_formatting_but_not_meaning() -> None:
    base = """
truecount: 1
name: r
version: 1
anchor: {type: closed, actor: ai}
conditions:
  ok: {exists: {type: rated, within: 2w, where: "value>=4 and actor=='customer'"}}
"""
    reformatted = """# a comment
truecount: 1
version: 1
name: r
anchor:
  actor: ai
  type: closed
  pick: first
conditions:
  ok:
    exists:
      type: rated
      within: 14d
      where: "(value >= 4) and (actor = 'customer')"
"""
    changed = base.replace("2w", "15d")
    a, b, c = (truecount.parse_definition(t) for t in (base, reformatted, changed))
    assert a.sha256 == b.sha256
    assert a.sha256 != c.sha256


def test_default_as_of_is_written_into_the_query_not_the_clock() -> None:
    """No as-of given: the query holds the data's own horizon, so two runs print the same text,
    and that text, run by hand over the demo events, gives ``count``'s numbers."""
    import time

    from truecount.demo import SupportScenario, generate
    from truecount.demo import __file__ as demo_init

    definition = truecount.load_definition(Path(demo_init).parent / "resolved_ticket.yaml")
    first = compile_sql(definition, None)
    time.sleep(1.1)
    assert compile_sql(definition, None) == first
    assert "MAX(ts)" in first

    events = generate(SupportScenario(tickets=400)).events
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("events", events)
    by_hand = con.execute(
        f"SELECT period, status, count(*) FROM ({first}) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    result = truecount.count(definition, events)
    counted = [
        (p.period, status, n)
        for p in result.periods
        for status, n in (
            ("counted", p.counted),
            ("excluded", p.excluded),
            ("not_counted", p.not_counted),
            ("pending", p.pending),
        )
        if n
    ]
    assert by_hand == counted
    assert sum(n for _, s, n in by_hand if s == "counted") > 0


def test_known_at_without_as_of_takes_known_at() -> None:
    """``sql --known-at T`` counts as of T, as ``count --known-at T`` does."""
    definition = truecount.load_definition(EXAMPLES[0])
    known = dt.datetime(2026, 3, 1, 12, 0)
    assert compile_sql(definition, None, known_at=known) == compile_sql(
        definition, known, known_at=known
    )


def test_postgres_reads_numbers_only_from_numeric_text() -> None:
    """The pattern standing in for TRY_CAST on PostgreSQL accepts what a cast accepts there
    without an error, and nothing else (checked with Python's own regular expressions)."""
    import re

    from truecount.engine.compile import PG_NUMBER_PATTERN

    number = re.compile(PG_NUMBER_PATTERN)
    for text in ["4", " 4 ", "-2.5", ".5", "4.", "1e3", "1E+30", "inf", "-Infinity", "NaN"]:
        assert number.match(text), text
    for text in ["", " ", "n/a", "12abc", "1,5", "0x10", "1e400", "1" * 201, "true", "--1"]:
        assert not number.match(text), text
