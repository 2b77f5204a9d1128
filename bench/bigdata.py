#!/usr/bin/env python
"""Canonical events at any size, written in chunks, with a truth known from the parameters.

Why this exists: the demo generator (``truecount.demo``) draws realistic tickets in Python and
needs about a minute per ten million events; a billion events would take hours. The out-of-core
measurements need volume, not realism, so here every ticket's story is a fixed arithmetic
function of its number ``i``: DuckDB evaluates it over ``range()`` and writes Parquet straight
from the query, one chunk of tickets per file, so memory stays bounded whatever the size.

Because each ticket's story is a function of ``i``, the count the "resolved ticket" definition
(``bench/resolved_ticket.yaml``) must give is known without reading the files: ``truth()``
evaluates the same functions over ``range()`` and applies the definition's rule in plain SQL,
with no join, no window and no event table. A count that disagrees with it is wrong.

Ticket ``i`` (all "draws" below are ``_draw(i, k)``, a number in 0..999):

- ``created`` by the customer at ``START + (i * 7919 mod 90 days)`` seconds;
- ``closed`` 10 to 59 minutes later, by ``ai`` when draw 1 < 900, else by ``human``;
- ``reopened`` by the customer when draw 3 < 100, ``(draw 4 mod 20)`` days and one hour after the
  close (inside the definition's 14 days when that is at most 13);
- ``rated`` when draw 5 < 910, value ``1 + draw 6 mod 5``, ``(draw 7 mod 10)`` days and a minute
  after the close (inside the 7 days when that is at most 6);
- a ``message`` by the ai when draw 8 < 400, five minutes after creation.

About 3.41 events per ticket: 29.3 million tickets give 100 million events.

The vendor's invoice (``invoice.parquet``) bills every ticket the ai closed and the customer
never reopened, so the reconciliation's cells are known from the parameters too
(``reconcile_truth``).

Usage::

    .venv/bin/python bench/bigdata.py --events 100000000 --out bench/data/big-100M
    .venv/bin/python bench/bigdata.py --add-invoice --out bench/data/big-100M
    .venv/bin/python bench/bigdata.py --events 1000000000 --out bench/data/big-1B \\
        --link-from bench/data/big-300M --no-invoice
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

START = dt.datetime(2026, 1, 1)
SPAN_SECONDS = 90 * 86400
EVENTS_PER_TICKET = 1 + 1 + 0.1 + 0.91 + 0.4
#: Multipliers of the draws: large odd numbers, so consecutive tickets get unrelated draws.
_MULTIPLIERS = (0, 2654435761, 2246822519, 3266489917, 668265263, 374761393, 1103515245, 69069,
                2891336453)  # fmt: skip
GENERATOR_VERSION = 1


def _draw(k: int) -> str:
    """Draw ``k`` of ticket ``i`` as DuckDB SQL: a multiplicative hash taken to 0..999.

    Fixed text built from integer constants only (no outside input reaches it).
    """
    mult = _MULTIPLIERS[k]
    return f"((((i + {k * 7}) * {mult}) % 4294967291) // 1000 % 1000)"


def _tickets_sql(lo: int, hi: int) -> str:
    """One row per ticket in [lo, hi) with every draw and time the events need."""
    start = START.isoformat(sep=" ")
    return f"""
        SELECT
            i,
            'T' || lpad(CAST(i AS VARCHAR), 10, '0') AS entity_id,
            TIMESTAMP '{start}' + to_seconds((i * 7919) % {SPAN_SECONDS}) AS created,
            TIMESTAMP '{start}' + to_seconds((i * 7919) % {SPAN_SECONDS}
                + 600 + ({_draw(2)} % 50) * 60) AS closed,
            CASE WHEN {_draw(1)} < 900 THEN 'ai' ELSE 'human' END AS closer,
            {_draw(3)} < 100 AS reopened,
            ({_draw(4)} % 20) AS reopen_days,
            {_draw(5)} < 910 AS rated,
            CAST(1 + {_draw(6)} % 5 AS DOUBLE) AS rating,
            ({_draw(7)} % 10) AS rating_days,
            {_draw(8)} < 400 AS messaged
        FROM range({lo}, {hi}) AS r(i)
    """


def _events_sql(lo: int, hi: int) -> str:
    """The canonical events of tickets [lo, hi): one SELECT per kind of event, unioned."""
    cols = "event_id, entity_id, ts, type, actor, value, attrs, source, recorded_at, seq"

    def kind(seq: int, type_: str, actor: str, ts: str, value: str, where: str) -> str:
        return f"""
            SELECT entity_id || '-{seq}' AS event_id, entity_id, {ts} AS ts, '{type_}' AS type,
                   {actor} AS actor, {value} AS value, CAST(NULL AS VARCHAR) AS attrs,
                   'bench-bigdata' AS source, {ts} AS recorded_at, CAST({seq} AS BIGINT) AS seq
            FROM t WHERE {where}"""

    parts = [
        kind(1, "created", "'customer'", "created", "CAST(NULL AS DOUBLE)", "true"),
        kind(2, "message", "'ai'", "created + INTERVAL 5 MINUTE", "CAST(NULL AS DOUBLE)",
             "messaged"),
        kind(3, "closed", "closer", "closed", "CAST(NULL AS DOUBLE)", "true"),
        kind(4, "reopened", "'customer'",
             "closed + to_days(CAST(reopen_days AS INTEGER)) + INTERVAL 1 HOUR",
             "CAST(NULL AS DOUBLE)", "reopened"),
        kind(5, "rated", "'customer'",
             "closed + to_days(CAST(rating_days AS INTEGER)) + INTERVAL 1 MINUTE", "rating",
             "rated"),
    ]  # fmt: skip
    return (
        f"WITH t AS ({_tickets_sql(lo, hi)}) SELECT {cols} FROM (" + " UNION ALL ".join(parts) + ")"
    )


def _invoice_sql(tickets: int) -> str:
    """The vendor's invoice: one line per ticket the ai closed and the customer never reopened
    (the vendor ignores ratings and the 14-day window), billed at the close, 1.00 USD each."""
    return f"""
        SELECT 'L' || entity_id AS line_id, entity_id, closed AS billed_at,
               strftime(closed, '%Y-%m') AS period, '1.00' AS amount, 'USD' AS currency
        FROM ({_tickets_sql(0, tickets)}) WHERE closer = 'ai' AND NOT reopened
    """


def write_invoice(out: Path, tickets: int, con: duckdb.DuckDBPyConnection) -> int:
    """Write ``invoice.parquet`` in one streaming COPY (no ordering kept: bounded memory)."""
    target = exp.Literal.string(str(out / "invoice.parquet")).sql("duckdb")
    got = con.execute(
        f"COPY ({_invoice_sql(tickets)}) TO {target} "
        "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)"
    ).fetchall()
    return int(got[0][0]) if got else 0


def reconcile_truth(
    tickets: int, as_of: dt.datetime, con: duckdb.DuckDBPyConnection
) -> dict[str, dict[str, int]]:
    """The reconciliation's cells per period, from the parameters: billed (ai close, never
    reopened) against the definition's status. Every billed ticket has a verdict and one line
    in the month of its close, so only agreed, vendor_only, pending and buyer_only occur."""
    cutoff = as_of.isoformat(sep=" ")
    sql = f"""
        WITH t AS ({_tickets_sql(0, tickets)}),
        c AS (
            SELECT strftime(closed, '%Y-%m') AS period, NOT reopened AS billed,
                   CASE
                     WHEN closed + INTERVAL 14 DAY > TIMESTAMP '{cutoff}' THEN 'pending'
                     WHEN NOT (reopened AND reopen_days <= 13)
                          AND rated AND rating >= 4 AND rating_days <= 6 THEN 'counted'
                     ELSE 'not_counted'
                   END AS status
            FROM t WHERE closer = 'ai'
        )
        SELECT period,
               count_if(billed AND status = 'counted'),
               count_if(billed AND status = 'not_counted'),
               count_if(billed AND status = 'pending'),
               count_if(NOT billed AND status = 'counted')
        FROM c GROUP BY period ORDER BY period
    """
    return {
        str(p): {"agreed": int(a), "vendor_only": int(v), "pending": int(q), "buyer_only": int(b)}
        for p, a, v, q, b in con.execute(sql).fetchall()
    }


def truth(tickets: int, as_of: dt.datetime, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Per month of the close: candidates, counted, not_counted, pending, from the parameters.

    The definition's rule written out per ticket: a candidate is a ticket closed by the ai;
    it is pending while its 14-day reopen window is still open at ``as_of``; it counts when it
    was not reopened within 14 days and was rated 4 or 5 within 7 days.
    """
    cutoff = as_of.isoformat(sep=" ")
    sql = f"""
        WITH t AS ({_tickets_sql(0, tickets)}),
        c AS (
            SELECT strftime(closed, '%Y-%m') AS period,
                   CASE
                     WHEN closed + INTERVAL 14 DAY > TIMESTAMP '{cutoff}' THEN 'pending'
                     WHEN NOT (reopened AND reopen_days <= 13)
                          AND rated AND rating >= 4 AND rating_days <= 6 THEN 'counted'
                     ELSE 'not_counted'
                   END AS status
            FROM t WHERE closer = 'ai'
        )
        SELECT period, count(*), count_if(status = 'counted'), count_if(status = 'not_counted'),
               count_if(status = 'pending')
        FROM c GROUP BY period ORDER BY period
    """
    rows = con.execute(sql).fetchall()
    return {
        str(p): {"candidates": int(a), "counted": int(b), "not_counted": int(n), "pending": int(q)}
        for p, a, b, n, q in rows
    }


