"""SQL pieces shared by the Salesforce objects' SELECTs.

Every helper returns SQL text built from this package's constants and column names only;
option values reach the query as $parameters.
"""

from __future__ import annotations

import json
from typing import Final

from truecount.adapters.base import RECORD, RECORDS_TABLE
from truecount.adapters.salesforce.options import _ID_CHARS, _SUFFIX_CHARS
from truecount.ingest.plan import PROBLEM
from truecount.ingest.source import ROW_COLUMN
from truecount.ingest.zones import ZONE_HINT, text_to_utc_sql


def _f(name: str) -> str:
    """A record field as trimmed text, NULL when absent or empty (CSV nulls are empty).

    Field names are matched without case (``k``, see :data:`_REC`): Salesforce API names are
    case-insensitive, and Data Loader writes its CSV header in capitals (``ID``,
    ``CASENUMBER``, ``ISCLOSED``) where the APIs write ``Id``, ``CaseNumber``, ``IsClosed``.
    """
    return f"nullif(trim(k ->> '{name.lower()}'), '')"


def _ts(x: str) -> str:
    """ISO 8601 text to a naive UTC timestamp; NULL when it does not parse.

    REST writes ``+0000``, Bulk CSV ``Z``; text without an offset is taken as UTC. A zone
    word after the time is read only when exact (:mod:`truecount.ingest.zones`).
    """
    return f"({text_to_utc_sql(x)})"


def _id(x: str) -> str:
    """A Salesforce Id in its 18-character form (see :func:`salesforce_id18`); NULL if not one."""
    return (
        f"CASE WHEN regexp_full_match({x}, '[a-zA-Z0-9]{{18}}') THEN {x} "
        f"WHEN regexp_full_match({x}, '[a-zA-Z0-9]{{15}}') THEN {x} || array_to_string(["
        f"substr('{_SUFFIX_CHARS}', 1 + CAST(list_sum(["
        f"CASE WHEN substr({x}, c * 5 + b + 1, 1) BETWEEN 'A' AND 'Z' THEN 1 << b ELSE 0 END "
        f"FOR b IN range(5)]) AS INTEGER), 1) FOR c IN range(3)], '') END"
    )


def _serial(x: str) -> str:
    """The record-number part of an 18-character Id (characters 7-15, base 62) as an integer.

    Salesforce stamps ``CreatedDate`` to the second and has no update counter; Ids are
    handed out in creation order, so this is the stated tie-breaker (``seq``) within a second.
    """
    return (
        f"list_reduce([CAST(instr('{_ID_CHARS}', ch) - 1 AS BIGINT) "
        f"FOR ch IN string_split(substr({x}, 7, 9), '')], lambda acc, d: acc * 62 + d)"
    )


def _is_id_value(v: str) -> str:
    """Is a CaseHistory Old/NewValue the id row of a foreign-key pair (not the name row)?"""
    return (
        f"(regexp_full_match({v}, '[a-zA-Z0-9]{{15}}([a-zA-Z0-9]{{3}})?') "
        f"AND regexp_matches(substr({v}, 1, 3), '[0-9]') "
        f"AND (data_type IS NULL OR data_type = 'EntityId'))"
    )


def _actor(by: str) -> str:
    return (
        f"CASE WHEN list_contains($ai_user_ids, {by}) THEN 'ai' "
        f"WHEN list_contains($system_user_ids, {by}) THEN 'system' "
        f"WHEN {by} IS NOT NULL THEN 'human' END"
    )


def _origin(**fields: str) -> str:
    """The constant ``attrs.origin`` object: canonical column -> vendor field."""
    text = json.dumps(fields, sort_keys=True).replace("'", "''")
    return f"CAST('{text}' AS JSON)"


def _attrs(*pairs: str) -> str:
    """A JSON object of key/value SQL pairs, without the keys whose value is NULL."""
    return f"json_merge_patch(CAST('{{}}' AS JSON), json_object({', '.join(pairs)}))"


def _q(x: str) -> str:
    """A value quoted inside a problem message."""
    return f"'''' || {x} || ''''"


def _problem(*checks: tuple[str, str, str]) -> str:
    """The first failing check as a struct (m: the reason, c: the vendor field), else NULL."""
    whens = " ".join(
        f"WHEN {cond} THEN struct_pack(m := {msg}, c := '{col}')" for cond, msg, col in checks
    )
    return f"CASE {whens} END"


_REC: Final[str] = f"""rec0 AS (
    SELECT r.{ROW_COLUMN} AS row_no,
           coalesce(to_json(r) -> '{RECORD}',
                    json_merge_patch(to_json(r),
                                     '{{"{ROW_COLUMN}": null, "{PROBLEM}": null}}')) AS j
    FROM {RECORDS_TABLE} AS r
),
-- ``j`` is the record as written (kept for the quarantine); ``k`` the same fields keyed in
-- lower case, for lookups that ignore the case of a field name (the first of two names that
-- differ only in case wins).
rec AS (
    SELECT row_no, j,
           CAST(to_json(map_from_entries(list_transform(
               list_filter(json_keys(j), lambda key, i:
                   list_position(list_transform(json_keys(j), lambda x: lower(x)), lower(key))
                   = i),
               lambda key: struct_pack(
                   k := lower(key),
                   v := json_extract(j, '$."' || replace(key, '"', '\\"') || '"'))
           ))) AS JSON) AS k
    FROM rec0
)"""  # noqa: S608 - package constants only; values are parameters


