"""The dashboard's results: library calls, cached per definition version x invoice.

Every figure the dashboard shows comes from here, and everything here is a call into the library
(``count``, ``reconcile_in``, ``drift_in``, ``explain``, ``replay``, ``watch.status``) with the
workspace opened read-only. A reconciliation of a quarter takes a second or more, far too long
for a page, so each result is kept until the store changes: the key is the state of the ingest
log and of the stored versions (a new ingest or version makes new results) and the size and
time of the invoice and terms files.

Results are copied out of DuckDB (Arrow tables, dataclasses) and the store's connection is
closed at once: the dashboard never holds the store open between requests, so ``truecount
ingest`` can still write to it while the dashboard runs.
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from truecount.billing.invoice import load_invoice_into, load_invoice_mapping
from truecount.billing.reconcile import Reconciliation, reconcile_in
from truecount.billing.terms import Terms, load_terms
from truecount.definition.model import Definition
from truecount.drift.report import DriftReport, drift_in
from truecount.engine.explain import Explanation, explain
from truecount.engine.run import VERDICTS_TABLE, CountResult, PeriodCount, count
from truecount.errors import TruecountError
from truecount.history.replay import Replay, ReplayVersion, replay
from truecount.history.versions import StoredVersion, read_versions
from truecount.ingest.canonical import EVENTS_TABLE, INGEST_LOG_TABLE
from truecount.watch.store import StatusReport, status
from truecount.web.sources import InvoiceSource, command_line_invoices, folder_invoices
from truecount.workspace import Workspace

INVOICE_TABLE: Final[str] = "invoice"
#: Results kept at most; the oldest is dropped first.
MAX_CACHED: Final[int] = 32

T = TypeVar("T")


@dataclass(frozen=True)
class MeterKey:
    """A definition version reconciled with an invoice (``invoice`` None: the count alone)."""

    name: str
    version: int
    invoice: str | None

    @property
    def path(self) -> str:
        """The URL prefix of this meter's pages."""
        return f"/d/{self.name}/{self.version}/{self.invoice or '-'}"


@dataclass(frozen=True)
class MeterResult:
    """What one meter's pages show, copied out of DuckDB."""

    key: MeterKey
    definition: Definition
    version: StoredVersion
    as_of: dt.datetime
    periods: tuple[PeriodCount, ...]
    count_totals: PeriodCount
    sql: str
    invoice: InvoiceSource | None = None
    terms: Terms | None = None
    recon: Reconciliation | None = None
    drift: DriftReport | None = None
    drift_problem: str | None = None
    problem: str | None = None

    #: The reconciliation's entities sorted by cell and id, and each cell's slice of them.
    entities: pa.Table | None = None
    cells: Mapping[str, pa.Table] = field(default_factory=dict)
    #: The reasons found in each cell, sorted (the cell page's reason filter offers them).
    cell_reasons: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Each cell's entity ids in lower case, row for row: a search reads them as they are
    #: instead of lower-casing millions of ids on every request.
    cell_search: Mapping[str, pa.Array] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplayTerms:
    """The terms the replay table is priced under, from the invoice ``invoice``; ``problem``
    is why there are none when that invoice's terms file does not parse."""

    invoice: str | None = None
    terms: Terms | None = None
    problem: str | None = None


def by_cell(entities: pa.Table) -> tuple[pa.Table, dict[str, pa.Table]]:
    """Entities sorted by cell and id, and a zero-copy slice per cell: a cell's page then
    starts from its own rows instead of filtering every entity on every request."""
    ordered = entities.sort_by([("cell", "ascending"), ("entity_id", "ascending")])
    cells: dict[str, pa.Table] = {}
    start = 0
    for item in ordered.column("cell").value_counts().to_pylist():
        cells[str(item["values"])] = ordered.slice(start, int(item["counts"]))
        start += int(item["counts"])
    return ordered, cells


