"""Spark (local) against DuckDB on the same Parquet events: wall time and the same counts.

    .venv/bin/python bench/engines.py --tickets 1000000 [--master local[2]]
    .venv/bin/python bench/engines.py --data bench/data/t1000000-s7-93ffd7e34a

Both engines count the demo definition over the data folder's ``events-*.parquet`` files with
the default as-of; the script prints each engine's wall time (Spark's includes reading the
Parquet, not starting the session, which is reported apart) and fails if the per-period JSON
differs by one byte. ``--tickets`` generates the data as ``bench/run.py`` does (or reuses its
cached copy under ``--data-dir``). Numbers depend on the machine and what else runs on it, so
the load average at the start is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import truecount
from truecount.engine.run import count
from truecount.engine.spark import count_on_spark, spark_session

DEMO_DEFINITION = Path(truecount.__file__).parent / "demo" / "resolved_ticket.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a bench data folder (events-*.parquet)")
    source.add_argument("--tickets", type=int, help="generate (or reuse) this many tickets")
    parser.add_argument("--data-dir", default=str(Path(__file__).parent / "data"))
    parser.add_argument("--master", default="local[*]", help="Spark master (default local[*])")
    parser.add_argument("--definition", default=str(DEMO_DEFINITION))
    args = parser.parse_args(argv)
    folder = Path(args.data) if args.data else _generated(args.tickets, Path(args.data_dir))
    files = sorted(str(p) for p in folder.glob("events-*.parquet"))
    if not files:
        print(f"no events-*.parquet under {folder}", file=sys.stderr)
        return 2
    definition = truecount.load_definition(args.definition)
    load = os.getloadavg()[0]

    start = time.perf_counter()
    local = count(definition, files)
    duck_s = time.perf_counter() - start

    start = time.perf_counter()
    spark = spark_session(args.master, {"spark.ui.showConsoleProgress": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    session_s = time.perf_counter() - start
    start = time.perf_counter()
    remote = count_on_spark(definition, files, spark=spark)
    spark_s = time.perf_counter() - start

    same = json.dumps(local.to_json()) == json.dumps(remote.to_json())
    print(
        json.dumps(
            {
                "candidates": local.totals.candidates,
                "counted": local.totals.counted,
                "duckdb_s": round(duck_s, 2),
                "spark_s": round(spark_s, 2),
                "spark_session_s": round(session_s, 2),
                "spark_master": args.master,
                "load_average_1min": round(load, 1),
                "same_json": same,
            }
        )
    )
    return 0 if same else 1


def _generated(tickets: int, data_dir: Path) -> Path:
    """The folder ``bench/run.py`` generates for ``tickets`` (seed 7), made if missing."""
    sys.path.insert(0, str(Path(__file__).parent))
    from run import prepare_data  # bench/run.py: one generator for every benchmark

    folder, _ = prepare_data(tickets, 7, data_dir.resolve(), 1_000_000)
    return folder


if __name__ == "__main__":
    raise SystemExit(main())
