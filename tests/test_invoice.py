"""Invoice loading: shapes, duplicates kept, and bad input named by file, row and column."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truecount.billing.invoice import load_invoice, load_invoice_mapping
from truecount.errors import InputError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_jsonl_parquet_and_duplicates_kept(tmp_path: Path) -> None:
    csv = write(
        tmp_path / "a.csv",
        "line_id,entity_id,billed_at,amount,currency\n"
        "L1,T1,2026-01-05,0.99,USD\nL2,T1,2026-01-06T10:00:00Z,0.99,usd\n"
        "L3,T2,2026-02-01 00:30:00+02:00,0.99,USD\n",
    )
    t = load_invoice(csv)
    assert t.column("entity_id").to_pylist() == ["T1", "T1", "T2"]  # never collapsed
    assert str(t.column("billed_at")[2].as_py()) == "2026-01-31 22:30:00"  # to UTC
    assert t.column("currency").to_pylist() == ["USD"] * 3
    assert t.column("amount")[0].as_py() == Decimal("0.99")
    jl = write(
        tmp_path / "b.jsonl",
        "\n".join(json.dumps(r) for r in [{"entity_id": "T9", "amount": 1.5, "period": "2026-01"}])
        + "\n",
    )
    assert load_invoice(jl).column("period").to_pylist() == ["2026-01"]
    pq.write_table(pa.table({"entity_id": ["X"], "amount": [2.0]}), tmp_path / "c.parquet")
    t = load_invoice([tmp_path / "c.parquet", csv])
    assert t.num_rows == 4 and t.column("line_id")[0].as_py().endswith("c.parquet#1")


def test_bad_amounts_currencies_and_ids(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.csv", "entity_id,amount,currency\nT1,abc,USD\nT2,-1,USD\n,1,EUR\n")
    with pytest.raises(InputError) as err:
        load_invoice(bad)
    text = str(err.value)
    assert f"{bad}, row 1, column 'amount': amount 'abc' is not a number" in text
    assert f"{bad}, row 2, column 'amount': negative amount -1" in text
    assert f"{bad}, row 3, column 'entity_id': empty entity_id" in text
    assert "mixed currencies: USD (2 lines), EUR (1 lines)" in text


def test_empty_invoice_and_missing_column(tmp_path: Path) -> None:
    empty = write(tmp_path / "e.csv", "entity_id,amount\n")
    with pytest.raises(InputError, match="the invoice is empty") as info:
        load_invoice(empty)
    assert str(info.value).startswith(f"{empty}: the invoice is empty")  # the file, not <input>
    with pytest.raises(InputError, match=r"no entity_id column.*ticket_id"):
        load_invoice(write(tmp_path / "m.csv", "ticket_id,amount\nT1,1\n"))


def test_bad_timestamp(tmp_path: Path) -> None:
    f = write(tmp_path / "t.csv", "entity_id,billed_at\nT1,31/01/2026\n")
    with pytest.raises(InputError, match="row 1, column 'billed_at'"):
        load_invoice(f)


def test_mapping_renames_and_normalises_explicitly(tmp_path: Path) -> None:
    f = write(tmp_path / "v.csv", "ticket,price,when\n tkt-7 ,1.00,31/01/2026\n")
    m = write(
        tmp_path / "m.yaml",
        "invoice: 1\ncolumns: {entity_id: ticket, amount: price, "
        "billed_at: when}\nentity_id: {trim: true, case: upper, strip_prefix: tkt-, "
        "add_prefix: T}\nbilled_at_format: '%d/%m/%Y'\ncurrency: eur\n",
    )
    t = load_invoice(f, load_invoice_mapping(m))
    assert t.column("entity_id").to_pylist() == ["T7"]
    assert t.column("currency").to_pylist() == ["EUR"]
    assert str(t.column("billed_at")[0].as_py()) == "2026-01-31 00:00:00"


def test_mapping_errors(tmp_path: Path) -> None:
    m = write(tmp_path / "m.yaml", "columns: {entity: ticket}\nentity_id: {trimm: true}\n")
    with pytest.raises(Exception, match="unknown invoice field 'entity'") as err:
        load_invoice_mapping(m)
    assert "trim" in str(err.value)


def test_mapping_with_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    from truecount.billing.invoice import load_invoice_mapping
    from truecount.errors import MappingError

    bad = tmp_path / "m.yaml"
    bad.write_text("invoice: 1\ntimezone: Mars/Base\n", encoding="utf-8")
    with pytest.raises(MappingError, match="unknown time zone 'Mars/Base'"):
        load_invoice_mapping(bad)


def test_typed_parquet_invoice_matches_the_same_invoice_as_text(tmp_path: Path) -> None:
    """A Parquet invoice with real timestamp and decimal columns loads like its CSV twin."""
    import pandas as pd

    from truecount.billing.invoice import load_invoice

    frame = pd.DataFrame(
        {
            "line_id": ["L1", "L2"],
            "entity_id": ["T1", "T2"],
            "billed_at": pd.to_datetime(["2026-01-31 23:30:00", "2026-02-01 00:10:00"]),
            "amount": [0.99, 1.5],
        }
    )
    frame.to_parquet(tmp_path / "inv.parquet")
    frame.assign(billed_at=frame["billed_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(
        tmp_path / "inv.csv", index=False
    )
    typed = load_invoice(tmp_path / "inv.parquet").to_pandas()
    text = load_invoice(tmp_path / "inv.csv").to_pandas()
    cols = ["line_id", "entity_id", "billed_at", "amount"]
    pd.testing.assert_frame_equal(typed[cols], text[cols])


def _repeats_by_pandas(frame: Any) -> tuple[list[int], int, int]:
    """Rows kept (1-based), repeats with an id dropped, repeats without an id kept: the rule
    of docs/reconcile.md computed in pandas over the text as written."""
    key = ["_id", "entity_id", "billed_at", "period", "amount", "currency"]
    f = frame.assign(_id=frame["line_id"].str.strip(), _row=range(1, len(frame) + 1))
    has_id = f["_id"] != ""
    later = f.duplicated(subset=key, keep="first")
    kept = f[~(has_id & later)]["_row"].tolist()
    return kept, int((has_id & later).sum()), int((~has_id & later).sum())


@pytest.mark.parametrize("order", ["sorted", "sorted_with_repeats", "shuffled"])
def test_verbatim_repeats_match_pandas_in_any_line_order(tmp_path: Path, order: str) -> None:
    """Ids in strict order (proven distinct in one pass), in order with repeats, or shuffled
    with padded and missing ids (found by hashing): the same lines are kept and the same
    repeats counted as pandas finds them."""
    import random

    import duckdb
    import pandas as pd

    from truecount.billing.invoice import load_invoice_into
    from truecount.billing.repeats import repeated_lines

    rng = random.Random(15)
    rows = []
    for i in range(400):
        line = f"L{i:04d}"
        ent = f"T{rng.randrange(60)}"
        rows.append([line, ent, "2026-01-05", "2026-01", "1.00", "USD"])
        if order != "sorted" and rng.random() < 0.25:
            copy = list(rows[-1])
            pick = rng.randrange(4 if order == "shuffled" else 2)
            if pick == 0:
                # the same id (padded, once trimmed, when shuffled): a verbatim repeat
                copy[0] = f" {line} " if order == "shuffled" else line
            elif pick == 1:
                copy[4] = "2.00"  # same id, another amount: a second line, kept
            elif pick == 2:
                copy[0] = ""  # no id: nothing tells a repeat from a rebilling, kept
                rows.append(list(copy))
            rows.append(copy)
    if order == "shuffled":
        rng.shuffle(rows)
    frame = pd.DataFrame(
        rows, columns=["line_id", "entity_id", "billed_at", "period", "amount", "currency"]
    )
    path = tmp_path / "inv.csv"
    frame.to_csv(path, index=False, quoting=csv.QUOTE_ALL)  # quoted: the spaces stay
    kept, dropped, kept_repeats = _repeats_by_pandas(frame)
    if order != "sorted":
        assert dropped and (kept_repeats or order != "shuffled")  # the data exercise each kind
    con = duckdb.connect()
    load_invoice_into(con, [path], table="invoice")
    got = [r[0] for r in con.execute("SELECT source_row FROM invoice ORDER BY line_no").fetchall()]
    assert got == kept
    assert repeated_lines(con) == (dropped, kept_repeats)


@pytest.mark.parametrize(
    ("ids", "statistics", "bad_row"),
    [
        (["T1", "", "T3"], True, 2),  # empty: the footer's minimum is ''
        (["T1", "T2", "   "], True, 3),  # blank: the minimum starts with a space
        (["T1", None, "T3"], True, 2),  # missing: the footer counts a null
        (["T1", "", "T3"], False, 2),  # no statistics written: the lines are checked
        ([" T1", "T2", ""], True, 3),  # padded but named, then empty
    ],
)
def test_a_parquet_invoice_read_in_place_refuses_lines_without_an_entity(
    tmp_path: Path, ids: list[str | None], statistics: bool, bad_row: int
) -> None:
    # One Parquet file is read in place, and its footer can prove every line names an
    # entity, which skips the per-line check; a footer that cannot must not skip it.
    path = tmp_path / "inv.parquet"
    table = pa.table({"line_id": ["L1", "L2", "L3"], "entity_id": ids, "amount": [1.0] * 3})
    pq.write_table(table, path, write_statistics=statistics, row_group_size=2)
    with pytest.raises(InputError) as err:
        load_invoice(path)
    assert f"{path}, row {bad_row}, column 'entity_id': empty entity_id" in str(err.value)


def test_the_footer_proof_holds_only_for_what_it_shows(tmp_path: Path) -> None:
    import duckdb

    from truecount.billing.invoice import _present_in_statistics

    def proves(ids: list[Any], column: str = "entity_id", **kw: Any) -> bool:
        path = tmp_path / "p.parquet"
        pq.write_table(pa.table({"entity_id": ids}), path, row_group_size=2, **kw)
        with duckdb.connect() as con:
            return _present_in_statistics(con, path, column)

    assert proves(["T1", "T2", "!x", "a b "])  # '!' is the first character above a space
    assert not proves(["T1", "T2", " T3"])
    assert not proves(["T1", None, "T3"])
    assert not proves(["T1", "T2", "T3"], write_statistics=False)
    assert not proves(["T1", "T2"], column="other")  # no such column: nothing proven
    assert not proves([1, 2, 3])  # not text: the per-line check decides
    # what the proof stands for, over every printable ASCII first character
    for code in range(32, 127):
        value = chr(code) + "x"
        assert proves(["T1", value]) == (value.strip(" ") == value and value != "")
    assert load_invoice(tmp_path / "p.parquet").num_rows == 2


def test_an_amount_with_a_digit_separator_is_refused(tmp_path: Path) -> None:
    bad = write(tmp_path / "sep.csv", "entity_id,amount\nT1,1_5\nT2,1.50\nT3,1.5_0\n")
    with pytest.raises(InputError) as err:
        load_invoice(bad)
    text = str(err.value)
    assert f"{bad}, row 1, column 'amount': amount '1_5' is not a number" in text
    assert f"{bad}, row 3, column 'amount': amount '1.5_0' is not a number" in text
    assert "row 2" not in text


def test_numeric_ids_read_as_their_whole_number(tmp_path: Path) -> None:
    lines = [{"entity_id": 1001, "amount": 1.5}, {"entity_id": 1002.0, "amount": 1.5}]
    jl = write(tmp_path / "ids.jsonl", "".join(json.dumps(r) + "\n" for r in lines))
    assert load_invoice(jl).column("entity_id").to_pylist() == ["1001", "1002"]
    pq.write_table(
        pa.table({"entity_id": [7.0, 8.0], "amount": [1.0, 2.0]}), tmp_path / "i.parquet"
    )
    assert load_invoice(tmp_path / "i.parquet").column("entity_id").to_pylist() == ["7", "8"]


def test_numeric_ids_that_are_no_exact_whole_number_are_refused(tmp_path: Path) -> None:
    text = '{"entity_id": 1001, "amount": 1}\n{"entity_id": 1001.5, "amount": 1}\n'
    jl = write(tmp_path / "ids.jsonl", text + '{"entity_id": 1e20, "amount": 1}\n')
    with pytest.raises(InputError) as err:
        load_invoice(jl)
    said = str(err.value)
    assert f"{jl}, row 2, column 'entity_id': entity_id 1001.5 is a number" in said
    assert f"{jl}, row 3, column 'entity_id': entity_id 1e+20 is a number" in said
    assert "(2^53 - 1)" in said and "row 1" not in said


def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    bad = write(tmp_path / "dup.csv", "entity_id,amount,amount\nT1,1.00,2.00\n")
    with pytest.raises(InputError) as err:
        load_invoice(bad)
    assert f"{bad}, column 'amount': the header names column 'amount' twice" in str(err.value)


def test_an_amount_too_large_is_named_as_such_not_as_no_number(tmp_path: Path) -> None:
    bad = write(
        tmp_path / "big.csv",
        "entity_id,amount\nT1,12345678901234567.89\nT2,1.50\nT3,abc\nT4,1_5\n",
    )
    with pytest.raises(InputError) as err:
        load_invoice(bad)
    text = str(err.value)
    assert (
        f"{bad}, row 1, column 'amount': amount '12345678901234567.89' is a number beyond "
        "what an invoice line holds"
    ) in text
    assert f"{bad}, row 3, column 'amount': amount 'abc' is not a number" in text
    assert f"{bad}, row 4, column 'amount': amount '1_5' is not a number" in text
    assert "row 2" not in text and "'12345678901234567.89' is not a number" not in text
