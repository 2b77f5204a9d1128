"""Out of core: a count in pieces gives the one-piece verdicts; running out is one clear line.

The data come from ``bench/bigdata.py``, whose truth follows from its parameters: the expected
counts are computed here in plain Python from the same per-ticket rule, not by the engine.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import duckdb
import pandas as pd
import pytest

import truecount
from truecount.billing.invoice import load_invoice_into
from truecount.billing.reconcile import reconcile_in
from truecount.db import ResourceError, memory_limit_bytes, resource_error, size_bytes
from truecount.definition.load import load_definition
from truecount.engine.run import RANGE_BYTES_PER_EVENT, entity_cuts, partitions_for, piece_cuts
from truecount.engine.source import entity_row_groups, open_events
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


_TRUTH_FIELDS = ("candidates", "counted", "not_counted", "pending")


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


def _pandas_verdicts(files: list[str]) -> pd.DataFrame:
    """entity_id, period, status per candidate, from the events with pandas alone.

    The definition written out: the anchor is the first close by the ai; not reopened within
    14 days; rated 4 or more within 7 days; pending while the 14-day window is still open at
    the latest event time.
    """
    ev = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    as_of = ev["ts"].max()
    closes = ev[(ev["type"] == "closed") & (ev["actor"] == "ai")]
    anchors = closes.groupby("entity_id", as_index=False)["ts"].min().rename(columns={"ts": "at"})
    joined = ev.merge(anchors, on="entity_id")
    after = joined["ts"] - joined["at"]
    positive = after > pd.Timedelta(0)
    reopened = joined[(joined["type"] == "reopened") & positive & (after <= pd.Timedelta(days=14))][
        "entity_id"
    ]
    rated = joined[
        (joined["type"] == "rated")
        & positive
        & (after <= pd.Timedelta(days=7))
        & (joined["value"] >= 4)
    ]["entity_id"]
    out = anchors.copy()
    good = ~out["entity_id"].isin(reopened) & out["entity_id"].isin(rated)
    out["status"] = "not_counted"
    out.loc[good, "status"] = "counted"
    out.loc[out["at"] + pd.Timedelta(days=14) > as_of, "status"] = "pending"
    out["period"] = out["at"].dt.strftime("%Y-%m")
    return out[["entity_id", "period", "status"]].sort_values("entity_id").reset_index(drop=True)


@pytest.mark.parametrize("pieces", [1, 3, 7])
def test_pieces_give_the_pandas_verdicts(
    events: list[str], monkeypatch: pytest.MonkeyPatch, pieces: int
) -> None:
    monkeypatch.setenv("TRUECOUNT_MEMORY_LIMIT", "64MB")
    monkeypatch.setenv("TRUECOUNT_THREADS", "1")
    monkeypatch.setenv("TRUECOUNT_PARTITIONS", str(pieces))
    result = truecount.count(load_definition(DEFINITION), events)
    try:
        got = result.verdicts.select(["entity_id", "period", "status"]).to_pandas()
    finally:
        result.close()
    want = _pandas_verdicts(events)
    assert len(want) > 20_000
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want)


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


def test_entity_cuts_split_the_rows_evenly() -> None:
    """Cuts fall at the smallest entity of the row group past each even share of the rows."""
    groups = [("e40", "e49", 10), ("e00", "e09", 10), ("e20", "e29", 10), ("e10", "e19", 10)]
    groups += [("e30", "e39", 10)]
    assert entity_cuts(groups, 5) == ["e10", "e20", "e30", "e40"]
    assert entity_cuts(groups, 2) == ["e30"]  # 30 rows below, 20 above: the first past 25
    assert entity_cuts(groups, 1) == []
    # Row groups that all start at one entity (files not grouped by entity) give no cut.
    spread = [("e00", "e99", 10)] * 5
    assert entity_cuts(spread, 3) == []


def test_range_pieces_come_from_the_footers_and_read_their_own_row_groups(
    events: list[str],
) -> None:
    """The generator writes one chunk of tickets per file, so three pieces are three files:
    the cuts are the files' first entities, and a piece's filter skips the other files' row
    groups (DuckDB's own scan statistics), while its rows are exactly its entities' (pandas)."""
    source = open_events(events)
    try:
        groups = entity_row_groups(source)
        assert groups is not None and len(groups) == len(events) == 3
        cuts = piece_cuts(source, 3)
        firsts = sorted(
            pd.read_parquet(f, columns=["entity_id"])["entity_id"].min() for f in events
        )
        assert cuts == firsts[1:]
        ev = pd.concat([pd.read_parquet(f, columns=["entity_id"]) for f in events])
        plan = source.con.execute(
            "EXPLAIN ANALYZE SELECT count(*) FROM events WHERE entity_id >= ? AND entity_id < ?",
            [cuts[0], cuts[1]],
        ).fetchall()[0][1]
        assert "Row Groups Scanned: 1 / 3" in plan
        got = source.con.execute(
            "SELECT count(*) FROM events WHERE entity_id >= ? AND entity_id < ?", cuts
        ).fetchall()[0][0]
        want = int(((ev["entity_id"] >= cuts[0]) & (ev["entity_id"] < cuts[1])).sum())
        assert got == want > 0
    finally:
        source.con.close()


@pytest.fixture(scope="module")
def shuffled(events: list[str], tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The same events in random order over three files: every file spans all the entities."""
    out = tmp_path_factory.mktemp("shuffled")
    ev = pd.concat([pd.read_parquet(f) for f in events], ignore_index=True)
    ev = ev.sample(frac=1.0, random_state=7).reset_index(drop=True)
    files = []
    third = len(ev) // 3 + 1
    for n in range(3):
        path = out / f"part-{n}.parquet"
        ev.iloc[n * third : (n + 1) * third].to_parquet(path, index=False)
        files.append(str(path))
    return files


def test_files_not_grouped_by_entity_fall_back_to_hash_pieces(
    shuffled: list[str], events: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUECOUNT_MEMORY_LIMIT", "64MB")
    monkeypatch.setenv("TRUECOUNT_THREADS", "1")
    monkeypatch.setenv("TRUECOUNT_PARTITIONS", "3")
    source = open_events(shuffled)
    try:
        assert piece_cuts(source, 3) is None
    finally:
        source.con.close()
    result = truecount.count(load_definition(DEFINITION), shuffled)
    try:
        got = result.verdicts.select(["entity_id", "period", "status"]).to_pandas()
    finally:
        result.close()
    pd.testing.assert_frame_equal(got.reset_index(drop=True), _pandas_verdicts(events))


def test_the_generators_truth_is_the_python_rule(events: list[str]) -> None:
    """bench/bigdata.py's own truth (SQL over the parameters) equals the rule in Python, so
    the truth the scale runs are checked against can be trusted."""
    folder = Path(events[0]).parent
    manifest = json.loads((folder / "manifest.json").read_text())
    want = {p: {s: c.get(s, 0) for s in _TRUTH_FIELDS} for p, c in _expected().items()}
    for counts in want.values():
        counts["candidates"] = sum(counts[s] for s in _TRUTH_FIELDS[1:])
    got = {p: {s: v[s] for s in _TRUTH_FIELDS} for p, v in manifest["truth"].items()}
    assert got == want


def test_the_invoice_truth_is_what_reconcile_finds(events: list[str]) -> None:
    """The generator's cells (from the parameters) against the library's reconciliation and a
    pandas join of the invoice with the pandas verdicts."""
    folder = Path(events[0]).parent
    manifest = json.loads((folder / "manifest.json").read_text())
    invoice = pd.read_parquet(folder / "invoice.parquet")
    verdicts = _pandas_verdicts(events)
    joined = verdicts.merge(invoice[["entity_id"]].assign(billed=True), on="entity_id", how="left")
    billed = joined["billed"].eq(True)
    cell = pd.Series("none", index=joined.index)
    cell[billed & (joined["status"] == "counted")] = "agreed"
    cell[billed & (joined["status"] == "not_counted")] = "vendor_only"
    cell[billed & (joined["status"] == "pending")] = "pending"
    cell[~billed & (joined["status"] == "counted")] = "buyer_only"
    table = joined.assign(cell=cell).groupby(["period", "cell"]).size()
    cells = ("agreed", "vendor_only", "pending", "buyer_only")
    by_pandas = {
        str(p): {c: int(table.get((p, c), 0)) for c in cells}
        for p in sorted(joined["period"].unique())
    }
    assert manifest["reconcile_truth"] == by_pandas
    result = truecount.count(load_definition(DEFINITION), events)
    try:
        load_invoice_into(result.con, [str(folder / "invoice.parquet")], None, table="invoice")
        rec = reconcile_in(
            result.con,
            "verdicts",
            "invoice",
            known_table="events",
            definition=result.definition,
            fetch_entities=False,
            cells=False,
        )
    finally:
        result.close()
    by_library = {p.period: {c: int(getattr(p, c)) for c in cells} for p in rec.periods}
    assert by_library == by_pandas


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
        budget = memory_limit_bytes(source.con)
        assert budget is not None
        # Two and a half range pieces' worth: the three files make three range pieces.
        source.rows = budget // RANGE_BYTES_PER_EVENT * 5 // 2
        assert partitions_for(source) == 3
        # A billion events would need ~1000 range pieces, but three files give only two
        # cuts: the count falls back to hash pieces, as large as the budget allows.
        source.rows = 10**9
        assert 100 < partitions_for(source) < 200
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


@pytest.mark.parametrize("verb", ["count", "check", "reconcile", "drift", "report", "evidence"])
def test_every_verb_says_out_of_memory_in_one_line(
    events: list[str], tmp_path: Path, verb: str
) -> None:
    """The guard is at the command line's boundary, so every verb that reads the events gets it,
    not only the count."""
    env = {
        "TRUECOUNT_MEMORY_LIMIT": "4MB",
        "TRUECOUNT_PARTITIONS": "1",
        "TRUECOUNT_THREADS": "2",
        "PATH": "/usr/bin:/bin",
    }
    args = [sys.executable, "-m", "truecount", verb, str(DEFINITION)]
    for f in events:
        args += ["-e", f]
    if verb in ("reconcile", "drift", "report", "evidence"):
        args += ["--invoice", str(Path(events[0]).parent / "invoice.parquet")]
    if verb == "report":
        args += ["-o", str(tmp_path / "report.html")]
    if verb == "evidence":
        key = tmp_path / "pack.key"
        made = subprocess.run(
            [sys.executable, "-m", "truecount", "keygen", "-o", str(key)],
            capture_output=True,
            env={"PATH": "/usr/bin:/bin"},
            check=False,
        )
        assert made.returncode == 0, made.stderr
        args += ["--key", str(key), "-o", str(tmp_path / "pack")]
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "ran out of memory" in done.stderr
    assert "TRUECOUNT_MEMORY_LIMIT" in done.stderr


@pytest.fixture(scope="module")
def two_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two files of 100,000 tickets (about 340,000 events each): enough for an ingest to spill."""
    out = tmp_path_factory.mktemp("spill")
    _bigdata().generate(out, 200_000, chunk=100_000, threads=1, memory_limit="256MB")
    return sorted(str(p) for p in out.glob("events-*.parquet"))


def _store(root: Path) -> tuple[int, int]:
    con = duckdb.connect(str(root / "truecount.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM ingest_log)"
        ).fetchall()[0]
    finally:
        con.close()
    return int(rows[0]), int(rows[1])


def test_a_full_temp_disk_is_one_line_and_corrupts_nothing(
    two_files: list[str], tmp_path: Path
) -> None:
    """An ingest that runs out of temporary space stops with exit 2 and one line naming
    TRUECOUNT_TEMP_DIRECTORY; the store keeps what it had, and the same ingest with room works.

    The second file is a CSV: a CSV is copied into a staging table before its checks, which is
    what spills (a Parquet file in entity order goes straight into the store)."""
    base = {"PATH": "/usr/bin:/bin", "TRUECOUNT_THREADS": "1"}
    second = tmp_path / "second.csv"
    duckdb.execute(
        "COPY (SELECT * FROM read_parquet($file)) TO '" + str(second).replace("'", "''") + "'",
        {"file": two_files[1]},
    )
    cli = [sys.executable, "-m", "truecount"]
    ws = tmp_path / "ws"
    run = subprocess.run
    assert run([*cli, "init", str(ws)], env=base, capture_output=True, check=False).returncode == 0
    first = run([*cli, "ingest", "-w", str(ws), two_files[0]], env=base, capture_output=True)
    assert first.returncode == 0, first.stderr
    before = _store(ws)
    tight = base | {
        "TRUECOUNT_MEMORY_LIMIT": "64MB",
        "TRUECOUNT_MAX_TEMP_SIZE": "1MB",
        "TRUECOUNT_TEMP_DIRECTORY": str(tmp_path / "spill"),
    }
    done = run(
        [*cli, "ingest", "-w", str(ws), str(second)],
        env=tight,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "temporary disk" in done.stderr
    assert "TRUECOUNT_TEMP_DIRECTORY" in done.stderr
    assert _store(ws) == before
    again = run([*cli, "ingest", "-w", str(ws), str(second)], env=base, capture_output=True)
    assert again.returncode == 0, again.stderr
    events = duckdb.sql(
        "SELECT count(*) FROM read_parquet($files)", params={"files": two_files}
    ).fetchall()[0][0]
    assert _store(ws) == (events, 2)


def test_a_bad_temp_cap_names_the_variable(events: list[str], tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TRUECOUNT_MAX_TEMP_SIZE": "plenty"}
    args = [sys.executable, "-m", "truecount", "count", str(DEFINITION), "-e", events[0]]
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 2, done.stderr
    assert "TRUECOUNT_MAX_TEMP_SIZE" in done.stderr
    assert "Traceback" not in done.stderr


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
