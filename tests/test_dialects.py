"""Differential tests: the printed SQL of each engine gives DuckDB's verdicts, entity by entity.

DuckDB is the reference engine (itself checked against the pandas reference in
``test_reference_property.py``). The same definitions run on Spark (local, through
``count_on_spark``: the compiled tree in Spark's dialect, with ANSI mode as Spark 4 ships it)
and on PostgreSQL 15 (the text ``truecount sql --dialect postgres`` prints, over ``attrs`` as
``text`` and as ``jsonb``), and every verdict field is compared.

Definitions: every example and packaged library definition, over events generated from each
definition's own types, actors and literals, so that its conditions are exercised; and
Hypothesis-generated definitions over logs with the awkward parts of real exports: null fields,
text that is not a number where a number is read, times with non-UTC offsets, JSON with quotes
and escapes. Example counts are bounded so the whole file stays within a few minutes on two
cores. Spark and PostgreSQL are never skipped; see ``engines.py`` for how to deselect them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import truecount
from engines import load_postgres, postgres, spark
from reference import SCHEMA, canonical_rows
from test_reference_property import Case, cases
from truecount.definition.model import Definition
from truecount.definition.where import Field, Lit
from truecount.engine.compile import _plan, compile_sql
from truecount.engine.spark import count_on_spark

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = sorted((ROOT / "examples").glob("*.yaml")) + sorted(
    (ROOT / "src" / "truecount" / "library").glob("*.yaml")
)

# ------------------------------------------------------------------------------ engines


def duckdb_rows(definition: Definition, events: pa.Table, as_of: dt.datetime | None) -> Any:
    result = truecount.count(definition, events, as_of=as_of)
    return canonical_rows(result.verdicts.to_pandas())


def spark_rows(
    definition: Definition, events: pa.Table, as_of: dt.datetime | None, folder: Path
) -> Any:
    path = folder / "events.parquet"
    pq.write_table(events, path)
    result = count_on_spark(definition, [str(path)], as_of=as_of, spark=spark())
    return canonical_rows(result.verdicts.to_pandas())


def postgres_rows(
    definition: Definition, events: pa.Table, as_of: dt.datetime | None, attrs_type: str
) -> Any:
    """Load the events and run the printed PostgreSQL text (``as_of`` None: the data's own)."""
    with postgres().connect() as con:
        table = f"events_{attrs_type}"
        load_postgres(con, events, table, attrs_type)
        sql = compile_sql(definition, as_of, dialect="postgres", events_table=table)
        cur = con.execute(sql)
        names = [c.name for c in cur.description]
        frame = pd.DataFrame(cur.fetchall(), columns=names)
    return canonical_rows(frame)


def assert_same(want: dict[Any, Any], got: dict[Any, Any], engine: str, context: str) -> None:
    """Every candidate and every verdict field of ``got`` equals DuckDB's."""
    assert set(got) == set(want), (
        f"{engine}: candidates differ: only in {engine} {sorted(set(got) - set(want))[:5]}, "
        f"only in DuckDB {sorted(set(want) - set(got))[:5]}\n{context}"
    )
    for key, row in want.items():
        other = got[key]
        for name, value in row.items():
            have = other.get(name)
            if name == "quantity":
                ok = have == pytest.approx(value, rel=1e-9, abs=1e-9)
            else:
                ok = have == value
            assert ok, f"{engine}: {key} {name}: {have!r}, DuckDB {value!r}\n{context}"


# ------------------------------------------------------------------- events per definition


def _walk(node: Any) -> list[Any]:
    out = [node]
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            for item in value if isinstance(value, list | tuple) else [value]:
                if dataclasses.is_dataclass(item) or isinstance(item, Lit | Field):
                    out.extend(_walk(item))
    return out


def events_for(definition: Definition, seed: int, entities: int = 40) -> pa.Table:
    """A seeded log in the definition's own vocabulary: its types, actors, attrs and literals.

    Attribute values mix the literals the definition compares with, numbers, numeric text with
    spaces, text that is not a number, nulls and JSON with quotes; times carry a +02:00 offset.
    """
    rng = random.Random(seed)
    plan = _plan(definition)
    selectors = [definition.anchor, *[leaf.sel for leaf in plan.leaves]]
    selectors += [spec.agg for _, spec in plan.quantity_cols]
    types = sorted({s.type for s in selectors})
    actors = sorted({s.actor for s in selectors if s.actor} | {"ai", "human", "customer"})
    keys: set[str] = {"note"}
    literals: list[Any] = []
    for sel in selectors:
        field_name = getattr(sel, "field", None)
        if isinstance(field_name, str) and field_name.startswith("attrs."):
            keys.add(field_name.split(".", 1)[1])
        if sel.where_expr is not None:
            for node in _walk(sel.where_expr):
                if isinstance(node, Field) and node.attr is not None:
                    keys.add(node.attr)
                if isinstance(node, Lit) and node.value is not None:
                    literals.append(node.value)
    pool: list[Any] = [*literals, 1, 4, 50, 120.5, " 7 ", "n/a", "", None, 'say "hi"', "a\\b"]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = []
    n = 0
    for e in range(entities):
        for _ in range(rng.randint(1, 9)):
            ts = start + dt.timedelta(minutes=rng.randint(0, 90 * 24 * 60 // 7) * 7)
            # a third of the events look like the anchor; literals are favoured as values
            anchor_like = rng.random() < 0.35
            attrs = {
                k: rng.choice(literals if literals and rng.random() < 0.5 else pool)
                for k in sorted(keys)
                if rng.random() < 0.7
            }
            rows.append(
                {
                    "event_id": f"ev{n:05d}",
                    "entity_id": f"t{e:03d}",
                    "ts": ts.astimezone(dt.timezone(dt.timedelta(hours=2))),
                    "type": definition.anchor.type if anchor_like else rng.choice(types),
                    "actor": (definition.anchor.actor if anchor_like else None)
                    or rng.choice([*actors, None]),
                    "value": rng.choice([None, 1.0, 3.0, 4.0, 5.0, 80.0, 250.0]),
                    "attrs": None if rng.random() < 0.1 else json.dumps(attrs),
                    "source": "generated",
                    "recorded_at": None,
                    "seq": rng.choice([None, 0, 1, 2]),
                }
            )
            n += 1
    schema = SCHEMA.set(SCHEMA.get_field_index("ts"), pa.field("ts", pa.timestamp("us", "+02:00")))
    return pa.Table.from_pylist(rows, schema=schema)


@pytest.mark.spark
@pytest.mark.postgres
@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_examples_and_library_agree(path: Path, tmp_path: Path) -> None:
    """Every shipped definition: DuckDB, Spark and PostgreSQL (text and jsonb) agree."""
    definition = truecount.load_definition(path)
    events = events_for(definition, seed=len(path.stem))
    want = duckdb_rows(definition, events, None)
    assert want, f"the generated log gives {path.name} no candidate: the test would prove nothing"
    context = f"definition {path}"
    assert_same(want, spark_rows(definition, events, None, tmp_path), "spark", context)
    for attrs_type in ("text", "jsonb"):
        got = postgres_rows(definition, events, None, attrs_type)
        assert_same(want, got, f"postgres ({attrs_type} attrs)", context)


# ------------------------------------------------------------------- generated definitions

AWKWARD_SCORES = ["n/a", "", " 4 ", "3.5", "1e0", None, "4", 'say "5"', "2,5", 7]
NOTES = ['he said "hi"', "back\\slash", "tab\tand\nnewline", "ünïcode ✓", '{"x": 1}', "*/"]
OFFSETS = [None, "+05:30", "-08:00", "Europe/Berlin"]


@st.composite
def awkward_cases(draw: st.DrawFn, ambiguous: bool) -> Case:
    """A generated case whose log is made awkward the way real exports are."""
    case = draw(cases(ambiguous=ambiguous))
    rows = case.events.to_pylist()
    for row in rows:
        attrs = json.loads(row["attrs"]) if row["attrs"] else None
        if attrs is not None:
            if draw(st.integers(0, 2)) == 0:
                attrs["score"] = draw(st.sampled_from(AWKWARD_SCORES))
            if draw(st.integers(0, 3)) == 0:
                attrs["note"] = draw(st.sampled_from(NOTES))
            if "channel" in attrs and draw(st.integers(0, 5)) == 0:
                attrs["channel"] = 'ch"at'
            row["attrs"] = json.dumps(attrs)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    offset = draw(st.sampled_from(OFFSETS))
    if offset is not None:
        i = table.schema.get_field_index("ts")
        aware = table.column("ts").cast(pa.timestamp("us", "UTC")).cast(pa.timestamp("us", offset))
        table = table.set_column(i, pa.field("ts", pa.timestamp("us", offset)), aware)
    return Case(case.yaml_text, table, case.as_of)


def _check_postgres(case: Case) -> None:
    definition = truecount.parse_definition(case.yaml_text)
    want = duckdb_rows(definition, case.events, case.as_of)
    for attrs_type in ("text", "jsonb"):
        got = postgres_rows(definition, case.events, case.as_of, attrs_type)
        assert_same(want, got, f"postgres ({attrs_type} attrs)", case.describe())


GENERATED = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.postgres
@settings(GENERATED, max_examples=60)
@given(awkward_cases(ambiguous=False))
def test_generated_definitions_agree_on_postgres(case: Case) -> None:
    _check_postgres(case)


@pytest.mark.postgres
@settings(GENERATED, max_examples=60)
@given(awkward_cases(ambiguous=True))
def test_generated_definitions_agree_on_postgres_ambiguous(case: Case) -> None:
    """Null seq, first/last over null fields, nested exclude: the null-skipping forms."""
    _check_postgres(case)


@pytest.mark.spark
@settings(GENERATED, max_examples=25)
@given(awkward_cases(ambiguous=True))
def test_generated_definitions_agree_on_spark(case: Case) -> None:
    definition = truecount.parse_definition(case.yaml_text)
    want = duckdb_rows(definition, case.events, case.as_of)
    with tempfile.TemporaryDirectory() as tmp:
        got = spark_rows(definition, case.events, case.as_of, Path(tmp))
    assert_same(want, got, "spark", case.describe())
