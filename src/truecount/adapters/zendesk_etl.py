"""Zendesk through ETL tools: Fivetran's Zendesk tables and Airbyte's flattened comments.

Many buyers never call Zendesk's API: a pipeline copies Zendesk into their warehouse, and the
export they hold is that pipeline's tables. The facts are the same, the shapes are not, so
this module reads them as further kinds of the ``zendesk`` source (see
``docs/sources/zendesk.md``, "Through Fivetran" and "Through Airbyte"):

- Fivetran ``ticket`` and ``satisfaction_rating`` (CSV or Parquet) carry the fields of the
  API's ticket and rating one column each (``via.channel`` is ``via_channel``). Their rows are
  rewritten in SQL as the API's records and read by the very SQL of the API kinds, so the two
  shapes cannot drift apart, and their event ids are the API's: loading both is harmless.
- Fivetran ``ticket_field_history`` is the status history: one row per field a ticket update
  set, with its time and author. It gives ``status_changed`` / ``closed`` / ``reopened`` with
  the audit rules, ``assigned``, and the ``escalated`` hand-over of an AI-handled ticket.
- Fivetran ``ticket_comment`` and Airbyte's ``ticket_comments`` stream give ``message`` /
  ``note``, with the actor found by the audit comment rules as far as their fields allow.

What the ETL shape cannot carry, and what follows (also listed in the docs and checked by
the tests): there is no audit id, so events at the same second have no stated order; there is
no per-update ``via``, so ``ai_channels`` / ``ai_source_rels`` cannot name an update by Answer
Bot in Fivetran tables (only ``ai_author_ids`` can); Fivetran's field history keeps one row
per ticket, field and second, so two status changes in the same second leave only the last.

A Fivetran row with ``_fivetran_deleted`` true is a record deleted in Zendesk (Zendesk's API
no longer returns it). It is quarantined with that reason, never dropped silently and never
counted.

Copies of one Fivetran row (a ``ticket`` id, or a history key ``ticket_id``, ``field_name``,
``updated``), which appends, re-syncs and CDC copies leave behind, are resolved the same way
whatever their order in the file (:func:`_copies`): copies that agree are one fact (the first
is loaded, the others are duplicates); copies that disagree are settled by
``_fivetran_synced``, Fivetran's own meaning of the current state being the latest sync, and
the older copies are quarantined as superseded, naming the row that superseded them; when the
latest sync time is shared by copies that disagree (or a copy has none), nothing tells which
is current, and every copy is quarantined, naming them all.
"""

from __future__ import annotations

from typing import Final

from truecount.adapters.base import Sniff
from truecount.adapters.zendesk import (
    _PROBLEM_ROW,
    _RATINGS_SQL,
    _STATUS_HINT,
    _TICKETS_SQL,
    CLOSED_STATUSES,
    OPEN_STATUSES,
    STATUSES,
    ZendeskOptions,
    _explicit_ai,
    _in,
    _whole,
)
from truecount.ingest.source import FileFormat

#: The Fivetran tables read, by kind, and the columns that tell each one (CSV header or
#: Parquet columns). ``_fivetran_synced`` is in every Fivetran table and nowhere else.
FIVETRAN_SIGNS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("fivetran_ticket_field_history", frozenset({"ticket_id", "field_name", "updated", "value"})),
    ("fivetran_ticket_comment", frozenset({"id", "ticket_id", "user_id", "created", "public"})),
    ("fivetran_satisfaction_rating", frozenset({"id", "ticket_id", "score", "created_at"})),
    ("fivetran_ticket", frozenset({"id", "created_at", "status", "via_channel", "requester_id"})),
)

#: Fields of a flattened comment record (Airbyte's ``ticket_comments``) but of no other kind.
COMMENT_SIGN: Final[frozenset[str]] = frozenset({"ticket_id", "author_id", "body", "public"})


def recognize_etl(sniff: Sniff) -> str | None:
    """The ETL kind of a file: Fivetran tables by their columns, flattened comments by fields."""
    if sniff.format in (FileFormat.csv, FileFormat.parquet):
        for kind, columns in FIVETRAN_SIGNS:
            if columns <= sniff.keys:
                return kind
        return None
    if sniff.record_keys >= COMMENT_SIGN and "events" not in sniff.record_keys:
        return "ticket_comments"
    return None


# --------------------------------------------------------------------------- SQL pieces

_TS_HINT: Final[str] = (
    "expected a Fivetran timestamp such as 2026-01-15 09:30:00.000000 UTC or ISO 8601 "
    "such as 2026-01-15T09:30:00Z"
)
_BOOL_HINT: Final[str] = "expected true or false"
_ISO_MICRO: Final[str] = "%Y-%m-%dT%H:%M:%S.%fZ"
_NEVER: Final[str] = "TIMESTAMP '9999-12-31 00:00:00'"


