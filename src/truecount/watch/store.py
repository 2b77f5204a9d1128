"""Snapshots of the vendor's outcome documentation, kept in the workspace store.

Two tables, created on first use:

``watch_snapshot``
    one row per distinct saved file of a watched name: its number (``seq``, 1, 2, ... per
    name), when it was taken (UTC), the file it came from, the SHA-256 of the exact bytes and of
    the readable text, the kind (``html`` or ``text``), the bytes themselves and the readable
    text.
``watch_check``
    one row per ``watch add`` (outcome ``new``, ``changed``, ``same_text`` or ``unchanged``)
    and per ``watch ack`` (outcome ``reviewed``). Adding a file whose bytes equal the latest
    snapshot's records only a check, never a duplicate snapshot, so ``status`` can say when a
    page was last looked at even when it has not changed for a year.

Why both hashes: a page saved twice from a browser often differs in bytes (a nonce, a tracking
script) while the words are the same. Such a file is kept (``same_text``: the bytes are the
evidence of what was saved) but is not a change anyone needs to read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import duckdb

from truecount.errors import Location, Problem, suggest
from truecount.watch.extract import WatchError, clean_line, extract

SNAPSHOT_TABLE: Final[str] = "watch_snapshot"
CHECK_TABLE: Final[str] = "watch_check"
#: A check older than this many whole days is stale: a quarter (the longest quarter is 92 days).
DEFAULT_STALE_DAYS: Final[int] = 92

Outcome = Literal["new", "changed", "same_text", "unchanged", "reviewed"]

_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_INT: Final = re.compile(r"^[+-]?\d+$")

_SNAPSHOT_DDL: Final[str] = (
    "CREATE TABLE IF NOT EXISTS watch_snapshot ("
    "name VARCHAR NOT NULL, seq INTEGER NOT NULL, taken_at TIMESTAMP NOT NULL, "
    "source_file VARCHAR, sha256 VARCHAR NOT NULL, text_sha256 VARCHAR NOT NULL, "
    "kind VARCHAR NOT NULL, size BIGINT NOT NULL, raw BLOB NOT NULL, text VARCHAR NOT NULL, "
    "note VARCHAR, PRIMARY KEY (name, seq))"
)
_CHECK_DDL: Final[str] = (
    "CREATE TABLE IF NOT EXISTS watch_check ("
    "check_id BIGINT PRIMARY KEY, name VARCHAR NOT NULL, checked_at TIMESTAMP NOT NULL, "
    "outcome VARCHAR NOT NULL, seq INTEGER, sha256 VARCHAR, source_file VARCHAR, note VARCHAR)"
)


def ensure_watch_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the two watch tables if they are missing (idempotent)."""
    con.execute(_SNAPSHOT_DDL)
    con.execute(_CHECK_DDL)


def _has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name IN (?, ?)",
        [SNAPSHOT_TABLE, CHECK_TABLE],
    ).fetchone()
    return row is not None and row[0] == 2


def _utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC time from a stored naive-UTC or an aware value."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _naive(value: dt.datetime) -> dt.datetime:
    """The naive-UTC form stored in TIMESTAMP columns."""
    if value.tzinfo is None:
        raise ValueError("times given to the watch must carry a time zone")
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _now(now: dt.datetime | None) -> dt.datetime:
    return _utc(now) if now is not None else dt.datetime.now(dt.UTC)


