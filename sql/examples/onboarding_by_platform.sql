-- Is onboarding harder on mobile? The share of each platform's new accounts that connect their
-- data (the step with the largest drop-off) and that reach their first report, within 14 days.
SELECT breakdown AS platform,
       max(users) FILTER (WHERE step = 1) AS accounts,
       round(100 * max(conversion_from_start) FILTER (WHERE step = 3), 1) AS pct_connected,
       round(100 * max(conversion_from_start) FILTER (WHERE step = 4), 1) AS pct_first_report
FROM funnel('account_created', 'email_verified', 'data_connected', 'first_report',
            source => 'app_events', person => 'user_id', window => INTERVAL '14 days', by => 'platform')
GROUP BY breakdown
ORDER BY accounts DESC, platform;
