"""The proof that an invoice's line ids are distinct (billing/repeats.py), and the fact that
every line names its period (billing/invoice.py), each against a plain-Python reading of the
same lines."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truecount.billing import repeats
from truecount.billing.invoice import load_invoice_into, periods_complete
from truecount.billing.reconcile import reconcile_in

# ids drawn to hit the edges: spaces at either end, inside, alone; empty; non-ASCII
_ID_TEXT = st.text(alphabet=st.sampled_from([" ", "a", "b", "Z", "0", "é", "\t", "😀"]), max_size=5)


def _plain_by_python(ids: list[str]) -> bool:
    return all(i != "" and not i.startswith(" ") and not i.endswith(" ") for i in ids)


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(_ID_TEXT, min_size=1, max_size=12),
    cut=st.integers(0, 3),
    kind=st.sampled_from([pa.string(), pa.large_string(), pa.string_view()]),
)
def test_plain_reads_arrow_buffers_as_python_reads_the_texts(
    ids: list[str], cut: int, kind: pa.DataType
) -> None:
    """The byte-level test of plainness equals Python's, on offset slices and on every string
    layout Arrow has (the view layout is first cast to one with offsets)."""
    array = pa.array(["pad"] * cut + ids, type=kind).slice(cut)
    assert repeats._plain(array) == _plain_by_python(ids)


def _invoice_csv(path: Path, line_ids: list[str], periods: list[str] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)  # quoted: spaces around an id stay
        w.writerow(["line_id", "entity_id", "billed_at", "period", "amount"])
        for n, line in enumerate(line_ids):
            period = periods[n] if periods is not None else "2026-01"
            w.writerow([line, f"T{n}", "2026-01-05", period, "1.00"])
    return path


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.sampled_from(["A", "B", "C", "D", " E", "F ", ""]), min_size=1, max_size=9),
    batch=st.integers(1, 4),
)
def test_ids_in_order_across_batch_edges(
    tmp_path_factory: pytest.TempPathFactory, ids: list[str], batch: int
) -> None:
    """Strictly increasing plain ids are proven in order; any tie, step back, empty or padded
    id fails the proof, wherever it falls against the edges of the Arrow batches."""
    path = _invoice_csv(tmp_path_factory.mktemp("inv") / "inv.csv", ids)
    expected = _plain_by_python(ids) and all(a < b for a, b in itertools.pairwise(ids))
    con = duckdb.connect()
    load_invoice_into(con, [path], table="invoice")
    old = repeats._ID_BATCH
    repeats._ID_BATCH = batch
    try:
        assert repeats.ids_in_order(con) == expected
        # the connection is free again, whether the proof ran to its end or stopped early
        assert con.execute("SELECT count(*) FROM invoice").fetchone() == (len(ids),)
    finally:
        repeats._ID_BATCH = old


@pytest.mark.parametrize(
    ("periods", "complete"),
    [
        (["2026-01", "2026-02"], True),
        (["2026-01", ""], False),
        (["2026-01", "   "], False),
    ],
)
@pytest.mark.parametrize("form", ["csv", "parquet"])
def test_the_invoice_view_says_when_every_line_names_its_period(
    tmp_path: Path, periods: list[str], complete: bool, form: str
) -> None:
    """The fact is set by the load (from the Parquet footer or the check scan), rides on the
    view, and is gone once the view is replaced by anything else."""
    path = _invoice_csv(tmp_path / "inv.csv", ["L1", "L2"], periods)
    if form == "parquet":
        table = pacsv.read_csv(path)
        path = tmp_path / "inv.parquet"
        pq.write_table(table.cast(pa.schema([(f.name, pa.string()) for f in table.schema])), path)
    con = duckdb.connect()
    load_invoice_into(con, [path], table="invoice")
    assert periods_complete(con, "invoice") is complete
    # the same lines, one period blanked, under the same name: nothing is proven of them
    con.execute("CREATE TEMP TABLE other AS SELECT * REPLACE (NULL AS period) FROM invoice")
    con.execute("CREATE OR REPLACE TEMP VIEW invoice AS SELECT * FROM other")
    assert periods_complete(con, "invoice") is False


def test_the_last_billed_period_of_a_spread_entity_bounds_the_buyer_only_cell(
    tmp_path: Path,
) -> None:
    """The invoice's span ends at the last period any line bills, even when only a second
    line of an entity billed twice reaches it: a counted entity of that period is buyer_only,
    one after it is out of scope. With and without a cell table, with the period column
    proven complete or not (an undated line bills by its billed_at)."""
    rows = [
        # line, entity, billed_at, period
        ("L1", "T1", "2026-01-05", "2026-01"),
        ("L2", "T2", "2026-01-06", "2026-01"),
        ("L3", "T2", "2026-03-02", "2026-03"),  # T2's second line: the span reaches March
    ]
    verdict_rows = [
        ("T1", "counted", "2026-01"),
        ("T2", "counted", "2026-01"),
        ("T3", "counted", "2026-03"),  # unbilled, inside the span: buyer_only
        ("T4", "counted", "2026-04"),  # unbilled, after the span: no cell
    ]
    for undated in (False, True):
        path = tmp_path / f"inv{undated}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["line_id", "entity_id", "billed_at", "period", "amount"])
            for n, (line, ent, billed_at, period) in enumerate(rows):
                w.writerow([line, ent, billed_at, "" if undated and n == 2 else period, "1"])
        for cells in (False, True):
            con = duckdb.connect()
            columns = zip(*verdict_rows, strict=True)
            con.register(
                "_v", pa.table(dict(zip(["entity_id", "status", "period"], columns, strict=True)))
            )
            con.execute("CREATE TABLE verdicts AS SELECT * FROM _v")
            load_invoice_into(con, [path], table="invoice")
            assert periods_complete(con, "invoice") is not undated
            rec = reconcile_in(con, "verdicts", "invoice", cells=cells, fetch_entities=cells)
            by_period = {p.period: p for p in rec.periods}
            assert by_period["2026-03"].buyer_only == 1, (undated, cells)
            assert sum(p.buyer_only for p in rec.periods) == 1
            assert rec.totals.duplicate == 1 and rec.totals.agreed == 1
