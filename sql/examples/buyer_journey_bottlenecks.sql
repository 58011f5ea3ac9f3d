-- Where is the bottleneck in the buyer journey? How far each person gets, in order, within 90
-- days of their first visit (window_funnel over the stitched journey), then per step: people
-- reaching it, the share of the previous step, and how many stop there.
WITH levels AS (
  SELECT person_id,
         window_funnel(INTERVAL '90 days', event_time,
                       event_name = 'page_view',
                       event_name IN ('email_click', 'content_download', 'webinar_signup'),
                       milestone = 'lead',
                       milestone = 'opportunity',
                       milestone = 'closed_won') AS level
  FROM journey.events
  GROUP BY person_id
),
steps (step, name) AS (
  VALUES (1, 'visit'), (2, 'engaged'), (3, 'lead'), (4, 'opportunity'), (5, 'customer')
),
reached AS (
  SELECT s.step, s.name, count(l.person_id) AS people
  FROM steps s LEFT JOIN levels l ON l.level >= s.step
  GROUP BY s.step, s.name
)
SELECT step, name, people,
       round(100.0 * people / lag(people) OVER (ORDER BY step), 1) AS pct_of_previous,
       people - coalesce(lead(people) OVER (ORDER BY step), 0) AS stop_here
FROM reached
ORDER BY step;