def _ft_ts(text: str) -> str:
    """A Fivetran timestamp as naive UTC, NULL if unreadable.

    Fivetran writes ``2026-01-15 09:30:00.000000 UTC`` in CSV, Parquet holds a timestamp
    (read back as text, with ``+00`` when zoned); ISO 8601 with ``Z`` or an offset is read
    too. A time without a zone is UTC: every connection runs with ``TimeZone = 'UTC'``.
    """
    return (
        f"timezone('UTC', TRY_CAST(regexp_replace(trim({text}), '\\s*UTC$', '+00:00') "
        f"AS TIMESTAMPTZ))"
    )


def _ft_bool(text: str) -> str:
    """A boolean as Fivetran CSV (``true``/``false``) or Parquet read back as text writes it."""
    return (
        f"(CASE WHEN lower(trim({text})) IN ('true', 't', '1') THEN true "
        f"WHEN lower(trim({text})) IN ('false', 'f', '0') THEN false END)"
    )


def _bad_bool(text: str) -> str:
    return f"(nullif(trim({text}), '') IS NOT NULL AND {_ft_bool(text)} IS NULL)"


def _bad_synced(raw: str, synced: str) -> str:
    """A ``_fivetran_synced`` that is given but is not a timestamp."""
    return f"({synced} IS NULL AND nullif(trim({raw}), '') IS NOT NULL)"


def _copies(source: str, key: str) -> str:
    """CTEs ``cp1``, ``cp2`` and ``resolved``: the rows of ``source`` with their ``role`` among
    the copies of one Fivetran row.

    ``source`` has ``__tc_row``, the ``key`` columns, ``synced`` (``_fivetran_synced``),
    ``fact`` (the text of what the row says, equal for copies that agree) and ``shown`` (the
    row's values in words). The current fact (``win_fact``) is the only fact of the key, else
    the one fact among the rows of the latest ``synced`` when every row has one; else NULL.
    ``role`` is ``keep`` (the first row of the current fact: its events are loaded), ``copy``
    (another row of the current fact: a duplicate), ``superseded`` (another fact, older) or
    ``tied`` (no current fact). ``win_row`` / ``win_synced`` / ``win_shown`` describe the
    current fact's first row, ``key_rows`` lists every copy as ``row N: shown``. Window
    functions only: the result does not depend on the order of the rows.
    """
    return f"""
cp1 AS (
    SELECT *, count(DISTINCT fact) OVER k AS n_facts, max(synced) OVER k AS last_synced,
           count(*) FILTER (WHERE synced IS NULL) OVER k AS unsynced,
           string_agg('row ' || __tc_row || ': ' || shown, '; ' ORDER BY __tc_row) OVER k
               AS key_rows
    FROM {source} WINDOW k AS (PARTITION BY {key})
), cp2 AS (
    SELECT *,
        CASE WHEN n_facts = 1 THEN fact
             WHEN unsynced = 0
                  AND count(DISTINCT fact) FILTER (WHERE synced = last_synced) OVER k = 1
                 THEN max(fact) FILTER (WHERE synced = last_synced) OVER k
        END AS win_fact
    FROM cp1 WINDOW k AS (PARTITION BY {key})
), resolved AS (
    SELECT *,
        min(__tc_row) FILTER (WHERE fact = win_fact) OVER k AS win_row,
        max(synced) FILTER (WHERE fact = win_fact) OVER k AS win_synced,
        arg_min(shown, __tc_row) FILTER (WHERE fact = win_fact) OVER k AS win_shown,
        CASE WHEN win_fact IS NULL THEN 'tied'
             WHEN fact <> win_fact THEN 'superseded'
             WHEN __tc_row = min(__tc_row) FILTER (WHERE fact = win_fact) OVER k THEN 'keep'
             ELSE 'copy'
        END AS role
    FROM cp2 WINDOW k AS (PARTITION BY {key})
)"""  # noqa: S608 - fixed text: the source and key are this module's constants


def _copy_problem(what: str) -> str:
    """The quarantine reason of a ``superseded`` or ``tied`` row of :func:`_copies`; ``what``
    is SQL text naming the Fivetran row (e.g. the ticket and field)."""
    return f"""CASE role
        WHEN 'superseded' THEN {what} || ': row ' || __tc_row || ' (' || shown
            || ', _fivetran_synced ' || CAST(synced AS VARCHAR) || ') is superseded by row '
            || win_row || ' (' || win_shown || '), synced later ('
            || CAST(win_synced AS VARCHAR) || '): the latest sync is the current state, so '
            || 'this older copy is not loaded'
        WHEN 'tied' THEN {what} || ': copies that disagree (' || key_rows || ') and '
            || CASE WHEN unsynced > 0 THEN 'a copy without _fivetran_synced'
                    ELSE 'the same latest _fivetran_synced ' || CAST(last_synced AS VARCHAR)
               END
            || ', so which is current cannot be told; every copy is set aside: re-sync the '
            || 'table (or remove the stale copy)'
    END"""


