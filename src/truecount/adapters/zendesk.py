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

Attribution needs facts about the ticket (its requester and channel from its creating audit or
the tickets file, its escalation from its later audits), which are resolved across every audits
file of one ingest and the events already stored, so pages of ``/api/v2/ticket_audits`` can come
one per file in any order (:mod:`truecount.adapters.zendesk_audits`). An actor that still
cannot be told is left NULL with ``attrs.actor_unknown`` saying why, and counted by ``ingest``.
"""

from __future__ import annotations

from typing import ClassVar, Final

from pydantic import Field, field_validator

from truecount.adapters.base import Adapter, AdapterOptions, FileKind, Sniff
from truecount.ingest.source import FileFormat
from truecount.ingest.zones import ZONE_HINT, text_to_utc_sql

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
    """A Zendesk timestamp (ISO 8601, usually ending in Z) as naive UTC; NULL if unparseable
    or when a zone word after the time is not exact (:mod:`truecount.ingest.zones`)."""
    return f"({text_to_utc_sql(text)})"


def _in(values: tuple[str, ...]) -> str:
    """A SQL list of this module's own constant names (never user text)."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


#: The largest whole number a double holds exactly: a number written with a fraction or an
#: exponent beyond it cannot be told from its neighbours.
_EXACT: Final[int] = 9_007_199_254_740_991


def _whole(x: str) -> str:
    """A Zendesk id (or other whole number) as BIGINT; NULL when ``x`` is not one.

    Digits are read as written, however long (ids above 2^53 stay exact). A number written with
    a fraction or an exponent (a JSON dump of an id column with gaps writes ``3010.0``) is that
    number when it is whole and within +-(2^53 - 1). Anything else is NULL, so that the record is
    quarantined: a plain ``CAST`` would round ``3010.5`` to ticket 3011.
    """
    return (
        f"(CASE WHEN regexp_full_match(trim({x}), '[+-]?[0-9]+') "
        f"THEN TRY_CAST(trim({x}) AS BIGINT) "
        f"WHEN TRY_CAST({x} AS DOUBLE) = floor(TRY_CAST({x} AS DOUBLE)) "
        f"AND abs(TRY_CAST({x} AS DOUBLE)) <= {_EXACT} "
        f"THEN CAST(TRY_CAST({x} AS DOUBLE) AS BIGINT) END)"
    )


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(values)


