-- Which channel brings the people who go on to buy? The funnel from any touch to a lead, an
-- opportunity and a purchase, in that order within 90 days, broken down by each person's entry
-- channel (their first touch on the stitched journey), one row per channel.
SELECT breakdown AS entry_channel,
       max(users) FILTER (WHERE step = 1) AS people,
       max(users) FILTER (WHERE step = 2) AS leads,
       max(users) FILTER (WHERE step = 3) AS opportunities,
       max(users) FILTER (WHERE step = 4) AS customers,
       round(100 * max(conversion_from_start) FILTER (WHERE step = 4), 2) AS pct_customers,
       round(max(median_seconds) FILTER (WHERE step = 4) / 86400, 1) AS median_days_to_buy
FROM funnel('is_touch IS TRUE', 'milestone = ''lead''', 'milestone = ''opportunity''', 'milestone = ''closed_won''',
            window => INTERVAL '90 days', by => 'channel', attribution => 'first_touch')
GROUP BY breakdown
ORDER BY customers DESC, people DESC, entry_channel;