#: The record of a CSV / Parquet row as JSON (missing optional columns read as NULL), and
#: the row as it is kept with a quarantined record (without the internal columns).
_ROW_JSON: Final[str] = """
    SELECT __tc_row, to_json(t) AS j,
           json_merge_patch(to_json(t), '{"__tc_row": null, "__tc_problem": null}') AS r
    FROM __tc_records t"""

_DELETED_MSG: Final[str] = (
    "deleted in Zendesk (_fivetran_deleted is true): the Zendesk API no longer returns it, so "
    "it is not counted"
)


def _reuse(api_sql: str) -> str:
    """An API kind's SQL reading the converted records instead of the file's rows."""
    assert api_sql.count("FROM __tc_records") == 1
    return api_sql.replace("FROM __tc_records", "FROM __tc_etl_records")


def _converted(pre: str, api_sql: str, table: str) -> str:
    """Fivetran rows checked in ``pre`` (problem, problem_column, r, rec), the good ones read
    by ``api_sql`` as API records, the events marked with the table they came from."""
    return f"""
WITH pre AS ({pre}),
__tc_etl_records AS (SELECT __tc_row, rec AS __tc_record FROM pre WHERE problem IS NULL),
api AS ({_reuse(api_sql)})
SELECT event_id, entity_id, ts, type, actor, value,
       CASE WHEN attrs IS NOT NULL THEN json_merge_patch(attrs,
           json_object('etl', 'fivetran', 'etl_table', '{table}')) END AS attrs,
       source, recorded_at, seq, __tc_row, __tc_sub, __tc_problem, __tc_problem_column, __tc_raw
FROM api
UNION ALL
SELECT {_PROBLEM_ROW} FROM pre WHERE problem IS NOT NULL
"""  # noqa: S608 - fixed text


def _deleted_checks(noun: str, id_col: str) -> tuple[str, str]:
    """The problem message and column CASE arms shared by tables with ``_fivetran_deleted``."""
    msg = f"""
            WHEN {_bad_bool("deleted_raw")} THEN '{noun} ' || coalesce({id_col}, '?')
                || ': _fivetran_deleted ''' || deleted_raw || ''' is not a boolean ({_BOOL_HINT})'
            WHEN {_ft_bool("deleted_raw")} THEN '{noun} ' || coalesce({id_col}, '?')
                || ' {_DELETED_MSG}'"""
    col = f"""
            WHEN {_bad_bool("deleted_raw")} OR {_ft_bool("deleted_raw")} THEN '_fivetran_deleted'"""
    return msg, col


# --------------------------------------------------------------------------- ticket

_T_DEL_MSG, _T_DEL_COL = _deleted_checks("ticket", "id_text")

_FT_TICKET_PRE: Final[str] = f"""
WITH rows AS ({_ROW_JSON}),
c AS (
    SELECT __tc_row, r, j ->> '$.id' AS id_text, j ->> '$.created_at' AS created_raw,
           {_ft_ts("j ->> '$.created_at'")} AS created,
           j ->> '$._fivetran_synced' AS synced_raw,
           {_ft_ts("j ->> '$._fivetran_synced'")} AS synced,
           j ->> '$._fivetran_deleted' AS deleted_raw, j
    FROM rows
), checked AS (
    SELECT __tc_row, r, id_text, synced,
        CASE {_T_DEL_MSG}
            WHEN created IS NULL AND created_raw IS NOT NULL THEN 'ticket '
                || coalesce(id_text, '?') || ': created_at ''' || created_raw
                || ''' is not a timestamp ({_TS_HINT})'
            WHEN {_bad_synced("synced_raw", "synced")} THEN 'ticket ' || coalesce(id_text, '?')
                || ': _fivetran_synced ''' || synced_raw || ''' is not a timestamp ({_TS_HINT})'
        END AS problem,
        CASE {_T_DEL_COL}
            WHEN created IS NULL AND created_raw IS NOT NULL THEN 'created_at'
            WHEN {_bad_synced("synced_raw", "synced")} THEN '_fivetran_synced'
        END AS problem_column,
        coalesce({_ft_bool("deleted_raw")}, false) AS deleted,
        json_object(
            'id', id_text, 'created_at', strftime(created, '{_ISO_MICRO}'),
            'status', j ->> '$.status', 'type', j ->> '$.type', 'priority', j ->> '$.priority',
            'requester_id', j ->> '$.requester_id', 'submitter_id', j ->> '$.submitter_id',
            'via_followup_source_id', j ->> '$.via_followup_source_id',
            'via', json_object(
                'channel', j ->> '$.via_channel',
                'source', json_object('rel', j ->> '$.via_source_rel',
                                      'from', json_object('ticket_id',
                                                          j ->> '$.via_source_from_id')))
        ) AS rec
    FROM c
), copies AS (
    -- the copies of one ticket id, deleted ones included (the latest sync may delete it)
    SELECT *, CASE WHEN deleted THEN 'deleted' ELSE CAST(rec AS VARCHAR) END AS fact,
           CASE WHEN deleted THEN 'deleted'
                ELSE 'status ' || coalesce(rec ->> '$.status', 'missing') || ', created_at '
                    || coalesce(rec ->> '$.created_at', 'missing') END AS shown
    FROM checked WHERE (problem IS NULL OR deleted) AND id_text IS NOT NULL
), {_copies("copies", "id_text")}
SELECT __tc_row, r, rec,
    CASE WHEN role IN ('superseded', 'tied') THEN {_copy_problem("'ticket ' || id_text")}
         ELSE problem END AS problem,
    CASE WHEN role IN ('superseded', 'tied') THEN '_fivetran_synced'
         ELSE problem_column END AS problem_column
FROM resolved
UNION ALL
SELECT __tc_row, r, rec, problem, problem_column
FROM checked WHERE NOT ((problem IS NULL OR deleted) AND id_text IS NOT NULL)
"""  # noqa: S608 - fixed text

