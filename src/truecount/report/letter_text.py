"""What the dispute letter says: the reconciliation in words a buyer can send as it is.

Every number comes from the reconciliation (:mod:`truecount.billing.reconcile`) and the money
per cell and reason from :func:`truecount.billing.terms.credit_breakdown`; every cell, reason and
billing source is said in the words of :mod:`truecount.report.words`, never by its id. The result
is a :class:`~truecount.report.letter.Document`, rendered as Markdown and as HTML by
:mod:`truecount.report.letter`.

Entities not yet decided (``pending``) are not disputed as non-outcomes: the letter lists them
apart as not yet due, and says how much of the credit they make up — under the buyer's count
they are not due *now*, and the vendor may bill those that turn out to be outcomes once decided.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import duckdb

from truecount.billing.reconcile import (
    CELLS,
    CELLS_TABLE,
    PeriodResult,
    Reconciliation,
    WaterfallStep,
)
from truecount.billing.terms import CreditItem, LetterDetails, Terms, credit_breakdown
from truecount.report import words
from truecount.report.letter import (
    DASH,
    Block,
    Bullets,
    CodeBlock,
    Document,
    Heading,
    Inline,
    Lines,
    Paragraph,
    Table,
    b,
    c,
    count,
    join_words,
    money,
    plural,
    t,
    when,
)

#: Pending entities listed in the letter itself; the rest are in entities.csv.
PENDING_LISTED: Final[int] = 50


@dataclass(frozen=True)
class CellFacts:
    """What the letter needs from the per-entity cell table, beyond the reconciliation."""

    #: period -> first failing condition (or other reason) -> vendor_only entities
    reasons: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: anchor period -> 'duplicate' / 'period_mismatch' -> counted entities
    counted: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: pending entities: (entity id, billed period, anchor time), the first PENDING_LISTED
    pending: tuple[tuple[str, str | None, Any], ...] = ()


def cell_facts(con: duckdb.DuckDBPyConnection) -> CellFacts:
    """Read the per-period reasons, counted entities and pending list off the cell table.

    Grouped the way :func:`truecount.billing.reconcile.reconcile_in` groups them (the billed period,
    else the anchor's), so the items add up to its per-period counts.
    """
    reasons: dict[str, dict[str, int]] = defaultdict(dict)
    for period, reason, n in con.execute(
        "SELECT coalesce(billed_period, buyer_period, '-'), reason, count(*) "  # noqa: S608
        f"FROM {CELLS_TABLE} WHERE cell = 'vendor_only' GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        reasons[str(period)][str(reason)] = int(n)
    counted: dict[str, dict[str, int]] = defaultdict(dict)
    for period, cell, n in con.execute(
        f"SELECT buyer_period, cell, count(*) FROM {CELLS_TABLE} "  # noqa: S608
        "WHERE buyer_status = 'counted' AND cell IN ('duplicate', 'period_mismatch') "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        counted[str(period)][str(cell)] = int(n)
    pending = con.execute(
        f"SELECT entity_id, billed_period, anchor_ts FROM {CELLS_TABLE} "  # noqa: S608
        f"WHERE cell = 'pending' ORDER BY entity_id LIMIT {PENDING_LISTED}"
    ).fetchall()
    return CellFacts(dict(reasons), dict(counted), tuple((str(e), p, ts) for e, p, ts in pending))


def terms_of(recon: Reconciliation) -> Terms | None:
    """The terms a reconciliation ran under, from its JSON summary (when no object is given)."""
    if recon.terms is None:
        return None
    s = recon.terms
    data = {
        "truecount_terms": 1,
        **{k: s[k] for k in ("currency", "unit_price", "tolerance", "billing_source") if k in s},
        **{k: s[k] for k in ("platform_fee", "annual_cap", "discount") if k in s},
    }
    due = recon.totals.amount_due
    if due is not None:
        exponent = due.as_tuple().exponent
        if isinstance(exponent, int):
            data["minor_units"] = max(0, -exponent)
    return Terms.model_validate(data)


@dataclass(frozen=True)
class CellMoney:
    """One cell's entities and its share of the credit, with the items that make it up."""

    cell: str
    entities: int
    amount: Decimal
    items: tuple[CreditItem, ...]


def money_by_cell(
    recon: Reconciliation, terms: Terms, facts: CellFacts
) -> tuple[list[CellMoney], list[CreditItem]]:
    """The credit per cell (in the order of the cells) and the items that are no cell.

    Cells add up their items over the periods; extra lines and counted duplicates belong to
    the duplicate cell, the entities counted in their own period to the period-mismatch cell.
    The cells' amounts plus the other items equal the reconciliation's total credit.
    """
    per = credit_breakdown(terms, recon.periods, facts.reasons, facts.counted)
    merged: dict[tuple[str, str], list[Any]] = {}
    for items in per.values():
        for i in items:
            slot = merged.setdefault((i.kind, i.name), [0, Decimal(0)])
            slot[0] += i.entities
            slot[1] += i.amount
    items = [CreditItem(k, n, int(v[0]), v[1]) for (k, n), v in merged.items()]

    def home(i: CreditItem) -> str | None:
        if i.kind in ("cell", "counted") and i.name in words.CELLS:
            return i.name
        if i.kind == "reason":
            return "vendor_only"
        if i.kind == "extra_lines" or (i.kind, i.name) == ("counted", "duplicate"):
            return "duplicate"
        return None

    cells: list[CellMoney] = []
    for cell in CELLS:
        mine = tuple(i for i in items if home(i) == cell)
        n = getattr(recon.totals, cell)
        if n or mine:
            total = sum((i.amount for i in mine), Decimal(0))
            cells.append(CellMoney(cell, n, total, mine))
    rest = [i for i in items if home(i) is None]
    rest.sort(key=lambda i: ("counted", "price", "cap", "rounding").index(i.kind))
    return cells, rest


def item_words(i: CreditItem, descriptions: Mapping[str, str] | None = None) -> str:
    """An item of the credit in words."""
    if i.kind == "reason":
        return words.reason_words(i.name, descriptions)
    key = f"{i.kind}:{i.name}" if i.name else i.kind
    if i.kind == "cell":
        return words.CREDIT_ITEMS.get(key, words.cell_sentence(i.name))
    key = f"{i.kind}:{i.name}" if i.name else i.kind
    return words.CREDIT_ITEMS.get(key, key.replace("_", " "))


def step_words(step: WaterfallStep, descriptions: Mapping[str, str] | None) -> str:
    """A waterfall step in words (the JSON's step labels carry the cell ids)."""
    if step.condition is not None:
        return words.reason_words(step.condition, descriptions)
    fixed = {
        "billed by the vendor": "billed on your invoice",
        "not in the export (unknown)": words.cell_sentence("unknown"),
        "billed more than once (duplicate)": words.cell_sentence("duplicate"),
        "window still open (pending)": "not yet decided: not yet due, may be billed once decided",
        "billed in another period (period_mismatch)": words.cell_sentence("period_mismatch"),
        "agreed": "agreed: billed once and counted by us",
        "counted, never billed (buyer_only)": words.cell_sentence("buyer_only"),
        "counted among the duplicates": words.CREDIT_ITEMS["counted:duplicate"],
        "counted in its anchor's period (period_mismatch)": words.CREDIT_ITEMS[
            "counted:period_mismatch"
        ],
        "counted by the buyer": "counted by us",
    }
    return fixed.get(step.label, step.label.replace("_", " "))


def _sign(kind: str) -> str:
    return {"minus": "\u2212 ", "plus": "+ ", "subtotal": "= ", "total": "= "}.get(kind, "")


def _period_rows(rows: Sequence[PeriodResult], currency: str | None) -> list[tuple[Inline, ...]]:
    out: list[tuple[Inline, ...]] = []
    for p in rows:
        diff = "n/a" if p.difference_pct is None else f"{p.difference_pct:+.2f}%"
        source = (
            "per period"
            if p.billing_source == "mixed"
            else words.APPLIED_SOURCES.get(p.billing_source or "", DASH)
        )
        out.append(
            (
                (t(p.period),),
                (t(count(p.vendor_billed)),),
                (t(count(p.buyer_counted)),),
                (t(diff),),
                (t("yes" if p.beyond_tolerance else "no"),),
                (t(source),),
                (t(money(p.amount_billed, currency)),),
                (t(money(p.amount_due, currency)),),
                (t(money(p.credit, currency)),),
            )
        )
    return out


def build_letter(
    recon: Reconciliation,
    facts: CellFacts,
    *,
    terms: Terms | None = None,
    details: LetterDetails | None = None,
    definition_text: str | None = None,
    invoice_files: Sequence[str] = (),
    descriptions: Mapping[str, str] | None = None,
) -> Document:
    """The letter, as a structure both renderers read. Deterministic for the same inputs."""
    d = recon.definition
    tot = recon.totals
    cur = recon.currency
    who = details or LetterDetails()
    if terms is None:
        terms = terms_of(recon)
    name = str(d.get("name") or "outcome definition")
    version = d.get("version")
    title = f"Invoice reconciliation: {name}" + (f" v{version}" if version else "")
    blocks: list[Block] = []

    # --- who, what, when
    head: list[Inline] = []
    if who.vendor:
        head.append((t("To: "), t(who.vendor)))
    if who.buyer:
        head.append((t("From: "), t(who.buyer)))
    invoice_ref = _invoice_reference(who)
    if invoice_ref:
        head.append((t("Invoice: "), t(invoice_ref)))
    if invoice_files:
        head.append((t("Invoice files: "), t(", ".join(Path(f).name for f in invoice_files))))
    if who.contract:
        head.append((t("Contract: "), t(who.contract)))
    if recon.as_of is not None:
        head.append((t("Events known as of: "), t(when(recon.as_of))))
    if head:
        blocks.append(Lines(tuple(head)))
    blocks.append(Paragraph((t("Dear colleagues,"),)))

    periods = [p.period for p in recon.periods]
    span = (
        f"{periods[0]} to {periods[-1]}" if len(periods) > 1 else (periods[0] if periods else DASH)
    )
    diff = "n/a" if tot.difference_pct is None else f"{tot.difference_pct:+.2f}%"
    your_invoice = f"Your invoice {invoice_ref}" if invoice_ref else "Your invoice"
    blocks.append(
        Paragraph(
            (
                t(f"{your_invoice} bills "),
                b(count(tot.vendor_billed)),
                t(
                    f" {plural(tot.vendor_billed, 'outcome')} ({name}) on "
                    f"{count(tot.vendor_lines)} {plural(tot.vendor_lines, 'line')} for {span}. "
                ),
                t("Recomputed from the event export under the definition below, we count "),
                *(
                    (b(count(tot.buyer_counted)), t(f" ({diff} billed against counted)."))
                    if tot.buyer_counted
                    else (b("none"), t("."))
                ),
            )
        )
    )
    cells: list[Any] = []
    rest: list[CreditItem] = []
    if terms is not None:
        blocks.append(Paragraph(_money_sentence(recon, who)))
        cells, rest = money_by_cell(recon, terms, facts)
    if tot.pending:
        blocks.append(Paragraph(_pending_sentence(tot.pending, cells, cur)))
    if recon.warnings:
        # what reconcile found in the invoice itself (lines repeated verbatim, line ids used
        # twice): the vendor should hear it with the figures it explains
        blocks.append(Paragraph((t("About the invoice's lines:"),)))
        blocks.append(Bullets(tuple((t(w[:1].upper() + w[1:] + "."),) for w in recon.warnings)))

    # --- money per cell and reason
    if terms is not None:
        blocks.append(Heading("Where the credit comes from"))
        rows: list[tuple[Inline, ...]] = []
        strong: set[int] = set()
        for cm in cells:
            if cm.cell == "agreed":
                continue
            strong.add(len(rows))
            rows.append(
                (
                    (t(words.cell_label(cm.cell)),),
                    (t(words.cell_sentence(cm.cell)),),
                    (t(count(cm.entities)),),
                    (t(money(cm.amount, cur)),),
                )
            )
            if len(cm.items) > 1:
                for i in cm.items:
                    rows.append(
                        (
                            (t(""),),
                            (t("\u2014 " + item_words(i, descriptions)),),
                            (t(count(i.entities)),),
                            (t(money(i.amount, cur)),),
                        )
                    )
        for i in rest:
            rows.append(
                (
                    (t("Adjustment" if i.kind != "counted" else "Counted"),),
                    (t(item_words(i, descriptions)),),
                    (t(count(i.entities) if i.entities else ""),),
                    (t(money(i.amount, cur)),),
                )
            )
        strong.add(len(rows))
        rows.append(
            (
                (t("Credit"),),
                (t("amount billed less amount due"),),
                (t(""),),
                (t(money(tot.credit, cur)),),
            )
        )
        blocks.append(
            Table(
                ("cell", "what it means", "entities", "credit"),
                tuple(rows),
                ("l", "l", "r", "r"),
                name="credit",
                strong=frozenset(strong),
            )
        )
        unpaid = [p.period for p in recon.periods if p.billing_source == "vendor"]
        if unpaid:
            blocks.append(
                Paragraph(
                    (
                        t(
                            f"In {join_words(unpaid)} the counts are within the contract's "
                            "tolerance, so the amount due follows your count there: entities "
                            "disputed in those periods are listed but not credited."
                        ),
                    )
                )
            )

    # --- the waterfall
    blocks.append(Heading("From your billed count to ours"))
    wrows: list[tuple[Inline, ...]] = []
    wstrong: set[int] = set()
    for step in recon.waterfall():
        if step.kind in ("start", "subtotal", "total"):
            wstrong.add(len(wrows))
        wrows.append(
            ((t(_sign(step.kind) + step_words(step, descriptions)),), (t(count(step.entities)),))
        )
    blocks.append(
        Table(("step", "entities"), tuple(wrows), ("l", "r"), "waterfall", frozenset(wstrong))
    )
    blocks.append(
        Paragraph(
            (
                t("Each disputed entity appears once, under its first failing condition; "),
                c("entities.csv"),
                t(" lists every entity with its cell, reason and invoice lines."),
            )
        )
    )

    # --- per period
    blocks.append(Heading("Per period"))
    header = (
        "period",
        "billed",
        "counted",
        "difference",
        "beyond tolerance",
        "paid on",
        "amount billed",
        "amount due",
        "credit",
    )
    prows = _period_rows([*recon.periods, tot], cur)
    blocks.append(
        Table(
            header,
            tuple(prows),
            ("l", "r", "r", "r", "l", "l", "r", "r", "r"),
            "periods",
            frozenset({len(prows) - 1}),
        )
    )

    # --- reasons, every failing condition
    if recon.reasons:
        blocks.append(Heading("Why billed outcomes do not count"))
        rrows = tuple(
            ((t(words.reason_words(r, descriptions)),), (t(count(n)),)) for r, n in recon.reasons
        )
        blocks.append(Table(("reason", "billed entities"), rrows, ("l", "r"), "reasons"))
        blocks.append(
            Paragraph(
                (
                    t(
                        "An entity may fail more than one condition, so these may add up to more "
                        "than the entities billed that are not outcomes."
                    ),
                )
            )
        )

    # --- pending, listed
    if tot.pending:
        blocks.append(Heading("Not yet due"))
        blocks.append(
            Paragraph(
                (
                    t(
                        "These entities were billed before their window closed: not yet due "
                        "\u2014 may be billed once decided."
                    ),
                    t(
                        f" The first {len(facts.pending)} of {count(tot.pending)} are listed; "
                        if len(facts.pending) < tot.pending
                        else ""
                    ),
                    *(
                        (c("entities.csv"), t(" has them all."))
                        if len(facts.pending) < tot.pending
                        else ()
                    ),
                )
            )
        )
        blocks.append(
            Table(
                ("entity", "billed in", "first qualifying event"),
                tuple(((t(e),), (t(p or DASH),), (t(when(ts)),)) for e, p, ts in facts.pending),
                ("l", "l", "l"),
                "pending",
            )
        )

    # --- the definition and how the export was read
    blocks.append(Heading("The definition"))
    blocks.append(
        Paragraph((t("SHA-256 of its canonical form: "), c(str(d.get("sha256") or DASH))))
    )
    if definition_text is not None:
        blocks.append(CodeBlock(definition_text, "yaml"))
    blocks.append(
        Paragraph(
            (
                t("Anyone can recompute these numbers from the same export with "),
                c("truecount reconcile"),
                t(" and check the hash; "),
                c("truecount sql"),
                t(" prints the query."),
            )
        )
    )
    if recon.choices:
        blocks.append(Heading("How the export was read"))
        blocks.append(
            Paragraph(
                (
                    t(
                        "The export was read in the platform's own shape; where it forced a "
                        "choice, this is the one made:"
                    ),
                )
            )
        )
        items: list[Inline] = []
        for ch in recon.choices:
            opts = ", ".join(f"{k} = {v!r}" for k, v in sorted(ch["options"].items()))
            items.append((t(f"{ch['source']}: {opts or 'defaults'}"),))
        blocks.append(Bullets(tuple(items)))

    blocks.append(Heading("Files"))
    files: list[Inline] = [
        (c("entities.csv"), t(": every billed or counted entity, its cell and reason")),
        (c("reconciliation.json"), t(": the numbers above, machine-readable")),
        (c("letter.md"), t(" and "), c("letter.html"), t(": this letter")),
    ]
    if definition_text is not None:
        files.append((c("definition.yaml"), t(": the definition as used")))
    blocks.append(Bullets(tuple(files)))
    blocks.append(Lines(((t("Yours sincerely,"),), *(((t(who.buyer),),) if who.buyer else ()))))
    return Document(title, tuple(blocks))


def _invoice_reference(who: LetterDetails) -> str:
    """'INV-7 of 2026-02-03', 'INV-7', 'of 2026-02-03' or ''."""
    parts = []
    if who.invoice_number:
        parts.append(who.invoice_number)
    if who.invoice_date:
        parts.append(f"of {who.invoice_date.isoformat()}")
    return " ".join(parts)


def _money_sentence(recon: Reconciliation, who: LetterDetails) -> Inline:
    tot = recon.totals
    cur = recon.currency
    terms = recon.terms or {}
    contract = f"the contract ({who.contract})" if who.contract else "the contract"
    rule = words.billing_source_words(str(terms.get("billing_source")))
    beyond = [p.period for p in recon.periods if p.beyond_tolerance]
    opening: Inline
    if beyond:
        opening = (
            t(
                f"The counts differ by more than the tolerance of {terms.get('tolerance')} "
                f"in {join_words(beyond)}. Under {contract}, the amount due is based on {rule}: "
            ),
        )
    else:
        opening = (
            t(
                f"Every period is within the tolerance of {terms.get('tolerance')}. Under "
                f"{contract}, the amount due is based on {rule}: "
            ),
        )
    spans: list[Any] = [
        *opening,
        b(money(tot.amount_due, cur)),
        t(" against "),
        b(money(tot.amount_billed, cur)),
        t(" billed. "),
    ]
    said = words.credit_words(tot.credit)
    if said.after:
        spans += [t(said.before), b(money(said.amount, cur)), t(said.after)]
    else:
        spans.append(t(said.before))
    return tuple(spans)


def _pending_sentence(n: int, cells: Sequence[CellMoney], currency: str | None) -> Inline:
    share = next((cm.amount for cm in cells if cm.cell == "pending"), None)
    spans = [
        t(
            f"{count(n)} billed {plural(n, 'entity', 'entities')} "
            f"{'was' if n == 1 else 'were'} not yet decided when the events were read: "
        ),
        b("not yet due \u2014 may be billed once decided"),
        t(f". {'It is' if n == 1 else 'They are'} listed below, apart from the disputed ones."),
    ]
    if share:
        later = (
            "it if it turns out to be an outcome"
            if n == 1
            else "those that turn out to be outcomes"
        )
        spans.append(
            t(
                f" The credit above includes {money(share, currency)} for "
                f"{'it' if n == 1 else 'them'}: it is not due now, and you may bill {later} "
                "on a later invoice."
            )
        )
    elif share is not None:
        spans.append(t(" Within tolerance they are paid as billed; nothing is credited for them."))
    return tuple(spans)
