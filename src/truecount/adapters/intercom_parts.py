"""The flattened ``conversation_parts`` kind: one conversation part per record.

ETL tools (Airbyte's Intercom source) do not embed the parts in the conversation: their
``conversations`` stream carries the conversation without them, and a ``conversation_parts``
stream carries every part on its own line with ``conversation_id``,
``conversation_created_at``, ``conversation_updated_at`` and ``conversation_total_parts``
added. The parts of one conversation are followed together (state before, assignee before)
with the same SQL text as parts embedded in their conversation
(:func:`truecount.adapters.intercom_sql.part_ctes`), in the order the stream lists them, so
both shapes give the same events.

A record is a part, so a bad part sets aside every part of its conversation (each with the
reason), as the embedded shape sets aside the whole conversation: a conversation's reopens and
escalations cannot be read from the parts that happen to be good. The same part written twice
(overlapping syncs) gives the same events twice, which the loader counts as duplicates.
"""

from __future__ import annotations

from typing import Final

from truecount.adapters.intercom_sql import part_ctes, part_event_selects

SQL: Final[str] = f"""
WITH recs AS (
    SELECT __tc_row AS rec_row, __tc_record AS p,
        nullif(trim(__tc_record ->> '$.conversation_id'), '') AS cid,
        __tc_record ->> '$.id' AS pid0
    FROM __tc_records
),
keyed AS (
    SELECT *, min(rec_row) OVER (PARTITION BY cid, coalesce(pid0, 'row:' || rec_row))
        AS first_row
    FROM recs WHERE cid IS NOT NULL
),
part_rows AS (
    -- One row per distinct part, numbered in the stream's order within its conversation.
    SELECT rec_row, cid AS grp, cid, CAST(NULL AS VARCHAR) AS channel, p,
        row_number() OVER (PARTITION BY cid ORDER BY rec_row) AS pos
    FROM keyed WHERE rec_row = first_row
){part_ctes()},
conv_summary AS (
    SELECT grp AS cid,
        arg_min(part_problem, pos) FILTER (WHERE part_problem IS NOT NULL) AS conv_problem,
        arg_min(part_problem_column, pos) FILTER (WHERE part_problem IS NOT NULL)
            AS conv_problem_column,
        arg_min(rec_row, pos) FILTER (WHERE part_problem IS NOT NULL) AS problem_row,
        count(*) AS present,
        max(TRY_CAST(p ->> '$.conversation_total_parts' AS BIGINT)) AS total
    FROM parts5 GROUP BY grp
),
conv_summary2 AS (
    SELECT *, total IS NOT NULL AND total > present AS truncated FROM conv_summary
),
judged AS (
    SELECT k.rec_row, k.first_row, k.cid, k.p, s.truncated, s.total, s.present,
        CASE WHEN s.conv_problem IS NOT NULL AND s.problem_row = k.first_row
                 THEN s.conv_problem
             WHEN s.conv_problem IS NOT NULL
                 THEN 'conversation ' || k.cid || ' has a bad part (record ' || s.problem_row
                      || '), so none of its parts can be read in order: ' || s.conv_problem
             WHEN s.truncated AND $truncated_quarantine
                 THEN 'conversation ' || k.cid || ' has ' || s.present || ' of ' || s.total
                      || ' parts (conversation_total_parts): its close and reopen history is '
                      || 'incomplete (truncated_parts=quarantine)'
        END AS problem,
        CASE WHEN s.conv_problem IS NOT NULL THEN s.conv_problem_column
             WHEN s.truncated AND $truncated_quarantine THEN 'conversation_total_parts'
        END AS problem_column
    FROM keyed k JOIN conv_summary2 s USING (cid)
),
good_parts AS (
    SELECT p5.* REPLACE (j.rec_row AS rec_row), j.truncated, j.total AS total_attr
    FROM judged j JOIN parts5 p5 ON p5.rec_row = j.first_row
    WHERE j.problem IS NULL
),
events AS ({part_event_selects("good_parts")}
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
    rec_row, 0, problem, problem_column, p
FROM judged WHERE problem IS NOT NULL
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    rec_row, 0,
    'conversation part' || coalesce(' ' || pid0, '') || ' has no conversation_id: a part of '
        || 'the flattened conversation_parts stream names its conversation there',
    'conversation_id', p
FROM recs WHERE cid IS NULL
"""  # noqa: S608 - constant package text; option values are parameters
