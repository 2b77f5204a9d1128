"""Invoice lines listed more than once, verbatim: found when the invoice is loaded and
counted once (:mod:`truecount.billing.invoice`).

A vendor's export sometimes lists the same line twice (a page fetched twice, two files that
overlap). Such a line bills once; a second line for the same entity under another id is a
second billing and lands in the ``duplicate`` cell instead. The search is cheap in the usual
case: an invoice numbered in order proves its ids distinct in one streaming pass.
"""

from __future__ import annotations

from typing import Any, Final

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from truecount.db import one_row as _one

#: Rows per Arrow batch of the line ids :func:`ids_in_order` reads.
_ID_BATCH: Final[int] = 1 << 17


def ids_in_order(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether every line id is plain (present, not empty, no space around it) and sorts
    strictly after the one before it, as DuckDB streams them.

    Then no two lines share an id, and no line can repeat another: an invoice numbered in
    order (the usual case) needs no grouping or window over every line. The proof holds in
    any order the lines are streamed in (a stream out of order only fails it, and the
    repeats are then searched for). Plain ids are the trimmed ones (those repeats are judged
    by), so the order of the ids as written is theirs; text compares byte by byte in DuckDB
    and in Arrow alike.

    DuckDB scans the ids on every thread and hands them over in their order as Arrow
    batches, which Arrow's kernels compare with the batch shifted by one: half the wall
    time of a ``lag`` window, which streams on one thread. The ids are decoded once for both
    tests.
    """
    reader = con.sql("SELECT line_id FROM _tc_invoice_rows").to_arrow_reader(_ID_BATCH)
    try:
        last: pa.Scalar[Any] | None = None
        for batch in reader:
            ids = batch.column(0)
            n = len(ids)
            if n == 0:
                continue
            if ids.null_count or not _plain(ids):
                return False
            if last is not None and not pc.greater(ids[0], last).as_py():
                return False
            if n > 1 and not pc.all(pc.greater(ids.slice(1), ids.slice(0, n - 1))).as_py():
                return False
            last = ids[n - 1]
        return True
    finally:
        reader.close()


def _plain(ids: pa.Array) -> bool:
    """No id of the batch (without nulls) is empty, or starts or ends with a space (the one
    character ``trim`` removes).

    On Arrow's own layout (text bytes and the offsets where each id starts) these are three
    comparisons of NumPy arrays: the first and last byte of every id, and its length; the
    text kernels would look at every id three times over. A space is one byte in UTF-8 and
    no byte of another character, so the first and last bytes tell."""
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        ids = ids.cast(pa.large_string())  # the view layout keeps no offsets to read
    width = np.int64 if pa.types.is_large_string(ids.type) else np.int32
    _, offsets_buffer, data_buffer = ids.buffers()
    if offsets_buffer is None or data_buffer is None:
        return False
    window = slice(ids.offset, ids.offset + len(ids) + 1)
    offsets: npt.NDArray[np.int64] = np.frombuffer(offsets_buffer, dtype=width)[window].astype(
        np.int64
    )
    starts, ends = offsets[:-1], offsets[1:]
    if bool((ends <= starts).any()):
        return False
    data: npt.NDArray[np.uint8] = np.frombuffer(data_buffer, dtype=np.uint8)
    return not bool((data[starts] == 0x20).any() or (data[ends - 1] == 0x20).any())


#: The lines of the invoice just loaded that are second or later copies of a line repeated
#: verbatim (same line_id, entity, billed_at, period, amount and currency, as written).
REPEATS: Final[str] = "_tc_invoice_repeats"

#: The verbatim key of a line, as written: two lines are one line listed twice when these are
#: equal (NULLs equal, as a window partition groups them) and the line_id is not empty.
_VERBATIM: Final[str] = (
    "trim(line_id), entity_id, billed_at, billed_at_native, period, amount, amount_native, currency"
)


def repeats_table(con: duckdb.DuckDBPyConnection, distinct_ids: bool) -> None:
    """Write the line numbers of the verbatim repeats to :data:`REPEATS`.

    With ids proven distinct (:func:`ids_in_order`) the table is empty at no cost. Otherwise
    only lines whose id shares a 64-bit hash with another line can repeat one: a hash grouping
    (cheaper than ordering every line by its whole key) finds those few, and the window that
    numbers the copies runs on them alone. A hash collision only adds a candidate, never drops
    a line: the window still compares the whole key.
    """
    if distinct_ids:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {REPEATS} (line_no BIGINT)")
        return
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {REPEATS} AS "  # noqa: S608 - fixed text
        "WITH shared AS (SELECT hash(trim(line_id)) AS h FROM _tc_invoice_rows "
        "WHERE nullif(trim(line_id), '') IS NOT NULL GROUP BY h HAVING count(*) > 1) "
        "SELECT CAST(line_no AS BIGINT) AS line_no FROM _tc_invoice_rows "
        "WHERE nullif(trim(line_id), '') IS NOT NULL "
        "AND hash(trim(line_id)) IN (SELECT h FROM shared) "
        f"QUALIFY row_number() OVER (PARTITION BY {_VERBATIM} ORDER BY line_no) > 1"
    )


def repeated_lines(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Lines of the invoice just loaded that repeat an earlier one verbatim: those with a
    line_id (counted once) and those without (kept: nothing tells them from a rebilling)."""
    # those with an id were found at load time; the window numbers the lines without one only
    row = _one(
        con,
        f"SELECT (SELECT count(*) FROM {REPEATS}), count(*) FILTER (WHERE _n > 1) FROM "  # noqa: S608
        f"(SELECT row_number() OVER (PARTITION BY {_VERBATIM} ORDER BY line_no) AS _n "
        "FROM _tc_invoice_rows WHERE nullif(trim(line_id), '') IS NULL)",
    )
    return (int(row[0]), int(row[1])) if row else (0, 0)


def repeats_warnings(counted_once: int, kept: int) -> list[str]:
    """The words for verbatim repeats (:func:`repeated_lines`), the same in every output."""
    out: list[str] = []
    if counted_once:
        out.append(
            f"{counted_once} invoice line{'s repeat' if counted_once != 1 else ' repeats'} an "
            "earlier line verbatim (same line_id, entity, billed_at, amount): counted once"
        )
    if kept:
        out.append(
            f"{kept} invoice line{'s' if kept != 1 else ''} without a line_id "
            f"repeat{'' if kept != 1 else 's'} an earlier line verbatim: kept as billed, "
            "their entities are in the duplicate cell"
        )
    return out
