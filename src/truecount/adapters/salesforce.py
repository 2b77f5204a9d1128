"""Salesforce Service Cloud and Agentforce: cases, their history, messaging sessions, surveys.

A Salesforce export is several objects queried separately (REST ``query`` pages with a
``records`` array, JSON Lines of those records, or Bulk API 2.0 CSV): ``Case``,
``CaseHistory``, ``CaseStatus``, ``MessagingSession``, ``SurveySubject`` and
``SurveyQuestionResponse``. The billable entity is the case, so every event is on a case Id
(18 characters; 15-character Ids, as reports print them, are extended to 18 so both spellings
meet).

What makes a Salesforce count need choices, all options recorded with every file:

* a close is a ``CaseHistory`` row whose ``Status`` enters a closed status, and which
  statuses are closed is the org's own setting (``CaseStatus.IsClosed``);
* the user on a close row (``CreatedById``) is often an automation user that closes cases
  whether the bot or a person handled them, so "closed by the AI" is decided by the case's
  messaging sessions (``MessagingSession.AgentType``) and/or a list of AI user ids;
* ratings are survey answers linked to the case through ``SurveySubject``.

The last two join files: history needs the sessions and statuses, answers need the survey
links. Each file is still one fixed SELECT: it reads its own records and, through the view of
the events already stored (:data:`truecount.adapters.base.STORE`), the companion kinds it
declares in ``reads``, which the ingest loads first. Only data from before an event is used
to judge it (the sessions that started before a close), so loading a later export never
changes what an earlier one meant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar, Final

from pydantic import Field, field_validator

from truecount.adapters.base import (
    RECORD,
    RECORDS_TABLE,
    STORE,
    Adapter,
    AdapterOptions,
    FileKind,
    Sniff,
)
from truecount.ingest.plan import PROBLEM
from truecount.ingest.source import ROW_COLUMN, FileFormat

VENDOR: Final[str] = "salesforce"

#: ``MessagingSession.AgentType`` picklist values.
AGENT_TYPES: Final[tuple[str, ...]] = ("Agent", "Bot", "BotToAgent", "System")
#: ``SurveyQuestionResponse.Datatype`` picklist values (a restricted picklist).
DATATYPES: Final[tuple[str, ...]] = ("Boolean", "Date", "Double", "Int", "Number", "String")
NUMERIC_DATATYPES: Final[tuple[str, ...]] = ("Double", "Int", "Number")
#: ``CaseHistory.Field`` values that record an owner change (each writes a name and an id row).
OWNER_FIELDS: Final[tuple[str, ...]] = ("Owner", "ownerAssignment", "ownerAccepted")

_ID_CHARS: Final[str] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_CHARS: Final[str] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id18(value: str) -> str:
    """The 18-character form of a Salesforce Id (the 15-character form plus its case checksum).

    Reports print 15-character Ids, the APIs 18-character ones; the two must meet as one
    entity. Raises ValueError for text that is not an Id.
    """
    text = value.strip()
    if len(text) == 18 and text.isascii() and text.isalnum():
        return text
    if len(text) != 15 or not (text.isascii() and text.isalnum()):
        raise ValueError(f"'{value}' is not a Salesforce Id (15 or 18 letters and digits)")
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(text[chunk * 5 : chunk * 5 + 5]) if ch.isupper())
        suffix += _SUFFIX_CHARS[bits]
    return text + suffix


def _id_list(value: object) -> object:
    """Ids from ``-o key=a,b`` text or a JSON list, each in its 18-character form."""
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if isinstance(value, list | tuple):
        return tuple(salesforce_id18(str(v)) for v in value)
    return value


def _text_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(v for v in (p.strip() for p in value.split(",")) if v)
    return value


class SalesforceOptions(AdapterOptions):
    """The choices a Salesforce export forces: who the AI is, what is closed, what a rating is."""

    ai_agent_types: tuple[str, ...] = Field(
        default=("Bot",),
        description="MessagingSession.AgentType values that mean the AI handled the session "
        f"({', '.join(AGENT_TYPES)}). BotToAgent is a handoff to a person, so not the AI's "
        "by default; it always also gives an 'escalated' event.",
    )
    ai_close_by_sessions: bool = Field(
        default=True,
        description="A close is the AI's when the case had at least one messaging session "
        "started before it and every such session has an AI agent type, whoever saved the "
        "status (often an automation user). Off: only ai_user_ids make a close the AI's.",
    )
    ai_user_ids: tuple[str, ...] = Field(
        default=(),
        description="User Ids of the Agentforce / bot integration users: changes they save "
        "are by actor 'ai' (and their closes are the AI's). 15- or 18-character Ids.",
    )
    system_user_ids: tuple[str, ...] = Field(
        default=(),
        description="User Ids of automation (Automated Process, flows, integrations): their "
        "changes are by actor 'system' rather than 'human'.",
    )
    closed_statuses: tuple[str, ...] | None = Field(
        default=None,
        description="Case statuses that are closed. Default (null): the statuses the "
        "CaseStatus export marks IsClosed, when one is in this ingest or the workspace; "
        "else just 'Closed'.",
    )
    child_case_followup: bool = Field(
        default=True,
        description="A case with a ParentId is a follow-up of its parent: 'followup_created' "
        "on the parent at the child's CreatedDate.",
    )
    rating_question_ids: tuple[str, ...] = Field(
        default=(),
        description="SurveyQuestion Ids whose numeric answers are the satisfaction rating. "
        "Default (empty): every numeric answer (Datatype Int, Number, Double) is a rating.",
    )
    rating_scale: int = Field(
        default=5,
        ge=2,
        description="Top of the rating questions' scale (bottom is 1): answers are mapped "
        "linearly onto 1-5 ('rated' value); an answer outside 1..rating_scale is quarantined.",
    )

    @field_validator("ai_user_ids", "system_user_ids", "rating_question_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        return _id_list(value)

    @field_validator("ai_agent_types", "closed_statuses", mode="before")
    @classmethod
    def _texts(cls, value: object) -> object:
        return _text_list(value)

    @field_validator("ai_agent_types")
    @classmethod
    def _agent_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in value if v not in AGENT_TYPES]
        if unknown:
            raise ValueError(
                f"unknown AgentType {', '.join(unknown)} (MessagingSession.AgentType values: "
                f"{', '.join(AGENT_TYPES)})"
            )
        return value


# --------------------------------------------------------------------------- SQL pieces
# Every helper returns SQL text built from this module's constants and column names only;
# option values reach the query as $parameters.


def _f(name: str) -> str:
    """A record field as trimmed text, NULL when absent or empty (CSV nulls are empty)."""
    return f"nullif(trim(j ->> '{name}'), '')"


def _ts(x: str) -> str:
    """ISO 8601 text to a naive UTC timestamp; NULL when it does not parse.

    REST writes ``+0000``, Bulk CSV ``Z``; text without an offset is taken as UTC.
    """
    return (
        f"CASE WHEN regexp_matches({x}, '(Z|[+-][0-9]{{2}}:?[0-9]{{2}})$') "
        f"THEN timezone('UTC', TRY_CAST({x} AS TIMESTAMPTZ)) "
        f"ELSE TRY_CAST({x} AS TIMESTAMP) END"
    )


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


_REC: Final[str] = f"""rec AS (
    SELECT r.{ROW_COLUMN} AS row_no,
           coalesce(to_json(r) -> '{RECORD}',
                    json_merge_patch(to_json(r),
                                     '{{"{ROW_COLUMN}": null, "{PROBLEM}": null}}')) AS j
    FROM {RECORDS_TABLE} AS r
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
            "|| ' (expected ISO 8601, e.g. 2026-01-15T10:30:00.000Z)'",
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


def _bool_check(obj: str, raw: str, field: str) -> tuple[str, str, str]:
    return (
        f"{raw} IS NOT NULL AND {raw} NOT IN ('true', 'false')",
        f"'{obj} ' || id || ': {field} ' || {_q(raw)} || ' is not true or false'",
        field,
    )


# --------------------------------------------------------------------------- Case

_CASE_SQL: Final[str] = f"""
WITH {_REC},
fields AS (
    SELECT row_no, j, j -> 'attributes' ->> 'type' AS sobject,
           {_f("Id")} AS id_raw, {_f("CaseNumber")} AS case_number, {_f("Status")} AS status,
           lower({_f("IsClosed")}) AS is_closed, {_f("ClosedDate")} AS closed_raw,
           {_f("CreatedDate")} AS created_raw, {_f("Origin")} AS channel,
           {_f("OwnerId")} AS owner_raw, lower({_f("IsEscalated")}) AS is_escalated,
           {_f("ContactId")} AS contact_raw, {_f("AccountId")} AS account_raw,
           {_f("ParentId")} AS parent_raw, {_f("CreatedById")} AS by_raw,
           {_f("Priority")} AS priority, {_f("Type")} AS case_type, {_f("Reason")} AS reason
    FROM rec
),
parsed AS (
    SELECT *, {_id("id_raw")} AS id, {_ts("created_raw")} AS created,
           {_ts("closed_raw")} AS closed_at, {_id("parent_raw")} AS parent,
           {_id("by_raw")} AS by_id, {_id("owner_raw")} AS owner_id,
           {_id("contact_raw")} AS contact_id, {_id("account_raw")} AS account_id
    FROM fields
),
checked AS (
    SELECT *, {
    _problem(
        *_common_checks("Case", "Case"),
        *_time_check("Case", "created_raw", "created", "CreatedDate", required=True),
        *_time_check("Case", "closed_raw", "closed_at", "ClosedDate", required=False),
        _id_check("Case", "parent_raw", "parent", "ParentId"),
        _id_check("Case", "owner_raw", "owner_id", "OwnerId"),
        _id_check("Case", "by_raw", "by_id", "CreatedById"),
        _bool_check("Case", "is_closed", "IsClosed"),
        _bool_check("Case", "is_escalated", "IsEscalated"),
    )
} AS p
    FROM parsed
),
ok AS (
    SELECT *, {_actor("by_id")} AS actor, {_serial("id")} AS seq,
           {
    _attrs(
        "'case_number', case_number",
        "'channel', channel",
        "'status', status",
        "'is_closed', is_closed = 'true'",
        "'closed_date', strftime(closed_at, '%Y-%m-%dT%H:%M:%SZ')",
        "'is_escalated', is_escalated = 'true'",
        "'owner_id', owner_id",
        "'contact_id', contact_id",
        "'account_id', account_id",
        "'parent_id', parent",
        "'priority', priority",
        "'case_type', case_type",
        "'reason', reason",
    )
} AS case_attrs
    FROM checked WHERE p IS NULL
)
{
    _event(
        event_id="'salesforce:Case:' || id || ':created'",
        entity_id="id",
        ts="created",
        type_="'created'",
        actor="actor",
        attrs="json_merge_patch(case_attrs, json_object('origin', "
        + _origin(
            entity_id="Case.Id",
            ts="Case.CreatedDate",
            actor="Case.CreatedById",
            **{"attrs.channel": "Case.Origin", "attrs.closed_date": "Case.ClosedDate"},
        )
        + "))",
        sub=0,
        where="TRUE",
    )
}
UNION ALL
{
    _event(
        event_id="'salesforce:Case:' || id || ':followup'",
        entity_id="parent",
        ts="created",
        type_="'followup_created'",
        actor="actor",
        attrs=_attrs(
            "'followup_id', id",
            "'case_number', case_number",
            "'channel', channel",
            "'origin', "
            + _origin(
                entity_id="Case.ParentId",
                ts="Case.CreatedDate",
                actor="Case.CreatedById",
                **{"attrs.followup_id": "Case.Id"},
            ),
        ),
        sub=1,
        where="parent IS NOT NULL AND $child_case_followup",
    )
}
UNION ALL
{_PROBLEMS}
"""  # noqa: S608 - package constants only; values are parameters

# --------------------------------------------------------------------------- CaseHistory

_HISTORY_ORIGIN: Final[dict[str, str]] = {
    "entity_id": "CaseHistory.CaseId",
    "ts": "CaseHistory.CreatedDate",
    "actor": "CaseHistory.CreatedById",
    "attrs.from": "CaseHistory.OldValue",
    "attrs.to": "CaseHistory.NewValue",
}

_CLOSED_ORIGIN: Final[str] = _origin(
    **_HISTORY_ORIGIN,
    **{"actor (sessions)": "MessagingSession.AgentType"},
)

_HISTORY_SQL: Final[str] = f"""
WITH {_REC},
fields AS (
    SELECT row_no, j, j -> 'attributes' ->> 'type' AS sobject,
           {_f("Id")} AS id_raw, {_f("CaseId")} AS case_raw, {_f("Field")} AS field,
           {_f("OldValue")} AS old_v, {_f("NewValue")} AS new_v, {_f("DataType")} AS data_type,
           {_f("CreatedDate")} AS created_raw, {_f("CreatedById")} AS by_raw
    FROM rec
),
parsed AS (
    SELECT *, {_id("id_raw")} AS id, {_id("case_raw")} AS case_id, {_ts("created_raw")} AS ts,
           {_id("by_raw")} AS by_id,
           CASE WHEN field = 'Status' THEN 'status'
                WHEN field IN {OWNER_FIELDS!r} THEN 'owner'
                WHEN field = 'ownerEscalated' OR (field = 'IsEscalated' AND lower(new_v) = 'true')
                    THEN 'escalated'
                ELSE 'field:' || field END AS grp
    FROM fields
),
checked AS (
    SELECT *, {
    _problem(
        *_common_checks("CaseHistory", "CaseHistory"),
        ("case_raw IS NULL", "'CaseHistory ' || id || ': no CaseId'", "CaseId"),
        _id_check("CaseHistory", "case_raw", "case_id", "CaseId"),
        ("field IS NULL", "'CaseHistory ' || id || ': no Field'", "Field"),
        *_time_check("CaseHistory", "created_raw", "ts", "CreatedDate", required=True),
        _id_check("CaseHistory", "by_raw", "by_id", "CreatedById"),
        (
            "field = 'Status' AND new_v IS NULL",
            "'CaseHistory ' || id || ': a Status change without a NewValue'",
            "NewValue",
        ),
    )
} AS p
    FROM parsed
),
ok AS (
    SELECT *, {_actor("by_id")} AS actor, {_serial("id")} AS seq FROM checked WHERE p IS NULL
),
-- Which statuses are closed: the option when given, else the org's CaseStatus (stored by a
-- case_status file of this ingest or an earlier one), else just 'Closed'.
case_status AS (
    SELECT unnest([attrs ->> 'api_name', attrs ->> 'label']) AS name,
           attrs ->> 'is_closed' = 'true' AS is_closed
    FROM {STORE}
    WHERE type = 'case_status' AND attrs ->> 'vendor' = '{VENDOR}'
),
closed_set AS (
    SELECT CASE WHEN CAST($closed_statuses AS VARCHAR[]) IS NOT NULL
                    THEN CAST($closed_statuses AS VARCHAR[])
                WHEN count(*) > 0
                    THEN coalesce(list_sort(list(DISTINCT name) FILTER (
                        WHERE is_closed AND name IS NOT NULL)), [])
                ELSE ['Closed'] END AS statuses,
           CASE WHEN CAST($closed_statuses AS VARCHAR[]) IS NOT NULL THEN 'option closed_statuses'
                WHEN count(*) > 0 THEN 'CaseStatus.IsClosed'
                ELSE 'default' END AS statuses_from
    FROM case_status
),
sessions AS (
    SELECT entity_id, ts, attrs ->> 'agent_type' AS agent_type
    FROM {STORE}
    WHERE type = 'session_started' AND attrs ->> 'vendor' = '{VENDOR}'
),
status AS (
    SELECT ok.*, cs.statuses, cs.statuses_from,
           coalesce(list_contains(cs.statuses, old_v), FALSE) AS was_closed,
           list_contains(cs.statuses, new_v) AS now_closed
    FROM ok CROSS JOIN closed_set AS cs
    WHERE grp = 'status'
),
-- The case's messaging sessions that started before (or at) each close. Only other kinds
-- are read from the store (loaded first in any ingest), never other history pages, so the
-- order of the files given and the page split do not change which closes are the AI's.
close_sessions AS (
    SELECT s.row_no, count(x.ts) AS n_sessions,
           count(x.ts) FILTER (WHERE NOT list_contains($ai_agent_types, x.agent_type))
               AS n_other
    FROM status AS s LEFT JOIN sessions AS x ON x.entity_id = s.case_id AND x.ts <= s.ts
    WHERE s.now_closed AND NOT s.was_closed
    GROUP BY s.row_no
),
closes AS (
    SELECT s.*, cs.n_sessions, cs.n_other,
           CASE WHEN s.actor = 'ai' THEN 'ai_user_ids'
                WHEN $ai_close_by_sessions AND cs.n_sessions > 0 AND cs.n_other = 0
                    THEN 'sessions' END AS ai_by
    FROM status AS s JOIN close_sessions AS cs USING (row_no)
),
-- Foreign-key changes write two rows (names and ids) at the same instant: both rows give the
-- same event (same id, same content), so one is loaded and the other counts as a duplicate.
paired AS (
    SELECT *,
           max(CASE WHEN {_is_id_value("new_v")} THEN new_v END) OVER w AS to_id,
           max(CASE WHEN NOT {_is_id_value("new_v")} THEN new_v END) OVER w AS to_text,
           max(CASE WHEN {_is_id_value("old_v")} THEN old_v END) OVER w AS from_id,
           max(CASE WHEN NOT {_is_id_value("old_v")} THEN old_v END) OVER w AS from_text,
           list_sort(array_distinct(list(field) OVER w)) AS fields_changed,
           min(by_id) OVER w AS pair_by, min(seq) OVER w AS pair_seq
    FROM ok WHERE grp <> 'status'
    WINDOW w AS (PARTITION BY case_id, ts, grp)
),
grouped AS (
    SELECT *, {_actor("pair_by")} AS pair_actor, {_id("to_id")} AS assignee,
           'salesforce:CaseHistory:' || case_id || ':' || epoch_ms(ts) || ':' || grp AS pair_event
    FROM paired
)
{
    _event(
        event_id="'salesforce:CaseHistory:' || id",
        entity_id="case_id",
        ts="ts",
        type_="'status_changed'",
        actor="actor",
        attrs=_attrs(
            "'from', old_v",
            "'to', new_v",
            "'history_id', id",
            f"'origin', {_origin(**_HISTORY_ORIGIN)}",
        ),
        sub=0,
        where="TRUE",
        source="status",
    )
}
UNION ALL
{
    _event(
        event_id="'salesforce:CaseHistory:' || id || ':closed'",
        entity_id="case_id",
        ts="ts",
        type_="'closed'",
        actor="CASE WHEN ai_by IS NOT NULL THEN 'ai' ELSE actor END",
        attrs=_attrs(
            "'from', old_v",
            "'to', new_v",
            "'history_id', id",
            "'closed_statuses', statuses",
            "'closed_statuses_from', statuses_from",
            "'ai_by', ai_by",
            "'sessions_before', n_sessions",
            "'non_ai_sessions_before', n_other",
            f"'origin', {_CLOSED_ORIGIN}",
        ),
        sub=1,
        where="TRUE",
        source="closes",
    )
}
UNION ALL
{
    _event(
        event_id="'salesforce:CaseHistory:' || id || ':reopened'",
        entity_id="case_id",
        ts="ts",
        type_="'reopened'",
        actor="actor",
        attrs=_attrs(
            "'from', old_v",
            "'to', new_v",
            "'history_id', id",
            "'closed_statuses', statuses",
            "'closed_statuses_from', statuses_from",
            f"'origin', {_origin(**_HISTORY_ORIGIN)}",
        ),
        sub=2,
        where="was_closed AND NOT now_closed",
        source="status",
    )
}
UNION ALL
{
    _event(
        event_id="pair_event",
        entity_id="case_id",
        ts="ts",
        type_="CASE grp WHEN 'owner' THEN 'assigned' WHEN 'escalated' THEN 'escalated' "
        "ELSE 'field_changed' END",
        actor="pair_actor",
        seq="pair_seq",
        attrs="CASE grp WHEN 'owner' THEN "
        + _attrs(
            "'assignee', assignee",
            "'assignee_name', to_text",
            "'assignee_type', CASE WHEN list_contains($ai_user_ids, assignee) THEN 'ai' "
            "WHEN starts_with(assignee, '00G') THEN 'team' "
            "WHEN starts_with(assignee, '005') AND NOT list_contains($system_user_ids, assignee) "
            "THEN 'human' END",
            f"'from', {_id('from_id')}",
            "'from_name', from_text",
            "'fields', fields_changed",
            "'origin', "
            + _origin(
                entity_id="CaseHistory.CaseId",
                ts="CaseHistory.CreatedDate",
                actor="CaseHistory.CreatedById",
                **{
                    "attrs.assignee": "CaseHistory.NewValue (id row)",
                    "attrs.assignee_name": "CaseHistory.NewValue (name row)",
                },
            ),
        )
        + " ELSE "
        + _attrs(
            "'field', CASE WHEN grp = 'escalated' THEN NULL ELSE fields_changed[1] END",
            "'fields', CASE WHEN grp = 'escalated' THEN fields_changed END",
            "'from', coalesce(from_id, from_text)",
            "'to', coalesce(to_id, to_text)",
            "'from_name', CASE WHEN from_id IS NOT NULL THEN from_text END",
            "'to_name', CASE WHEN to_id IS NOT NULL THEN to_text END",
            f"'origin', {_origin(**_HISTORY_ORIGIN)}",
        )
        + " END",
        sub=0,
        where="TRUE",
        source="grouped",
    )
}
UNION ALL
{_PROBLEMS}
"""  # noqa: S608 - package constants only; values are parameters

# --------------------------------------------------------------------------- CaseStatus

_CASE_STATUS_SQL: Final[str] = f"""
WITH {_REC},
fields AS (
    SELECT row_no, j, j -> 'attributes' ->> 'type' AS sobject,
           coalesce({_f("ApiName")}, {_f("MasterLabel")}) AS id,
           {_f("ApiName")} AS api_name, {_f("MasterLabel")} AS label,
           lower({_f("IsClosed")}) AS is_closed, lower({_f("IsDefault")}) AS is_default,
           {_f("SortOrder")} AS sort_order,
           {_f("LastModifiedDate")} AS modified_raw, {_f("SystemModstamp")} AS stamp_raw,
           {_f("CreatedDate")} AS created_raw, {_f("Id")} AS status_id
    FROM rec
),
parsed AS (
    SELECT *, {_ts("modified_raw")} AS modified, {_ts("stamp_raw")} AS stamp,
           {_ts("created_raw")} AS created
    FROM fields
),
checked AS (
    SELECT *, {
    _problem(
        (
            "sobject IS NOT NULL AND sobject <> 'CaseStatus'",
            "'record ' || row_no || ' is a ' || sobject || ' record, not a CaseStatus "
            "(attributes.type): is this the CaseStatus export?'",
            "attributes.type",
        ),
        (
            "id IS NULL",
            "'CaseStatus record ' || row_no || ': no ApiName or MasterLabel'",
            "ApiName",
        ),
        (
            "is_closed IS NULL OR is_closed NOT IN ('true', 'false')",
            "'CaseStatus ' || id || ': IsClosed ' || coalesce(" + _q("is_closed") + ", 'missing') "
            "|| ' is not true or false'",
            "IsClosed",
        ),
        *_time_check("CaseStatus", "modified_raw", "modified", "LastModifiedDate", False),
        *_time_check("CaseStatus", "stamp_raw", "stamp", "SystemModstamp", False),
        *_time_check("CaseStatus", "created_raw", "created", "CreatedDate", False),
    )
} AS p
    FROM parsed
),
ok AS (SELECT * FROM checked WHERE p IS NULL)
{
    _event(
        event_id="'salesforce:CaseStatus:' || id",
        entity_id="'CaseStatus:' || id",
        ts="coalesce(modified, stamp, created, TIMESTAMP '1970-01-01')",
        type_="'case_status'",
        actor="'system'",
        seq="NULL",
        attrs=_attrs(
            "'api_name', api_name",
            "'label', label",
            "'is_closed', is_closed = 'true'",
            "'is_default', is_default = 'true'",
            "'sort_order', TRY_CAST(sort_order AS INTEGER)",
            "'status_id', status_id",
            "'origin', "
            + _origin(
                entity_id="CaseStatus.ApiName (else MasterLabel)",
                ts="CaseStatus.LastModifiedDate (else SystemModstamp, CreatedDate, 1970-01-01)",
                **{"attrs.is_closed": "CaseStatus.IsClosed"},
            ),
        ),
        sub=0,
        where="TRUE",
    )
}
UNION ALL
{_PROBLEMS}
"""  # noqa: S608 - package constants only; values are parameters

# --------------------------------------------------------------------------- MessagingSession

_SESSION_ORIGIN: Final[dict[str, str]] = {
    "entity_id": "MessagingSession.CaseId (else MessagingSession.Id)",
    "actor": "MessagingSession.AgentType",
}

_SESSION_SQL: Final[str] = f"""
WITH {_REC},
fields AS (
    SELECT row_no, j, j -> 'attributes' ->> 'type' AS sobject,
           {_f("Id")} AS id_raw, {_f("CaseId")} AS case_raw, {_f("AgentType")} AS agent_type,
           {_f("Status")} AS status, {_f("StartTime")} AS start_raw, {_f("EndTime")} AS end_raw,
           {_f("AcceptTime")} AS accept_raw, {_f("CreatedDate")} AS created_raw,
           {_f("Origin")} AS session_origin, {_f("ChannelType")} AS channel,
           {_f("ConversationId")} AS conversation_id
    FROM rec
),
parsed AS (
    SELECT *, {_id("id_raw")} AS id, {_id("case_raw")} AS case_id,
           {_ts("start_raw")} AS started, {_ts("end_raw")} AS ended,
           {_ts("accept_raw")} AS accepted, {_ts("created_raw")} AS created
    FROM fields
),
checked AS (
    SELECT *, {
    _problem(
        *_common_checks("MessagingSession", "MessagingSession"),
        _id_check("MessagingSession", "case_raw", "case_id", "CaseId"),
        (
            "agent_type IS NULL",
            "'MessagingSession ' || id || ': no AgentType (Salesforce AgentType values: "
            + ", ".join(AGENT_TYPES)
            + ")'",
            "AgentType",
        ),
        (
            f"agent_type NOT IN {AGENT_TYPES!r}",
            "'MessagingSession ' || id || ': unknown AgentType ' || "
            + _q("agent_type")
            + " || ' (Salesforce AgentType values: "
            + ", ".join(AGENT_TYPES)
            + ")'",
            "AgentType",
        ),
        (
            "start_raw IS NULL AND created_raw IS NULL",
            "'MessagingSession ' || id || ': no StartTime (nor CreatedDate)'",
            "StartTime",
        ),
        *_time_check("MessagingSession", "start_raw", "started", "StartTime", False),
        *_time_check("MessagingSession", "created_raw", "created", "CreatedDate", False),
        *_time_check("MessagingSession", "accept_raw", "accepted", "AcceptTime", False),
        *_time_check("MessagingSession", "end_raw", "ended", "EndTime", False),
    )
} AS p
    FROM parsed
),
ok AS (
    SELECT *, coalesce(case_id, id) AS entity, coalesce(started, created) AS begun,
           CASE WHEN list_contains($ai_agent_types, agent_type) THEN 'ai'
                WHEN agent_type = 'System' THEN 'system' ELSE 'human' END AS actor,
           {_serial("id")} AS seq,
           CASE WHEN start_raw IS NOT NULL THEN 'MessagingSession.StartTime'
                ELSE 'MessagingSession.CreatedDate' END AS ts_origin
    FROM checked WHERE p IS NULL
)
{
    _event(
        event_id="'salesforce:MessagingSession:' || id || ':started'",
        entity_id="entity",
        ts="begun",
        type_="'session_started'",
        actor="actor",
        attrs=_attrs(
            "'agent_type', agent_type",
            "'status', status",
            "'channel', channel",
            "'session_origin', session_origin",
            "'session_id', id",
            "'case_id', case_id",
            "'conversation_id', conversation_id",
            "'accept_time', strftime(accepted, '%Y-%m-%dT%H:%M:%SZ')",
            "'end_time', strftime(ended, '%Y-%m-%dT%H:%M:%SZ')",
            f"'origin', json_merge_patch({_origin(**_SESSION_ORIGIN)}, "
            "json_object('ts', ts_origin, 'attrs.channel', 'MessagingSession.ChannelType'))",
        ),
        sub=0,
        where="TRUE",
    )
}
UNION ALL
{
    _event(
        event_id="'salesforce:MessagingSession:' || id || ':escalated'",
        entity_id="entity",
        ts="coalesce(accepted, begun)",
        type_="'escalated'",
        actor="'ai'",
        attrs=_attrs(
            "'agent_type', agent_type",
            "'session_id', id",
            "'accepted', accepted IS NOT NULL",
            "'origin', json_object('entity_id', 'MessagingSession.CaseId', 'ts', "
            "CASE WHEN accepted IS NOT NULL THEN 'MessagingSession.AcceptTime' "
            "ELSE ts_origin END, 'type', 'MessagingSession.AgentType = BotToAgent')",
        ),
        sub=1,
        where="agent_type = 'BotToAgent'",
    )
}
UNION ALL
{
    _event(
        event_id="'salesforce:MessagingSession:' || id || ':ended'",
        entity_id="entity",
        ts="ended",
        type_="'session_ended'",
        actor="actor",
        value="epoch(ended) - epoch(begun)",
        attrs=_attrs(
            "'agent_type', agent_type",
            "'status', status",
            "'channel', channel",
            "'session_id', id",
            "'origin', "
            + _origin(
                **_SESSION_ORIGIN,
                ts="MessagingSession.EndTime",
                value="MessagingSession.EndTime - StartTime (seconds)",
            ),
        ),
        sub=2,
        where="ended IS NOT NULL",
    )
}
UNION ALL
{_PROBLEMS}
"""  # noqa: S608 - package constants only; values are parameters

# --------------------------------------------------------------------------- SurveySubject

_SUBJECT_SQL: Final[str] = f"""
WITH {_REC},
fields AS (
    SELECT row_no, j, j -> 'attributes' ->> 'type' AS sobject,
           {_f("Id")} AS id_raw, {_f("SubjectId")} AS subject_raw,
           {_f("SubjectEntityType")} AS subject_type_raw, {_f("ParentId")} AS parent_raw,
           {_f("CreatedDate")} AS created_raw, {_f("Name")} AS name
    FROM rec
),
parsed AS (
    SELECT *, {_id("id_raw")} AS id, {_id("subject_raw")} AS subject,
           {_id("parent_raw")} AS parent, {_ts("created_raw")} AS created
    FROM fields
),
checked AS (
    SELECT *, {
    _problem(
        *_common_checks("SurveySubject", "SurveySubject"),
        ("subject_raw IS NULL", "'SurveySubject ' || id || ': no SubjectId'", "SubjectId"),
        _id_check("SurveySubject", "subject_raw", "subject", "SubjectId"),
        ("parent_raw IS NULL", "'SurveySubject ' || id || ': no ParentId'", "ParentId"),
        _id_check("SurveySubject", "parent_raw", "parent", "ParentId"),
        *_time_check("SurveySubject", "created_raw", "created", "CreatedDate", True),
    )
} AS p
    FROM parsed
),
sessions AS (
    SELECT attrs ->> 'session_id' AS session_id, min(entity_id) AS entity_id
    FROM {STORE}
    WHERE type = 'session_started' AND attrs ->> 'vendor' = '{VENDOR}'
    GROUP BY ALL
),
ok AS (
    SELECT c.*, s.entity_id AS session_entity,
           coalesce(subject_type_raw,
                    CASE WHEN starts_with(subject, '500') THEN 'Case'
                         WHEN starts_with(subject, '0Mw') THEN 'MessagingSession' END)
               AS subject_type,
           {_serial("id")} AS seq
    FROM checked AS c LEFT JOIN sessions AS s ON s.session_id = c.subject
    WHERE p IS NULL
)
{
    _event(
        event_id="'salesforce:SurveySubject:' || id",
        entity_id="CASE WHEN subject_type = 'MessagingSession' "
        "THEN coalesce(session_entity, subject) ELSE subject END",
        ts="created",
        type_="'survey_linked'",
        actor="'system'",
        attrs=_attrs(
            "'subject_id', subject",
            "'subject_type', subject_type",
            "'parent_id', parent",
            "'via_session', CASE WHEN subject_type = 'MessagingSession' "
            "AND session_entity IS NOT NULL THEN subject END",
            "'name', name",
            "'origin', "
            + _origin(
                entity_id="SurveySubject.SubjectId (a MessagingSession's CaseId)",
                ts="SurveySubject.CreatedDate",
                **{"attrs.parent_id": "SurveySubject.ParentId"},
            ),
        ),
        sub=0,
        where="TRUE",
    )
}
UNION ALL
{_PROBLEMS}
"""  # noqa: S608 - package constants only; values are parameters

# --------------------------------------------------------------------------- SurveyQuestionResponse

_RESPONSE_SQL: Final[str] = f"""
WITH {_REC},
fields AS (
    SELECT row_no, j, j -> 'attributes' ->> 'type' AS sobject,
           {_f("Id")} AS id_raw, {_f("InvitationId")} AS invitation_raw,
           {_f("ResponseId")} AS response_raw, {_f("QuestionId")} AS question_raw,
           {_f("Datatype")} AS datatype, {_f("NumberValue")} AS number_raw,
           {_f("ChoiceValue")} AS choice, {_f("ResponseShortText")} AS short_text,
           {_f("IsTrueOrFalse")} AS true_false, {_f("DateValue")} AS date_value,
           {_f("CreatedDate")} AS created_raw
    FROM rec
),
parsed AS (
    SELECT *, {_id("id_raw")} AS id, {_id("invitation_raw")} AS invitation_id,
           {_id("response_raw")} AS response_id, {_id("question_raw")} AS question_id,
           TRY_CAST(number_raw AS DOUBLE) AS number, {_ts("created_raw")} AS created
    FROM fields
),
links AS (
    SELECT attrs ->> 'parent_id' AS parent_id, entity_id,
           CASE WHEN attrs ->> 'subject_type' = 'Case' THEN 0
                WHEN attrs ->> 'via_session' IS NOT NULL THEN 1 ELSE 2 END AS rank
    FROM {STORE}
    WHERE type = 'survey_linked' AND attrs ->> 'vendor' = '{VENDOR}'
),
linked AS (
    SELECT p.row_no, arg_min(l.entity_id, struct_pack(r := l.rank, e := l.entity_id)) AS entity
    FROM parsed AS p JOIN links AS l
      ON l.parent_id = p.invitation_id OR l.parent_id = p.response_id
    GROUP BY p.row_no
),
judged AS (
    SELECT p.*, l.entity,
           (datatype IN {NUMERIC_DATATYPES!r} OR (datatype IS NULL AND number IS NOT NULL))
               AND number IS NOT NULL
               AND (len($rating_question_ids) = 0
                    OR list_contains($rating_question_ids, question_id)) AS is_rating
    FROM parsed AS p LEFT JOIN linked AS l USING (row_no)
),
checked AS (
    SELECT *, {
    _problem(
        *_common_checks("SurveyQuestionResponse", "SurveyQuestionResponse"),
        *_time_check("SurveyQuestionResponse", "created_raw", "created", "CreatedDate", True),
        _id_check("SurveyQuestionResponse", "invitation_raw", "invitation_id", "InvitationId"),
        _id_check("SurveyQuestionResponse", "response_raw", "response_id", "ResponseId"),
        _id_check("SurveyQuestionResponse", "question_raw", "question_id", "QuestionId"),
        (
            f"datatype NOT IN {DATATYPES!r}",
            "'SurveyQuestionResponse ' || id || ': unknown Datatype ' || "
            + _q("datatype")
            + " || ' (Salesforce Datatype values: "
            + ", ".join(DATATYPES)
            + ")'",
            "Datatype",
        ),
        (
            "number_raw IS NOT NULL AND number IS NULL",
            "'SurveyQuestionResponse ' || id || ': NumberValue ' || "
            + _q("number_raw")
            + " || ' is not a number'",
            "NumberValue",
        ),
        (
            "invitation_id IS NULL AND response_id IS NULL",
            "'SurveyQuestionResponse ' || id || ': no InvitationId or ResponseId to find "
            "its case by'",
            "InvitationId",
        ),
        (
            "entity IS NULL",
            "'SurveyQuestionResponse ' || id || ': no SurveySubject links invitation ' || "
            "coalesce(invitation_id, '(none)') || ' or response ' || "
            "coalesce(response_id, '(none)') || ' to a case; ingest the SurveySubject "
            "export (SubjectId, SubjectEntityType, ParentId) with it'",
            "InvitationId",
        ),
        (
            "is_rating AND (number < 1 OR number > $rating_scale)",
            "'SurveyQuestionResponse ' || id || ': rating ' || number_raw || ' of question ' "
            "|| coalesce(question_id, '(none)') || ' is outside 1..' || $rating_scale || "
            "' (option rating_scale); if this is not the satisfaction question, list the "
            "rating questions in option rating_question_ids'",
            "NumberValue",
        ),
    )
} AS p
    FROM judged
),
ok AS (SELECT *, {_serial("id")} AS seq FROM checked WHERE p IS NULL)
{
    _event(
        event_id="'salesforce:SurveyQuestionResponse:' || id",
        entity_id="entity",
        ts="created",
        type_="'rated'",
        actor="'customer'",
        value="1 + (number - 1) * 4.0 / ($rating_scale - 1)",
        attrs=_attrs(
            "'scale', $rating_scale",
            "'raw', number",
            "'question_id', question_id",
            "'response_id', response_id",
            "'invitation_id', invitation_id",
            "'datatype', datatype",
            "'origin', "
            + _origin(
                entity_id="SurveySubject.SubjectId (via InvitationId / ResponseId)",
                ts="SurveyQuestionResponse.CreatedDate",
                value="SurveyQuestionResponse.NumberValue (scaled to 1-5)",
            ),
        ),
        sub=0,
        where="is_rating",
    )
}
UNION ALL
{
    _event(
        event_id="'salesforce:SurveyQuestionResponse:' || id",
        entity_id="entity",
        ts="created",
        type_="'survey_answer'",
        actor="'customer'",
        value="number",
        attrs=_attrs(
            "'raw', CASE WHEN datatype = 'Boolean' THEN true_false "
            "ELSE coalesce(choice, short_text, date_value, number_raw) END",
            "'question_id', question_id",
            "'response_id', response_id",
            "'invitation_id', invitation_id",
            "'datatype', datatype",
            "'origin', "
            + _origin(
                entity_id="SurveySubject.SubjectId (via InvitationId / ResponseId)",
                ts="SurveyQuestionResponse.CreatedDate",
                value="SurveyQuestionResponse.NumberValue",
            ),
        ),
        sub=0,
        where="NOT is_rating",
    )
}
UNION ALL
{_PROBLEMS}
"""  # noqa: S608 - package constants only; values are parameters

_SQL: Final[dict[str, str]] = {
    "case": _CASE_SQL,
    "case_history": _HISTORY_SQL,
    "case_status": _CASE_STATUS_SQL,
    "messaging_session": _SESSION_SQL,
    "survey_subject": _SUBJECT_SQL,
    "survey_question_response": _RESPONSE_SQL,
}

#: The options each kind's SQL uses (every parameter given must be used).
_PARAMS: Final[dict[str, tuple[str, ...]]] = {
    "case": ("ai_user_ids", "system_user_ids", "child_case_followup"),
    "case_history": (
        "ai_user_ids",
        "system_user_ids",
        "ai_agent_types",
        "ai_close_by_sessions",
        "closed_statuses",
    ),
    "case_status": (),
    "messaging_session": ("ai_agent_types",),
    "survey_subject": (),
    "survey_question_response": ("rating_question_ids", "rating_scale"),
}


class SalesforceAdapter(Adapter):
    """Service Cloud objects (REST query pages, JSON Lines, Bulk API 2.0 CSV) to case events."""

    name: ClassVar[str] = VENDOR
    title: ClassVar[str] = "Salesforce"
    options_model: ClassVar[type[AdapterOptions]] = SalesforceOptions
    kinds: ClassVar[Mapping[str, FileKind]] = {
        "case": FileKind(
            "case",
            "Case records (Id, CaseNumber, Status, IsClosed, ClosedDate, CreatedDate, Origin, "
            "OwnerId, ParentId, ...)",
            array_key="records",
        ),
        "case_history": FileKind(
            "case_history",
            "CaseHistory rows (CaseId, Field, OldValue, NewValue, DataType, CreatedDate, "
            "CreatedById)",
            needs=("case",),
            array_key="records",
            reads=("case_status", "messaging_session"),
        ),
        "case_status": FileKind(
            "case_status",
            "CaseStatus picklist values (ApiName, MasterLabel, IsClosed)",
            array_key="records",
        ),
        "messaging_session": FileKind(
            "messaging_session",
            "MessagingSession records (CaseId, AgentType, Status, StartTime, EndTime, "
            "AcceptTime, ChannelType)",
            needs=("case",),
            array_key="records",
        ),
        "survey_subject": FileKind(
            "survey_subject",
            "SurveySubject records (SubjectId, SubjectEntityType, ParentId): which case a "
            "survey is about",
            array_key="records",
            reads=("messaging_session",),
        ),
        "survey_question_response": FileKind(
            "survey_question_response",
            "SurveyQuestionResponse records (NumberValue, Datatype, QuestionId, InvitationId, "
            "ResponseId, CreatedDate)",
            needs=("survey_subject",),
            array_key="records",
            reads=("survey_subject",),
        ),
    }

    def recognize(self, sniff: Sniff) -> str | None:
        """The object from its field names (REST records carry them, Bulk CSV in its header)."""
        fields = sniff.record_keys
        if sniff.format is not FileFormat.csv and "records" in sniff.array_keys:
            fields = sniff.element_keys or fields
        if "PreviousUpdate" in fields:  # CaseHistory2 (API 59.0+) is a different shape
            return None
        if "CaseNumber" in fields or {"Status", "IsClosed", "Origin"} <= fields:
            return "case"
        if {"CaseId", "Field"} <= fields:
            return "case_history"
        if "AgentType" in fields or {"StartTime", "ChannelType"} <= fields:
            return "messaging_session"
        if "IsClosed" in fields and ({"ApiName", "MasterLabel"} & fields):
            return "case_status"
        if "SubjectId" in fields and ({"ParentId", "SubjectEntityType"} & fields):
            return "survey_subject"
        if "QuestionId" in fields and ({"ResponseId", "InvitationId"} & fields):
            return "survey_question_response"
        return None

    def events_sql(self, kind: str, options: AdapterOptions) -> tuple[str, dict[str, object]]:
        assert isinstance(options, SalesforceOptions)
        values: dict[str, object] = {
            "ai_user_ids": list(options.ai_user_ids),
            "system_user_ids": list(options.system_user_ids),
            "ai_agent_types": list(options.ai_agent_types),
            "ai_close_by_sessions": options.ai_close_by_sessions,
            "closed_statuses": None
            if options.closed_statuses is None
            else list(options.closed_statuses),
            "child_case_followup": options.child_case_followup,
            "rating_question_ids": list(options.rating_question_ids),
            "rating_scale": options.rating_scale,
        }
        return _SQL[kind], {name: values[name] for name in _PARAMS[kind]}


ADAPTER = SalesforceAdapter()
