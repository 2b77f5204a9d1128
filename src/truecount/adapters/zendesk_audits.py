"""Zendesk ticket audits: the status history, comments, assignments and escalations.

An audit is one update of a ticket, made by one author at one instant; it gives all the events
of its ``events[]`` (numbered by ``__tc_sub``), so an audit is loaded, duplicated or quarantined
as a whole. Who the actor of an update is depends on facts about the *ticket*, not the audit:

- its **requester** (the author who is the customer), from the creating audit's
  ``requester_id`` (else the first ``Change`` of ``requester_id``, else the tickets file);
- its **channel** (from the creating audit's ``via.channel``, else the tickets file), which says
  whether it is an AI agent ticket (option ``ai_agent_ticket_channels``);
- when the AI first acted on it and when it was first **escalated** to a human.

The API's ``/api/v2/ticket_audits`` comes one page per ``.json`` file, so a ticket's creating
audit is often on another page than its later audits. The facts are therefore resolved across
every audits file of one ingest *before any of them is staged*: the framework runs
:data:`CONTEXT_SQL` over each audits file of the ingest (:meth:`Adapter.context_sql`) and
gathers one row per readable audit into :data:`CONTEXT`; each file's events SQL then reads the
ticket facts from that table, from the tickets stored before it (the tickets kind is read first,
:attr:`FileKind.reads`), and from the audits of earlier ingests (reconstructed from their stored
events). The order of the page files on the command line therefore never changes an event.

What cannot be resolved stays unknown, on purpose: an update by someone other than the
requester of a ticket whose requester is unknown (or whose channel is unknown while AI agent
ticket channels are configured) gets ``actor`` NULL and ``attrs.actor_unknown`` saying why.
``truecount ingest`` counts such events per file, ``truecount check`` per condition that filters
by actor, and the compiler never lets one make an ``absent`` condition pass.

Order within a ticket is by (``created_at``, audit id): :func:`_key` folds both into one
number that sorts the same way in every file and in the store, where ranks within one file
would not.
"""

from __future__ import annotations

from typing import Final

from truecount.adapters.base import STORE
from truecount.adapters.zendesk import (
    _ISO_HINT,
    _MAX_SEQ_AUDIT,
    _PROBLEM_ROW,
    _STATUS_HINT,
    CLOSED_STATUSES,
    OPEN_STATUSES,
    STATUSES,
    _explicit_ai,
    _in,
    _ts,
    _whole,
)

#: The table gathering one row per readable audit of every audits file of the ingest.
CONTEXT: Final[str] = "__tc_context_audits"

#: Options whose ai ids the explicit-AI tests read (parameters of both queries).
_EXPLICIT_PARAMS: Final[tuple[str, ...]] = ("ai_author_ids", "ai_channels", "ai_source_rels")

#: Explicit-AI options as recorded in ``attrs.ai_by`` (read back from stored audits).
_EXPLICIT_BY: Final[str] = "('ai_author_ids', 'ai_channels', 'ai_source_rels')"


def _key(ts: str, audit_id: str) -> str:
    """Position in a ticket's history as one number: microseconds since 1970, then audit id.

    Zendesk audit ids are positive BIGINTs, below 10^19, so the fold keeps the order of
    (time, id) exactly, in every file and in the store alike.
    """
    return f"(epoch_us({ts})::HUGEINT * 10000000000000000000 + {audit_id})"


# --------------------------------------------------------------------------- reading

