"""One reconciliation, computed the way a pack records it: the code ``evidence`` and ``verify``
share, so that verifying is re-running, not re-reading.

:func:`run` counts the definition over the events, reconciles the invoice, and writes the
result files of a pack (``query.sql``, ``reconciliation.json``, ``entities.csv``,
``verdicts.csv``) into a folder; it returns the Merkle roots over the covered events and over
the rows of the two CSV files, and the SHA-256 of the raw files the events came from.

**Covered events.** The periods a pack covers run from the invoice's first billed period to its
last (:func:`covered_periods`). The covered entities are
those with a verdict in a covered period or a line on the invoice; the covered events are every
event of a covered entity visible at the as-of time (``ts <= as_of``), whatever its own date —
a reopen in the next month can decide a verdict of this one. ``verdicts.csv`` holds every
verdict of a covered entity.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp

from truecount.billing.dispute import DISPUTED, letter_details, write_letter
from truecount.billing.invoice import load_invoice_into
from truecount.billing.reconcile import (
    CELLS_TABLE,
    ENTITIES_TABLE,
    LINE_ID_SQL,
    Reconciliation,
    reconcile_in,
)
from truecount.billing.terms import LetterDetails, Terms, parse_terms
from truecount.db import MEMORY_ENV
from truecount.definition.load import parse_definition
from truecount.definition.model import Definition
from truecount.engine.run import VERDICTS_TABLE, count_source
from truecount.engine.source import EventsInput, open_events
from truecount.errors import InputError, Location, Problem
from truecount.ingest.canonical import EVENTS_TABLE, INGEST_LOG_TABLE
from truecount.workspace import Workspace

from . import merkle
from .blocks import (
    BLOCK_ENTITIES,
    BLOCK_ORDER,
    CSV_BLOCK_FORMAT,
    EVENT_BLOCK_FORMAT,
    EventBlocks,
    csv_block_hashes,
    csv_row_starts,
    event_block_leaves,
    sort_parts,
    sorted_events_sql,
)
from .canonical import canonical_json, file_sha256
from .covered import (
    COVERED_TABLE,
    EntityLeaves,
    Tree,
    covered_events,
    covered_where,
    insertion_point,
    neighbours,
)
from .records import (
    ENTITY_LEAF_FORMAT,
    EVENT_LEAF_FORMATS,
    ROW_LEAF_FORMAT,
    cell_text,
)
from .text_trees import event_tree as text_event_tree
from .text_trees import text_table, write_csv

QUERY_FILE: Final[str] = "query.sql"
RECONCILIATION_FILE: Final[str] = "reconciliation.json"
ENTITIES_FILE: Final[str] = "entities.csv"
VERDICTS_FILE: Final[str] = "verdicts.csv"
INVOICE_TABLE: Final[str] = "invoice"

#: Columns of entities.csv, in order (the dispute pack's, with line ids sorted by id).
ENTITY_COLUMNS: Final[tuple[str, ...]] = (
    "entity_id", "cell", "disputed", "reason", "lines", "line_ids", "billed_period",
    "billed_amount", "buyer_status", "buyer_period", "anchor_ts",
)  # fmt: skip

#: DuckDB's budget for a pack (or its replay) unless TRUECOUNT_MEMORY_LIMIT says otherwise:
#: below the count's default, because the verb's process also holds the interpreter, the
#: Arrow batches of leaf hashes and the CSV writer's buffers on top of DuckDB's budget, and
#: the whole must stay under 2 GB at 10M tickets (docs/benchmark.md, *Evidence at 10M*).
EVIDENCE_MEMORY_LIMIT: Final[str] = "1.5GB"
#: DuckDB's budget while the event tree is built (unless TRUECOUNT_MEMORY_LIMIT is set): its
#: sort spills either way at 10M tickets, and the process also holds the Arrow batches being
#: cut and hashed (measured at 10M: a 1,965 MB peak with 1.5 GB here, where the rest of the
#: verb peaks at about 1.89 GB).
EVENT_TREE_MEMORY_LIMIT: Final[str] = "1.3GB"

#: Told the name of each phase of :func:`run` as it starts, for a progress display (the CLI's
#: spinner): at 10M tickets a pack takes over a minute, in phases of 5 to 25 s. Set around a
#: call of ``build_pack``, ``verify_pack`` or ``make_proof``; unset, nobody is told.
PHASES: ContextVar[Callable[[str], None] | None] = ContextVar("truecount_phases", default=None)

_COVERED: Final[str] = COVERED_TABLE
_PERIODS: Final[str] = "_ev_periods"
_VERDICT_ROWS: Final[str] = "_ev_verdict_rows"
_ENTITY_ROWS: Final[str] = "_ev_entity_rows"
_LINE_LISTS: Final[str] = "_ev_line_lists"


@dataclass(frozen=True)
class FileDigest:
    """A raw input file: its role (events or invoice), name (no folders) and SHA-256."""

    role: str
    name: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "name": self.name, "sha256": self.sha256}


@dataclass(frozen=True)
class RunInputs:
    """Everything a reconciliation depends on; texts, so a pack can carry them byte for byte."""

    definition_text: str
    events: EventsInput
    invoice: tuple[Path, ...]
    terms_text: str | None = None
    as_of: dt.datetime | str | None = None
    definition_file: str = "definition.yaml"
    terms_file: str = "terms.yaml"
    #: DuckDB worker threads, and worker processes for the trees (None: DuckDB's default,
    #: and one worker per core). The results must not depend on it.
    threads: int | None = None
    #: Letter details over the terms' ``letter:`` section; a letter is written (and signed)
    #: when these or the terms name anyone or anything (None: never, as on a replay).
    letter: LetterDetails | None = None
    #: The event tree's leaf format: a leaf per 64 entities (pack format 4), one per entity
    #: (pack format 3), or one per event (``truecount.event.v1``, packs of formats 1 and 2);
    #: a replay rebuilds the tree its pack names.
    event_leaf: str = EVENT_BLOCK_FORMAT
    #: The CSV trees' leaf format: a leaf per 64 rows of the file (pack format 4) or one per
    #: row (``truecount.csv-row.v1``, packs of formats 1 to 3).
    row_leaf: str = CSV_BLOCK_FORMAT


@dataclass
class RunResult:
    """What :func:`run` computed and wrote."""

    definition: Definition
    terms: Terms | None
    as_of: dt.datetime
    sql: str
    recon: Reconciliation
    periods: list[str]
    events: Tree
    event_entities: int
    verdicts: Tree
    entities: Tree
    files: list[FileDigest]
    #: 'files' when the event files were hashed here, 'workspace' when the digests come from
    #: the workspace's ingest log.
    files_basis: str
    #: The header rows of verdicts.csv and entities.csv (the column names a statement signs).
    verdict_columns: list[str] = field(default_factory=list)
    entity_columns: list[str] = field(default_factory=list)
    #: Filled when an entity to prove was asked for (see :func:`run`).
    proof: EntityLeaves | None = None
    #: The data rows of verdicts.csv and entities.csv (the leaves are blocks of them in
    #: pack format 4, so the trees' sizes no longer count them).
    verdict_rows: int = 0
    entity_rows: int = 0
    #: The covered events (pack format 4 counts them as it cuts the blocks; 0 otherwise).
    event_count: int = 0


def _event_files(
    events: EventsInput, con: duckdb.DuckDBPyConnection
) -> tuple[list[FileDigest], str]:
    if isinstance(events, Workspace):
        rows = con.execute(
            f"SELECT DISTINCT file, sha256 FROM {INGEST_LOG_TABLE} WHERE sha256 IS NOT NULL"  # noqa: S608
        ).fetchall()
        found = {FileDigest("events", Path(str(f)).name, str(s)) for f, s in rows}
        return sorted(found, key=lambda d: (d.name, d.sha256)), "workspace"
    paths = [events] if isinstance(events, str | Path) else list(events)
    digests = {FileDigest("events", Path(p).name, file_sha256(p)) for p in paths}
    return sorted(digests, key=lambda d: (d.name, d.sha256)), "files"


def _verdict_rows(con: duckdb.DuckDBPyConnection) -> tuple[exp.Select, list[exp.Ordered]]:
    """verdicts.csv: the cells of every verdict of a covered entity, and the rows' order."""
    described = con.execute(f"DESCRIBE {VERDICTS_TABLE}").fetchall()
    cols = [
        exp.alias_(
            cell_text(exp.column(exp.to_identifier(str(r[0]), quoted=True), "v"), str(r[1])),
            exp.to_identifier(str(r[0]), quoted=True),
        )
        for r in described
    ]
    select = (
        exp.select(*cols)
        .from_(exp.to_table(VERDICTS_TABLE).as_("v"))
        .where(
            exp.In(
                this=exp.column("entity_id", "v"),
                query=exp.select("entity_id").from_(_COVERED).subquery(),
            )
        )
    )
    order = [
        exp.Ordered(this=exp.column(c, "v"), nulls_first=False)
        for c in ("entity_id", "anchor_ts", "anchor_event_id", "period", "status")
    ]
    return select, order