def _event(
    *,
    event_id: str,
    entity_id: str,
    ts: str,
    type_: str,
    actor: str,
    attrs: str,
    sub: int,
    where: str,
    value: str = "NULL",
    seq: str = "seq",
    source: str = "ok",
) -> str:
    return f"""SELECT {event_id} AS event_id, {entity_id} AS entity_id, {ts} AS ts,
       {type_} AS type, {actor} AS actor, CAST({value} AS DOUBLE) AS value,
       CAST({attrs} AS JSON) AS attrs, NULL AS source, NULL AS recorded_at,
       CAST({seq} AS BIGINT) AS seq, row_no AS __tc_row, {sub} AS __tc_sub,
       NULL AS __tc_problem, NULL AS __tc_problem_column, NULL AS __tc_raw
FROM {source} WHERE {where}"""  # noqa: S608 - package constants only; values are parameters


_PROBLEMS: Final[str] = """SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       row_no, 0, p.m, p.c, j
FROM checked WHERE p IS NOT NULL"""


def _common_checks(obj: str, label: str) -> list[tuple[str, str, str]]:
    """A record of another object (``attributes.type``) and a missing or malformed Id."""
    return [
        (
            f"sobject IS NOT NULL AND sobject <> '{obj}'",
            f"'record ' || row_no || ' is a ' || sobject || ' record, not a {obj} "
            f"(attributes.type): is this the {label} export?'",
            "attributes.type",
        ),
        ("id_raw IS NULL", f"'{obj} record ' || row_no || ': no Id'", "Id"),
        (
            "id IS NULL",
            f"'{obj} record ' || row_no || ': Id ' || {_q('id_raw')} "
            "|| ' is not a Salesforce Id (15 or 18 letters and digits)'",
            "Id",
        ),
    ]


def _time_check(
    obj: str, raw: str, parsed: str, field: str, required: bool
) -> list[tuple[str, str, str]]:
    checks = []
    if required:
        checks.append((f"{raw} IS NULL", f"'{obj} ' || id || ': no {field}'", field))
    checks.append(
        (
            f"{raw} IS NOT NULL AND {parsed} IS NULL",
            f"'{obj} ' || id || ': unparseable {field} ' || {_q(raw)} "
            f"|| ' (expected ISO 8601, e.g. 2026-01-15T10:30:00.000Z; {ZONE_HINT})'",
            field,
        )
    )
    return checks


def _id_check(obj: str, raw: str, parsed: str, field: str) -> tuple[str, str, str]:
    return (
        f"{raw} IS NOT NULL AND {parsed} IS NULL",
        f"'{obj} ' || id || ': {field} ' || {_q(raw)} "
        "|| ' is not a Salesforce Id (15 or 18 letters and digits)'",
        field,
    )


#: The text forms of a checkbox (boolean) field, compared without case after trimming. They
#: are the forms Data Loader itself reads as a boolean (``yes y true on 1`` / ``no n false off
#: 0``), which covers what the tools write: Bulk API 2.0, Data Loader and ``sf data query``
#: CSV (``true``/``false``), report exports and Data Import Wizard templates (``1``/``0``), a
#: CSV saved again by a spreadsheet (``TRUE``/``FALSE``), Python dumps (``True``/``False``)
#: and PostgreSQL copies such as Heroku Connect (``t``/``f``; not a Data
#: Loader form, but unambiguous). REST and JSON Lines write JSON ``true``/``false``, read as
#: text ``true``/``false``. Empty (or JSON null) is NULL: what NULL means is decided per field.
TRUE_FORMS: Final[tuple[str, ...]] = ("true", "t", "1", "yes", "y", "on")
FALSE_FORMS: Final[tuple[str, ...]] = ("false", "f", "0", "no", "n", "off")
#: How the accepted forms are listed in a problem message.
BOOL_FORMS_SHOWN: Final[str] = (
    "true/false, 1/0, yes/no, y/n, on/off or t/f, in any case; empty for none"
)


def _bool(x: str) -> str:
    """A checkbox value (:data:`TRUE_FORMS`, :data:`FALSE_FORMS`) as a BOOLEAN; NULL when empty
    or not a boolean (:func:`_bool_check` tells the two apart)."""
    return (
        f"CASE WHEN lower({x}) IN {TRUE_FORMS!r} THEN TRUE "
        f"WHEN lower({x}) IN {FALSE_FORMS!r} THEN FALSE END"
    )


def _bool_check(obj: str, raw: str, parsed: str, field: str) -> tuple[str, str, str]:
    """A value that is present but is none of the boolean forms: the record is quarantined,
    naming the value, the field and the forms accepted (never read as false)."""
    return (
        f"{raw} IS NOT NULL AND {parsed} IS NULL",
        f"'{obj} ' || id || ': {field} ' || {_q(raw)} "
        f"|| ' is not a boolean (accepted: {BOOL_FORMS_SHOWN})'",
        field,
    )
