"""The report's charts: Vega-Lite specifications, rendered to static SVG offline.

Why Vega-Lite rendered by ``vl-convert`` rather than a hand-written SVG or a browser script: the
specifications are plain data (easy to test, no drawing code to maintain), the renderer is the
Vega project's own, shipped as one wheel with no browser and no network, and the output is a
static ``<svg>`` that prints and opens from an e-mail attachment. The report never runs Vega in
the reader's browser, so it carries no chart library at all.

Every spec here draws figures already computed by the library (the reconciliation, the drift
report); the only arithmetic is placing bars — a waterfall step's top and bottom are the running
total before and after it — which :func:`waterfall_bars` does in one place, tested.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import vl_convert
from markupsafe import Markup

#: Colours: agreed/counted in blue, what the buyer disputes in red, neutral steps in grey.
BLUE: Final[str] = "#2e86c1"
RED: Final[str] = "#c0392b"
GREEN: Final[str] = "#27ae60"
GREY: Final[str] = "#7f8c8d"
WIDTH: Final[int] = 620

_CONFIG: Final[dict[str, Any]] = {
    "font": "Helvetica, Arial, sans-serif",
    "view": {"stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 11, "grid": True, "gridColor": "#eee"},
    "legend": {"labelFontSize": 11, "titleFontSize": 11, "orient": "bottom"},
}

# Namespace declarations are not needed inline in HTML5, and leaving them out keeps the file free
# of any http(s) address, which makes "no network at view time" checkable by a plain search.
_XMLNS: Final[re.Pattern[str]] = re.compile(r'\s+xmlns(:xlink)?="[^"]*"')


def warm_up() -> threading.Thread:
    """Start the renderer in a background thread and return at once.

    The first chart a process renders costs about half a second more than the next ones (the
    renderer starts its script engine); started while the report's queries run, that start-up
    overlaps with them instead of adding to the build. Rendering a chart while it runs only
    waits for it."""
    tiny = {"data": {"values": []}, "mark": "point"}
    thread = threading.Thread(target=vl_convert.vegalite_to_svg, args=(tiny,), daemon=True)
    thread.start()
    return thread


def to_svg(spec: Mapping[str, Any]) -> Markup:
    """Render one Vega-Lite spec to an inline ``<svg>`` element, safe to place in the page as
    it is: the renderer writes every label and value as escaped SVG text (tested with a label
    holding ``<script>``), and the spec carries data only, never markup."""
    full = {"config": _CONFIG, "background": "white", **spec}
    svg = vl_convert.vegalite_to_svg(full)
    return Markup(_XMLNS.sub("", svg, count=2).replace("xlink:href", "href"))  # noqa: S704


# ---------------------------------------------------------------------------- waterfall
@dataclass(frozen=True)
class Bar:
    """One waterfall step placed on the axis: it spans ``low``..``high`` entities."""

    label: str
    kind: str
    entities: int
    low: int
    high: int


def waterfall_bars(steps: Sequence[tuple[str, str, int]]) -> list[Bar]:
    """Place ``(label, kind, entities)`` steps: totals stand on zero, a minus step hangs from
    the running total and lowers it, a plus step stands on it and raises it."""
    bars: list[Bar] = []
    level = 0
    for label, kind, n in steps:
        if kind in ("start", "subtotal", "total"):
            level = n
            bars.append(Bar(label, kind, n, 0, n))
        elif kind == "minus":
            bars.append(Bar(label, kind, n, level - n, level))
            level -= n
        else:
            bars.append(Bar(label, kind, n, level, level + n))
            level += n
    return bars


def waterfall_spec(bars: Sequence[Bar]) -> dict[str, Any]:
    """Horizontal waterfall, one row per step in order, labelled with its entities."""
    colour = {"start": GREY, "minus": RED, "subtotal": BLUE, "plus": GREEN, "total": BLUE}
    values = [
        {
            "step": f"{i + 1:02d}. {b.label}",
            "low": b.low,
            "high": b.high,
            "n": f"{b.entities:,}",
            "colour": colour.get(b.kind, GREY),
        }
        for i, b in enumerate(bars)
    ]
    y = {"field": "step", "type": "nominal", "sort": None, "title": None}
    return {
        "width": WIDTH - 260,
        "height": {"step": 22},
        "data": {"values": values},
        "layer": [
            {
                "mark": {"type": "bar"},
                "encoding": {
                    "y": {**y, "axis": {"labelLimit": 300}},
                    "x": {"field": "low", "type": "quantitative", "title": "entities"},
                    "x2": {"field": "high"},
                    "color": {"field": "colour", "type": "nominal", "scale": None},
                },
            },
            {
                "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 10},
                "encoding": {
                    "y": y,
                    "x": {"field": "high", "type": "quantitative"},
                    "text": {"field": "n"},
                },
            },
        ],
    }


# ---------------------------------------------------------------------------- periods
def periods_spec(rows: Sequence[Mapping[str, Any]], tolerance_pct: float) -> dict[str, Any]:
    """Billed and counted per period; the shaded band is counted +/- the tolerance, so a billed
    point outside it is a period beyond tolerance (marked red)."""
    values: list[dict[str, Any]] = []
    for r in rows:
        counted = int(r["buyer_counted"])
        values.append(
            {
                "period": r["period"],
                "billed": int(r["vendor_billed"]),
                "counted": counted,
                "band_low": counted * (1 - tolerance_pct / 100),
                "band_high": counted * (1 + tolerance_pct / 100),
                "beyond": "beyond tolerance" if r["beyond_tolerance"] else "within tolerance",
            }
        )
    x = {"field": "period", "type": "ordinal", "title": None, "axis": {"labelAngle": 0}}
    return {
        "width": WIDTH,
        "height": 220,
        "data": {"values": values},
        "layer": [
            {
                "mark": {"type": "area", "opacity": 0.18, "color": BLUE},
                "encoding": {
                    "x": x,
                    "y": {"field": "band_low", "type": "quantitative", "title": "entities"},
                    "y2": {"field": "band_high"},
                },
            },
            {
                "mark": {"type": "line", "point": True, "color": BLUE},
                "encoding": {"x": x, "y": {"field": "counted", "type": "quantitative"}},
            },
            {
                "mark": {"type": "point", "filled": True, "size": 90, "shape": "diamond"},
                "encoding": {
                    "x": x,
                    "y": {"field": "billed", "type": "quantitative"},
                    "color": {
                        "field": "beyond",
                        "type": "nominal",
                        "title": "billed",
                        "scale": {
                            "domain": ["within tolerance", "beyond tolerance"],
                            "range": [GREEN, RED],
                        },
                    },
                },
            },
        ],
    }


# ---------------------------------------------------------------------------- drift
def drift_rate_spec(
    rows: Sequence[Mapping[str, Any]],
    reference: float,
    observed: float | None,
    watch_for: float,
) -> dict[str, Any]:
    """The vendor-only rate per period with its interval, against the frozen baseline: the band
    runs from the baseline's observed rate to the reference rate the alarm uses, the dashed
    line is the rate the alarm is built to catch."""
    values = [
        {
            "period": r["period"],
            "rate": 100 * float(r["vendor_only_rate"]),
            "low": 100 * float(r["vendor_only_ci"][0]),
            "high": 100 * float(r["vendor_only_ci"][1]),
            "kind": "baseline" if r.get("baseline") else "watched",
        }
        for r in rows
        if r.get("vendor_only_rate") is not None and r.get("vendor_only_ci") is not None
    ]
    low = 100 * (observed if observed is not None else reference)
    x = {"field": "period", "type": "ordinal", "title": None, "axis": {"labelAngle": 0}}
    return {
        "width": WIDTH,
        "height": 200,
        "layer": [
            {
                "data": {"values": [{"low": low, "high": 100 * reference}]},
                "mark": {"type": "rect", "opacity": 0.2, "color": BLUE},
                "encoding": {
                    "y": {"field": "low", "type": "quantitative"},
                    "y2": {"field": "high"},
                },
            },
            {
                "data": {"values": [{"y": 100 * watch_for}]},
                "mark": {"type": "rule", "strokeDash": [6, 4], "color": RED},
                "encoding": {"y": {"field": "y", "type": "quantitative"}},
            },
            {
                "data": {"values": values},
                "mark": {"type": "rule", "color": GREY},
                "encoding": {
                    "x": x,
                    "y": {"field": "low", "type": "quantitative", "title": "vendor-only %"},
                    "y2": {"field": "high"},
                },
            },
            {
                "data": {"values": values},
                "mark": {"type": "point", "filled": True, "size": 70},
                "encoding": {
                    "x": x,
                    "y": {"field": "rate", "type": "quantitative"},
                    "color": {
                        "field": "kind",
                        "type": "nominal",
                        "title": "period",
                        "scale": {"domain": ["baseline", "watched"], "range": [BLUE, RED]},
                    },
                },
            },
        ],
    }


def cusum_spec(
    days: Sequence[tuple[str, float]], threshold: float, alarm_day: str | None
) -> dict[str, Any]:
    """The CUSUM statistic (its highest value each day) against the threshold; the day the
    alarm was first raised is marked."""
    values = [{"day": d, "s": s} for d, s in days]
    x = {"field": "day", "type": "temporal", "title": None, "axis": {"format": "%Y-%m-%d"}}
    layers: list[dict[str, Any]] = [
        {
            "data": {"values": values},
            "mark": {"type": "line", "color": BLUE, "interpolate": "step-after"},
            "encoding": {"x": x, "y": {"field": "s", "type": "quantitative", "title": "CUSUM"}},
        },
        {
            "data": {"values": [{"h": threshold}]},
            "mark": {"type": "rule", "color": RED, "strokeDash": [6, 4]},
            "encoding": {"y": {"field": "h", "type": "quantitative"}},
        },
    ]
    if alarm_day is not None:
        layers.append(
            {
                "data": {"values": [{"day": alarm_day, "label": f"alarm {alarm_day}"}]},
                "layer": [
                    {"mark": {"type": "rule", "color": RED}, "encoding": {"x": x}},
                    {
                        "mark": {"type": "text", "color": RED, "align": "left", "dx": 3, "y": 8},
                        "encoding": {"x": x, "text": {"field": "label"}},
                    },
                ],
            }
        )
    return {"width": WIDTH, "height": 180, "layer": layers}
