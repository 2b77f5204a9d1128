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
      e.type = 'rated'
      AND e.value >= 4
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '7 DAY') AS leaf2_hits, /* leaf 2: rated where value >= 4 within 7 days after the anchor */
    COUNT(*) FILTER(WHERE
      e.type = 'rated') AS leaf2_has_data
  FROM anchors AS a
  LEFT JOIN events AS e
    ON e.entity_id = a.entity_id
    AND e.type IN ('rated', 'reopened')
    AND e.ts <= CAST('2026-06-30 23:59:59.000000' AS TIMESTAMP)
  GROUP BY
    a.entity_id,
    a.anchor_event_id,
    a.anchor_ts
)
/* truecount definition resolved_ticket v3 sha256:9dcd5f8e904c54d821911da2cd07ea9ec71066b42080995d65500b6f277b7920; as of 2026-06-30 23:59:59; window ends inclusive */
SELECT
  s.entity_id,
  s.anchor_event_id,
  s.anchor_ts,
  TO_CHAR(s.anchor_ts, 'YYYY-MM') AS period,
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
    THEN SUBSTRING(CASE WHEN NOT "s"."cond_not_reopened" THEN ', not_reopened' ELSE '' END || CASE WHEN NOT "s"."cond_satisfied" THEN ', satisfied' ELSE '' END FROM 3)
    ELSE NULL
  END AS reason,
  "s"."cond_not_reopened",
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
        CASE WHEN m.leaf2_has_data = 0 THEN FALSE ELSE m.leaf2_hits > 0 END
      )
      THEN 'counted'
      ELSE 'not_counted'
    END AS status,
    m.leaf1_hits = 0 AS "cond_not_reopened", /* not_reopened: absent reopened within 14 days after the anchor */
    CASE WHEN m.leaf2_has_data = 0 THEN FALSE ELSE m.leaf2_hits > 0 END AS "cond_satisfied" /* satisfied: exists rated where value >= 4 within 7 days after the anchor [if no rated data: fail] */
  FROM matched AS m
) AS s
ORDER BY
  entity_id,
  anchor_ts,
  anchor_event_id
