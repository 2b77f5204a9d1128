"""``--engine spark``, ``export`` and ``sql`` as a user types them, through the CLI in-process.

The CLI runs in this process (``truecount.cli.main`` with its own argv) so that the Spark tests
share the one SparkSession of ``engines.py``: ``--engine spark`` finds it running and reuses it.
Spark's answers are compared byte for byte with DuckDB's (the JSON, the verdict files), and
the counts with a pandas computation of the definition written independently of the engine
(``test_cli_meter.pandas_resolved``). The Spark tests are few: each Spark query costs seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.csv as pacsv
import pytest

import truecount
from engines import spark
from test_cli_meter import pandas_resolved
from truecount.cli import main
from truecount.demo import SupportScenario, generate
from truecount.workspace import Workspace

DEFINITION = Path(truecount.__file__).parent / "demo" / "resolved_ticket.yaml"


def run(*args: str | Path) -> tuple[int, str, str]:
    """``truecount ARGS``: exit code, stdout, stderr (an escaping exception fails the test)."""
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["truecount", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def ok(*args: str | Path, codes: tuple[int, ...] = (0,)) -> str:
    code, out, err = run(*args)
    assert code in codes, err
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small workspace of demo events, its invoice, and the same events as one Parquet file."""
    root = tmp_path_factory.mktemp("engine")
    scenario = generate(SupportScenario(tickets=500, seed=5))
    ws = Workspace.init(root / "ws")
    with ws.connect() as con:
        con.register("incoming", scenario.events)
        con.execute("INSERT INTO events BY NAME SELECT * FROM incoming")
    invoice = root / "invoice.csv"
    pacsv.write_csv(scenario.invoice, invoice)
    events_file = root / "events.parquet"
    duckdb.connect().from_arrow(scenario.events).write_parquet(str(events_file))
    return {"root": root, "ws": ws.root, "invoice": invoice, "events": events_file}


