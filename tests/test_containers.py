"""Encodings and compression: every source, and mapped files, read the same rows from a UTF-16,
BOM or gzip copy of a fixture as from the plain file; anything else is refused in one line.

The copies are made here with Python's own codecs (what PowerShell 5.1's ``>`` writes is
UTF-16 LE with a BOM; Excel's "CSV UTF-8" is UTF-8 with a BOM), and the comparison is on the
loaded events themselves, with the file name (which differs for a ``.gz`` copy) taken out.
"""

from __future__ import annotations

import codecs
import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from truecount import container
from truecount.adapters import ingest_source
from truecount.errors import InputError, MappingError
from truecount.ingest.load import load_events_into
from truecount.yamlsource import read_text

FIXTURES = Path(__file__).parent / "fixtures"

#: One complete export per source (files that load together without --partial).
EXPORTS: dict[str, list[str]] = {
    "zendesk": [
        "zendesk/tickets_page1.json",
        "zendesk/tickets_page2.json",
        "zendesk/ticket_audits.jsonl",
        "zendesk/satisfaction_ratings.json",
        "zendesk/ticket_metric_events.json",
    ],
    "intercom": [
        "intercom/conversation_20001.json",
        "intercom/conversations_2_14.jsonl",
        "intercom/conversations_2_15.jsonl",
    ],
    "salesforce": [
        "salesforce/Case.csv",
        "salesforce/CaseHistory_page1.json",
        "salesforce/CaseHistory_page2.json",
        "salesforce/CaseStatus.csv",
    ],
    "servicenow": ["servicenow/incident_updates.csv", "servicenow/incidents_api.json"],
}


def _utf16_le(data: bytes) -> bytes:
    return codecs.BOM_UTF16_LE + data.decode("utf-8").encode("utf-16-le")


def _utf16_be(data: bytes) -> bytes:
    return codecs.BOM_UTF16_BE + data.decode("utf-8").encode("utf-16-be")


def _bom(data: bytes) -> bytes:
    return codecs.BOM_UTF8 + data


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


Encoder = Callable[[bytes], bytes]
VARIANTS: dict[str, tuple[Encoder, str]] = {
    "utf-16-le-bom": (_utf16_le, ""),
    "utf-16-be-bom": (_utf16_be, ""),
    "utf-8-bom": (_bom, ""),
    "gzip": (gzip.compress, ".gz"),
    "gzip-utf-16": (lambda d: gzip.compress(_utf16_le(d)), ".gz"),
    "windows-line-ends-bom": (lambda d: _bom(_crlf(d)), ""),
}


def _copy(files: list[Path], folder: Path, variant: str) -> list[Path]:
    encode, suffix = VARIANTS[variant]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        target = folder / (f.name + suffix)
        target.write_bytes(encode(f.read_bytes()))
        out.append(target)
    return out


def _events(con: duckdb.DuckDBPyConnection, ids: bool = True) -> list[tuple[object, ...]]:
    """The stored events with the file name (part of ``source`` and of derived ids) removed;
    ``ids=False`` drops event ids (a mapping hashes the file name into them)."""
    rows = con.execute(
        "SELECT entity_id, ts, type, actor, value, CAST(attrs AS VARCHAR), seq, recorded_at, "
        "regexp_replace(source, '^[^:]*:', ''), "
        "regexp_replace(event_id, '\\.(csv|json|jsonl)(\\.gz)?', '', 'g') FROM events"
    ).fetchall()
    return sorted((r if ids else r[:-1] for r in rows), key=repr)


def _load(
    source: str, files: list[Path], partial: bool = False
) -> tuple[list[tuple[object, ...]], list[int]]:
    con = duckdb.connect()
    report = ingest_source(con, source, files, partial=partial)
    counts = [report.rows_read, report.loaded, report.duplicate, report.quarantined]
    return _events(con), counts


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("source", sorted(EXPORTS))
def test_every_source_reads_the_same_rows_from_any_container(
    source: str, variant: str, tmp_path: Path
) -> None:
    plain = [FIXTURES / f for f in EXPORTS[source]]
    expected_events, expected_counts = _load(source, plain)
    assert expected_counts[1] > 0
    events, counts = _load(source, _copy(plain, tmp_path / variant, variant))
    assert counts == expected_counts
    assert events == expected_events


