-- Which campaigns pay back? The same by campaign (paid search keywords, social and display
-- campaigns), under position-based credit (40% to the first touch, 40% to the last): spend,
-- credited revenue and conversions, ROAS and cost per conversion.
SELECT campaign, spend, revenue, conversions,
       round(roas::numeric, 2) AS roas, cost_per_conversion
FROM attribute('position_based', by => 'campaign', spend => 'ad_spend')
WHERE spend IS NOT NULL
ORDER BY roas DESC, campaign;
