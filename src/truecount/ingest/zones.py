"""The zone written after a timestamp's text: honoured when it is exact, refused otherwise.

Why this module exists: DuckDB's ``CAST(text AS TIMESTAMP)`` reads ``2026-01-31 20:00:00 EST``
as 20:00 and drops the zone, and drops ``PM`` the same way, so an outcome would move to
another day or another billing month without a trace. Every reader of timestamp text (the
canonical and mapped files, the platform adapters, the invoice's ``billed_at``) therefore
sorts the text into three cases, all in SQL, next to the data:

- **an exact zone**: an offset (``Z``, ``+02``, ``+0200``, ``-05:00``), ``UTC`` or ``GMT``
  (with or without an offset: ``GMT+2``), or a zone name of the tz database
  (``America/New_York``, ``Etc/GMT+5``). The text is read as an instant
  (``TIMESTAMPTZ``) and turned to UTC; a name DuckDB does not know gives NULL.
- **any other word after the time** (``EST``, ``CET``, ``IST``, ``PM``, ``Zulu``): NULL, so
  the row is quarantined with the reader's reason. Abbreviations name different zones in
  different places (``IST`` is India, Ireland or Israel; ``CST`` the US or China), and a
  12-hour clock needs its format declared; guessing either would change a number quietly.
- **no zone**: the reader's own rule for local text (UTC, or a mapping's ``timezone``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import sqlglot
from sqlglot import exp

_TIME: Final[str] = r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?"

#: A trailing UTC offset after a time of day: Z, +02, +0200 or +02:00.
OFFSET_END: Final[str] = _TIME + r"\s*([Zz]|[+-]\d{2}(:?\d{2})?)$"
#: UTC or GMT (optionally with an offset), or a tz database name (Area/Location), after a time.
NAMED_END: Final[str] = (
    _TIME + r"\s*((?i:utc|gmt)([+-]\d{1,2}(:?\d{2})?)?|[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)+)$"
)
#: A word after the time of day (a zone of some kind, or AM/PM), whatever follows it.
_WORD_AFTER_TIME: Final[str] = _TIME + r"\s*[A-Za-z]"

#: What a reader's quarantine reason adds about zones.
ZONE_HINT: Final[str] = (
    "a zone is an offset (-05:00), Z, UTC or a tz database name such as America/New_York; "
    "abbreviations such as EST or CET and AM/PM are not read, since they are ambiguous"
)


def _matches(text: exp.Expr, pattern: str) -> exp.Expr:
    return exp.func("regexp_matches", text.copy(), exp.Literal.string(pattern))


def text_to_utc(
    text: exp.Expr,
    local: Callable[[exp.Expr], exp.Expr],
    offset_end: str = OFFSET_END,
) -> exp.Expr:
    """``text`` as a naive UTC timestamp; NULL when it does not parse or its zone is not exact.

    ``local(text)`` reads text that carries no zone (as the reader's rule says); the
    offset pattern can be the reader's own when it accepts offsets in more places.
    """
    aware = exp.func(
        "timezone",
        exp.Literal.string("UTC"),
        exp.TryCast(this=text.copy(), to=exp.DataType.build("TIMESTAMPTZ")),
    )
    return exp.Case(
        ifs=[
            exp.If(this=_matches(text, offset_end), true=aware),
            # most text has no zone word: one more test, and the local reading
            exp.If(this=exp.Not(this=_matches(text, _WORD_AFTER_TIME)), true=local(text.copy())),
            exp.If(this=_matches(text, NAMED_END), true=aware.copy()),
        ],
        default=exp.Cast(this=exp.Null(), to=exp.DataType.build("TIMESTAMP")),
    )


def text_to_utc_sql(text_sql: str) -> str:
    """:func:`text_to_utc` for SQL written as text, where text without a zone is UTC."""
    text = sqlglot.parse_one(text_sql, dialect="duckdb")
    return text_to_utc(text, lambda t: exp.TryCast(this=t, to=exp.DataType.build("TIMESTAMP"))).sql(
        "duckdb"
    )
