"""The ``demo`` verb: the case in the seed, end to end, on generated data with a known truth.

A support team's quarter is generated (fixed seed), written out as an event export and a vendor
invoice, ingested into a fresh workspace, counted under the buyer's definition, reconciled under
example terms, and turned into a dispute pack — the same library calls a user makes, in order.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Final

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from truecount.billing.dispute import DisputePack, write_dispute_pack
from truecount.billing.invoice import load_invoice_into
from truecount.billing.reconcile import Reconciliation, reconcile_in
from truecount.billing.terms import parse_terms
from truecount.cli.app import EXIT_OK, PANEL_START, app, fail, stderr_console, stdout_console
from truecount.definition import parse_definition
from truecount.demo.generate import SupportScenario, generate
from truecount.engine.run import VERDICTS_TABLE, count
from truecount.errors import TruecountError
from truecount.history.versions import VERSIONS_TABLE, add_version
from truecount.ingest.canonical import EVENTS_TABLE, INGEST_LOG_TABLE
from truecount.ingest.load import ingest_files
from truecount.report.html import render_report
from truecount.report.reconciliation import money_table, period_table, waterfall_table
from truecount.watch.store import SNAPSHOT_TABLE
from truecount.web.sources import add_invoice
from truecount.workspace import Workspace

#: The demo's seed: the same quarter on every machine.
DEMO_SEED: Final[int] = 7
#: Marks a folder as made by the demo, so a rerun may replace its store and nothing else.
MARKER: Final[str] = ".truecount-demo"
#: The stored definition version's first day, and the kept invoice's name (the demo quarter).
DEMO_EFFECTIVE: Final[str] = "2026-01-01"
DEMO_INVOICE: Final[str] = "2026-Q1"
STEPS: Final[tuple[str, ...]] = (
    "generating a quarter of support tickets",
    "writing the export and the invoice",
    "ingesting the export into a fresh workspace",
    "counting under the buyer's definition",
    "reconciling the invoice",
    "writing the dispute pack",
)

Step = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    """What the demo made, and the reconciliation it printed."""

    folder: Path
    workspace: Path
    events_file: Path
    invoice_file: Path
    definition_file: Path
    terms_file: Path
    recon: Reconciliation
    pack: DisputePack
    events: int


def package_text(name: str) -> str:
    """A YAML file shipped in ``truecount/demo`` (the definition and the terms)."""
    return resources.files("truecount.demo").joinpath(name).read_text(encoding="utf-8")


def _fresh_workspace(folder: Path) -> Workspace:
    """A new workspace in ``folder/workspace``; a previous demo's store is replaced."""
    root = folder / "workspace"
    if root.exists():
        if not (folder / MARKER).is_file():
            fail(f"{root} exists and was not made by the demo; choose another --out folder")
        shutil.rmtree(root)
    return Workspace.init(root)


def added_since_demo(folder: Path) -> list[str]:
    """What a user added to a previous demo's workspace: more definition versions than the one
    the demo stores, watch snapshots, more loaded files than the demo's events, and invoices
    kept for the dashboard besides the demo's. Re-running the demo would delete them."""
    root = folder / "workspace"
    if not (root / "truecount.yaml").is_file():
        return []
    counts = {
        "definition version(s)": (VERSIONS_TABLE, 1),
        "watch snapshot(s)": (SNAPSHOT_TABLE, 0),
        "loaded file(s)": (INGEST_LOG_TABLE, 1),
    }
    found: list[str] = []
    invoices = root / "invoices"
    if invoices.is_dir():
        theirs = [p for p in invoices.iterdir() if not p.name.startswith(f"{DEMO_INVOICE}.")]
        if theirs:
            found.append(f"{len(theirs)} invoice file(s)")
    try:
        with Workspace.open(root).connect(read_only=True) as con:
            tables = {str(r[0]) for r in con.execute("SHOW TABLES").fetchall()}
            for label, (table, made) in counts.items():
                if table in tables:
                    sql = f'SELECT count(*) FROM "{table}"'  # noqa: S608 (our table names)
                    row = con.execute(sql).fetchone()
                    extra = (int(row[0]) if row else 0) - made
                    if extra > 0:
                        found.append(f"{extra} {label}")
    except (TruecountError, duckdb.Error) as exc:
        found.append(f"a store that cannot be read ({exc})")
    return found


