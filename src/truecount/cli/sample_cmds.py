"""The ``sample`` verb: draw the hand-review sample from a pack, and evaluate it once reviewed.

``truecount sample PACK`` plans and draws the sample and writes the review worksheet (exit 0).
``truecount sample --evaluate WORKSHEET`` reads the reviewed worksheet and concludes: exit 0 when
the upper deviation limits support reliance on the meter, 1 when they do not (a finding a
pipeline can stop on), 2 on bad input — an unreviewed row, an unknown outcome, a missing column.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from truecount import jsonout
from truecount.cli.app import (
    EXIT_FINDING,
    EXIT_OK,
    PANEL_AUDIT,
    app,
    fail,
    stderr_console,
    stdout_console,
)
from truecount.cli.values import output_file

if TYPE_CHECKING:
    from truecount.sampling import Evaluation, Frame, Parameters, Plan

#: Defaults when no rate is given: AS 2315's figures for heavy reliance on a control.
DEFAULT_TOLERABLE = "5%"
DEFAULT_CONFIDENCE = "95%"
DEFAULT_WORKSHEET = Path("sample-worksheet.csv")


class SampleFormat(enum.StrEnum):
    table = "table"
    json = "json"


@app.command("sample", rich_help_panel=PANEL_AUDIT)
def sample_cmd(
    pack: Annotated[
        Path | None,
        typer.Argument(
            help="Evidence or dispute pack folder, or its entities.csv (the sampling frame).",
            show_default=False,
            metavar="PACK",
        ),
    ] = None,
    tolerable: Annotated[
        str | None,
        typer.Option(
            "--tolerable", help="Tolerable deviation rate, 5% or 0.05 (default 5%).", metavar="RATE"
        ),
    ] = None,
    confidence: Annotated[
        str | None,
        typer.Option(
            "--confidence",
            help="Confidence, 95% or 0.95 (default 95%); 1 minus it is the risk of overreliance.",
            metavar="RATE",
        ),
    ] = None,
    expected: Annotated[
        str | None,
        typer.Option("--expected", help="Expected deviation rate (default 0%).", metavar="RATE"),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            help="Seed of the draw (default: from the frame's SHA-256).",
            metavar="SEED",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help=f"Worksheet to write (default {DEFAULT_WORKSHEET}).", metavar="CSV"
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing worksheet.")
    ] = False,
    evaluate_path: Annotated[
        Path | None,
        typer.Option(
            "--evaluate",
            help="Evaluate this reviewed worksheet instead of drawing a sample.",
            metavar="WORKSHEET",
        ),
    ] = None,
    fmt: Annotated[
        SampleFormat, typer.Option("--format", "-f", help="Output format.")
    ] = SampleFormat.table,
) -> None:
    """Draw a stratified audit sample of reconciled entities for hand review, or evaluate one."""
    # imported here: scipy takes a second to load, and no other verb should pay for it
    from truecount.sampling import (
        default_seed,
        draw,
        evaluate,
        load_frame,
        make_plan,
        write_worksheet,
    )

    if evaluate_path is not None:
        given = [
            name
            for name, value in (
                ("PACK", pack),
                ("--tolerable", tolerable),
                ("--confidence", confidence),
                ("--expected", expected),
                ("--seed", seed),
                ("--out", out),
            )
            if value is not None
        ]
        if given:
            fail(f"--evaluate takes the plan from the worksheet; drop {', '.join(given)}")
        result = evaluate(evaluate_path)
        if fmt is SampleFormat.json:
            print(jsonout.dumps(result.to_json(), indent=2))
        else:
            _render_evaluation(result)
        raise typer.Exit(EXIT_OK if result.supports_reliance else EXIT_FINDING)

    if pack is None:
        fail("give a PACK to sample from, or --evaluate WORKSHEET")
    params = _parameters(tolerable, confidence, expected)
    target = output_file(out or DEFAULT_WORKSHEET)
    if target.exists() and not force:
        fail(f"{target} exists (it may hold a review); choose another --out or add --force")
    frame = load_frame(pack)
    plan = make_plan(frame.populations(), params)
    chosen = default_seed(frame.sha256) if seed is None else seed
    source = "frame digest" if seed is None else "--seed"
    sample = draw(frame, plan, chosen)
    write_worksheet(target, frame, plan, chosen, sample, source)
    if fmt is SampleFormat.json:
        print(jsonout.dumps(_plan_json(frame, plan, chosen, source, target), indent=2))
    else:
        _render_plan(frame, plan, chosen, source, target)
    stderr_console().print(
        f"wrote {target} ({plan.sample:,} items to review); when done: "
        f"truecount sample --evaluate {target}",
        markup=False,
    )
    raise typer.Exit(EXIT_OK)


def _parameters(tolerable: str | None, confidence: str | None, expected: str | None) -> Parameters:
    """The plan's rates from the options; a bad one is a usage error naming the option."""
    from truecount.sampling import Parameters, SamplingError, parse_rate

    try:
        return Parameters(
            parse_rate(tolerable or DEFAULT_TOLERABLE, "--tolerable"),
            parse_rate(confidence or DEFAULT_CONFIDENCE, "--confidence"),
            parse_rate(expected or "0", "--expected", allow_zero=True),
        )
    except SamplingError as exc:
        problem = exc.problems[0]
        fail(problem.message + (f" ({problem.hint})" if problem.hint else ""))


