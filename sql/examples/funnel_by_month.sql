-- Is the funnel improving month by month? Page view, then a content download, then a demo
-- request within 90 days, per month of entry: the people at each step and the share of the
-- month's entrants who got there.
SELECT period AS month, step, step_name, users, round(100 * conversion_from_start, 1) AS pct_of_entrants
FROM funnel('page_view', 'content_download', 'demo_request', trend => 'month', window => INTERVAL '90 days')
ORDER BY month, step;
