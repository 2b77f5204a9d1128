"""The contract side: the schedule written from the definition, and price scenarios.

* :func:`build_schedule` turns a definition (and, optionally, the terms) into the contract
  schedule — numbered operational clauses, the raw-event-export, replay, re-classification,
  charges and change-notice clauses, with the compiled query and the canonical definition as
  annexes — so that the words of the contract and the code that counts cannot disagree.
  :func:`render_markdown`, :func:`render_html` and :meth:`Schedule.to_json` print it.
* :func:`price` costs the four ways of buying the same outcomes over a contract term, with
  the drift-adjusted discount and a seeded Monte Carlo over drift and volume;
  :func:`price_chart_svg` draws them.
"""

from truecount.contract.chart import price_chart_svg
from truecount.contract.clauses import (
    ClauseOptions,
    Parameter,
    Schedule,
    build_schedule,
)
from truecount.contract.price import (
    OPTION_KEYS,
    OptionCost,
    PriceInputs,
    PriceResult,
    Risk,
    break_even_discount,
    price,
)
from truecount.contract.render import render_html, render_markdown

__all__ = [
    "OPTION_KEYS",
    "ClauseOptions",
    "OptionCost",
    "Parameter",
    "PriceInputs",
    "PriceResult",
    "Risk",
    "Schedule",
    "break_even_discount",
    "build_schedule",
    "price",
    "price_chart_svg",
    "render_html",
    "render_markdown",
]
