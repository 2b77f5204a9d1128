"""The dispute pack: what the buyer sends the vendor after a reconciliation.

Four files in one folder, each readable without truecount:

* ``entities.csv`` — one row per billed or counted entity with its cell and reason. Text cells
  that a spreadsheet would run as a formula (starting with ``= + - @``, tab or carriage return)
  get a leading apostrophe: the ids come from the vendor's file, and opening a dispute list must
  not execute anything the vendor wrote.
* ``letter.md`` — a letter to the vendor: the waterfall from their billed count to the buyer's,
  the money per period under the contract, and the definition's text and SHA-256 so the vendor
  can recompute every number.
* ``reconciliation.json`` — the stable JSON of ``truecount reconcile --format json``.
* ``definition.yaml`` — the definition exactly as it was used (when its text is given).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import duckdb

from truecount.db import one_row as _one
from truecount.reconcile import CELLS, CELLS_TABLE, PeriodResult, Reconciliation
from truecount.workspace import configure

#: Characters that make a spreadsheet treat a cell as a formula.
FORMULA_START: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r")

DASH: Final[str] = "\u2013"

#: Cells the buyer disputes: billed, but not owed as billed.
DISPUTED: Final[tuple[str, ...]] = (
    "vendor_only",
    "unknown",
    "duplicate",
    "pending",
    "period_mismatch",
)

ENTITY_COLUMNS: Final[tuple[str, ...]] = (
    "entity_id", "cell", "disputed", "reason", "lines", "line_ids", "billed_period",
    "billed_amount", "buyer_status", "buyer_period", "anchor_ts",
)  # fmt: skip


@dataclass(frozen=True)
class DisputePack:
    """Paths of the files written."""

    folder: Path
    entities_csv: Path
    letter: Path
    json: Path
    definition: Path | None
    entities: int


def neutralize(text: str) -> str:
    """A CSV cell that no spreadsheet runs as a formula (leading apostrophe when needed)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _neutralize_sql(column: str) -> str:
    """The same rule in SQL over a fixed column name (no user text reaches this string)."""
    starts = ", ".join(["'='", "'+'", "'-'", "'@'", "chr(9)", "chr(13)"])
    return f"CASE WHEN left({column}, 1) IN ({starts}) THEN '''' || {column} ELSE {column} END"


def _amount_sql(column: str) -> str:
    """A stored decimal as text without the storage scale's trailing zeros (5.000000 -> 5.00)."""
    return f"regexp_replace(CAST({column} AS VARCHAR), '(\\.[0-9][0-9][0-9]*?)0+$', '\\1')"


def md_escape(text: str) -> str:
    """Escape text for a Markdown paragraph or table cell (ids and names come from files)."""
    text = text.replace("\r", " ").replace("\n", " ")
    text = re.sub(r"([\\`*\[\]<>|~])", r"\\\1", text)
    # an underscore inside a word is literal in CommonMark; at a word edge it may emphasise
    text = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", text)
    return re.sub(r"&(?=#?\w+;)", "&amp;", text)


def _fence(text: str) -> str:
    """A code fence longer than any backtick run inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _money(value: Decimal | None, currency: str | None) -> str:
    if value is None:
        return "\u2013"
    return f"{value:,} {currency}" if currency else f"{value:,}"


def write_entities_csv(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Write the per-entity cells (left on ``con`` by reconcile) as a neutralised CSV."""
    found = _one(con, "SELECT count(*) FROM duckdb_views() WHERE view_name = '_tc_lines'")
    has_lines = bool(found and found[0])
    line_ids = (
        "(SELECT entity_id, string_agg(line_id, ';' ORDER BY line_no) AS line_ids "
        "FROM _tc_lines GROUP BY entity_id)"
        if has_lines
        else "(SELECT NULL::VARCHAR AS entity_id, NULL::VARCHAR AS line_ids WHERE false)"
    )
    disputed = ", ".join(f"'{c}'" for c in DISPUTED)
    order = " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(CELLS))
    rel = con.sql(
        f"SELECT {_neutralize_sql('c.entity_id')} AS entity_id, c.cell, "  # noqa: S608
        f"c.cell IN ({disputed}) AS disputed, {_neutralize_sql('c.reason')} AS reason, "
        f"coalesce(c.lines, 0) AS lines, {_neutralize_sql('l.line_ids')} AS line_ids, "
        f"{_neutralize_sql('c.billed_period')} AS billed_period, "
        f"{_amount_sql('c.billed_amount')} AS billed_amount, "
        f"c.buyer_status, {_neutralize_sql('c.buyer_period')} AS buyer_period, c.anchor_ts "
        f"FROM {CELLS_TABLE} c LEFT JOIN {line_ids} l ON l.entity_id = c.entity_id "
        f"ORDER BY CASE c.cell {order} ELSE 99 END, c.entity_id"
    )
    rel.write_csv(str(path), header=True)
    n = _one(con, f"SELECT count(*) FROM {CELLS_TABLE}")  # noqa: S608
    return int(n[0]) if n else 0


