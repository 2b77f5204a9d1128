"""Parquet files loaded straight from their plan (no staged copy): the same rows stored, the
same rows quarantined under the same column, the same counts as the rules say.

Expected values come from the rules written out in Python over the rows as generated (first
failing check in column order, then the time range, then first-seen ids), never from what the
loader decided. Files in id order take the cheapest path; repeated, shuffled and already
stored ids take the others, so every branch is compared with the same expectation.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truecount.ingest import load_events_into

_ATTRS = ['{"a": 1}', "[1, 2]", "not json", '"text"', "null", "", "  ", None, '{"b": {"c": 2}}']


def _row(rng: random.Random, event_id: str | None) -> dict[str, Any]:
    """One event with, now and then, one or more problems."""
    ts: dt.datetime | None = dt.datetime(2026, 1, 1) + dt.timedelta(minutes=rng.randrange(10**5))
    if rng.random() < 0.04:
        ts = None
    elif rng.random() < 0.04:
        ts = rng.choice([dt.datetime(1960, 5, 1), dt.datetime(2250, 1, 1)])
    return {
        "event_id": event_id,
        "entity_id": rng.choice(
            ["t1", "t2", "t3", "", "  ", None] if rng.random() < 0.1 else ["t1", "t2"]
        ),
        "ts": ts,
        "type": rng.choice(["closed", "rated", ""] if rng.random() < 0.1 else ["closed"]),
        "actor": rng.choice(["ai", "human", None, ""]),
        "value": rng.choice([1.0, None, math.inf, math.nan] if rng.random() < 0.1 else [2.5]),
        "attrs": rng.choice(_ATTRS),
    }


def _problem(r: dict[str, Any]) -> str | None:
    """The column a row is quarantined under, by the documented order of checks."""
    if r["entity_id"] is None or not r["entity_id"].strip():
        return "entity_id"
    if r["ts"] is None:
        return "ts"
    if not r["type"].strip():
        return "type"
    if r["value"] is not None and not math.isfinite(r["value"]):
        return "value"
    attrs = r["attrs"]
    if attrs is not None and attrs.strip():
        try:
            is_object = isinstance(json.loads(attrs), dict)
        except ValueError:
            is_object = False
        if not is_object:
            return "attrs"
    if not dt.datetime(1970, 1, 1) <= r["ts"] < dt.datetime(2200, 1, 1):
        return "ts"
    return None


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    schema = pa.schema(
        [
            ("event_id", pa.string()),
            ("entity_id", pa.string()),
            ("ts", pa.timestamp("us")),
            ("type", pa.string()),
            ("actor", pa.string()),
            ("value", pa.float64()),
            ("attrs", pa.string()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _files(kind: str, seed: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    ids = [f"e{i:05d}" for i in range(300)]
    if kind == "in_order":
        return [[_row(rng, i) for i in ids[:150]], [_row(rng, i) for i in ids[150:]]]
    if kind == "repeats_in_order":  # a repeat right after its first: in order, not strictly
        rows = []
        for i in ids[:200]:
            rows.append(_row(rng, i))
            if rng.random() < 0.1:
                rows.append(_row(rng, i))
        return [rows]
    if kind == "shuffled":  # distinct but not in order, some ids derived from file and row
        rows = [_row(rng, None if rng.random() < 0.05 else i) for i in ids]
        rng.shuffle(rows)
        return [rows]
    # overlap: the second file repeats ids the first one stored
    return [[_row(rng, i) for i in ids[:200]], [_row(rng, i) for i in ids[150:]]]


@pytest.mark.parametrize("kind", ["in_order", "repeats_in_order", "shuffled", "overlap"])
@pytest.mark.parametrize("seed", [1, 2])
def test_parquet_loads_as_the_rules_say(tmp_path: Path, kind: str, seed: int) -> None:
    con = duckdb.connect()
    seen: set[str] = set()
    stored: dict[str, str] = {}
    for n, rows in enumerate(_files(kind, seed)):
        path = tmp_path / f"part{n}.parquet"
        _write(path, rows)
        want_bad: dict[int, str] = {}
        want_loaded = want_dup = want_no_actor = 0
        for number, r in enumerate(rows, start=1):
            column = _problem(r)
            if column is not None:
                want_bad[number] = column
                continue
            key = r["event_id"] or f"derived:{path.name}:{number}"
            if key in seen:
                want_dup += 1
                continue
            seen.add(key)
            stored[key] = r["entity_id"]
            want_loaded += 1
            want_no_actor += not r["actor"]
        f = load_events_into(con, [path]).files[0]
        assert f.rows_read == len(rows) == f.loaded + f.duplicate + f.quarantined
        assert (f.loaded, f.duplicate, f.quarantined) == (want_loaded, want_dup, len(want_bad))
        assert f.unknown_actor == want_no_actor
        got = dict(
            con.execute(
                "SELECT row_number, column_name FROM quarantine WHERE ingest_id = ?",
                [f.ingest_id],
            ).fetchall()
        )
        assert got == want_bad
    given = {k: v for k, v in stored.items() if not k.startswith("derived:")}
    got_events = dict(
        con.execute("SELECT event_id, entity_id FROM events WHERE source <> ''").fetchall()
    )
    assert {k: v for k, v in got_events.items() if k in given} == given
    assert len(got_events) == len(stored)


def test_out_of_range_and_bad_rows_keep_their_reasons(tmp_path: Path) -> None:
    """The quarantine says why, with the record as read for a failed check (none for a time
    outside the range, which is a reading of a good record)."""
    rows = [
        {"event_id": "a", "entity_id": "t1", "ts": dt.datetime(1960, 1, 1), "type": "closed"},
        {"event_id": "b", "entity_id": "", "ts": dt.datetime(2026, 1, 1), "type": "closed"},
        {"event_id": "c", "entity_id": "t2", "ts": dt.datetime(2026, 1, 2), "type": "closed"},
    ]
    path = tmp_path / "few.parquet"
    _write(path, [{**r, "actor": None, "value": None, "attrs": None} for r in rows])
    con = duckdb.connect()
    report = load_events_into(con, [path])
    assert (report.loaded, report.quarantined) == (1, 2)
    got = con.execute(
        "SELECT row_number, column_name, reason, raw IS NULL FROM quarantine ORDER BY 1"
    ).fetchall()
    assert got[0][:2] == (1, "ts") and got[0][2].startswith("ts 1960-01-01 00:00:00 is outside")
    assert got[0][3] is True
    assert got[1] == (2, "entity_id", "missing required value for entity_id", False)


@pytest.mark.parametrize("name", ["with source.csv", "100% done.parquet"])
def test_missing_source_is_file_and_row(tmp_path: Path, name: str) -> None:
    """A source column with gaps: each gap is "<file name>:<row>", whatever the name holds."""
    frame = pd.DataFrame(
        {
            "event_id": ["a", "b", "c"],
            "entity_id": ["t1", "t1", "t2"],
            "ts": ["2026-01-01 00:00:00", "2026-01-02 00:00:00", "2026-01-03 00:00:00"],
            "type": ["closed"] * 3,
            "source": ["crm", None, None],
        }
    )
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.assign(ts=pd.to_datetime(frame["ts"])).to_parquet(path)
    con = duckdb.connect()
    load_events_into(con, [path])
    got = con.execute("SELECT source FROM events ORDER BY event_id").fetchall()
    assert [g[0] for g in got] == ["crm", f"{name}:2", f"{name}:3"]
