"""The ``check`` verb: can this export support this definition, before anyone trusts a count?

Exit code 1 when a part of the definition (the anchor, a condition, the quantity) has no data
at all in the export, so a pipeline stops before counting on it; thin coverage is reported but
exits 0, because a low share can be the truth (few customers rate) rather than a gap.
"""

from __future__ import annotations

import enum
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from truecount import jsonout
from truecount.cli.app import EXIT_FINDING, EXIT_OK, PANEL_DATA, app, stdout_console
from truecount.cli.meter_cmds import (
    AsOfOpt,
    DefArg,
    EngineEventsOpt,
    EngineOpt,
    SparkMasterOpt,
    WorkspaceOpt,
    count_on,
    engine_name,
    events_input,
    require_local_events,
    show_choices,
    working,
)
from truecount.cli.values import parse_rate
from truecount.definition import load_definition
from truecount.engine.check import (
    DEFAULT_MIN_COVERAGE,
    CheckResult,
    ConditionCheck,
    NeedCheck,
    check,
    check_source,
)
from truecount.engine.run import VERDICTS_TABLE


class CheckFormat(enum.StrEnum):
    table = "table"
    json = "json"


_COLOUR = {"ok": "green", "thin": "yellow", "missing": "red"}


@app.command("check", rich_help_panel=PANEL_DATA)
def check_cmd(
    definition: DefArg,
    events: EngineEventsOpt = None,
    workspace: WorkspaceOpt = None,
    as_of: AsOfOpt = None,
    period: Annotated[
        str | None,
        typer.Option(help="Only coverage in this period, e.g. 2026-01.", metavar="PERIOD"),
    ] = None,
    min_coverage: Annotated[
        str | None,
        typer.Option(
            "--min-coverage",
            help="Share of candidates below which a condition that needs data is thin, "
            f"e.g. 50% or 0.5 (default {DEFAULT_MIN_COVERAGE:.0%}).",
            metavar="RATE",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        CheckFormat, typer.Option("--format", "-f", help="Output format.")
    ] = CheckFormat.table,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
) -> None:
    """Say whether the export has the data each condition needs; exit 1 where it has none.

    For each condition: the event types and fields it reads, whether the export has them, the
    share of candidates with the data per period, and the verdicts if_no_data would decide.

    Example, in the folder that 'truecount demo' writes:
    truecount check resolved_ticket.yaml -w workspace
    """
    d = load_definition(definition)
    share = (
        DEFAULT_MIN_COVERAGE
        if min_coverage is None
        else float(parse_rate(min_coverage, "--min-coverage"))
    )
    if engine_name(engine, spark_master) == "duckdb":
        with working("checking…"):
            result = check(
                d, events_input(events, workspace), as_of=as_of, period=period, min_coverage=share
            )
    else:
        # the candidates come from Spark's verdicts; coverage is read from the events here
        require_local_events(events, "check")
        counted = count_on(d, events, workspace, as_of, engine=engine, spark_master=spark_master)
        try:
            with working("checking…"):
                result = check_source(
                    d, counted.source, counted.as_of, period, share, verdicts=VERDICTS_TABLE
                )
        finally:
            counted.close()
    if fmt is CheckFormat.json:
        print(jsonout.dumps(result.to_json(), indent=2))
    else:
        _render(result)
        show_choices(result.choices)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FINDING)


# --------------------------------------------------------------------------- table


def _status(status: str) -> str:
    return f"[{_COLOUR[status]}]{status}[/]"


def _reads(n: NeedCheck) -> str:
    text = n.type + (f" by {n.actor}" if n.actor else "")
    if n.where:
        text += f" where {n.where}"
    if n.fields:
        text += "".join(f" · {f.name} on {f.events:,}" for f in n.fields)
    return escape(text)


def _by_if_no_data(decided: int, actions: list[str]) -> str:
    if not decided:
        return ""
    return f"{decided:,} → {'/'.join(actions)}" if actions else f"{decided:,}"


def _actions(needs: list[NeedCheck]) -> list[str]:
    return list(dict.fromkeys(n.if_no_data for n in needs if n.if_no_data))


