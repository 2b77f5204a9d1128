"""The contract verbs: ``clauses`` (the schedule from the definition) and ``price``.

Both are pre-signing tools and report no finding: exit code 0 when the output was written, 2 on
bad input (through the app's error boundary).
"""

from __future__ import annotations

import datetime as dt
import enum
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from truecount import jsonout
from truecount.billing.terms import load_terms
from truecount.cli.app import (
    EXIT_OK,
    PANEL_CONTRACT,
    OutputFormat,
    app,
    stderr_console,
    stdout_console,
)
from truecount.cli.meter_cmds import DefArg
from truecount.cli.values import choose, parse_rate
from truecount.contract import (
    ClauseOptions,
    PriceInputs,
    PriceResult,
    build_schedule,
    price,
    price_chart_svg,
    render_html,
    render_markdown,
)
from truecount.contract.price import DEFAULT_DRAWS, show_price
from truecount.definition import load_definition
from truecount.engine.compile import DIALECTS
from truecount.errors import InputError, Location, Problem


class ClauseFormat(enum.StrEnum):
    md = "md"
    html = "html"
    json = "json"


class Delivery(enum.StrEnum):
    period = "period"
    daily = "daily"
    weekly = "weekly"


TermsOpt = Annotated[
    Path | None, typer.Option("--terms", "-t", help="Contract terms (YAML).", metavar="TERMS")
]


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            Problem(f"cannot write: {exc.strerror}", Location(file=str(out)), "choose another path")
        ) from None
    stderr_console().print(f"wrote {out}", markup=False)


@app.command("clauses", rich_help_panel=PANEL_CONTRACT)
def clauses_cmd(
    definition: DefArg,
    terms: TermsOpt = None,
    fmt: Annotated[
        ClauseFormat, typer.Option("--format", "-f", help="md, html or json.")
    ] = ClauseFormat.md,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file.", metavar="FILE")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The as-of time written into Annex A's query (default: today, 00:00 UTC).",
            metavar="TIME",
        ),
    ] = None,
    dialect: Annotated[
        str, typer.Option(help=f"SQL dialect of Annex A: {', '.join(DIALECTS)}.", metavar="DIALECT")
    ] = "duckdb",
    delivery: Annotated[
        Delivery, typer.Option(help="How often the raw event export is delivered.")
    ] = Delivery.period,
    notice_days: Annotated[
        int,
        typer.Option(
            help="Days of notice before the vendor changes its classifier.", metavar="DAYS"
        ),
    ] = 30,
) -> None:
    """Write the contract schedule from the definition: outcome, export, replay, charges.

    Example, in the folder that 'truecount demo' writes:
    truecount clauses resolved_ticket.yaml -t terms.yaml -o schedule.md
    """
    from truecount.engine.run import _parse_as_of

    d = load_definition(definition)
    t = load_terms(terms) if terms is not None else None
    moment = _parse_as_of(as_of) or dt.datetime.now(dt.UTC).replace(
        tzinfo=None, hour=0, minute=0, second=0, microsecond=0
    )
    options = ClauseOptions(
        as_of=moment,
        dialect=choose(dialect, DIALECTS, "dialect"),
        delivery=delivery.value,
        notice_days=notice_days,
    )
    schedule = build_schedule(d, t, options)
    if fmt == ClauseFormat.json:
        text = jsonout.dumps(schedule.to_json(), indent=2, ensure_ascii=False) + "\n"
    elif fmt == ClauseFormat.html:
        text = render_html(schedule)
    else:
        text = render_markdown(schedule)
    _write(text, out)
    raise typer.Exit(EXIT_OK)


# --------------------------------------------------------------------------- price


def _number(text: str, key: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace("_", "").replace(",", ""))
    except (InvalidOperation, ValueError):
        value = Decimal("NaN")
    if not value.is_finite():
        raise InputError(Problem(f"'{text}' is not a number", Location(key=key), what))
    return value


def _rate(text: str, key: str, low: str = "0", high: str = "10") -> Decimal:
    """A rate option as a fraction: 8%, 8 % or 0.08 (bounds from the option's meaning)."""
    return parse_rate(text, f"--{key}", low=Decimal(low), high=Decimal(high))