def _period_table(rows: Sequence[PeriodResult], currency: str | None) -> list[str]:
    out = [
        "| period | billed | counted | difference | beyond tolerance | billing source "
        "| amount billed | amount due | credit |",
        "|---|--:|--:|--:|:-:|---|--:|--:|--:|",
    ]
    for p in rows:
        diff = "n/a" if p.difference_pct is None else f"{p.difference_pct:+.2f}%"
        out.append(
            f"| {md_escape(p.period)} | {p.vendor_billed:,} | {p.buyer_counted:,} | {diff} | "
            f"{'yes' if p.beyond_tolerance else 'no'} | {p.billing_source or DASH} | "
            f"{_money(p.amount_billed, currency)} | {_money(p.amount_due, currency)} | "
            f"{_money(p.credit, currency)} |"
        )
    return out


def render_letter(
    recon: Reconciliation,
    definition_text: str | None = None,
    invoice_files: Sequence[str] = (),
    buyer: str | None = None,
    vendor: str | None = None,
) -> str:
    """The Markdown letter. Deterministic: the same reconciliation gives the same bytes."""
    d = recon.definition
    t = recon.totals
    cur = recon.currency
    name = md_escape(str(d.get("name") or "outcome definition"))
    version = d.get("version")
    sha = str(d.get("sha256") or "")
    lines: list[str] = []
    lines.append(f"# Invoice reconciliation: {name}" + (f" v{version}" if version else ""))
    lines.append("")
    lines.append(f"To: {md_escape(vendor) if vendor else 'the vendor'}  ")
    lines.append(f"From: {md_escape(buyer) if buyer else 'the buyer'}  ")
    if recon.as_of is not None:
        lines.append(f"Events known as of: {recon.as_of.isoformat(sep=' ')} UTC  ")
    if invoice_files:
        lines.append("Invoice: " + ", ".join(md_escape(Path(f).name) for f in invoice_files))
    lines.append("")
    periods = [p.period for p in recon.periods]
    span = (
        f"{periods[0]} to {periods[-1]}" if len(periods) > 1 else (periods[0] if periods else DASH)
    )
    diff = "n/a" if t.difference_pct is None else f"{t.difference_pct:+.2f}%"
    lines.append(
        f"Your invoice bills **{t.vendor_billed:,}** {name} outcomes on {t.vendor_lines:,} lines "
        f"for {md_escape(span)}. Recomputed from the event export under the definition below, "
        f"we count **{t.buyer_counted:,}** ({diff} billed against counted)."
    )
    beyond = [p.period for p in recon.periods if p.beyond_tolerance]
    if recon.terms is not None:
        tol = recon.terms.get("tolerance")
        if beyond:
            lines.append(
                f"The counts differ by more than the contract's tolerance of {tol} in "
                f"{md_escape(', '.join(beyond))}; under the billing-source rule "
                f"({md_escape(str(recon.terms.get('billing_source')))}) the amount due is "
                f"**{_money(t.amount_due, cur)}** against **{_money(t.amount_billed, cur)}** "
                f"billed. We ask for a credit of **{_money(t.credit, cur)}**."
            )
        else:
            lines.append(
                f"Every period is within the contract's tolerance of {tol}. Amount due: "
                f"**{_money(t.amount_due, cur)}**; credit: **{_money(t.credit, cur)}**."
            )
    lines.append("")
    lines.append("## From your billed count to ours")
    lines.append("")
    lines.append("| step | entities |")
    lines.append("|---|--:|")
    signs = {"start": "", "minus": "\u2212 ", "plus": "+ ", "subtotal": "= ", "total": "= "}
    for step in recon.waterfall():
        label = signs[step.kind] + md_escape(step.label)
        if step.kind in ("start", "subtotal", "total"):
            label = f"**{label}**"
        lines.append(f"| {label} | {step.entities:,} |")
    if recon.terms is not None:
        lines.append(f"| **amount due** | {_money(t.amount_due, cur)} |")
    lines.append("")
    lines.append(
        "Each disputed entity appears once, under its first failing condition; "
        "`entities.csv` lists every entity with its cell, reason and invoice lines."
    )
    lines.append("")
    lines.append("## Per period")
    lines.append("")
    lines += _period_table([*recon.periods, recon.totals], cur)
    lines.append("")
    if recon.reasons:
        lines.append("## Why billed outcomes do not count")
        lines.append("")
        lines.append("| condition | billed entities failing it |")
        lines.append("|---|--:|")
        for cond, n in recon.reasons:
            lines.append(f"| {md_escape(cond)} | {n:,} |")
        lines.append("")
        lines.append(
            "An entity may fail more than one condition, so these may add up to more "
            "than the vendor_only cell."
        )
        lines.append("")
    lines.append("## The definition")
    lines.append("")
    lines.append(f"SHA-256 of its canonical form: `{sha}`")
    lines.append("")
    if definition_text is not None:
        fence = _fence(definition_text)
        lines.append(f"{fence}yaml")
        lines.append(definition_text.rstrip("\n"))
        lines.append(fence)
        lines.append("")
    lines.append(
        "Anyone can recompute these numbers from the same export with "
        "`truecount reconcile` and check the hash; `truecount sql` prints the query."
    )
    lines.append("")
    if recon.choices:
        lines.append("## How the export was read")
        lines.append("")
        lines.append(
            "The export was read in the platform's own shape; where it forced a choice, "
            "this is the one made (change it with `truecount ingest --source ... -o KEY=VALUE`):"
        )
        lines.append("")
        for c in recon.choices:
            shown = ", ".join(
                f"`{md_escape(k)}` = `{md_escape(json.dumps(v))}`"
                for k, v in sorted(c["options"].items())
            )
            lines.append(f"- {md_escape(str(c['source']))}: {shown or 'defaults'}")
        lines.append("")
    lines.append("## Files")
    lines.append("")
    lines.append("- `entities.csv`: every billed or counted entity, its cell and reason")
    lines.append("- `reconciliation.json`: the numbers above, machine-readable")
    if definition_text is not None:
        lines.append("- `definition.yaml`: the definition as used")
    lines.append("")
    return "\n".join(lines)


