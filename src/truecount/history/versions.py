"""Definition versions kept in the workspace store, each with its hash and the date it took effect.

A contract's outcome definition changes over its life: a condition tightened in version 2, a
window widened in version 3. A past invoice can only be checked against the version that was
in effect then, so every version is stored whole (its original YAML and its canonical text),
identified by the SHA-256 of the canonical text, with the date it took effect and the time it
was recorded. Stored versions are never changed: a new text is a new version.

The rules a new version must pass keep "which version was in effect on day D" a question with
exactly one answer: a name and version number identify one text, one text is stored once, two
versions of a name never take effect on the same day, and a later version takes effect later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Protocol

import duckdb
from sqlglot import exp

from truecount.definition.load import parse_definition
from truecount.definition.model import Definition
from truecount.errors import DefinitionError, InputError, Location, Problem, WorkspaceError
from truecount.yamlsource import read_text


class Workspace(Protocol):
    """What this module needs of a :class:`truecount.workspace.Workspace`: its store.

    A protocol, not an import: the workspace creates the versions table when it opens
    (:func:`ensure_versions_table`), so importing it back here would close a circle
    (DESIGN.md §9). Imports run one way: workspace -> versions.
    """

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the store; callers close it."""
        ...


VERSIONS_TABLE: Final[str] = "definition_versions"

_VERSIONS_DDL: Final[str] = (
    f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} ("
    "name VARCHAR NOT NULL, version INTEGER NOT NULL, sha256 VARCHAR NOT NULL UNIQUE, "
    "effective DATE NOT NULL, canonical_text VARCHAR NOT NULL, yaml_text VARCHAR NOT NULL, "
    "file VARCHAR, recorded_at TIMESTAMP NOT NULL, PRIMARY KEY (name, version))"
)

_COLUMNS: Final[tuple[str, ...]] = (
    "name",
    "version",
    "sha256",
    "effective",
    "canonical_text",
    "yaml_text",
    "file",
    "recorded_at",
)


def ensure_versions_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the versions table if it is missing (fixed text: no user input reaches it)."""
    con.execute(_VERSIONS_DDL)


@dataclass(frozen=True)
class StoredVersion:
    """One stored definition version. ``until`` is the day before the next version's start."""

    name: str
    version: int
    sha256: str
    effective: dt.date
    canonical_text: str
    yaml_text: str
    file: str | None
    recorded_at: dt.datetime
    until: dt.date | None = None

    def definition(self) -> Definition:
        """The definition parsed back from the stored YAML, checked against the stored hash.

        A mismatch means the text no longer means what it meant when stored (the definition
        format changed its defaults, say); counting it under a hash it does not have would
        break the promise that a hash names one count, so it is an error.
        """
        label = f"{VERSIONS_TABLE}:{self.name}@{self.version}"
        d = parse_definition(self.yaml_text, file=label)
        if d.sha256 != self.sha256:
            raise WorkspaceError(
                Problem(
                    f"stored {self.name} v{self.version} now hashes to {d.sha256[:12]}…, "
                    f"not its stored {self.sha256[:12]}…",
                    Location(file=label),
                    "the definition format changed since it was stored; store the text again "
                    "as a new version",
                )
            )
        return d

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "effective": self.effective.isoformat(),
            "until": self.until.isoformat() if self.until is not None else None,
            "recorded_at": self.recorded_at.isoformat(),
            "file": self.file,
        }