FIVETRAN_TICKET_SQL: Final[str] = _converted(_FT_TICKET_PRE, _TICKETS_SQL, "ticket")


# --------------------------------------------------------------------------- satisfaction_rating

_R_DEL_MSG, _R_DEL_COL = _deleted_checks("satisfaction rating", "id_text")

_FT_RATING_PRE: Final[str] = f"""
WITH rows AS ({_ROW_JSON}),
c AS (
    SELECT __tc_row, r, j, j ->> '$.id' AS id_text,
           j ->> '$.created_at' AS created_raw, j ->> '$.updated_at' AS updated_raw,
           {_ft_ts("j ->> '$.created_at'")} AS created, {_ft_ts("j ->> '$.updated_at'")} AS updated,
           j ->> '$._fivetran_deleted' AS deleted_raw
    FROM rows
)
SELECT __tc_row, r,
    CASE {_R_DEL_MSG}
        WHEN created IS NULL AND created_raw IS NOT NULL THEN 'satisfaction rating '
            || coalesce(id_text, '?') || ': created_at ''' || created_raw
            || ''' is not a timestamp ({_TS_HINT})'
        WHEN updated IS NULL AND updated_raw IS NOT NULL THEN 'satisfaction rating '
            || coalesce(id_text, '?') || ': updated_at ''' || updated_raw
            || ''' is not a timestamp ({_TS_HINT})'
    END AS problem,
    CASE {_R_DEL_COL}
        WHEN created IS NULL AND created_raw IS NOT NULL THEN 'created_at'
        WHEN updated IS NULL AND updated_raw IS NOT NULL THEN 'updated_at'
    END AS problem_column,
    json_object(
        'id', id_text, 'ticket_id', j ->> '$.ticket_id', 'score', j ->> '$.score',
        'created_at', strftime(created, '{_ISO_MICRO}'),
        'updated_at', strftime(updated, '{_ISO_MICRO}'),
        'assignee_id', j ->> '$.assignee_id', 'reason', j ->> '$.reason',
        'comment', j ->> '$.comment'
    ) AS rec
FROM c
"""  # noqa: S608 - fixed text

FIVETRAN_RATING_SQL: Final[str] = _converted(_FT_RATING_PRE, _RATINGS_SQL, "satisfaction_rating")


# --------------------------------------------------------------------------- stored context

#: What the store says about each ticket: requester and channel from its ``created`` event
#: (API tickets or the Fivetran ticket table give the same attrs), the first escalation, and
#: whether its status history is known at all (without it, no escalation can be seen).
_STORED_TICKETS: Final[str] = f"""
    SELECT {_whole("entity_id")} AS ticket_id,
           arg_min({_whole("attrs ->> '$.requester_id'")}, ts)
               FILTER (WHERE type = 'created') AS s_requester,
           arg_min(attrs ->> '$.channel', ts) FILTER (WHERE type = 'created') AS s_channel,
           min(ts) FILTER (WHERE type = 'escalated') AS s_escalated,
           count(*) FILTER (WHERE type = 'status_changed') > 0 AS s_history
    FROM __tc_store
    WHERE attrs ->> '$.vendor' = 'zendesk'
      AND type IN ('created', 'escalated', 'status_changed')
    GROUP BY 1"""  # noqa: S608 - fixed text


# --------------------------------------------------------------------------- field history

