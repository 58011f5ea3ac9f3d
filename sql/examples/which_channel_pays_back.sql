-- Which channel pays back? Revenue credited to each paid channel under three models, over what
-- it cost in ad spend (the demo's `ad_spend` table: day, channel, source, medium, campaign,
-- spend) on the report's days: ROAS is credited revenue per dollar spent. Last touch sees
-- little return on Display and Paid Social, which find people early; linear and Markov credit
-- them with the journeys they start. Channels without spend (Direct, Email, Organic) are left
-- out here; the report keeps them with NULL spend and ROAS.
SELECT channel,
       max(spend) AS spend,
       round(max(roas) FILTER (WHERE model = 'last_touch')::numeric, 2) AS roas_last_touch,
       round(max(roas) FILTER (WHERE model = 'linear')::numeric, 2) AS roas_linear,
       round(max(roas) FILTER (WHERE model = 'markov')::numeric, 2) AS roas_markov,
       max(cost_per_conversion) FILTER (WHERE model = 'linear') AS cost_per_conversion_linear
FROM attribute('last_touch', 'linear', 'markov', spend => 'ad_spend')
WHERE spend IS NOT NULL
GROUP BY channel
ORDER BY roas_markov DESC, channel;
