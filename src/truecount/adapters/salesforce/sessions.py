"""MessagingSession: who handled each conversation on a case (the bot or a person)."""

from __future__ import annotations

from typing import Final

from truecount.adapters.salesforce.options import (
    AGENT_TYPES,
)
from truecount.adapters.salesforce.sql import (
    _PROBLEMS,
    _REC,
    _attrs,
    _common_checks,
    _event,
    _f,
    _id,
    _id_check,
    _origin,
    _problem,
    _q,
    _serial,
    _time_check,
    _ts,
)

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
