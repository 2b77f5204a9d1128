"""Zendesk Support exports: tickets, ticket audits, CSAT ratings and ticket metric events.

Zendesk bills its AI agents per *automated resolution*: a request resolved by the AI agent
"without any escalation to a human agent". A buyer recomputes that from the Support API's own
records, which say who changed what and when; this module turns them into canonical events
(docs/sources/zendesk.md has the field-by-field table).

The files and what they give:

- ``tickets`` (``/api/v2/tickets``, ``/api/v2/incremental/tickets/cursor``): ``created`` with
  the channel, and ``followup_created`` on the *closed* ticket a follow-up was opened from
  (Zendesk cannot reopen a closed ticket; the customer coming back makes a new one);
- ``audits`` (``/api/v2/ticket_audits``, ``/api/v2/tickets/{id}/audits``): the status history
  (``status_changed``, ``closed``, ``reopened``), comments (``message`` / ``note``),
  assignments and the escalation of an AI agent ticket to a human (``escalated``);
- ``satisfaction_ratings`` (legacy CSAT, good/bad) and ``csat_survey_responses`` (the newer
  survey with numeric answers): ``rated`` on a 1-5 scale;
- ``ticket_metric_events``: every SLA metric event, and ``metric_reopen`` when the resolution
  time metric is re-activated after it was fulfilled, Zendesk's own reopen signal.

Who counts as the AI is the choice that decides the count, and Zendesk's records do not say it
in one field, so it lives in :class:`ZendeskOptions` and every audit event says which option
made its actor ``ai`` (``attrs.ai_by``). The record unit of an audit file is the audit: one
audit (one update of the ticket, made by one author at one instant) gives all the events of
its ``events[]``, numbered by ``__tc_sub``, so an audit is loaded, duplicated or quarantined
as a whole.

Attribution works inside one audits file: the ticket's channel and requester come from its
creating audit, and the escalation from its later audits. Export each ticket's whole audit
history in one file (pages of ``/api/v2/ticket_audits`` one per line in a ``.jsonl`` file),
or the AI agent ticket rule cannot see the channel.
"""

from __future__ import annotations

from typing import ClassVar, Final

from pydantic import Field, field_validator

from truecount.adapters.base import Adapter, AdapterOptions, FileKind, Sniff
from truecount.ingest.source import FileFormat

#: Zendesk ticket statuses (the incremental export also shows ``deleted``).
STATUSES: Final[tuple[str, ...]] = ("new", "open", "pending", "hold", "solved", "closed", "deleted")
#: Statuses in which the customer's request is done: entering one is a close, leaving one a reopen.
CLOSED_STATUSES: Final[tuple[str, ...]] = ("solved", "closed")
#: Statuses a reopened ticket moves to (``solved`` -> one of these is Zendesk's reopen).
OPEN_STATUSES: Final[tuple[str, ...]] = ("new", "open", "pending", "hold")
SCORES: Final[tuple[str, ...]] = ("offered", "unoffered", "good", "bad")
METRICS: Final[tuple[str, ...]] = (
    "agent_work_time",
    "pausable_update_time",
    "periodic_update_time",
    "reply_time",
    "requester_wait_time",
    "resolution_time",
)
METRIC_TYPES: Final[tuple[str, ...]] = (
    "activate",
    "pause",
    "fulfill",
    "apply_sla",
    "apply_group_sla",
    "breach",
    "update_status",
    "measure",
)
#: Zendesk's system user: triggers, automations and the AI agent platform act as it.
SYSTEM_USER: Final[int] = -1

#: Answer Bot (Zendesk bots) channels on which the bot, not a person, solves the request.
#: ``answer_bot_for_agents`` is left out on purpose: there an agent picks the article.
DEFAULT_AI_CHANNELS: Final[tuple[str, ...]] = (
    "answer_bot",
    "answer_bot_api",
    "answer_bot_for_sdk",
    "answer_bot_for_slack",
    "answer_bot_for_web_widget",
)


