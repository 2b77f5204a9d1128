#!/usr/bin/env python
"""Benchmark: truecount side by side with a hand-written DuckDB query and a pandas version.

Why this shape: a meter is only worth adopting if it is as fast as what a competent data
engineer would write by hand, and its numbers are only worth trusting if they equal that
engineer's numbers. So every implementation runs in the same invocation, on the same Parquet
files, each in a fresh child process (peak RSS is then that implementation's own, read from
``wait4``), and the results must agree to the entity before any time is reported.

Tasks:

1. count   — the case's "resolved ticket" definition per month: ``truecount.count`` vs a
             hand-written DuckDB query vs idiomatic pandas;
2. ingest  — canonical Parquet into a fresh workspace store (``truecount.ingest.ingest_files``)
             vs a bare DuckDB ``CREATE TABLE AS`` (no checks, no quarantine, no de-duplication);
3. reconcile — the invoice against the verdicts (``truecount.billing.reconcile.reconcile_in``) vs a
             hand-written DuckDB full outer join / anti-join.
4. report  — ``truecount report`` (count, reconciliation, drift, check, HTML) vs the
             ``reconcile`` verb's own work (count, invoice, reconciliation) on the same files:
             the report's cost as a ratio of reconcile's, and the size of the HTML file.

Usage (see bench/README.md)::

    .venv/bin/python bench/run.py --quick
    .venv/bin/python bench/run.py --tickets 10000000 --out bench/out/results.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFINITION = HERE / "resolved_ticket.yaml"
#: Per-period fields every count implementation reports and that must agree.
FIELDS = ("candidates", "counted", "not_counted", "pending")
RECONCILE_CELLS = (
    "agreed", "vendor_only", "buyer_only", "pending", "unknown", "duplicate", "period_mismatch",
)  # fmt: skip

Ctx = dict[str, Any]
Result = dict[str, Any]


def _log(msg: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {msg}", file=sys.stderr, flush=True)


def _start() -> tuple[float, float]:
    """Wall and CPU clocks. CPU time (all threads of this process) is the figure that other
    load on a shared machine disturbs least, so the report gives both."""
    return time.perf_counter(), time.process_time()


def _done(started: tuple[float, float], result: Any) -> Result:
    wall, cpu = started
    return {
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "result": result,
    }


def _duckdb_settings(con: Any, ctx: Ctx) -> None:
    con.execute(f"SET threads = {int(ctx['threads'])}")
    if ctx.get("memory_limit"):
        con.execute(f"SET memory_limit = '{ctx['memory_limit']}'")
    con.execute(f"SET temp_directory = '{ctx['scratch']}/duckdb_tmp'")
    con.execute("SET enable_progress_bar = false")


# ============================================================================================
# Workers: each runs in its own child process and returns {"seconds": ..., "result": ...}
# ============================================================================================


def work_truecount(ctx: Ctx) -> Result:
    """The library API a user calls: load the definition, count over the Parquet files."""
    import truecount

    definition = truecount.load_definition(ctx["definition"])
    started = _start()
    if ctx.get("memory_limit"):
        # count() opens its own connection; to cap memory we open the source the same way
        # and set the limit before the query runs.
        from truecount.engine.run import count_source
        from truecount.engine.source import open_events

        source = open_events(ctx["events"])
        _duckdb_settings(source.con, ctx)
        result = count_source(definition, source)
    else:
        result = truecount.count(definition, ctx["events"])
    periods = {p.period: {f: int(getattr(p, f)) for f in FIELDS} for p in result.periods}
    timing = _done(started, None)
    result.close()
    return {**timing, "result": periods}


def _as_of_sql(files: str) -> str:
    return f"SELECT max(ts) FROM read_parquet({files})"


def handwritten_count_sql(files: str, as_of: str) -> str:
    """The per-period count, as a data engineer would write it for DuckDB.

    Anchors are one GROUP BY (``min(ts)`` is the first AI close; ties at the same instant do
    not change the anchor time, and the conditions only look at other event types); the
    conditions are one LEFT JOIN of anchors to the entity's reopen / rating events with
    conditional aggregation; both window ends are inclusive, as docs/definition.md says.
    """
    return f"""