def _plan_json(frame: Frame, plan: Plan, seed: int, source: str, out: Path) -> dict[str, object]:
    total = plan.population
    return {
        "frame": str(frame.path),
        "frame_sha256": frame.sha256,
        "statement": str(frame.statement) if frame.statement else None,
        "statement_sha256": frame.statement_sha256,
        "seed": seed,
        "seed_source": source,
        "parameters": plan.parameters.to_json(),
        "base_plan": {"sample": plan.base[0], "allowed": plan.base[1]},
        "oversampled_plan": {"sample": plan.oversampled[0], "allowed": plan.oversampled[1]},
        "population": total,
        "sample": plan.sample,
        "strata": [s.to_json(total) for s in plan.strata],
        "worksheet": str(out),
    }


def _render_plan(frame: Frame, plan: Plan, seed: int, source: str, out: Path) -> None:
    from truecount.sampling import pct

    p = plan.parameters
    table = Table(
        title=Text(
            f"audit sample · tolerable {pct(p.tolerable)} · confidence {pct(p.confidence)}"
            f" · expected {pct(p.expected)}"
        ),
        caption=Text(f"frame {frame.path} · sha256 {frame.sha256[:16]}…"),
    )
    for name in ("stratum", "population", "weight", "sample", "allowed deviations", "note"):
        table.add_column(name, justify="left" if name in ("stratum", "note") else "right")
    total = plan.population
    for s in plan.strata:
        note = "whole stratum" if s.census else ("oversampled" if s.oversampled else "")
        table.add_row(
            Text(s.name),
            f"{s.population:,}",
            f"{s.population / total:.1%}" if total else "",
            f"{s.sample:,}",
            f"{s.allowed:,}",
            note,
        )
    table.add_row("total", f"{total:,}", "100.0%", f"{plan.sample:,}", "", "", style="bold")
    console = stdout_console()
    console.print(table)
    console.print(Text(f"seed {seed} ({source}); worksheet {out}"))
    again = f"truecount sample {frame.path} --tolerable {pct(p.tolerable)} "
    again += f"--confidence {pct(p.confidence)} --expected {pct(p.expected)} --seed {seed}"
    console.print(Text(f"re-draw: {again}", style="dim"))


def _render_evaluation(result: Evaluation) -> None:
    from truecount.sampling import pct

    p = result.worksheet.plan.parameters
    table = Table(
        title=Text(
            f"audit sample evaluation · tolerable {pct(p.tolerable)} · "
            f"confidence {pct(p.confidence)}"
        ),
        caption=Text(f"{result.worksheet.path}"),
    )
    for name in ("stratum", "population", "sample", "deviations", "rate", "upper limit", ""):
        table.add_column(name, justify="left" if name in ("stratum", "") else "right")
    for s in result.strata:
        verdict = Text(
            "supports reliance" if s.supports_reliance else "does not support reliance",
            style="green" if s.supports_reliance else "bold red",
        )
        table.add_row(
            Text(s.name),
            f"{s.population:,}",
            f"{s.sample:,}" + (" (all)" if s.census else ""),
            f"{s.deviations:,}",
            pct(s.rate),
            _limit(s.upper_limit, p.tolerable),
            verdict,
        )
    table.add_row(
        "weighted overall",
        f"{result.population:,}",
        f"{result.sample:,}",
        f"{result.deviations:,}",
        pct(result.weighted_rate),
        _limit(result.weighted_upper_limit, p.tolerable),
        "",
        style="bold",
    )
    console = stdout_console()
    console.print(table)
    if result.supports_reliance:
        console.print(
            Text(
                f"Conclusion: supports reliance — every stratum's upper deviation limit is at "
                f"most the tolerable {pct(p.tolerable)}.",
                style="green",
            )
        )
    else:
        worst = ", ".join(f"{s.name} {_limit(s.upper_limit, p.tolerable)}" for s in result.failing)
        console.print(
            Text(
                f"Conclusion: does not support reliance — upper deviation limit above the "
                f"tolerable {pct(p.tolerable)} in {worst}.",
                style="bold red",
            )
        )


def _limit(value: float, tolerable: Decimal) -> str:
    """An upper limit in percent with enough places to show which side of T it lies on."""
    for places in range(2, 7):
        shown = round(value * 100, places)
        if shown != float(tolerable * 100) or value == float(tolerable):
            return f"{shown:.{places}f}%"
    return f"{value * 100:.6f}%"