def run_demo(
    out: Path, step: Step | None = None, seed: int = DEMO_SEED, replace: bool = False
) -> DemoResult:
    """Run the demo into ``out``; ``step`` is told the name of each step as it starts.

    A previous demo in ``out`` is replaced, unless versions, watch snapshots, loaded files or
    invoices were added to its workspace since: then the run stops (``replace`` says to delete
    them anyway).
    """
    tell: Step = step or (lambda _name: None)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()) and not (out / MARKER).is_file():
        fail(f"{out} is not empty and was not made by the demo; choose another --out folder")
    added = added_since_demo(out)
    if added and not replace:
        fail(
            f"{out / 'workspace'} holds {', '.join(added)} added after the demo; re-running "
            "would delete them: choose another --out folder, or pass --replace"
        )
    (out / MARKER).write_text("made by 'truecount demo'; safe to delete\n", encoding="utf-8")

    tell(STEPS[0])
    scenario = SupportScenario(seed=seed)
    data = generate(scenario)

    tell(STEPS[1])
    events_file = out / "events.parquet"
    pq.write_table(data.events, events_file, compression="zstd")
    invoice_file = out / "invoice.csv"
    pacsv.write_csv(data.invoice, invoice_file)
    definition_text = package_text("resolved_ticket.yaml")
    terms_text = package_text("terms.yaml")
    definition_file = out / "resolved_ticket.yaml"
    definition_file.write_text(definition_text, encoding="utf-8")
    terms_file = out / "terms.yaml"
    terms_file.write_text(terms_text, encoding="utf-8")
    definition = parse_definition(definition_text, str(definition_file))
    terms = parse_terms(terms_text, str(terms_file))

    tell(STEPS[2])
    ws = _fresh_workspace(out)
    report = ingest_files(ws, [events_file])
    # kept in the workspace, so `truecount serve -w` shows the demo as it is
    add_version(ws, definition_file, DEMO_EFFECTIVE)
    add_invoice(ws.root, invoice_file, terms_file, name=DEMO_INVOICE)

    tell(STEPS[3])
    result = count(definition, ws)
    try:
        con = result.con
        tell(STEPS[4])
        load_invoice_into(con, [invoice_file], table="invoice")
        recon = reconcile_in(
            con,
            VERDICTS_TABLE,
            "invoice",
            known_table=EVENTS_TABLE,
            definition=definition,
            terms=terms,
            as_of=result.as_of,
            fetch_entities=False,
        )
        tell(STEPS[5])
        pack = write_dispute_pack(
            out / "dispute",
            recon,
            con,
            definition_text=definition_text,
            invoice_files=[str(invoice_file)],
            terms=terms,
            buyer="Support operations",
            vendor="the AI agent vendor",
        )
    finally:
        result.close()
    return DemoResult(
        out,
        ws.root,
        events_file,
        invoice_file,
        definition_file,
        terms_file,
        recon,
        pack,
        report.events_loaded,
    )


@contextlib.contextmanager
def _progress() -> Iterator[Step]:
    """A progress display on a terminal (stderr); nothing when piped."""
    err = stderr_console()
    if not err.is_terminal:
        yield lambda _name: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(STEPS[0], total=len(STEPS))
        started = False

        def step(name: str) -> None:
            nonlocal started
            if started:
                progress.advance(task)
            started = True
            progress.update(task, description=name)

        yield step
        progress.update(task, completed=len(STEPS))


@app.command("demo", rich_help_panel=PANEL_START)
def demo_cmd(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Folder for the demo's files and workspace.", metavar="FOLDER"
        ),
    ] = Path("truecount-demo"),
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Start over even if versions, watch snapshots, loaded files or invoices were "
            "added to the demo's workspace (they are deleted).",
        ),
    ] = False,
) -> None:
    """Replay the seed case: ~41,000 billed resolutions against ~27,000 that count.

    Example, in the folder that 'truecount demo' writes:
    truecount demo -o my-demo
    """
    with _progress() as step:
        result = run_demo(out, step, replace=replace)
    report_file = result.folder / "report.html"
    report_file.write_text(
        render_report(
            result.definition_file,
            Workspace.open(result.workspace),
            [result.invoice_file],
            result.terms_file,
        ),
        encoding="utf-8",
    )
    console = stdout_console()
    recon = result.recon
    t = recon.totals
    console.print(
        f"A support team's quarter: {result.events:,} events; the vendor billed "
        f"{t.vendor_billed:,} resolutions on {t.vendor_lines:,} invoice lines.",
        markup=False,
    )
    console.print(period_table(recon))
    money = money_table(recon)
    if money is not None:
        console.print(money)
    console.print(waterfall_table(recon))
    cur = recon.currency or ""
    console.print(
        f"Credit due to the buyer: {t.credit:,} {cur} "
        f"(billed {t.amount_billed:,}, due {t.amount_due:,} under {result.terms_file.name}).",
        markup=False,
        style="bold",
    )
    console.print(
        f"Dispute pack: {result.pack.folder}/ (letter.html, letter.md, entities.csv, "
        "reconciliation.json)",
        markup=False,
    )
    console.print(f"Report: {report_file} (open it in a browser)", markup=False)
    console.print(f"Dashboard: truecount serve -w {result.workspace}", markup=False)
    console.print(
        "Again by hand: truecount reconcile "
        f"{result.definition_file} --invoice {result.invoice_file} --terms {result.terms_file} "
        f"--workspace {result.workspace}",
        markup=False,
    )
    raise typer.Exit(EXIT_OK)
