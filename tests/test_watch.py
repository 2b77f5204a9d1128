"""The definition watch: extraction, hashes, unchanged re-adds, diffs, staleness, the CLI.

Expected values come from outside the code under test: hand-written text for the HTML
extraction, hashlib for hashes, difflib run here for the line diff, plain set arithmetic for
the changed sentences, and date arithmetic on fixed clocks for staleness.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import truecount.cli.watch_cmds  # noqa: F401  (registers the watch verbs on the app)
from truecount.cli.app import app
from truecount.watch import (
    WatchError,
    acknowledge,
    add_file,
    add_snapshot,
    detect_kind,
    diff_texts,
    extract,
    flags,
    html_to_text,
    pair,
    select,
    snapshot_bytes,
    snapshots,
    status,
)
from truecount.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "watch"
JAN = EXAMPLES / "resolutions-2025-01.html"
APR = EXAMPLES / "resolutions-2025-04.html"
UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    yield c
    c.close()


# -- extraction -----------------------------------------------------------------------------

CRAFTED = """<!DOCTYPE html>
<html><head><title>Ignored title</title>
<style>body { color: red } p::before { content: "styled" }</style>
<script>document.write("<p>injected</p>"); var x = 1 < 2;</script>
</head>
<body>
<!-- a comment that is not text -->
<h1>Billing &amp; outcomes</h1>
<h3>Caf&eacute; &#8220;rules&#8221;</h3>
<p>An   outcome
   counts&nbsp;after <b>24</b>&nbsp;hours.<br>New line here.</p>
<ul>
  <li>Outer one
    <ul><li>Inner a</li><li>Inner b<ol><li>deep first<li>deep second</ol></li></ul>
  </li>
  <li>Outer two
</ul>
<table>
  <tr><th>Outcome<th>Billed
  <tr><td>Confirmed <p>resolution</p></td><td>Yes</td></tr>
  <tr><td></td><td></td></tr>
  <tr><td>Nested<table><tr><td>inner cell</td></tr></table></td><td>No</td></tr>
