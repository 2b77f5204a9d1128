"""A row with more fields than the header is named as such, and good files are untouched."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truecount.billing.invoice import load_invoice
from truecount.errors import InputError
from truecount.ingest import load_events_into, source
from truecount.ingest.source import MAX_CSV_LINE, open_source, ragged_row_problem


def test_extra_field_names_the_row_not_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "invoice.csv"
    path.write_text("entity_id,amount\nT-1,1.00\nT-2,12,50\nT-3,2.00\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_invoice(path)
    text = str(info.value)
    assert "row 2" in text and "line 3 has 3, the header 2" in text
    assert "no entity_id column" not in text


@pytest.mark.parametrize(
    "text",
    [
        "a;b;c\n1;2,5;3\n4;5;6\n",  # semicolons, a decimal comma inside a field
        '"a","b"\n"1","2"\n',  # quoted header
        "a,b\n1,2\n3,4\n",
    ],
)
def test_good_files_read_as_before(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text(text, encoding="utf-8")
    with duckdb.connect() as con:
        source = open_source(con, path)
    assert ragged_row_problem(path, list(source.columns)) is None


@pytest.mark.parametrize(
    ("text", "row", "said"),
    [
        (
            "entity_id,ts,type,value\nT-1,2026-03-04,closed,1\nT-2,2026-03-04,closed\n",
            "row 2",
            "fewer fields than the header: line 3 has 3, the header 4 (separated by commas)",
        ),
        (
            "entity_id;ts;type;value\nT-1;2026-03-04;closed;1\nT-2;2026-03-04;closed;2;5\n",
            "row 2",
            "more fields than the header: line 3 has 5, the header 4 (separated by semicolons)",
        ),
        (
            "entity_id,ts,type,value\nT-1,2026-03-04,closed,12\n\nT-3,2026-03-04\n",
            "row 3",
            "fewer fields than the header: line 4 has 2, the header 4",
        ),
    ],
)
def test_a_row_of_another_width_is_named_for_events_and_invoices(
    tmp_path: Path, text: str, row: str, said: str
) -> None:
    """A short row, or a long one in a semicolon file, used to be reported as a missing
    'entity_id' column, with the data values listed as the file's columns."""
    path = tmp_path / "events.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_events_into(duckdb.connect(), [path])
    message = str(info.value)
    assert f"{path}, {row}: a row with {said}" in message
    assert "missing required column" not in message
    invoice = tmp_path / "invoice.csv"
    invoice.write_text(text.replace("ts", "billed_at").replace("value", "amount"), "utf-8")
    with pytest.raises(InputError) as info:
        load_invoice(invoice)
    assert f"{row}: a row with {said}" in str(info.value)


def test_a_long_cell_is_read_and_a_line_past_the_limit_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB's 2 MB default refused a 3 MB cell as "CSV Error on Line: 1"; the reader now
    takes lines up to MAX_CSV_LINE and names the file's own line beyond it."""
    long = "x" * 3_000_000
    path = tmp_path / "long.csv"
    path.write_text(f"entity_id,ts,type,attrs\nT-1,2026-03-04,closed,\nT-2,2026-03-04,{long},\n")
    con = duckdb.connect()
    report = load_events_into(con, [path])
    assert (report.rows_read, report.loaded) == (2, 2)
    assert con.execute("SELECT length(type) FROM events WHERE entity_id = 'T-2'").fetchall() == [
        (len(long),)
    ]
    invoice = tmp_path / "invoice.csv"
    invoice.write_text(f"entity_id,amount,note\nT-1,1.50,{long}\n")
    assert load_invoice(invoice).num_rows == 1
    assert MAX_CSV_LINE >= 32 * 1024 * 1024
    # past the limit (lowered for the test: DuckDB takes seconds per 10 MB it refuses)
    limit = 3 * 1024 * 1024
    monkeypatch.setattr(source, "MAX_CSV_LINE", limit)
    over = "y" * (limit + 10)
    path.write_text(f"entity_id,ts,type\nT-1,2026-03-04,closed\nT-2,2026-03-04,{over}\n")
    with pytest.raises(InputError) as info:
        load_events_into(duckdb.connect(), [path])
    said = str(info.value)
    assert f"line 3 holds {len(over) + len('T-2,2026-03-04,') + 1:,} bytes" in said
    assert f"over the {limit:,}" in said and "quote" in said


def test_an_unknown_file_type_lists_every_name_that_is_read(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(InputError) as info:
        source.detect_format(path)
    said = str(info.value)
    assert "unknown file type '.xlsx'" in said
    for suffix in source._SUFFIXES:
        assert re.search(re.escape(suffix) + r"\b", said), suffix


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
        max_size=12,
    ),
    last=st.booleans(),
    limit=st.integers(0, 10),
    chunk=st.integers(1, 9),
)
def test_the_first_long_line_is_the_one_python_finds(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], last: bool, limit: int, chunk: int
) -> None:
    """The line feeds are found chunk by chunk with NumPy; Python's own line split decides."""
    data = b"\n".join(lines) + (b"\n" if last and lines else b"")
    path = tmp_path_factory.mktemp("lines") / "f.csv"
    path.write_bytes(data)
    # a line's length counts its line feed; the file's last line may have none
    parts = data.splitlines(keepends=True)
    want = next(((i, len(x)) for i, x in enumerate(parts, 1) if len(x) > limit), (0, 0))
    assert source._first_long_line(path, limit, chunk) == want