@pytest.mark.parametrize("variant", ["utf-16-le-bom", "utf-8-bom", "gzip"])
def test_mapped_files_and_mapping_yaml_read_from_any_container(
    variant: str, tmp_path: Path
) -> None:
    support = Path(__file__).parents[1] / "examples" / "support"
    plain_con = duckdb.connect()
    plain = load_events_into(
        plain_con, [support / "ticket_updates.csv"], mapping=support / "mapping.yaml"
    )
    (data,) = _copy([support / "ticket_updates.csv"], tmp_path, variant)
    mapping = tmp_path / "mapping.yaml"
    encode, _ = VARIANTS[variant]
    mapping.write_bytes(encode((support / "mapping.yaml").read_bytes()))
    con = duckdb.connect()
    report = load_events_into(con, [data], mapping=mapping)
    assert (report.rows_read, report.loaded, report.quarantined) == (
        plain.rows_read,
        plain.loaded,
        plain.quarantined,
    )
    assert _events(con, ids=False) == _events(plain_con, ids=False)


def test_first_jsonl_record_after_a_bom_is_not_quarantined(tmp_path: Path) -> None:
    src = FIXTURES / "intercom" / "conversations_2_14.jsonl"
    lines = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    target = tmp_path / "conversations_2_14.jsonl"
    target.write_bytes(_bom(src.read_bytes()))
    con = duckdb.connect()
    report = ingest_source(con, "intercom", [target], partial=True)
    assert report.rows_read == len(lines)
    plain = ingest_source(duckdb.connect(), "intercom", [src], partial=True)
    assert report.quarantined == plain.quarantined


def test_gzip_json_document_reads_like_the_plain_one(tmp_path: Path) -> None:
    src = FIXTURES / "zendesk" / "tickets_page1.json"
    target = tmp_path / "tickets_page1.json.gz"
    target.write_bytes(gzip.compress(src.read_bytes()))
    con = duckdb.connect()
    report = ingest_source(con, "zendesk", [target])
    expected = len(json.loads(src.read_text())["tickets"])
    assert report.rows_read == expected
    (log_hash,) = con.execute("SELECT sha256 FROM ingest_log").fetchone() or ()
    import hashlib

    # the ingest log keeps the hash of the bytes on disk (the compressed file as given)
    assert log_hash == hashlib.sha256(target.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("data", "name", "said"),
    [
        (codecs.BOM_UTF32_LE + "id\n1\n".encode("utf-32-le"), "x.csv", "UTF-32 LE"),
        ("id,name\n1,x\n".encode("utf-16-le"), "x.csv", "UTF-16 LE text without a byte-order"),
        ("id,name\n1,café\n".encode("cp1252"), "x.csv", "Windows-1252 or Latin-1"),
        (b"\x1f\x8b\x08\x00garbage", "x.csv.gz", "gzip"),
        (b"\x00\x00\x01\x02" * 100, "x.json", "binary"),
    ],
)
def test_unreadable_encodings_are_refused_in_one_line(
    data: bytes, name: str, said: str, tmp_path: Path
) -> None:
    target = tmp_path / name
    target.write_bytes(data)
    with pytest.raises(InputError) as err:
        load_events_into(duckdb.connect(), [target], mapping=None)
    message = err.value.first_line
    assert said in message
    assert name in message
    assert "\n" not in message


def test_latin1_past_the_first_block_names_its_line(tmp_path: Path) -> None:
    body = "".join(f"e{i},T-{i},2025-01-01T00:00:00,created\n" for i in range(5000))
    data = ("event_id,entity_id,ts,type\n" + body).encode() + "e9,T-9,2025-01-01,caf\xe9\n".encode(
        "cp1252"
    )
    target = tmp_path / "late.csv"
    target.write_bytes(data)
    with pytest.raises(InputError) as err:
        load_events_into(duckdb.connect(), [target])
    assert ":5002" in err.value.first_line
    assert "0xE9" in err.value.first_line


def test_yaml_reader_accepts_bom_and_utf16_and_names_bad_encodings(tmp_path: Path) -> None:
    text = "truecount: 1\nname: x\n"
    for encode in (_bom, _utf16_le, _utf16_be):
        p = tmp_path / "d.yaml"
        p.write_bytes(encode(text.encode()))
        assert read_text(p) == text
    bad = tmp_path / "bad.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("cp1252"))
    with pytest.raises(MappingError, match="Windows-1252"):
        read_text(bad)