def iso(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, seconds precision: the form every output uses."""
    return _utc(value).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def validate_name(name: str) -> str:
    """A watched name is an identifier: a letter, then letters, digits, ``_``, ``-`` or ``.``."""
    if not _NAME.match(name):
        raise WatchError(
            Problem(
                f"'{clean_line(name)[:80]}' is not a valid watch name",
                Location(key="NAME"),
                "use a letter followed by letters, digits, '_', '-' or '.', "
                "at most 64 characters, e.g. resolution-policy",
            )
        )
    return name


@dataclass(frozen=True)
class Snapshot:
    """One stored copy of a watched document (without its bytes; see :func:`snapshot_bytes`)."""

    name: str
    seq: int
    taken_at: dt.datetime
    source_file: str | None
    sha256: str
    text_sha256: str
    kind: str
    size: int
    note: str | None
    text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.seq,
            "taken_at": iso(self.taken_at),
            "source_file": self.source_file,
            "sha256": self.sha256,
            "text_sha256": self.text_sha256,
            "kind": self.kind,
            "bytes": self.size,
            "note": self.note,
        }


def _snapshot(row: Sequence[Any]) -> Snapshot:
    name, seq, taken_at, source_file, sha, text_sha, kind, size, note, text = row
    return Snapshot(
        name=str(name),
        seq=int(seq),
        taken_at=_utc(taken_at),
        source_file=source_file,
        sha256=str(sha),
        text_sha256=str(text_sha),
        kind=str(kind),
        size=int(size),
        note=note,
        text=str(text),
    )


@dataclass(frozen=True)
class AddResult:
    """What ``watch add`` found: the outcome, the snapshot stored or matched, the one before."""

    name: str
    outcome: Outcome
    snapshot: Snapshot
    previous: Snapshot | None
    checked_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "checked_at": iso(self.checked_at),
            "snapshot": self.snapshot.to_json(),
            "previous": self.previous.to_json() if self.previous is not None else None,
        }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _next_check_id(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT coalesce(max(check_id), 0) + 1 FROM watch_check").fetchone()
    return int(row[0]) if row else 1


def _latest(con: duckdb.DuckDBPyConnection, name: str) -> Snapshot | None:
    row = con.execute(
        "SELECT name, seq, taken_at, source_file, sha256, text_sha256, kind, size, note, text "
        "FROM watch_snapshot WHERE name = ? "
        "ORDER BY seq DESC LIMIT 1",
        [name],
    ).fetchone()
    return _snapshot(row) if row is not None else None


def add_snapshot(
    con: duckdb.DuckDBPyConnection,
    name: str,
    data: bytes,
    source_file: str | None = None,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> AddResult:
    """Record a saved copy of ``name``'s documentation and say whether it changed.

    ``new`` for the first copy; ``unchanged`` when the bytes equal the latest snapshot's (only a
    check is recorded); ``same_text`` when the bytes differ but the readable text does not
    (stored, nothing to read); ``changed`` otherwise. ``now`` fixes the clock (tests, backfills
    are not supported: snapshots are appended in time order).
    """
    validate_name(name)
    source = clean_line(Path(source_file).name) if source_file else None
    extracted = extract(data, source_file)
    if not extracted.text:
        raise WatchError(
            Problem(
                "the file has no readable text",
                Location(file=source_file),
                "the page may be drawn by JavaScript: save it from the browser after it has "
                "loaded, or copy its text into a .txt file",
            )
        )
    clean_note = clean_line(note) if note else None
    at = _now(now)
    sha, text_sha = _sha256(data), _sha256(extracted.text.encode("utf-8"))
    ensure_watch_schema(con)
    con.execute("BEGIN TRANSACTION")
    try:
        previous = _latest(con, name)
        if previous is not None and at < previous.taken_at:
            raise WatchError(
                Problem(
                    f"the clock is before the latest snapshot of '{name}' "
                    f"({iso(previous.taken_at)})",
                    Location(key="NAME"),
                    "snapshots are added in time order",
                )
            )
        outcome: Outcome
        if previous is None:
            outcome = "new"
        elif previous.sha256 == sha:
            outcome = "unchanged"
        elif previous.text_sha256 == text_sha:
            outcome = "same_text"
        else:
            outcome = "changed"
        if outcome == "unchanged" and previous is not None:
            snapshot = previous
        else:
            seq = previous.seq + 1 if previous is not None else 1
            con.execute(
                "INSERT INTO watch_snapshot (name, seq, taken_at, source_file, sha256, "
                "text_sha256, kind, size, raw, text, note) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    name,
                    seq,
                    _naive(at),
                    source,
                    sha,
                    text_sha,
                    extracted.kind,
                    len(data),
                    data,
                    extracted.text,
                    clean_note,
                ],
            )
            snapshot = Snapshot(
                name, seq, at, source, sha, text_sha, extracted.kind, len(data), clean_note,
                extracted.text,
            )  # fmt: skip
        con.execute(
            "INSERT INTO watch_check (check_id, name, checked_at, outcome, seq, sha256, "
            "source_file, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [_next_check_id(con), name, _naive(at), outcome, snapshot.seq, sha, source, clean_note],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return AddResult(name, outcome, snapshot, previous, at)


def add_file(
    con: duckdb.DuckDBPyConnection,
    name: str,
    path: Path | str,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> AddResult:
    """:func:`add_snapshot` for a file on disk."""
    p = Path(path)
    validate_name(name)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise WatchError(
            Problem(f"cannot read the file: {exc.strerror}", Location(file=str(p)))
        ) from exc
    return add_snapshot(con, name, data, str(p), note=note, now=now)


def names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every watched name, sorted."""
    if not _has_tables(con):
        return []
    rows = con.execute("SELECT DISTINCT name FROM watch_snapshot ORDER BY name").fetchall()
    return [str(r[0]) for r in rows]