_FIELD_HISTORY_SQL: Final[str] = f"""
WITH rows AS ({_ROW_JSON}),
h0 AS (
    SELECT __tc_row, r,
           j ->> '$.ticket_id' AS tid_text, {_whole("j ->> '$.ticket_id'")} AS ticket_id,
           j ->> '$.field_name' AS field, j ->> '$.value' AS val,
           j ->> '$.updated' AS updated_raw, {_ft_ts("j ->> '$.updated'")} AS ts,
           j ->> '$.user_id' AS user_text, {_whole("j ->> '$.user_id'")} AS user_id,
           j ->> '$._fivetran_synced' AS synced_raw,
           {_ft_ts("j ->> '$._fivetran_synced'")} AS synced
    FROM rows
), h AS (
    SELECT *,
        CASE
            WHEN ticket_id IS NULL THEN 'field history row without a whole-number ticket_id ('
                || coalesce('''' || tid_text || '''', 'missing') || ')'
            WHEN nullif(field, '') IS NULL THEN 'ticket ' || ticket_id
                || ': field history row without a field_name'
            WHEN ts IS NULL THEN 'ticket ' || ticket_id || ' ' || field || ': updated '
                || coalesce('''' || updated_raw || '''', 'missing')
                || ' is not a timestamp ({_TS_HINT})'
            WHEN user_id IS NULL AND nullif(user_text, '') IS NOT NULL THEN 'ticket '
                || ticket_id || ' ' || field || ': user_id ''' || user_text
                || ''' is not a Zendesk user id'
            WHEN field = 'status' AND (val IS NULL OR val NOT IN {_in(STATUSES)}) THEN 'ticket '
                || ticket_id || ': unknown status ' || coalesce('''' || val || '''', 'missing')
                || ' {_STATUS_HINT}'
            WHEN {_bad_synced("synced_raw", "synced")} THEN 'ticket ' || ticket_id || ' '
                || field || ': _fivetran_synced ''' || synced_raw
                || ''' is not a timestamp ({_TS_HINT})'
        END AS problem,
        CASE
            WHEN ticket_id IS NULL THEN 'ticket_id'
            WHEN nullif(field, '') IS NULL THEN 'field_name'
            WHEN ts IS NULL THEN 'updated'
            WHEN user_id IS NULL AND nullif(user_text, '') IS NOT NULL THEN 'user_id'
            WHEN field = 'status' AND (val IS NULL OR val NOT IN {_in(STATUSES)}) THEN 'value'
            WHEN {_bad_synced("synced_raw", "synced")} THEN '_fivetran_synced'
        END AS problem_column
    FROM h0
), copies AS (
    -- Fivetran's key is (field_name, ticket_id, updated): its copies are one fact when they
    -- agree on value and author, else the latest _fivetran_synced says which is current
    SELECT *, CAST(json_array(coalesce(val, ''), user_id) AS VARCHAR) AS fact,
           coalesce('value ''' || nullif(val, '') || '''', 'no value') || ' by user_id '
               || coalesce(CAST(user_id AS VARCHAR), 'none') AS shown
    FROM h WHERE problem IS NULL
), {_copies("copies", "ticket_id, field, ts")},
good AS (
    -- one row per key: its other copies are duplicates or quarantined (below), never read
    SELECT *,
        lag(val) OVER (PARTITION BY ticket_id, field ORDER BY ts, __tc_row) AS prev,
        min(ts) OVER (PARTITION BY ticket_id) AS t_first,
        coalesce(list_contains($ai_author_ids::BIGINT[], user_id), false) AS xai
    FROM resolved WHERE role = 'keep'
), facts AS (
    -- the requester as the history first set it (as the creating audit says), else stored
    SELECT ticket_id,
           arg_min({_whole("val")}, (ts, __tc_row))
               FILTER (WHERE field = 'requester_id') AS h_requester,
           min(ts) FILTER (WHERE xai) AS ai_seen
    FROM good GROUP BY ticket_id
), ctx0 AS (
    SELECT g.*, coalesce(f.h_requester, s.s_requester) AS t_requester,
           s.s_channel AS t_channel, f.ai_seen,
           coalesce(list_contains($ai_agent_ticket_channels::VARCHAR[], s.s_channel), false)
               AS t_ai_ticket,
           g.ts = g.t_first AS creating,
           (field = 'assignee_id' AND nullif(val, '') IS NOT NULL
               AND NOT coalesce(list_contains($ai_author_ids::BIGINT[], {_whole("val")}),
                                false))
           OR (field = 'group_id' AND nullif(val, '') IS NOT NULL AND g.ts <> g.t_first)
               AS esc_signal
    FROM good g JOIN facts f USING (ticket_id)
    LEFT JOIN ({_STORED_TICKETS}) s USING (ticket_id)
), escalation AS (
    -- the first update that hands an AI-handled ticket to a human (as for audits)
    SELECT ticket_id, min(ts) AS esc_ts,
           arg_min(__tc_row, (ts, __tc_row)) AS esc_row
    FROM ctx0
    WHERE esc_signal AND (t_ai_ticket OR ts >= ai_seen)
    GROUP BY ticket_id
), y AS (
    SELECT c.*, e.esc_ts, c.__tc_row = e.esc_row AS escalates,
        CASE WHEN xai THEN 'ai'
             WHEN user_id IS NULL THEN NULL
             WHEN user_id = t_requester THEN 'customer'
             WHEN t_ai_ticket AND ts < coalesce(e.esc_ts, {_NEVER}) THEN 'ai'
             WHEN user_id = -1 THEN 'system'
             WHEN t_requester IS NOT NULL THEN 'human'
        END AS actor,
        CASE WHEN xai THEN 'ai_author_ids'
             WHEN user_id IS NULL OR user_id = t_requester THEN NULL
             WHEN t_ai_ticket AND ts < coalesce(e.esc_ts, {_NEVER})
                 THEN 'ai_agent_ticket_channels'
        END AS ai_by,
        CASE WHEN xai THEN 'ai'
             WHEN user_id IS NULL THEN NULL
             WHEN user_id = t_requester THEN 'customer'
             WHEN user_id = -1 THEN 'system'
             WHEN t_requester IS NOT NULL THEN 'human'
        END AS after_actor,
        'zendesk:ticket_field_history:' || ticket_id || ':' || field || ':'
            || strftime(ts, '{_ISO_MICRO}') AS base_id,
        field = 'status' AS is_status,
        field IN ('assignee_id', 'group_id') AND nullif(val, '') IS NOT NULL AS is_assignment
    FROM ctx0 c LEFT JOIN escalation e USING (ticket_id)
), out AS (
    SELECT y.*, 0 AS k, base_id AS event_id, 'status_changed' AS type, actor AS who,
           json_object('from', prev, 'to', val) AS detail
    FROM y WHERE is_status
    UNION ALL
    SELECT y.*, 1, base_id || ':closed', 'closed', actor, json_object('from', prev, 'to', val)
    FROM y WHERE is_status AND val IN {_in(CLOSED_STATUSES)}
        AND (prev IS NULL OR prev NOT IN {_in(CLOSED_STATUSES)})
    UNION ALL
    SELECT y.*, 1, base_id || ':reopened', 'reopened', actor, json_object('from', prev, 'to', val)
    FROM y WHERE is_status AND prev IN {_in(CLOSED_STATUSES)} AND val IN {_in(OPEN_STATUSES)}
    UNION ALL
    SELECT y.*, 0, base_id, 'assigned', actor,
           json_object('assignee', val,
                       'assignee_type', CASE
                           WHEN field = 'group_id' THEN 'team'
                           WHEN list_contains($ai_author_ids::BIGINT[], {_whole("val")})
                               THEN 'ai'
                           ELSE 'human' END,
                       'field', field)
    FROM y WHERE is_assignment
    UNION ALL
    SELECT y.*, 2, 'zendesk:ticket_field_history:' || ticket_id || ':escalated', 'escalated',
           after_actor, json_object('field', field, 'assignee', val)
    FROM y WHERE coalesce(escalates, false)
    UNION ALL
    SELECT y.*, 0, base_id, 'audit_event', actor,
           json_object('field', field, 'value', val, 'previous_value', prev)
    FROM y WHERE NOT is_status AND NOT is_assignment
), copied AS (
    -- a copy that agrees with the loaded row gives that row's first event again: the same
    -- id, so it is counted as a duplicate (the loaded row is the first, so it comes first)
    SELECT o.* REPLACE (d.__tc_row AS __tc_row)
    FROM out o JOIN resolved d ON d.role = 'copy' AND o.__tc_row = d.win_row AND o.k = 0
), emitted AS (
    SELECT * FROM out UNION ALL BY NAME SELECT * FROM copied
)
SELECT event_id, CAST(ticket_id AS VARCHAR) AS entity_id, ts, type, who AS actor, NULL AS value,
       json_merge_patch(json_object(
           'origin', json_object(
               'entity_id', 'ticket_field_history.ticket_id',
               'ts', 'ticket_field_history.updated',
               'actor', 'ticket_field_history.user_id',
               'attrs.from', CASE WHEN is_status THEN 'previous ticket_field_history.value' END,
               'attrs.to', CASE WHEN is_status THEN 'ticket_field_history.value' END),
           'etl', 'fivetran', 'etl_table', 'ticket_field_history',
           'author_id', user_id, 'ticket_channel', t_channel,
           'actor_unknown', CASE WHEN who IS NULL AND user_id IS NOT NULL THEN
               'the ticket is not in the store, so its requester is unknown' END,
           'ai_by', CASE WHEN type = 'escalated' THEN CASE WHEN xai THEN 'ai_author_ids' END
                         ELSE ai_by END
       ), detail) AS attrs,
       NULL AS source, NULL AS recorded_at, NULL AS seq,
       __tc_row, row_number() OVER (PARTITION BY __tc_row ORDER BY k) - 1 AS __tc_sub,
       NULL AS __tc_problem, NULL AS __tc_problem_column, NULL AS __tc_raw
FROM emitted
UNION ALL
SELECT {_PROBLEM_ROW} FROM h WHERE problem IS NOT NULL
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, __tc_row, 0,
       {_copy_problem("'ticket ' || ticket_id || ' ' || field || ' at ' || CAST(ts AS VARCHAR)")},
       '_fivetran_synced', r
FROM resolved WHERE role IN ('superseded', 'tied')
"""  # noqa: S608 - fixed text; options are parameters