#: The audits of ``__tc_records`` checked (``a``) and their events (``ev``), shared by the
#: context pre-pass and the events query so both read exactly the same audits.
_READ: Final[str] = f"""
a0 AS (
    SELECT __tc_row, __tc_record AS r,
           __tc_record ->> '$.id' AS id_text,
           {_whole("__tc_record ->> '$.id'")} AS audit_id,
           {_whole("__tc_record ->> '$.ticket_id'")} AS ticket_id,
           {_whole("__tc_record ->> '$.author_id'")} AS author_id,
           __tc_record ->> '$.created_at' AS created_raw,
           __tc_record ->> '$.via.channel' AS channel,
           __tc_record ->> '$.via.source.rel' AS rel,
           json_type(__tc_record -> '$.events') AS events_type
    FROM __tc_records
), a1 AS (
    SELECT *, {_ts("created_raw")} AS ts FROM a0
), ev AS (
    -- one row per element of events[], numbered from 0 as Zendesk lists them
    SELECT __tc_row, idx - 1 AS idx, e, json_type(e) AS e_type,
           e ->> '$.id' AS eid_text, e ->> '$.type' AS etype,
           e ->> '$.field_name' AS field,
           e ->> '$.value' AS val, e ->> '$.previous_value' AS prev,
           {_whole("e ->> '$.author_id'")} AS c_author,
           e ->> '$.via.channel' AS c_channel, e ->> '$.via.source.rel' AS c_rel,
           TRY_CAST(e ->> '$.public' AS BOOLEAN) AS c_public
    FROM (
        SELECT __tc_row, unnest(CAST(r -> '$.events' AS JSON[])) AS e,
               generate_subscripts(CAST(r -> '$.events' AS JSON[]), 1) AS idx
        FROM a1 WHERE events_type = 'ARRAY'
    )
), ev_bad AS (
    -- the first event of an audit that cannot be read, with the reason
    SELECT __tc_row, arg_min(msg, idx) AS msg, arg_min(col, idx) AS col
    FROM (
        SELECT __tc_row, idx,
            CASE
                WHEN e_type <> 'OBJECT' THEN 'events[' || idx || '] is not an object'
                WHEN field = 'status' AND val IS NOT NULL AND val NOT IN {_in(STATUSES)}
                    THEN 'event ' || coalesce(eid_text, '#' || idx) || ': unknown status '''
                        || val || ''' {_STATUS_HINT}'
                WHEN field = 'status' AND prev IS NOT NULL AND prev NOT IN {_in(STATUSES)}
                    THEN 'event ' || coalesce(eid_text, '#' || idx)
                        || ': unknown previous status ''' || prev || ''' {_STATUS_HINT}'
            END AS msg,
            CASE
                WHEN e_type <> 'OBJECT' THEN 'events[' || idx || ']'
                WHEN field = 'status' AND val IS NOT NULL AND val NOT IN {_in(STATUSES)}
                    THEN 'events[' || idx || '].value'
                ELSE 'events[' || idx || '].previous_value'
            END AS col
        FROM ev
    ) WHERE msg IS NOT NULL
    GROUP BY __tc_row
), a AS (
    SELECT a1.*,
        CASE
            WHEN audit_id IS NULL THEN 'audit without a whole-number id (id: '
                || coalesce(id_text, 'missing') || ')'
            WHEN ticket_id IS NULL THEN 'audit ' || audit_id || ': ticket_id '
                || coalesce('''' || (r ->> '$.ticket_id') || '''', 'missing')
                || ' is not a whole number'
            WHEN ts IS NULL THEN 'audit ' || audit_id || ': created_at '
                || coalesce('''' || created_raw || '''', 'missing')
                || ' is not a timestamp ({_ISO_HINT})'
            WHEN events_type IS DISTINCT FROM 'ARRAY' THEN 'audit ' || audit_id
                || ': events is not a list (got ' || coalesce(lower(events_type), 'nothing') || ')'
            WHEN ev_bad.msg IS NOT NULL THEN 'audit ' || audit_id || ' ' || ev_bad.msg
        END AS problem,
        CASE
            WHEN audit_id IS NULL THEN 'id'
            WHEN ticket_id IS NULL THEN 'ticket_id'
            WHEN ts IS NULL THEN 'created_at'
            WHEN events_type IS DISTINCT FROM 'ARRAY' THEN 'events'
            WHEN ev_bad.msg IS NOT NULL THEN ev_bad.col
        END AS problem_column
    FROM a1 LEFT JOIN ev_bad USING (__tc_row)
), good AS (
    -- readable audits, with their place in the ticket's history
    SELECT a.*, {_key("ts", "audit_id")} AS akey,
           {_explicit_ai("author_id", "channel", "rel")} AS a_xai
    FROM a WHERE problem IS NULL
), gev AS (
    SELECT ev.*, good.audit_id, good.ticket_id, good.ts, good.author_id, good.channel,
           good.rel, good.akey, good.a_xai,
           coalesce(ev.c_author, good.author_id) AS cm_author,
           coalesce(ev.c_channel, good.channel) AS cm_channel,
           coalesce(ev.c_rel, good.rel) AS cm_rel
    FROM ev JOIN good USING (__tc_row)
), gev2 AS (
    SELECT *,
        CASE WHEN etype = 'Comment'
             THEN {_explicit_ai("cm_author", "cm_channel", "cm_rel")} END AS c_xai,
        bool_or(etype = 'Create') OVER (PARTITION BY __tc_row) AS creating,
        (etype IN ('Create', 'Change') AND field = 'assignee_id' AND nullif(val, '') IS NOT NULL
            AND NOT coalesce(list_contains($ai_author_ids::BIGINT[], {_whole("val")}),
                             false))
            AS to_agent
    FROM gev
), gev3 AS (
    SELECT *,
        to_agent OR (etype = 'Change' AND field = 'group_id' AND nullif(val, '') IS NOT NULL
                     AND NOT creating) AS esc_signal
    FROM gev2
)"""  # noqa: S608 - fixed text; options are parameters

