"""Vendor adapters: platform exports in, canonical events out (DESIGN §5, docs/sources.md).

``truecount ingest --source NAME FILE...`` goes through :func:`ingest_source`: every file is
recognised (or refused, naming the vendor it looks like), the kinds of file the export needs
together are checked, and each file is staged by its adapter and loaded with the same
quarantine, de-duplication and log as a mapped file. The options an export forces (which
author is the AI, what a binary rating means on a 1-5 scale) are recorded with every file in
the ingest log, so reports can say which choices their numbers rest on.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import duckdb

from truecount.adapters import airbyte
from truecount.adapters.base import (
    RECORDS_TABLE,
    STORE,
    Adapter,
    AdapterOptions,
    FileKind,
    Sniff,
    read_csv_records,
    read_records,
    sniff,
    stage_file,
)
from truecount.errors import InputError, Location, Problem, suggest
from truecount.ingest.canonical import INGEST_LOG_TABLE
from truecount.ingest.load import ProgressCallback, StagedFile, load_staged_into
from truecount.ingest.plan import PROBLEM
from truecount.ingest.report import IngestReport
from truecount.ingest.source import FileFormat

#: Source name -> module defining ``ADAPTER``. Imported on first use.
_MODULES: Final[dict[str, str]] = {
    "zendesk": "truecount.adapters.zendesk",
    "intercom": "truecount.adapters.intercom",
    "salesforce": "truecount.adapters.salesforce",
    "servicenow": "truecount.adapters.servicenow",
}

#: Prefix of the ingest-log label of a file read by an adapter.
LOG_PREFIX: Final[str] = "source "


def source_names() -> list[str]:
    return [name for name in _MODULES if _module(name) is not None]


def get_adapter(name: str) -> Adapter:
    """The adapter called ``name``; a clear error (with the nearest name) otherwise."""
    adapter = _module(name) if name in _MODULES else None
    if adapter is None:
        names = source_names()
        raise InputError(
            Problem(
                f"unknown source '{name}'",
                hint=suggest(name, names) or f"sources: {', '.join(names)}",
            )
        )
    return adapter


def _module(name: str) -> Adapter | None:
    try:
        module = importlib.import_module(_MODULES[name])
    except ModuleNotFoundError as exc:
        if exc.name == _MODULES[name]:
            return None
        raise
    adapter = getattr(module, "ADAPTER", None)
    return adapter if isinstance(adapter, Adapter) else None


@dataclass(frozen=True)
class RecognizedFile:
    """One file (or one Airbyte stream of a file) and the kind its records are read as."""

    path: Path
    kind: FileKind
    sniff: Sniff
    #: For an Airbyte file: its envelope, and the stream this part reads (None: the part that
    #: quarantines the records of streams this source does not read).
    airbyte: airbyte.Shape | None = None
    stream: str | None = None
    file_stream: str | None = None
    #: Protocol messages in the file that are not records (Airbyte state and log lines).
    skipped: int = 0

    @property
    def part(self) -> str | None:
        """How the ingest log names this part of a multi-stream file."""
        if self.airbyte is None:
            return None
        return self.stream or "other-streams"

    @property
    def reads_records(self) -> bool:
        """False for the part that only quarantines other streams' records."""
        return self.airbyte is None or self.stream is not None


def recognize_files(
    con: duckdb.DuckDBPyConnection, adapter: Adapter, files: Sequence[Path]
) -> list[RecognizedFile]:
    """The kind of every file, or one error listing every file that is not this vendor's."""
    found: list[RecognizedFile] = []
    problems: list[Problem] = []
    for path in files:
        seen = sniff(con, path)
        if not seen.keys and path.is_file() and path.stat().st_size == 0:
            problems.append(
                Problem(
                    "empty file: cannot tell which export it is",
                    Location(file=str(path)),
                    hint="an export with no records still has a header or a page object",
                )
            )
            continue
        shape = airbyte.shape_of(seen.keys, seen.format)
        if shape is not None:
            parts = _airbyte_parts(con, adapter, seen, shape)
            if isinstance(parts, Problem):
                problems.append(parts)
            else:
                found.extend(parts)
            continue
        kind = adapter.recognize(seen)
        if kind is None:
            problems.append(_not_this_vendor(adapter, seen))
            continue
        found.append(RecognizedFile(path, adapter.kinds[kind], seen))
    if problems:
        raise InputError(problems)
    return found