_STATUS_HINT: Final[str] = f"(Zendesk statuses: {_listed(STATUSES)})"
_ISO_HINT: Final[str] = f"expected ISO 8601 such as 2026-01-15T09:30:00Z; {ZONE_HINT}"
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
           {_whole("__tc_record ->> '$.id'")} AS id,
           __tc_record ->> '$.created_at' AS created_raw,
           __tc_record ->> '$.status' AS status,
           __tc_record ->> '$.via.channel' AS channel,
           __tc_record ->> '$.via.source.rel' AS rel,
           {_whole("__tc_record ->> '$.via_followup_source_id'")} AS followup_field,
           {_whole("__tc_record ->> '$.via.source.from.ticket_id'")} AS followup_via
    FROM __tc_records
), t1 AS (
    SELECT *, {_ts("created_raw")} AS created,
           coalesce(followup_field, CASE WHEN channel = 'closed_ticket' THEN followup_via END)
               AS source_id
    FROM t0
), t AS (
    SELECT *,
        CASE
            WHEN id IS NULL THEN 'ticket without a whole-number id (id: '
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
           'requester_id', {_whole("r ->> '$.requester_id'")},
           'submitter_id', {_whole("r ->> '$.submitter_id'")},
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

# The audits' SQL is in :mod:`truecount.adapters.zendesk_audits` (read across page files).


# --------------------------------------------------------------------------- legacy CSAT

_RATINGS_SQL: Final[str] = f"""
WITH s0 AS (
    SELECT __tc_row, __tc_record AS r,
           __tc_record ->> '$.id' AS id_text,
           {_whole("__tc_record ->> '$.id'")} AS id,
           {_whole("__tc_record ->> '$.ticket_id'")} AS ticket_id,
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
            WHEN id IS NULL THEN 'satisfaction rating without a whole-number id (id: '
                || coalesce(id_text, 'missing') || ')'
            WHEN ticket_id IS NULL THEN 'satisfaction rating ' || id || ': ticket_id '
                || coalesce('''' || (r ->> '$.ticket_id') || '''', 'missing')
                || ' is not a whole number'
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
           'rating_id', id, 'assignee_id', {_whole("r ->> '$.assignee_id'")},
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
           {_whole("__tc_record ->> '$.id'")} AS id,
           {_whole("__tc_record ->> '$.ticket_id'")} AS ticket_id,
           __tc_record ->> '$.metric' AS metric,
           __tc_record ->> '$.type' AS kind,
           {_whole("__tc_record ->> '$.instance_id'")} AS instance_id,
           __tc_record ->> '$.time' AS time_raw
    FROM __tc_records
), m AS (
    SELECT *, {_ts("time_raw")} AS ts FROM m0
), checked AS (
    SELECT *,
        CASE
            WHEN id IS NULL THEN 'ticket metric event without a whole-number id (id: '
                || coalesce(id_text, 'missing') || ')'
            WHEN ticket_id IS NULL THEN 'ticket metric event ' || id || ': ticket_id '
                || coalesce('''' || (r ->> '$.ticket_id') || '''', 'missing')
                || ' is not a whole number'
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
            reads=("tickets",),
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
        # Through ETL tools (zendesk_etl.py): Fivetran's tables and Airbyte's comment stream.
        "fivetran_ticket": FileKind(
            "fivetran_ticket", "Fivetran's Zendesk ticket table (CSV or Parquet)"
        ),
        "fivetran_ticket_field_history": FileKind(
            "fivetran_ticket_field_history",
            "Fivetran's Zendesk ticket_field_history table, the status history (CSV or Parquet)",
            needs=("fivetran_ticket",),
            reads=("fivetran_ticket", "tickets"),
        ),
        "fivetran_ticket_comment": FileKind(
            "fivetran_ticket_comment",
            "Fivetran's Zendesk ticket_comment table (CSV or Parquet)",
            needs=("fivetran_ticket", "fivetran_ticket_field_history"),
            reads=("fivetran_ticket", "tickets", "fivetran_ticket_field_history", "audits"),
        ),
        "fivetran_satisfaction_rating": FileKind(
            "fivetran_satisfaction_rating",
            "Fivetran's Zendesk satisfaction_rating table (CSV or Parquet)",
            needs=("fivetran_ticket",),
        ),
        "ticket_comments": FileKind(
            "ticket_comments",
            "ticket comments one per record with ticket_id (Airbyte's ticket_comments stream)",
            needs=("tickets",),
            reads=("tickets", "fivetran_ticket", "audits", "fivetran_ticket_field_history"),
        ),
    }
    airbyte_streams: ClassVar[dict[str, str]] = {
        "tickets": "tickets",
        "ticket_audits": "audits",
        "ticket_comments": "ticket_comments",
        "satisfaction_ratings": "satisfaction_ratings",
        "ticket_metric_events": "ticket_metric_events",
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
        from truecount.adapters.zendesk_etl import recognize_etl  # builds on this module

        if sniff.format not in (FileFormat.json, FileFormat.jsonl):
            return recognize_etl(sniff)  # Fivetran tables; Zendesk's CSV reports are not read
        for kind in self.kinds.values():
            if kind.array_key in sniff.array_keys:
                return kind.name
        for kind_name, fields in self._RECORD_SIGNS:
            if fields <= sniff.record_keys:
                return kind_name
        return recognize_etl(sniff)

    def events_sql(self, kind: str, options: AdapterOptions) -> tuple[str, dict[str, object]]:
        assert isinstance(options, ZendeskOptions)
        if kind == "tickets":
            return _TICKETS_SQL, {}
        if kind == "audits":
            return _audits_sql(options)[1]
        if kind == "satisfaction_ratings":
            return _RATINGS_SQL, {
                "good_rating_value": options.good_rating_value,
                "bad_rating_value": options.bad_rating_value,
            }
        if kind == "csat_survey_responses":
            return _SURVEY_SQL, {"survey_scale_max": options.survey_scale_max}
        if kind == "ticket_metric_events":
            return _METRICS_SQL, {}
        if kind in self.kinds:
            from truecount.adapters.zendesk_etl import etl_events_sql  # builds on this module

            return etl_events_sql(kind, options)
        raise ValueError(f"unknown Zendesk kind {kind!r}")

    def context_sql(
        self, kind: str, options: AdapterOptions
    ) -> tuple[str, str, dict[str, object]] | None:
        """Audits: one row of ticket facts per audit of every audits file of the ingest."""
        assert isinstance(options, ZendeskOptions)
        return _audits_sql(options)[0] if kind == "audits" else None


def _audits_sql(
    options: ZendeskOptions,
) -> tuple[tuple[str, str, dict[str, object]], tuple[str, dict[str, object]]]:
    """The audits' context pre-pass (table, SELECT, parameters) and events SELECT."""
    # imported here: the audits module builds its SQL from this module's pieces
    from truecount.adapters import zendesk_audits as za

    context, events = za.audits_params(
        options.ai_author_ids,
        options.ai_channels,
        options.ai_source_rels,
        options.ai_agent_ticket_channels,
    )
    return (za.CONTEXT, za.CONTEXT_SQL, context), (za.AUDITS_SQL, events)


ADAPTER = ZendeskAdapter()
