"""CaseHistory: status changes, closes, reopens, owner changes and escalations."""

from __future__ import annotations

from typing import Final

from truecount.adapters.base import STORE
from truecount.adapters.salesforce.options import (
    OWNER_FIELDS,
    VENDOR,
)
from truecount.adapters.salesforce.sql import (
    _PROBLEMS,
    _REC,
    BOOL_FORMS_SHOWN,
    _actor,
    _attrs,
    _bool,
    _common_checks,
    _event,
    _f,
    _id,
    _id_check,
    _is_id_value,
    _origin,
    _problem,
    _q,
    _serial,
    _time_check,
    _ts,
)

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


def _unknown_status_check(value: str, column: str) -> tuple[str, str, str]:
    """A status change into or out of a status whose ``CaseStatus.IsClosed`` was empty: whether
    it closes or reopens the case is unknown, so the row is set aside with the fix, rather than
    read as "not closed" (which would silently drop a close or a reopen)."""
    return (
        f"field = 'Status' AND list_contains((SELECT unknown FROM closed_set), {value})",  # noqa: S608 - column names only
        f"'CaseHistory ' || id || ': status ' || {_q(value)} || ' has an empty IsClosed in the "
        "CaseStatus export, so whether this change closes or reopens the case is unknown; "
        "export CaseStatus with IsClosed filled, or list the closed statuses in option "
        "closed_statuses'",
        column,
    )


_HISTORY_SQL: Final[str] = f"""
WITH {_REC},
fields AS (
    SELECT row_no, j, j -> 'attributes' ->> 'type' AS sobject,
           {_f("Id")} AS id_raw, {_f("CaseId")} AS case_raw, {_f("Field")} AS field,
           {_f("OldValue")} AS old_raw, {_f("NewValue")} AS new_raw,
           {_f("DataType")} AS data_type,
           {_f("CreatedDate")} AS created_raw, {_f("CreatedById")} AS by_raw
    FROM rec
),
-- A checkbox field's old and new values in one spelling ('true' / 'false'), whichever form
-- the export wrote (1/0, TRUE/FALSE, yes/no...), so every form gives the same events; a value
-- that is not a boolean is kept as written (and checked below when it decides the event).
spelled AS (
    SELECT *,
           CASE WHEN (data_type = 'Boolean' OR field = 'IsEscalated')
                     AND {_bool("old_raw")} IS NOT NULL
                THEN CAST({_bool("old_raw")} AS VARCHAR) ELSE old_raw END AS old_v,
           CASE WHEN (data_type = 'Boolean' OR field = 'IsEscalated')
                     AND {_bool("new_raw")} IS NOT NULL
                THEN CAST({_bool("new_raw")} AS VARCHAR) ELSE new_raw END AS new_v
    FROM fields
),
parsed AS (
    SELECT *, {_id("id_raw")} AS id, {_id("case_raw")} AS case_id, {_ts("created_raw")} AS ts,
           {_id("by_raw")} AS by_id,
           CASE WHEN field = 'Status' THEN 'status'
                WHEN field IN {OWNER_FIELDS!r} THEN 'owner'
                WHEN field = 'ownerEscalated' OR (field = 'IsEscalated' AND new_v = 'true')
                    THEN 'escalated'
                ELSE 'field:' || field END AS grp
    FROM spelled
),
-- Which statuses are closed: the option when given, else the org's CaseStatus (stored by a
-- case_status file of this ingest or an earlier one), else just 'Closed'. A CaseStatus stored
-- with an empty IsClosed is a status whose closedness is unknown (``unknown``): a change into
-- or out of it is quarantined below rather than guessed, unless the option decides.
case_status AS (
    SELECT unnest([attrs ->> 'api_name', attrs ->> 'label']) AS name,
           CAST(attrs ->> 'is_closed' AS BOOLEAN) AS is_closed
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
                ELSE 'default' END AS statuses_from,
           CASE WHEN CAST($closed_statuses AS VARCHAR[]) IS NOT NULL THEN []
                ELSE list_filter(
                    coalesce(list(DISTINCT name) FILTER (
                        WHERE is_closed IS NULL AND name IS NOT NULL), []),
                    lambda s: NOT list_contains(coalesce(list(DISTINCT name) FILTER (
                        WHERE is_closed IS NOT NULL AND name IS NOT NULL), []), s))
                END AS unknown
    FROM case_status
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
        _unknown_status_check("new_v", "NewValue"),
        _unknown_status_check("old_v", "OldValue"),
        (
            "field = 'IsEscalated' AND new_v IS NOT NULL AND new_v NOT IN ('true', 'false')",
            "'CaseHistory ' || id || ': IsEscalated NewValue ' || "
            + _q("new_v")
            + f" || ' is not a boolean (accepted: {BOOL_FORMS_SHOWN})'",
            "NewValue",
        ),
    )
} AS p
    FROM parsed
),
ok AS (
    SELECT *, {_actor("by_id")} AS actor, {_serial("id")} AS seq FROM checked WHERE p IS NULL
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
