"""A ``kill -9`` during a load loses no acknowledged event and duplicates none.

The meter runs as ``truecount meter serve`` in a subprocess; sender threads post signed
batches and note which were acknowledged; the server is killed with SIGKILL mid-load, started
again, the unanswered batches are sent again (as a vendor would retry), and the store and
the log are then compared with the acknowledgements.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from truecount.live.signatures import sign_generic
from truecount.workspace import Workspace

SECRET = b"crash-test-secret"
TOKEN = "crash-test-reader-token"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(
    ws: Path, port: int, log: Path | None = None, extra: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TRUECOUNT_METER_SENDERS": "etl=hmac-sha256:" + SECRET.decode(),
        "TRUECOUNT_METER_READERS": f"auditor={TOKEN}",
    }
    err = (log or ws.parent / "meter.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "truecount", "meter", "serve", "-w", str(ws), "--port", str(port),
         "--rate", "100000", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )  # fmt: skip
    err.close()
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError((log or ws.parent / "meter.log").read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the meter did not start")


def _post(port: int, ids: list[str]) -> httpx.Response:
    body = json.dumps(
        [
            {"event_id": i, "entity_id": i[:3], "ts": "2026-03-01T09:00:00Z", "type": "x"}
            for i in ids
        ]
    ).encode()
    headers = sign_generic("etl", SECRET, body)
    return httpx.post(f"http://127.0.0.1:{port}/events", content=body, headers=headers, timeout=10)


def _log_head(port: int) -> dict[str, object]:
    """The meter's latest signed tree head, read with the auditor's token."""
    return httpx.get(
        f"http://127.0.0.1:{port}/log/head", headers={"authorization": f"Bearer {TOKEN}"}
    ).json()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_loses_no_acknowledged_event(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws").root
    port = _port()
    proc = _start(ws, port)
    acked: set[str] = set()
    unanswered: list[list[str]] = []
    lock = threading.Lock()
    stop = threading.Event()
    problems: list[str] = []

    def sender(name: str) -> None:
        n = 0
        while not stop.is_set() and n < 400:
            ids = [f"{name}-{n}-{k}" for k in range(10)]
            n += 1
            try:
                r = _post(port, ids)
            except httpx.HTTPError:
                with lock:
                    unanswered.append(ids)
                return
            except Exception as exc:  # reported by the main thread, with the meter's log
                with lock:
                    problems.append(repr(exc))
                return
            if r.status_code != 200:
                with lock:
                    problems.append(f"{r.status_code} {r.text}")
                return
            with lock:
                acked.update(e["event_id"] for e in r.json()["accepted"])

    threads = [threading.Thread(target=sender, args=(f"s{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        with lock:
            if len(acked) >= 300:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    log = (tmp_path / "meter.log").read_text()
    assert not problems, (problems, log)
    assert len(acked) >= 300, (len(acked), log)

    proc = _start(ws, port)
    try:
        for ids in unanswered:  # the senders retry what got no answer
            r = _post(port, ids)
            assert r.status_code == 200, r.text
            got = {e["event_id"] for e in r.json()["accepted"]} | set(r.json()["duplicates"])
            assert got == set(ids)
            acked.update(ids)
        head = _log_head(port)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    with Workspace(ws).connect(read_only=True) as con:
        rows = con.execute("SELECT event_id, count(*) FROM events GROUP BY 1").fetchall()
    counts = {str(e): int(c) for e, c in rows}
    assert acked <= set(counts), sorted(acked - set(counts))[:5]
    assert set(counts.values()) == {1}
    assert head["tree_size"] == len(counts)
    journal = (ws / "live" / "journal.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["event_id"] for line in journal].__len__() == len(counts)


def _store_counts(ws: Path) -> dict[str, int]:
    with Workspace(ws).connect(read_only=True) as con:
        rows = con.execute("SELECT event_id, count(*) FROM events GROUP BY 1").fetchall()
    return {str(e): int(c) for e, c in rows}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_events_acknowledged_while_the_loader_lags_survive_a_kill(tmp_path: Path) -> None:
    """Answers wait for the journal's fsync, not for the store: events answered while the
    loader is an hour from its next load are in the journal only when the meter is killed,
    and the next start loads each of them once (a retry of one of them stays a duplicate)."""
    ws = Workspace.init(tmp_path / "ws").root
    port = _port()
    proc = _start(ws, port, extra=("--load-every", "3600"))
    acked: list[str] = []
    try:
        for n in range(12):
            r = _post(port, [f"lag-{n}-{k}" for k in range(5)])
            assert r.status_code == 200, r.text
            acked.extend(e["event_id"] for e in r.json()["accepted"])
        again = _post(port, ["lag-3-1", "lag-3-2"]).json()
        assert again["accepted"] == [] and again["duplicates"] == ["lag-3-1", "lag-3-2"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(acked) == 60
    journal = (ws / "live" / "journal.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["event_id"] for line in journal] == acked
    assert _store_counts(ws) == {}  # the loader had not run: the journal alone held them

    proc = _start(ws, port)
    try:
        again = _post(port, ["lag-0-0", "lag-11-4"]).json()
        assert again["accepted"] == [] and again["duplicates"] == ["lag-0-0", "lag-11-4"]
        head = _log_head(port)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert _store_counts(ws) == dict.fromkeys(acked, 1)
    assert head["tree_size"] == 60