def _airbyte_parts(
    con: duckdb.DuckDBPyConnection, adapter: Adapter, seen: Sniff, shape: airbyte.Shape
) -> list[RecognizedFile] | Problem:
    """An Airbyte file as one part per stream this adapter reads, plus one part for the
    records of every other stream (quarantined with the reason), or why it cannot be read."""
    read = adapter.airbyte_streams
    file_stream = None
    if shape in ("raw", "typed"):
        file_stream = airbyte.stream_from_name(seen.path, read)
        if file_stream is None:
            known = _airbyte_owner(seen.path, adapter)
            return Problem(
                f"an Airbyte {shape} table, but its name does not say which stream it holds",
                Location(file=str(seen.path)),
                hint=known
                or f"name the file after its stream (e.g. {sorted(read)[0] if read else 'x'}"
                f".jsonl) or put it in a folder of that name; --source {adapter.name} reads "
                f"the streams {', '.join(sorted(read)) or '(none)'}",
            )
    skipped = airbyte.unwrap(con, seen.path, seen.format, shape, file_stream)
    counts = airbyte.streams_in(con)
    wanted = sorted(s for s in counts if s is not None and s in read)
    if not wanted:
        named = ", ".join(sorted(s for s in counts if s is not None)) or "(no records)"
        others = [
            f"--source {name}"
            for name in source_names()
            if name != adapter.name and set(counts) & set(get_adapter(name).airbyte_streams)
        ]
        return Problem(
            f"an Airbyte export whose streams ({named}) --source {adapter.name} does not read",
            Location(file=str(seen.path)),
            hint=f"it looks like {' or '.join(others)}"
            if others
            else f"--source {adapter.name} reads the streams {', '.join(sorted(read))}",
        )
    parts = [
        RecognizedFile(
            seen.path,
            adapter.kinds[read[s]],
            seen,
            shape,
            s,
            file_stream,
            skipped if i == 0 else 0,
        )
        for i, s in enumerate(wanted)
    ]
    if any(s is None or s not in read for s in counts):
        # the records of other streams are quarantined by the first kind's stage: its SQL
        # sees no good record, and every line comes back with its reason
        parts.append(RecognizedFile(seen.path, parts[0].kind, seen, shape, None, file_stream))
    return parts


def _airbyte_owner(path: Path, adapter: Adapter) -> str | None:
    """For a one-stream file named after another source's stream: which source."""
    for name in source_names():
        if name != adapter.name and airbyte.stream_from_name(
            path, get_adapter(name).airbyte_streams
        ):
            return f"it looks like --source {name}"
    return None


def _not_this_vendor(adapter: Adapter, seen: Sniff) -> Problem:
    others = [
        f"--source {name} ({other.kinds[kind].description})"
        for name in source_names()
        if name != adapter.name
        for other in [get_adapter(name)]
        for kind in [other.recognize(seen)]
        if kind is not None
    ]
    kinds = "; ".join(f"{k.name}: {k.description}" for k in adapter.kinds.values())
    hint = (
        f"it looks like {' or '.join(others)}"
        if others
        else f"{adapter.title} files read here are — {kinds}"
    )
    what = "columns" if seen.format is FileFormat.csv else "top-level keys"
    return Problem(
        f"not {_article(adapter.title)} {adapter.title} export this version of truecount "
        f"knows: its {what} are {seen.shown_keys() or '(none)'}",
        Location(file=str(seen.path)),
        hint=hint,
    )


def check_needs(
    con: duckdb.DuckDBPyConnection, adapter: Adapter, files: Sequence[RecognizedFile]
) -> None:
    """Refuse a partial multi-file export: a kind whose companion kind is neither in this
    ingest nor ingested before would give a wrong picture (audits without tickets cannot say
    which tickets the AI handled)."""
    given = {f.kind.name for f in files if f.reads_records}
    before = {
        str(r[0])
        for r in con.execute(
            f"SELECT DISTINCT split_part(split_part(mapping, ' ', 2), ':', 2) "  # noqa: S608
            f"FROM {INGEST_LOG_TABLE} WHERE starts_with(mapping, $p)",
            {"p": f"{LOG_PREFIX}{adapter.name}:"},
        ).fetchall()
    }
    problems = [
        Problem(
            f"the {f.kind.name} file needs the {adapter.title} {need} export as well "
            f"({adapter.kinds[need].description}), and it is neither in this ingest nor "
            "in the workspace",
            Location(file=str(f.path)),
            hint=f"add the {need} file to this ingest, or pass --partial to load it anyway",
        )
        for f in files
        if f.reads_records
        for need in f.kind.needs
        if need not in given and need not in before
    ]
    if problems:
        raise InputError(problems)


def load_order(adapter: Adapter, files: Sequence[RecognizedFile]) -> list[RecognizedFile]:
    """The files in loading order: a kind after the kinds it reads from the store
    (:attr:`FileKind.reads`), otherwise in the order given, so the order of a command line
    never changes what an ingest stores."""

    def depth(kind: str, seen: frozenset[str] = frozenset()) -> int:
        reads = [k for k in adapter.kinds[kind].reads if k in adapter.kinds and k not in seen]
        return max((1 + depth(k, seen | {kind}) for k in reads), default=0)

    return sorted(files, key=lambda f: depth(f.kind.name))