</table>
<p>&lt;script&gt;alert("x")&lt;/script&gt; and [bold red]markup[/bold red] stay text.</p>
<img src="x" onerror="alert(1)"><iframe src="https://example.com">iframe fallback</iframe>
<noscript>Enable JavaScript</noscript><template><p>template text</p></template>
<svg><title>svg title</title><text>svg text</text></svg>
<p>Escape \x1b[31mred\x1b[0m and bidi \u202eevil\u202c gone, zero\u200bwidth too.</p>
<pre>keep
  two lines</pre>
</body></html>"""

CRAFTED_TEXT = """# Billing & outcomes
### Café “rules”
An outcome counts after 24 hours.
New line here.
- Outer one
  - Inner a
  - Inner b
    1. deep first
    2. deep second
- Outer two
Outcome | Billed
Confirmed resolution | Yes
Nested inner cell | No
<script>alert("x")</script> and [bold red]markup[/bold red] stay text.
Escape [31mred[0m and bidi evil gone, zerowidth too.
keep
two lines"""


def test_html_extraction_on_crafted_markup() -> None:
    assert html_to_text(CRAFTED) == CRAFTED_TEXT


def test_script_and_style_text_never_appears() -> None:
    text = html_to_text(CRAFTED)
    for hidden in ("injected", "styled", "Ignored title", "comment", "iframe fallback",
                   "Enable JavaScript", "template text", "svg", "onerror"):  # fmt: skip
        assert hidden not in text


def test_unclosed_cells_and_items_follow_html_rules() -> None:
    html = "<table><tr><td>a<td>b<tr><td>c<td>d</table><ol><li>x<li>y</ol><p>one<p>two"
    assert html_to_text(html) == "a | b\nc | d\n1. x\n2. y\none\ntwo"


def test_paragraphs_inside_list_items_keep_the_marker() -> None:
    html = "<ul><li><p>first</p><p>more</p></li><li><div><p>second</p></div></li></ul><h2></h2><p>after</p>"
    assert html_to_text(html) == "- first\nmore\n- second\nafter"


def test_plain_text_lines_are_cleaned_not_joined() -> None:
    data = "\ufeffFirst  line\r\n\r\n\tSecond\x07 line \n".encode()
    got = extract(data, "notes.txt")
    assert got.kind == "text"
    assert got.text == "First line\nSecond line"


@pytest.mark.parametrize(
    ("data", "filename", "kind"),
    [
        (b"<!doctype html><p>x</p>", "saved.txt", "html"),  # content wins over the name
        (b"  <!-- saved --><html><body>x</body></html>", None, "html"),
        (b"plain words", "page.htm", "html"),
        (b"a <b>tag</b> in markdown", "notes.md", "text"),
        (b"<p>fragment</p>", None, "html"),
        (b"3 < 4 and 5 > 2", None, "text"),
    ],
)
def test_kind_detection(data: bytes, filename: str | None, kind: str) -> None:
    assert detect_kind(data, filename) == kind


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"%PDF-1.7\x00\x01", "page.pdf", "not read"),
        (b"abc\x00def", "page.html", "binary"),
        ("Caf\u00e9".encode("latin-1"), "page.txt", "not UTF-8"),
    ],
)
def test_unreadable_files_are_refused(data: bytes, filename: str, message: str) -> None:
    with pytest.raises(WatchError, match=message):
        extract(data, filename)


def test_a_page_without_readable_text_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    shell = b"<html><head><script>render()</script></head><body><div id=app></div></body></html>"
    with pytest.raises(WatchError, match="no readable text"):
        add_snapshot(con, "spa", shell, "spa.html")


# -- snapshots and hashes -------------------------------------------------------------------


def test_hashes_and_bytes_match_hashlib(con: duckdb.DuckDBPyConnection) -> None:
    r = add_file(con, "resolutions", JAN, note="help centre", now=at("2025-01-06T09:00"))
    data = JAN.read_bytes()
    assert r.outcome == "new"
    assert r.snapshot.sha256 == hashlib.sha256(data).hexdigest()
    assert (
        r.snapshot.text_sha256 == hashlib.sha256(html_to_text(data.decode()).encode()).hexdigest()
    )
    assert snapshot_bytes(con, "resolutions", 1) == data
    row = con.execute("SELECT raw, size, kind, source_file, note FROM watch_snapshot").fetchall()
    assert row == [(data, len(data), "html", JAN.name, "help centre")]


def test_unchanged_readd_records_a_check_not_a_snapshot(con: duckdb.DuckDBPyConnection) -> None:
    add_file(con, "resolutions", JAN, now=at("2025-01-06T09:00"))
    again = add_file(con, "resolutions", JAN, now=at("2025-04-01T09:00"))
    assert again.outcome == "unchanged"
    assert again.snapshot.seq == 1
    assert con.execute("SELECT count(*) FROM watch_snapshot").fetchone() == (1,)
    assert con.execute("SELECT outcome FROM watch_check ORDER BY check_id").fetchall() == [
        ("new",),
        ("unchanged",),
    ]
    (entry,) = status(con, now=at("2025-04-02T09:00")).entries
    assert entry.last_checked == at("2025-04-01T09:00")
    assert entry.last_changed == at("2025-01-06T09:00")
    assert entry.snapshots == 1 and not entry.changed


def test_new_bytes_with_the_same_text_are_kept_but_not_a_change(
    con: duckdb.DuckDBPyConnection,
) -> None:
    page = JAN.read_bytes()
    add_snapshot(con, "resolutions", page, "a.html", now=at("2025-01-06T09:00"))
    resaved = page.replace(b"2025.01.06-7f3a", b"2025.02.01-0000")  # only the script differs
    r = add_snapshot(con, "resolutions", resaved, "b.html", now=at("2025-02-01T09:00"))
    assert r.outcome == "same_text"
    (entry,) = status(con, now=at("2025-02-01T10:00")).entries
    assert (entry.snapshots, entry.versions, entry.changed) == (2, 1, False)
    old, new = pair(con, "resolutions")
    assert old is None and new.seq == 2  # no earlier snapshot with other text


def test_a_change_is_unread_until_acknowledged(con: duckdb.DuckDBPyConnection) -> None:
    add_file(con, "resolutions", JAN, now=at("2025-01-06T09:00"))
    r = add_file(con, "resolutions", APR, now=at("2025-04-02T09:00"))
    assert r.outcome == "changed" and r.previous is not None and r.previous.seq == 1
    assert status(con, now=at("2025-04-02T10:00")).attention
    add_file(con, "resolutions", APR, now=at("2025-04-03T09:00"))  # re-check: still unread
    assert status(con, now=at("2025-04-03T10:00")).entries[0].changed
    assert acknowledge(con, "resolutions", now=at("2025-04-03T11:00"))
    after = status(con, now=at("2025-04-03T12:00"))
    assert not after.attention and after.entries[0].last_reviewed == at("2025-04-03T11:00")
    assert not acknowledge(con, "resolutions", now=at("2025-04-03T13:00"))


def test_snapshots_are_appended_in_time_order(con: duckdb.DuckDBPyConnection) -> None:
    add_file(con, "resolutions", JAN, now=at("2025-04-02T09:00"))
    with pytest.raises(WatchError, match="time order"):
        add_file(con, "resolutions", APR, now=at("2025-01-06T09:00"))
    assert con.execute("SELECT count(*) FROM watch_check").fetchone() == (1,)  # rolled back


@pytest.mark.parametrize("name", ["", "1abc", "has space", "semi;colon", "x" * 65, "ü-page"])
def test_names_are_identifiers(con: duckdb.DuckDBPyConnection, name: str) -> None:
    with pytest.raises(WatchError, match="not a valid watch name"):
        add_file(con, name, JAN)


def test_unknown_names_get_a_suggestion(con: duckdb.DuckDBPyConnection) -> None:
    add_file(con, "resolutions", JAN)
    with pytest.raises(WatchError, match="did you mean 'resolutions'"):
        pair(con, "resolution")


# -- selecting snapshots --------------------------------------------------------------------


@pytest.fixture
def three(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Snapshots 1 (January text), 2 (April text), 3 (April text, other bytes)."""
    add_file(con, "resolutions", JAN, now=at("2025-01-06T09:00"))
    add_file(con, "resolutions", APR, now=at("2025-04-02T09:00"))
    resaved = APR.read_bytes().replace(b"c91e", b"d00d")
    add_snapshot(con, "resolutions", resaved, "apr2.html", now=at("2025-05-01T09:00"))
    return con


@pytest.mark.parametrize(
    ("selector", "seq"),
    [
        ("1", 1), ("3", 3), ("-1", 3), ("-3", 1),
        ("2025-04-01", 1), ("2025-04-02", 2),  # a bare date: as known at the end of that day
        ("2025-04-02T08:59:59Z", 1), ("2025-04-02T09:00:00+00:00", 2),
        ("2025-04-02T10:30:00+02:00", 1),  # 08:30 UTC
        ("2030-01-01", 3),
    ],
)  # fmt: skip
def test_selectors(three: duckdb.DuckDBPyConnection, selector: str, seq: int) -> None:
    assert select(snapshots(three, "resolutions"), selector).seq == seq


@pytest.mark.parametrize(
    ("selector", "message"),
    [("0", "no snapshot 0"), ("4", "no snapshot 4"), ("-4", "no snapshot -4"),
     ("2025-01-05", "no snapshot .* was taken by"), ("last week", "neither")],
)  # fmt: skip
def test_bad_selectors(three: duckdb.DuckDBPyConnection, selector: str, message: str) -> None:
    with pytest.raises(WatchError, match=message):
        select(snapshots(three, "resolutions"), selector)


def test_default_pair_skips_snapshots_with_the_same_text(three: duckdb.DuckDBPyConnection) -> None:
    old, new = pair(three, "resolutions")
    assert (old.seq if old else None, new.seq) == (1, 3)
    old, new = pair(three, "resolutions", to_selector="2")
    assert (old.seq if old else None, new.seq) == (1, 2)
    old, new = pair(three, "resolutions", from_selector="2")
    assert (old.seq if old else None, new.seq) == (2, 3)


# -- the diff -------------------------------------------------------------------------------


def _difflib_counts(a: list[str], b: list[str]) -> tuple[int, int]:
    lines = list(difflib.unified_diff(a, b, lineterm="", n=0))[2:]  # skip the ---/+++ header
    body = [line for line in lines if not line.startswith("@@")]
    return sum(line[0] == "+" for line in body), sum(line[0] == "-" for line in body)


def _split_sentences(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(#+|-|\d+\.)\s+", "", line)
        out.extend(p for p in re.split(r"(?<=[.!?]) +(?=[A-Z0-9])", line) if p)
    return out


def test_example_diff_against_difflib() -> None:
    old = html_to_text(JAN.read_text(encoding="utf-8"))
    new = html_to_text(APR.read_text(encoding="utf-8"))
    d = diff_texts(old, new)
    a, b = old.splitlines(), new.splitlines()
    assert (d.lines_added, d.lines_removed) == _difflib_counts(a, b)
    assert d.lines_unchanged == len(a) - d.lines_removed
    assert d.unified("x@1", "x@2") == list(
        difflib.unified_diff(a, b, fromfile="x@1", tofile="x@2", lineterm="")
    )
    removed = set(_split_sentences(old)) - set(_split_sentences(new))
    added = set(_split_sentences(new)) - set(_split_sentences(old))
    assert {s.text for s in d.sentences_removed} == removed
    assert {s.text for s in d.sentences_added} == added


def test_example_diff_flags_the_window_change() -> None:
    d = diff_texts(
        html_to_text(JAN.read_text(encoding="utf-8")), html_to_text(APR.read_text(encoding="utf-8"))
    )
    flagged = {s.text: s.flags for s in d.flagged}
    assert flagged["The customer does not reply within 24 hours of the assistant's last answer."] == (
        "within", "24", "hours",
    )  # fmt: skip
    assert flagged["The customer does not reply within 72 hours of the assistant's last answer."] == (
        "within", "72", "hours",
    )  # fmt: skip
    assert "Assumed resolution (no reply for 72 hours) | Yes" in flagged
    # the unchanged reopen sentence (also "24 hours") is not a change
    assert not any("writes again" in s.text for s in d.flagged)
    # word level: only the number is marked inside the changed line
    changed_words = {
        (line.op, seg.text)
        for hunk in d.hunks
        for line in hunk.lines
        for seg in line.segments
        if seg.changed and "reply within" in line.text
    }
    assert changed_words == {("-", "24"), ("+", "72")}


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Counted after twenty-four hours.", ("counted", "twenty-four", "hours")),
        ("Confirmed or assumed, 10% off on Monday.", ("confirmed", "assumed", "10%")),
        ("Nothing here at all.", ()),
        ("Reopened within 1.5 days", ("reopened", "within", "1.5", "days")),
    ],
)
def test_flags(sentence: str, expected: tuple[str, ...]) -> None:
    assert flags(sentence) == expected


def test_identical_texts_have_no_hunks() -> None:
    d = diff_texts("a\nb", "a\nb")
    assert d.identical and not d.hunks and (d.lines_added, d.lines_removed) == (0, 0)


line_lists = st.lists(
    st.sampled_from(["alpha", "beta 24 hours", "gamma.", "delta", ""]), max_size=12
)


@settings(max_examples=150, deadline=None)
@given(a=line_lists, b=line_lists)
def test_diff_counts_and_hunks_rebuild_both_sides(a: list[str], b: list[str]) -> None:
    old, new = "\n".join(a), "\n".join(b)
    d = diff_texts(old, new, context=1)
    a2, b2 = old.splitlines(), new.splitlines()
    assert (d.lines_added, d.lines_removed) == _difflib_counts(a2, b2)
    for hunk in d.hunks:
        olds = [line.text for line in hunk.lines if line.op in " -"]
        news = [line.text for line in hunk.lines if line.op in " +"]
        assert olds == a2[hunk.old_start - 1 : hunk.old_start - 1 + hunk.old_count]
        assert news == b2[hunk.new_start - 1 : hunk.new_start - 1 + hunk.new_count]


# -- staleness on fixed dates ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "stale_days"),
    [
        ("2025-04-03T09:00", 92),
        ("2025-04-04T08:59", 92),
        ("2025-04-04T09:00", 92),
        ("2025-01-31T09:00", 30),
        ("2025-02-01T09:00", 30),
        ("2025-01-01T09:00", 0),
        ("2025-01-02T09:00", 0),
    ],
)
def test_staleness_on_fixed_dates(
    con: duckdb.DuckDBPyConnection, now: str, stale_days: int
) -> None:
    checked = at("2025-01-01T09:00")
    add_file(con, "resolutions", JAN, now=checked)
    report = status(con, stale_days=stale_days, now=at(now))
    whole_days = (at(now) - checked).days  # timedelta.days: whole days, rounded down
    (entry,) = report.entries
    assert entry.days_since_checked == whole_days
    assert entry.stale == (whole_days > stale_days)
    assert report.attention == entry.stale
    assert report.to_json()["stale"] == (["resolutions"] if entry.stale else [])


def test_status_of_an_empty_store(con: duckdb.DuckDBPyConnection) -> None:
    report = status(con, now=at("2025-01-01T00:00"))
    assert report.entries == () and not report.attention


# -- the command line -----------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    Workspace.init(tmp_path / "ws")
    return tmp_path / "ws"


def run(ws: Path, *args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, ["watch", *map(str, args), "-w", str(ws)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def test_cli_quarter_end_flow(ws: Path) -> None:
    code, out = run(ws, "add", "resolutions", JAN)
    assert code == 0 and out.startswith("new: resolutions snapshot 1")
    assert hashlib.sha256(JAN.read_bytes()).hexdigest() in out
    code, out = run(ws, "add", "resolutions", JAN)
    assert code == 0 and out.startswith("unchanged:")
    code, _ = run(ws, "status")
    assert code == 0
    code, out = run(ws, "add", "resolutions", APR, "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["outcome"] == "changed" and data["previous"]["snapshot"] == 1
    old = html_to_text(JAN.read_text(encoding="utf-8")).splitlines()
    new = html_to_text(APR.read_text(encoding="utf-8")).splitlines()
    added, removed = _difflib_counts(old, new)
    assert (data["summary"]["lines_added"], data["summary"]["lines_removed"]) == (added, removed)

    code, out = run(ws, "status", "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["attention"] and report["changed"] == ["resolutions"]
    (entry,) = report["watched"]
    assert entry["state"] == "CHANGED" and entry["snapshots"] == 2 and entry["versions"] == 2
    assert entry["latest"]["sha256"] == hashlib.sha256(APR.read_bytes()).hexdigest()

    code, out = run(ws, "diff", "resolutions", "--format", "json")
    d = json.loads(out)
    assert code == 0 and (d["from"]["snapshot"], d["to"]["snapshot"]) == (1, 2)
    assert (d["lines_added"], d["lines_removed"]) == (added, removed)
    assert d["unified_diff"] == list(
        difflib.unified_diff(old, new, "resolutions@1", "resolutions@2", lineterm="")
    )
    assert any("72 hours" in s["text"] and "72" in s["flags"] for s in d["sentences_added"])

    code, out = run(ws, "diff", "resolutions")
    assert code == 0
    assert "within [-24-] hours" in out and "within {+72+} hours" in out
    assert "changed sentences that may change billing" in out

    code, out = run(ws, "ack", "resolutions")
    assert code == 0 and "marked as read" in out
    code, out = run(ws, "status")
    assert code == 0 and "resolutions" in out and "ok" in out

    code, out = run(ws, "log", "resolutions", "--format", "json")
    assert [c["outcome"] for c in json.loads(out)["checks"]] == [
        "new", "unchanged", "changed", "reviewed",
    ]  # fmt: skip


def test_cli_stale_exit_code(ws: Path) -> None:
    with Workspace.open(ws).connect() as c:
        add_file(c, "old-page", JAN, now=at("2020-01-01T00:00"))
    code, out = run(ws, "status", "--format", "json")
    assert code == 1 and json.loads(out)["stale"] == ["old-page"]
    code, out = run(ws, "status", "--stale-days", "1000000", "--format", "json")
    assert code == 0 and json.loads(out)["stale"] == []


def test_cli_empty_workspace(ws: Path) -> None:
    code, out = run(ws, "status", "--format", "json")
    assert code == 0 and json.loads(out)["watched"] == []
    code, out = run(ws, "status")
    assert code == 0 and "nothing is watched" in out


def test_cli_user_text_is_shown_as_text(ws: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<p>Counted after 24 hours.</p>", encoding="utf-8")
    run(ws, "add", "evil", page)
    page.write_text(
        "<p>Counted after 24 hours.</p><p>[bold red]x[/bold red] &lt;b&gt;y&lt;/b&gt;</p>",
        encoding="utf-8",
    )
    run(ws, "add", "evil", page)
    code, out = run(ws, "diff", "evil")
    assert code == 0 and "[bold red]x[/bold red] <b>y</b>" in out


def test_cli_show_prints_text_and_writes_exact_bytes(ws: Path, tmp_path: Path) -> None:
    run(ws, "add", "resolutions", JAN)
    code, out = run(ws, "show", "resolutions")
    assert code == 0 and out == html_to_text(JAN.read_text(encoding="utf-8")) + "\n"
    target = tmp_path / "copy.html"
    code, _ = run(ws, "show", "resolutions", "--snapshot", "1", "--out", target)
    assert code == 0 and target.read_bytes() == JAN.read_bytes()


def test_cli_show_out_never_overwrites_a_file_without_force(ws: Path, tmp_path: Path) -> None:
    """As sample and new: an existing file is refused, named, with the way on (--force)."""
    run(ws, "add", "resolutions", JAN)
    target = tmp_path / "notes.txt"
    target.write_text("review notes", encoding="utf-8")
    args = ["watch", "show", "resolutions", "--out", str(target), "-w", str(ws)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2
    assert f"{target} already exists" in refused.output and "--force" in refused.output
    assert target.read_text(encoding="utf-8") == "review notes"
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert target.read_bytes() == JAN.read_bytes()


def test_cli_one_version_has_nothing_to_compare(ws: Path) -> None:
    run(ws, "add", "resolutions", JAN)
    code, out = run(ws, "diff", "resolutions", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["from"] is None and data["unified_diff"] == []


def _tc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "truecount", *map(str, args)], capture_output=True, text=True
    )


def test_cli_errors_are_one_line_with_exit_code_2(ws: Path) -> None:
    """Through the real entry point: a near-miss name and an invalid name."""
    run(ws, "add", "resolutions", JAN)
    proc = _tc("watch", "diff", "resolution", "-w", ws)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "did you mean 'resolutions'" in proc.stderr
    proc = _tc("watch", "add", "no good", JAN, "-w", ws)
    assert proc.returncode == 2 and "not a valid watch name" in proc.stderr


def test_a_bare_date_selector_ends_with_its_day_even_the_last_one() -> None:
    """The day's last microsecond, inclusive; 9999-12-31 plus a day used to overflow."""
    from truecount.watch.store import _cutoff

    assert _cutoff("9999-12-31") == (dt.datetime(9999, 12, 31, 23, 59, 59, 999999, dt.UTC), True)
    assert _cutoff("2026-03-01") == (dt.datetime(2026, 3, 1, 23, 59, 59, 999999, dt.UTC), True)