# --------------------------------------------------------------------------- comments


def _comments_sql(normalised: str, origin: str) -> str:
    """Comments one per record, ``normalised`` to the columns __tc_row, r, cid, ticket_id,
    author_id, ts, public, channel, rel, audit_id, problem, problem_column.

    The actor follows the audit comment rules as far as the record allows: an explicit AI
    option (author id; channel and rel where the record has a ``via``) makes it ``ai``; the
    ticket's requester is the ``customer``; on an AI agent ticket whose status history is in
    the store, a comment before the first escalation is the AI's; then the system user; then
    a ``human``. Without the ticket in the store (no requester) the actor stays empty.
    """
    return f"""
WITH n AS ({normalised}),
good AS (
    SELECT n.*, s.s_requester AS t_requester, s.s_channel AS t_channel,
           coalesce(s.s_history, false) AS t_history, s.s_escalated,
           coalesce(list_contains($ai_agent_ticket_channels::VARCHAR[], s.s_channel), false)
               AS t_ai_ticket,
           {_explicit_ai("n.author_id", "n.channel", "n.rel")} AS xai
    FROM n LEFT JOIN ({_STORED_TICKETS}) s USING (ticket_id)
    WHERE n.problem IS NULL
), y AS (
    SELECT *,
        CASE WHEN xai IS NOT NULL THEN 'ai'
             WHEN author_id IS NULL THEN NULL
             WHEN author_id = t_requester THEN 'customer'
             WHEN t_ai_ticket AND t_history AND ts < coalesce(s_escalated, {_NEVER}) THEN 'ai'
             WHEN author_id = -1 THEN 'system'
             WHEN t_requester IS NOT NULL THEN 'human'
        END AS actor,
        CASE WHEN xai IS NOT NULL THEN xai
             WHEN author_id IS NULL OR author_id = t_requester THEN NULL
             WHEN t_ai_ticket AND t_history AND ts < coalesce(s_escalated, {_NEVER})
                 THEN 'ai_agent_ticket_channels'
        END AS ai_by
    FROM good
)
SELECT CASE WHEN audit_id IS NOT NULL THEN 'zendesk:audit:' || audit_id || ':' || cid
            ELSE 'zendesk:ticket_comment:' || cid END AS event_id,
       CAST(ticket_id AS VARCHAR) AS entity_id, ts,
       CASE WHEN coalesce(public, true) THEN 'message' ELSE 'note' END AS type,
       actor, NULL AS value,
       json_object(
           'origin', {origin},
           'public', coalesce(public, true), 'comment_id', {_whole("cid")},
           'comment_channel', channel, 'comment_author_id', author_id, 'audit_id', audit_id,
           'ticket_channel', t_channel, 'ai_by', ai_by,
           'actor_unknown', CASE WHEN actor IS NULL THEN
               'the ticket is not in the store, so its requester is unknown' END,
           'ai_agent_rule', CASE WHEN t_ai_ticket AND NOT t_history THEN
               'not applied: no status history of this AI agent ticket is stored' END
       ) AS attrs,
       NULL AS source, NULL AS recorded_at,
       CASE WHEN audit_id BETWEEN 0 AND 9000000000000000 THEN audit_id * 1000 END AS seq,
       __tc_row, 0 AS __tc_sub, NULL AS __tc_problem, NULL AS __tc_problem_column,
       NULL AS __tc_raw
FROM y
UNION ALL
SELECT {_PROBLEM_ROW} FROM n WHERE problem IS NOT NULL
"""  # noqa: S608 - fixed text; options are parameters


