WITH anchors /* anchor: each meeting_booked by ai where attrs.kind in ('demo', 'discovery') per entity */ AS (
  SELECT
    v.entity_id,
    v.event_id AS anchor_event_id,
    v.ts AS anchor_ts
  FROM events AS v
  WHERE
    v.type = 'meeting_booked'
    AND v.actor = 'ai'
    AND GET_JSON_OBJECT(v.attrs, '$.kind') IN ('demo', 'discovery')
    AND v.ts <= CAST('2026-06-30 23:59:59.000000' AS TIMESTAMP)
), matched /* each anchor joined once to its events; one aggregate per leaf condition */ AS (
  SELECT
    a.entity_id,
    a.anchor_event_id,
    a.anchor_ts,
    COUNT(*) FILTER(WHERE
      e.type = 'meeting_held'
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '14' DAY) AS leaf1_hits, /* leaf 1: meeting_held within 14 days after the anchor */
    COUNT(*) FILTER(WHERE
      e.type = 'status_changed'
      AND GET_JSON_OBJECT(e.attrs, '$.to') = 'held'
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '14' DAY) AS leaf2_hits, /* leaf 2: status_changed where attrs.to == 'held' within 14 days after the anchor */
    COUNT(*) FILTER(WHERE
      e.type = 'disqualified'
      AND NOT GET_JSON_OBJECT(e.attrs, '$.reason') IS NULL
      AND e.ts >= a.anchor_ts
      AND e.ts <= a.anchor_ts + INTERVAL '30' DAY) AS leaf3_hits, /* leaf 3: disqualified where attrs.reason is not null within 30 days after the anchor */
    COUNT(*) FILTER(WHERE
      e.type = 'no_show'
      AND e.ts >= a.anchor_ts - INTERVAL '90' DAY
      AND e.ts <= a.anchor_ts) AS leaf4_hits, /* leaf 4: no_show within 90 days before the anchor */
    MAX_BY(
      TRY_CAST(GET_JSON_OBJECT(e.attrs, '$.score') AS DOUBLE),
      CONCAT(
        DATE_FORMAT(e.ts, 'yyyy-MM-dd HH:mm:ss.SSSSSS'),
        '|',
        COALESCE(LPAD(CAST(e.seq AS STRING), 20, '0'), '~'),
        '|',
        COALESCE(e.event_id, '')
      )
    ) FILTER(WHERE
      e.type = 'scored'
      AND NOT TRY_CAST(GET_JSON_OBJECT(e.attrs, '$.score') AS DOUBLE) IS NULL) AS leaf5_hits, /* leaf 5: scored at any time */
    COUNT(*) FILTER(WHERE
      e.type = 'scored') AS leaf5_has_data
  FROM anchors AS a
  LEFT JOIN events AS e
    ON e.entity_id = a.entity_id
    AND e.type IN ('disqualified', 'meeting_held', 'no_show', 'scored', 'status_changed')
    AND e.ts <= CAST('2026-06-30 23:59:59.000000' AS TIMESTAMP)
  GROUP BY
    a.entity_id,
    a.anchor_event_id,
    a.anchor_ts
)
/* truecount definition qualified_meeting v2 sha256:cd9d8f45970917d43d58055d2dffe38a807032b907c72ebe84b97e5ec65a6f2d; as of 2026-06-30 23:59:59; window ends inclusive */
SELECT
  s.entity_id,
  s.anchor_event_id,
  s.anchor_ts,
  CONCAT(
    DATE_FORMAT(
      TRUNC(CONVERT_TIMEZONE('UTC', 'America/New_York', s.anchor_ts), 'WEEK') + INTERVAL '3' DAY,
      'yyyy'
    ),
    '-W',
    LPAD(
      CAST((
        CAST(EXTRACT(DOY FROM TRUNC(CONVERT_TIMEZONE('UTC', 'America/New_York', s.anchor_ts), 'WEEK') + INTERVAL '3' DAY) AS INT) - 1
      ) DIV 7 + 1 AS STRING),
      2,
      '0'
    )
  ) AS period,
  status AS status,
  CASE WHEN status = 'counted' THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END AS quantity,
  CASE
    WHEN status = 'pending'
    THEN 'pending'
    WHEN status = 'excluded'
    THEN CONCAT(
      'no data: ',
      SUBSTRING(CASE WHEN (
        s.leaf5_has_data = 0
      ) THEN ', fit_score' ELSE '' END, 3)
    )
    WHEN status = 'not_counted'
    THEN SUBSTRING(
      CONCAT(
        CASE WHEN NOT `s`.`cond_held` THEN ', held' ELSE '' END,
        CASE WHEN NOT `s`.`cond_not_disqualified` THEN ', not_disqualified' ELSE '' END,
        CASE WHEN NOT `s`.`cond_few_no_shows` THEN ', few_no_shows' ELSE '' END,
        CASE WHEN NOT `s`.`cond_fit_score` THEN ', fit_score' ELSE '' END
      ),
      3
    )
    ELSE NULL
  END AS reason,
  `s`.`cond_held`,
  `s`.`cond_not_disqualified`,
  `s`.`cond_few_no_shows`,
  `s`.`cond_fit_score`
FROM (
  SELECT
    m.*,
    CASE
      WHEN (
        m.leaf5_has_data = 0
      )
      THEN 'excluded'
      WHEN m.anchor_ts + INTERVAL '30' DAY > CAST('2026-06-30 23:59:59.000000' AS TIMESTAMP)
      THEN 'pending'
      WHEN (
        (
          m.leaf1_hits > 0
        ) OR (
          m.leaf2_hits > 0
        )
      )
      AND (
        NOT (
          m.leaf3_hits > 0
        )
      )
      AND (
        COALESCE((
          m.leaf4_hits <= 3
        ), FALSE)
      )
      AND (
        COALESCE((
          m.leaf5_hits >= 50
        ), FALSE)
      )
      THEN 'counted'
      ELSE 'not_counted'
    END AS status,
    (
      m.leaf1_hits > 0
    ) OR (
      m.leaf2_hits > 0
    ) AS `cond_held`, /* held: any of (exists meeting_held within 14 days after the anchor; exists status_changed where attrs.to == 'held' within 14 days after the anchor) */
    NOT (
      m.leaf3_hits > 0
    ) AS `cond_not_disqualified`, /* not_disqualified: not (exists disqualified where attrs.reason is not null within 30 days after the anchor) */
    COALESCE((
      m.leaf4_hits <= 3
    ), FALSE) AS `cond_few_no_shows`, /* few_no_shows: number of no_show within 90 days before the anchor is <= 3 */
    CASE
      WHEN (
        m.leaf5_has_data = 0
      )
      THEN NULL
      ELSE COALESCE((
        m.leaf5_hits >= 50
      ), FALSE)
    END AS `cond_fit_score` /* fit_score: last of attrs.score over scored at any time is >= 50 [if no scored data: exclude] */
  FROM matched AS m
) AS s
ORDER BY
  entity_id,
  anchor_ts,
  anchor_event_id
