-- What do people do next after they fill in a form? (HubSpot's branching analysis)
-- Paths from each person's first form_submit, page views left out, three steps deep.
SELECT depth, source, target, users, paths, round(avg_seconds / 3600, 1) AS avg_hours
FROM journey_paths(start => 'form_submit', exclude => ARRAY['page_view'], max_steps => 3, top => 5)
ORDER BY depth, users DESC, source, target;