_C_DEL_MSG, _C_DEL_COL = _deleted_checks("comment", "cid")

_FT_COMMENT_NORMALISED: Final[str] = f"""
WITH rows AS ({_ROW_JSON}),
c AS (
    SELECT __tc_row, r, j ->> '$.id' AS cid,
           j ->> '$.ticket_id' AS tid_text, {_whole("j ->> '$.ticket_id'")} AS ticket_id,
           j ->> '$.user_id' AS user_text, {_whole("j ->> '$.user_id'")} AS author_id,
           j ->> '$.created' AS created_raw, {_ft_ts("j ->> '$.created'")} AS ts,
           j ->> '$.public' AS public_raw, {_ft_bool("j ->> '$.public'")} AS public,
           j ->> '$._fivetran_deleted' AS deleted_raw
    FROM rows
)
SELECT __tc_row, r, cid, ticket_id, author_id, ts, public,
       CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS VARCHAR) AS rel,
       CAST(NULL AS BIGINT) AS audit_id,
    CASE
        WHEN {_whole("cid")} IS NULL THEN 'comment without a whole-number id (id: '
            || coalesce('''' || cid || '''', 'missing') || ')'
        {_C_DEL_MSG}
        WHEN ticket_id IS NULL THEN 'comment ' || cid || ': ticket_id '
                || coalesce('''' || (r ->> '$.ticket_id') || '''', 'missing')
                || ' is not a whole number'
        WHEN ts IS NULL THEN 'comment ' || cid || ': created '
            || coalesce('''' || created_raw || '''', 'missing')
            || ' is not a timestamp ({_TS_HINT})'
        WHEN author_id IS NULL AND nullif(user_text, '') IS NOT NULL THEN 'comment ' || cid
            || ': user_id ''' || user_text || ''' is not a Zendesk user id'
        WHEN {_bad_bool("public_raw")} THEN 'comment ' || cid || ': public '''
            || public_raw || ''' is not a boolean ({_BOOL_HINT})'
    END AS problem,
    CASE
        WHEN {_whole("cid")} IS NULL THEN 'id'
        {_C_DEL_COL}
        WHEN ticket_id IS NULL THEN 'ticket_id'
        WHEN ts IS NULL THEN 'created'
        WHEN author_id IS NULL AND nullif(user_text, '') IS NOT NULL THEN 'user_id'
        WHEN {_bad_bool("public_raw")} THEN 'public'
    END AS problem_column
FROM c
"""  # noqa: S608 - fixed text

