"""Values typed on the command line that several verbs share: rates and names from a fixed list.

One parser per kind, so ``--min-coverage 50%`` and ``--tolerable 0.05`` follow the same rule
everywhere and a mistake is reported the same way: which option, what was given, what would be
valid, exit code 2.

A rate is written as a fraction (``0.05``) or a percentage (``5%``, ``5 %``). A bare number
above 1 is refused rather than guessed: ``--drift 8`` could mean 8% or 800%, and a meter that
guesses wrong changes a number silently.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path

from truecount.cli.app import fail

#: The forms every rate option accepts, quoted in its errors.
RATE_FORMS = "a fraction such as 0.05 or a percentage such as 5%"


def parse_rate(
    text: str,
    option: str,
    *,
    low: Decimal = Decimal(0),
    high: Decimal = Decimal(1),
) -> Decimal:
    """``text`` as a fraction: ``0.05``, ``5%`` and ``5 %`` all give ``Decimal('0.05')``.

    ``low`` and ``high`` bound the fraction (inclusive); ``high`` may exceed 1 for a rate that
    can (a yearly drift of 150%), but a bare number above 1 is still refused as ambiguous.
    """
    raw = text.strip()
    percent = raw.endswith("%")
    digits = raw[:-1].strip() if percent else raw
    try:
        value = Decimal(digits.replace("_", ""))
    except InvalidOperation:
        value = Decimal("NaN")
    if not digits or not value.is_finite():
        fail(f"{option} {text!r} is not a rate; write {RATE_FORMS}")
    if not percent and value > 1:
        fail(
            f"{option} {text!r} is above 1: write {digits}% for a percentage, "
            f"or {value / 100} as a fraction"
        )
    fraction = value / 100 if percent else value
    if fraction < low or fraction > high:
        fail(f"{option} {text!r} is outside {_pct(low)} to {_pct(high)}; write {RATE_FORMS}")
    return fraction.normalize()


def _pct(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}%"


def choose(text: str, choices: Iterable[str], option: str) -> str:
    """The choice ``text`` names, ignoring case; a typo gets a did-you-mean and exit code 2."""
    listed = list(choices)
    by_lower = {c.lower(): c for c in listed}
    found = by_lower.get(text.strip().lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(text.strip().lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f"did you mean '{by_lower[close[0]]}'? " if close else ""
    fail(f"unknown {option} '{text}'; {hint}use one of: {', '.join(listed)}")


def output_file(path: Path, option: str = "--out") -> Path:
    """``path`` as a file to write, or exit 2 saying why it cannot be one.

    Checked before any work, so a long count does not end in a traceback about the path: an
    empty name, an existing folder, or a folder that does not exist.
    """
    if not str(path).strip() or str(path) == ".":
        fail(f"{option} is empty: give a file name, e.g. {option} verdicts.csv")
    if path.is_dir():
        fail(f"{option} {path} is a folder: give a file name inside it, e.g. {path / 'out.csv'}")
    parent = path.parent
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        fail(f"{option} {path}: the folder {parent} {what}; create it first or choose another")
    return path
