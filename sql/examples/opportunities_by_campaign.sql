-- Which campaigns create sales opportunities? The conversion is the opportunity milestone (a CRM
-- opportunity), credited over the touches before it by position-based and by Markov attribution
-- (which also learns from the journeys that never became an opportunity).
SELECT campaign,
       coalesce(sum(conversions) FILTER (WHERE model = 'position_based'), 0) AS opportunities_u_shaped,
       coalesce(sum(conversions) FILTER (WHERE model = 'markov'), 0) AS opportunities_markov,
       round(max(removal_effect), 4) AS markov_removal_effect
FROM attribute('position_based', 'markov', by => 'campaign', conversion => 'milestone = ''opportunity''')
GROUP BY campaign
ORDER BY opportunities_markov DESC, campaign;
