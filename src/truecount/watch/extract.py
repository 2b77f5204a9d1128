"""Readable text from a saved copy of the vendor's documentation (HTML or plain text).

The watch compares what a reader would see, not markup: a page re-saved with a new tracking
script or a different CSS class must not look like a changed definition. HTML is reduced with
the standard library's :class:`html.parser.HTMLParser`, which only tokenises: nothing is fetched,
executed or rendered, and markup that the page shows as text (``&lt;script&gt;``) stays text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Final, Literal

from truecount.errors import Location, Problem, TruecountError

Kind = Literal["html", "text"]

#: Saved pages larger than this are refused: documentation is a few hundred kilobytes, and a
#: larger file is usually a "complete" save with inlined images, which holds no more text.
MAX_BYTES: Final[int] = 16 * 1024 * 1024

_HTML_SUFFIXES: Final = frozenset({".html", ".htm", ".xhtml", ".shtml"})
_TEXT_SUFFIXES: Final = frozenset({".txt", ".text", ".md", ".markdown", ".rst"})
_ARCHIVE_SUFFIXES: Final = frozenset({".mht", ".mhtml", ".webarchive", ".pdf", ".docx"})

#: A document that starts as an HTML document is HTML whatever its name says.
_STRONG_HTML: Final = re.compile(r"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S)
#: Without a telling extension, common block tags mark an HTML fragment.
_WEAK_HTML: Final = re.compile(
    r"<(?:p|div|body|h[1-6]|ul|ol|li|table|tr|td|br|span|a)\b[^>]*>", re.I
)

#: Characters a reader cannot see but a terminal or a diff can be fooled by: C0/C1 controls
#: (except tab and newline, handled as whitespace), zero-width characters, the soft hyphen,
#: and the bidirectional overrides that can make text display in a different order.
_INVISIBLE: Final = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff]"
)
_SPACE: Final = re.compile(r"\s+")

#: Elements whose content a reader never sees as page text.
_SKIP: Final = frozenset(
    {"script", "style", "template", "noscript", "svg", "math", "iframe", "object", "title"}
)
_HEADINGS: Final = {f"h{n}": n for n in range(1, 7)}
_LISTS: Final = frozenset({"ul", "ol", "menu"})
_CELLS: Final = frozenset({"td", "th"})
#: Tags that start a new cell or row, or end the current row, even when end tags are omitted.
_ROW_PARTS: Final = frozenset({"td", "th", "tr"})
_ROW_ENDS: Final = frozenset({"tr", "table", "thead", "tbody", "tfoot"})
#: Elements that start a new line of text.
_BLOCKS: Final = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header",
        "hgroup", "hr", "legend", "li", "main", "nav", "p", "pre", "section", "summary", "table",
        "tbody", "tfoot", "thead", "tr", "option", "html", "head",
    }
)  # fmt: skip


class WatchError(TruecountError):
    """A snapshot cannot be read, or a watched name or snapshot selector is not valid."""


@dataclass(frozen=True)
class Extracted:
    """A saved document: its kind, its text as decoded, and the readable text derived from it."""

    kind: Kind
    decoded: str
    text: str


def clean_line(line: str) -> str:
    """One line as a reader sees it: NFC, invisible characters dropped, whitespace collapsed."""
    line = _INVISIBLE.sub("", unicodedata.normalize("NFC", line))
    return _SPACE.sub(" ", line).strip()


def detect_kind(data: bytes, filename: str | None = None) -> Kind:
    """HTML or text, from the content first and the file name second.

    A document that opens with ``<!DOCTYPE html>`` or ``<html>`` is HTML even when saved as
    ``.txt``; otherwise a known extension decides; otherwise common HTML tags near the start.
    """
    head = data[:65536].decode("utf-8", errors="replace").lstrip("\ufeff")
    if _STRONG_HTML.match(head):
        return "html"
    suffix = PurePath(filename).suffix.lower() if filename else ""
    if suffix in _HTML_SUFFIXES:
        return "html"
    if suffix in _TEXT_SUFFIXES:
        return "text"
    return "html" if _WEAK_HTML.search(head) else "text"


def decode(data: bytes, filename: str | None = None) -> str:
    """The document as text: UTF-8 (a byte-order mark is dropped), refusing binary files.

    Other encodings are refused rather than guessed, because a wrong guess changes the text
    and so the diff; browsers save pages as UTF-8.
    """
    where = Location(file=filename)
    suffix = PurePath(filename).suffix.lower() if filename else ""
    if suffix in _ARCHIVE_SUFFIXES:
        raise WatchError(
            Problem(
                f"'{suffix}' files are not read",
                where,
                "save the page as 'Web page, HTML only' or as plain text",
            )
        )
    if len(data) > MAX_BYTES:
        raise WatchError(
            Problem(
                f"the file is {len(data):,} bytes, more than the {MAX_BYTES:,} a saved page needs",
                where,
                "save the page as 'Web page, HTML only' or as plain text",
            )
        )
    if b"\x00" in data:
        raise WatchError(
            Problem("the file looks binary", where, "save the page as HTML or plain text")
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WatchError(
            Problem(
                f"the file is not UTF-8 (byte {exc.start})",
                where,
                "save it again as UTF-8 (browsers do by default)",
            )
        ) from exc


def text_to_lines(text: str) -> str:
    """Readable text of a plain-text document: each non-empty line, cleaned."""
    lines = (clean_line(line) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


class _Reader(HTMLParser):
    """Collects the text a reader sees, one line per block, heading, list item or table row.

    Headings become ``# Title`` (one ``#`` per level), list items ``- item`` or ``1. item``
    indented two spaces per nesting level, and a table row one line with its cells joined by
    `` | `` so a changed value stays next to what it is the value of.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._buf: list[str] = []
        self._prefix = ""
        self._skip = 0
        self._pre = 0
        self._lists: list[list[int]] = []  # [ordered (0/1), items so far] per open list
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._nested_tables = 0  # tables opened inside a cell: their text joins the cell

    # -- lines -----------------------------------------------------------------------------
    def _flush(self) -> None:
        text = clean_line("".join(self._buf))
        self._buf = []
        if text:
            self.lines.append(self._prefix + text)
        elif self._prefix.rstrip().endswith(("-", ".")):
            return  # a list item's marker waits for its text (<li><p>text</p></li>)
        self._prefix = ""

    def _close_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            self._row.append(clean_line("".join(self._cell)))
        self._cell = None

    def _close_row(self) -> None:
        self._close_cell()
        if self._row is not None and any(self._row):
            self.lines.append(" | ".join(self._row))
        self._row = None

    def _list_prefix(self) -> str:
        if not self._lists:
            return "- "
        current = self._lists[-1]
        current[1] += 1
        indent = "  " * (len(self._lists) - 1)
        return f"{indent}{current[1]}. " if current[0] else f"{indent}- "

    # -- parser callbacks -----------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
            return
        if self._skip:
            return
        if self._cell is not None and (self._nested_tables or tag not in _ROW_PARTS):
            # inside a cell, blocks and nested tables stay in the cell, separated by a space
            if tag == "table":
                self._nested_tables += 1
            if tag in _BLOCKS or tag in _CELLS or tag == "br" or tag in _HEADINGS:
                self._cell.append(" ")
            return
        if tag == "tr":
            self._flush()
            self._close_row()
            self._row = []
        elif tag in _CELLS:
            self._flush()
            if self._row is None:
                self._row = []
            self._close_cell()
            self._cell = []
        elif tag in _HEADINGS:
            self._flush()
            self._prefix = "#" * _HEADINGS[tag] + " "
        elif tag == "li":
            self._flush()
            self._prefix = self._list_prefix()
        elif tag in _LISTS:
            self._flush()
            self._lists.append([int(tag == "ol"), 0])
        elif tag == "br":
            self._flush()
        elif tag in _BLOCKS:
            if tag == "pre":
                self._pre += 1
            if tag == "table":
                self._close_row()
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if self._cell is not None and (self._nested_tables or tag not in _ROW_ENDS | _CELLS):
            if tag == "table":
                self._nested_tables -= 1
            if tag in _BLOCKS or tag in _CELLS or tag in _HEADINGS:
                self._cell.append(" ")
            return
        if tag in _CELLS:
            self._close_cell()
        elif tag in _ROW_ENDS:
            self._close_row()
        elif tag in _LISTS:
            self._flush()
            if self._lists:
                self._lists.pop()
        elif tag in _HEADINGS or tag in _BLOCKS:
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        elif self._row is not None:  # stray text between cells of a row: a cell of its own
            if data.strip():
                self._row.append(clean_line(data))
        elif self._pre:
            parts = data.split("\n")
            for part in parts[:-1]:
                self._buf.append(part)
                self._flush()
            self._buf.append(parts[-1])
        else:
            self._buf.append(data)

    def close(self) -> None:
        super().close()
        self._close_row()
        self._flush()


def html_to_text(html: str) -> str:
    """Readable text of an HTML document, one line per block (see :class:`_Reader`)."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return "\n".join(reader.lines)


def extract(data: bytes, filename: str | None = None) -> Extracted:
    """Decode a saved document and derive its readable text."""
    decoded = decode(data, filename)
    kind = detect_kind(data, filename)
    text = html_to_text(decoded) if kind == "html" else text_to_lines(decoded)
    return Extracted(kind=kind, decoded=decoded, text=text)
