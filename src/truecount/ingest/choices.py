"""The choices an export forced at ingest, as recorded in the ingest log, for every report.

A vendor adapter's options (which author is the AI, what a binary rating means on a 1-5 scale)
change what the events say, so every number computed from those events depends on them. The
ingest log keeps, per file, the source, the kind of file and the options in force
(``source zendesk:audits options {...}``); this module reads them back so that ``count``,
``check`` and ``reconcile`` can print the choices their numbers rest on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import duckdb

from truecount.ingest.canonical import INGEST_LOG_TABLE

#: How an adapter's ingest-log label starts; the label is written by truecount.adapters.
SOURCE_PREFIX: Final[str] = "source "
_OPTIONS: Final[str] = " options "


@dataclass(frozen=True)
class Choice:
    """One source read with one set of options, and the kinds of file read that way."""

    source: str
    options: dict[str, Any]
    kinds: tuple[str, ...]
    files: int

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "options": self.options,
            "kinds": list(self.kinds),
            "files": self.files,
        }

    def describe(self) -> str:
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(self.options.items()))
        return f"{self.source} ({', '.join(self.kinds)}): {shown or 'defaults'}"


def parse_label(label: str) -> tuple[str, str, dict[str, Any]] | None:
    """``source NAME:KIND options {json}`` -> (name, kind, options); None for other labels."""
    if not label.startswith(SOURCE_PREFIX) or _OPTIONS not in label:
        return None
    head, _, options = label[len(SOURCE_PREFIX) :].partition(_OPTIONS)
    name, _, kind = head.partition(":")
    try:
        # the options object may be followed by more about the file (an ETL envelope)
        parsed, _ = json.JSONDecoder().raw_decode(options)
    except ValueError:
        return None
    return (name, kind, parsed) if isinstance(parsed, dict) else None


def recorded_choices(con: duckdb.DuckDBPyConnection) -> list[Choice]:
    """The adapter choices behind the events of a store (empty without an ingest log)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [INGEST_LOG_TABLE]
    ).fetchall()
    if not exists or not exists[0][0]:
        return []
    rows = con.execute(
        f"SELECT mapping, count(*) FROM {INGEST_LOG_TABLE} "  # noqa: S608 - fixed name
        "WHERE starts_with(mapping, ?) AND loaded > 0 GROUP BY mapping ORDER BY mapping",
        [SOURCE_PREFIX],
    ).fetchall()
    grouped: dict[tuple[str, str], tuple[dict[str, Any], list[str], int]] = {}
    for label, files in rows:
        parsed = parse_label(str(label))
        if parsed is None:
            continue
        name, kind, options = parsed
        key = (name, json.dumps(options, sort_keys=True))
        _, kinds, n = grouped.setdefault(key, (options, [], 0))
        kinds.append(kind)
        grouped[key] = (options, kinds, n + int(files))
    return [
        Choice(source=name, options=options, kinds=tuple(sorted(kinds)), files=n)
        for (name, _), (options, kinds, n) in sorted(grouped.items())
    ]