@dataclass
class Dashboard:
    """The workspace, the invoices, and the cache of results; shared by every request."""

    workspace: Workspace
    cli_invoices: Sequence[Path] = ()
    cli_terms: Path | None = None
    cli_mapping: Path | None = None
    as_of: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _key_locks: dict[Any, threading.Lock] = field(default_factory=dict, repr=False)
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    _state: tuple[tuple[Any, ...], tuple[Any, ...]] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ state
    def _file_stamp(self) -> tuple[Any, ...]:
        """Size and time of the store and its write-ahead log: every commit changes one."""
        out: list[Any] = []
        for path in (self.workspace.store_path, Path(f"{self.workspace.store_path}.wal")):
            try:
                st = path.stat()
                out.append((st.st_size, st.st_mtime_ns))
            except OSError:
                out.append(None)
        return tuple(out)

    def store_state(self) -> tuple[Any, ...]:
        """The ingest log's and the versions' state: what makes a cached result stale.

        Read from the store only when its files changed since the last look, so a page
        served from the cache does not open the store at all.
        """
        stamp = self._file_stamp()
        with self._lock:
            if self._state is not None and self._state[0] == stamp:
                return self._state[1]
        state = self._read_state()
        with self._lock:
            self._state = (stamp, state)
        return state

    def _read_state(self) -> tuple[Any, ...]:
        with self.workspace.connect(read_only=True) as con:
            tables = {
                str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            log: tuple[Any, ...] = ()
            if INGEST_LOG_TABLE in tables:
                row = con.execute(
                    f"SELECT count(*), max(ingest_id), max(ingested_at) FROM {INGEST_LOG_TABLE}"  # noqa: S608
                ).fetchall()
                log = tuple(row[0]) if row else ()
            stored = tuple((v.name, v.version, v.sha256) for v in read_versions(con))
        return log, stored

    def versions(self) -> list[StoredVersion]:
        return self.cached(("versions",), self._read_versions)

    def _read_versions(self) -> list[StoredVersion]:
        with self.workspace.connect(read_only=True) as con:
            return read_versions(con)

    def invoices(self) -> list[InvoiceSource]:
        taken: set[str] = set()
        given = command_line_invoices(
            list(self.cli_invoices), self.cli_terms, self.cli_mapping, taken
        )
        return given + folder_invoices(self.workspace.root, taken)

    def invoice(self, name: str) -> InvoiceSource | None:
        return next((i for i in self.invoices() if i.name == name), None)

    def version(self, name: str, number: int) -> StoredVersion | None:
        return next((v for v in self.versions() if v.name == name and v.version == number), None)

    def latest_versions(self) -> list[StoredVersion]:
        """The latest version of each stored name (the one in effect last)."""
        latest: dict[str, StoredVersion] = {}
        for v in self.versions():
            latest[v.name] = v  # read_versions orders by name, effective date
        return list(latest.values())

    def meters(self) -> list[MeterKey]:
        """Every latest definition with every invoice (or alone when there is none)."""
        invoices = self.invoices()
        keys: list[MeterKey] = []
        for v in self.latest_versions():
            if not invoices:
                keys.append(MeterKey(v.name, v.version, None))
            keys.extend(MeterKey(v.name, v.version, i.name) for i in invoices)
        return keys

    # ------------------------------------------------------------------ cache
    def cached(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        """``make()`` once per key and store state; concurrent requests for one key wait."""
        state = self.store_state()
        full = (key, state)
        with self._lock:
            if full in self._cache:
                return self._cache[full]  # type: ignore[no-any-return]
            lock = self._key_locks.setdefault(full, threading.Lock())
        with lock:
            with self._lock:
                if full in self._cache:
                    return self._cache[full]  # type: ignore[no-any-return]
            value = make()
            with self._lock:
                # results of an older store state are never asked for again: drop them
                self._cache = {k: v for k, v in self._cache.items() if k[1] == state}
                self._cache[full] = value
                self._key_locks.pop(full, None)
                while len(self._cache) > MAX_CACHED:
                    self._cache.pop(next(iter(self._cache)))
            return value

    def meter(self, key: MeterKey) -> MeterResult | None:
        """The cached result of a meter; None when the version or invoice does not exist."""
        version = self.version(key.name, key.version)
        if version is None:
            return None
        invoice = None
        if key.invoice is not None:
            invoice = self.invoice(key.invoice)
            if invoice is None:
                return None
        stamp = invoice.stamp() if invoice is not None else ()
        return self.cached(
            ("meter", key, stamp, self.as_of),
            lambda: compute_meter(self.workspace, key, version, invoice, self.as_of),
        )

    def explain(self, result: MeterResult, entity_id: str) -> Explanation:
        """One entity under the meter's definition and as-of time (raises for an unknown id)."""
        return explain(result.definition, self.workspace, entity_id, as_of=result.as_of)

    def watch(self) -> StatusReport:
        def read() -> StatusReport:
            with self.workspace.connect(read_only=True) as con:
                return status(con)

        return self.cached(("watch", dt.date.today()), read)

    def replay_terms(self) -> ReplayTerms:
        """The terms the replay prices its counts under: the first invoice's that has terms.

        Terms that do not parse leave the replay without amounts and say why, so one broken
        terms file costs the replay its money column, not the page (nor ``serve`` its start).
        """
        first = self._priced_invoice()
        if first is None or first.terms is None:
            return ReplayTerms()
        path = first.terms

        def read() -> ReplayTerms:
            try:
                return ReplayTerms(first.name, load_terms(path))
            except TruecountError as exc:
                return ReplayTerms(first.name, problem=exc.first_line)

        return self.cached(("replay-terms", first.name, _stamp(path)), read)

    def _priced_invoice(self) -> InvoiceSource | None:
        return next((i for i in self.invoices() if i.terms is not None), None)

    def replay(self) -> Replay | None:
        """Every stored version over the store, under the first invoice's terms when known and
        readable (:meth:`replay_terms`)."""
        stored = self.versions()
        if not stored:
            return None
        invoice = self._priced_invoice()
        # the stamp before the terms are read: a file changed in between is read again next time
        stamp = _stamp(invoice.terms) if invoice is not None and invoice.terms is not None else ()
        priced = self.replay_terms()

        def run() -> Replay:
            versions = [ReplayVersion(v.definition(), v.effective, "workspace") for v in stored]
            return replay(versions, self.workspace, as_of=self.as_of, terms=priced.terms)

        return self.cached(("replay", stamp, self.as_of), run)

    # ------------------------------------------------------------------ downloads
    def recount(self, result: MeterResult) -> CountResult:
        """A fresh count of the meter's definition (downloads read its verdict table)."""
        return count(result.definition, self.workspace, as_of=result.as_of)

    def dispute_zip(self, result: MeterResult) -> bytes:
        """The dispute pack (``reconcile --out``) as a zip archive, written in a scratch folder."""
        from truecount.billing.dispute import write_dispute_pack

        if result.invoice is None:
            raise ValueError("a dispute pack needs an invoice")
        terms = _terms(result.invoice)
        counted = self.recount(result)
        try:
            con = counted.con
            recon = _reconcile(con, result.definition, result.invoice, counted, terms)
            with tempfile.TemporaryDirectory(prefix="truecount-pack-") as tmp:
                # the terms and their letter: section, as ``reconcile --out`` passes them
                pack = write_dispute_pack(
                    Path(tmp) / "dispute",
                    recon,
                    con,
                    definition_text=result.version.yaml_text,
                    invoice_files=[str(p) for p in result.invoice.files],
                    terms=terms,
                    details=terms.letter if terms is not None else None,
                )
                buffer = io.BytesIO()
                with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
                    for path in sorted(pack.folder.iterdir()):
                        zf.write(path, f"dispute/{path.name}")
                return buffer.getvalue()
        finally:
            counted.close()

    def report_available(self) -> bool:
        """Whether this installation has ``truecount report`` (the HTML report)."""
        try:
            from truecount.report.html import render_report  # noqa: F401
        except ImportError:
            return False
        return True

    def report_html(self, result: MeterResult) -> str | None:
        """``truecount report`` for this meter's definition, invoice and terms (None without
        the report module). The stored text is written to a scratch file, as the report reads
        a definition file."""
        if result.invoice is None or not self.report_available():
            return None
        from truecount.report.html import ReportOptions, render_report

        invoice = result.invoice
        with tempfile.TemporaryDirectory(prefix="truecount-report-") as tmp:
            definition = Path(tmp) / f"{result.definition.name}.yaml"
            definition.write_text(result.version.yaml_text, encoding="utf-8")
            options = ReportOptions(as_of=self.as_of, invoice_mapping=invoice.mapping)
            return render_report(
                definition, self.workspace, list(invoice.files), invoice.terms, options
            )

    def verdicts_file(self, result: MeterResult, suffix: str) -> bytes:
        """The verdicts as ``count --verdicts FILE`` writes them (CSV or Parquet)."""
        counted = self.recount(result)
        try:
            with tempfile.TemporaryDirectory(prefix="truecount-verdicts-") as tmp:
                target = Path(tmp) / f"verdicts{suffix}"
                counted.write_verdicts(target)
                return target.read_bytes()
        finally:
            counted.close()


def _stamp(path: Path) -> tuple[str, int, int]:
    """A file's path, size and modification time (-1, -1 when it cannot be read)."""
    try:
        st = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), st.st_size, st.st_mtime_ns)


