#!/usr/bin/env python
"""Benchmark: ``truecount evidence`` and ``truecount verify`` against ``truecount count``.

Why: an evidence pack is only made every month if it costs about what the count costs. The
target (issue 15) is ``evidence`` within 3x the wall time of ``count`` on the same workspace,
under 2 GB peak RSS, and ``verify`` within the same bounds. This script measures the three
verbs as a user runs them, each in a fresh child process, and prints the ratios.

The data are ``bench/run.py``'s generated Parquet chunks (``prepare_data``, reused when
cached); the workspace is built once with ``bench/serve_bench.py``'s builder (events ingested,
the pinned definition as version 1, the scenario's invoice with the demo's terms) and kept
under ``bench/data/``, since ingesting ten million tickets takes minutes.

Each verb runs through the CLI inside a child interpreter that then reports its own peak RSS
(``VmHWM``); wall and CPU time are taken by the parent around the child (``wait4``), so they
include the interpreter's start-up (about a second), alike for every verb.

``floor`` is not a verb: it is the least work any evidence pack must do, whatever its format,
run through the library in the same kind of child process. It counts, reconciles with the
cells, finds the covered entities, writes ``verdicts.csv`` and ``entities.csv`` unsorted and
reads every covered event once into Arrow, unsorted: no sort, no hash, no tree, and DuckDB's
memory budget is the count's (the pack's own, lower budget is not set). Its ratio to the
count bounds from below what any pack format can reach on this machine.

Usage::

    .venv/bin/python bench/evidence_bench.py --tickets 1000000        # a quick check
    .venv/bin/python bench/evidence_bench.py                         # 10M tickets, ~40M events
    .venv/bin/python bench/evidence_bench.py --profile evidence      # cProfile of one verb
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / "data"
DEFINITION = HERE / "resolved_ticket.yaml"
VERBS = ("count", "floor", "evidence", "verify")

sys.path.insert(0, str(HERE))


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def find_data(tickets: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The generated scenario for ``tickets``: a cached copy anywhere under bench/data/ whose
    manifest names the same scenario, else ``bench/run.py``'s ``prepare_data`` makes one."""
    from run import prepare_data  # bench/run.py
    from truecount.demo.generate import SupportScenario

    scenario = SupportScenario(seed=seed, tickets=tickets)
    key = json.dumps(scenario.fingerprint(), sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    for manifest in sorted(DATA_ROOT.glob(f"**/t{tickets}-s{seed}-{digest}/manifest.json")):
        saved = json.loads(manifest.read_text(encoding="utf-8"))
        if json.dumps(saved.get("scenario"), sort_keys=True) == key:
            return manifest.parent, saved
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    return prepare_data(tickets, seed, DATA_ROOT, 1_000_000)


def workspace_for(data: Path, tickets: int) -> Path:
    """The kept workspace of these data (built on the first run by serve_bench's builder)."""
    from serve_bench import _from_data  # bench/serve_bench.py

    folder = DATA_ROOT / f"evidence-ws-t{tickets}"
    if not (folder / "invoices").is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        _log(f"building the workspace {folder} (ingest; once) ...")
        started = time.perf_counter()
        _from_data(data, folder)
        _log(f"workspace built in {time.perf_counter() - started:.0f} s")
    return folder


def pack_floor(workspace: Path, definition: Path, invoice: Path, terms: Path, out: Path) -> int:
    """The work every pack needs, done once with nothing extra (see the module's text).

    It runs the same steps as ``evidence.run.run`` up to its files, then writes them without
    their order and reads the covered events without sorting or hashing them. Returns the
    number of covered events read, which is the pack's ``events.count``.
    """
    from truecount.billing.invoice import load_invoice_into
    from truecount.billing.reconcile import reconcile_in
    from truecount.billing.terms import parse_terms
    from truecount.definition.load import parse_definition
    from truecount.engine.run import VERDICTS_TABLE, count_source
    from truecount.engine.source import open_events
    from truecount.evidence import run as pack_run
    from truecount.evidence.blocks import sorted_events_sql
    from truecount.evidence.covered import covered_where
    from truecount.ingest.canonical import EVENTS_TABLE
    from truecount.workspace import Workspace

    parsed = parse_definition(definition.read_text(encoding="utf-8"), definition.name)
    source = open_events(Workspace.open(workspace))
    con = source.con
    result = count_source(parsed, source, None)
    load_invoice_into(con, [invoice], table=pack_run.INVOICE_TABLE)
    recon = reconcile_in(
        con,
        VERDICTS_TABLE,
        pack_run.INVOICE_TABLE,
        known_table=EVENTS_TABLE,
        definition=parsed,
        terms=parse_terms(terms.read_text(encoding="utf-8"), terms.name),
        as_of=result.as_of,
        fetch_entities=False,
        cells=True,
        line_ids=True,
    )
    pack_run._covered(con, pack_run.covered_periods(recon))
    out.mkdir(parents=True, exist_ok=True)
    for rows, name in (
        (pack_run._verdict_rows, "verdicts.csv"),
        (pack_run._entity_rows, "entities.csv"),
    ):
        select, _ = rows(con)  # the order is dropped
        con.sql(select.sql("duckdb")).write_csv(str(out / name), header=True)
    events = sorted_events_sql(covered_where(result.as_of), EVENTS_TABLE)
    events.set("order", None)
    read = sum(b.num_rows for b in con.sql(events.sql("duckdb")).to_arrow_reader(1 << 17))
    con.close()
    return read


def worker(report: Path, profile: Path | None, argv: list[str]) -> int:
    """Run the CLI with ``argv`` in this process (or the floor, when ``argv`` starts with
    ``floor``), then write its exit code and peak RSS."""
    from truecount.cli import main as cli_main

    if argv and argv[0] == "floor":
        pack_floor(*(Path(a) for a in argv[1:6]))
        from run import _peak_rss_mb  # bench/run.py

        report.write_text(json.dumps({"code": 0, "rss_mb": _peak_rss_mb()}), encoding="utf-8")
        return 0
    sys.argv = ["truecount", *argv]
    code: int = 0
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        cli_main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
    from run import _peak_rss_mb  # bench/run.py: this process's own high-water mark

    report.write_text(json.dumps({"code": code, "rss_mb": _peak_rss_mb()}), encoding="utf-8")
    return 0


def run_verb(
    name: str, argv: list[str], scratch: Path, profile: Path | None, memory: str | None = None
) -> dict[str, Any]:
    """One verb in a fresh interpreter: wall, CPU (user + system, all threads, and the helper
    processes it waited for), peak RSS (its own; a tree helper holds one 4 MB block)."""
    report = scratch / f"{name}.rss.json"
    report.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(report)]
    if profile is not None:
        cmd += ["--profile-out", str(profile)]
    cmd += ["--", *argv]
    started = time.perf_counter()
    env = dict(os.environ)
    if memory is not None:
        env["TRUECOUNT_MEMORY_LIMIT"] = memory
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=scratch, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0 or not report.is_file():
        raise RuntimeError(f"{name} failed to run: {' '.join(cmd)}")
    got = json.loads(report.read_text(encoding="utf-8"))
    # evidence exits 1 when a period is beyond tolerance, verify when a check failed
    if got["code"] not in (0, 1) or (name == "verify" and got["code"] != 0):
        raise RuntimeError(f"{name} exited {got['code']}: {' '.join(argv)}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": got["rss_mb"],
        "code": got["code"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=2, help="rounds of count, evidence, verify")
    parser.add_argument(
        "--only", default=",".join(VERBS), help="comma-separated verbs (verify needs evidence)"
    )
    parser.add_argument(
        "--profile", default=None, choices=VERBS, help="cProfile this verb (one extra run)"
    )
    parser.add_argument(
        "--memory-limit", default=None, help="TRUECOUNT_MEMORY_LIMIT for every verb (e.g. 1.5GB)"
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="folder for the key and the pack (default: evidence-scratch-t<tickets> under "
        "bench/data); give each concurrent run its own",
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.worker, args.profile_out, args.rest)

    data, manifest = find_data(args.tickets, args.seed)
    ws = workspace_for(data, args.tickets)
    scratch = (args.scratch or ws.parent / f"evidence-scratch-t{args.tickets}").resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    key = scratch / "signer.key"
    if not key.is_file():
        subprocess.run(
            [sys.executable, "-m", "truecount", "keygen", "--out", str(key)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    pack = scratch / "pack"
    argvs = {
        "count": [str(DEFINITION), "-w", str(ws)],
        "evidence": [
            *(str(DEFINITION), "--invoice", str(data / "invoice.parquet")),
            *("--terms", str(ws / "terms.yaml"), "--key", str(key)),
            *("--out", str(pack), "-w", str(ws)),
        ],
        "verify": [str(pack), "--pubkey", f"{key}.pub", "-w", str(ws)],
        "floor": [
            *(str(ws), str(DEFINITION), str(data / "invoice.parquet")),
            *(str(ws / "terms.yaml"), str(scratch / "floor")),
        ],
    }
    argvs = {verb: [verb, *a] for verb, a in argvs.items()}
    verbs = [v for v in VERBS if v in args.only.split(",")]
    if args.profile is not None:
        if args.profile == "evidence":
            shutil.rmtree(pack, ignore_errors=True)
        out = scratch / f"{args.profile}.prof"
        got = run_verb(args.profile, argvs[args.profile], scratch, out)
        _log(f"{args.profile} under cProfile: {got['wall']:.1f} s; stats in {out}")
        return 0

    samples: dict[str, list[dict[str, Any]]] = {v: [] for v in verbs}
    for i in range(args.runs):
        for verb in verbs:
            if verb == "evidence":
                shutil.rmtree(pack, ignore_errors=True)
            load = os.getloadavg()[0]
            got = run_verb(verb, argvs[verb], scratch, None, args.memory_limit)
            got["load"] = load
            samples[verb].append(got)
            _log(
                f"{verb} run {i + 1}: {got['wall']:.1f} s wall, {got['cpu']:.1f} s CPU, "
                f"peak RSS {got['rss_mb']:.0f} MB (load average before: {load:.1f})"
            )
    events = int(manifest["counts"]["events"])
    lines = [
        f"# evidence vs count, {args.tickets:,} tickets ({events:,} events), {args.runs} run(s)"
        + (f", TRUECOUNT_MEMORY_LIMIT={args.memory_limit}" if args.memory_limit else ""),
        "",
        "| verb | wall (s) per run | CPU (s) per run | peak RSS (MB) |",
        "|---|---:|---:|---:|",
    ]
    for verb, got in samples.items():
        walls = ", ".join(f"{g['wall']:.1f}" for g in got)
        cpus = ", ".join(f"{g['cpu']:.1f}" for g in got)
        lines.append(f"| {verb} | {walls} | {cpus} | {max(g['rss_mb'] for g in got):.0f} |")
    if "count" in samples:
        lines.append("")
        for verb in ("floor", "evidence", "verify"):
            if verb not in samples:
                continue
            # per round, this verb's wall over the count's of the same round; the best round
            # is the one other load on the machine disturbed least
            ratios = [
                g["wall"] / c["wall"] for g, c in zip(samples[verb], samples["count"], strict=True)
            ]
            listed = ", ".join(f"{r:.2f}x" for r in ratios)
            target = "the least any pack format can do" if verb == "floor" else "target 3x"
            lines.append(f"- {verb} / count wall: {listed} (best {min(ratios):.2f}x; {target})")
            cpu = [
                g["cpu"] / c["cpu"] for g, c in zip(samples[verb], samples["count"], strict=True)
            ]
            lines.append(f"- {verb} / count CPU: " + ", ".join(f"{r:.2f}x" for r in cpu))
            if verb != "floor" and "floor" in samples:
                # how far the pack is above the least any pack format could do
                above = [
                    g["wall"] / f["wall"]
                    for g, f in zip(samples[verb], samples["floor"], strict=True)
                ]
                lines.append(f"- {verb} / floor wall: " + ", ".join(f"{r:.2f}x" for r in above))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