def write_dispute_pack(
    out: str | Path,
    recon: Reconciliation,
    con: duckdb.DuckDBPyConnection | None = None,
    definition_text: str | None = None,
    invoice_files: Sequence[str] = (),
    **letter: Any,
) -> DisputePack:
    """Write the pack into ``out`` (created). ``con`` is the connection reconcile ran on; without
    it the entities come from ``recon.entities`` (no invoice line ids)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    entities_csv = folder / "entities.csv"
    if con is not None:
        n = write_entities_csv(con, entities_csv)
    else:
        if recon.entities is None:
            raise ValueError("the reconciliation has no entities; pass the connection")
        with duckdb.connect() as tmp:
            configure(tmp)
            tmp.register(CELLS_TABLE, recon.entities)
            n = write_entities_csv(tmp, entities_csv)
    letter_path = folder / "letter.md"
    letter_path.write_text(
        render_letter(recon, definition_text, invoice_files, **letter), encoding="utf-8"
    )
    json_path = folder / "reconciliation.json"
    json_path.write_text(recon.to_json_text(), encoding="utf-8")
    def_path = None
    if definition_text is not None:
        def_path = folder / "definition.yaml"
        def_path.write_text(definition_text, encoding="utf-8")
    return DisputePack(folder, entities_csv, letter_path, json_path, def_path, n)