def max_ts(tickets: int, con: duckdb.DuckDBPyConnection) -> dt.datetime:
    """The latest event time of the data set, from the parameters (the count's default as-of)."""
    ts_list = [
        "closed + to_days(CAST(reopen_days AS INTEGER)) + INTERVAL 1 HOUR",
        "closed + to_days(CAST(rating_days AS INTEGER)) + INTERVAL 1 MINUTE",
        "closed",
    ]
    guards = ["reopened", "rated", "true"]
    cols = ", ".join(
        f"max(CASE WHEN {g} THEN {ts} END)" for g, ts in zip(guards, ts_list, strict=True)
    )
    row = con.execute(f"WITH t AS ({_tickets_sql(0, tickets)}) SELECT {cols} FROM t").fetchall()
    value = max(v for v in row[0] if v is not None)
    assert isinstance(value, dt.datetime)
    return value


def _linkable(source: Path | None, name: str, chunk: int, hi: int) -> Path | None:
    """The same chunk in another data set, when that set is finished and holds it whole.

    Ticket ``i``'s events depend on ``i`` alone, so chunk ``n`` of one chunk size is the same
    file in every data set that has all its tickets: a larger set links the smaller set's
    files instead of writing them again (a billion events reuse the 300 million set's chunks).
    """
    if source is None or not (source / "manifest.json").exists():
        return None
    theirs = json.loads((source / "manifest.json").read_text())
    if theirs.get("chunk_tickets", 10_000_000) != chunk or int(theirs["tickets"]) < hi:
        return None
    if theirs.get("generator_version") != GENERATOR_VERSION or name not in theirs["files"]:
        return None
    return source / name


