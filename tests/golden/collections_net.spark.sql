WITH anchors /* anchor: first contacted by ai per entity */ AS (
  SELECT
    entity_id,
    anchor_event_id,
    anchor_ts
  FROM (
    SELECT
      v.entity_id,
      v.event_id AS anchor_event_id,
      v.ts AS anchor_ts,
      ROW_NUMBER() OVER (
        PARTITION BY v.entity_id
        ORDER BY v.ts ASC NULLS LAST, v.seq ASC NULLS LAST, v.event_id ASC NULLS LAST
      ) AS pick_rank
    FROM events AS v
    WHERE
      v.type = 'contacted'
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
    SUM(e.value) FILTER(WHERE
      e.type = 'payment'
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '90' DAY) AS leaf1_hits, /* leaf 1: payment within 90 days after the anchor */
    SUM(e.value) FILTER(WHERE
      e.type = 'payment'
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '90' DAY) AS quantity1, /* quantity: sum of payment within 90 days after the anchor */
    SUM(e.value) FILTER(WHERE
      e.type = 'chargeback'
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '90' DAY) AS quantity2 /* quantity: sum of chargeback within 90 days after the anchor */
  FROM anchors AS a
  LEFT JOIN events AS e
    ON e.entity_id = a.entity_id
    AND e.type IN ('chargeback', 'payment')
    AND e.ts <= CAST('2026-06-30 23:59:59.000000' AS TIMESTAMP)
  GROUP BY
    a.entity_id,
    a.anchor_event_id,
    a.anchor_ts
)
/* truecount definition collections_net v1 sha256:95ea2f793a58f32d6ed638a978f172789c662d9719f7cd38f11acdabb9441616; as of 2026-06-30 23:59:59; window ends inclusive */
SELECT
  s.entity_id,
  s.anchor_event_id,
  s.anchor_ts,
  CONCAT(
    DATE_FORMAT(CONVERT_TIMEZONE('UTC', 'America/New_York', s.anchor_ts), 'yyyy'),
    '-Q',
    CAST(CAST(EXTRACT(QUARTER FROM CONVERT_TIMEZONE('UTC', 'America/New_York', s.anchor_ts)) AS INT) AS STRING)
  ) AS period,
  status AS status,
  CASE
    WHEN status = 'counted'
    THEN CAST(COALESCE(s.quantity1, 0) - (
      COALESCE(s.quantity2, 0)
    ) AS DOUBLE)
    ELSE CAST(0 AS DOUBLE)
  END AS quantity,
  CASE
    WHEN status = 'pending'
    THEN 'pending'
    WHEN status = 'not_counted'
    THEN SUBSTRING(CASE WHEN NOT `s`.`cond_recovered` THEN ', recovered' ELSE '' END, 3)
    ELSE NULL
  END AS reason,
  `s`.`cond_recovered`
FROM (
  SELECT
    m.*,
    CASE
      WHEN m.anchor_ts + INTERVAL '90' DAY > CAST('2026-06-30 23:59:59.000000' AS TIMESTAMP)
      THEN 'pending'
      WHEN (
        COALESCE((
          m.leaf1_hits > 0
        ), FALSE)
      )
      THEN 'counted'
      ELSE 'not_counted'
    END AS status,
    COALESCE((
      m.leaf1_hits > 0
    ), FALSE) AS `cond_recovered` /* recovered: sum of value over payment within 90 days after the anchor is > 0 */
  FROM matched AS m
) AS s
ORDER BY
  entity_id,
  anchor_ts,
  anchor_event_id
