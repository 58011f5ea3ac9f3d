-- Which channels bring the revenue? Each purchase is credited to the touches of its journey:
-- the person's touches since their previous purchase and at most 90 days before it, ordered by
-- time (ties by channel). A purchase with no touch goes to (direct), never dropped. Purchases
-- and revenue credited per channel by position-based (40/20/40) and by linear attribution;
-- each model's credits add up to the purchases and the revenue.
WITH conversions AS (
  SELECT person_id, conversion_number, event_time AS converted_at, value,
         lag(event_time) OVER (PARTITION BY person_id ORDER BY conversion_number) AS previous_at
  FROM journey.conversions
),
journeys AS (
  SELECT c.person_id, c.conversion_number, c.value, t.event_time, coalesce(t.channel, '(direct)') AS channel
  FROM conversions c
  LEFT JOIN journey.touchpoints t
    ON t.person_id = c.person_id
   AND t.event_time <= c.converted_at
   AND t.event_time >= c.converted_at - INTERVAL '90 days'
   AND (c.previous_at IS NULL OR t.event_time > c.previous_at)
),
credits AS (
  SELECT channel, value,
         attribute('position_based') OVER (PARTITION BY person_id, conversion_number ORDER BY event_time, channel) AS u,
         attribute('linear') OVER (PARTITION BY person_id, conversion_number ORDER BY event_time, channel) AS lin
  FROM journeys
)
SELECT channel,
       round(sum(u), 2) AS purchases_u_shaped,
       round(sum(u * value), 2) AS revenue_u_shaped,
       round(sum(lin), 2) AS purchases_linear,
       round(sum(lin * value), 2) AS revenue_linear
FROM credits
GROUP BY channel
ORDER BY revenue_u_shaped DESC, channel;