WITH ev AS (
    SELECT entity_id, ts, type, actor, value
    FROM read_parquet({files})
    WHERE type IN ('closed', 'reopened', 'rated') AND ts <= TIMESTAMP '{as_of}'
),
anchors AS (
    SELECT entity_id, min(ts) AS anchor_ts
    FROM ev WHERE type = 'closed' AND actor = 'ai'
    GROUP BY entity_id
),
hits AS (
    SELECT a.entity_id, a.anchor_ts,
           count(*) FILTER (WHERE e.type = 'reopened'
                            AND e.ts BETWEEN a.anchor_ts AND a.anchor_ts + INTERVAL 14 DAY)
               AS reopens,
           count(*) FILTER (WHERE e.type = 'rated' AND e.value >= 4
                            AND e.ts BETWEEN a.anchor_ts AND a.anchor_ts + INTERVAL 7 DAY)
               AS good_ratings
    FROM anchors a
    LEFT JOIN ev e ON e.entity_id = a.entity_id AND e.type IN ('reopened', 'rated')
    GROUP BY a.entity_id, a.anchor_ts
),
verdicts AS (
    SELECT strftime(anchor_ts, '%Y-%m') AS period,
           CASE WHEN anchor_ts + INTERVAL 14 DAY > TIMESTAMP '{as_of}' THEN 'pending'
                WHEN reopens = 0 AND good_ratings > 0 THEN 'counted'
                ELSE 'not_counted' END AS status
    FROM hits
)
SELECT period, count(*) AS candidates,
       count(*) FILTER (WHERE status = 'counted') AS counted,
       count(*) FILTER (WHERE status = 'not_counted') AS not_counted,
       count(*) FILTER (WHERE status = 'pending') AS pending
FROM verdicts GROUP BY period ORDER BY period
"""


def _files_sql(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def work_duckdb(ctx: Ctx) -> Result:
    """The hand-written DuckDB query over read_parquet (as-of = latest event, like the engine)."""
    import duckdb

    started = _start()
    con = duckdb.connect()
    _duckdb_settings(con, ctx)
    files = _files_sql(ctx["events"])
    as_of = con.execute(_as_of_sql(files)).fetchone()[0]
    rows = con.execute(handwritten_count_sql(files, as_of.isoformat(sep=" "))).fetchall()
    periods = {r[0]: dict(zip(FIELDS, map(int, r[1:]), strict=True)) for r in rows}
    timing = _done(started, None)
    con.close()
    return {**timing, "result": periods}


def work_pandas(ctx: Ctx) -> Result:
    """Idiomatic vectorised pandas: read only the needed columns and rows, groupby and merge."""
    import numpy as np
    import pandas as pd

    started = _start()
    files = ctx["events"]
    as_of = max(pd.read_parquet(f, columns=["ts"])["ts"].max() for f in files)
    ev = pd.concat(
        [
            pd.read_parquet(
                f,
                columns=["entity_id", "ts", "type", "actor", "value"],
                filters=[("type", "in", ["closed", "reopened", "rated"])],
            )
            for f in files
        ],
        ignore_index=True,
    )
    ev = ev[ev["ts"] <= as_of]
    closes = ev[(ev["type"] == "closed") & (ev["actor"] == "ai")]
    anchors = closes.groupby("entity_id", sort=False)["ts"].min().rename("anchor_ts")
    others = ev.loc[ev["type"] != "closed", ["entity_id", "ts", "type", "value"]]
    m = others.merge(anchors, left_on="entity_id", right_index=True, how="inner")
    delta = m["ts"] - m["anchor_ts"]
    after = delta >= pd.Timedelta(0)
    reopen_hit = m.loc[
        (m["type"] == "reopened") & after & (delta <= pd.Timedelta(days=14)), "entity_id"
    ].unique()
    rated_hit = m.loc[
        (m["type"] == "rated") & (m["value"] >= 4) & after & (delta <= pd.Timedelta(days=7)),
        "entity_id",
    ].unique()
    v = anchors.to_frame()
    pending = (v["anchor_ts"] + pd.Timedelta(days=14)) > as_of
    ok = ~v.index.isin(reopen_hit) & v.index.isin(rated_hit)
    v["status"] = np.select([pending, ok], ["pending", "counted"], "not_counted")
    v["period"] = v["anchor_ts"].dt.strftime("%Y-%m")
    table = pd.crosstab(v["period"], v["status"])
    periods = {
        str(p): {
            "candidates": int(row.sum()),
            **{s: int(row.get(s, 0)) for s in ("counted", "not_counted", "pending")},
        }
        for p, row in table.iterrows()
    }
    return {**_done(started, None), "result": periods}


def work_ingest_truecount(ctx: Ctx) -> Result:
    """The ingest library: canonical Parquet into a fresh workspace store, with every check."""
    from truecount.ingest import ingest_files
    from truecount.workspace import Workspace

    root = Path(ctx["scratch"]) / "ws"
    shutil.rmtree(root, ignore_errors=True)
    ws = Workspace.init(root)
    started = _start()
    report = ingest_files(ws, ctx["events"])
    timing = _done(started, None)
    result = {
        "rows_read": report.rows_read,
        "loaded": report.loaded,
        "duplicate": report.duplicate,
        "quarantined": report.quarantined,
    }
    shutil.rmtree(root, ignore_errors=True)
    return {**timing, "result": result}


def work_ingest_duckdb(ctx: Ctx) -> Result:
    """The floor for ingest: DuckDB copying the files into a fresh database file, no checks."""
    import duckdb

    path = Path(ctx["scratch"]) / "bare.duckdb"
    path.unlink(missing_ok=True)
    started = _start()
    con = duckdb.connect(str(path))
    _duckdb_settings(con, ctx)
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet({_files_sql(ctx['events'])})")
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    timing = _done(started, None)
    path.unlink(missing_ok=True)
    return {**timing, "result": {"loaded": int(rows)}}


def work_verdicts(ctx: Ctx) -> Result:
    """Preparation (not timed in the table): the engine's verdicts as Parquet, for reconcile."""
    import truecount

    definition = truecount.load_definition(ctx["definition"])
    started = _start()
    result = truecount.count(definition, ctx["events"])
    rows = result.write_verdicts(ctx["verdicts"])
    result.close()
    return {**_done(started, None), "result": {"verdicts": rows}}


