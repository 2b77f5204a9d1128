"""Plain words for the reconciliation's internal names, for people who read letters and reports.

The JSON keeps the stable ids (``vendor_only``, ``no_anchor``, ``buyer_beyond_tolerance``);
every face a person reads — the dispute letter, the HTML report, the dashboard — says the same
thing in words, from this one table, so the three never describe a cell differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

#: Cell id -> (short label, one sentence a finance reader understands).
CELLS: Final[dict[str, tuple[str, str]]] = {
    "agreed": ("Agreed", "billed once, and counted by our definition in the same period"),
    "vendor_only": (
        "Billed, not an outcome",
        "billed, but it does not meet our definition of the outcome",
    ),
    "buyer_only": ("Outcome not billed", "meets our definition, but was not billed"),
    "pending": (
        "Not yet decided",
        "billed before its window closed; not yet due, and may be billed once decided",
    ),
    "unknown": ("Not in the export", "billed, but the event export has no record of it"),
    "duplicate": ("Billed twice", "billed on more than one invoice line"),
    "period_mismatch": (
        "Billed in another period",
        "an outcome, but billed in a period other than the one it happened in",
    ),
}

#: Reasons that are not condition names.
REASONS: Final[dict[str, str]] = {
    "no_anchor": "no qualifying event at all (for example, never closed by the AI agent)",
    "excluded": "excluded by the definition's exclusions",
    "not_counted": "not counted by our definition",
}

#: Parts of a credit that are not a cell (see truecount.billing.terms.CreditItem) -> words.
CREDIT_ITEMS: Final[dict[str, str]] = {
    "cell:duplicate": "the first line of each entity billed more than once",
    "cell:period_mismatch": "billed in a period other than the one it happened in",
    "extra_lines": "further invoice lines for entities billed more than once",
    "counted:buyer_only": "outcomes we count that were not billed (owed to you)",
    "counted:duplicate": "counted once among the entities billed more than once",
    "counted:period_mismatch": "counted in the period they happened in",
    "counted:elsewhere": "counted in the period, billed twice or in another period",
    "price": "invoice amounts against the contract's unit price less discount",
    "cap": "the contract's annual cap",
    "rounding": "rounding to the currency's minor unit",
}

#: Billing-source rule id -> how the terms decide which count is paid.
BILLING_SOURCES: Final[dict[str, str]] = {
    "buyer_beyond_tolerance": (
        "the vendor's count, unless it differs from ours by more than the tolerance; then ours"
    ),
    "vendor": "the vendor's count",
    "buyer": "our count",
}

#: Per-period billing source actually applied -> words.
APPLIED_SOURCES: Final[dict[str, str]] = {"vendor": "the vendor's count", "buyer": "our count"}


def cell_label(cell: str) -> str:
    """The short label of a cell; an unknown id is shown as it is."""
    return CELLS.get(cell, (cell, cell))[0]


def cell_sentence(cell: str) -> str:
    return CELLS.get(cell, (cell, cell))[1]


def reason_words(reason: str, descriptions: Mapping[str, str] | None = None) -> str:
    """A vendor-only reason in words: a known fixed reason, a condition's description from
    the definition when given, or the condition's name with underscores as spaces."""
    if reason in REASONS:
        return REASONS[reason]
    if descriptions and descriptions.get(reason):
        return f"fails '{reason.replace('_', ' ')}': {descriptions[reason]}"
    if reason.startswith("no data"):
        return f"the export has no data for it ({reason})"
    return f"fails the condition '{reason.replace('_', ' ')}'"


def billing_source_words(rule: str) -> str:
    return BILLING_SOURCES.get(rule, rule)


@dataclass(frozen=True)
class CreditWords:
    """How a total credit is said: the headline's label, the amount a reader sees (never
    negative) and the letter's sentence around it."""

    label: str
    amount: Decimal | None
    before: str
    after: str

    def sentence(self, shown: str) -> str:
        """The sentence with the amount as ``shown`` (a zero credit names no amount)."""
        if not self.after:
            return self.before
        return f"{self.before}{shown}{self.after}"


def credit_words(credit: Decimal | None) -> CreditWords:
    """A credit in words: positive, the buyer asks for it; negative, the invoice bills less
    than is due and nothing is asked (the amount is shown without its minus sign); zero,
    nothing is asked."""
    if credit is not None and credit > 0:
        return CreditWords("Credit due to us", credit, "We ask for a credit of ", ".")
    if credit is not None and credit < 0:
        return CreditWords(
            "Billed less than due",
            -credit,
            "The invoice bills less than is due, by ",
            "; we ask for no credit.",
        )
    return CreditWords("Credit due to us", credit, "We ask for no credit.", "")