def test_plain_files_are_read_in_place(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text("a\n1\n")
    assert container.readable(p) == p
    g = tmp_path / "a.csv.gz"
    with gzip.open(g, "wb") as fh, p.open("rb") as src:
        shutil.copyfileobj(src, fh)
    copy = container.readable(g)
    assert copy != g and copy.read_text() == "a\n1\n"
    assert container.format_suffix(g) == ".csv"


def _fixture_files() -> list[tuple[str, Path]]:
    """Every text fixture of every source (bad ones too), with the source that reads it."""
    found = []
    for source in sorted(EXPORTS):
        for f in sorted((FIXTURES / source).rglob("*")):
            if f.suffix in (".json", ".jsonl", ".csv") and f.name != "expected.json":
                found.append((source, f))
    return found


def _outcome(source: str, files: list[Path]) -> tuple[object, ...]:
    try:
        events, counts = _load(source, files, partial=True)
    except InputError:
        return ("refused",)
    return (counts, events)


@pytest.mark.parametrize(
    ("source", "fixture"),
    _fixture_files(),
    ids=[str(f.relative_to(FIXTURES)) for _, f in _fixture_files()],
)
def test_each_fixture_loads_the_same_from_utf16_bom_and_gzip(
    source: str, fixture: Path, tmp_path: Path
) -> None:
    """Each fixture file alone (as with --partial): what loads from the plain file loads the
    same from its UTF-16, BOM and gzip copies, and what is refused stays refused."""
    expected = _outcome(source, [fixture])
    for variant in ("utf-16-le-bom", "utf-8-bom", "gzip"):
        copies = _copy([fixture], tmp_path / variant, variant)
        assert _outcome(source, copies) == expected, variant


@pytest.mark.parametrize(("odd", "other"), [("e*.csv", "ex.csv"), ("x[1].csv", "x1.csv"),
                                            ("t?.csv", "ta.csv")])  # fmt: skip
def test_file_names_are_paths_never_patterns(odd: str, other: str, tmp_path: Path) -> None:
    """A file whose name holds a glob character is read alone, however its neighbours are
    named (DuckDB's readers would expand it), by mapped ingest and by --events."""
    header = "event_id,entity_id,ts,type\n"
    (tmp_path / odd).write_text(header + "a1,T-1,2026-01-01T00:00:00,created\n")
    (tmp_path / other).write_text(
        header + "b1,T-2,2026-01-01T00:00:00,created\nb2,T-3,2026-01-02T00:00:00,created\n"
    )
    con = duckdb.connect()
    report = load_events_into(con, [tmp_path / odd])
    assert (report.rows_read, report.loaded) == (1, 1)
    assert con.execute("SELECT entity_id FROM events").fetchall() == [("T-1",)]
    from truecount.engine.source import open_events

    parquet_odd = tmp_path / odd.replace(".csv", ".parquet")
    parquet_other = tmp_path / other.replace(".csv", ".parquet")
    for src_name, target in ((odd, parquet_odd), (other, parquet_other)):
        duckdb.sql(
            "SELECT event_id, entity_id, CAST(ts AS TIMESTAMP) AS ts, type "
            f"FROM read_csv('{container.literal_path(tmp_path / src_name)}')"
        ).write_parquet(str(target))
    opened = open_events([parquet_odd])
    assert opened.con.execute("SELECT entity_id FROM events").fetchall() == [("T-1",)]


def test_event_times_out_of_range_are_quarantined_with_the_reason(tmp_path: Path) -> None:
    """A year-10000 event would push every window past the as-of time: it is quarantined at
    ingest (mapped files, and adapters' multi-event records as a whole)."""
    f = tmp_path / "events.csv"
    f.write_text(
        "event_id,entity_id,ts,type\n"
        "a,T-1,2026-01-01T00:00:00,created\n"
        "b,T-2,9999-12-31T00:00:00,created\n"
        "c,T-3,1969-12-31T23:59:59,created\n"
        "d,T-4,2199-12-31T23:59:59,created\n"
    )
    con = duckdb.connect()
    report = load_events_into(con, [f])
    assert (report.rows_read, report.loaded, report.quarantined) == (4, 2, 2)
    rows = con.execute(
        "SELECT row_number, column_name, reason FROM quarantine ORDER BY 1"
    ).fetchall()
    assert [(r, c) for r, c, _ in rows] == [(2, "ts"), (3, "ts")]
    assert "9999-12-31" in rows[0][2] and "outside 1970-01-01 .. 2200-01-01" in rows[0][2]
    # a Zendesk audit (one record, several events) with one event time out of range
    page = json.loads((FIXTURES / "zendesk" / "ticket_audits.json").read_text())
    audits = page["audits"]
    audits[0]["created_at"] = "2300-01-01T00:00:00Z"
    target = tmp_path / "ticket_audits.json"
    target.write_text(json.dumps(page))
    zcon = duckdb.connect()
    z = ingest_source(zcon, "zendesk", [target], partial=True)
    assert z.rows_read == len(audits)
    assert z.quarantined == 1 and z.loaded == len(audits) - 1
    (reason,) = zcon.execute("SELECT reason FROM quarantine").fetchone() or ("",)
    assert "2300-01-01" in reason