def _entity_rows(con: duckdb.DuckDBPyConnection) -> tuple[exp.Select, list[exp.Ordered]]:
    """entities.csv: the cells of every entity of the reconciliation, and the rows' order."""
    # An entity's line ids (LINE_ID_SQL) are sorted and joined by ';' (VARCHAR compares
    # byte-wise); an entity whose lines have no id keeps NULL. Almost every entity has one
    # line, whose id is the whole cell and comes with the cells (LINE_ID_COLUMNS, out of the
    # grouping reconcile does anyway); only the entities with more have their lines read
    # again, into a small table the cells are joined with.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_LINE_LISTS} AS "  # noqa: S608 - fixed names
        f"SELECT entity_id, array_to_string(list_sort(list(lid)), ';') AS joined "
        f"FROM (SELECT entity_id, {LINE_ID_SQL} AS lid FROM _tc_lines) "
        f"WHERE lid IS NOT NULL AND entity_id IN "
        f"(SELECT entity_id FROM {CELLS_TABLE} WHERE id_lines > 1) GROUP BY entity_id"
    )
    several = int(con.execute(f"SELECT count(*) FROM {_LINE_LISTS}").fetchall()[0][0])  # noqa: S608
    line_ids = sqlglot.parse_one(
        "CASE WHEN c.id_lines = 1 THEN c.first_line_id "
        + ("WHEN c.id_lines > 1 THEN m.joined " if several else "")
        + "END",
        dialect="duckdb",
    )
    types = {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE {CELLS_TABLE}").fetchall()}

    def col(name: str) -> exp.Expr:
        return cell_text(exp.column(name, "c"), types.get(name, "VARCHAR"))

    disputed = exp.In(
        this=exp.column("cell", "c"), expressions=[exp.Literal.string(x) for x in DISPUTED]
    )
    lines_count = exp.cast(
        exp.Coalesce(this=exp.column("lines", "c"), expressions=[exp.Literal.number(0)]),
        exp.DataType.build("VARCHAR"),
    )
    select = exp.select(
        exp.alias_(col("entity_id"), "entity_id"),
        exp.alias_(col("cell"), "cell"),
        exp.alias_(cell_text(disputed, "BOOLEAN"), "disputed"),
        exp.alias_(col("reason"), "reason"),
        exp.alias_(lines_count, "lines"),
        exp.alias_(cell_text(line_ids, "VARCHAR"), "line_ids"),
        *[
            exp.alias_(col(name), name)
            for name in ("billed_period", "billed_amount", "buyer_status", "buyer_period")
        ],
        exp.alias_(col("anchor_ts"), "anchor_ts"),
    ).from_(exp.to_table(CELLS_TABLE).as_("c"))
    if several:
        select = select.join(
            exp.to_table(_LINE_LISTS).as_("m"),
            on=exp.EQ(this=exp.column("entity_id", "m"), expression=exp.column("entity_id", "c")),
            join_type="left",
        )
    order = [exp.Ordered(this=exp.column("entity_id", "c"), nulls_first=False)]
    return select, order


def _csv_blocks(
    con: duckdb.DuckDBPyConnection, select: exp.Select, order: list[exp.Ordered], path: Path
) -> tuple[list[str], Tree, int]:
    """Write the rows in order and return the header, the block tree (pack format 4) and
    the number of data rows.

    DuckDB writes the file straight from the sorted query (nothing is stored first: an
    ordered COPY keeps its order, as every truecount connection preserves insertion order),
    and the tree is then cut from the file's own bytes (:mod:`.blocks`).
    """
    rel = con.sql(select.order_by(*order).sql("duckdb"))
    columns = list(rel.columns)
    rel.write_csv(str(path), header=True)
    starts = csv_row_starts(path)
    hashes = csv_block_hashes(path, starts)
    return columns, Tree(merkle.root(hashes).hex(), int(hashes.shape[0])), len(starts) - 1


def covered_periods(recon: Reconciliation) -> list[str]:
    """The periods a pack covers: the invoice's span, from its first billed period to its last.

    That is the span in which reconcile looks for counted entities the vendor never billed. A
    reconciliation may show a period outside it — the anchor period of an entity billed in the
    wrong month — but that entity is covered through its invoice line anyway.
    """
    keys = [p.period for p in recon.periods if p.period != "-"]
    billed = [p.period for p in recon.periods if p.period != "-" and p.vendor_lines > 0]
    if not billed:
        return keys
    return [k for k in keys if billed[0] <= k <= billed[-1]]


def _covered(con: duckdb.DuckDBPyConnection, periods: list[str]) -> None:
    con.register(_PERIODS, pa.table({"period": pa.array(periods, pa.string())}))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_COVERED} AS "  # noqa: S608 - fixed names
        f"SELECT DISTINCT entity_id FROM {VERDICTS_TABLE} "
        f"WHERE period IN (SELECT period FROM {_PERIODS}) "
        "UNION SELECT entity_id FROM _tc_lines"
    )