def _known(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Raise a clear error, with a near-miss suggestion, for a name not watched."""
    validate_name(name)
    known = names(con)
    if name in known:
        return
    hint = suggest(name, known) or (
        f"watched: {', '.join(known[:10])}" if known else "add one with 'truecount watch add'"
    )
    raise WatchError(Problem(f"nothing is watched under '{name}'", Location(key="NAME"), hint))


def snapshots(con: duckdb.DuckDBPyConnection, name: str) -> list[Snapshot]:
    """All snapshots of ``name``, oldest first."""
    _known(con, name)
    rows = con.execute(
        "SELECT name, seq, taken_at, source_file, sha256, text_sha256, kind, size, note, text "
        "FROM watch_snapshot WHERE name = ? ORDER BY seq",
        [name],
    ).fetchall()
    return [_snapshot(r) for r in rows]


def snapshot_bytes(con: duckdb.DuckDBPyConnection, name: str, seq: int) -> bytes:
    """The exact bytes saved for one snapshot."""
    row = con.execute(
        "SELECT raw FROM watch_snapshot WHERE name = ? AND seq = ?", [name, seq]
    ).fetchone()
    if row is None:
        raise WatchError(Problem(f"'{name}' has no snapshot {seq}", Location(key="NAME")))
    return bytes(row[0])


def _cutoff(selector: str) -> tuple[dt.datetime, bool] | None:
    """A date selector as (instant, inclusive); a bare date means the end of that UTC day."""
    text = selector.strip()
    with contextlib.suppress(ValueError):  # not a bare date: perhaps a date and time
        day = dt.date.fromisoformat(text)
        # the day's last microsecond, inclusive: the same cut as the next day's start,
        # exclusive, and it exists on 9999-12-31 too
        return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC), True
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return (_utc(moment) if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)), True


def select(snaps: Sequence[Snapshot], selector: str, what: str = "--from") -> Snapshot:
    """The snapshot a selector names.

    ``N`` is snapshot number N; ``-1`` the latest, ``-2`` the one before; a date or time
    (ISO 8601, UTC unless an offset is given) the latest snapshot taken by then, a bare date
    meaning the end of that day: the page "as known on" that date.
    """
    if not snaps:  # pragma: no cover - a known name has at least one snapshot
        raise WatchError(Problem("no snapshots", Location(key=what)))
    name = snaps[0].name
    if _INT.match(selector.strip()):
        n = int(selector)
        index = n - 1 if n > 0 else len(snaps) + n
        if n == 0 or not 0 <= index < len(snaps):
            raise WatchError(
                Problem(
                    f"'{name}' has no snapshot {n}",
                    Location(key=what),
                    f"snapshots are numbered 1 to {len(snaps)}; -1 is the latest",
                )
            )
        return snaps[index]
    cut = _cutoff(selector)
    if cut is None:
        raise WatchError(
            Problem(
                f"'{clean_line(selector)[:40]}' is neither a snapshot number nor a date",
                Location(key=what),
                "use e.g. 3, -1, 2025-03-31 or 2025-03-31T12:00:00Z",
            )
        )
    instant, inclusive = cut
    taken = [s for s in snaps if (s.taken_at <= instant if inclusive else s.taken_at < instant)]
    if not taken:
        raise WatchError(
            Problem(
                f"no snapshot of '{name}' was taken by {clean_line(selector)[:40]}",
                Location(key=what),
                f"the first was taken {iso(snaps[0].taken_at)}",
            )
        )
    return taken[-1]


def _before_with_other_text(snaps: Sequence[Snapshot], to: Snapshot) -> Snapshot | None:
    earlier = [s for s in snaps if s.seq < to.seq and s.text_sha256 != to.text_sha256]
    return earlier[-1] if earlier else None


def pair(
    con: duckdb.DuckDBPyConnection,
    name: str,
    from_selector: str | None = None,
    to_selector: str | None = None,
) -> tuple[Snapshot | None, Snapshot]:
    """The two snapshots ``watch diff`` compares.

    By default the latest snapshot and the latest earlier one whose readable text differs;
    with only ``--to``, that snapshot and the latest earlier one with different text; with only
    ``--from``, that snapshot and the latest. ``None`` on the left: nothing to compare with.
    """
    snaps = snapshots(con, name)
    to = select(snaps, to_selector, "--to") if to_selector is not None else snaps[-1]
    if from_selector is None:
        return _before_with_other_text(snaps, to), to
    return select(snaps, from_selector, "--from"), to


@dataclass(frozen=True)
class Check:
    """One entry of a name's log: an ``add`` (with its outcome) or an ``ack``."""

    check_id: int
    name: str
    checked_at: dt.datetime
    outcome: str
    seq: int | None
    sha256: str | None
    source_file: str | None
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "checked_at": iso(self.checked_at),
            "outcome": self.outcome,
            "snapshot": self.seq,
            "sha256": self.sha256,
            "source_file": self.source_file,
            "note": self.note,
        }


