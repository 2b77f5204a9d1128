"""The SQL of the conversation kinds: one Intercom conversation object in, its events out.

The record is a conversation as the API returns it: by id (with ``conversation_parts``), in a
list or search page (without), from API 1.x (``conversation_message`` instead of ``source``,
``assignee`` instead of ``admin_assignee_id``), or from an ETL tool's ``conversations`` stream,
whose parts come in their own stream. A conversation without parts of its own takes what its
parts say (the AI's last answer, closes, reopens, truncation) from the events the flattened
``conversation_parts`` kind stored before it (:data:`truecount.adapters.base.STORE`), so both
shapes give the same events.
"""

from __future__ import annotations

from typing import Final

from truecount.adapters.base import STORE
from truecount.adapters.intercom_sql import (
    AUTHOR_TYPES,
    CUSTOM_STATE_ATTRIBUTE,
    CUSTOM_STATES,
    DELIVERED_AS,
    MESSAGE_PARTS,
    STATES_2_14,
    STATES_2_15,
    STATES_BOTH,
    TRUNCATED,
    actor,
    bad_unix,
    basis,
    first_problem,
    iso,
    lit,
    part_ctes,
    part_event_selects,
    ts,
    unix_ok,
)

OLD_ONLY: Final[str] = lit([s for s in STATES_2_14 if s not in STATES_BOTH])
NEW_ONLY: Final[str] = lit([s for s in STATES_2_15 if s not in STATES_BOTH])
STATES_TEXT: Final[str] = (
    f"API 2.11-2.14: {', '.join(STATES_2_14)}; API 2.15+ and Unstable: {', '.join(STATES_2_15)}"
)