def _terms(invoice: InvoiceSource) -> Terms | None:
    return load_terms(invoice.terms) if invoice.terms is not None else None


def _reconcile(
    con: Any,
    definition: Definition,
    invoice: InvoiceSource,
    counted: CountResult,
    terms: Terms | None,
) -> Reconciliation:
    mapping = load_invoice_mapping(invoice.mapping) if invoice.mapping is not None else None
    load_invoice_into(con, list(invoice.files), mapping, table=INVOICE_TABLE)
    recon = reconcile_in(
        con,
        VERDICTS_TABLE,
        INVOICE_TABLE,
        known_table=EVENTS_TABLE,
        definition=definition,
        terms=terms,
        as_of=counted.as_of,
        fetch_entities=True,
    )
    return replace(recon, choices=tuple(c.to_json() for c in counted.source.choices))


def compute_meter(
    ws: Workspace,
    key: MeterKey,
    version: StoredVersion,
    invoice: InvoiceSource | None,
    as_of: str | None = None,
) -> MeterResult:
    """Count, reconcile and watch for drift: the calls ``count``, ``reconcile`` and ``drift``
    make, with the same defaults, so the dashboard's figures are theirs."""
    d = version.definition()
    counted = count(d, ws, as_of=as_of)
    try:
        base = MeterResult(
            key=key,
            definition=d,
            version=version,
            as_of=counted.as_of,
            periods=tuple(counted.periods),
            count_totals=counted.totals,
            sql=counted.sql,
            invoice=invoice,
        )
        if invoice is None:
            return base
        try:
            terms = _terms(invoice)
            recon = _reconcile(counted.con, d, invoice, counted, terms)
        except TruecountError as exc:
            return replace(base, problem=exc.first_line)
        drift: DriftReport | None = None
        drift_problem: str | None = None
        try:
            drift = drift_in(
                counted.con,
                d,
                VERDICTS_TABLE,
                INVOICE_TABLE,
                events_table=EVENTS_TABLE,
                as_of=counted.as_of,
                # the reconciliation above left its cell table on the connection: drift reads
                # it instead of reconciling a second time (the cells do not depend on terms)
                reconciled=recon,
            )
        except TruecountError as exc:
            drift_problem = exc.reader_line
        entities, cells = by_cell(recon.entities) if recon.entities is not None else (None, {})
        reasons = {
            cell: tuple(sorted(str(r) for r in rows["reason"].drop_null().unique().to_pylist()))
            for cell, rows in cells.items()
        }
        search = {
            cell: pc.utf8_lower(rows["entity_id"].combine_chunks()) for cell, rows in cells.items()
        }
        recon = replace(recon, entities=None)  # kept once, sorted, in the result
        return replace(
            base,
            terms=terms,
            recon=recon,
            drift=drift,
            drift_problem=drift_problem,
            entities=entities,
            cells=cells,
            cell_reasons=reasons,
            cell_search=search,
        )
    finally:
        counted.close()
