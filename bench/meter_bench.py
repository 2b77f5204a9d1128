#!/usr/bin/env python
"""Sustained intake of the live meter on loopback: events a second and request latency.

Why this exists: the meter answers a request only once its events are fsync'd in the journal,
so throughput depends on how many requests share one fsync (the writer's group commit) and on
the batch size senders use, and the latency on everything else that competes for the two
cores meanwhile. This starts ``truecount meter serve`` on a fresh workspace, runs N senders
that each post signed batches of B canonical events over a kept-alive connection for D
seconds, and reports acknowledged events a second and the p50 / p99 latency of a request,
measured by the sender from the moment its request is written to the socket to the moment
the whole answer is read. Every acknowledged event id is then checked to be in the store
exactly once, so a fast run that loses events cannot pass for a good one.

Usage::

    .venv/bin/python bench/meter_bench.py --senders 8 --batch 50 --seconds 10
    .venv/bin/python bench/meter_bench.py --senders 8 --batch 50 --seconds 10 --rate 5000

Without ``--rate`` each sender posts its next batch as soon as the last is answered (a
closed loop: the meter's most events a second, and latency is then mostly queueing, since
8 senders always have 8 requests waiting). With ``--rate`` the senders offer that many events
a second in all, each on its own schedule with the senders' phases spread evenly over one
period (webhooks from many tickets do not arrive in lockstep); that is what the latency target
is about. The meter's own measure of each request (handler entered to answer, from
``/stats``) is printed beside the senders' one.

The senders share the machine with the meter, so their own cost is part of what is measured.
``--client stream`` (the default) is one asyncio loop writing prepared HTTP/1.1 requests on
raw sockets, the least CPU a Python sender can spend; ``--client httpx`` is one thread per
sender with an ``httpx.Client``, as an application would post, which costs several times the
CPU. The CPU seconds each side used during the run are printed, so the two can be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
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

from truecount.live.signatures import sign_generic
from truecount.workspace import Workspace

SECRET = b"bench-secret-0123456789"
TOKEN = "bench-reader-token-0123456789"

#: One sender's result: request latencies in seconds, and the event ids acknowledged.
Result = tuple[list[float], list[str]]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(ws: Path, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TRUECOUNT_METER_SENDERS": "bench=hmac-sha256:" + SECRET.decode(),
        "TRUECOUNT_METER_READERS": "bench=" + TOKEN,
    }
    cmd = [sys.executable, "-m", "truecount", "meter", "serve", "-w", str(ws),
           "--port", str(port), "--rate", "1000000", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the meter did not start")


def _signed(name: str, n: int, batch: int) -> tuple[list[str], bytes, dict[str, str]]:
    """Batch ``n`` of sender ``name``: its event ids, body and signature headers."""
    ids = [f"{name}-{n}-{k}" for k in range(batch)]
    body = json.dumps(
        [{"event_id": i, "entity_id": f"T-{name}-{n}", "ts": "2026-03-01T09:00:00Z",
          "type": "closed", "actor": "ai"} for i in ids]
    ).encode()  # fmt: skip
    return ids, body, sign_generic("bench", SECRET, body)


def _httpx_sender(
    port: int, name: str, batch: int, start: float, until: float, every: float | None
) -> Result:
    """Post batches with ``httpx`` until ``until``: back to back, or one every ``every``
    seconds from ``start``."""
    latencies: list[float] = []
    acked: list[str] = []
    n = 0
    due = start
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        while time.perf_counter() < until:
            if every is not None:
                wait = due - time.perf_counter()
                due += every
                if wait > 0:
                    time.sleep(wait)
            _ids, body, headers = _signed(name, n, batch)
            n += 1
            began = time.perf_counter()
            r = client.post("/events", content=body, headers=headers)
            latencies.append(time.perf_counter() - began)
            if r.status_code != 200:
                raise SystemExit(f"refused: {r.status_code} {r.text}")
            acked.extend(e["event_id"] for e in r.json()["accepted"])
    return latencies, acked


async def _stream_sender(
    port: int, name: str, batch: int, start: float, until: float, every: float | None
) -> Result:
    """The same as :func:`_httpx_sender` on a raw kept-alive socket: the request is written
    in one piece and the answer read by its ``content-length``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies: list[float] = []
    acked: list[str] = []
    n = 0
    due = start
    try:
        while time.perf_counter() < until:
            if every is not None:
                wait = due - time.perf_counter()
                due += every
                if wait > 0:
                    await asyncio.sleep(wait)
            _ids, body, headers = _signed(name, n, batch)
            n += 1
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            request = (
                f"POST /events HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n{head}\r\n"
            ).encode() + body
            began = time.perf_counter()
            writer.write(request)
            status, length = _response_head(await reader.readuntil(b"\r\n\r\n"))
            answer = await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            if status != 200:
                raise SystemExit(f"refused: {status} {answer.decode(errors='replace')}")
            acked.extend(e["event_id"] for e in json.loads(answer)["accepted"])
    finally:
        writer.close()
    return latencies, acked