def _ratio(text: str) -> Decimal:
    """'1.25' or '41000/27000': the vendor's count over the buyer's at signing."""
    if "/" in text:
        top, _, bottom = text.partition("/")
        num = _number(top, "ratio", "e.g. 41000/27000")
        den = _number(bottom, "ratio", "e.g. 41000/27000")
        if den == 0:
            raise InputError(Problem("a ratio over 0", Location(key="ratio"), "e.g. 41000/27000"))
        from decimal import localcontext

        with localcontext() as ctx:
            ctx.prec = 40
            return num / den
    return _number(text, "ratio", "e.g. 1.5 or 41000/27000")


@app.command("price", rich_help_panel=PANEL_CONTRACT)
def price_cmd(
    terms: Annotated[
        Path, typer.Argument(help="Contract terms (YAML).", show_default=False, metavar="TERMS")
    ],
    volume: Annotated[
        str,
        typer.Option("--volume", help="Outcomes per month by the buyer's definition.", metavar="N"),
    ],
    months: Annotated[int, typer.Option(help="Contract term in months.", metavar="N")] = 24,
    drift: Annotated[
        str,
        typer.Option(
            help="Yearly rise of the vendor's count against the buyer's, e.g. 8% "
            "(as measured by `truecount drift`).",
            metavar="RATE",
        ),
    ] = "0%",
    ratio: Annotated[
        str,
        typer.Option(
            help="Vendor count / buyer count at signing, e.g. 1 or 41000/27000.", metavar="RATIO"
        ),
    ] = "1",
    buyer_price: Annotated[
        str | None,
        typer.Option(
            help="Unit price of the buyer-defined outcome (default: headline + premium).",
            metavar="PRICE",
        ),
    ] = None,
    buyer_premium: Annotated[
        str,
        typer.Option(
            help="Premium over the headline price for the buyer-defined outcome.", metavar="RATE"
        ),
    ] = "10%",
    platform_fee: Annotated[
        str | None,
        typer.Option(help="Hybrid platform fee per month (default: the terms').", metavar="AMOUNT"),
    ] = None,
    cap: Annotated[
        str | None,
        typer.Option(
            help="Hybrid annual cap on outcome charges (default: the terms').", metavar="AMOUNT"
        ),
    ] = None,
    draws: Annotated[int, typer.Option(help="Monte Carlo draws.", metavar="N")] = DEFAULT_DRAWS,
    seed: Annotated[
        int, typer.Option(min=0, help="Monte Carlo seed (a whole number from 0).", metavar="SEED")
    ] = 0,
    drift_sd: Annotated[
        str, typer.Option(help="Spread of the yearly drift (percentage points).", metavar="RATE")
    ] = "5%",
    volume_sd: Annotated[
        str,
        typer.Option(help="Spread of the volume (log scale, about that share).", metavar="RATE"),
    ] = "20%",
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.table,
    chart: Annotated[
        Path | None,
        typer.Option("--chart", help="Also draw the options to this SVG file.", metavar="FILE"),
    ] = None,
) -> None:
    """Cost four ways to buy the outcome over the term, with drift and risk.

    Example, in the folder that 'truecount demo' writes:
    truecount price terms.yaml --volume 9000 --drift 8% --ratio 41000/27000
    """
    t = load_terms(terms)
    inputs = PriceInputs.from_terms(
        t,
        _number(volume, "volume", "outcomes per month, e.g. 9000"),
        months=months,
        drift=_rate(drift, "drift", low="-1"),
        ratio=_ratio(ratio),
        buyer_price=None
        if buyer_price is None
        else _number(buyer_price, "buyer-price", "e.g. 5.50"),
        buyer_premium=_rate(buyer_premium, "buyer-premium"),
        platform_fee=None
        if platform_fee is None
        else _number(platform_fee, "platform-fee", "e.g. 2000"),
        annual_cap=None if cap is None else _number(cap, "cap", "e.g. 500000"),
        draws=draws,
        seed=seed,
        drift_sd=_rate(drift_sd, "drift-sd", high="1"),
        volume_sd=_rate(volume_sd, "volume-sd", high="2"),
    )
    result = price(inputs)
    if chart is not None:
        _write(price_chart_svg(result), chart)
    if fmt == OutputFormat.json:
        sys.stdout.write(jsonout.dumps(result.to_json(), indent=2) + "\n")
    else:
        render_price(result)
    raise typer.Exit(EXIT_OK)