CONVERSATION_CHECKS: Final[list[tuple[str, str, str]]] = [
    ("cid IS NULL", "'conversation has no id'", "'id'"),
    (
        f"NOT {unix_ok('created_x')}",
        bad_unix("created_x", "created_raw", "created_at"),
        "'created_at'",
    ),
    (
        "s_actor IS NULL",
        "'unknown source.author.type ''' || s_type || ''' (Intercom author types: "
        f"{', '.join(AUTHOR_TYPES)})'",
        "'source.author.type'",
    ),
    (
        f"delivered_as IS NOT NULL AND delivered_as NOT IN ({lit(DELIVERED_AS)})",
        "'unknown source.delivered_as ''' || delivered_as || ''' (Intercom values: "
        f"{', '.join(DELIVERED_AS)})'",
        "'source.delivered_as'",
    ),
    (
        "parts_kind IS NOT NULL AND parts_kind <> 'NULL' "
        "AND parts_arr_kind IS DISTINCT FROM 'ARRAY'",
        "'conversation_parts has no conversation_parts array (expected "
        '{"type": "conversation_part.list", "conversation_parts": [...]})\'',
        "'conversation_parts'",
    ),
    ("part_problem IS NOT NULL", "part_problem", "part_problem_column"),
    (
        "truncated AND $truncated_quarantine",
        "'conversation_parts holds ' || parts_present || ' of ' || parts_total || ' parts "
        "(the API returns at most 500): its close and reopen history is incomplete "
        "(truncated_parts=quarantine)'",
        "'conversation_parts.total_count'",
    ),
    (
        "rating_raw IS NOT NULL AND (rating_x IS NULL OR rating_x <> floor(rating_x) "
        "OR rating_x NOT BETWEEN 1 AND 5)",
        "'conversation_rating.rating ''' || rating_raw || ''' is not a score from 1 to 5'",
        "'conversation_rating.rating'",
    ),
    (
        f"rating_raw IS NOT NULL AND NOT {unix_ok('rating_at_x')} "
        f"AND NOT {unix_ok('rating_upd_x')}",
        "'conversation_rating has a rating but no created_at or updated_at in unix seconds'",
        "'conversation_rating.created_at'",
    ),
    (
        "ai_kind = 'OBJECT' AND $generation = 'none'",
        "'ai_agent is not in Intercom API ' || $api_version || ' (it first appears in 2.11): "
        "the export was made with a later Intercom-Version; pass --option api_version=auto or the "
        "version used'",
        "'ai_agent'",
    ),
    (
        "ai_rating_raw IS NOT NULL AND (ai_rating_x IS NULL OR ai_rating_x <> floor(ai_rating_x) "
        "OR ai_rating_x NOT BETWEEN 1 AND 5)",
        "'ai_agent.rating ''' || ai_rating_raw || ''' is not a score from 1 to 5'",
        "'ai_agent.rating'",
    ),
    (
        f"ai_rating_raw IS NOT NULL AND NOT {unix_ok('ai_at_x')} AND NOT {unix_ok('ai_upd_x')}",
        "'ai_agent has a rating but no created_at or updated_at in unix seconds'",
        "'ai_agent.created_at'",
    ),
    (
        "res_state IS NOT NULL AND res_generation IS NULL",
        "'unknown ai_agent.resolution_state ''' || res_state || ''' (" + STATES_TEXT + ")'",
        "'ai_agent.resolution_state'",
    ),
    (
        "$generation = '2.14' AND res_generation = '2.15+'",
        "'ai_agent.resolution_state ''' || res_state || ''' is an Intercom API 2.15+ value, but "
        "api_version is ' || $api_version || ' (2.11-2.14 values: "
        + ", ".join(STATES_2_14)
        + "): the export was made with Intercom-Version 2.15 or later; pass "
        "--option api_version=2.15 (or auto)'",
        "'ai_agent.resolution_state'",
    ),
    (
        "$generation = '2.15' AND res_generation = '2.11-2.14'",
        "'ai_agent.resolution_state ''' || res_state || ''' is an Intercom API 2.11-2.14 value, "
        "but api_version is ' || $api_version || ' (2.15+ values: "
        + ", ".join(STATES_2_15)
        + "): the export was made with Intercom-Version 2.14 or earlier; pass "
        "--option api_version=2.14 (or auto)'",
        "'ai_agent.resolution_state'",
    ),
    (
        "res_state IS NULL AND res_custom IS NOT NULL AND custom_state IS NULL",
        f"'unknown custom attribute \"{CUSTOM_STATE_ATTRIBUTE}\" value ''' || res_custom || "
        f"''' (expected {', '.join(CUSTOM_STATES)})'",
        f"'custom_attributes.{CUSTOM_STATE_ATTRIBUTE}'",
    ),
]


PROBLEM, PROBLEM_COLUMN = first_problem(CONVERSATION_CHECKS)

#: The opening message: ``source`` (API 2.x) or ``conversation_message`` (API 1.x).
_SRC: Final[str] = """CASE WHEN json_type(__tc_record, '$.source') = 'OBJECT'
             THEN __tc_record -> '$.source'
             WHEN json_type(__tc_record, '$.conversation_message') = 'OBJECT'
             THEN __tc_record -> '$.conversation_message' END"""

