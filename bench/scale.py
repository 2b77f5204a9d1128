#!/usr/bin/env python
"""Out-of-core measurement: ``count`` and ``reconcile`` over a ``bench/bigdata.py`` data set.

Why a separate script: ``bench/run.py`` compares implementations on the realistic demo data at
tens of millions of events; this one asks only whether the count and the reconciliation finish
within their memory budget at hundreds of millions to a billion events, how long they take, how
much they spilled, and whether they equal the truth the generator derived from its parameters.
The work runs in a fresh child process so that its peak RSS (``VmHWM``) is its own; the parent
samples the temporary directory once a second for its high-water mark.

Usage::

    TRUECOUNT_MEMORY_LIMIT=2GB .venv/bin/python bench/scale.py bench/data/big-100M
    TRUECOUNT_MEMORY_LIMIT=2GB .venv/bin/python bench/scale.py bench/data/big-100M --count-only

Prints one JSON line; exit code 1 when a figure disagrees with the truth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFINITION = HERE / "resolved_ticket.yaml"
CELLS = ("agreed", "vendor_only", "pending", "buyer_only")


def _peak_rss_mb() -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return None


def _dir_bytes(folder: Path) -> int:
    total = 0
    for f in folder.rglob("*"):
        try:
            total += f.stat().st_size
        except OSError:  # a spill file removed while we looked
            continue
    return total


def _spilled(con: Any) -> int:
    """Bytes in DuckDB's temporary files right now (what the query left spilled)."""
    rows = con.execute("SELECT sum(size) FROM duckdb_temporary_files()").fetchall()
    return int(rows[0][0] or 0) if rows else 0


def child(folder: Path, reconcile: bool) -> None:
    """Count (then reconcile), and print one JSON line with the figures and the results."""
    from truecount.billing.invoice import load_invoice_into
    from truecount.billing.reconcile import reconcile_in
    from truecount.definition.load import load_definition
    from truecount.engine.run import count_source, partitions_for, piece_cuts
    from truecount.engine.source import open_events

    files = sorted(str(p) for p in folder.glob("events-*.parquet"))
    definition = load_definition(DEFINITION)
    wall, cpu = time.perf_counter(), time.process_time()
    source = open_events(files)
    pieces = partitions_for(source)
    kind = "ranges" if piece_cuts(source, pieces) is not None else "hash" if pieces > 1 else "one"
    result = count_source(definition, source)
    got: dict[str, Any] = {
        "count_wall_s": round(time.perf_counter() - wall, 1),
        "count_cpu_s": round(time.process_time() - cpu, 1),
        "count_peak_rss_mb": _peak_rss_mb(),
        "temp_bytes_after_count": _spilled(result.con),
        "pieces": pieces,
        "piece_kind": kind,
        "memory_limit": result.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][
            0
        ],
        "threads": result.con.execute("SELECT current_setting('threads')").fetchall()[0][0],
        "periods": {
            p.period: {
                "candidates": p.candidates,
                "counted": p.counted,
                "not_counted": p.not_counted,
                "pending": p.pending,
            }
            for p in result.periods
        },
    }
    if reconcile:
        wall, cpu = time.perf_counter(), time.process_time()
        con = result.con
        load_invoice_into(con, [str(folder / "invoice.parquet")], None, table="invoice")
        rec = reconcile_in(
            con,
            "verdicts",
            "invoice",
            known_table="events",
            definition=definition,
            fetch_entities=False,
            cells=False,
        )
        got |= {
            "reconcile_wall_s": round(time.perf_counter() - wall, 1),
            "reconcile_cpu_s": round(time.process_time() - cpu, 1),
            "cells": {
                p.period: {c: int(getattr(p, c)) for c in CELLS}
                for p in rec.periods
                if any(getattr(p, c) for c in CELLS)
            },
        }
    got["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(got))


def _manifest(folder: Path) -> dict[str, Any]:
    """The generator's manifest, waiting (up to an hour) while it is still being computed."""
    path = folder / "manifest.json"
    for _ in range(720):
        if path.exists():
            break
        time.sleep(5)
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), reconcile="--count-only" not in sys.argv)
        return 0
    folder = Path(sys.argv[1])
    count_only = "--count-only" in sys.argv
    # A count-only run may start while the generator still computes the truth: the files are
    # complete before the manifest is written, and the truth is needed only at the end.
    manifest = None if count_only else _manifest(folder)
    reconcile = manifest is not None and "reconcile_truth" in manifest
    temp = Path(os.environ.get("TRUECOUNT_TEMP_DIRECTORY") or folder / "spill")
    temp.mkdir(parents=True, exist_ok=True)
    env = os.environ.copy() | {"TRUECOUNT_TEMP_DIRECTORY": str(temp)}
    args = [sys.executable, __file__, "--child", str(folder)]
    args += [] if reconcile else ["--count-only"]
    started = time.perf_counter()
    load_before = round(os.getloadavg()[0], 1)
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    peak_temp = 0
    while proc.poll() is None:  # the temporary directory's high-water mark, once a second
        peak_temp = max(peak_temp, _dir_bytes(temp))
        time.sleep(1)
    out, err = proc.communicate()
    if proc.returncode != 0:
        print(err, file=sys.stderr)
        return proc.returncode
    got = json.loads(out.strip().splitlines()[-1])
    got["peak_temp_mb"] = round(peak_temp / 1e6)
    got["process_wall_s"] = round(time.perf_counter() - started, 1)
    load_after = round(os.getloadavg()[0], 1)
    print(json.dumps({k: v for k, v in got.items() if k != "periods"}), file=sys.stderr)
    manifest = manifest or _manifest(folder)
    agree = got["periods"] == manifest["truth"]
    if reconcile:
        agree = agree and got["cells"] == manifest["reconcile_truth"]
    report = {k: v for k, v in got.items() if k not in ("periods", "cells")}
    report |= {"events": manifest["events"], "tickets": manifest["tickets"], "truth": agree}
    report["load_average"] = [load_before, load_after]
    print(json.dumps(report))
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
