"""Text from the data reaches the terminal as text: never as console markup, never as escapes.

Entity ids, file names, reasons, descriptions and vendor strings are the user's data, and a
crafted one (``[/]``, ``[link=…]``, ``\\x1b[31m``) must neither restyle the terminal nor crash the
printer. Two guards, both applied by the consoles of :mod:`truecount.cli.app`:

* markup is off by default, so a string is printed as written; the few messages that style
  themselves ask for markup and escape what they quote;
* every segment of text is passed through :func:`clean` just before it is written, after Rich
  has laid it out and before it adds its own colour codes, so an escape character or any other
  control character in the data is shown as a visible ``\\x1b`` instead of being obeyed.
"""

from __future__ import annotations

import re
from typing import Final

from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderHook, RenderResult
from rich.segment import Segment

#: C0 controls but tab and newline, DEL, and the C1 controls (CSI is U+009B).
_CONTROL: Final[re.Pattern[str]] = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` with every control character but tab and newline written as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class _Cleaned:
    """A renderable that renders another and cleans the text of each of its segments."""

    def __init__(self, inner: ConsoleRenderable) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.inner, options):
            if segment.control or not _CONTROL.search(segment.text):
                yield segment  # Rich's own cursor controls, or text with nothing to clean
            else:
                yield Segment(clean(segment.text), segment.style)


class CleanHook(RenderHook):
    """Wraps everything a console prints in :class:`_Cleaned`."""

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Cleaned(r) for r in renderables]


def guarded(console: Console) -> Console:
    """``console`` with the cleaning hook installed."""
    console.push_render_hook(CleanHook())
    return console