def work_reconcile_truecount(ctx: Ctx) -> Result:
    """The reconcile library on one connection: invoice loaded with its checks, then cells."""
    import duckdb

    import truecount
    from truecount.billing.invoice import load_invoice_into
    from truecount.billing.reconcile import reconcile_in

    definition = truecount.load_definition(ctx["definition"])
    started = _start()
    con = duckdb.connect()
    _duckdb_settings(con, ctx)
    con.execute(f"CREATE VIEW verdicts AS SELECT * FROM read_parquet('{ctx['verdicts']}')")
    con.execute(
        f"CREATE VIEW events AS SELECT entity_id FROM read_parquet({_files_sql(ctx['events'])})"
    )
    load_invoice_into(con, [ctx["invoice"]], None, table="invoice")
    rec = reconcile_in(
        con,
        "verdicts",
        "invoice",
        known_table="events",
        definition=definition,
        fetch_entities=False,
        cells=False,
    )
    # Periods with no cell at all (the buyer's counts outside the invoiced periods) are left
    # out, as the hand-written query has no row for them.
    periods: dict[str, dict[str, Any]] = {
        p.period: {
            **{c: int(getattr(p, c)) for c in RECONCILE_CELLS},
            "amount_billed": f"{p.amount_billed or 0:.2f}",
        }
        for p in rec.periods
        if any(getattr(p, c) for c in RECONCILE_CELLS)
    }
    timing = _done(started, None)
    con.close()
    return {**timing, "result": periods}


def handwritten_reconcile_sql(invoice: str, verdicts: str, events: str) -> str:
    """Cells and billed amount per period, by hand: billed entities FULL OUTER JOIN verdicts,
    plus the anti-join of billed-without-verdict entities against the export (unknown). Same
    precedence as the library documents: unknown, duplicate, vendor_only, pending,
    period_mismatch, agreed. The amount is what the library reports as amount_billed."""
    return f"""
WITH b AS (
    SELECT entity_id, count(*) AS lines, min(period) AS billed_period,
           sum(CAST(amount AS DECIMAL(18, 6))) AS amount
    FROM read_parquet('{invoice}') GROUP BY entity_id
),
v AS (SELECT entity_id, status, period FROM read_parquet('{verdicts}')),
scope AS (SELECT DISTINCT period FROM read_parquet('{invoice}')),
joined AS (
    SELECT coalesce(b.entity_id, v.entity_id) AS entity_id, b.lines, b.billed_period, b.amount,
           v.entity_id IS NULL AS no_verdict, v.status, v.period AS buyer_period
    FROM b FULL OUTER JOIN v ON b.entity_id = v.entity_id
    WHERE b.entity_id IS NOT NULL
       OR (v.status = 'counted' AND v.period IN (SELECT period FROM scope))
),
exported AS (  -- anti-join input: billed entities with no verdict that are in the export
    SELECT DISTINCT e.entity_id FROM read_parquet({events}) e
    SEMI JOIN (SELECT entity_id FROM joined WHERE no_verdict AND lines IS NOT NULL) j
      ON e.entity_id = j.entity_id
)
SELECT coalesce(billed_period, buyer_period, '-') AS p,
       CASE WHEN lines IS NULL THEN 'buyer_only'
            WHEN no_verdict AND entity_id NOT IN (SELECT entity_id FROM exported) THEN 'unknown'
            WHEN lines > 1 THEN 'duplicate'
            WHEN no_verdict OR status IN ('not_counted', 'excluded') THEN 'vendor_only'
            WHEN status = 'pending' THEN 'pending'
            WHEN billed_period <> buyer_period THEN 'period_mismatch'
            ELSE 'agreed' END AS cell,
       count(*) AS n, sum(amount) AS amount
FROM joined GROUP BY ALL
"""


