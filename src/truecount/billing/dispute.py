"""The dispute pack: what the buyer sends the vendor after a reconciliation.

Four files in one folder, each readable without truecount:

* ``entities.csv`` — one row per billed or counted entity with its cell and reason. Text cells
  that a spreadsheet would run as a formula (starting with ``= + - @``, tab or carriage return)
  get a leading apostrophe: the ids come from the vendor's file, and opening a dispute list must
  not execute anything the vendor wrote.
* ``letter.md`` and ``letter.html`` — one letter to the vendor, in Markdown and in HTML from the
  same structure (:mod:`truecount.report.letter_text`): who writes to whom about which invoice,
  the credit per cell and reason in plain words, the entities not yet due, the waterfall, the
  money per period under the contract, and the definition's text and SHA-256 so the vendor can
  recompute every number.
* ``reconciliation.json`` — the stable JSON of ``truecount reconcile --format json``.
* ``definition.yaml`` — the definition exactly as it was used (when its text is given).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb

from truecount.billing.reconcile import CELLS, CELLS_TABLE, Reconciliation
from truecount.billing.repeats import repeated_lines, repeats_warnings
from truecount.billing.terms import LetterDetails, Terms
from truecount.db import one_row as _one
from truecount.errors import TruecountError
from truecount.report.letter import Document, to_html, to_markdown
from truecount.report.letter_text import CellFacts, build_letter, cell_facts
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

#: The letter's two renderings, in every pack that carries one.
LETTER_MD: Final[str] = "letter.md"
LETTER_HTML: Final[str] = "letter.html"

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
    letter_html: Path | None = None


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


def render_letter(
    recon: Reconciliation,
    definition_text: str | None = None,
    invoice_files: Sequence[str] = (),
    buyer: str | None = None,
    vendor: str | None = None,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    terms: Terms | None = None,
    details: LetterDetails | None = None,
    descriptions: Mapping[str, str] | None = None,
    html: bool = False,
) -> str:
    """The letter as Markdown (or HTML). Deterministic: the same reconciliation, the same bytes.

    ``con`` holds the cell table reconcile left (else ``recon.entities`` is read); ``details``
    (buyer, vendor, invoice, contract) default to the terms' ``letter:`` section, and ``buyer``
    / ``vendor`` override them.
    """
    doc = build_document(
        recon,
        con,
        definition_text=definition_text,
        invoice_files=invoice_files,
        terms=terms,
        details=letter_details(terms, details, buyer=buyer, vendor=vendor),
        descriptions=descriptions,
    )
    return to_html(doc) if html else to_markdown(doc)


def letter_details(
    terms: Terms | None, details: LetterDetails | None = None, **overrides: Any
) -> LetterDetails:
    """The terms' letter section, then ``details``, then each override that is given."""
    base = terms.letter if terms is not None else LetterDetails()
    if details is not None:
        base = base.merged(**details.model_dump())
    return base.merged(**overrides)


def condition_descriptions(definition_text: str | None) -> dict[str, str]:
    """Each condition's description from the definition's text (empty when it has none)."""
    if definition_text is None:
        return {}
    from truecount.definition import parse_definition

    try:
        definition = parse_definition(definition_text)
    except TruecountError:
        return {}
    conditions = getattr(definition, "conditions", {}) or {}
    return {
        str(k): str(getattr(v, "description", "") or "")
        for k, v in conditions.items()
        if getattr(v, "description", "")
    }


