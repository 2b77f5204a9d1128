"""ServiceNow list exports: which column holds which field, and how its times are written.

A list export (List view "Export > CSV", the ``incident_list.do?CSV`` URL, an export from a
report) is not the Table API with another extension. It differs in three ways this module
deals with, all as data handed to fixed SQL:

- **Column names.** The header shows the column *labels* (``Number``, ``State``, ``Updated``,
  ``Updates``) or, in older or scripted exports, legacy field names (``incident_state``,
  ``sys_updated_at``) instead of ``number``, ``state``, ``sys_updated_on``, ``sys_mod_count``.
  :data:`FIELD_NAMES` lists, per field the adapter reads, the names it answers to (compared
  without case); the ``columns`` option puts the buyer's own names in front. The record's
  columns are renamed in SQL (:func:`csv_records_sql`) from a list parameter, so the query
  text never holds a column name from the file.
- **Times.** Plain text in the exporting user's date and time format (``glide.sys.date_format``
  and ``glide.sys.time_format``, Java ``SimpleDateFormat`` patterns such as
  ``dd/MM/yyyy HH:mm:ss``) and zone. :func:`strptime_format` turns such a pattern into a
  DuckDB ``strptime`` format through the fixed token table :data:`JAVA_TOKENS`; with no
  pattern given, :data:`AUTO_FORMATS` lists the forms that can be told apart and the adapter
  decides day/month order per file only from proof (see docs/sources/servicenow.md).
- **Empty values.** ``?`` (or another marker, option ``null_markers``) or an empty cell means
  no value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

#: The fields the adapter reads, in a fixed order (their position is their index in the
#: ``$field_names`` list parameter), with the names each answers to in a CSV header, best
#: first: the field name, the base instance's English label, legacy names.
FIELD_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "number": ("number",),
    "sys_id": ("sys_id", "sys id"),
    "state": ("state", "incident_state", "incident state"),
    "sys_updated_on": ("sys_updated_on", "updated", "sys_updated_at", "updated on"),
    "sys_updated_by": ("sys_updated_by", "updated by"),
    "sys_mod_count": ("sys_mod_count", "updates"),
    "sys_created_by": ("sys_created_by", "created by"),
    "opened_at": ("opened_at", "opened"),
    "contact_type": ("contact_type", "channel", "contact type"),
    "caller_id": ("caller_id", "caller"),
    "assigned_to": ("assigned_to", "assigned to"),
    "assignment_group": ("assignment_group", "assignment group"),
    "close_code": ("close_code", "resolution code", "close code"),
    "resolved_by": ("resolved_by", "resolved by"),
    "reopen_count": ("reopen_count", "reopen count"),
}

#: Without these a CSV cannot be an incident update log (the counter is optional: a list
#: export may lack it, with consequences the adapter records).
CSV_REQUIRED: Final[tuple[str, ...]] = ("number", "state", "sys_updated_on")

#: The fields holding times, read with the same format.
TIME_FIELDS: Final[tuple[str, ...]] = ("sys_updated_on", "opened_at")


def _key(name: str) -> str:
    return name.strip().lower()


def field_names(columns: Mapping[str, str]) -> list[list[str]]:
    """Per field of :data:`FIELD_NAMES` (in order), the header names it is read from, the
    buyer's ``columns`` first, all lower case."""
    out: list[list[str]] = []
    for field, builtin in FIELD_NAMES.items():
        given = [_key(col) for col, target in columns.items() if target == field]
        out.append([*given, *(n for n in builtin if n not in given)])
    return out


def header_fields(header: Sequence[str] | frozenset[str]) -> set[str]:
    """The fields a CSV header provides under the built-in names (recognition has no
    options, so it sees only these)."""
    seen = {_key(h) for h in header}
    return {field for field, names in FIELD_NAMES.items() if seen & set(names)}


# --------------------------------------------------------------------------- times

#: Java SimpleDateFormat tokens ServiceNow's date and time formats use -> DuckDB strptime.
#: DuckDB's %m, %d, %H, %I, %M, %S also read one digit, so ``M`` reads like ``MM``.
JAVA_TOKENS: Final[dict[str, str]] = {
    "yyyy": "%Y",
    "yy": "%y",
    "y": "%y",
    "MMMM": "%B",
    "MMM": "%b",
    "MM": "%m",
    "M": "%m",
    "dd": "%d",
    "d": "%d",
    "HH": "%H",
    "H": "%H",
    "hh": "%I",
    "h": "%I",
    "mm": "%M",
    "m": "%M",
    "ss": "%S",
    "s": "%S",
    "SSS": "%g",
    "a": "%p",
}