def render_price(result: PriceResult) -> None:
    """The four options side by side, then the one break-even discount and the comparisons.

    Unit prices share one number of decimals (enough for the most precise of them), money is
    at the currency's minor unit, and options are named by their labels, never their keys.
    """
    inp = result.inputs
    places = result.price_places
    console = stdout_console()
    drift = f"{(inp.drift * 100).normalize():f}%"
    title = Text(
        f"{inp.months} months · {inp.currency} · {inp.volume.normalize():,f} buyer outcomes a "
        f"month · vendor/buyer at signing {inp.ratio:.4g} · drift {drift} a year"
    )
    table = Table(title=title, caption="exact, at the stated drift", box=box.SIMPLE_HEAD)
    table.add_column("option", no_wrap=True)
    table.add_column("unit price", justify="right", no_wrap=True)
    n_years = len(result.options[0].years)
    for y in range(n_years):
        table.add_column(f"year {y + 1}", justify="right", no_wrap=True)
    table.add_column("total", justify="right", style="bold", no_wrap=True)
    for o in result.options:
        table.add_row(
            Text(o.label),
            show_price(o.unit_price, places),
            *(f"{y:,}" for y in o.years),
            f"{o.total:,}",
        )
    console.print(table)
    risk = Table(
        title=f"risk over the term: {inp.draws:,} draws, seed {inp.seed}",
        caption="drift ~ Normal(drift, drift-sd); volume x LogNormal(0, volume-sd)",
        box=box.SIMPLE_HEAD,
    )
    risk.add_column("option", no_wrap=True)
    for h in ("mean", "P10", "P50", "P90"):
        risk.add_column(h, justify="right", no_wrap=True)
    for o in result.options:
        r = o.risk
        risk.add_row(Text(o.label), f"{r.mean:,}", f"{r.p10:,}", f"{r.p50:,}", f"{r.p90:,}")
    console.print(risk)
    for line in price_lines(result):
        console.print(line, markup=False, highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", markup=False, highlight=False, style="dim")


def price_lines(result: PriceResult) -> list[str]:
    """The figures under the tables, in words.

    Exactly one figure is called a discount — the drift-adjusted (break-even) discount, with
    what it keeps equal; the buyer-defined comparison is a unit price and a share of cost, so
    two different percentages are never both read as "the discount".
    """
    inp = result.inputs
    agreed = f"{(inp.agreed_discount * 100).normalize():f}%"
    saving = result.discount_vs_buyer * 100
    buyer = show_price(inp.buyer_price, inp.digits)
    compare = f"costs {abs(saving):.2f}% {'less' if saving >= 0 else 'more'} than"
    return [
        f"drift-adjusted discount (break-even): {result.stated_discount_pct}% off the "
        f"vendor-defined unit price keeps the term's cost at its level without drift "
        f"(exact {result.drift_discount * 100:.4f}%; the terms give {agreed})",
        f"buyer-defined at {buyer} {inp.currency} {compare} vendor-defined at the headline "
        f"price; the two cost the same at a buyer-defined unit price of "
        f"{result.break_even_buyer_price:,} {inp.currency}",
        "cheapest: " + _cheapest(result),
    ]


def _cheapest(result: PriceResult) -> str:
    """The cheapest option by label, each named once with the measures it wins on."""
    wins: dict[str, list[str]] = {}
    for key, when in (
        (result.cheapest, "at the stated drift"),
        (result.cheapest_p50, "P50"),
        (result.cheapest_p90, "P90"),
    ):
        wins.setdefault(key, []).append(when)
    parts = []
    for key, whens in wins.items():
        said = ", ".join(whens[:-1]) + " and " + whens[-1] if len(whens) > 1 else whens[0]
        parts.append(f"{result.label(key)} ({said})")
    return "; ".join(parts)