def build_document(
    recon: Reconciliation,
    con: duckdb.DuckDBPyConnection | None,
    *,
    definition_text: str | None = None,
    invoice_files: Sequence[str] = (),
    terms: Terms | None = None,
    details: LetterDetails | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> Document:
    """The letter's structure, with the cell table read from ``con`` or ``recon.entities``."""
    if con is not None:
        facts = cell_facts(con)
    elif recon.entities is not None:
        with duckdb.connect() as tmp:
            configure(tmp)
            tmp.register(CELLS_TABLE, recon.entities)
            facts = cell_facts(tmp)
    else:
        facts = CellFacts()
    if descriptions is None:
        descriptions = condition_descriptions(definition_text)
    return build_letter(
        recon,
        facts,
        terms=terms,
        details=details,
        definition_text=definition_text,
        invoice_files=invoice_files,
        descriptions=descriptions,
    )


def write_letter(
    folder: Path,
    recon: Reconciliation,
    con: duckdb.DuckDBPyConnection | None,
    *,
    definition_text: str | None = None,
    invoice_files: Sequence[str] = (),
    terms: Terms | None = None,
    details: LetterDetails | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> tuple[Path, Path]:
    """Write ``letter.md`` and ``letter.html`` (one structure, rendered twice) into ``folder``.

    Used by the dispute pack and by the evidence pack (where the letter is signed with the rest).
    """
    doc = build_document(
        recon,
        con,
        definition_text=definition_text,
        invoice_files=invoice_files,
        terms=terms,
        details=details,
        descriptions=descriptions,
    )
    md = folder / LETTER_MD
    md.write_text(to_markdown(doc), encoding="utf-8")
    html = folder / LETTER_HTML
    html.write_text(to_html(doc), encoding="utf-8")
    return md, html


#: The view of the raw invoice lines the invoice loader leaves on its connection.
_INVOICE_ROWS: Final[str] = "_tc_invoice_rows"


def with_invoice_warnings(
    recon: Reconciliation, con: duckdb.DuckDBPyConnection | None
) -> Reconciliation:
    """``recon`` with the warnings about invoice lines repeated verbatim added, when ``con``
    still holds the invoice just loaded and they are not there yet.

    ``reconcile --format json`` carries these warnings; a pack written by another caller (the
    dashboard, a script) must not lose them, since a repeated line explains part of the
    duplicate cell the letter claims money for.
    """
    if con is None:
        return recon
    found = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND temporary", [_INVOICE_ROWS]
    ).fetchall()
    if not found or not found[0][0]:
        return recon
    extra = [w for w in repeats_warnings(*repeated_lines(con)) if w not in recon.warnings]
    if not extra:
        return recon
    return dataclasses.replace(recon, warnings=(*recon.warnings, *extra))


def write_dispute_pack(
    out: str | Path,
    recon: Reconciliation,
    con: duckdb.DuckDBPyConnection | None = None,
    definition_text: str | None = None,
    invoice_files: Sequence[str] = (),
    *,
    terms: Terms | None = None,
    details: LetterDetails | None = None,
    descriptions: Mapping[str, str] | None = None,
    buyer: str | None = None,
    vendor: str | None = None,
) -> DisputePack:
    """Write the pack into ``out`` (created). ``con`` is the connection reconcile ran on; without
    it the entities come from ``recon.entities`` (no invoice line ids).

    ``terms`` (the object reconcile ran under) gives the letter's money per cell and its
    ``letter:`` section; ``details``, then ``buyer`` / ``vendor``, override that section.
    """
    recon = with_invoice_warnings(recon, con)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    entities_csv = folder / "entities.csv"
    tmp: duckdb.DuckDBPyConnection | None = None
    if con is None:
        if recon.entities is None:
            raise ValueError("the reconciliation has no entities; pass the connection")
        tmp = duckdb.connect()
        configure(tmp)
        tmp.register(CELLS_TABLE, recon.entities)
    try:
        cells_con = con if con is not None else tmp
        assert cells_con is not None
        n = write_entities_csv(cells_con, entities_csv)
        letter_path, html_path = write_letter(
            folder,
            recon,
            cells_con,
            definition_text=definition_text,
            invoice_files=invoice_files,
            terms=terms,
            details=letter_details(terms, details, buyer=buyer, vendor=vendor),
            descriptions=descriptions,
        )
    finally:
        if tmp is not None:
            tmp.close()
    json_path = folder / "reconciliation.json"
    json_path.write_text(recon.to_json_text(), encoding="utf-8")
    def_path = None
    if definition_text is not None:
        def_path = folder / "definition.yaml"
        def_path.write_text(definition_text, encoding="utf-8")
    return DisputePack(folder, entities_csv, letter_path, json_path, def_path, n, html_path)