#: Characters copied as they are between tokens.
_LITERALS: Final[str] = " -/.:,"
_TOKEN: Final[re.Pattern[str]] = re.compile(
    "|".join(sorted((re.escape(t) for t in JAVA_TOKENS), key=len, reverse=True))
    + "|'T'|["
    + re.escape(_LITERALS)
    + "]"
)


def strptime_format(pattern: str) -> str:
    """The DuckDB ``strptime`` format of a ServiceNow (Java) date-time pattern.

    Raises ValueError naming the part that is not a date or time token, so a typo in
    ``--option time_format=...`` is refused rather than read as literal text.
    """
    out: list[str] = []
    at = 0
    text = pattern.strip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise ValueError(
                f"'{text[at:]}' in time format '{pattern}' is not a date or time pattern "
                f"(use {', '.join(JAVA_TOKENS)}, separated by space - / . : ,; e.g. "
                "'dd/MM/yyyy HH:mm:ss' or 'MM-dd-yyyy hh:mm:ss a')"
            )
        part = match.group(0)
        out.append("T" if part == "'T'" else JAVA_TOKENS.get(part, part))
        at = match.end()
    fmt = "".join(out)
    if "%Y" not in fmt and "%y" not in fmt:
        raise ValueError(f"time format '{pattern}' has no year (yyyy)")
    if "%d" not in fmt or ("%m" not in fmt and "%b" not in fmt and "%B" not in fmt):
        raise ValueError(f"time format '{pattern}' needs a day (dd) and a month (MM)")
    return fmt


_CLOCKS: Final[tuple[str, ...]] = ("%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p")


def _forms(date_order: tuple[str, str, str]) -> list[str]:
    return [
        f"{sep.join(date_order)}{between}{clock}"
        for sep in ("-", "/", ".")
        for between in (" ",)
        for clock in _CLOCKS
    ]


#: With no ``time_format``: the forms a ServiceNow date-time can take, by date order. The
#: year-first ones cannot be misread; a day-first and a month-first reading of the same text
#: are compared per file (the adapter's SQL) and only used when the file proves the order.
AUTO_FORMATS: Final[dict[str, list[str]]] = {
    "ymd": [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %I:%M:%S %p",
        "%Y-%m-%d %I:%M %p",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
        "%Y.%m.%d %H:%M:%S",
        "%Y.%m.%d %H:%M",
    ],
    "dmy": _forms(("%d", "%m", "%Y")),
    "mdy": _forms(("%m", "%d", "%Y")),
}


def csv_records_sql() -> str:
    """The CSV / Parquet records as one JSON object per row under the fields' own names.

    Every column is read as text. Which column holds a field is decided once per file, from
    the header: each field takes the first of its names (``$field_names``, best first) that a
    column has, compared without case. Values that are empty or a null marker
    (``$null_markers``) are NULL. ``__cols`` keeps which export column each field came from,
    so a problem names the column the buyer sees.
    """
    fields = list(FIELD_NAMES)

    def value(i: int) -> str:
        got = f"json_extract_string(rj, paths[{i}])"
        return (
            f"CASE WHEN trim({got}) = '' OR list_contains(CAST($null_markers AS VARCHAR[]), "
            f"trim({got})) THEN NULL ELSE trim({got}) END"
        )

    picks = ",\n               ".join(f"'{f}', {value(i + 1)}" for i, f in enumerate(fields))
    cols = ", ".join(f"'{f}', picked[{i + 1}]" for i, f in enumerate(fields))
    return f"""
        WITH header AS (
            SELECT list_transform(json_keys(to_json(r)),
                                  lambda k: {{'k': lower(trim(k)), 'n': k}}) AS cols
            FROM __tc_records AS r LIMIT 1
        ), picked AS (
            SELECT list_transform(CAST($field_names AS VARCHAR[][]), lambda names:
                list_filter(list_transform(names,
                    lambda wanted: list_filter(cols, lambda c: c.k = wanted)[1].n),
                    lambda n: n IS NOT NULL)[1]) AS picked
            FROM header
        ), chosen AS (
            -- a JSON path per field, its column name quoted as a JSON string
            SELECT picked,
                   list_transform(picked, lambda n: '$.' || CAST(to_json(n) AS VARCHAR)) AS paths
            FROM picked
        )
        SELECT __tc_row, CAST(json_object(
               {picks},
               '__cols', json_object({cols})) AS JSON) AS j
        FROM (SELECT __tc_row, to_json(r) AS rj FROM __tc_records AS r) CROSS JOIN chosen
    """  # noqa: S608 - this module's constants; names and markers are parameters