def checks(con: duckdb.DuckDBPyConnection, name: str) -> list[Check]:
    """Every add and ack of ``name``, oldest first."""
    _known(con, name)
    rows = con.execute(
        "SELECT check_id, name, checked_at, outcome, seq, sha256, source_file, note "
        "FROM watch_check WHERE name = ? ORDER BY check_id",
        [name],
    ).fetchall()
    return [
        Check(int(r[0]), str(r[1]), _utc(r[2]), str(r[3]), r[4], r[5], r[6], r[7]) for r in rows
    ]


def acknowledge(
    con: duckdb.DuckDBPyConnection,
    name: str,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Mark the latest change of ``name`` as read; False when there was nothing unread."""
    _known(con, name)
    entry = next(e for e in status(con, now=now).entries if e.name == name)
    if not entry.changed:
        return False
    at = _now(now)
    con.execute(
        "INSERT INTO watch_check (check_id, name, checked_at, outcome, seq, sha256, "
        "source_file, note) VALUES (?, ?, ?, 'reviewed', ?, ?, NULL, ?)",
        [
            _next_check_id(con),
            name,
            _naive(at),
            entry.latest.seq,
            entry.latest.sha256,
            clean_line(note) if note else None,
        ],
    )
    return True


@dataclass(frozen=True)
class WatchStatus:
    """Where one watched name stands.

    ``changed`` means the readable text changed at a check after the last ``watch ack``: there
    is something to read. ``stale`` means the last check is more than ``stale_days`` whole days
    old: the page needs saving again.
    """

    name: str
    snapshots: int
    versions: int
    latest: Snapshot
    first_taken: dt.datetime
    last_changed: dt.datetime
    last_checked: dt.datetime
    last_reviewed: dt.datetime | None
    days_since_checked: int
    stale: bool
    changed: bool

    @property
    def state(self) -> str:
        parts = [p for p, on in (("CHANGED", self.changed), ("STALE", self.stale)) if on]
        return "+".join(parts) if parts else "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "changed": self.changed,
            "stale": self.stale,
            "snapshots": self.snapshots,
            "versions": self.versions,
            "latest": self.latest.to_json(),
            "first_taken": iso(self.first_taken),
            "last_changed": iso(self.last_changed),
            "last_checked": iso(self.last_checked),
            "last_reviewed": iso(self.last_reviewed) if self.last_reviewed else None,
            "days_since_checked": self.days_since_checked,
        }


@dataclass(frozen=True)
class StatusReport:
    """Every watched name at one moment; ``attention`` is the quarter-end answer."""

    as_of: dt.datetime
    stale_days: int
    entries: tuple[WatchStatus, ...]

    @property
    def attention(self) -> bool:
        """True when any name has an unread change or is stale: exit code 1."""
        return any(e.changed or e.stale for e in self.entries)

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": iso(self.as_of),
            "stale_days": self.stale_days,
            "attention": self.attention,
            "changed": [e.name for e in self.entries if e.changed],
            "stale": [e.name for e in self.entries if e.stale],
            "watched": [e.to_json() for e in self.entries],
        }


_STATUS_SQL: Final[str] = """
WITH c AS (
    SELECT name,
           max(checked_at) FILTER (WHERE outcome <> 'reviewed') AS last_checked,
           max(checked_at) FILTER (WHERE outcome IN ('new', 'changed')) AS last_changed,
           max(check_id) FILTER (WHERE outcome = 'changed') AS last_change_id,
           max(check_id) FILTER (WHERE outcome = 'reviewed') AS last_review_id,
           max(checked_at) FILTER (WHERE outcome = 'reviewed') AS last_reviewed
    FROM watch_check GROUP BY name
), s AS (
    SELECT name, count(*) AS snapshots, count(DISTINCT text_sha256) AS versions,
           min(taken_at) AS first_taken, max(seq) AS latest_seq
    FROM watch_snapshot GROUP BY name
)
SELECT s.name, s.snapshots, s.versions, s.first_taken, c.last_changed, c.last_checked,
       c.last_reviewed,
       coalesce(c.last_change_id > coalesce(c.last_review_id, 0), false) AS changed,
       l.name, l.seq, l.taken_at, l.source_file, l.sha256, l.text_sha256, l.kind, l.size, l.note,
       l.text
FROM s JOIN c USING (name)
JOIN watch_snapshot l ON l.name = s.name AND l.seq = s.latest_seq
ORDER BY s.name
"""


def status(
    con: duckdb.DuckDBPyConnection,
    stale_days: int = DEFAULT_STALE_DAYS,
    now: dt.datetime | None = None,
) -> StatusReport:
    """Every watched name: snapshots, last change, last check, staleness and unread change.

    ``now`` fixes the clock, so staleness can be tested on fixed dates.
    """
    if stale_days < 0:
        raise WatchError(Problem("--stale-days must be 0 or more", Location(key="--stale-days")))
    at = _now(now)
    if not _has_tables(con):
        return StatusReport(at, stale_days, ())
    entries: list[WatchStatus] = []
    for row in con.execute(_STATUS_SQL).fetchall():
        name, n, versions, first, last_changed, last_checked, last_reviewed, changed = row[:8]
        checked = _utc(last_checked)
        days = (at - checked) // dt.timedelta(days=1)
        entries.append(
            WatchStatus(
                name=str(name),
                snapshots=int(n),
                versions=int(versions),
                latest=_snapshot(row[8:]),
                first_taken=_utc(first),
                last_changed=_utc(last_changed),
                last_checked=checked,
                last_reviewed=_utc(last_reviewed) if last_reviewed is not None else None,
                days_since_checked=int(days),
                stale=days > stale_days,
                changed=bool(changed),
            )
        )
    return StatusReport(at, stale_days, tuple(entries))