#: The per-audit facts one file contributes to :data:`CONTEXT` (the framework's pre-pass).
CONTEXT_SQL: Final[str] = f"""
WITH {_READ}
SELECT ticket_id, audit_id, akey,
       bool_or(creating) AS creating,
       any_value(channel) AS channel,
       arg_min({_whole("val")}, idx)
           FILTER (WHERE etype = 'Create' AND field = 'requester_id') AS requester_create,
       arg_min({_whole("val")}, idx)
           FILTER (WHERE etype = 'Change' AND field = 'requester_id') AS requester_change,
       bool_or(a_xai IS NOT NULL OR c_xai IS NOT NULL) AS xai,
       bool_or(esc_signal) AS esc_signal
FROM gev3
GROUP BY ticket_id, audit_id, akey
"""  # noqa: S608 - fixed text; options are parameters

#: Audits of earlier ingests, read back from their stored events (same facts as the context).
_STORED: Final[str] = f"""
SELECT {_whole("entity_id")} AS ticket_id, audit_id,
       {_key("min(ts)", "audit_id")} AS akey,
       bool_or(event_type = 'Create') AS creating,
       any_value(attrs ->> '$.channel') AS channel,
       arg_min({_whole("attrs ->> '$.value'")}, seq)
           FILTER (WHERE event_type = 'Create' AND field = 'requester_id') AS requester_create,
       arg_min({_whole("attrs ->> '$.value'")}, seq)
           FILTER (WHERE event_type = 'Change' AND field = 'requester_id') AS requester_change,
       bool_or(attrs ->> '$.ai_by' IN {_EXPLICIT_BY}) AS xai,
       bool_or(type = 'assigned' AND field = 'assignee_id'
               AND NOT coalesce(list_contains($ai_author_ids::BIGINT[],
                                              {_whole("attrs ->> '$.assignee'")}), false))
       OR (bool_or(type = 'assigned' AND field = 'group_id' AND event_type = 'Change')
           AND NOT bool_or(event_type = 'Create')) AS esc_signal
FROM (
    SELECT *, {_whole("attrs ->> '$.audit_id'")} AS audit_id,
           attrs ->> '$.event_type' AS event_type, attrs ->> '$.field' AS field
    FROM {STORE}
    WHERE attrs ->> '$.vendor' = 'zendesk' AND attrs ->> '$.record' = 'audits'
      AND type <> 'escalated'
      AND entity_id IN (SELECT CAST(ticket_id AS VARCHAR) FROM good)
)
WHERE audit_id IS NOT NULL AND ts IS NOT NULL
GROUP BY entity_id, audit_id
"""  # noqa: S608 - fixed text

_NEVER: Final[str] = "false"


def _before_esc(key: str) -> str:
    return f"(esc_key IS NULL OR {key} < esc_key)"


