"""The price scenarios as one self-contained SVG: cumulative cost by month, and the risk range.

Written by hand rather than with a plotting library: the picture is two small panels, and a
hand-written SVG has no fonts, scripts or images from elsewhere, renders the same in a browser,
a document and print, and escapes every label the same way (:func:`html.escape`).

* Left: the cumulative cost of each option month by month at the stated drift (exact figures).
  Options often cost the same (no drift: the discount is zero; no fee and no cap: the hybrid is
  the headline), so each line has its own dash pattern and width, drawn widest first, and an
  option whose line is another's says so in the legend: no series is hidden under another.
* Right: the Monte Carlo range of each option's total over the term — a bar from P10 to P90
  with a mark at P50.
"""

from __future__ import annotations

import html
import math
from decimal import Decimal
from typing import Final

from truecount.contract.price import PriceResult

WIDTH: Final[int] = 960
HEIGHT: Final[int] = 544
COLORS: Final[dict[str, str]] = {
    "vendor_headline": "#c0392b",
    "vendor_discounted": "#e67e22",
    "hybrid": "#2e86c1",
    "buyer_defined": "#27ae60",
}
#: Per option: a dash pattern (None: solid) and a width, widest first in drawing order, so a
#: line drawn over an equal one leaves the one below visible at its edges and in its gaps.
STROKES: Final[dict[str, tuple[str | None, float]]] = {
    "vendor_headline": (None, 6.0),
    "vendor_discounted": ("10 5", 4.0),
    "hybrid": ("3 4", 2.5),
    "buyer_defined": ("12 4 3 4", 1.5),
}
#: Two lines closer than this share of the axis everywhere are drawn as one (under 1 pixel).
SAME_LINE: Final[float] = 0.002
_FONT: Final[str] = 'font-family="Helvetica, Arial, sans-serif"'


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top`` (steps of 1, 2 or 5 times a power of 10)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def _amount(value: float) -> str:
    """Axis label: 1.2M, 350k, 900."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            text = f"{value / size:.2f}".rstrip("0").rstrip(".")
            return text + suffix
    return f"{value:g}"


def same_lines(cumulative: dict[str, list[float]], scale: float) -> dict[str, str]:
    """For each option whose line lies on an earlier option's line, that earlier option."""
    found: dict[str, str] = {}
    keys = list(cumulative)
    for i, key in enumerate(keys):
        for other in keys[:i]:
            gap = max(abs(a - b) for a, b in zip(cumulative[key], cumulative[other], strict=True))
            if gap <= SAME_LINE * scale:
                found[key] = found.get(other, other)
                break
    return found


def _stroke(key: str) -> str:
    dash, width = STROKES[key]
    pattern = f' stroke-dasharray="{dash}"' if dash else ""
    return f'stroke="{COLORS[key]}" stroke-width="{width}"{pattern}'