def _response_head(head: bytes) -> tuple[int, int]:
    """Status and content length of an HTTP/1.1 answer's head."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length":
            return status, int(value)
    raise SystemExit(f"an answer without content-length: {lines[0]}")


def _cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by this process, or by ``pid`` (Linux)."""
    if pid is None:
        use = resource.getrusage(resource.RUSAGE_SELF)
        return use.ru_utime + use.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_senders(args: argparse.Namespace, port: int) -> list[Result]:
    every = None if args.rate is None else args.senders * args.batch / args.rate
    start = time.perf_counter() + 0.05
    until = start + args.seconds
    # Spread the senders' phases over one period, so that they do not post in lockstep
    # (unless asked to: every sender at once, the burstiest arrival for the same rate).
    spread = 0.0 if args.lockstep else (every or 0.0) / args.senders
    starts = [start + spread * i for i in range(args.senders)]
    names = [f"s{i}" for i in range(args.senders)]
    if args.client == "stream":

        async def all_senders() -> list[Result]:
            return await asyncio.gather(
                *[_stream_sender(port, n, args.batch, s, until, every)
                  for n, s in zip(names, starts, strict=True)]
            )  # fmt: skip

        return asyncio.run(all_senders())
    results: dict[str, Result] = {}

    def one(name: str, first: float) -> None:
        results[name] = _httpx_sender(port, name, args.batch, first, until, every)

    threads = [
        threading.Thread(target=one, args=(n, s)) for n, s in zip(names, starts, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(results) != len(names):
        raise SystemExit("a sender failed")
    return list(results.values())


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
    parser.add_argument(
        "--client",
        choices=("stream", "httpx"),
        default="stream",
        help="senders on raw sockets in one asyncio loop (default), or one httpx thread each",
    )
    parser.add_argument(
        "--lockstep",
        action="store_true",
        help="with --rate: every sender posts at the same moments (bursts of N requests)",
    )
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        help="an extra option for 'truecount meter serve' (repeat as needed)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meter-bench-") as folder:
        ws = Workspace.init(Path(folder) / "ws").root
        port = _port()
        proc = _start(ws, port, args.serve_arg)
        load = os.getloadavg()[0]
        # The senders' own collector must not stall them mid-request (their latency is the
        # meter's): what exists now lives to the end of the run.
        gc.collect()
        gc.freeze()
        cpu_client, cpu_server = _cpu(None), _cpu(proc.pid)
        began = time.perf_counter()
        results = _run_senders(args, port)
        elapsed = time.perf_counter() - began
        cpu_client, cpu_server = _cpu(None) - cpu_client, _cpu(proc.pid) - cpu_server
        stats = httpx.get(
            f"http://127.0.0.1:{port}/stats", headers={"authorization": f"Bearer {TOKEN}"}
        ).json()
        server = stats.get("latency_ms") or {"p50": float("nan"), "p99": float("nan")}
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        latencies = sorted(x for lat, _ in results for x in lat)
        acked = [e for _, ids in results for e in ids]
        with Workspace(ws).connect(read_only=True) as con:
            row = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
        assert row is not None
        stored, distinct = int(row[0]), int(row[1])
        q = statistics.quantiles(latencies, n=100)
        print(
            f"senders {args.senders} ({args.client}), batch {args.batch}, "
            f"{'closed loop' if args.rate is None else f'offered {args.rate:,.0f} events/s'}"
            f"{' in lockstep' if args.lockstep and args.rate else ''}, "
            f"{elapsed:.1f} s, load {load:.1f}: "
            f"{len(acked) / elapsed:,.0f} events/s ({len(latencies) / elapsed:,.0f} requests/s); "
            f"latency p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
            f"max {latencies[-1] * 1000:.1f} ms "
            f"(in the meter: p50 {server['p50']:.1f} ms, p99 {server['p99']:.1f} ms); "
            f"CPU s: senders {cpu_client:.1f}, meter {cpu_server:.1f}; "
            f"stored {stored:,} ({distinct:,} distinct) of {len(acked):,} acknowledged"
        )
        if stored != len(acked) or distinct != stored:
            raise SystemExit("the store does not hold every acknowledged event exactly once")


if __name__ == "__main__":
    main()
