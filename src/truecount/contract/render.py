"""The schedule as Markdown (to paste into a contract draft) and as a printable HTML page.

Everything that came from a file — names, types, actors, where literals, the description, the
SQL — is escaped for the target syntax here and only here: Markdown text is backslash-escaped
and code spans get a fence longer than any backtick run inside them; HTML goes through
:func:`html.escape`. The HTML page is self-contained (inline CSS, no scripts, no fonts or images
from elsewhere) and sets its own print layout, so it can be opened offline and printed.
"""

from __future__ import annotations

import html
import re
from typing import Final

from truecount.billing.dispute import md_escape
from truecount.contract.clauses import Item, Schedule, Span, Spans

# --------------------------------------------------------------------------- Markdown


def _md_code(text: str) -> str:
    """A Markdown code span that shows ``text`` verbatim, whatever backticks it holds."""
    text = text.replace("\r", " ").replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    if text.startswith(("`", " ")) or text.endswith(("`", " ")):
        return f"{fence} {text} {fence}"
    return f"{fence}{text}{fence}"


def _md_block_fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _md(spans: Spans) -> str:
    out: list[str] = []
    for s in spans:
        if s.kind == "code":
            out.append(_md_code(s.text))
        elif s.kind == "term":
            out.append(f"**{md_escape(s.text)}**")
        else:
            out.append(md_escape(s.text))
    return "".join(out)


def _md_item(item: Item, depth: int, lines: list[str]) -> None:
    title = f"**{_md(item.title)}.** " if item.title else ""
    if depth == 0:
        lines.append(f"**{md_escape(item.label)}** {title}{_md(item.spans)}")
        lines.append("")
    else:
        lines.append(f"{'  ' * (depth - 1)}- {md_escape(item.label)} {title}{_md(item.spans)}")
    for sub in item.items:
        _md_item(sub, depth + 1, lines)
    if depth == 0 and item.items:
        lines.append("")


def render_markdown(schedule: Schedule) -> str:
    """The schedule as CommonMark: numbered clauses as paragraphs, sub-items as lists."""
    d = schedule.definition
    lines = [f"# {md_escape(schedule.title)}", "", _md(schedule.intro), ""]
    lines.append(f"Definition: {_md_code(d.name)}, version {d.version}  ")
    lines.append(f"SHA-256: {_md_code(d.sha256)}  ")
    if d.description:
        lines.append(f"Summary (for information; clause 2 governs): {md_escape(d.description)}  ")
    if schedule.terms is not None:
        lines.append(f"Terms SHA-256: {_md_code(str(schedule.terms.summary()['sha256']))}  ")
    lines.append("")
    for section in schedule.sections:
        lines.append(f"## {md_escape(section.number)}. {md_escape(section.title)}")
        lines.append("")
        for clause in section.clauses:
            _md_item(clause, 0, lines)
    for annex in schedule.annexes:
        lines.append(f"## Annex {md_escape(annex.letter)}: {md_escape(annex.title)}")
        lines.append("")
        lines.append(_md(annex.spans))
        lines.append("")
        fence = _md_block_fence(annex.code)
        lines.append(f"{fence}{annex.language}")
        lines.append(annex.code.rstrip("\n"))
        lines.append(fence)
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML

_CSS: Final[str] = """
:root { color-scheme: light; }
body { font-family: Georgia, "Times New Roman", serif; line-height: 1.5; color: #111;
       max-width: 46em; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.5em; margin-bottom: 0.4em; }
h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #999; }
p.clause { margin: 0.6em 0; }
.num { font-weight: bold; margin-right: 0.4em; }
.title { font-weight: bold; }
.term { font-weight: bold; }
ol.items { list-style: none; margin: 0.2em 0 0.6em 0; padding-left: 2.2em; }
ol.items li { margin: 0.25em 0; }
code { font-family: "Courier New", Courier, monospace; font-size: 0.92em;
       background: #f3f3f3; padding: 0 0.15em; overflow-wrap: anywhere; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.8em; font-size: 0.8em;
      white-space: pre-wrap; overflow-wrap: anywhere; }
pre code { background: none; padding: 0; }
dl.identity { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 1em; }
dl.identity dt { font-weight: bold; }
dl.identity dd { margin: 0; }
@media print {
  body { margin: 0; max-width: none; font-size: 11pt; }
  h2 { break-after: avoid; }
  p.clause, ol.items li { break-inside: avoid; }
  section.annex { break-before: page; }
  code, pre { background: none; }
}
@page { margin: 2cm; }
"""


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html(spans: Spans) -> str:
    out: list[str] = []
    for s in spans:
        out.append(_html_span(s))
    return "".join(out)


def _html_span(s: Span) -> str:
    if s.kind == "code":
        return f"<code>{_h(s.text)}</code>"
    if s.kind == "term":
        return f'<span class="term">{_h(s.text)}</span>'
    return _h(s.text)


def _html_items(items: tuple[Item, ...]) -> str:
    if not items:
        return ""
    parts = ['<ol class="items">']
    for item in items:
        title = f'<span class="title">{_html(item.title)}.</span> ' if item.title else ""
        parts.append(
            f'<li><span class="num">{_h(item.label)}</span>{title}{_html(item.spans)}'
            f"{_html_items(item.items)}</li>"
        )
    parts.append("</ol>")
    return "".join(parts)


def render_html(schedule: Schedule) -> str:
    """The schedule as one self-contained, printable HTML page."""
    d = schedule.definition
    body: list[str] = [f"<h1>{_h(schedule.title)}</h1>", f"<p>{_html(schedule.intro)}</p>"]
    body.append('<dl class="identity">')
    body.append(f"<dt>Definition</dt><dd><code>{_h(d.name)}</code>, version {d.version}</dd>")
    body.append(f"<dt>SHA-256</dt><dd><code>{_h(d.sha256)}</code></dd>")
    if d.description:
        body.append(
            "<dt>Summary</dt><dd>"
            f"{_h(d.description)} <em>(for information; clause 2 governs)</em></dd>"
        )
    if schedule.terms is not None:
        digest = str(schedule.terms.summary()["sha256"])
        body.append(f"<dt>Terms SHA-256</dt><dd><code>{_h(digest)}</code></dd>")
    body.append("</dl>")
    for section in schedule.sections:
        body.append("<section>")
        body.append(f"<h2>{_h(section.number)}. {_h(section.title)}</h2>")
        for c in section.clauses:
            title = f'<span class="title">{_html(c.title)}.</span> ' if c.title else ""
            body.append(
                f'<p class="clause"><span class="num">{_h(c.label)}</span>{title}'
                f"{_html(c.spans)}</p>{_html_items(c.items)}"
            )
        body.append("</section>")
    for annex in schedule.annexes:
        body.append('<section class="annex">')
        body.append(f"<h2>Annex {_h(annex.letter)}: {_h(annex.title)}</h2>")
        body.append(f"<p>{_html(annex.spans)}</p>")
        body.append(
            f'<pre><code class="language-{_h(annex.language)}">{_h(annex.code)}</code></pre>'
        )
        body.append("</section>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_h(schedule.title)}: {_h(d.name)} v{d.version}</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


__all__ = ["render_html", "render_markdown"]
