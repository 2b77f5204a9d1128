"""A row with more fields than the header is named as such, and good files are untouched."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from truecount.billing.invoice import load_invoice
from truecount.errors import InputError
from truecount.ingest import load_events_into
from truecount.ingest.source import open_source, ragged_row_problem


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
