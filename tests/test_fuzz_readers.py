"""Fuzzing the record readers: small valid exports, damaged at random, through ingest.

A canonical CSV, JSON Lines and JSON file, and vendor exports (Intercom's paged search and
JSON Lines, a Salesforce CSV) are truncated, cut, spliced with stray bytes and quotes,
re-encoded (UTF-16, Latin-1, a BOM, gzip) or given other line endings, then loaded the way
``truecount ingest`` loads them. Each load either stops with one of truecount's own errors,
naming the file, or accounts for every row: ``rows_read == loaded + duplicate + quarantined``
per file, and the store holds exactly the events the report says were loaded.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import duckdb
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import fuzz
from truecount.adapters import ingest_source
from truecount.errors import TruecountError
from truecount.ingest.load import load_events_into
from truecount.ingest.report import IngestReport

FIXTURES = Path(__file__).parent / "fixtures"

CANONICAL = {
    "events.csv": (
        b"event_id,entity_id,ts,type,actor,value,attrs\n"
        b'e1,T1,2026-01-01T00:00:00,message,customer,,"{""channel"": ""chat""}"\n'
        b"e2,T1,2026-01-01T00:05:00,message,ai,4.5,\n"
        b'e3,T2,2026-01-02 10:00:00,rating,customer,5,"{}"\n'
        b"e4,T2,2026-01-02T11:00:00Z,closed,ai,,\n"
    ),
    "events.jsonl": (
        b'{"event_id":"e1","entity_id":"T1","ts":"2026-01-01T00:00:00","type":"message",'
        b'"actor":"customer","attrs":{"channel":"chat"}}\n'
        b'{"event_id":"e2","entity_id":"T1","ts":"2026-01-01T00:05:00","type":"message",'
        b'"actor":"ai","value":4.5}\n'
        b'{"event_id":"e3","entity_id":"T2","ts":"2026-01-02T10:00:00","type":"rating",'
        b'"value":5}\n'
    ),
    "events.json": (
        b'[{"event_id":"e1","entity_id":"T1","ts":"2026-01-01T00:00:00","type":"message"},'
        b'{"event_id":"e2","entity_id":"T1","ts":"2026-01-01T00:05:00","type":"closed",'
        b'"actor":"ai"}]'
    ),
}

VENDOR = {
    "intercom": [
        FIXTURES / "intercom" / "search_page_1.json",
        FIXTURES / "intercom" / "conversations_2_16.jsonl",
    ],
    "salesforce": [FIXTURES / "salesforce" / "Case.csv"],
}

STRAY = [b'"', b"'", b",", b"\n", b"\r", b"\x00", b"\xff", b"\xc3", b"{", b"}", b"[", b"]",
         b'\\"', b"\t", b"\xef\xbb\xbf", b"NaN", b"1e400", b"10000-01-01T00:00:00", b"=1+1"]  # fmt: skip


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with one to three random edits of the kinds a bad download or editor makes."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["truncate", "cut", "insert", "flip", "crlf", "repeat_line"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if edit == "truncate":
            del out[at:]
        elif edit == "cut":
            del out[at : at + draw(st.integers(1, 30))]
        elif edit == "insert":
            out[at:at] = draw(st.sampled_from(STRAY))
        elif edit == "flip" and out:
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "crlf":
            out = bytearray(bytes(out).replace(b"\n", b"\r\n"))
        else:
            lines = bytes(out).splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                lines.insert(i, lines[i])
                out = bytearray(b"".join(lines))
    encoding = draw(st.sampled_from(["as is", "as is", "utf-16", "latin-1", "bom", "gzip"]))
    raw = bytes(out)
    if encoding == "utf-16":
        return raw.decode("utf-8", errors="replace").encode("utf-16")
    if encoding == "latin-1":
        return raw.decode("utf-8", errors="replace").encode("latin-1", errors="replace")
    if encoding == "bom":
        return b"\xef\xbb\xbf" + raw
    if encoding == "gzip":
        return gzip.compress(raw, mtime=0)
    return raw


def accounted(report: IngestReport, con: duckdb.DuckDBPyConnection) -> None:
    """Every row read is loaded, a duplicate or quarantined; the store holds what was loaded."""
    for f in report.files:
        assert f.rows_read == f.loaded + f.duplicate + f.quarantined, f
    stored = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    assert stored == report.events_loaded


def _name(name: str, data: bytes) -> str:
    return name + ".gz" if data[:2] == b"\x1f\x8b" else name


@fuzz(80)
@given(
    st.sampled_from(sorted(CANONICAL)).flatmap(
        lambda n: st.tuples(st.just(n), damaged(CANONICAL[n]))
    )
)
def test_canonical_files(case: tuple[str, bytes]) -> None:
    name, data = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / _name(name, data)
        path.write_bytes(data)
        with duckdb.connect() as con:
            try:
                report = load_events_into(con, [path])
            except TruecountError as exc:
                assert path.name in exc.first_line, exc.first_line
                return
            accounted(report, con)


@st.composite
def vendor_cases(draw: st.DrawFn) -> tuple[str, Path, bytes]:
    source = draw(st.sampled_from(sorted(VENDOR)))
    path = draw(st.sampled_from(VENDOR[source]))
    return source, path, draw(damaged(path.read_bytes()))


@fuzz(30)
@given(vendor_cases())
def test_vendor_exports(case: tuple[str, Path, bytes]) -> None:
    source, original, data = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / _name(original.name, data)
        path.write_bytes(data)
        with duckdb.connect() as con:
            try:
                report = ingest_source(con, source, [path], partial=True)
            except TruecountError as exc:
                assert path.name in exc.first_line, exc.first_line
                return
            accounted(report, con)


def test_the_undamaged_seeds_load_whole() -> None:
    """The seeds themselves load with nothing quarantined: the damage is what the fuzz adds."""
    rows = {"events.csv": 4, "events.jsonl": 3, "events.json": 2}
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in CANONICAL.items():
            path = Path(tmp) / name
            path.write_bytes(data)
            with duckdb.connect() as con:
                report = load_events_into(con, [path])
                assert (report.rows_read, report.loaded, report.quarantined) == (
                    rows[name],
                    rows[name],
                    0,
                )
                accounted(report, con)
