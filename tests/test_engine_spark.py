"""``count`` on Spark: the same JSON as DuckDB, from a workspace, CSV or Parquet, and the export.

The verdict-by-verdict comparison over many definitions is in ``test_dialects.py``; these tests
cover the paths into Spark (a workspace exported first, CSV validated by DuckDB first, Parquet
read directly), the second clock measured on Spark, and the month-partitioned export.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import truecount
from engines import spark
from truecount.demo import SupportScenario, generate
from truecount.engine.export import export_events, parquet_files
from truecount.engine.run import count, known_clock
from truecount.engine.source import open_events
from truecount.engine.spark import SparkEngine, count_on_spark
from truecount.workspace import Workspace

pytestmark = pytest.mark.spark

DEMO = Path(truecount.__file__).parent / "demo" / "resolved_ticket.yaml"


@pytest.fixture(scope="module")
def demo_events() -> pa.Table:
    events: pa.Table = generate(SupportScenario(tickets=600, seed=3)).events
    return events


def _json(result: truecount.CountResult) -> str:
    return json.dumps(result.to_json(), sort_keys=False)


def test_workspace_on_spark_gives_duckdb_json_byte_for_byte(
    tmp_path: Path, demo_events: pa.Table
) -> None:
    ws = Workspace.init(tmp_path / "ws")
    with ws.connect() as con:
        con.register("incoming", demo_events)
        con.execute("INSERT INTO events BY NAME SELECT * FROM incoming")
    definition = truecount.load_definition(DEMO)
    local = count(definition, ws)
    remote = count_on_spark(definition, ws, spark=spark())
    assert local.totals.counted > 0
    assert _json(remote) == _json(local)
    assert remote.verdicts.equals(local.verdicts)
    assert "DATE_FORMAT(" in remote.sql  # the SQL reported is the one Spark ran


def test_csv_events_go_through_duckdb_validation(tmp_path: Path, demo_events: pa.Table) -> None:
    """CSV is never read by Spark (its escape rules mangle the JSON in attrs): DuckDB validates
    it and writes Parquet, and the counts agree with DuckDB's own."""
    path = tmp_path / "events.csv"
    con = duckdb.connect()
    con.register("incoming", demo_events.slice(0, 3000))
    con.execute(f"COPY incoming TO '{path}' (HEADER)")
    definition = truecount.load_definition(DEMO)
    local = count(definition, [path])
    remote = count_on_spark(definition, [path], spark=spark())
    assert _json(remote) == _json(local)


def test_known_at_clock_measured_on_spark_matches_duckdb(
    tmp_path: Path, demo_events: pa.Table
) -> None:
    path = tmp_path / "events.parquet"
    late = pa.array(
        [t + dt.timedelta(days=3) if i % 4 == 0 else None
         for i, t in enumerate(demo_events.column("ts").to_pylist())],
        pa.timestamp("us"),
    )  # fmt: skip
    events = demo_events.set_column(
        demo_events.schema.get_field_index("recorded_at"), "recorded_at", late
    )
    pq.write_table(events, path)
    as_of, known = dt.datetime(2026, 3, 31, 23, 59), dt.datetime(2026, 3, 20)
    engine = SparkEngine(spark(), [str(path)])
    source = open_events([path])
    assert engine.known_clock(as_of, known) == known_clock(source.con, as_of, known)
    assert engine.latest_event() == source.max_ts
    definition = truecount.load_definition(DEMO)
    local = count(definition, [path], known_at=known)
    remote = count_on_spark(definition, [str(path)], known_at=known, spark=spark())
    assert _json(remote) == _json(local)
    assert local.clock is not None and local.clock.held_back > 0


def test_export_writes_months_that_read_back_to_the_same_events(
    tmp_path: Path, demo_events: pa.Table
) -> None:
    source = open_events(demo_events)
    files = export_events(source.con, tmp_path / "out")
    months = sorted({f.parent.name for f in files})
    assert months == ["month=2026-01", "month=2026-02", "month=2026-03", "month=2026-04"]
    again = open_events(parquet_files([str(tmp_path / "out")]))
    order = "ORDER BY event_id"
    want = source.con.execute(f"SELECT * FROM events {order}").fetchall()
    got = again.con.execute(f"SELECT * FROM events {order}").fetchall()
    assert got == want
    with pytest.raises(truecount.errors.InputError, match="already holds Parquet"):
        export_events(source.con, tmp_path / "out")


def test_spark_reads_numbers_safely_under_ansi(tmp_path: Path) -> None:
    """Spark 4 runs in ANSI mode: one "n/a" where a number is read must not fail the query."""
    assert spark().conf.get("spark.sql.ansi.enabled") == "true"
    rows = [
        {"event_id": f"x{i}", "entity_id": f"t{i}", "ts": dt.datetime(2026, 1, 1, i),
         "type": "closed", "attrs": json.dumps({"score": s})}
        for i, s in enumerate(["n/a", "4", " 5 ", None])
    ]  # fmt: skip
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    definition = truecount.parse_definition(
        "truecount: 1\nname: s\nversion: 1\nanchor: {type: closed}\n"
        "conditions:\n  good: {exists: {type: closed, where: 'attrs.score >= 4'}}\n"
        "quantity: 1\n"
    )
    local = count(definition, [path])
    remote = count_on_spark(definition, [str(path)], spark=spark())
    assert _json(remote) == _json(local)


def test_a_failed_spark_job_is_one_line_naming_the_driver_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What Spark says when the verdicts do not fit the driver becomes a one-line error."""
    from truecount.engine.compile import compile_definition
    from truecount.errors import InputError

    class LostResultError(Exception):
        pass

    def failing_sql(self: SparkEngine, query: object) -> object:
        raise LostResultError(
            "An error occurred while calling o126.getResult.\n"
            ": org.apache.spark.SparkException: TaskResultLost (result lost from block manager)"
        )

    monkeypatch.setattr(SparkEngine, "sql", failing_sql)
    monkeypatch.setenv("TRUECOUNT_SPARK_DRIVER_MEMORY", "6g")
    engine = object.__new__(SparkEngine)  # no session: the query never reaches Spark
    query = compile_definition(truecount.load_definition(DEMO), dt.datetime(2026, 4, 1))
    with pytest.raises(InputError) as err:
        engine.verdicts(query)
    text = str(err.value)
    assert "the count failed on Spark: An error occurred while calling o126.getResult." in text
    assert "TRUECOUNT_SPARK_DRIVER_MEMORY (now 6g)" in text
    assert "\n" not in text.strip()