def generate(
    out: Path,
    tickets: int,
    chunk: int,
    threads: int,
    memory_limit: str,
    link_from: Path | None = None,
    invoice: bool = True,
    resume: bool = False,
    ascending: bool = False,
) -> None:
    """Write ``events-NNNNN.parquet`` files of ``chunk`` tickets each, then ``manifest.json``.

    Chunks that ``link_from`` (a finished data set of the same chunk size) holds whole are
    hard-linked from it, after the others are written, so that set may still be running.
    ``invoice=False`` skips the invoice and its reconciliation truth (count-only runs).
    ``resume`` keeps the chunk files already there, so that a second process started with
    ``ascending`` (lowest chunk first, against the first one's highest first) halves the time.
    """
    out.mkdir(parents=True, exist_ok=True)
    con = _connect(threads, memory_limit)
    started = time.perf_counter()
    rows = 0
    chunks = [(n, lo, min(tickets, lo + chunk)) for n, lo in enumerate(range(0, tickets, chunk))]
    if link_from is not None and not ascending:
        # Highest first, so the chunks the other set may still be writing come last.
        chunks.reverse()
    elif link_from is not None:
        # Lowest first, but the chunks the other set has files for last.
        chunks.sort(key=lambda c: (link_from / f"events-{c[0]:05d}.parquet").exists())
    for n, lo, hi in chunks:
        name = f"events-{n:05d}.parquet"
        final = out / name
        # Written under a private name and renamed when whole: a file with the final name is
        # always complete, so a second process (``--resume``) can share the work safely.
        partial = out / f".{name}.{os.getpid()}.tmp"
        linked = _linkable(link_from, name, chunk, hi)
        kept = resume and final.exists()
        if kept:
            source = final
        elif linked is not None:
            partial.unlink(missing_ok=True)
            partial.hardlink_to(linked)
            source = linked
        else:
            target = exp.Literal.string(str(partial)).sql("duckdb")
            con.execute(
                f"COPY ({_events_sql(lo, hi)}) TO {target} "
                "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)"
            ).fetchall()
            source = partial
        got = con.execute(
            "SELECT sum(num_rows) FROM parquet_file_metadata(?)", [str(source)]
        ).fetchall()
        if not kept:
            os.replace(partial, final)
        rows += int(got[0][0]) if got else 0
        how = " (kept)" if kept else " (linked)" if linked else ""
        print(
            f"{name}: tickets {lo:,}..{hi:,}{how}, "
            f"{rows:,} events so far, {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    files = [f"events-{n:05d}.parquet" for n, _, _ in sorted(chunks)]
    latest = max_ts(tickets, con)
    manifest: dict[str, Any] = {
        "generator": "bench/bigdata.py",
        "generator_version": GENERATOR_VERSION,
        "tickets": tickets,
        "chunk_tickets": chunk,
        "events": rows,
        "files": files,
        "max_ts": latest.isoformat(),
        "truth": truth(tickets, latest, con),
    }
    if invoice:
        manifest["invoice"] = "invoice.parquet"
        manifest["invoice_lines"] = write_invoice(out, tickets, con)
        manifest["reconcile_truth"] = reconcile_truth(tickets, latest, con)
    manifest["generate_seconds"] = round(time.perf_counter() - started, 1)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def add_invoice(out: Path, threads: int, memory_limit: str) -> None:
    """Give a data set generated before the invoice existed its invoice and cell truth."""
    manifest = json.loads((out / "manifest.json").read_text())
    con = _connect(threads, memory_limit)
    latest = dt.datetime.fromisoformat(manifest["max_ts"])
    manifest["invoice"] = "invoice.parquet"
    manifest["invoice_lines"] = write_invoice(out, int(manifest["tickets"]), con)
    manifest["reconcile_truth"] = reconcile_truth(int(manifest["tickets"]), latest, con)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _connect(threads: int, memory_limit: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET memory_limit = {exp.Literal.string(memory_limit).sql('duckdb')}")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    return con


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=int, help="about this many events")
    parser.add_argument("--tickets", type=int, help="exactly this many tickets")
    parser.add_argument("--chunk-tickets", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument(
        "--add-invoice", action="store_true", help="only add the invoice to an existing --out"
    )
    parser.add_argument(
        "--link-from", type=Path, help="a finished smaller set whose whole chunks to hard-link"
    )
    parser.add_argument("--no-invoice", action="store_true", help="count-only data set")
    parser.add_argument("--resume", action="store_true", help="keep the chunk files already there")
    parser.add_argument(
        "--ascending", action="store_true", help="lowest chunk first (a second --resume process)"
    )
    args = parser.parse_args()
    if args.add_invoice:
        add_invoice(args.out, args.threads, args.memory_limit)
        print((args.out / "manifest.json").read_text())
        return 0
    tickets = args.tickets or round((args.events or 1_000_000) / EVENTS_PER_TICKET)
    generate(
        args.out,
        tickets,
        args.chunk_tickets,
        args.threads,
        args.memory_limit,
        link_from=args.link_from,
        invoice=not args.no_invoice,
        resume=args.resume,
        ascending=args.ascending,
    )
    print((args.out / "manifest.json").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
