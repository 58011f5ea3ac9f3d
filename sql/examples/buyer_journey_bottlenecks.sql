-- Where is the bottleneck in the buyer journey? People through visit, engagement, lead,
-- opportunity and customer, in that order, within 90 days of their first visit (the funnel
-- report over the stitched journey): per step, the people reaching it, the share of the previous
-- step, how many drop off before it, and the median and 90th-percentile days from the step before.
SELECT step,
       CASE step WHEN 1 THEN 'visit' WHEN 2 THEN 'engaged' WHEN 3 THEN 'lead'
                 WHEN 4 THEN 'opportunity' ELSE 'customer' END AS name,
       users AS people,
       round(100 * conversion_from_previous, 1) AS pct_of_previous,
       drop_off,
       round(median_seconds / 86400, 1) AS median_days,
       round(p90_seconds / 86400, 1) AS p90_days
FROM funnel('page_view',
            'event_name IN (''email_click'', ''content_download'', ''webinar_signup'')',
            'milestone = ''lead''',
            'milestone = ''opportunity''',
            'milestone = ''closed_won''',
            window => INTERVAL '90 days')
ORDER BY step;
