"""A row with more fields than the header is named as such, and good files are untouched."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from truecount.billing.invoice import load_invoice
from truecount.errors import InputError
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