class ZendeskOptions(AdapterOptions):
    """The choices a Zendesk export forces: who is the AI, and what a rating is worth."""

    ai_author_ids: list[int] = Field(
        default_factory=list,
        description="Zendesk user ids of the AI: an email/ticket AI agent's or a third-party "
        "bot's API user. Audits and comments by them are actor ai. Default none: Zendesk "
        "exports no user roles, so only the buyer can name its bot users.",
    )
    ai_channels: list[str] = Field(
        default_factory=lambda: list(DEFAULT_AI_CHANNELS),
        description="via.channel values of audits and comments made by the AI. Default: the "
        "Answer Bot channels, where the customer accepting an article solves the request "
        "(the author is the customer, the outcome the bot's); answer_bot_for_agents is not "
        "included because there an agent chooses the article.",
    )
    ai_source_rels: list[str] = Field(
        default_factory=lambda: ["answer_bot"],
        description="via.source.rel values of audits and comments made by the AI. Default "
        "answer_bot, Answer Bot's mark on updates through another channel.",
    )
    ai_agent_ticket_channels: list[str] = Field(
        default_factory=lambda: ["native_messaging"],
        description="Channels (the creating audit's via.channel) on which Zendesk opens an AI "
        "agent ticket. Until it is escalated (first assigned to a non-AI agent, or a group "
        "set after creation) such a ticket is the AI agent's: its updates by anyone but the "
        "requester (the bot, the system closing it at session end) are actor ai. Default "
        "native_messaging, where every conversation starts with the AI agent; [] when "
        "messaging is not fronted by one.",
    )
    good_rating_value: float = Field(
        default=5.0,
        description="Value of a legacy 'good' rating on the 1-5 scale. Default 5: the top of a "
        "binary survey, so 'value >= 4' reads as 'good'; legacy CSAT has no 1-5 score, and this "
        "is an assumption, not a fact of the export.",
    )
    bad_rating_value: float = Field(
        default=1.0,
        description="Value of a legacy 'bad' rating on the 1-5 scale. Default 1, the bottom.",
    )
    survey_scale_max: int = Field(
        default=5,
        ge=2,
        description="Top of the CSAT survey's numeric scale; answers are mapped linearly onto "
        "1-5 (1 + (rating - 1) * 4 / (max - 1)). Default 5: the survey's 1-5 scale, kept as is.",
    )

    @field_validator("ai_channels", "ai_source_rels", "ai_agent_ticket_channels")
    @classmethod
    def _no_blank(cls, values: list[str]) -> list[str]:
        if any(not v.strip() for v in values):
            raise ValueError("names must not be blank")
        return values


# --------------------------------------------------------------------------- SQL pieces


def _ts(text: str) -> str:
    """A Zendesk timestamp (ISO 8601, usually ending in Z) as naive UTC; NULL if unparseable."""
    return (
        f"(CASE WHEN regexp_matches({text}, '(Z|[+-][0-9]{{2}}:?[0-9]{{2}})$') "
        f"THEN timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ)) "
        f"ELSE TRY_CAST({text} AS TIMESTAMP) END)"
    )


