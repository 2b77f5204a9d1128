"""Rich tables for a reconciliation: per period, and the waterfall (CLI and demo share them).

Every value from a file (period keys, condition names, the definition's name) goes into a
:class:`rich.text.Text` or a plain cell, never into console markup, so a crafted id cannot
restyle or hide a line of the output.
"""

from __future__ import annotations

from decimal import Decimal

from rich.table import Table
from rich.text import Text

from truecount.billing.reconcile import PeriodResult, Reconciliation


def _money(value: Decimal | None) -> str:
    return "\u2013" if value is None else f"{value:,}"


def _title(recon: Reconciliation) -> Text:
    d = recon.definition
    title = Text(f"{d.get('name') or 'reconciliation'}")
    if d.get("version"):
        title.append(f" v{d['version']}")
    if recon.as_of is not None:
        title.append(f"  ·  as of {recon.as_of:%Y-%m-%d %H:%M} UTC")
    return title


def _diff(p: PeriodResult) -> Text:
    diff = "n/a" if p.difference_pct is None else f"{p.difference_pct:+.2f}%"
    return Text(diff, style="bold red" if p.beyond_tolerance else "green")


def period_table(recon: Reconciliation) -> Table:
    """Entities per cell, per period and in total (counts of entities, not lines)."""
    table = Table(title=_title(recon), caption="entities per cell")
    headers = [
        "period",
        "billed",
        "counted",
        "agreed",
        "vendor\nonly",
        "buyer\nonly",
        "pending",
        "unknown",
        "dupli-\ncate",
        "period\nmismatch",
        "billed vs\ncounted",
    ]
    for h in headers:
        table.add_column(h, justify="left" if h == "period" else "right", no_wrap=True)
    rows = [*recon.periods, recon.totals]
    for i, p in enumerate(rows):
        table.add_row(
            Text(p.period),
            f"{p.vendor_billed:,}",
            f"{p.buyer_counted:,}",
            f"{p.agreed:,}",
            f"{p.vendor_only:,}",
            f"{p.buyer_only:,}",
            f"{p.pending:,}",
            f"{p.unknown:,}",
            f"{p.duplicate:,}",
            f"{p.period_mismatch:,}",
            _diff(p),
            style="bold" if i == len(rows) - 1 else None,
        )
    return table


def money_table(recon: Reconciliation) -> Table | None:
    """Amount billed, amount due and credit per period under the terms (None without terms)."""
    if recon.terms is None:
        return None
    caption = Text(
        f"tolerance {recon.terms.get('tolerance')}  ·  rule: {recon.terms.get('billing_source')}"
        f"  ·  {recon.terms.get('unit_price')} {recon.currency} per outcome"
    )
    table = Table(title=Text(f"Under the terms ({recon.currency})"), caption=caption)
    for h in (
        "period",
        "billed vs counted",
        "billing source",
        "amount billed",
        "amount due",
        "credit",
    ):
        table.add_column(
            h, justify="left" if h in ("period", "billing source") else "right", no_wrap=True
        )
    rows = [*recon.periods, recon.totals]
    for i, p in enumerate(rows):
        table.add_row(
            Text(p.period),
            _diff(p),
            p.billing_source or "\u2013",
            _money(p.amount_billed),
            _money(p.amount_due),
            _money(p.credit),
            style="bold" if i == len(rows) - 1 else None,
        )
    return table


def waterfall_table(recon: Reconciliation) -> Table:
    """From the vendor's billed count to the buyer's, step by step, then the money."""
    table = Table(title="From billed to counted", show_header=True)
    table.add_column("step")
    table.add_column("entities", justify="right")
    signs = {"start": "", "minus": "\u2212 ", "plus": "+ ", "subtotal": "= ", "total": "= "}
    for step in recon.waterfall():
        if step.entities == 0 and step.kind in ("minus", "plus"):
            continue
        style = "bold" if step.kind in ("start", "subtotal", "total") else None
        table.add_row(Text(signs[step.kind] + step.label), f"{step.entities:,}", style=style)
    t = recon.totals
    if recon.terms is not None:
        cur = recon.currency or ""
        table.add_section()
        table.add_row("amount billed", f"{_money(t.amount_billed)} {cur}")
        table.add_row("amount due under the terms", f"{_money(t.amount_due)} {cur}")
        table.add_row(
            Text("credit due to the buyer", style="bold"),
            Text(f"{_money(t.credit)} {cur}", style="bold"),
        )
    return table