def parse_effective(value: str | dt.date) -> dt.date:
    """The day a version takes effect: an ISO date (``2026-03-01``), read as a local date on
    the definition's period clock, like the period keys it is compared with."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(
            Problem(
                f"--effective '{value}' is not a date",
                Location(key="effective"),
                "give the day the version took effect as YYYY-MM-DD, e.g. 2026-03-01",
            )
        ) from None


def _has_table(con: duckdb.DuckDBPyConnection) -> bool:
    query = (
        exp.select(exp.func("COUNT", exp.Star()))
        .from_("duckdb_tables()")
        .where(exp.EQ(this=exp.column("table_name"), expression=exp.Literal.string(VERSIONS_TABLE)))
    )
    rows = con.execute(query.sql("duckdb")).fetchall()
    return bool(rows and rows[0][0])


def read_versions(con: duckdb.DuckDBPyConnection, name: str | None = None) -> list[StoredVersion]:
    """Stored versions (of ``name``, or all) by name and effective date, with ``until`` filled."""
    if not _has_table(con):
        return []
    query = exp.select(*_COLUMNS).from_(VERSIONS_TABLE)
    if name is not None:
        query = query.where(exp.EQ(this=exp.column("name"), expression=exp.Literal.string(name)))
    query = query.order_by("name", "effective", "version")
    rows = con.execute(query.sql("duckdb")).fetchall()
    stored = [
        StoredVersion(
            name=str(r[0]),
            version=int(r[1]),
            sha256=str(r[2]),
            effective=r[3],
            canonical_text=str(r[4]),
            yaml_text=str(r[5]),
            file=None if r[6] is None else str(r[6]),
            recorded_at=r[7],
        )
        for r in rows
    ]
    return _with_until(stored)


def _with_until(stored: Sequence[StoredVersion]) -> list[StoredVersion]:
    out: list[StoredVersion] = []
    for i, v in enumerate(stored):
        nxt = stored[i + 1] if i + 1 < len(stored) else None
        until = None
        if nxt is not None and nxt.name == v.name:
            until = nxt.effective - dt.timedelta(days=1)
        out.append(replace(v, until=until))
    return out


def list_versions(workspace: Workspace, name: str | None = None) -> list[StoredVersion]:
    """Stored versions of a workspace (an older store without the table has none)."""
    with workspace.connect(read_only=True) as con:
        return read_versions(con, name)


def add_version(
    workspace: Workspace,
    path: str | Path,
    effective: str | dt.date,
    now: dt.datetime | None = None,
) -> tuple[StoredVersion, list[StoredVersion]]:
    """Store the definition at ``path`` as taking effect on ``effective``.

    Returns the stored version and every stored version of its name, in effective order.
    Refused, with the reason:
    a second text under a stored name and version; a text that is already stored; a day on
    which another version of the name already takes effect; a day out of version order.
    """
    p = Path(path)
    text = read_text(p, DefinitionError)
    d = parse_definition(text, file=str(p))
    day = parse_effective(effective)
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    with workspace.connect() as con:
        ensure_versions_table(con)
        existing = read_versions(con, d.name)
        _check_new(d, day, existing, str(p), _all_hashes(con, d.sha256))
        values = [d.name, d.version, d.sha256, day, d.canonical_text, text, str(p), stamp]
        insert = exp.insert(
            exp.select(*[exp.Placeholder() for _ in values]),
            VERSIONS_TABLE,
            columns=list(_COLUMNS),
        )
        try:
            con.execute(insert.sql("duckdb"), values)
        except duckdb.ConstraintException as exc:  # another writer got there first
            raise WorkspaceError(
                Problem(f"cannot store {d.name} v{d.version}: {exc}", Location(file=str(p)))
            ) from None
        stored = read_versions(con, d.name)
        return next(v for v in stored if v.sha256 == d.sha256), stored


def _all_hashes(con: duckdb.DuckDBPyConnection, sha256: str) -> list[StoredVersion]:
    """Stored versions (of any name) with this hash: a text is stored once."""
    return [v for v in read_versions(con) if v.sha256 == sha256]


def _check_new(
    d: Definition,
    day: dt.date,
    existing: Sequence[StoredVersion],
    file: str,
    same_hash: Sequence[StoredVersion],
) -> None:
    where = Location(file=file)
    if same_hash:
        v = same_hash[0]
        raise WorkspaceError(
            Problem(
                f"this text is already stored as {v.name} v{v.version} "
                f"(sha256 {v.sha256[:12]}…, effective {v.effective})",
                where,
                "a stored version is never changed; to record a new effective date, "
                "store a new version",
            )
        )
    for v in existing:
        if v.version == d.version:
            raise WorkspaceError(
                Problem(
                    f"{d.name} v{d.version} is already stored with a different text "
                    f"(sha256 {v.sha256[:12]}…, this one {d.sha256[:12]}…)",
                    Location(file=file, key="version"),
                    f"give the changed definition a new version number, e.g. version: "
                    f"{max(x.version for x in existing) + 1}",
                )
            )
    for v in existing:
        if v.effective == day:
            raise WorkspaceError(
                Problem(
                    f"{d.name} v{v.version} already takes effect on {day}",
                    where,
                    "two versions cannot start on the same day; pick the day this one started",
                )
            )
    for v in existing:
        if (v.version < d.version) != (v.effective < day):
            order = "before" if day < v.effective else "after"
            raise WorkspaceError(
                Problem(
                    f"{d.name} v{d.version} would take effect on {day}, {order} "
                    f"v{v.version} ({v.effective})",
                    where,
                    "effective dates must follow version numbers: a later version takes "
                    "effect later",
                )
            )
