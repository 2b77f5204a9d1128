"""The meter verbs: ``count``, ``explain``, ``sql`` and ``schema``; the engine options.

``count``, ``check`` and ``reconcile`` take ``--engine duckdb|spark``: the verdicts are computed
by the engine chosen and summarised by DuckDB either way (docs/engines.md), so what is printed
does not depend on the engine. The helpers that pick the engine live here, next to the
``--events`` option they read.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import enum
import glob
import io
import os
import re
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from truecount import jsonout
from truecount.cli.app import (
    EXIT_OK,
    PANEL_COUNT,
    PANEL_START,
    OutputFormat,
    app,
    fail,
    stderr_console,
    stdout_console,
)
from truecount.cli.values import choose, output_file
from truecount.definition import load_definition
from truecount.definition.model import Definition
from truecount.engine.compile import DIALECTS, compile_sql
from truecount.engine.explain import ConditionExplanation, explain
from truecount.engine.run import CountResult, count, parse_time
from truecount.engine.source import EventsInput
from truecount.errors import InputError
from truecount.ingest.canonical import QUARANTINE_TABLE
from truecount.ingest.choices import Choice
from truecount.workspace import Workspace

DefArg = Annotated[
    Path,
    typer.Argument(help="The outcome definition (YAML).", show_default=False, metavar="DEFINITION"),
]
EventsOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--events",
        "-e",
        help="Canonical event files (CSV, JSON Lines, Parquet) instead of the workspace; "
        "repeat for several files.",
        metavar="FILE",
    ),
]
#: ``--events`` of the verbs with ``--engine``: kept as text, because a URI that only the Spark
#: cluster reads (``s3a://bucket/events/``) must reach it unchanged (a path would drop a slash).
EngineEventsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--events",
        "-e",
        help="Canonical event files (CSV, JSON Lines, Parquet), folders or globs of Parquet "
        "files, or (with --engine spark) URIs the cluster reads, instead of the workspace; "
        "repeat for several.",
        metavar="FILE",
    ),
]
#: The engines ``--engine`` names: the first is the default.
ENGINES: tuple[str, ...] = ("duckdb", "spark")
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="Where the verdicts are computed: duckdb (in this process) or spark (pip install "
        "'truecount[spark]'). The output is the same.",
        metavar="ENGINE",
    ),
]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master URL for --engine spark (default local[*]; with SPARK_REMOTE set, "
        "a Spark Connect client of that cluster).",
        metavar="URL",
        show_default=False,
    ),
]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", help="Workspace folder (default: here).", metavar="WORKSPACE"
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Count as known at this time (ISO 8601, UTC unless an offset is given). "
        "Default: the latest event in the data.",
        metavar="TIME",
    ),
]


class CountFormat(enum.StrEnum):
    """``count`` alone prints CSV too: one row per period, for a spreadsheet."""

    table = "table"
    json = "json"
    csv = "csv"


def events_input(events: Sequence[str | Path] | None, workspace: Path | None) -> EventsInput:
    """The files given with --events (folders and globs expanded), else the workspace."""
    if events:
        return expand_events(events)
    return Workspace.open(workspace)


_GLOB = re.compile(r"[*?\[]")


def expand_events(events: Sequence[str | Path]) -> list[str]:
    """Each --events item as files: a folder is the Parquet files under it (a ``truecount
    export``), a glob its matches (``**`` spans folders); URIs pass through for Spark.

    An item that names nothing is kept as it is, so the reader reports it by name.
    """
    out: list[str] = []
    for item in events:
        text = str(item)
        local = Path(text)
        if "://" in text or local.is_file():
            out.append(text)
        elif local.is_dir():
            found = sorted(str(f) for f in local.rglob("*.parquet"))
            if not found:
                fail(
                    f"--events {text}: the folder holds no Parquet files; give event files, "
                    "a folder that 'truecount export' wrote, or -w for a workspace"
                )
            out.extend(found)
        elif _GLOB.search(text):
            # 'DIR/**.parquet' as DuckDB and shells with globstar read it: any depth below DIR
            pattern = re.sub(r"\*\*(?=[^/])", "**/*", text)
            found = sorted({m for m in glob.glob(pattern, recursive=True) if Path(m).is_file()})
            if not found:
                fail(f"--events {text}: the pattern matches no file")
            out.extend(found)
        else:
            out.append(text)
    return out


def engine_name(engine: str, spark_master: str | None) -> str:
    """The engine --engine names (any case, did-you-mean on a typo); --spark-master needs spark."""
    name = choose(engine, ENGINES, "--engine")
    if spark_master is not None and name != "spark":
        fail("--spark-master is an option of --engine spark; add --engine spark or drop it")
    return name


def start_spark(master: str | None) -> object:
    """Start (or reuse) the SparkSession, saying on stderr what is started and how long it took:
    a local JVM takes seconds, a cluster longer, and a silent wait looks like a hang."""
    from truecount.engine.spark import can_start, spark_session

    can_start(master)  # no PySpark or no Java: one line, before anything is said to start
    remote = os.environ.get("SPARK_REMOTE") if master is None else None
    where = f"Spark Connect {remote}" if remote else (master or "local[*]")
    err = stderr_console()
    err.print(f"starting Spark ({where})…")
    # PySpark's warning that it has not been tested with this pandas is about pandas UDFs,
    # which truecount does not use (the verdicts come back as Arrow)
    warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")
    started = time.perf_counter()
    # Spark's stage bar is progress on a terminal and noise in a log
    progress = "true" if err.is_terminal else "false"
    session = spark_session(master, {"spark.ui.showConsoleProgress": progress})
    with contextlib.suppress(Exception):  # a Spark Connect client has no SparkContext
        session.sparkContext.setLogLevel("ERROR")
    err.print(f"Spark session ready in {time.perf_counter() - started:.1f} s")
    return session


def count_on(
    definition: Definition,
    events: Sequence[str] | None,
    workspace: Path | None,
    as_of: str | None,
    known_at: str | None = None,
    *,
    engine: str = "duckdb",
    spark_master: str | None = None,
    verb: str = "counting",
) -> CountResult:
    """The count a verb starts from, on the engine chosen; the same result on either."""
    name = engine_name(engine, spark_master)
    data = events_input(events, workspace)
    if name == "duckdb":
        with working(f"{verb}…"):
            return count(definition, data, as_of=as_of, known_at=known_at)
    from truecount.engine.spark import count_on_spark

    session = start_spark(spark_master)
    # no spinner: Spark draws its own stage bar on a terminal, and the two would overwrite
    stderr_console().print(f"{verb} on Spark…")
    return count_on_spark(definition, data, as_of=as_of, known_at=known_at, spark=session)


def require_local_events(events: Sequence[str] | None, verb: str) -> None:
    """``check`` and ``reconcile`` read the events too (coverage, known entities), on DuckDB:
    refuse, in one line and before Spark is started, events only the cluster can read."""
    remote = [e for e in events or [] if "://" in e]
    if remote:
        fail(
            f"--events {remote[0]}: {verb} reads the events on this machine too; give a "
            "workspace or local files (a URI only Spark reads works with 'count --engine spark')"
        )


@contextlib.contextmanager
def working(message: str) -> Iterator[None]:
    """A spinner on a terminal; nothing when stderr is piped."""
    err = stderr_console()
    if err.is_terminal:
        with err.status(message):
            yield
    else:
        yield


def _count_table(result: CountResult, definition: Definition, events: int) -> Table:
    # with no events the default as-of is no moment at all: say so rather than print 1970
    moment = f"as of {result.as_of:%Y-%m-%d %H:%M:%S} UTC" if events else "no events"
    table = Table(
        title=f"{definition.name} v{definition.version}  ·  {moment}",
        caption=f"sha256 {definition.sha256[:16]}…  ·  unit: {definition.unit}",
    )
    for name in (
        "period",
        "candidates",
        "counted",
        "not counted",
        "pending",
        "excluded",
        "quantity",
    ):
        table.add_column(name, justify="left" if name == "period" else "right")
    rows = [*result.periods, result.totals] if result.periods else []
    for i, p in enumerate(rows):
        style = "bold" if i == len(rows) - 1 else None
        table.add_row(
            p.period,
            f"{p.candidates:,}",
            f"{p.counted:,}",
            f"{p.not_counted:,}",
            f"{p.pending:,}",
            f"{p.excluded:,}",
            f"{p.quantity:,.2f}".rstrip("0").rstrip("."),
            style=style,
        )
    return table


@app.command("count", rich_help_panel=PANEL_COUNT)
def count_cmd(
    definition: DefArg,
    events: EngineEventsOpt = None,
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    known_at: Annotated[
        str | None,
        typer.Option(
            "--known-at",
            help="Only the events the buyer had by then: recorded_at where the export has it, "
            "event time otherwise. --as-of defaults to it.",
            metavar="TIME",
        ),
    ] = None,
    period: Annotated[
        str | None, typer.Option(help="Only this period, e.g. 2026-01.", metavar="PERIOD")
    ] = None,
    fmt: Annotated[
        CountFormat, typer.Option("--format", "-f", help="Output format.")
    ] = CountFormat.table,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the verdict per entity to this .csv or .parquet file.",
            metavar="FILE",
        ),
    ] = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
) -> None:
    """Count outcomes per period: candidates, counted, not counted, pending, and why.

    Example, in the folder that 'truecount demo' writes:
    truecount count resolved_ticket.yaml -w workspace --format csv
    """
    if out is not None:
        output_file(out)
    d = load_definition(definition)
    result = count_on(
        d, events, workspace, as_of, known_at, engine=engine, spark_master=spark_master
    )
    try:
        if period is not None:
            known = [p.period for p in result.periods]
            if period not in known:
                fail(
                    f"period '{period}' has no candidates; "
                    f"periods in the data: {', '.join(known) or 'none'}"
                )
            result.periods = [p for p in result.periods if p.period == period]
            result.__post_init__()
        if out is not None:
            n = result.write_verdicts(out, period)
            stderr_console().print(f"wrote {n:,} verdicts to {out}")
        _render_count(result, d, fmt)
    finally:
        result.close()
    raise typer.Exit(EXIT_OK)


def _render_count(result: CountResult, d: Definition, fmt: CountFormat) -> None:
    con = stdout_console()
    if fmt is CountFormat.json:
        print(jsonout.dumps(result.to_json(), indent=2))
        return
    if fmt is CountFormat.csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(
            ["period", "candidates", "counted", "not_counted", "pending", "excluded", "quantity"]
        )
        for p in result.periods:
            writer.writerow(
                [
                    p.period,
                    p.candidates,
                    p.counted,
                    p.not_counted,
                    p.pending,
                    p.excluded,
                    p.quantity,
                ]
            )
        print(buf.getvalue(), end="")
        return
    events = _event_count(result)
    con.print(_count_table(result, d, events))
    if result.totals.candidates == 0:
        _explain_no_candidates(result, d, events)
    if result.reasons and result.totals.not_counted:
        reasons = Table(title="why not counted", caption="a candidate may fail several conditions")
        reasons.add_column("condition")
        reasons.add_column("entities", justify="right")
        for r in result.reasons:
            reasons.add_row(r.condition, f"{r.entities:,}")
        con.print(reasons)
    show_choices(result.source.choices)
    if result.clock is not None:
        stdout_console().print(Text(result.clock.note, style="dim"))
    # the quarantine note, where there is one, already says why rows are missing
    if not _quarantine_note(result) and result.source.rows_skipped:
        skipped = ", ".join(f"{k}: {v:,}" for k, v in result.source.skipped_reasons.items())
        stderr_console(markup=True).print(
            f"[yellow]note:[/] {result.source.rows_skipped:,} event rows were not usable "
            f"({_escape(skipped)})"
        )


def _quarantine_note(result: CountResult, shown: int = 3) -> bool:
    """Name the rows left out at loading (file, row, column, reason): a count that silently
    lacks them looks complete. True when there were any."""
    con = result.con
    tables = {str(r[0]) for r in con.execute("SHOW TABLES").fetchall()}
    if QUARANTINE_TABLE not in tables:
        return False
    total_row = con.execute(f"SELECT count(*) FROM {QUARANTINE_TABLE}").fetchone()  # noqa: S608
    total = int(total_row[0]) if total_row else 0
    if not total:
        return False
    rows = con.execute(
        f"SELECT file, row_number, column_name, reason FROM {QUARANTINE_TABLE} "  # noqa: S608
        "ORDER BY file, row_number LIMIT ?",
        [shown],
    ).fetchall()
    named = "; ".join(
        f"{file} row {row}" + (f" ({column})" if column else "") + f": {reason}"
        for file, row, column, reason in rows
    )
    more = f"; and {total - len(rows):,} more" if total > len(rows) else ""
    where = "fix them in the file" if result.source.files else "'truecount quarantine' lists them"
    stderr_console().print(
        f"note: {total:,} row(s) were quarantined and are not in this count: {named}{more} "
        f"({where})",
        soft_wrap=True,
    )
    return True


def show_choices(choices: Sequence[Choice]) -> None:
    """Print the adapter options the events were read with: every number depends on them."""
    out = stdout_console()
    for c in choices:
        out.print(Text(f"events read with --source {c.describe()}", style="dim"))


def _event_count(result: CountResult) -> int:
    rows = result.con.execute("SELECT count(*) FROM events").fetchall()
    return int(rows[0][0]) if rows else 0


def _explain_no_candidates(result: CountResult, d: Definition, events: int) -> None:
    """Say why a count is empty: no events at all, or none that match the anchor."""
    err = stderr_console()
    if events == 0:
        err.print(
            f"note: no events in {result.source.description}; "
            "load an export with 'truecount ingest FILE' first"
        )
        return
    actor = f" by '{d.anchor.actor}'" if d.anchor.actor else ""
    err.print(
        f"note: {events:,} events, but none is a '{d.anchor.type}' event{actor} "
        "at or before the as-of time: check the anchor, or the mapping's type and actor values"
    )


def _condition_tree(tree: Tree, c: ConditionExplanation) -> None:
    mark = {True: "[green]pass[/]", False: "[red]fail[/]", None: "[yellow]excluded[/]"}[c.passed]
    label = f"{mark}  [bold]{_escape(c.name)}[/]: {_escape(c.description)}"
    if c.measure is not None and c.children == []:
        label += f"  (measure {c.measure:g})"
    if c.decided_by:
        label += f"  decided by event {_escape(c.decided_by)}"
    elif c.passed is not None and not c.children:
        label += "  (no matching event in the window)"
    node = tree.add(label)
    if c.note:
        node.add(f"[yellow]{_escape(c.note)}[/]")
    for child in c.children:
        _condition_tree(node, child)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@app.command("explain", rich_help_panel=PANEL_COUNT)
def explain_cmd(
    definition: DefArg,
    entity_id: Annotated[
        str, typer.Argument(help="The entity to explain.", show_default=False, metavar="ENTITY")
    ],
    events: EventsOpt = None,
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.table,
) -> None:
    """Show one entity's events, each condition's result and the event that decided it.

    Runs on DuckDB only (one entity's events are few); --events reads an export's folder.
    """
    d = load_definition(definition)
    ex = explain(d, events_input(events, workspace), entity_id, as_of=as_of)
    if fmt is OutputFormat.json:
        print(jsonout.dumps(ex.to_json(), indent=2, default=str))
        raise typer.Exit(EXIT_OK)
    con = stdout_console(markup=True)  # verdict colours; every value from the data is escaped
    anchor_ids = {a.anchor_event_id for a in ex.anchors}
    events_table = Table(
        title=f"events of {_escape(entity_id)} (as of {ex.as_of:%Y-%m-%d %H:%M:%S} UTC)"
    )
    for col in ("", "event_id", "ts (UTC)", "seq", "type", "actor", "value", "attrs"):
        events_table.add_column(col)
    for e in ex.events:
        marker = (
            "anchor" if e["event_id"] in anchor_ids else ("" if e["visible"] else "after as-of")
        )
        events_table.add_row(
            marker,
            _escape(str(e["event_id"])),
            f"{e['ts']:%Y-%m-%d %H:%M:%S}",
            "" if e["seq"] is None else str(e["seq"]),
            _escape(str(e["type"])),
            _escape(str(e["actor"] or "")),
            "" if e["value"] is None else f"{e['value']:g}",
            _escape(str(e["attrs"] or "")),
        )
    con.print(events_table)
    if not ex.anchors:
        con.print(
            f"no anchor event ({_escape(d.anchor.type)}) for {_escape(entity_id)}: not a candidate"
        )
    for a in ex.anchors:
        colour = {"counted": "green", "not_counted": "red", "pending": "yellow"}.get(
            a.status, "magenta"
        )
        tree = Tree(
            f"anchor {_escape(a.anchor_event_id)} at {a.anchor_ts:%Y-%m-%d %H:%M:%S}"
            f"  ·  period {_escape(a.period)}"
            f"  ·  [{colour} bold]{_escape(a.status)}[/]"
            + (f"  ·  reason: {_escape(a.reason)}" if a.reason else "")
            + (f"  ·  quantity {a.quantity:g}" if a.status == "counted" else "")
        )
        for c in a.conditions:
            _condition_tree(tree, c)
        con.print(tree)
    raise typer.Exit(EXIT_OK)


@app.command("sql", rich_help_panel=PANEL_COUNT)
def sql_cmd(
    definition: DefArg,
    dialect: Annotated[
        str, typer.Option(help=f"One of: {', '.join(DIALECTS)}.", metavar="DIALECT")
    ] = "duckdb",
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The as-of time written into the query (ISO 8601, UTC unless an offset is "
            "given). Default: --known-at if given, else the latest event in the table, as "
            "'count' takes it.",
            metavar="TIME",
        ),
    ] = None,
    known_at: Annotated[
        str | None,
        typer.Option(
            "--known-at",
            help="Only the events the buyer had by then (recorded_at where the table has it, "
            "event time otherwise), as 'count --known-at'.",
            metavar="TIME",
        ),
    ] = None,
    events_table: Annotated[
        str, typer.Option(help="Name of the events table.", metavar="TABLE")
    ] = "events",
) -> None:
    """Print the SQL a definition compiles to, for DuckDB or another engine.

    Without --as-of the query reads the table's latest event, never the clock: same text twice.

    Example, in the folder that 'truecount demo' writes:
    truecount sql resolved_ticket.yaml --dialect spark --as-of 2026-02-01
    """
    dialect = choose(dialect, DIALECTS, "dialect")
    if not events_table.replace("_", "").replace(".", "").isalnum():
        fail(f"'{events_table}' is not a table name; use letters, digits, _ and .")
    d = load_definition(definition)
    moment = parse_time(as_of)
    known = _known_at_time(known_at)
    print(compile_sql(d, moment, dialect=dialect, events_table=events_table, known_at=known))
    raise typer.Exit(EXIT_OK)


def _known_at_time(text: str | None) -> dt.datetime | None:
    """``--known-at`` as naive UTC; an error names --known-at rather than --as-of."""
    if text is None:
        return None
    try:
        return parse_time(text)
    except InputError:
        fail(
            f"--known-at '{text}' is not a time; use ISO 8601, e.g. 2026-03-31 or "
            "2026-03-31T23:59:59Z (UTC unless an offset is given)"
        )


@app.command("schema", rich_help_panel=PANEL_START)
def schema_cmd() -> None:
    """Print the JSON Schema of the definition format (for editors and validators)."""
    from truecount.definition.schema import definition_schema

    print(jsonout.dumps(definition_schema(), indent=2))
    raise typer.Exit(EXIT_OK)