def _summary(result: CheckResult) -> Table:
    d = result.definition
    table = Table(
        title=f"{escape(d.name)} v{d.version}  ·  as of {result.as_of:%Y-%m-%d %H:%M:%S} UTC"
        + (f"  ·  period {result.period}" if result.period else ""),
        caption=f"{escape(result.source)}  ·  {result.events:,} events  ·  "
        f"sha256 {d.sha256[:16]}…  ·  thin below {result.min_coverage:.0%}",
    )
    for name in ("part", "status", "reads", "matching events", "coverage", "by if_no_data"):
        table.add_column(name, justify="left" if name in {"part", "status", "reads"} else "right")
    a = result.anchor
    what = f"{a.pick} {a.type}" + (f" by {a.actor}" if a.actor else "")
    if a.where:
        what += f" where {a.where}"
    table.add_row(
        "anchor",
        _status(a.status),
        escape(what),
        f"{a.events_matching:,}",
        f"{a.candidates:,} candidates",
        "",
    )
    for c in result.conditions:
        t = c.total
        table.add_row(
            escape(c.name),
            _status(c.status),
            "\n".join(_reads(n) for n in c.needs),
            f"{c.events_matching:,}",
            _pct(t.coverage),
            _by_if_no_data(t.decided_by_if_no_data, _actions(c.needs)),
        )
    q = result.quantity
    if q is not None:
        table.add_row(
            "quantity",
            _status(q.status),
            "\n".join(f"{escape(n.form)} of {_reads(n)}" for n in q.needs),
            "\n".join(f"{n.events_matching:,}" for n in q.needs),
            "\n".join(_pct(n.total.coverage) for n in q.needs),
            "",
        )
    return table


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _periods(result: CheckResult) -> Table | None:
    if not result.anchor.periods:
        return None
    table = Table(title="coverage per period", caption="share of candidates with the data")
    table.add_column("period")
    table.add_column("candidates", justify="right")
    table.add_column("pending", justify="right")
    for c in result.conditions:
        table.add_column(escape(c.name), justify="right")
    by_cond: list[ConditionCheck] = result.conditions
    for i, p in enumerate(result.anchor.periods):
        cells = [escape(p.period), f"{p.candidates:,}", f"{p.pending:,}"]
        for c in by_cond:
            cp = c.periods[i]
            cell = _pct(cp.coverage)
            if cp.decided_by_if_no_data:
                cell += f" · {cp.decided_by_if_no_data:,} if_no_data"
            cell = f"[{_COLOUR['thin']}]{cell}[/]" if _is_thin(c, cp.coverage, result) else cell
            cells.append(cell)
        table.add_row(*cells)
    return table


def _is_thin(c: ConditionCheck, coverage: float | None, result: CheckResult) -> bool:
    expects = any(n.expects_data for n in c.needs)
    return expects and coverage is not None and coverage < result.min_coverage


def _render(result: CheckResult) -> None:
    con = stdout_console(markup=True)  # the colours of the statuses; every value is escaped
    con.print(_summary(result))
    periods = _periods(result)
    if periods is not None:
        con.print(periods)
    con.print()
    con.print(f"{_status(result.anchor.status)}  [bold]anchor[/]: {escape(result.anchor.note)}")
    for c in result.conditions:
        if len(c.needs) == 1 and c.needs[0].path == c.name:
            con.print(f"{_status(c.status)}  [bold]{escape(c.name)}[/]: {escape(c.note)}")
            continue
        con.print(f"{_status(c.status)}  [bold]{escape(c.name)}[/]: {escape(c.description)}")
        for n in c.needs:
            con.print(f"      {_status(n.status)}  {escape(n.path)}: {escape(n.note)}")
    if result.quantity is not None:
        con.print(f"{_status(result.quantity.status)}  [bold]quantity[/]:")
        for n in result.quantity.needs:
            con.print(f"      {_status(n.status)}  {escape(n.path)}: {escape(n.note)}")
    for note in result.notes:
        con.print(f"[yellow]note:[/] {escape(note)}")
    con.print()
    missing = result.missing
    if missing:
        parts = ", ".join(missing)
        con.print(
            f"[bold red]not supported:[/] no data at all for {escape(parts)}; "
            "a count on this export would be decided by missing data there"
        )
    elif result.status == "thin":
        thin = [name for name, s in result.parts if s == "thin"]
        con.print(
            f"[bold yellow]thin:[/] {escape(', '.join(thin))} "
            f"{'has' if len(thin) == 1 else 'have'} data for fewer than "
            f"{result.min_coverage:.0%} of candidates in some period"
        )
    else:
        con.print("[bold green]ok:[/] the export has the data every part of the definition reads")
