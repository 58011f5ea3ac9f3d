-- Who dropped off after the demo request? The people who asked for a demo but did not reach an
-- opportunity within 30 days, the list to hand to sales: when they asked, earliest first.
SELECT person_id, entered_at AS demo_requested_at
FROM funnel('demo_request', 'opportunity', window => INTERVAL '30 days', output => 'people', status => 'dropped')
ORDER BY entered_at, person_id
LIMIT 15;