FIVETRAN_COMMENT_SQL: Final[str] = _comments_sql(
    _FT_COMMENT_NORMALISED,
    "json_object('entity_id', 'ticket_comment.ticket_id', 'ts', 'ticket_comment.created', "
    "'actor', 'ticket_comment.user_id'), 'etl', 'fivetran', 'etl_table', 'ticket_comment'",
)

_JSON_COMMENT_NORMALISED: Final[str] = f"""
WITH c AS (
    SELECT __tc_row, __tc_record AS r, __tc_record ->> '$.id' AS cid,
           {_whole("__tc_record ->> '$.ticket_id'")} AS ticket_id,
           {_whole("__tc_record ->> '$.author_id'")} AS author_id,
           __tc_record ->> '$.created_at' AS created_raw,
           {_ft_ts("__tc_record ->> '$.created_at'")} AS ts,
           json_type(__tc_record -> '$.public') AS public_type,
           TRY_CAST(__tc_record ->> '$.public' AS BOOLEAN) AS public,
           __tc_record ->> '$.via.channel' AS channel,
           __tc_record ->> '$.via.source.rel' AS rel,
           {_whole("__tc_record ->> '$.audit_id'")} AS audit_id
    FROM __tc_records
)
SELECT __tc_row, r, cid, ticket_id, author_id, ts, public, channel, rel, audit_id,
    CASE
        WHEN {_whole("cid")} IS NULL THEN 'comment without a whole-number id (id: '
            || coalesce('''' || cid || '''', 'missing') || ')'
        WHEN ticket_id IS NULL THEN 'comment ' || cid || ': ticket_id '
                || coalesce('''' || (r ->> '$.ticket_id') || '''', 'missing')
                || ' is not a whole number'
        WHEN ts IS NULL THEN 'comment ' || cid || ': created_at '
            || coalesce('''' || created_raw || '''', 'missing')
            || ' is not a timestamp (expected ISO 8601 such as 2026-01-15T09:30:00Z)'
        WHEN public_type NOT IN ('BOOLEAN', 'NULL') THEN 'comment ' || cid
            || ': public is not true or false'
    END AS problem,
    CASE
        WHEN {_whole("cid")} IS NULL THEN 'id'
        WHEN ticket_id IS NULL THEN 'ticket_id'
        WHEN ts IS NULL THEN 'created_at'
        WHEN public_type NOT IN ('BOOLEAN', 'NULL') THEN 'public'
    END AS problem_column
FROM c
"""  # noqa: S608 - fixed text

JSON_COMMENTS_SQL: Final[str] = _comments_sql(
    _JSON_COMMENT_NORMALISED,
    "json_object('entity_id', 'ticket_comment.ticket_id', 'ts', 'ticket_comment.created_at', "
    "'actor', 'ticket_comment.author_id')",
)


def etl_events_sql(kind: str, options: ZendeskOptions) -> tuple[str, dict[str, object]]:
    """The SELECT and parameters of an ETL kind (see :meth:`Adapter.events_sql`)."""
    if kind == "fivetran_ticket":
        return FIVETRAN_TICKET_SQL, {}
    if kind == "fivetran_satisfaction_rating":
        return FIVETRAN_RATING_SQL, {
            "good_rating_value": options.good_rating_value,
            "bad_rating_value": options.bad_rating_value,
        }
    if kind == "fivetran_ticket_field_history":
        return _FIELD_HISTORY_SQL, {
            "ai_author_ids": list(options.ai_author_ids),
            "ai_agent_ticket_channels": list(options.ai_agent_ticket_channels),
        }
    comment_params: dict[str, object] = {
        "ai_author_ids": list(options.ai_author_ids),
        "ai_channels": list(options.ai_channels),
        "ai_source_rels": list(options.ai_source_rels),
        "ai_agent_ticket_channels": list(options.ai_agent_ticket_channels),
    }
    if kind == "fivetran_ticket_comment":
        return FIVETRAN_COMMENT_SQL, comment_params
    if kind == "ticket_comments":
        return JSON_COMMENTS_SQL, comment_params
    raise ValueError(f"unknown Zendesk ETL kind {kind!r}")
