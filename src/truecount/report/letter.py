"""The dispute letter as one structure, rendered as Markdown and as HTML.

The letter is built once — headings, paragraphs, tables, a code block — out of plain text and
numbers from the reconciliation, then rendered twice: :func:`to_markdown` escapes every piece of
text for CommonMark, :func:`to_html` hands the same structure to a Jinja2 template with
autoescape on. Neither renderer knows what the letter says, so the two cannot tell the vendor
different things, and no text from a file (a vendor name, an entity id, an invoice file name)
is ever pasted into markup unescaped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Final

import jinja2

#: A piece of inline text: plain, strong, or code (fixed, trusted text such as a file name).
Kind = str  # 'text' | 'strong' | 'code'


@dataclass(frozen=True)
class Span:
    """One run of inline text; ``kind`` says how it is set (the text is always data)."""

    text: str
    kind: Kind = "text"


Inline = tuple[Span, ...]


def t(text: str) -> Span:
    return Span(text)


def b(text: str) -> Span:
    return Span(text, "strong")


def c(text: str) -> Span:
    return Span(text, "code")


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    spans: Inline


@dataclass(frozen=True)
class Lines:
    """Short lines kept apart (an address block)."""

    lines: tuple[Inline, ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[Inline, ...]


@dataclass(frozen=True)
class Table:
    """A table; ``align`` per column: ``l`` or ``r``. ``strong`` rows are totals."""

    header: tuple[str, ...]
    rows: tuple[tuple[Inline, ...], ...]
    align: tuple[str, ...]
    name: str = ""
    strong: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class CodeBlock:
    text: str
    language: str = ""


Block = Heading | Paragraph | Lines | Bullets | Table | CodeBlock


@dataclass(frozen=True)
class Document:
    title: str
    blocks: tuple[Block, ...]


# ------------------------------------------------------------------------------- markdown
def md_text(text: str) -> str:
    """Escape text for a Markdown paragraph or table cell (ids and names come from files)."""
    text = text.replace("\r", " ").replace("\n", " ")
    text = re.sub(r"([\\`*\[\]<>|~#])", r"\\\1", text)
    # an underscore inside a word is literal in CommonMark; at a word edge it may emphasise
    text = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", text)
    return re.sub(r"&(?=#?\w+;)", "&amp;", text)


def fence(text: str, char: str = "`") -> str:
    """A code fence (or inline code delimiter) longer than any run of ``char`` in ``text``."""
    longest = max((len(m) for m in re.findall(re.escape(char) + "+", text)), default=0)
    return char * max(3, longest + 1)


def _md_inline(spans: Inline) -> str:
    out: list[str] = []
    for s in spans:
        if s.kind == "strong":
            out.append(f"**{md_text(s.text)}**")
        elif s.kind == "code":
            tick = "`" * (max((len(m) for m in re.findall("`+", s.text)), default=0) + 1)
            pad = " " if s.text.startswith("`") or s.text.endswith("`") else ""
            body = s.text.replace("|", "\\|")
            out.append(f"{tick}{pad}{body}{pad}{tick}")
        else:
            out.append(md_text(s.text))
    return "".join(out)


def to_markdown(doc: Document) -> str:
    """The letter as CommonMark (GitHub tables): every text escaped, code fenced."""
    lines = [f"# {md_text(doc.title)}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            lines.append("#" * block.level + " " + md_text(block.text))
        elif isinstance(block, Paragraph):
            # a paragraph that starts like a list item or a heading stays a paragraph
            lines.append(re.sub(r"^([-+=]|\d+[.)])(?=\s|$)", r"\\\1", _md_inline(block.spans)))
        elif isinstance(block, Lines):
            lines += [_md_inline(x) + "  " for x in block.lines]
            lines[-1] = lines[-1].rstrip()
        elif isinstance(block, Bullets):
            lines += ["- " + _md_inline(x) for x in block.items]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(md_text(h) for h in block.header) + " |")
            lines.append("|" + "|".join("--:" if a == "r" else "---" for a in block.align) + "|")
            for i, row in enumerate(block.rows):
                cells = [_md_inline(x) for x in row]
                if i in block.strong:
                    cells = [f"**{x}**" if x else x for x in cells]
                lines.append("| " + " | ".join(cells) + " |")
        else:
            f = fence(block.text)
            lines += [f + block.language, block.text.rstrip("\n"), f]
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- html
@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("truecount.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def to_html(doc: Document) -> str:
    """The letter as one self-contained HTML page (inline CSS, no script, everything escaped)."""
    template = _environment().get_template("letter.html.j2")
    kinds = {
        Heading: "heading",
        Paragraph: "paragraph",
        Lines: "lines",
        Bullets: "bullets",
        Table: "table",
        CodeBlock: "code",
    }
    blocks = [(kinds[type(x)], x) for x in doc.blocks]
    return template.render(title=doc.title, blocks=blocks) + "\n"


# ------------------------------------------------------------------------------ formatting
DASH: Final[str] = "\u2013"


def money(value: Decimal | None, currency: str | None) -> str:
    """An amount with thousands separators and its currency code (``1,234.50 USD``)."""
    if value is None:
        return DASH
    return f"{value:,} {currency}" if currency else f"{value:,}"


def when(ts: dt.datetime | dt.date | None) -> str:
    """A time to the second, in UTC (no microseconds): what a reader can check by eye."""
    if ts is None:
        return DASH
    if not isinstance(ts, dt.datetime):
        return ts.isoformat()
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.UTC).replace(tzinfo=None)
    return ts.replace(microsecond=0).isoformat(sep=" ") + " UTC"


def count(n: int) -> str:
    return f"{n:,}"


def plural(n: int, one: str, many: str | None = None) -> str:
    """The word for ``n`` of a thing: 'line' for one, 'lines' (or ``many``) otherwise."""
    return one if n == 1 else (many or f"{one}s")


def join_words(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