def work_reconcile_duckdb(ctx: Ctx) -> Result:
    import duckdb

    started = _start()
    con = duckdb.connect()
    _duckdb_settings(con, ctx)
    sql = handwritten_reconcile_sql(ctx["invoice"], ctx["verdicts"], _files_sql(ctx["events"]))
    periods: dict[str, dict[str, Any]] = {}
    money: dict[str, Decimal] = {}
    for p, cell, n, amount in con.execute(sql).fetchall():
        periods.setdefault(p, dict.fromkeys(RECONCILE_CELLS, 0))[cell] = int(n)
        money[p] = money.get(p, Decimal(0)) + (amount or Decimal(0))
    for p, cells in periods.items():
        cells["amount_billed"] = f"{money[p]:.2f}"
    timing = _done(started, None)
    con.close()
    return {**timing, "result": dict(sorted(periods.items()))}


def work_profile(ctx: Ctx) -> Result:
    """EXPLAIN ANALYZE of the engine's query and of the hand-written one (``--profile``)."""
    import duckdb

    import truecount
    from truecount.engine.compile import compile_definition, render_sql
    from truecount.engine.source import open_events

    definition = truecount.load_definition(ctx["definition"])
    source = open_events(ctx["events"])
    _duckdb_settings(source.con, ctx)
    as_of = source.con.execute("SELECT max(ts) FROM events").fetchone()[0]
    engine_sql = render_sql(compile_definition(definition, as_of, ordered=False), "duckdb", False)
    out = Path(ctx["profile_dir"])
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    for name, con, sql in (
        ("engine", source.con, f"CREATE OR REPLACE TEMP TABLE v AS {engine_sql}"),
        (
            "handwritten",
            duckdb.connect(),
            handwritten_count_sql(_files_sql(ctx["events"]), as_of.isoformat(sep=" ")),
        ),
    ):
        _duckdb_settings(con, ctx)
        started = time.perf_counter()
        plan = con.execute(f"EXPLAIN ANALYZE {sql}").fetchall()
        timings[name] = time.perf_counter() - started
        text = "\n".join(str(r[-1]) for r in plan)
        (out / f"explain-{name}.txt").write_text(f"-- {sql}\n\n{text}\n", encoding="utf-8")
    return {"seconds": 0.0, "result": timings}


def _report_totals(totals: Any) -> dict[str, Any]:
    return {
        **{c: int(getattr(totals, c)) for c in RECONCILE_CELLS},
        "credit": str(totals.credit),
    }


def work_reconcile_command(ctx: Ctx) -> Result:
    """What ``truecount reconcile DEF --events ... --invoice ... --terms ...`` does, timed."""
    import truecount
    from truecount.billing.invoice import load_invoice_into
    from truecount.billing.reconcile import reconcile_in
    from truecount.billing.terms import parse_terms
    from truecount.cli.demo_cmds import package_text
    from truecount.engine.run import VERDICTS_TABLE
    from truecount.ingest.canonical import EVENTS_TABLE

    definition = truecount.load_definition(ctx["definition"])
    terms = parse_terms(package_text("terms.yaml"))
    started = _start()
    result = truecount.count(definition, ctx["events"])
    load_invoice_into(result.con, [ctx["invoice"]], None, table="invoice")
    rec = reconcile_in(
        result.con,
        VERDICTS_TABLE,
        "invoice",
        known_table=EVENTS_TABLE,
        definition=definition,
        terms=terms,
        as_of=result.as_of,
        fetch_entities=False,
        cells=False,
        verdict_periods=result.candidate_periods,
    )
    timing = _done(started, None)
    result.close()
    return {**timing, "result": _report_totals(rec.totals)}


