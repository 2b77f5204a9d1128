"""Durations such as ``14d`` or ``36h``: the only lengths a window may have.

Months and years are refused on purpose: their length depends on the calendar, so "within one
month" would mean different things for different anchors and in different SQL engines.
"""

from __future__ import annotations

import re
from typing import Final

UNIT_SECONDS: Final[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE: Final = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
VALID_FORMS: Final[str] = "a positive whole number and a unit s, m, h, d or w, e.g. 14d, 36h, 90m"
#: The longest window: 100 years. Event times lie between 1970 and 2200 (ingest quarantines the
#: rest), so a longer window can only be a typo, and a far longer one overflows the timestamp
#: arithmetic of every SQL engine. ``lifetime: true`` is the window without an end.
MAX_SECONDS: Final[int] = 36500 * 86400


def parse_duration(text: object) -> int:
    """Return the duration in seconds, or raise ValueError saying what is valid."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"expected a duration ({VALID_FORMS})")
    if isinstance(text, int):
        raise ValueError(f"'{text}' has no unit; write e.g. '{text}d' ({VALID_FORMS})")
    m = _DURATION_RE.match(text)
    if m is None:
        raise ValueError(f"'{text}' is not a duration; expected {VALID_FORMS}")
    digits = m.group(1).lstrip("0") or "0"
    if len(digits) > 12:  # refuse before multiplying a number of any length
        digits = "9" * 13
    seconds = int(digits) * UNIT_SECONDS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"'{text}' must be longer than zero")
    if seconds > MAX_SECONDS:
        raise ValueError(
            f"'{text.strip()}' is longer than 100 years (36500d), the longest window; "
            "for a window without an end write lifetime: true"
        )
    return seconds


def format_duration(seconds: int) -> str:
    """Canonical text: the largest of d, h, m, s that divides evenly (``2w`` becomes ``14d``)."""
    for unit in ("d", "h", "m"):
        size = UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def describe_duration(seconds: int) -> str:
    """Plain words for reports and contract text: ``14 days``, ``36 hours``."""
    for unit, word in (("d", "day"), ("h", "hour"), ("m", "minute")):
        size = UNIT_SECONDS[unit]
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {word}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