def _block_event_tree(
    con: duckdb.DuckDBPyConnection, as_of: dt.datetime, prove: str | None
) -> tuple[Tree, int, int, EntityLeaves | None]:
    """The event tree of pack format 4: a leaf per 64 covered entities (:mod:`.blocks`).

    Returns the tree, the number of entities and of events, and with ``prove`` the blocks
    holding the entity and the entities just before and after it (or the two around where it
    would sort), with their audit paths and events.
    """
    blocks = EventBlocks(keep_ids=prove is not None)
    select = sorted_events_sql(covered_where(as_of), EVENTS_TABLE)
    selects = sort_parts(con, select, _COVERED)
    parts = [h for h in event_block_leaves(con, selects, blocks) if h.shape[0]]
    hashes = np.concatenate(parts) if parts else merkle.as_hashes(b"")
    size = int(hashes.shape[0])
    if prove is None:
        return Tree(merkle.root(hashes).hex(), size), blocks.entities, blocks.events, None
    ids = blocks.entity_ids()
    mine = [int(i) for i in pc.indices_nonzero(pc.equal(ids, pa.scalar(prove, pa.string())))]
    units = mine + neighbours(mine, len(ids), 0 if mine else insertion_point(ids, prove))
    wanted = sorted({u // BLOCK_ENTITIES for u in units})
    own = sorted({u // BLOCK_ENTITIES for u in mine})
    root, paths = merkle.audit_paths(hashes, wanted)
    names = {
        str(x): k for k in wanted for x in ids.slice(k * BLOCK_ENTITIES, BLOCK_ENTITIES).to_pylist()
    }
    shown = covered_events(as_of, sorted(names)).order_by(
        *[
            exp.Ordered(
                this=exp.func("signbit", exp.column("value", "e"))
                if key.startswith("signbit")
                else exp.column(key, "e"),
                nulls_first=False,
            )
            for key in BLOCK_ORDER
        ]
    )
    events: dict[int, list[list[str | None]]] = {k: [] for k in wanted}
    for r in con.execute(shown.sql("duckdb")).fetchall():  # the few blocks shown
        events[names[str(r[1])]].append([None if x is None else str(x) for x in r])
    proof = EntityLeaves(
        prove, own, wanted, paths=[paths[k] for k in wanted], events=[events[k] for k in wanted]
    )
    return Tree(root.hex(), size), blocks.entities, blocks.events, proof


def _event_tree(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.datetime,
    prove: str | None,
    pool: merkle.BlockPool | None = None,
    leaf_format: str = EVENT_BLOCK_FORMAT,
) -> tuple[Tree, int, int, EntityLeaves | None]:
    if leaf_format == EVENT_BLOCK_FORMAT:
        return _block_event_tree(con, as_of, prove)
    if leaf_format not in EVENT_LEAF_FORMATS:
        raise InputError(
            Problem(
                f"the pack names the event leaf format {leaf_format!r}, which this version "
                "does not know",
                Location(key="events.leaf_format"),
                f"known: {', '.join((EVENT_BLOCK_FORMAT, *EVENT_LEAF_FORMATS))}",
            )
        )
    tree, entities, proof = text_event_tree(
        con, as_of, prove, pool, per_entity=leaf_format == ENTITY_LEAF_FORMAT
    )
    return tree, entities, 0, proof


def _phase(name: str) -> None:
    tell = PHASES.get()
    if tell is not None:
        tell(name)


def _release(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the verdicts and the cells once the files are written: from here on only the
    events and the covered entities are read.

    At 10M tickets the two tables hold about 2 GB, over DuckDB's budget for the event sort;
    dropped, the sort has the budget to itself. On a pack the gain was within the noise
    (docs/benchmark.md, *Round 6*); ``prove``, which writes no files and drops them right
    after the reconciliation, peaks lower for it.
    """
    kinds = dict(
        con.execute(
            "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE temporary "
            "UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() WHERE temporary"
        ).fetchall()
    )
    for name in (CELLS_TABLE, ENTITIES_TABLE, VERDICTS_TABLE, _LINE_LISTS):
        if name in kinds:
            con.execute(f"DROP {kinds[name]} {name}")  # fixed names of this module's tables


def _write_files(
    con: duckdb.DuckDBPyConnection,
    inputs: RunInputs,
    out: Path,
    sql: str,
    recon: Reconciliation,
    terms: Terms | None,
    pool: merkle.BlockPool,
    rows: dict[str, int],
) -> tuple[list[str], list[str], Tree, Tree]:
    """Write query.sql, reconciliation.json, the two CSV files (with their trees) and the
    letter; return the CSV headers and trees, and count each file's rows into ``rows``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / QUERY_FILE).write_bytes((sql + "\n").encode("utf-8"))
    (out / RECONCILIATION_FILE).write_bytes(canonical_json(recon.to_json()))
    _phase(f"writing {ENTITIES_FILE}")
    if inputs.row_leaf == CSV_BLOCK_FORMAT:
        entity_cols, entities, rows[ENTITIES_FILE] = _csv_blocks(
            con, *_entity_rows(con), out / ENTITIES_FILE
        )
        _phase(f"writing {VERDICTS_FILE}")
        verdict_cols, verdicts, rows[VERDICTS_FILE] = _csv_blocks(
            con, *_verdict_rows(con), out / VERDICTS_FILE
        )
    else:
        verdict_cols = text_table(con, _VERDICT_ROWS, *_verdict_rows(con))
        entity_cols = text_table(con, _ENTITY_ROWS, *_entity_rows(con))
        entities = write_csv(con, _ENTITY_ROWS, entity_cols, out / ENTITIES_FILE, pool)
        verdicts = write_csv(con, _VERDICT_ROWS, verdict_cols, out / VERDICTS_FILE, pool)
    assert tuple(entity_cols) == ENTITY_COLUMNS
    if inputs.letter is not None:
        details = letter_details(terms, inputs.letter)
        if any(v is not None for v in details.model_dump().values()):
            write_letter(
                out,
                recon,
                con,
                definition_text=inputs.definition_text,
                invoice_files=[p.name for p in inputs.invoice],
                terms=terms,
                details=details,
            )
    return verdict_cols, entity_cols, verdicts, entities


def run(inputs: RunInputs, out: Path, prove: str | None = None, *, files: bool = True) -> RunResult:
    """Count, reconcile and write the result files of a pack into ``out`` (created).

    ``prove`` names an entity whose event leaves, indices and audit paths are returned too.
    ``files=False`` stops after the event tree: a proof of events needs the tree only (the
    CSV trees are read from the pack), and the files are a third of a pack's cost; nothing
    is written then, and the CSV trees of the result are empty.
    """
    definition = parse_definition(inputs.definition_text, inputs.definition_file)
    terms = (
        parse_terms(inputs.terms_text, inputs.terms_file) if inputs.terms_text is not None else None
    )
    if inputs.row_leaf not in (CSV_BLOCK_FORMAT, ROW_LEAF_FORMAT):
        raise InputError(
            Problem(
                f"the pack names the CSV leaf format {inputs.row_leaf!r}, which this version "
                "does not know",
                Location(key="verdicts.leaf_format"),
                f"known: {CSV_BLOCK_FORMAT}, {ROW_LEAF_FORMAT}",
            )
        )
    source = open_events(inputs.events)
    con = source.con
    with contextlib.ExitStack() as stack:
        stack.callback(con.close)
        if not os.environ.get(MEMORY_ENV):
            con.execute(f"SET memory_limit = '{EVIDENCE_MEMORY_LIMIT}'")  # a constant
        if inputs.threads is not None:
            con.execute(f"SET threads = {int(inputs.threads)}")
        _phase("counting the events")
        result = count_source(definition, source, inputs.as_of)
        _phase("reconciling the invoice")
        load_invoice_into(con, list(inputs.invoice), table=INVOICE_TABLE)
        recon = reconcile_in(
            con,
            VERDICTS_TABLE,
            INVOICE_TABLE,
            known_table=EVENTS_TABLE,
            definition=definition,
            terms=terms,
            as_of=result.as_of,
            fetch_entities=False,
            cells=True,
            line_ids=files,  # entities.csv's, not needed without the files
        )
        recon = replace(recon, choices=tuple(c.to_json() for c in source.choices))
        periods = covered_periods(recon)
        _covered(con, periods)
        pool = stack.enter_context(merkle.BlockPool(inputs.threads or os.cpu_count() or 1))
        rows = {VERDICTS_FILE: 0, ENTITIES_FILE: 0}
        verdict_cols: list[str] = []
        entity_cols: list[str] = []
        verdicts = entities = Tree(merkle.EMPTY_ROOT.hex(), 0)
        if files:
            verdict_cols, entity_cols, verdicts, entities = _write_files(
                con, inputs, out, result.sql, recon, terms, pool, rows
            )
        _release(con)
        _phase("hashing the events")
        if not os.environ.get(MEMORY_ENV):
            con.execute(f"SET memory_limit = '{EVENT_TREE_MEMORY_LIMIT}'")  # a constant
        events, event_entities, event_count, leaves = _event_tree(
            con, result.as_of, prove, pool, inputs.event_leaf
        )
        files_in, basis = _event_files(inputs.events, con)
    invoices = sorted(
        {FileDigest("invoice", p.name, file_sha256(p)) for p in inputs.invoice},
        key=lambda d: (d.name, d.sha256),
    )
    return RunResult(
        definition=definition,
        terms=terms,
        as_of=result.as_of,
        sql=result.sql,
        recon=recon,
        periods=periods,
        events=events,
        event_entities=event_entities,
        verdicts=verdicts,
        entities=entities,
        files=[*files_in, *invoices],
        files_basis=basis,
        verdict_columns=list(verdict_cols),
        entity_columns=list(entity_cols),
        proof=leaves,
        event_count=event_count,
        verdict_rows=rows[VERDICTS_FILE],
        entity_rows=rows[ENTITIES_FILE],
    )


def summary(recon: Reconciliation) -> dict[str, Any]:
    """The headline numbers a statement carries (the full figures are in the JSON file)."""
    t = recon.totals.to_json()
    keep = (
        "vendor_billed", "buyer_counted", "agreed", "vendor_only", "buyer_only", "pending",
        "unknown", "duplicate", "period_mismatch", "vendor_lines", "amount_billed",
        "amount_due", "credit",
    )  # fmt: skip
    return {
        **{k: t[k] for k in keep},
        "currency": recon.currency,
        "beyond_tolerance": recon.beyond_tolerance,
    }