def workspace_events(ws: Path) -> pd.DataFrame:
    with Workspace.open(ws).connect(read_only=True) as con:
        frame: pd.DataFrame = con.execute("SELECT * FROM events").df()
    return frame


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in event order, every missing value as None (pandas' string types differ in it)."""
    frame = frame.sort_values("event_id").reset_index(drop=True).astype(object)
    return frame.where(frame.notna(), None)


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ----------------------------------------------------------------------------- export


def test_export_reads_back_as_the_workspace_events(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "export"
    said = ok("export", "-w", data["ws"], "--out", out)
    want = workspace_events(data["ws"])
    assert f"wrote {len(want):,} events" in said

    got = pd.read_parquet(out)  # pandas reads the month=... folders as a column
    assert sorted(got["month"].astype(str).unique()) == sorted(
        {p.parent.name.removeprefix("month=") for p in out.rglob("*.parquet")}
    )
    assert (got["month"].astype(str) == got["ts"].dt.strftime("%Y-%m")).all()
    got = got.drop(columns="month")[list(want.columns)]
    pd.testing.assert_frame_equal(_plain(got), _plain(want), check_dtype=False)

    # DuckDB reads the folder, or a glob of it, to the workspace's JSON byte for byte
    from_ws = ok("count", DEFINITION, "-w", data["ws"], "-f", "json")
    assert ok("count", DEFINITION, "--events", out, "-f", "json") == from_ws
    assert ok("count", DEFINITION, "--events", f"{out}/**.parquet", "-f", "json") == from_ws


def test_export_refuses_a_used_folder_unless_it_replaces_an_export(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "export"
    ok("export", "-w", data["ws"], "--out", out)
    code, _, err = run("export", "-w", data["ws"], "--out", out)
    assert code == 2 and "--force" in one_line(err)
    code, said, err = run("export", "-w", data["ws"], "--out", out, "--force")
    assert code == 0 and "removed" in err and "wrote" in said
    assert len(list(out.rglob("*.parquet"))) == len({p.parent for p in out.rglob("*.parquet")})

    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine", encoding="utf-8")
    for extra in ((), ("--force",)):
        code, _, err = run("export", "-w", data["ws"], "--out", other, *extra)
        assert code == 2 and "keep.txt" in one_line(err)
    assert (other / "keep.txt").read_text(encoding="utf-8") == "mine"


# ----------------------------------------------------------------------------- sql


def test_sql_never_holds_the_clock_and_runs_to_count_verdicts(
    data: dict[str, Path], tmp_path: Path
) -> None:
    first = ok("sql", DEFINITION)
    time.sleep(1.1)
    assert ok("sql", DEFINITION) == first
    known = "2026-03-01"
    for extra in ((), ("--known-at", known)):
        printed = ok("sql", DEFINITION, *extra)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.read_parquet(str(data["events"])).create_view("events")
        cols = "entity_id, anchor_event_id, period, status, quantity, reason"
        mine = con.execute(f"SELECT {cols} FROM ({printed}) ORDER BY ALL").fetchall()
        verdicts = tmp_path / "verdicts.parquet"
        ok("count", DEFINITION, "--events", data["events"], "--out", verdicts, *extra)
        counted = con.execute(
            f"SELECT {cols} FROM read_parquet(?) ORDER BY ALL", [str(verdicts)]
        ).fetchall()
        assert mine == counted and len(mine) > 100


# ----------------------------------------------------------------------------- bad input


def test_bad_engine_and_master_exit_2_with_one_line(data: dict[str, Path]) -> None:
    code, _, err = run("count", DEFINITION, "-w", data["ws"], "--engine", "sprak")
    assert code == 2 and "did you mean 'spark'" in one_line(err)
    code, _, err = run("check", DEFINITION, "-w", data["ws"], "--spark-master", "local[1]")
    assert code == 2 and "--engine spark" in one_line(err)
    # a URI reaches the option unchanged, and check refuses it before starting Spark
    uri = "s3a://bucket/acme/events/"
    code, _, err = run("check", DEFINITION, "--events", uri, "--engine", "spark")
    assert code == 2 and uri in one_line(err)


def test_without_pyspark_the_error_says_what_to_install(
    data: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("pyspark", "pyspark.sql"):
        monkeypatch.setitem(sys.modules, name, None)  # import now fails, as when not installed
    for verb in ("count", "check"):
        code, _, err = run(verb, DEFINITION, "-w", data["ws"], "--engine", "Spark")
        assert code == 2
        assert "pip install 'truecount[spark]'" in one_line(err.replace("starting Spark", ""))


def test_without_java_the_error_says_so(
    data: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    code, _, err = run("count", DEFINITION, "-w", data["ws"], "--engine", "spark")
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Java" in lines[0], err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- on Spark


def _counts(doc: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {p["period"]: (p["counted"], p["not_counted"], p["pending"]) for p in doc["periods"]}


@pytest.mark.spark
def test_count_check_reconcile_on_spark_are_duckdbs_bytes(
    data: dict[str, Path], tmp_path: Path
) -> None:
    spark()  # the shared session: the CLI finds it running
    ws = data["ws"]
    local = ok("count", DEFINITION, "-w", ws, "-f", "json", "--out", tmp_path / "duck.csv")
    code, remote, err = run(
        "count", DEFINITION, "-w", ws, "-f", "json", "--engine", "spark",
        "--out", tmp_path / "spark.csv",
    )  # fmt: skip
    assert code == 0, err
    assert "Spark session ready" in err
    assert remote == local
    assert (tmp_path / "spark.csv").read_bytes() == (tmp_path / "duck.csv").read_bytes()

    reference = pandas_resolved(workspace_events(ws))
    by_period = reference.groupby("period")["status"].value_counts().unstack(fill_value=0)
    want = {
        str(p): tuple(int(row.get(s, 0)) for s in ("counted", "not_counted", "pending"))
        for p, row in by_period.iterrows()
    }
    assert _counts(json.loads(remote)) == want

    export = tmp_path / "export"
    ok("export", "-w", ws, "--out", export)
    assert ok("count", DEFINITION, "--events", export, "-f", "json", "--engine", "spark") == local

    check = ("check", DEFINITION, "-w", ws, "-f", "json")
    assert ok(*check, "--engine", "spark", codes=(0, 1)) == ok(*check, codes=(0, 1))

    recon = ("reconcile", DEFINITION, "-i", data["invoice"], "-w", ws, "-f", "json")
    assert ok(*recon, "--engine", "SPARK", codes=(0, 1)) == ok(*recon, codes=(0, 1))