def work_report(ctx: Ctx) -> Result:
    """``truecount report`` on the same inputs: gather every figure, render, write the file."""
    from truecount.cli.demo_cmds import package_text
    from truecount.report.html import gather, render

    terms = Path(ctx["scratch"]) / "terms.yaml"
    terms.write_text(package_text("terms.yaml"), encoding="utf-8")
    out = Path(ctx["scratch"]) / "report.html"
    started = _start()
    data = gather(Path(ctx["definition"]), ctx["events"], [Path(ctx["invoice"])], terms)
    out.write_text(render(data), encoding="utf-8")
    timing = _done(started, None)
    return {
        **timing,
        "result": {**_report_totals(data.recon.totals), "bytes": out.stat().st_size},
    }


def work_generate(ctx: Ctx) -> Result:
    from truecount.demo.generate import SupportScenario, write_parquet_chunks

    started = _start()
    scenario = SupportScenario(seed=ctx["seed"], tickets=ctx["tickets"])
    write_parquet_chunks(scenario, ctx["folder"], chunk_tickets=ctx["chunk"])
    return {**_done(started, None), "result": {}}


WORKERS: dict[str, Callable[[Ctx], Result]] = {
    "generate": work_generate,
    "truecount": work_truecount,
    "duckdb": work_duckdb,
    "pandas": work_pandas,
    "ingest_truecount": work_ingest_truecount,
    "ingest_duckdb": work_ingest_duckdb,
    "verdicts": work_verdicts,
    "reconcile_truecount": work_reconcile_truecount,
    "reconcile_duckdb": work_reconcile_duckdb,
    "profile": work_profile,
    "reconcile_command": work_reconcile_command,
    "report": work_report,
}


def _peak_rss_mb() -> float | None:
    """This process's own peak RSS (VmHWM), or None off Linux.

    ``ru_maxrss`` of a child is not enough: Linux carries the parent's high-water mark across
    fork + exec, so every child would report at least the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def worker_main(name: str, ctx_json: str) -> None:
    out = WORKERS[name](json.loads(ctx_json))
    out["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(out), flush=True)


# ============================================================================================
# The parent: data, runs, checks, report
# ============================================================================================


def run_child(name: str, ctx: Ctx) -> dict[str, Any]:
    """Run one worker in a fresh interpreter; return its result, wall time and peak RSS."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--ctx",
        json.dumps(ctx),
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ctx["scratch"])
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"worker {name} failed with exit code {proc.returncode}")
    payload = json.loads(output.strip().splitlines()[-1])
    own = payload.get("peak_rss_mb")
    return {
        "seconds": float(payload["seconds"]),
        "cpu_seconds": float(payload.get("cpu_seconds") or 0.0),
        "process_seconds": elapsed,
        "rss_mb": own if own is not None else usage.ru_maxrss / 1024.0,  # KiB on Linux
        "result": payload["result"],
    }


def measure(names: list[str], ctx: Ctx, runs: int) -> dict[str, dict[str, Any]]:
    """Run each implementation ``runs`` times, interleaved (A B C A B C ...), so that load from
    elsewhere on the machine falls on all of them alike; report medians."""
    samples: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for i in range(runs):
        for name in names:
            load = os.getloadavg()[0]
            _log(f"{name}: run {i + 1}/{runs} (load average {load:.1f})")
            sample = run_child(name, ctx)
            sample["load"] = load
            samples[name].append(sample)
            _log(
                f"{name}: {sample['seconds']:.2f} s wall, {sample['cpu_seconds']:.2f} s CPU, "
                f"peak RSS {sample['rss_mb']:.0f} MB"
            )
    out: dict[str, dict[str, Any]] = {}
    for name, got in samples.items():
        out[name] = {
            "seconds": statistics.median(s["seconds"] for s in got),
            "cpu_seconds": statistics.median(s["cpu_seconds"] for s in got),
            "all_seconds": [round(s["seconds"], 2) for s in got],
            "rss_mb": max(s["rss_mb"] for s in got),
            "max_load": max(s["load"] for s in got),
            "result": got[-1]["result"],
            "results_stable": all(s["result"] == got[0]["result"] for s in got),
        }
    return out