def price_chart_svg(result: PriceResult) -> str:
    """The chart for ``truecount price --chart FILE.svg``."""
    inp = result.inputs
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f"<title>{_e(f'Cost of four pricing options over {inp.months} months')}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    drift = f"{(inp.drift * 100).normalize():f}%"
    heading = (
        f"{inp.currency} · {inp.volume.normalize():,f} buyer outcomes a month · "
        f"vendor drift {drift} a year · {inp.months} months"
    )
    parts.append(
        f'<text x="20" y="28" font-size="15" font-weight="bold" {_FONT}>{_e(heading)}</text>'
    )

    # -- left: cumulative cost by month
    x0, x1, y0, y1 = 80.0, 560.0, 400.0, 70.0
    cumulative: dict[str, list[float]] = {}
    for o in result.options:
        total = Decimal(0)
        series = [0.0]
        for amount in o.monthly:
            total += amount
            series.append(float(total))
        cumulative[o.key] = series
    top = max(max(s) for s in cumulative.values())
    ticks = nice_ticks(top)
    ymax = ticks[-1] or 1.0

    def px(month: float) -> float:
        return x0 + (x1 - x0) * month / inp.months

    def py(value: float) -> float:
        return y0 - (y0 - y1) * value / ymax

    parts.append(
        f'<text x="{x0}" y="55" font-size="13" {_FONT}>'
        f"{_e(f'cumulative cost ({inp.currency}), at the stated drift')}</text>"
    )
    for t in ticks:
        y = py(t)
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(
            f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" {_FONT}>'
            f"{_e(_amount(t))}</text>"
        )
    step = 12 if inp.months > 36 else (6 if inp.months > 12 else 3)
    for m in range(0, inp.months + 1, step):
        x = px(m)
        parts.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + 4}" stroke="#333"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{y0 + 18}" font-size="11" text-anchor="middle" {_FONT}>'
            f"{m}</text>"
        )
    parts.append(
        f'<text x="{(x0 + x1) / 2}" y="{y0 + 36}" font-size="12" text-anchor="middle" {_FONT}>'
        "month</text>"
    )
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#333"/>')
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#333"/>')
    for o in result.options:
        points = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(cumulative[o.key]))
        parts.append(f'<polyline points="{points}" fill="none" {_stroke(o.key)}/>')
    same = same_lines(cumulative, ymax)
    labels = {o.key: o.label for o in result.options}

    # -- right: P10-P90 of the total, P50 marked
    rx0, rx1 = 620.0, 930.0
    rtop = max(float(o.risk.p90) for o in result.options)
    rticks = nice_ticks(max(rtop, 1.0), 4)
    rmax = rticks[-1] or 1.0

    def rx(value: float) -> float:
        return rx0 + (rx1 - rx0) * value / rmax

    parts.append(
        f'<text x="{rx0}" y="55" font-size="13" {_FONT}>'
        f"{_e(f'term total: P10 to P90, P50 marked ({inp.draws:,} draws)')}</text>"
    )
    for t in rticks:
        x = rx(t)
        parts.append(f'<line x1="{x:.1f}" y1="70" x2="{x:.1f}" y2="{y0}" stroke="#e5e5e5"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{y0 + 18}" font-size="11" text-anchor="middle" {_FONT}>'
            f"{_e(_amount(t))}</text>"
        )
    row = (y0 - 90.0) / len(result.options)
    for i, o in enumerate(result.options):
        yc = 95.0 + row * i + row / 2
        lo, mid, hi = float(o.risk.p10), float(o.risk.p50), float(o.risk.p90)
        color = COLORS[o.key]
        parts.append(
            f'<rect x="{rx(lo):.1f}" y="{yc - 9:.1f}" width="{max(rx(hi) - rx(lo), 1.0):.1f}" '
            f'height="18" fill="{color}" fill-opacity="0.35" stroke="{color}"/>'
        )
        parts.append(
            f'<line x1="{rx(mid):.1f}" y1="{yc - 12:.1f}" x2="{rx(mid):.1f}" y2="{yc + 12:.1f}" '
            f'stroke="{color}" stroke-width="3"/>'
        )
        parts.append(
            f'<text x="{rx0}" y="{yc - 16:.1f}" font-size="11" {_FONT}>{_e(o.label)}</text>'
        )

    # -- legend: one row per option (room for a "same line as" note)
    for i, o in enumerate(result.options):
        lx = 20.0
        ly = 444.0 + 22.0 * i
        parts.append(
            f'<line x1="{lx}" y1="{ly + 7}" x2="{lx + 26}" y2="{ly + 7}" {_stroke(o.key)}/>'
        )
        label = f"{o.label}: {o.total:,} {inp.currency}"
        if o.key in same:
            label += f" (same line as {labels[same[o.key]]})"
        parts.append(f'<text x="{lx + 32}" y="{ly + 12}" font-size="11" {_FONT}>{_e(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


__all__ = ["nice_ticks", "price_chart_svg", "same_lines"]
