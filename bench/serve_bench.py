#!/usr/bin/env python
"""Benchmark: how long each dashboard page takes to answer, on the demo workspace.

Why: the dashboard is meant to be clicked through, so a page has to answer in well under a
second (the target is 500 ms on the demo's quarter). The first look at a definition and invoice
counts and reconciles, and ``/versions`` replays every stored version: ``truecount serve`` does
both before it listens, so no reader waits for them, and every page after that is served from
the results kept in memory. This script times both: the warm-up once, then each page
``--repeat`` times through the application in this process (no network in between, so the
figure is the application's own).

At scale the workspace is built once from ``bench/run.py``'s Parquet files (``--data``) and kept
(``--workspace``), since ingesting ten million tickets takes minutes; later runs reuse it.

Usage::

    .venv/bin/python bench/serve_bench.py                   # the demo's quarter (~41,600 tickets)
    .venv/bin/python bench/serve_bench.py --tickets 400000 --out bench/out/serve.md
    .venv/bin/python bench/serve_bench.py --data bench/data/t10000000-s7-18a4640f86 \
        --workspace bench/data/ws-10m                      # bench/run.py's data, kept workspace
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from truecount.billing.reconcile import CELLS
from truecount.cli.demo_cmds import run_demo
from truecount.demo.generate import SupportScenario
from truecount.history.versions import add_version
from truecount.ingest.load import ingest_files
from truecount.web import Dashboard, create_app
from truecount.web.sources import add_invoice
from truecount.workspace import Workspace

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _build(folder: Path, tickets: int) -> Workspace:
    """The demo's workspace: ``truecount demo`` stores its definition as version 1 and keeps
    its invoice with its terms in ``invoices/``, as ``truecount serve`` reads them."""
    import truecount.cli.demo_cmds as demo

    original = demo.SupportScenario
    demo.SupportScenario = lambda seed: SupportScenario(seed=seed, tickets=tickets)  # type: ignore[assignment,misc]
    try:
        result = run_demo(folder)
    finally:
        demo.SupportScenario = original  # type: ignore[misc]
    return Workspace.open(result.workspace)


def _from_data(data: Path, folder: Path) -> Workspace:
    """A kept workspace holding ``bench/run.py``'s events, its pinned definition as version 1
    and its invoice with the demo's terms; built on the first run, reused after."""
    from truecount.cli.demo_cmds import package_text

    if (folder / "invoices").is_dir():
        return Workspace.open(folder)
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    ws = Workspace.init(folder)
    ingest_files(ws, [data / name for name in manifest["events"]])
    add_version(ws, Path(__file__).resolve().parent / "resolved_ticket.yaml", "2026-01-01")
    terms = folder / "terms.yaml"
    terms.write_text(package_text("terms.yaml"), encoding="utf-8")
    add_invoice(ws.root, data / "invoice.parquet", terms, name="2026-Q1")
    return ws


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=41_600)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument(
        "--data", type=Path, default=None, help="bench/run.py's data folder (with manifest.json)"
    )
    parser.add_argument(
        "--workspace", type=Path, default=None, help="with --data: the workspace to build or reuse"
    )
    args = parser.parse_args()
    if (args.data is None) != (args.workspace is None):
        parser.error("--data and --workspace go together")

    with tempfile.TemporaryDirectory(prefix="truecount-serve-bench-") as tmp:
        started = time.perf_counter()
        if args.data is not None:
            ws = _from_data(args.data, args.workspace)
            manifest = json.loads((args.data / "manifest.json").read_text(encoding="utf-8"))
            args.tickets = int(manifest["counts"]["tickets"])
        else:
            ws = _build(Path(tmp) / "demo", args.tickets)
        built = time.perf_counter() - started
        board = Dashboard(ws)
        client = TestClient(create_app(board))
        # What `truecount serve` does before it listens: every meter, then the replay table.
        started = time.perf_counter()
        key = board.meters()[0]
        for each in board.meters():
            board.meter(each)
        warm = time.perf_counter() - started
        started = time.perf_counter()
        board.replay()
        warm_replay = time.perf_counter() - started
        print(f"warm-up: meters {warm:.2f} s, replay {warm_replay:.2f} s", file=sys.stderr)

        path = key.path
        pages = ["/", path, f"{path}/period/2026-02", f"{path}/drift", "/versions", "/watch"]
        pages += [f"{path}/cell/{c}" for c in CELLS]
        pages.append(f"{path}/cell/vendor_only?q=T00001")
        rows = client.get(f"{path}/cell/vendor_only").text
        marker = f"{path}/entity/"
        entity = rows[rows.index(marker) : rows.index('"', rows.index(marker))]
        pages.append(entity)

        lines = [
            f"# dashboard pages, {args.tickets:,} tickets",
            "",
            f"- workspace built (or opened) in {built:.1f} s",
            f"- warm-up, as `truecount serve` does it before it listens: the meters (count,"
            f" reconcile, drift of each definition x invoice) {warm:.2f} s, the replay table"
            f" {warm_replay:.2f} s",
            "",
            "| page | first (ms) | median (ms) | max (ms) |",
            "|---|---:|---:|---:|",
        ]
        worst = 0.0
        for url in pages:
            times = []
            for _ in range(args.repeat + 1):
                t0 = time.perf_counter()
                r = client.get(url)
                times.append(1000 * (time.perf_counter() - t0))
                if r.status_code != 200:
                    print(f"{url}: HTTP {r.status_code}", file=sys.stderr)
                    return 2
            rest = times[1:]
            worst = max(worst, max(times))
            label = url.replace(path, "<meter>")
            lines.append(
                f"| `{label}` | {times[0]:.0f} | {statistics.median(rest):.0f} | {max(rest):.0f} |"
            )
        # the targets: 500 ms on the demo's quarter, 2 s at ten million tickets
        target = 500 if args.tickets <= 1_000_000 else 2_000
        lines += ["", f"slowest answer: {worst:.0f} ms (target: {target:,} ms)"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