_AUDIT_ACTOR_CASES: Final[str] = """
        CASE WHEN {xai} IS NOT NULL THEN 'ai'
             WHEN {author} IS NULL THEN NULL
             WHEN {author} = t_requester THEN 'customer'
             WHEN t_ai_ticket AND {before} THEN 'ai'
             WHEN t_channel_unknown AND {before} THEN NULL
             WHEN {author} = -1 THEN 'system'
             WHEN t_requester IS NOT NULL THEN 'human'
        END"""

_AUDIT_AI_BY: Final[str] = """
        CASE WHEN {xai} IS NOT NULL THEN {xai}
             WHEN {author} IS NULL OR {author} = t_requester THEN NULL
             WHEN t_ai_ticket AND {before} THEN 'ai_agent_ticket_channels'
        END"""

#: Why an actor is NULL, in words (``attrs.actor_unknown``); NULL when it is known.
_AUDIT_UNKNOWN: Final[str] = """
        CASE WHEN {xai} IS NOT NULL THEN NULL
             WHEN {author} IS NULL THEN 'the update has no author_id'
             WHEN {author} = t_requester THEN NULL
             WHEN t_ai_ticket AND {before} THEN NULL
             WHEN t_channel_unknown AND {before} THEN 'the ticket''s channel is unknown (its '
                 || 'creating audit and its ticket are not loaded), so whether it is an AI '
                 || 'agent ticket (option ai_agent_ticket_channels) cannot be told'
             WHEN {author} = -1 THEN NULL
             WHEN t_requester IS NULL THEN 'the ticket''s requester is unknown (its creating '
                 || 'audit and its ticket are not loaded), so customer and agent cannot be told'
        END"""


def _actor(xai: str, author: str, before: str) -> str:
    return _AUDIT_ACTOR_CASES.format(xai=xai, author=author, before=before)


def _ai_by(xai: str, author: str, before: str) -> str:
    return _AUDIT_AI_BY.format(xai=xai, author=author, before=before)


def _unknown(xai: str, author: str, before: str) -> str:
    return _AUDIT_UNKNOWN.format(xai=xai, author=author, before=before)


_A_BEFORE: Final[str] = _before_esc("akey")

