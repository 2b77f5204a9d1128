WITH anchors /* anchor: first closed by ai per entity */ AS (
  SELECT
    entity_id,
    anchor_event_id,
    anchor_ts
  FROM (
    SELECT
      v.entity_id,
      v.event_id AS anchor_event_id,
      v.ts AS anchor_ts,
      ROW_NUMBER() OVER (PARTITION BY v.entity_id ORDER BY v.ts ASC, v.seq ASC, v.event_id ASC) AS pick_rank
    FROM events AS v
    WHERE
      v.type = 'closed'
      AND v.actor = 'ai'
      AND v.ts <= CAST('2026-06-30 23:59:59.000000' AS TIMESTAMP)
  ) AS ranked
  WHERE
    pick_rank = 1
), matched /* each anchor joined once to its events; one aggregate per leaf condition */ AS (
  SELECT
    a.entity_id,
    a.anchor_event_id,
    a.anchor_ts,
    COUNT(*) FILTER(WHERE
      e.type = 'reopened'
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '14 DAY') AS leaf1_hits, /* leaf 1: reopened within 14 days after the anchor */
    COUNT(*) FILTER(WHERE
      e.type = 'message'
      AND (
        e.actor = 'human' OR e.actor IS NULL
      )
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '14 DAY') AS leaf2_hits, /* leaf 2: message by human within 14 days after the anchor (an event with no actor may be by them: it counts) */
    COUNT(*) FILTER(WHERE
      e.type = 'rated'
      AND e.value >= 4
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '7 DAY') AS leaf3_hits, /* leaf 3: rated where value >= 4 within 7 days after the anchor */
    COUNT(*) FILTER(WHERE
      e.type = 'rated') AS leaf3_has_data
  FROM anchors AS a
  LEFT JOIN events AS e
    ON e.entity_id = a.entity_id
    AND e.type IN ('message', 'rated', 'reopened')
    AND e.ts <= CAST('2026-06-30 23:59:59.000000' AS TIMESTAMP)
  GROUP BY
    a.entity_id,
    a.anchor_event_id,
    a.anchor_ts
)
/* truecount definition resolved_ticket_strict v1 sha256:895d597917e12f8f85b9f601101e80b842d90f5a153d64ea7945b89767bf3cab; as of 2026-06-30 23:59:59; window ends inclusive */
SELECT
  s.entity_id,
  s.anchor_event_id,
  s.anchor_ts,
  TO_CHAR(
    CAST(s.anchor_ts AS TIMESTAMP) AT TIME ZONE 'UTC' AT TIME ZONE 'Europe/Berlin',
    'YYYY-MM'
  ) AS period,
  status AS status,
  CASE
    WHEN status = 'counted'
    THEN CAST(1 AS DOUBLE PRECISION)
    ELSE CAST(0 AS DOUBLE PRECISION)
  END AS quantity,
  CASE
    WHEN status = 'pending'
    THEN 'pending'
    WHEN status = 'not_counted'
    THEN SUBSTRING(CASE WHEN NOT "s"."cond_not_reopened" THEN ', not_reopened' ELSE '' END || CASE WHEN NOT "s"."cond_no_human_reply" THEN ', no_human_reply' ELSE '' END || CASE WHEN NOT "s"."cond_satisfied" THEN ', satisfied' ELSE '' END FROM 3)
    ELSE NULL
  END AS reason,
  "s"."cond_not_reopened",
  "s"."cond_no_human_reply",
  "s"."cond_satisfied"
FROM (
  SELECT
    m.*,
    CASE
      WHEN m.anchor_ts + INTERVAL '14 DAY' > CAST('2026-06-30 23:59:59.000000' AS TIMESTAMP)
      THEN 'pending'
      WHEN (
        m.leaf1_hits = 0
      )
      AND (
        m.leaf2_hits = 0
      )
      AND (
        CASE WHEN m.leaf3_has_data = 0 THEN FALSE ELSE m.leaf3_hits > 0 END
      )
      THEN 'counted'
      ELSE 'not_counted'
    END AS status,
    m.leaf1_hits = 0 AS "cond_not_reopened", /* not_reopened: absent reopened within 14 days after the anchor */
    m.leaf2_hits = 0 AS "cond_no_human_reply", /* no_human_reply: absent message by human within 14 days after the anchor */
    CASE WHEN m.leaf3_has_data = 0 THEN FALSE ELSE m.leaf3_hits > 0 END AS "cond_satisfied" /* satisfied: exists rated where value >= 4 within 7 days after the anchor [if no rated data: fail] */
  FROM matched AS m
) AS s
ORDER BY
  entity_id,
  anchor_ts,
  anchor_event_id