SQL: Final[str] = f"""
WITH conv0 AS (
    SELECT __tc_row AS rec_row, __tc_record AS r, {_SRC} AS src,
        CASE WHEN json_type(__tc_record, '$.source') = 'OBJECT' THEN 'source'
             WHEN json_type(__tc_record, '$.conversation_message') = 'OBJECT'
             THEN 'conversation_message' END AS src_field
    FROM __tc_records
),
conv AS (
    SELECT rec_row, r, src_field,
        nullif(trim(r ->> '$.id'), '') AS cid,
        r ->> '$.created_at' AS created_raw,
        TRY_CAST(r ->> '$.created_at' AS DOUBLE) AS created_x,
        TRY_CAST(r ->> '$.updated_at' AS DOUBLE) AS updated_x,
        CASE WHEN src_field = 'source' THEN src ->> '$.type' END AS channel,
        src ->> '$.delivered_as' AS delivered_as,
        nullif(src ->> '$.author.type', '') AS s_type,
        src ->> '$.author.id' AS s_id,
        TRY_CAST(src ->> '$.author.from_ai_agent' AS BOOLEAN) AS s_fin,
        TRY_CAST(src ->> '$.author.is_ai_answer' AS BOOLEAN) AS s_answer,
        json_type(r, '$.conversation_parts') AS parts_kind,
        CASE WHEN json_type(r, '$.conversation_parts') = 'ARRAY'
             THEN r -> '$.conversation_parts'
             ELSE r -> '$.conversation_parts.conversation_parts' END AS parts_arr,
        TRY_CAST(r ->> '$.conversation_parts.total_count' AS BIGINT) AS parts_total_own,
        r ->> '$.conversation_rating.rating' AS rating_raw,
        TRY_CAST(r ->> '$.conversation_rating.rating' AS DOUBLE) AS rating_x,
        TRY_CAST(r ->> '$.conversation_rating.created_at' AS DOUBLE) AS rating_at_x,
        TRY_CAST(r ->> '$.conversation_rating.updated_at' AS DOUBLE) AS rating_upd_x,
        r ->> '$.conversation_rating.teammate.id' AS rating_teammate,
        json_type(r, '$.ai_agent') AS ai_kind,
        r ->> '$.ai_agent.rating' AS ai_rating_raw,
        TRY_CAST(r ->> '$.ai_agent.rating' AS DOUBLE) AS ai_rating_x,
        TRY_CAST(r ->> '$.ai_agent.created_at' AS DOUBLE) AS ai_at_x,
        TRY_CAST(r ->> '$.ai_agent.updated_at' AS DOUBLE) AS ai_upd_x,
        nullif(trim(r ->> '$.ai_agent.resolution_state'), '') AS res_state,
        nullif(trim(r ->> '$.custom_attributes."{CUSTOM_STATE_ATTRIBUTE}"'), '')
            AS res_custom,
        TRY_CAST(r ->> '$.statistics.last_close_at' AS DOUBLE) AS last_close_x
    FROM conv0
),
-- What the flattened conversation_parts kind stored for conversations that come without
-- their parts (an ETL tool's conversations stream): loaded first, read here.
stored_parts AS (
    SELECT entity_id AS cid,
        max(ts) FILTER (WHERE type = 'message' AND actor = 'ai') AS st_last_ai,
        count(*) FILTER (WHERE type = 'closed') AS st_closes,
        count(*) FILTER (WHERE type = 'reopened') AS st_reopens,
        count(DISTINCT attrs ->> 'part_id') FILTER (WHERE actor = 'ai') AS st_ai_parts,
        count(DISTINCT attrs ->> 'part_id') AS st_parts,
        max(TRY_CAST(attrs ->> 'conversation_total_parts' AS BIGINT)) AS st_total,
        bool_or(coalesce(TRY_CAST(attrs ->> 'parts_truncated' AS BOOLEAN), false))
            AS st_truncated
    FROM {STORE}
    WHERE attrs ->> 'vendor' = 'intercom' AND attrs ->> 'record' = 'conversation_parts'
      AND entity_id IN (SELECT cid FROM conv)
    GROUP BY entity_id
),
conv2 AS (
    SELECT c.*, st.st_last_ai, st.st_closes, st.st_reopens, st.st_ai_parts,
        json_type(parts_arr) AS parts_arr_kind,
        json_type(parts_arr) IS DISTINCT FROM 'ARRAY' AND st.cid IS NOT NULL AS parts_stored,
        CASE WHEN json_type(parts_arr) = 'ARRAY' THEN json_array_length(parts_arr)
             ELSE coalesce(st.st_parts, 0) END AS parts_present,
        CASE WHEN json_type(parts_arr) = 'ARRAY' THEN parts_total_own ELSE st.st_total END
            AS parts_total,
        CASE WHEN json_type(parts_arr) = 'ARRAY' THEN parts_total_own IS NOT NULL
                  AND parts_total_own > json_array_length(parts_arr)
             ELSE coalesce(st.st_truncated, false) END AS truncated,
        {actor("s_type", "s_id", "s_fin", "s_answer")} AS s_actor_by_author,
        {basis("s_type", "s_id", "s_fin", "s_answer")} AS s_basis,
        CASE WHEN res_state IN ({lit(STATES_BOTH)}) THEN 'both'
             WHEN res_state IN ({OLD_ONLY}) THEN '2.11-2.14'
             WHEN res_state IN ({NEW_ONLY}) THEN '2.15+' END AS res_generation,
        CASE lower(res_custom) WHEN 'assumed resolution' THEN 'assumed_resolution'
             WHEN 'confirmed resolution' THEN 'confirmed_resolution'
             WHEN 'escalated' THEN 'escalated' END AS custom_state
    FROM conv c LEFT JOIN stored_parts st USING (cid)
),
conv3 AS (
    SELECT *,
        CASE WHEN s_type IS NOT NULL THEN s_actor_by_author
             WHEN delivered_as = 'customer_initiated' THEN 'customer'
             WHEN delivered_as = 'operator_initiated' THEN $bot_actor
             WHEN delivered_as = 'admin_initiated' THEN 'human'
             ELSE 'system' END AS s_actor,
        CASE WHEN s_type IS NOT NULL THEN src_field || '.author'
             WHEN delivered_as IS NOT NULL THEN src_field || '.delivered_as' END
            AS s_actor_field
    FROM conv2
),
part_rows AS (
    SELECT rec_row, rec_row AS grp, cid, channel, unnest(items) AS p,
        generate_subscripts(items, 1) AS pos
    FROM (SELECT rec_row, cid, channel, CAST(parts_arr AS JSON[]) AS items
          FROM conv3 WHERE parts_arr_kind = 'ARRAY')
){part_ctes()},
part_summary AS (
    SELECT rec_row,
        arg_min(part_problem, pos) FILTER (WHERE part_problem IS NOT NULL) AS part_problem,
        arg_min(part_problem_column, pos) FILTER (WHERE part_problem IS NOT NULL)
            AS part_problem_column,
        max(ts) FILTER (WHERE actor = 'ai' AND part_type IN {MESSAGE_PARTS}) AS last_ai_answer,
        count(*) FILTER (WHERE main_type = 'closed') AS closes,
        count(*) FILTER (WHERE main_type = 'reopened' OR reply_reopens) AS reopens,
        count(*) FILTER (WHERE actor = 'ai') AS ai_parts
    FROM parts5 GROUP BY rec_row
),
checked AS (
    SELECT c.*, s.part_problem, s.part_problem_column,
        coalesce(s.last_ai_answer, c.st_last_ai) AS last_ai_answer,
        coalesce(s.closes, c.st_closes, 0) AS closes,
        coalesce(s.reopens, c.st_reopens, 0) AS reopens,
        coalesce(s.ai_parts, c.st_ai_parts, 0) AS ai_parts
    FROM conv3 c LEFT JOIN part_summary s USING (rec_row)
),
checked2 AS (
    SELECT *, {PROBLEM} AS problem, {PROBLEM_COLUMN} AS problem_column FROM checked
),
good AS (SELECT * FROM checked2 WHERE problem IS NULL),
good_parts AS (
    SELECT p.*, g.truncated, CAST(NULL AS BIGINT) AS total_attr
    FROM parts5 p JOIN good g USING (rec_row)
),
events AS (
    -- The conversation itself: opened by the author of its first message (source, or
    -- conversation_message in API 1.x).
    SELECT rec_row, 0 AS ord, 'intercom:conversation:' || cid || ':created' AS event_id, cid,
        {ts("created_x")} AS ts, 'created' AS type, s_actor AS actor,
        CAST(NULL AS DOUBLE) AS value, 0 AS seq,
        json_merge_patch('{{}}', json_object(
            'channel', channel,
            'delivered_as', delivered_as,
            'source_author_type', s_type,
            'actor_basis', CASE WHEN s_type IS NOT NULL THEN s_basis
                                ELSE 'delivered_as' END,
            'state', r ->> '$.state',
            'open', TRY_CAST(r ->> '$.open' AS BOOLEAN),
            'admin_assignee_id', coalesce(r ->> '$.admin_assignee_id',
                CASE WHEN r ->> '$.assignee.type' = 'admin' THEN r ->> '$.assignee.id' END),
            'team_assignee_id', r ->> '$.team_assignee_id',
            'ai_agent_participated', TRY_CAST(r ->> '$.ai_agent_participated' AS BOOLEAN),
            'ai_source_type', r ->> '$.ai_agent.source_type',
            'ai_last_answer_type', r ->> '$.ai_agent.last_answer_type',
            'resolution_state', res_state,
            'resolution_state_custom', res_custom,
            'teammate_rating', TRY_CAST(rating_x AS INTEGER),
            'ai_rating', TRY_CAST(ai_rating_x AS INTEGER),
            'statistics', json_object(
                'count_reopens', TRY_CAST(r ->> '$.statistics.count_reopens' AS BIGINT),
                'first_close_at',
                    {iso("TRY_CAST(r ->> '$.statistics.first_close_at' AS DOUBLE)")},
                'last_close_at', {iso("last_close_x")},
                'last_closed_by_id', r ->> '$.statistics.last_closed_by_id',
                'first_admin_reply_at',
                    {iso("TRY_CAST(r ->> '$.statistics.first_admin_reply_at' AS DOUBLE)")},
                'count_assignments', TRY_CAST(r ->> '$.statistics.count_assignments' AS BIGINT),
                'count_conversation_parts',
                    TRY_CAST(r ->> '$.statistics.count_conversation_parts' AS BIGINT)),
            'parts_present', parts_present,
            'parts_total', parts_total,
            'parts_missing', (parts_kind IS NULL OR parts_kind = 'NULL') AND NOT parts_stored,
            'parts_from', CASE WHEN parts_arr_kind = 'ARRAY' THEN 'conversation'
                               WHEN parts_stored THEN 'conversation_parts' END,
            'api_shape', CASE WHEN src_field = 'conversation_message' THEN '1.x' END,
            'parts_truncated', coalesce(truncated, false),
            'closes_in_parts', coalesce(closes, 0),
            'reopens_in_parts', coalesce(reopens, 0),
            'ai_parts', ai_parts,
            -- Intercom says its AI agent took part, yet no part is the AI's: the export's
            -- parts carry no from_ai_agent flag (API 1.x, some ETL streams), so name Fin's
            -- bot id in ai_admin_ids rather than take every bot for the AI.
            'ai_unattributed', parts_present > 0 AND ai_parts = 0
                AND (coalesce(TRY_CAST(r ->> '$.ai_agent_participated' AS BOOLEAN), false)
                     OR ai_kind = 'OBJECT'),
            'origin', json_object('entity_id', 'conversation.id',
                                  'ts', 'conversation.created_at',
                                  'actor', coalesce(s_actor_field, 'none'))
        )) AS attrs
    FROM good
    UNION ALL
{part_event_selects("good_parts")}
    UNION ALL
    -- The teammate survey (conversation_rating), 1-5.
    SELECT rec_row, 100000001, 'intercom:conversation:' || cid || ':rated:teammate', cid,
        coalesce({ts("rating_at_x")}, {ts("rating_upd_x")}), 'rated', 'customer', rating_x,
        parts_present + 1,
        json_merge_patch('{{}}', json_object(
            'rated', 'teammate', 'scale', '1-5', 'raw', r -> '$.conversation_rating.rating',
            'teammate_id', rating_teammate,
            'updated_at', {iso("rating_upd_x")},
            'changed', rating_upd_x > rating_at_x,
            'parts_truncated', {TRUNCATED},
            'origin', json_object('value', 'conversation_rating.rating',
                'ts', CASE WHEN {unix_ok("rating_at_x")} THEN 'conversation_rating.created_at'
                           ELSE 'conversation_rating.updated_at' END,
                'actor', 'conversation_rating.contact')))
    FROM good WHERE rating_raw IS NOT NULL AND $ratings IN ('both', 'teammate')
    UNION ALL
    -- The AI agent's own rating (ai_agent.rating), 1-5.
    SELECT rec_row, 100000002, 'intercom:conversation:' || cid || ':rated:ai', cid,
        coalesce({ts("ai_at_x")}, {ts("ai_upd_x")}), 'rated', 'customer', ai_rating_x,
        parts_present + 2,
        json_merge_patch('{{}}', json_object(
            'rated', 'ai', 'scale', '1-5', 'raw', r -> '$.ai_agent.rating',
            'updated_at', {iso("ai_upd_x")},
            'changed', ai_upd_x > ai_at_x,
            'parts_truncated', {TRUNCATED},
            'origin', json_object('value', 'ai_agent.rating',
                'ts', CASE WHEN {unix_ok("ai_at_x")} THEN 'ai_agent.created_at'
                           ELSE 'ai_agent.updated_at' END)))
    FROM good WHERE ai_rating_raw IS NOT NULL AND $ratings IN ('both', 'ai')
    UNION ALL
    -- The vendor's own verdict, dated at the AI's last answer it judges.
    SELECT rec_row, 100000003, 'intercom:conversation:' || cid || ':ai_outcome', cid,
        coalesce(last_ai_answer, {ts("last_close_x")}, {ts("updated_x")}, {ts("created_x")}),
        'ai_outcome', 'system', NULL, parts_present + 3,
        json_merge_patch('{{}}', json_object(
            'state', coalesce(res_state, custom_state),
            'raw', coalesce(res_state, res_custom),
            'generation', CASE WHEN res_state IS NULL THEN 'custom_attribute'
                               ELSE res_generation END,
            'api_version', $api_version,
            'ai_source_type', r ->> '$.ai_agent.source_type',
            'ai_last_answer_type', r ->> '$.ai_agent.last_answer_type',
            'parts_truncated', {TRUNCATED},
            'origin', json_object(
                'attrs.state', CASE WHEN res_state IS NOT NULL
                    THEN 'ai_agent.resolution_state'
                    ELSE 'custom_attributes.{CUSTOM_STATE_ATTRIBUTE}' END,
                'ts', CASE WHEN last_ai_answer IS NOT NULL
                        THEN 'conversation_part.created_at (last AI answer)'
                        WHEN {unix_ok("last_close_x")} THEN 'statistics.last_close_at'
                        WHEN {unix_ok("updated_x")} THEN 'conversation.updated_at'
                        ELSE 'conversation.created_at' END)))
    FROM good WHERE res_state IS NOT NULL OR custom_state IS NOT NULL
)
SELECT event_id, cid AS entity_id, ts, type, actor, value, attrs,
    CAST(NULL AS VARCHAR) AS source, CAST(NULL AS TIMESTAMP) AS recorded_at, seq,
    rec_row AS __tc_row,
    row_number() OVER (PARTITION BY rec_row ORDER BY ord) - 1 AS __tc_sub,
    CAST(NULL AS VARCHAR) AS __tc_problem, CAST(NULL AS VARCHAR) AS __tc_problem_column,
    CAST(NULL AS JSON) AS __tc_raw
FROM events
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    rec_row, 0, problem, problem_column, r
FROM checked2 WHERE problem IS NOT NULL
"""  # noqa: S608 - constant package text; option values are parameters