AUDITS_SQL: Final[str] = f"""
WITH {_READ}, known AS (
    -- every audit of these tickets known to this ingest: all its audits files, and audits
    -- stored by earlier ingests
    SELECT ticket_id, audit_id, akey, creating, channel, requester_create, requester_change,
           xai, esc_signal
    FROM {CONTEXT} WHERE ticket_id IN (SELECT ticket_id FROM good)
    UNION ALL
    {_STORED}
), stored_tickets AS (
    -- the tickets file's facts (the tickets kind is loaded first)
    SELECT {_whole("entity_id")} AS ticket_id,
           arg_min(attrs ->> '$.channel', ts) AS channel,
           arg_min({_whole("attrs ->> '$.requester_id'")}, ts) AS requester
    FROM {STORE}
    WHERE type = 'created' AND attrs ->> '$.vendor' = 'zendesk'
      AND attrs ->> '$.record' = 'tickets'
      AND entity_id IN (SELECT CAST(ticket_id AS VARCHAR) FROM good)
    GROUP BY entity_id
), ticket_facts AS (
    SELECT ticket_id,
           arg_min(channel, akey) FILTER (WHERE creating) AS a_channel,
           arg_min(requester_create, akey) FILTER (WHERE requester_create IS NOT NULL)
               AS a_requester_create,
           arg_min(requester_change, akey) FILTER (WHERE requester_change IS NOT NULL)
               AS a_requester_change,
           min(akey) FILTER (WHERE xai) AS ai_seen_key
    FROM known GROUP BY ticket_id
), ticket_ctx AS (
    SELECT f.ticket_id, f.ai_seen_key,
           coalesce(f.a_channel, t.channel) AS t_channel,
           coalesce(f.a_requester_create, f.a_requester_change, t.requester) AS t_requester,
           coalesce(list_contains($ai_agent_ticket_channels::VARCHAR[],
                                  coalesce(f.a_channel, t.channel)), false) AS t_ai_ticket,
           coalesce(f.a_channel, t.channel) IS NULL
               AND len($ai_agent_ticket_channels::VARCHAR[]) > 0 AS t_channel_unknown
    FROM ticket_facts f LEFT JOIN stored_tickets t USING (ticket_id)
), escalation AS (
    -- the first update that hands an AI-handled ticket to a human: an agent assigned, or a
    -- group set after creation; AI-handled means an AI agent ticket, or the AI acted before
    SELECT k.ticket_id, min(k.akey) AS esc_key
    FROM known k JOIN ticket_ctx c USING (ticket_id)
    WHERE k.esc_signal AND (c.t_ai_ticket OR k.akey >= c.ai_seen_key)
    GROUP BY k.ticket_id
), x AS (
    SELECT g.*, c.t_channel, c.t_requester, c.t_ai_ticket, c.t_channel_unknown, e.esc_key,
           g.akey = e.esc_key AND g.idx = min(g.idx) FILTER (WHERE g.esc_signal)
               OVER (PARTITION BY g.__tc_row) AS escalates
    FROM gev3 g JOIN ticket_ctx c USING (ticket_id) LEFT JOIN escalation e USING (ticket_id)
), y AS (
    SELECT *,
        {_actor("a_xai", "author_id", _A_BEFORE)} AS a_actor,
        {_ai_by("a_xai", "author_id", _A_BEFORE)} AS a_ai_by,
        {_unknown("a_xai", "author_id", _A_BEFORE)} AS a_unknown,
        {_actor("c_xai", "cm_author", _A_BEFORE)} AS c_actor,
        {_ai_by("c_xai", "cm_author", _A_BEFORE)} AS c_ai_by,
        {_unknown("c_xai", "cm_author", _A_BEFORE)} AS c_unknown,
        'zendesk:audit:' || audit_id || ':' || coalesce(eid_text, '#' || idx) AS base_id,
        coalesce(etype IN ('Create', 'Change') AND field = 'status', false) AS is_status,
        coalesce(etype = 'Comment', false) AS is_comment,
        coalesce(etype IN ('Create', 'Change') AND field IN ('assignee_id', 'group_id')
                 AND nullif(val, '') IS NOT NULL, false) AS is_assignment
    FROM x
), rows AS (
    -- status history
    SELECT y.*, 0 AS k, base_id AS event_id, 'status_changed' AS type, a_actor AS actor,
           a_unknown AS unknown,
           json_object('from', CASE WHEN etype = 'Change' THEN prev END, 'to', val) AS detail
    FROM y WHERE is_status
    UNION ALL
    SELECT y.*, 1, base_id || ':closed', 'closed', a_actor, a_unknown,
           json_object('from', CASE WHEN etype = 'Change' THEN prev END, 'to', val)
    FROM y WHERE is_status AND val IN {_in(CLOSED_STATUSES)}
        AND (etype = 'Create' OR prev IS NULL OR prev NOT IN {_in(CLOSED_STATUSES)})
    UNION ALL
    SELECT y.*, 1, base_id || ':reopened', 'reopened', a_actor, a_unknown,
           json_object('from', prev, 'to', val)
    FROM y WHERE is_status AND etype = 'Change'
        AND prev IN {_in(CLOSED_STATUSES)} AND val IN {_in(OPEN_STATUSES)}
    -- comments
    UNION ALL
    SELECT y.*, 0, base_id, CASE WHEN coalesce(c_public, true) THEN 'message' ELSE 'note' END,
           c_actor, c_unknown,
           json_object('public', coalesce(c_public, true), 'comment_channel', cm_channel,
                       'comment_author_id', cm_author)
    FROM y WHERE is_comment
    -- assignments
    UNION ALL
    SELECT y.*, 0, base_id, 'assigned', a_actor, a_unknown,
           json_object('assignee', val,
                       'assignee_type', CASE
                           WHEN field = 'group_id' THEN 'team'
                           WHEN list_contains($ai_author_ids::BIGINT[], {_whole("val")})
                               THEN 'ai'
                           ELSE 'human' END,
                       'field', field)
    FROM y WHERE is_assignment
    -- the hand-over of an AI-handled ticket to a human
    UNION ALL
    SELECT y.*, 2, 'zendesk:audit:' || audit_id || ':escalated', 'escalated',
           {_actor("a_xai", "author_id", _NEVER)}, {_unknown("a_xai", "author_id", _NEVER)},
           json_object('field', field, 'assignee', val)
    FROM y WHERE coalesce(escalates, false)
    -- everything else Zendesk records, kept under its own name
    UNION ALL
    SELECT y.*, 0, base_id, 'audit_event', a_actor, a_unknown,
           json_object('field', field, 'value', val, 'previous_value', prev)
    FROM y WHERE NOT is_status AND NOT is_comment AND NOT is_assignment
), numbered AS (
    SELECT *, row_number() OVER (PARTITION BY __tc_row ORDER BY idx, k) - 1 AS sub FROM rows
)
SELECT event_id, CAST(ticket_id AS VARCHAR) AS entity_id, ts, type, actor, NULL AS value,
       json_merge_patch(
           json_object(
               'origin', json_object(
                   'entity_id', 'audit.ticket_id', 'ts', 'audit.created_at',
                   'actor', CASE WHEN etype = 'Comment' THEN 'audit.events[].author_id'
                                 ELSE 'audit.author_id' END,
                   'attrs.from', CASE WHEN is_status THEN 'audit.events[].previous_value' END,
                   'attrs.to', CASE WHEN is_status THEN 'audit.events[].value' END),
               'audit_id', audit_id, 'audit_event_id', {_whole("eid_text")},
               'event_type', etype, 'author_id', author_id, 'channel', channel,
               'via_rel', rel, 'ticket_channel', t_channel, 'ticket_requester', t_requester,
               'ai_by', CASE WHEN etype = 'Comment' AND type IN ('message', 'note') THEN c_ai_by
                             ELSE a_ai_by END,
               'actor_unknown', CASE WHEN actor IS NULL THEN unknown END),
           detail) AS attrs,
       NULL AS source, NULL AS recorded_at,
       CASE WHEN audit_id BETWEEN 0 AND {_MAX_SEQ_AUDIT}
            THEN audit_id * 1000 + least(sub, 999) END AS seq,
       __tc_row, sub AS __tc_sub, NULL AS __tc_problem, NULL AS __tc_problem_column,
       NULL AS __tc_raw
FROM numbered
UNION ALL
-- an audit with an empty events list is still one update of the ticket
SELECT 'zendesk:audit:' || audit_id, CAST(ticket_id AS VARCHAR), ts, 'audit_event', NULL, NULL,
       json_object('origin', json_object('entity_id', 'audit.ticket_id', 'ts', 'audit.created_at'),
                   'audit_id', audit_id, 'event_type', NULL, 'author_id', author_id,
                   'channel', channel,
                   'actor_unknown', 'an audit without events has no update to attribute'),
       NULL, NULL, CASE WHEN audit_id BETWEEN 0 AND {_MAX_SEQ_AUDIT} THEN audit_id * 1000 END,
       __tc_row, 0, NULL, NULL, NULL
FROM a WHERE problem IS NULL AND json_array_length(r -> '$.events') = 0
UNION ALL
SELECT {_PROBLEM_ROW} FROM a WHERE problem IS NOT NULL
"""  # noqa: S608 - fixed text; options are parameters


def audits_params(
    ai_author_ids: list[int],
    ai_channels: list[str],
    ai_source_rels: list[str],
    ai_agent_ticket_channels: list[str],
) -> tuple[dict[str, object], dict[str, object]]:
    """The parameters of :data:`CONTEXT_SQL` and of :data:`AUDITS_SQL`, from the options."""
    explicit: dict[str, object] = {
        "ai_author_ids": list(ai_author_ids),
        "ai_channels": list(ai_channels),
        "ai_source_rels": list(ai_source_rels),
    }
    assert set(explicit) == set(_EXPLICIT_PARAMS)
    return explicit, {**explicit, "ai_agent_ticket_channels": list(ai_agent_ticket_channels)}