def _in(values: tuple[str, ...]) -> str:
    """A SQL list of this module's own constant names (never user text)."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(values)


_STATUS_HINT: Final[str] = f"(Zendesk statuses: {_listed(STATUSES)})"
_ISO_HINT: Final[str] = "expected ISO 8601 such as 2026-01-15T09:30:00Z"
_ISO_TEXT: Final[str] = "%Y-%m-%dT%H:%M:%SZ"
_MAX_SEQ_AUDIT: Final[int] = 9_000_000_000_000_000  # audit id * 1000 must fit a BIGINT

#: One problem row per bad record (the stage's shape; event columns empty).
_PROBLEM_ROW: Final[str] = """
    NULL AS event_id, NULL AS entity_id, NULL AS ts, NULL AS type, NULL AS actor,
    NULL AS value, NULL AS attrs, NULL AS source, NULL AS recorded_at, NULL AS seq,
    __tc_row, 0 AS __tc_sub, problem AS __tc_problem, problem_column AS __tc_problem_column,
    r AS __tc_raw"""


def _explicit_ai(author: str, channel: str, rel: str) -> str:
    """Which explicit option names this author / via as the AI, or NULL."""
    return (
        f"CASE WHEN list_contains($ai_author_ids::BIGINT[], {author}) THEN 'ai_author_ids' "
        f"WHEN list_contains($ai_channels::VARCHAR[], {channel}) THEN 'ai_channels' "
        f"WHEN list_contains($ai_source_rels::VARCHAR[], {rel}) THEN 'ai_source_rels' END"
    )


# --------------------------------------------------------------------------- tickets

_TICKETS_SQL: Final[str] = f"""
WITH t0 AS (
    SELECT __tc_row, __tc_record AS r,
           __tc_record ->> '$.id' AS id_text,
           TRY_CAST(__tc_record ->> '$.id' AS BIGINT) AS id,
           __tc_record ->> '$.created_at' AS created_raw,
           __tc_record ->> '$.status' AS status,
           __tc_record ->> '$.via.channel' AS channel,
           __tc_record ->> '$.via.source.rel' AS rel,
           TRY_CAST(__tc_record ->> '$.via_followup_source_id' AS BIGINT) AS followup_field,
           TRY_CAST(__tc_record ->> '$.via.source.from.ticket_id' AS BIGINT) AS followup_via
    FROM __tc_records
), t1 AS (
    SELECT *, {_ts("created_raw")} AS created,
           coalesce(followup_field, CASE WHEN channel = 'closed_ticket' THEN followup_via END)
               AS source_id
    FROM t0
), t AS (
    SELECT *,
        CASE
            WHEN id IS NULL THEN 'ticket without a numeric id (id: '
                || coalesce(id_text, 'missing') || ')'
            WHEN created IS NULL THEN 'ticket ' || id || ': created_at '
                || coalesce('''' || created_raw || '''', 'missing')
                || ' is not a timestamp ({_ISO_HINT})'
            WHEN status IS NOT NULL AND status NOT IN {_in(STATUSES)} THEN 'ticket ' || id
                || ': unknown status ''' || status || ''' {_STATUS_HINT}'
            WHEN channel = 'closed_ticket' AND source_id IS NULL THEN 'ticket ' || id
                || ': via.channel is closed_ticket (a follow-up) but neither '
                || 'via_followup_source_id nor via.source.from.ticket_id names the closed ticket'
        END AS problem,
        CASE
            WHEN id IS NULL THEN 'id'
            WHEN created IS NULL THEN 'created_at'
            WHEN status IS NOT NULL AND status NOT IN {_in(STATUSES)} THEN 'status'
            WHEN channel = 'closed_ticket' AND source_id IS NULL THEN 'via_followup_source_id'
        END AS problem_column
    FROM t1
)
SELECT 'zendesk:ticket:' || id || ':created' AS event_id,
       CAST(id AS VARCHAR) AS entity_id, created AS ts, 'created' AS type,
       'customer' AS actor, NULL AS value,
       json_object(
           'origin', json_object('entity_id', 'ticket.id', 'ts', 'ticket.created_at',
                                 'attrs.channel', 'ticket.via.channel'),
           'channel', channel, 'via_rel', rel,
           'requester_id', TRY_CAST(r ->> '$.requester_id' AS BIGINT),
           'submitter_id', TRY_CAST(r ->> '$.submitter_id' AS BIGINT),
           'ticket_type', r ->> '$.type', 'priority', r ->> '$.priority',
           'status_at_export', status, 'followup_of', source_id,
           'from_messaging_channel', TRY_CAST(r ->> '$.from_messaging_channel' AS BOOLEAN)
       ) AS attrs,
       NULL AS source, NULL AS recorded_at, NULL AS seq,
       __tc_row, 0 AS __tc_sub, NULL AS __tc_problem, NULL AS __tc_problem_column,
       NULL AS __tc_raw
FROM t WHERE problem IS NULL
UNION ALL
SELECT 'zendesk:ticket:' || source_id || ':followup:' || id,
       CAST(source_id AS VARCHAR), created, 'followup_created', 'customer', NULL,
       json_object(
           'origin', json_object('entity_id', 'ticket.via_followup_source_id',
                                 'ts', 'ticket.created_at', 'attrs.followup_id', 'ticket.id'),
           'followup_id', id, 'channel', channel
       ),
       NULL, NULL, NULL, __tc_row, 1, NULL, NULL, NULL
FROM t WHERE problem IS NULL AND source_id IS NOT NULL
UNION ALL
SELECT {_PROBLEM_ROW} FROM t WHERE problem IS NOT NULL
"""  # noqa: S608 - fixed text; options are parameters


# --------------------------------------------------------------------------- audits

_AUDIT_ACTOR_CASES: Final[str] = """
        CASE WHEN {xai} IS NOT NULL THEN 'ai'
             WHEN {author} IS NULL THEN NULL
             WHEN {author} = t_requester THEN 'customer'
             WHEN t_ai_ticket AND {rank} < coalesce(esc_rank, 9223372036854775807) THEN 'ai'
             WHEN {author} = -1 THEN 'system'
             WHEN t_requester IS NOT NULL THEN 'human'
        END"""

_AUDIT_AI_BY: Final[str] = """
        CASE WHEN {xai} IS NOT NULL THEN {xai}
             WHEN {author} IS NULL OR {author} = t_requester THEN NULL
             WHEN t_ai_ticket AND {rank} < coalesce(esc_rank, 9223372036854775807)
                 THEN 'ai_agent_ticket_channels'
        END"""


def _actor(xai: str, author: str, rank: str) -> str:
    return _AUDIT_ACTOR_CASES.format(xai=xai, author=author, rank=rank)


def _ai_by(xai: str, author: str, rank: str) -> str:
    return _AUDIT_AI_BY.format(xai=xai, author=author, rank=rank)


_AUDITS_SQL: Final[str] = f"""
WITH a0 AS (
    SELECT __tc_row, __tc_record AS r,
           __tc_record ->> '$.id' AS id_text,
           TRY_CAST(__tc_record ->> '$.id' AS BIGINT) AS audit_id,
           TRY_CAST(__tc_record ->> '$.ticket_id' AS BIGINT) AS ticket_id,
           TRY_CAST(__tc_record ->> '$.author_id' AS BIGINT) AS author_id,
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
           TRY_CAST(e ->> '$.author_id' AS BIGINT) AS c_author,
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
            WHEN audit_id IS NULL THEN 'audit without a numeric id (id: '
                || coalesce(id_text, 'missing') || ')'
            WHEN ticket_id IS NULL THEN 'audit ' || audit_id || ': no numeric ticket_id'
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
    -- readable audits, ranked in each ticket's history (time, then Zendesk's audit id)
    SELECT a.*,
           dense_rank() OVER (PARTITION BY ticket_id ORDER BY ts, audit_id) AS arank,
           {_explicit_ai("author_id", "channel", "rel")} AS a_xai
    FROM a WHERE problem IS NULL
), gev AS (
    SELECT ev.*, good.audit_id, good.ticket_id, good.ts, good.author_id, good.channel,
           good.rel, good.arank, good.a_xai,
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
            AND NOT coalesce(list_contains($ai_author_ids::BIGINT[], TRY_CAST(val AS BIGINT)),
                             false))
            AS to_agent
    FROM gev
), gev3 AS (
    SELECT *,
        to_agent OR (etype = 'Change' AND field = 'group_id' AND nullif(val, '') IS NOT NULL
                     AND NOT creating) AS esc_signal
    FROM gev2
), ticket_facts AS (
    -- what the file says about each ticket: channel and requester from its creating audit
    SELECT ticket_id,
           arg_min(channel, arank) FILTER (WHERE creating) AS t_channel,
           coalesce(
               arg_min(TRY_CAST(val AS BIGINT), (arank, idx))
                   FILTER (WHERE etype = 'Create' AND field = 'requester_id'),
               arg_min(TRY_CAST(val AS BIGINT), (arank, idx))
                   FILTER (WHERE etype = 'Change' AND field = 'requester_id')
           ) AS t_requester,
           min(arank) FILTER (WHERE a_xai IS NOT NULL OR c_xai IS NOT NULL) AS ai_seen_rank
    FROM gev3 GROUP BY ticket_id
), ticket_ctx AS (
    SELECT f.*,
           coalesce(list_contains($ai_agent_ticket_channels::VARCHAR[], t_channel), false)
               AS t_ai_ticket
    FROM ticket_facts f
), escalation AS (
    -- the first update that hands an AI-handled ticket to a human: an agent assigned, or a
    -- group set after creation; AI-handled means an AI agent ticket, or the AI acted before
    SELECT g.ticket_id, min(g.arank) AS esc_rank
    FROM gev3 g JOIN ticket_ctx c USING (ticket_id)
    WHERE g.esc_signal AND (c.t_ai_ticket OR g.arank >= c.ai_seen_rank)
    GROUP BY g.ticket_id
), x AS (
    SELECT g.*, c.t_channel, c.t_requester, c.t_ai_ticket, e.esc_rank,
           g.arank = e.esc_rank AND g.idx = min(g.idx) FILTER (WHERE g.esc_signal)
               OVER (PARTITION BY g.__tc_row) AS escalates
    FROM gev3 g JOIN ticket_ctx c USING (ticket_id) LEFT JOIN escalation e USING (ticket_id)
), y AS (
    SELECT *,
        {_actor("a_xai", "author_id", "arank")} AS a_actor,
        {_ai_by("a_xai", "author_id", "arank")} AS a_ai_by,
        {_actor("c_xai", "cm_author", "arank")} AS c_actor,
        {_ai_by("c_xai", "cm_author", "arank")} AS c_ai_by,
        'zendesk:audit:' || audit_id || ':' || coalesce(eid_text, '#' || idx) AS base_id,
        coalesce(etype IN ('Create', 'Change') AND field = 'status', false) AS is_status,
        coalesce(etype = 'Comment', false) AS is_comment,
        coalesce(etype IN ('Create', 'Change') AND field IN ('assignee_id', 'group_id')
                 AND nullif(val, '') IS NOT NULL, false) AS is_assignment
    FROM x
), rows AS (
    -- status history
    SELECT y.*, 0 AS k, base_id AS event_id, 'status_changed' AS type, a_actor AS actor,
           json_object('from', CASE WHEN etype = 'Change' THEN prev END, 'to', val) AS detail
    FROM y WHERE is_status
    UNION ALL
    SELECT y.*, 1, base_id || ':closed', 'closed', a_actor,
           json_object('from', CASE WHEN etype = 'Change' THEN prev END, 'to', val)
    FROM y WHERE is_status AND val IN {_in(CLOSED_STATUSES)}
        AND (etype = 'Create' OR prev IS NULL OR prev NOT IN {_in(CLOSED_STATUSES)})
    UNION ALL
    SELECT y.*, 1, base_id || ':reopened', 'reopened', a_actor,
           json_object('from', prev, 'to', val)
    FROM y WHERE is_status AND etype = 'Change'
        AND prev IN {_in(CLOSED_STATUSES)} AND val IN {_in(OPEN_STATUSES)}
    -- comments
    UNION ALL
    SELECT y.*, 0, base_id, CASE WHEN coalesce(c_public, true) THEN 'message' ELSE 'note' END,
           c_actor,
           json_object('public', coalesce(c_public, true), 'comment_channel', cm_channel,
                       'comment_author_id', cm_author)
    FROM y WHERE is_comment
    -- assignments
    UNION ALL
    SELECT y.*, 0, base_id, 'assigned', a_actor,
           json_object('assignee', val,
                       'assignee_type', CASE
                           WHEN field = 'group_id' THEN 'team'
                           WHEN list_contains($ai_author_ids::BIGINT[], TRY_CAST(val AS BIGINT))
                               THEN 'ai'
                           ELSE 'human' END,
                       'field', field)
    FROM y WHERE is_assignment
    -- the hand-over of an AI-handled ticket to a human
    UNION ALL
    SELECT y.*, 2, 'zendesk:audit:' || audit_id || ':escalated', 'escalated',
           {_actor("a_xai", "author_id", "(arank + 1)")},
           json_object('field', field, 'assignee', val)
    FROM y WHERE coalesce(escalates, false)
    -- everything else Zendesk records, kept under its own name
    UNION ALL
    SELECT y.*, 0, base_id, 'audit_event', a_actor,
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
               'audit_id', audit_id, 'audit_event_id', TRY_CAST(eid_text AS BIGINT),
               'event_type', etype, 'author_id', author_id, 'channel', channel,
               'via_rel', rel, 'ticket_channel', t_channel,
               'ai_by', CASE WHEN etype = 'Comment' AND type IN ('message', 'note') THEN c_ai_by
                             ELSE a_ai_by END),
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
                   'channel', channel),
       NULL, NULL, CASE WHEN audit_id BETWEEN 0 AND {_MAX_SEQ_AUDIT} THEN audit_id * 1000 END,
       __tc_row, 0, NULL, NULL, NULL
FROM a WHERE problem IS NULL AND json_array_length(r -> '$.events') = 0
UNION ALL
SELECT {_PROBLEM_ROW} FROM a WHERE problem IS NOT NULL
"""  # noqa: S608 - fixed text; options are parameters


# --------------------------------------------------------------------------- legacy CSAT

_RATINGS_SQL: Final[str] = f"""
WITH s0 AS (
    SELECT __tc_row, __tc_record AS r,
           __tc_record ->> '$.id' AS id_text,
           TRY_CAST(__tc_record ->> '$.id' AS BIGINT) AS id,
           TRY_CAST(__tc_record ->> '$.ticket_id' AS BIGINT) AS ticket_id,
           __tc_record ->> '$.score' AS score,
           __tc_record ->> '$.created_at' AS created_raw,
           __tc_record ->> '$.updated_at' AS updated_raw
    FROM __tc_records
), s1 AS (
    SELECT *, {_ts("created_raw")} AS created, {_ts("updated_raw")} AS updated FROM s0
), s AS (
    SELECT *,
        CASE WHEN score IN ('good', 'bad') THEN coalesce(updated, created)
             ELSE coalesce(created, updated) END AS ts,
        CASE
            WHEN id IS NULL THEN 'satisfaction rating without a numeric id (id: '
                || coalesce(id_text, 'missing') || ')'
            WHEN ticket_id IS NULL THEN 'satisfaction rating ' || id || ': no numeric ticket_id'
            WHEN score IS NULL OR score NOT IN {_in(SCORES)} THEN 'satisfaction rating ' || id
                || ': unknown score ' || coalesce('''' || score || '''', 'missing')
                || ' (Zendesk scores: {_listed(SCORES)})'
            WHEN created IS NULL AND updated IS NULL THEN 'satisfaction rating ' || id
                || ': neither updated_at nor created_at is a timestamp ({_ISO_HINT})'
        END AS problem,
        CASE
            WHEN id IS NULL THEN 'id'
            WHEN ticket_id IS NULL THEN 'ticket_id'
            WHEN score IS NULL OR score NOT IN {_in(SCORES)} THEN 'score'
            WHEN created IS NULL AND updated IS NULL THEN 'updated_at'
        END AS problem_column
    FROM s1
)
SELECT 'zendesk:satisfaction_rating:' || id || ':' || strftime(ts, '{_ISO_TEXT}') AS event_id,
       CAST(ticket_id AS VARCHAR) AS entity_id, ts,
       CASE score WHEN 'good' THEN 'rated' WHEN 'bad' THEN 'rated'
                  WHEN 'offered' THEN 'rating_offered' ELSE 'rating_unoffered' END AS type,
       'customer' AS actor,
       CASE score WHEN 'good' THEN $good_rating_value WHEN 'bad' THEN $bad_rating_value
       END AS value,
       json_object(
           'origin', json_object(
               'entity_id', 'satisfaction_rating.ticket_id',
               'ts', CASE WHEN score IN ('good', 'bad') AND updated IS NOT NULL
                          THEN 'satisfaction_rating.updated_at'
                          ELSE 'satisfaction_rating.created_at' END,
               'value', CASE WHEN score IN ('good', 'bad') THEN 'satisfaction_rating.score' END),
           'raw', score, 'scale', 'good/bad',
           'assumed', CASE WHEN score IN ('good', 'bad') THEN json_object(
               'good', $good_rating_value, 'bad', $bad_rating_value) END,
           'rating_id', id, 'assignee_id', TRY_CAST(r ->> '$.assignee_id' AS BIGINT),
           'reason', r ->> '$.reason', 'has_comment', nullif(r ->> '$.comment', '') IS NOT NULL
       ) AS attrs,
       NULL AS source, NULL AS recorded_at, NULL AS seq,
       __tc_row, 0 AS __tc_sub, NULL AS __tc_problem, NULL AS __tc_problem_column,
       NULL AS __tc_raw
FROM s WHERE problem IS NULL
UNION ALL
SELECT {_PROBLEM_ROW} FROM s WHERE problem IS NOT NULL
"""  # noqa: S608 - fixed text; options are parameters


# --------------------------------------------------------------------------- CSAT survey

_SURVEY_SQL: Final[str] = f"""
WITH r0 AS (
    SELECT __tc_row, __tc_record AS r, __tc_record ->> '$.id' AS id,
           json_type(__tc_record -> '$.subjects') AS subjects_type,
           json_type(__tc_record -> '$.answers') AS answers_type
    FROM __tc_records
), subj AS (
    SELECT __tc_row, list(DISTINCT ticket) AS tickets
    FROM (
        SELECT __tc_row, i, TRY_CAST(coalesce(
                   nullif(regexp_extract(s ->> '$.zrn', '^zen:ticket:([0-9]+)$', 1), ''),
                   CASE WHEN s ->> '$.type' IN ('zen:ticket', 'ticket') THEN s ->> '$.id' END
               ) AS BIGINT) AS ticket
        FROM (
            SELECT __tc_row, unnest(CAST(r -> '$.subjects' AS JSON[])) AS s,
                   generate_subscripts(CAST(r -> '$.subjects' AS JSON[]), 1) AS i
            FROM r0 WHERE subjects_type = 'ARRAY'
        )
    ) WHERE ticket IS NOT NULL
    GROUP BY __tc_row
), ans AS (
    SELECT __tc_row, i - 1 AS i, a ->> '$.id' AS answer_id, a ->> '$.type' AS answer_type,
           a -> '$.rating' AS rating_json, a ->> '$.rating' AS rating_text,
           TRY_CAST(a ->> '$.rating' AS DOUBLE) AS rating,
           a ->> '$.rating_category' AS category,
           a ->> '$.updated_at' AS updated_raw, a ->> '$.created_at' AS created_raw
    FROM (
        SELECT __tc_row, unnest(CAST(r -> '$.answers' AS JSON[])) AS a,
               generate_subscripts(CAST(r -> '$.answers' AS JSON[]), 1) AS i
        FROM r0 WHERE answers_type = 'ARRAY'
    )
), ans1 AS (
    SELECT *, coalesce({_ts("updated_raw")}, {_ts("created_raw")}) AS ts,
           json_type(rating_json) IS NOT NULL AND json_type(rating_json) <> 'NULL' AS has_rating
    FROM ans
), ans_bad AS (
    SELECT __tc_row, arg_min(msg, i) AS msg, arg_min(col, i) AS col,
           count(*) FILTER (WHERE has_rating) AS n
    FROM (
        SELECT *,
            CASE
                WHEN has_rating AND (rating IS NULL OR rating <> floor(rating)
                        OR rating < 1 OR rating > $survey_scale_max)
                    THEN 'answer ' || coalesce(answer_id, '#' || i) || ': rating '
                        || rating_text || ' is not a whole number from 1 to '
                        || $survey_scale_max || ' (option survey_scale_max)'
                WHEN ts IS NULL THEN 'answer ' || coalesce(answer_id, '#' || i)
                    || ': updated_at / created_at is not a timestamp ({_ISO_HINT})'
            END AS msg,
            CASE WHEN has_rating AND (rating IS NULL OR rating <> floor(rating)
                        OR rating < 1 OR rating > $survey_scale_max)
                 THEN 'answers[' || i || '].rating'
                 ELSE 'answers[' || i || '].updated_at' END AS col
        FROM ans1
    ) GROUP BY __tc_row
), resp AS (
    SELECT r0.*, subj.tickets, coalesce(ans_bad.n, 0) AS ratings,
        CASE
            WHEN id IS NULL OR id = '' THEN 'survey response without an id'
            WHEN subj.tickets IS NULL THEN 'survey response ' || id
                || ': no ticket in subjects[] (expected a subject with zrn zen:ticket:<id>)'
            WHEN answers_type IS DISTINCT FROM 'ARRAY' OR json_array_length(r -> '$.answers') = 0
                THEN 'survey response ' || id || ': no answers'
            WHEN ans_bad.msg IS NOT NULL THEN 'survey response ' || id || ' ' || ans_bad.msg
        END AS problem,
        CASE
            WHEN id IS NULL OR id = '' THEN 'id'
            WHEN subj.tickets IS NULL THEN 'subjects'
            WHEN answers_type IS DISTINCT FROM 'ARRAY' OR json_array_length(r -> '$.answers') = 0
                THEN 'answers'
            WHEN ans_bad.msg IS NOT NULL THEN ans_bad.col
        END AS problem_column
    FROM r0 LEFT JOIN subj USING (__tc_row) LEFT JOIN ans_bad USING (__tc_row)
), per_ticket AS (
    SELECT resp.*, unnest(tickets) AS ticket FROM resp WHERE problem IS NULL
), out AS (
    SELECT 'zendesk:survey_response:' || p.id || ':' || coalesce(a.answer_id, '#' || a.i)
               || ':' || p.ticket || ':' || strftime(a.ts, '{_ISO_TEXT}') AS event_id,
           p.ticket, a.ts, 'rated' AS type,
           1 + (a.rating - 1) * 4.0 / ($survey_scale_max - 1) AS value,
           json_object(
               'origin', json_object('entity_id', 'survey_response.subjects[].zrn',
                                     'ts', 'survey_response.answers[].updated_at',
                                     'value', 'survey_response.answers[].rating'),
               'raw', a.rating, 'scale', '1-' || $survey_scale_max, 'category', a.category,
               'response_id', p.id, 'answer_type', a.answer_type,
               'survey_id', p.r ->> '$.survey.id',
               'survey_version', TRY_CAST(p.r ->> '$.survey.version' AS INTEGER)
           ) AS attrs,
           p.__tc_row, p.ticket AS t_order, a.i AS a_order
    FROM per_ticket p JOIN ans1 a USING (__tc_row) WHERE a.has_rating
    UNION ALL
    -- a response without a rating (a comment only) still says the survey was answered
    SELECT 'zendesk:survey_response:' || p.id || ':' || p.ticket, p.ticket,
           (SELECT max(a.ts) FROM ans1 a WHERE a.__tc_row = p.__tc_row), 'survey_response',
           NULL,
           json_object('origin', json_object('entity_id', 'survey_response.subjects[].zrn',
                                             'ts', 'survey_response.answers[].updated_at'),
                       'response_id', p.id, 'survey_id', p.r ->> '$.survey.id'),
           p.__tc_row, p.ticket, -1
    FROM per_ticket p WHERE p.ratings = 0
)
SELECT event_id, CAST(ticket AS VARCHAR) AS entity_id, ts, type, 'customer' AS actor, value,
       attrs, NULL AS source, NULL AS recorded_at, NULL AS seq, __tc_row,
       row_number() OVER (PARTITION BY __tc_row ORDER BY t_order, a_order) - 1 AS __tc_sub,
       NULL AS __tc_problem, NULL AS __tc_problem_column, NULL AS __tc_raw
FROM out
UNION ALL
SELECT {_PROBLEM_ROW} FROM resp WHERE problem IS NOT NULL
"""  # noqa: S608 - fixed text; options are parameters


# --------------------------------------------------------------------------- metric events

_METRICS_SQL: Final[str] = f"""
WITH m0 AS (
    SELECT __tc_row, __tc_record AS r,
           __tc_record ->> '$.id' AS id_text,
           TRY_CAST(__tc_record ->> '$.id' AS BIGINT) AS id,
           TRY_CAST(__tc_record ->> '$.ticket_id' AS BIGINT) AS ticket_id,
           __tc_record ->> '$.metric' AS metric,
           __tc_record ->> '$.type' AS kind,
           TRY_CAST(__tc_record ->> '$.instance_id' AS BIGINT) AS instance_id,
           __tc_record ->> '$.time' AS time_raw
    FROM __tc_records
), m AS (
    SELECT *, {_ts("time_raw")} AS ts FROM m0
), checked AS (
    SELECT *,
        CASE
            WHEN id IS NULL THEN 'ticket metric event without a numeric id (id: '
                || coalesce(id_text, 'missing') || ')'
            WHEN ticket_id IS NULL THEN 'ticket metric event ' || id || ': no numeric ticket_id'
            WHEN metric IS NULL OR metric NOT IN {_in(METRICS)} THEN 'ticket metric event '
                || id || ': unknown metric ' || coalesce('''' || metric || '''', 'missing')
                || ' (Zendesk metrics: {_listed(METRICS)})'
            WHEN kind IS NULL OR kind NOT IN {_in(METRIC_TYPES)} THEN 'ticket metric event '
                || id || ': unknown type ' || coalesce('''' || kind || '''', 'missing')
                || ' (Zendesk metric event types: {_listed(METRIC_TYPES)})'
            WHEN ts IS NULL THEN 'ticket metric event ' || id || ': time '
                || coalesce('''' || time_raw || '''', 'missing')
                || ' is not a timestamp ({_ISO_HINT})'
        END AS problem,
        CASE
            WHEN id IS NULL THEN 'id'
            WHEN ticket_id IS NULL THEN 'ticket_id'
            WHEN metric IS NULL OR metric NOT IN {_in(METRICS)} THEN 'metric'
            WHEN kind IS NULL OR kind NOT IN {_in(METRIC_TYPES)} THEN 'type'
            WHEN ts IS NULL THEN 'time'
        END AS problem_column
    FROM m
), good AS (
    -- the resolution-time state before each event: a re-activation after a fulfilment is
    -- Zendesk's own record that the ticket came back after it was solved
    SELECT *,
        last_value(CASE WHEN kind IN ('activate', 'fulfill') THEN kind END IGNORE NULLS) OVER (
            PARTITION BY ticket_id, metric ORDER BY ts, id
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS state_before
    FROM checked WHERE problem IS NULL
)
SELECT 'zendesk:ticket_metric_event:' || id AS event_id, CAST(ticket_id AS VARCHAR) AS entity_id,
       ts, 'metric_event' AS type, 'system' AS actor, NULL AS value,
       json_object(
           'origin', json_object('entity_id', 'ticket_metric_event.ticket_id',
                                 'ts', 'ticket_metric_event.time',
                                 'attrs.metric', 'ticket_metric_event.metric',
                                 'attrs.kind', 'ticket_metric_event.type'),
           'metric', metric, 'kind', kind, 'instance_id', instance_id,
           'sla', r -> '$.sla', 'status', r -> '$.status'
       ) AS attrs,
       NULL AS source, NULL AS recorded_at, id AS seq,
       __tc_row, 0 AS __tc_sub, NULL AS __tc_problem, NULL AS __tc_problem_column,
       NULL AS __tc_raw
FROM good
UNION ALL
SELECT 'zendesk:ticket_metric_event:' || id || ':reopen', CAST(ticket_id AS VARCHAR), ts,
       'metric_reopen', NULL, NULL,
       json_object(
           'origin', json_object('entity_id', 'ticket_metric_event.ticket_id',
                                 'ts', 'ticket_metric_event.time'),
           'metric', metric, 'instance_id', instance_id,
           'rule', 'resolution_time activate after fulfill'
       ),
       NULL, NULL, id, __tc_row, 1, NULL, NULL, NULL
FROM good
WHERE metric = 'resolution_time' AND kind = 'activate' AND state_before = 'fulfill'
UNION ALL
SELECT {_PROBLEM_ROW} FROM checked WHERE problem IS NOT NULL
"""  # noqa: S608 - fixed text; options are parameters


# --------------------------------------------------------------------------- the adapter


class ZendeskAdapter(Adapter):
    """Zendesk Support: tickets, audits, CSAT (legacy and survey) and ticket metric events."""

    name: ClassVar[str] = "zendesk"
    title: ClassVar[str] = "Zendesk"
    options_model: ClassVar[type[AdapterOptions]] = ZendeskOptions
    kinds: ClassVar[dict[str, FileKind]] = {
        "tickets": FileKind(
            "tickets",
            "tickets (GET /api/v2/tickets pages, incremental ticket export, or one ticket a line)",
            array_key="tickets",
        ),
        "audits": FileKind(
            "audits",
            "ticket audits (GET /api/v2/ticket_audits or /api/v2/tickets/{id}/audits)",
            needs=("tickets",),
            array_key="audits",
        ),
        "satisfaction_ratings": FileKind(
            "satisfaction_ratings",
            "legacy CSAT ratings (GET /api/v2/satisfaction_ratings)",
            needs=("tickets",),
            array_key="satisfaction_ratings",
        ),
        "csat_survey_responses": FileKind(
            "csat_survey_responses",
            "CSAT survey responses (GET /api/v2/guide/survey_responses)",
            needs=("tickets",),
            array_key="survey_responses",
        ),
        "ticket_metric_events": FileKind(
            "ticket_metric_events",
            "ticket metric events (GET /api/v2/incremental/ticket_metric_events)",
            array_key="ticket_metric_events",
        ),
    }

    #: Fields that only a record of that kind has, for files of bare records (JSON Lines).
    _RECORD_SIGNS: ClassVar[tuple[tuple[str, frozenset[str]], ...]] = (
        ("audits", frozenset({"ticket_id", "author_id", "events"})),
        ("csat_survey_responses", frozenset({"subjects", "answers"})),
        ("ticket_metric_events", frozenset({"ticket_id", "metric", "instance_id"})),
        ("satisfaction_ratings", frozenset({"ticket_id", "score"})),
        ("tickets", frozenset({"id", "via", "status", "requester_id"})),
    )

    def recognize(self, sniff: Sniff) -> str | None:
        if sniff.format not in (FileFormat.json, FileFormat.jsonl):
            return None  # Zendesk's APIs answer in JSON; its CSV reports are not event logs
        for kind in self.kinds.values():
            if kind.array_key in sniff.array_keys:
                return kind.name
        for kind_name, fields in self._RECORD_SIGNS:
            if fields <= sniff.record_keys:
                return kind_name
        return None

    def events_sql(self, kind: str, options: AdapterOptions) -> tuple[str, dict[str, object]]:
        assert isinstance(options, ZendeskOptions)
        if kind == "tickets":
            return _TICKETS_SQL, {}
        if kind == "audits":
            return _AUDITS_SQL, {
                "ai_author_ids": list(options.ai_author_ids),
                "ai_channels": list(options.ai_channels),
                "ai_source_rels": list(options.ai_source_rels),
                "ai_agent_ticket_channels": list(options.ai_agent_ticket_channels),
            }
        if kind == "satisfaction_ratings":
            return _RATINGS_SQL, {
                "good_rating_value": options.good_rating_value,
                "bad_rating_value": options.bad_rating_value,
            }
        if kind == "csat_survey_responses":
            return _SURVEY_SQL, {"survey_scale_max": options.survey_scale_max}
        if kind == "ticket_metric_events":
            return _METRICS_SQL, {}
        raise ValueError(f"unknown Zendesk kind {kind!r}")


ADAPTER = ZendeskAdapter()
