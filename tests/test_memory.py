"""Out of core: a count in pieces gives the one-piece verdicts; running out is one clear line.

The data come from ``bench/bigdata.py``, whose truth follows from its parameters: the expected
counts are computed here in plain Python from the same per-ticket rule, not by the engine.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

import truecount
from truecount.db import ResourceError, resource_error, size_bytes
from truecount.definition.load import load_definition
from truecount.engine.run import partitions_for
from truecount.engine.source import open_events
from truecount.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "bench" / "resolved_ticket.yaml"
TICKETS = 30_000


def _bigdata() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bigdata", ROOT / "bench" / "bigdata.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("big")
    _bigdata().generate(out, TICKETS, chunk=10_000, threads=1, memory_limit="256MB")
    return sorted(str(p) for p in out.glob("events-*.parquet"))


def _draw(i: int, k: int) -> int:
    """``bench/bigdata.py``'s draw, written again in Python."""
    mults = (0, 2654435761, 2246822519, 3266489917, 668265263, 374761393, 1103515245, 69069,
             2891336453)  # fmt: skip
    return (((i + k * 7) * mults[k]) % 4294967291) // 1000 % 1000


def _expected() -> dict[str, Counter[str]]:
    """Per month of the ai close: the definition's rule applied ticket by ticket in Python."""
    start = dt.datetime(2026, 1, 1)
    stories = []
    latest = start
    for i in range(TICKETS):
        closed = start + dt.timedelta(
            seconds=(i * 7919) % (90 * 86400) + 600 + (_draw(i, 2) % 50) * 60
        )
        reopen_days, rating_days = _draw(i, 4) % 20, _draw(i, 7) % 10
        reopened, rated = _draw(i, 3) < 100, _draw(i, 5) < 910
        latest = max(latest, closed)
        if reopened:
            latest = max(latest, closed + dt.timedelta(days=reopen_days, hours=1))
        if rated:
            latest = max(latest, closed + dt.timedelta(days=rating_days, minutes=1))
        stories.append((i, closed, reopened, reopen_days, rated, rating_days))
    out: dict[str, Counter[str]] = {}
    for i, closed, reopened, reopen_days, rated, rating_days in stories:
        if _draw(i, 1) >= 900:  # closed by a human: not a candidate
            continue
        rating = 1 + _draw(i, 6) % 5
        if closed + dt.timedelta(days=14) > latest:
            status = "pending"
        elif not (reopened and reopen_days <= 13) and rated and rating >= 4 and rating_days <= 6:
            status = "counted"
        else:
            status = "not_counted"
        out.setdefault(closed.strftime("%Y-%m"), Counter())[status] += 1
    return out


def _verdicts(files: list[str]) -> list[tuple[object, ...]]:
    result = truecount.count(load_definition(DEFINITION), files)
    try:
        return [tuple(r.values()) for r in result.verdicts.to_pylist()]
    finally:
        result.close()


def test_pieces_give_the_one_piece_verdicts_and_the_truth(
    events: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUECOUNT_MEMORY_LIMIT", "64MB")
    monkeypatch.setenv("TRUECOUNT_THREADS", "1")
    monkeypatch.setenv("TRUECOUNT_PARTITIONS", "1")
    whole = _verdicts(events)
    monkeypatch.setenv("TRUECOUNT_PARTITIONS", "7")
    pieces = _verdicts(events)
    assert len(whole) > 20_000
    assert pieces == whole
    got: dict[str, Counter[str]] = {}
    for row in pieces:
        period, status = str(row[3]), str(row[4])
        got.setdefault(period, Counter())[status] += 1
    assert got == _expected()


def test_the_automatic_number_of_pieces_follows_the_budget(
    events: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRUECOUNT_PARTITIONS", raising=False)
    monkeypatch.setenv("TRUECOUNT_MEMORY_LIMIT", "64MB")
    source = open_events(events)
    try:
        rows = duckdb.sql(
            "SELECT count(*) FROM read_parquet($files)", params={"files": events}
        ).fetchall()[0][0]
        assert source.rows == rows
        assert partitions_for(source) == 1  # ~100k events fit in 64MB many times over
        source.rows = 10**9
        assert partitions_for(source) > 100
    finally:
        source.con.close()


def test_a_bad_number_of_pieces_names_the_variable(
    events: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUECOUNT_PARTITIONS", "many")
    with pytest.raises(InputError, match="TRUECOUNT_PARTITIONS"):
        truecount.count(load_definition(DEFINITION), events)


def test_running_out_of_memory_is_one_line_exit_2(events: list[str], tmp_path: Path) -> None:
    env = {
        "TRUECOUNT_MEMORY_LIMIT": "8MB",
        "TRUECOUNT_PARTITIONS": "1",
        "TRUECOUNT_THREADS": "2",
        "PATH": "/usr/bin:/bin",
    }
    args = [sys.executable, "-m", "truecount", "count", str(DEFINITION)]
    for f in events:
        args += ["-e", f]
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "ran out of memory" in done.stderr
    assert "TRUECOUNT_MEMORY_LIMIT" in done.stderr


def test_a_full_temp_directory_is_named() -> None:
    con = duckdb.connect()
    con.execute("SET memory_limit = '20MB'")
    con.execute("SET threads = 1")
    con.execute("SET max_temp_directory_size = '1MB'")
    try:
        con.execute(
            "SELECT i % 3000000 AS g, count(*) FROM range(6000000) t(i) GROUP BY g ORDER BY g"
        ).fetchall()
    except duckdb.Error as exc:
        error = resource_error(exc, "counting", con)
        assert isinstance(error, ResourceError)
        assert "TRUECOUNT_TEMP_DIRECTORY" in error.first_line or "TRUECOUNT_MEMORY_LIMIT" in (
            error.first_line
        )
        assert "\n" not in error.first_line
    else:
        pytest.fail("the query fitted; the test needs it to run out of temporary space")
    finally:
        con.close()


def test_sizes_read_as_duckdb_writes_them() -> None:
    assert size_bytes("2GB") == 2 * 1000**3
    assert size_bytes("1.8 GiB") == int(1.8 * 1024**3)
    assert size_bytes("512 MiB") == 512 * 1024**2
    assert size_bytes("lots") is None
