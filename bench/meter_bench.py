#!/usr/bin/env python
"""Sustained intake of the live meter on loopback: events a second and request latency.

Why this exists: the meter answers a request only after its events are fsync'd, stored and
logged, so throughput depends on how many requests share one fsync (the writer's group
commit) and on the batch size senders use. This starts ``truecount meter serve`` on a fresh
workspace, runs N sender threads that each post signed batches of B canonical events over a
kept-alive connection for D seconds, and reports acknowledged events a second and the p50 /
p99 latency of a request. Every acknowledged event id is then checked to be in the store
exactly once, so a fast run that loses events cannot pass for a good one.

Usage::

    .venv/bin/python bench/meter_bench.py --senders 8 --batch 50 --seconds 10
    .venv/bin/python bench/meter_bench.py --senders 8 --batch 50 --seconds 10 --rate 5000

Without ``--rate`` each sender posts its next batch as soon as the last is answered (a
closed loop: the meter's most events a second, and latency is then mostly queueing, since
8 senders always have 8 requests waiting). With ``--rate`` the senders offer that many events
a second in all, on a schedule, as webhooks arrive; that is what the latency target is about.
The meter's own measure of each request (arrival to answer, from ``/stats``) is printed
beside the senders' one, which also counts the client's time on a shared machine.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from truecount.workspace import Workspace

SECRET = b"bench-secret-0123456789"
TOKEN = "bench-reader-token-0123456789"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(ws: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TRUECOUNT_METER_SENDERS": "bench=hmac-sha256:" + SECRET.decode(),
        "TRUECOUNT_METER_READERS": "bench=" + TOKEN,
    }
    cmd = [sys.executable, "-m", "truecount", "meter", "serve", "-w", str(ws),
           "--port", str(port), "--rate", "1000000"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the meter did not start")


def _sender(
    port: int,
    name: str,
    batch: int,
    until: float,
    out: dict[str, list],  # type: ignore[type-arg]
    every: float | None = None,
) -> None:
    """Post batches until ``until``: back to back, or one every ``every`` seconds (an offered
    load, as webhooks arrive, which is what a latency target is about)."""
    latencies: list[float] = []
    acked: list[str] = []
    n = 0
    due = time.perf_counter()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        while time.perf_counter() < until:
            if every is not None:
                due += every
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            ids = [f"{name}-{n}-{k}" for k in range(batch)]
            n += 1
            body = json.dumps(
                [{"event_id": i, "entity_id": f"T-{n}", "ts": "2026-03-01T09:00:00Z",
                  "type": "closed", "actor": "ai"} for i in ids]
            ).encode()  # fmt: skip
            stamp = str(int(time.time()))
            mac = hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers = {
                "x-truecount-sender": "bench",
                "x-truecount-timestamp": stamp,
                "x-truecount-signature": f"hmac-sha256={mac}",
            }
            start = time.perf_counter()
            r = client.post("/events", content=body, headers=headers)
            latencies.append(time.perf_counter() - start)
            if r.status_code != 200:
                raise SystemExit(f"refused: {r.status_code} {r.text}")
            acked.extend(e["event_id"] for e in r.json()["accepted"])
    out[name] = [latencies, acked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--batch", type=int, default=50, help="events per request")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="offered events a second in all (default: as fast as the meter answers)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meter-bench-") as folder:
        ws = Workspace.init(Path(folder) / "ws").root
        port = _port()
        proc = _start(ws, port)
        results: dict[str, list] = {}  # type: ignore[type-arg]
        every = None if args.rate is None else args.senders * args.batch / args.rate
        until = time.perf_counter() + args.seconds
        began = time.perf_counter()
        threads = [
            threading.Thread(
                target=_sender, args=(port, f"s{i}", args.batch, until, results, every)
            )
            for i in range(args.senders)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        stats = httpx.get(
            f"http://127.0.0.1:{port}/stats", headers={"authorization": f"Bearer {TOKEN}"}
        ).json()
        server = stats.get("latency_ms") or {"p50": float("nan"), "p99": float("nan")}
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        latencies = sorted(x for lat, _ in results.values() for x in lat)
        acked = [e for _, ids in results.values() for e in ids]
        with Workspace(ws).connect(read_only=True) as con:
            row = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
        assert row is not None
        stored, distinct = int(row[0]), int(row[1])
        q = statistics.quantiles(latencies, n=100)
        print(
            f"senders {args.senders}, batch {args.batch}, "
            f"{'closed loop' if args.rate is None else f'offered {args.rate:,.0f} events/s'}, "
            f"{elapsed:.1f} s: "
            f"{len(acked) / elapsed:,.0f} events/s ({len(latencies) / elapsed:,.0f} requests/s); "
            f"latency p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms "
            f"(in the meter: p50 {server['p50']:.1f} ms, p99 {server['p99']:.1f} ms); "
            f"stored {stored:,} ({distinct:,} distinct) of {len(acked):,} acknowledged"
        )
        if stored != len(acked) or distinct != stored:
            raise SystemExit("the store does not hold every acknowledged event exactly once")


if __name__ == "__main__":
    main()
