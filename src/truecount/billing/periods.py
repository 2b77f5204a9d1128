"""The per-period result row shared by reconciliation and contract terms.

Why a module of its own: :mod:`truecount.billing.reconcile` builds these rows and
:mod:`truecount.billing.terms` prices them, so both need the type. Kept here, imports run one way
(reconcile -> terms -> periods) instead of in a circle (DESIGN.md §9).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

#: The cells, in the order reports show them.
CELLS: Final[tuple[str, ...]] = (
    "agreed", "vendor_only", "buyer_only", "pending", "unknown", "duplicate", "period_mismatch",
)  # fmt: skip


@dataclass(frozen=True)
class PeriodResult:
    """One row of the reconciliation: counts of entities per cell, and money when known."""

    period: str
    vendor_billed: int = 0
    buyer_counted: int = 0
    agreed: int = 0
    vendor_only: int = 0
    buyer_only: int = 0
    pending: int = 0
    unknown: int = 0
    duplicate: int = 0
    period_mismatch: int = 0
    difference_pct: float | None = None
    beyond_tolerance: bool = False
    billing_source: str | None = None
    amount_billed: Decimal | None = None
    amount_due: Decimal | None = None
    credit: Decimal | None = None
    #: Invoice lines in the period (a duplicated entity has several).
    vendor_lines: int = 0
    #: Billed entities the buyer counts among the duplicate cell (for the waterfall).
    duplicate_counted: int = 0

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape (docs/reconcile.md); money as decimal strings."""

        def money(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        return {
            "period": self.period,
            "vendor_billed": self.vendor_billed,
            "buyer_counted": self.buyer_counted,
            **{cell: getattr(self, cell) for cell in CELLS},
            "difference_pct": self.difference_pct,
            "beyond_tolerance": self.beyond_tolerance,
            "billing_source": self.billing_source,
            "amount_billed": money(self.amount_billed),
            "amount_due": money(self.amount_due),
            "credit": money(self.credit),
            "vendor_lines": self.vendor_lines,
        }
