-- Which onboarding step loses the most people? The product's onboarding funnel over the
-- app_events table (trial accounts, within 14 days of account creation): per step, the people
-- reaching it, how many of the previous step's people drop off before it and what share that
-- is, and the median and 90th-percentile hours from the step before; the worst step first.
SELECT step, step_name, users, drop_off,
       round(100 * drop_off_rate, 1) AS pct_lost,
       round(median_seconds / 3600, 1) AS median_hours,
       round(p90_seconds / 3600, 1) AS p90_hours
FROM funnel('account_created', 'email_verified', 'data_connected', 'first_report', 'teammate_invited',
            source => 'app_events', person => 'user_id', window => INTERVAL '14 days')
ORDER BY drop_off_rate DESC, step;