def choices_label(adapter: Adapter, kind: str, options: AdapterOptions) -> str:
    """The ingest-log label: which source and kind, and every option in force."""
    return (
        f"{LOG_PREFIX}{adapter.name}:{kind} options "
        f"{json.dumps(options.described(), sort_keys=True, separators=(',', ':'))}"
    )


def ingest_source(
    con: duckdb.DuckDBPyConnection,
    source: str,
    files: Sequence[Path | str],
    options: Mapping[str, str] | None = None,
    partial: bool = False,
    table: str = "events",
    progress: ProgressCallback | None = None,
    again: bool = False,
) -> IngestReport:
    """Read ``files`` exported from ``source`` into ``table`` of ``con``; see the module doc."""
    from truecount.workspace import ensure_schema  # the workspace module imports ingest

    adapter = get_adapter(source)
    chosen = adapter.parse_options(options or {})
    ensure_schema(con)
    recognized = recognize_files(con, adapter, [Path(f) for f in files])
    if not partial:
        check_needs(con, adapter, recognized)
    recognized = load_order(adapter, recognized)

    def read(c: duckdb.DuckDBPyConnection, found: RecognizedFile) -> None:
        seen = sniff(c, found.path)
        if found.airbyte is not None:
            airbyte.unwrap(c, found.path, seen.format, found.airbyte, found.file_stream)
            airbyte.keep_stream(c, found.stream, adapter.airbyte_streams, adapter.name)
            read_records(c, found.path, FileFormat.jsonl, None, by_line=True)
        elif seen.format in (FileFormat.csv, FileFormat.parquet):
            read_csv_records(c, found.path)
        else:
            read_records(c, found.path, seen.format, found.kind.array_key)

    def stager(found: RecognizedFile) -> StagedFile:
        def stage(c: duckdb.DuckDBPyConnection, table_name: str) -> None:
            # table: checked to be a plain identifier by load_staged_into before any stage
            c.execute(f'CREATE OR REPLACE TEMP VIEW {STORE} AS SELECT * FROM "{table}"')  # noqa: S608
            read(c, found)
            stage_file(c, adapter, found.kind.name, chosen, table_name, found.path.name)

        label = choices_label(adapter, found.kind.name, chosen)
        if found.airbyte is not None:
            label += f" airbyte {json.dumps(_airbyte_label(found), sort_keys=True)}"
        return StagedFile(path=found.path, label=label, stage=stage, part=found.part)

    contexts = gather_context(con, adapter, chosen, recognized, read)
    try:
        return load_staged_into(
            con,
            [stager(f) for f in recognized],
            table=table,
            progress=progress,
            again=again,
            label=f"{LOG_PREFIX}{adapter.name} options "
            f"{json.dumps(chosen.described(), sort_keys=True)}",
        )
    finally:
        for name in contexts:
            con.execute(f"DROP TABLE IF EXISTS {name}")


def gather_context(
    con: duckdb.DuckDBPyConnection,
    adapter: Adapter,
    options: AdapterOptions,
    files: Sequence[RecognizedFile],
    read: Callable[[duckdb.DuckDBPyConnection, RecognizedFile], None],
) -> list[str]:
    """Run each kind's :meth:`Adapter.context_sql` over all its files of this ingest, before
    anything is staged, so what a file means never depends on the order of the files; return
    the temporary tables made. Each file is read once more for it: the price of order
    independence, paid only by kinds that ask for it."""
    made: list[str] = []
    for found in files:
        context = adapter.context_sql(found.kind.name, options)
        if context is None or not found.reads_records:
            continue
        name, sql, params = context
        if not name.isidentifier() or not name.startswith("__tc_context"):
            raise ValueError(f"context table must be named __tc_context..., got {name!r}")
        read(con, found)
        con.execute(f"DELETE FROM {RECORDS_TABLE} WHERE {PROBLEM} IS NOT NULL")  # noqa: S608
        if name in made:
            con.execute(f"INSERT INTO {name} {sql}", params)
        else:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", params)
            made.append(name)
    return made


__all__ = [
    "Adapter",
    "AdapterOptions",
    "FileKind",
    "Sniff",
    "get_adapter",
    "ingest_source",
    "source_names",
]


def _airbyte_label(found: RecognizedFile) -> dict[str, object]:
    return {
        "envelope": found.airbyte,
        "stream": found.stream,
        "skipped_messages": found.skipped,
    }


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
