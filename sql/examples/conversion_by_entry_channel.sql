-- Which channel brings the people who go on to buy? Each person's entry channel (their first
-- touch on the stitched journey), how many of them reach a lead, an opportunity and a purchase
-- in that order within 90 days (window_funnel), and the conversion rate to purchase.
WITH entry AS (
  SELECT person_id, channel FROM (
    SELECT person_id, channel,
           row_number() OVER (PARTITION BY person_id ORDER BY event_time, channel) AS n
    FROM journey.touchpoints) t
  WHERE n = 1
),
levels AS (
  SELECT person_id,
         window_funnel(INTERVAL '90 days', event_time,
                       is_touch, milestone = 'lead', milestone = 'opportunity', milestone = 'closed_won') AS level
  FROM journey.events
  GROUP BY person_id
)
SELECT e.channel AS entry_channel,
       count(*) AS people,
       count(*) FILTER (WHERE l.level >= 2) AS leads,
       count(*) FILTER (WHERE l.level >= 3) AS opportunities,
       count(*) FILTER (WHERE l.level >= 4) AS customers,
       round(100.0 * count(*) FILTER (WHERE l.level >= 4) / count(*), 2) AS pct_customers
FROM entry e JOIN levels l USING (person_id)
GROUP BY e.channel
ORDER BY customers DESC, people DESC, entry_channel;