def prepare_data(
    tickets: int, seed: int, data_root: Path, chunk: int
) -> tuple[Path, dict[str, Any]]:
    """Generate the scenario as Parquet chunks, or reuse a cached copy with the same parameters."""
    from truecount.demo.generate import SupportScenario

    scenario = SupportScenario(seed=seed, tickets=tickets)
    key = json.dumps(scenario.fingerprint(), sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    folder = data_root / f"t{tickets}-s{seed}-{digest}"
    manifest = folder / "manifest.json"
    if manifest.is_file():
        saved = json.loads(manifest.read_text(encoding="utf-8"))
        if json.dumps(saved["scenario"], sort_keys=True) == key:
            _log(f"reusing generated data in {folder}")
            return folder, saved
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _log(f"generating {tickets:,} tickets into {folder} ...")
    started = time.perf_counter()
    # In a child, so the parent stays small and leaves nothing in memory for the runs.
    run_child(
        "generate",
        {
            "scratch": str(folder),
            "tickets": tickets,
            "seed": seed,
            "chunk": chunk,
            "folder": str(folder),
        },
    )
    saved = json.loads(manifest.read_text(encoding="utf-8"))
    saved["generate_seconds"] = round(time.perf_counter() - started, 1)
    manifest.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    _log(f"generated {saved['counts']['events']:,} events in {saved['generate_seconds']} s")
    return folder, saved


def truth_counts(folder: Path) -> dict[str, dict[str, int]]:
    """From the generator's truth table: counted per anchor month, and cells, in the span."""
    import duckdb

    con = duckdb.connect()
    truth = f"read_parquet('{folder / 'truth.parquet'}')"
    counted = con.execute(
        f"SELECT anchor_period, count(*) FROM {truth} WHERE buyer_counts GROUP BY 1"
    ).fetchall()
    cells = con.execute(f"SELECT cell, count(*) FROM {truth} GROUP BY 1").fetchall()
    billed = con.execute(f"SELECT count(*) FILTER (WHERE vendor_bills) FROM {truth}").fetchone()
    return {
        "counted": {str(p): int(n) for p, n in counted},
        "cells": {str(c): int(n) for c, n in cells},
        "billed": {"total": int(billed[0]) if billed else 0},
    }


def compare(label: str, results: dict[str, Any], problems: list[str]) -> None:
    """Every result must equal the first; record a loud problem otherwise."""
    names = list(results)
    if len(names) < 2:
        return
    ref_name = names[0]
    ref = results[ref_name]
    for other in names[1:]:
        got = results[other]
        if got != ref:
            keys = sorted(set(ref) | set(got))
            diffs = [
                f"{k}: {ref_name}={ref.get(k)} {other}={got.get(k)}"
                for k in keys
                if ref.get(k) != got.get(k)
            ]
            problems.append(f"{label}: {other} disagrees with {ref_name}: " + "; ".join(diffs))


def fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "—"
    return f"{a / b:.2f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="a ~200k-ticket smoke run")
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="runs per implementation (median reported); default 3 below 1M tickets, else 1",
    )
    parser.add_argument(
        "--ingest-runs",
        type=int,
        default=None,
        help="runs for the slow ingest task (default: --runs)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "results.md")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--chunk-tickets", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--memory-limit",
        default=None,
        help="DuckDB memory_limit for every DuckDB run, e.g. 2GB (default: none)",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated tasks to skip: count,pandas,ingest,reconcile,report",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also write EXPLAIN ANALYZE of the engine's and the hand-written SQL",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--ctx", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, args.ctx)
        return 0

    tickets = 200_000 if args.quick else args.tickets
    runs = args.runs or (3 if tickets < 1_000_000 else 1)
    ingest_runs = args.ingest_runs or runs
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    args.data_dir.mkdir(parents=True, exist_ok=True)
    folder, manifest = prepare_data(tickets, args.seed, args.data_dir.resolve(), args.chunk_tickets)
    scratch = folder / "scratch"
    scratch.mkdir(exist_ok=True)
    events = [str(folder / name) for name in manifest["events"]]
    import duckdb

    definition_sha = hashlib.sha256(DEFINITION.read_bytes()).hexdigest()[:10]
    ctx: Ctx = {
        "events": events,
        "invoice": str(folder / "invoice.parquet"),
        "verdicts": str(folder / f"verdicts-{definition_sha}.parquet"),
        "definition": str(DEFINITION),
        "threads": args.threads,
        "memory_limit": args.memory_limit,
        "scratch": str(scratch),
        "profile_dir": str(args.out.resolve().parent / f"profile-{tickets}"),
    }
    problems: list[str] = []
    notes: list[str] = []
    rows: dict[str, dict[str, Any]] = {}
    # 1. count
    if "count" not in skip:
        names = ["truecount", "duckdb"]
        names += [] if "pandas" in skip else ["pandas"]
        rows.update(measure(names, ctx, runs))
        compare(
            "count per period",
            {k: rows[k]["result"] for k in ("duckdb", "truecount", "pandas") if k in rows},
            problems,
        )
        truth = truth_counts(folder)
        in_span = {
            p: rows["duckdb"]["result"].get(p, {}).get("counted", 0) for p in truth["counted"]
        }
        compare(
            "counted vs the generator's truth",
            {"truth": truth["counted"], "duckdb": in_span},
            problems,
        )
    else:
        truth = truth_counts(folder)

    # 2. ingest
    if "ingest" not in skip:
        rows.update(measure(["ingest_truecount", "ingest_duckdb"], ctx, ingest_runs))
        loaded = rows["ingest_truecount"]["result"]
        if loaded["loaded"] != manifest["counts"]["events"] or loaded["quarantined"]:
            problems.append(
                f"ingest: loaded {loaded} but the files hold {manifest['counts']['events']} events"
            )

    # 3. reconcile
    if "reconcile" not in skip:
        if not Path(ctx["verdicts"]).is_file():
            _log("writing the engine's verdicts for the reconcile task ...")
            run_child("verdicts", ctx)
        rows.update(measure(["reconcile_truecount", "reconcile_duckdb"], ctx, runs))
        compare(
            "reconcile cells per period",
            {
                "reconcile_duckdb": rows["reconcile_duckdb"]["result"],
                "reconcile_truecount": rows["reconcile_truecount"]["result"],
            },
            problems,
        )
        totals = dict.fromkeys(RECONCILE_CELLS, 0)
        for cells in rows["reconcile_truecount"]["result"].values():
            for c in RECONCILE_CELLS:
                totals[c] += cells[c]
        for cell in ("unknown", "buyer_only"):
            if totals[cell] != truth["cells"].get(cell, 0):
                problems.append(
                    f"reconcile: {cell} = {totals[cell]} but the truth table "
                    f"says {truth['cells'].get(cell, 0)}"
                )

    # 4. report
    if "report" not in skip:
        rows.update(measure(["reconcile_command", "report"], ctx, runs))
        shown = {k: v for k, v in rows["report"]["result"].items() if k != "bytes"}
        compare(
            "report totals",
            {"reconcile_command": rows["reconcile_command"]["result"], "report": shown},
            problems,
        )

    if args.profile:
        _log("profiling (EXPLAIN ANALYZE) ...")
        prof = run_child("profile", ctx)
        notes.append(
            f"EXPLAIN ANALYZE written to {Path(ctx['profile_dir']).relative_to(ROOT)}/ "
            f"(engine {prof['result']['engine']:.2f} s, hand-written "
            f"{prof['result']['handwritten']:.2f} s under the profiler)."
        )

    report = render(
        args, tickets, runs, manifest, folder, rows, truth, problems, notes, duckdb.__version__
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    (args.out.with_suffix(".json")).write_text(
        json.dumps(
            {"tickets": tickets, "runs": runs, "rows": rows, "problems": problems},
            indent=2,
            default=str,
        )
        + "\n",
        encoding="utf-8",
    )
    print(report)
    if problems:
        bar = "!" * 78
        print(
            f"\n{bar}\nMISMATCH — the implementations do not agree:\n"
            + "\n".join(f"  * {p}" for p in problems)
            + f"\n{bar}",
            file=sys.stderr,
        )
        return 1
    return 0


def render(
    args: argparse.Namespace,
    tickets: int,
    runs: int,
    manifest: dict[str, Any],
    folder: Path,
    rows: dict[str, dict[str, Any]],
    truth: dict[str, Any],
    problems: list[str],
    notes: list[str],
    duckdb_version: str,
) -> str:
    counts = manifest["counts"]
    size_mb = sum(p.stat().st_size for p in folder.glob("events-*.parquet")) / 2**20
    lines = [
        f"# truecount benchmark — {tickets:,} tickets",
        "",
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`  ",
        f"Date: {dt.datetime.now().isoformat(timespec='seconds')}  ",
        f"Machine: {os.cpu_count()} cores, {_ram_gib():.0f} GiB RAM, {platform.platform()}  ",
        f"Python {platform.python_version()}, DuckDB {duckdb_version}, "
        f"DuckDB threads = {args.threads}, "
        f"memory_limit = {args.memory_limit or 'DuckDB default (80% of RAM)'}  ",
        f"Data: {counts['tickets']:,} tickets, {counts['events']:,} events in "
        f"{len(manifest['events'])} Parquet files ({size_mb:,.0f} MB zstd), "
        f"{counts['invoice_lines']:,} invoice lines; billed {counts['billed']:,}, "
        f"counted by the truth table {counts['counted']:,}  ",
        f"Wall and CPU time (all threads): median of {runs} run(s), implementations interleaved, "
        "each in a fresh process, work only (no interpreter "
        "start-up); peak RSS: the child process's own high-water mark (VmHWM, with Python and "
        "its imports).",
        "",
        "| task | implementation | wall s | CPU s | peak RSS MB | wall vs hand-written | "
        "CPU vs hand-written | notes |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    names = {
        "truecount": ("count", "truecount.count (engine SQL on DuckDB)"),
        "duckdb": ("count", "hand-written DuckDB query"),
        "pandas": ("count", "pandas (groupby / merge)"),
        "ingest_truecount": ("ingest", "truecount.ingest.ingest_files (workspace)"),
        "ingest_duckdb": ("ingest", "DuckDB CREATE TABLE AS read_parquet (no checks)"),
        "reconcile_truecount": (
            "reconcile",
            "truecount.billing.reconcile (load invoice + reconcile_in)",
        ),
        "reconcile_duckdb": ("reconcile", "hand-written DuckDB outer join / anti-join"),
        "report": ("report", "truecount report (count, reconcile, drift, check, HTML)"),
        "reconcile_command": ("report", "the reconcile verb's work (baseline of this task)"),
    }
    baseline = {
        "count": "duckdb",
        "ingest": "ingest_duckdb",
        "reconcile": "reconcile_duckdb",
        "report": "reconcile_command",
    }
    for key, (task, label) in names.items():
        if key not in rows:
            continue
        r = rows[key]
        base = rows.get(baseline[task])
        note = ""
        if task == "ingest":
            note = f"{counts['events'] / r['seconds']:,.0f} rows/s"
        if key == "report":
            note = f"HTML {r['result']['bytes'] / 2**20:.2f} MB"
        if not r["results_stable"]:
            note += " results differ between runs!"
        if runs > 1:
            note += f" runs: {r['all_seconds']}"
        lines.append(
            f"| {task} | {label} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
            f"{r['rss_mb']:,.0f} | {fmt_ratio(r['seconds'], base['seconds'] if base else None)} | "
            f"{fmt_ratio(r['cpu_seconds'], base['cpu_seconds'] if base else None)} | "
            f"{note.strip()} |"
        )
    if "pandas" in rows and "truecount" in rows:
        wall = fmt_ratio(rows["pandas"]["seconds"], rows["truecount"]["seconds"])
        cpu = fmt_ratio(rows["pandas"]["cpu_seconds"], rows["truecount"]["cpu_seconds"])
        rss = fmt_ratio(rows["pandas"]["rss_mb"], rows["truecount"]["rss_mb"])
        lines += ["", f"pandas / truecount: **{wall}** wall, {cpu} CPU, {rss} peak RSS."]
    busiest = max((r.get("max_load", 0.0) for r in rows.values()), default=0.0)
    if busiest > (os.cpu_count() or 1):
        lines += [
            "",
            f"Warning: the 1-minute load average reached {busiest:.1f} on {os.cpu_count()} "
            "cores during the runs: other work shared the machine, so wall times are noisy; "
            "CPU seconds and the interleaved medians are the steadier comparison.",
        ]
    if "duckdb" in rows:
        lines += [
            "",
            "## Counts per period (all implementations must agree)",
            "",
            "| period | candidates | counted | not_counted | pending | truth: counted |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for p, v in sorted(rows["duckdb"]["result"].items()):
            t = truth["counted"].get(p)
            lines.append(
                f"| {p} | {v['candidates']:,} | {v['counted']:,} | "
                f"{v['not_counted']:,} | {v['pending']:,} | {'—' if t is None else f'{t:,}'} |"
            )
    if "reconcile_truecount" in rows:
        lines += [
            "",
            "## Reconciliation cells (library and hand-written must agree)",
            "",
            "| period | " + " | ".join(RECONCILE_CELLS) + " |",
            "|---|" + "---:|" * len(RECONCILE_CELLS),
        ]
        for p, cells in sorted(rows["reconcile_truecount"]["result"].items()):
            lines.append(f"| {p} | " + " | ".join(f"{cells[c]:,}" for c in RECONCILE_CELLS) + " |")
        lines.append("")
        lines.append(
            "Truth table cells: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(truth["cells"].items()))
        )
    lines += ["", "## Agreement", ""]
    lines += [f"- **MISMATCH**: {p}" for p in problems] or [
        "- all implementations agree, and the count equals the truth table"
    ]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _ram_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return 0.0


if __name__ == "__main__":
    sys.exit(main())
