-- Which campaigns bring the revenue? Every purchase is credited over its journey (the buyer's
-- touches since their previous purchase, at most 90 days back) by position-based (U-shaped,
-- 40/20/40) attribution, per campaign; touches without a campaign are (none), purchases without
-- any touch (direct). The credits add up exactly to the purchases and their revenue.
SELECT campaign,
       conversions AS purchases,
       revenue,
       round(share, 3) AS share_of_purchases
FROM attribute('position_based', by => 'campaign')
ORDER BY revenue DESC, campaign;
