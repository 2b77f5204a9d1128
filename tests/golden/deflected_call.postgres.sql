WITH anchors /* anchor: last answered by ai per entity */ AS (
  SELECT
    entity_id,
    anchor_event_id,
    anchor_ts
  FROM (
    SELECT
      v.entity_id,
      v.event_id AS anchor_event_id,
      v.ts AS anchor_ts,
      ROW_NUMBER() OVER (PARTITION BY v.entity_id ORDER BY v.ts DESC, v.seq DESC, v.event_id DESC) AS pick_rank
    FROM events AS v
    WHERE
      v.type = 'answered'
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
      e.type = 'transferred'
      AND JSON_EXTRACT_PATH_TEXT(CAST(e.attrs AS JSON), 'to') = 'human'
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '2 HOUR') AS leaf1_hits, /* leaf 1: transferred where attrs.to == 'human' within 2 hours after the anchor */
    COUNT(*) FILTER(WHERE
      e.type = 'repeat_call'
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '3 DAY') AS leaf2_hits, /* leaf 2: repeat_call within 3 days after the anchor */
    AVG(e.value) FILTER(WHERE
      e.type = 'sentiment'
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '1 HOUR') AS leaf3_hits, /* leaf 3: sentiment within 1 hour after the anchor */
    COUNT(*) FILTER(WHERE
      e.type = 'sentiment') AS leaf3_has_data
  FROM anchors AS a
  LEFT JOIN events AS e
    ON e.entity_id = a.entity_id
    AND e.type IN ('repeat_call', 'sentiment', 'transferred')
    AND e.ts <= CAST('2026-06-30 23:59:59.000000' AS TIMESTAMP)
  GROUP BY
    a.entity_id,
    a.anchor_event_id,
    a.anchor_ts
)
/* truecount definition deflected_call v1 sha256:275b5066ca2380b395ae181290e41c83cc4f89447488e3e4db07ea469f29d5fc; as of 2026-06-30 23:59:59; window ends inclusive */
SELECT
  s.entity_id,
  s.anchor_event_id,
  s.anchor_ts,
  TO_CHAR(s.anchor_ts, 'YYYY-MM-DD') AS period,
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
    THEN SUBSTRING(CASE WHEN NOT "s"."cond_no_transfer" THEN ', no_transfer' ELSE '' END || CASE WHEN NOT "s"."cond_no_repeat_call" THEN ', no_repeat_call' ELSE '' END || CASE WHEN NOT "s"."cond_average_sentiment" THEN ', average_sentiment' ELSE '' END FROM 3)
    ELSE NULL
  END AS reason,
  "s"."cond_no_transfer",
  "s"."cond_no_repeat_call",
  "s"."cond_average_sentiment"
FROM (
  SELECT
    m.*,
    CASE
      WHEN m.anchor_ts + INTERVAL '3 DAY' > CAST('2026-06-30 23:59:59.000000' AS TIMESTAMP)
      THEN 'pending'
      WHEN (
        m.leaf1_hits = 0
      )
      AND (
        m.leaf2_hits = 0
      )
      AND (
        CASE
          WHEN m.leaf3_has_data = 0
          THEN TRUE
          ELSE COALESCE((
            m.leaf3_hits >= 0.2
          ), FALSE)
        END
      )
      THEN 'counted'
      ELSE 'not_counted'
    END AS status,
    m.leaf1_hits = 0 AS "cond_no_transfer", /* no_transfer: absent transferred where attrs.to == 'human' within 2 hours after the anchor */
    m.leaf2_hits = 0 AS "cond_no_repeat_call", /* no_repeat_call: absent repeat_call within 3 days after the anchor */
    CASE
      WHEN m.leaf3_has_data = 0
      THEN TRUE
      ELSE COALESCE((
        m.leaf3_hits >= 0.2
      ), FALSE)
    END AS "cond_average_sentiment" /* average_sentiment: avg of value over sentiment within 1 hour after the anchor is >= 0.2 [if no sentiment data: pass] */
  FROM matched AS m
) AS s
ORDER BY
  entity_id,
  anchor_ts,
  anchor_event_id
