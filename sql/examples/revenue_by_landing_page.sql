-- Which landing pages drive revenue? Each marketing touch lands on a page; purchases are credited
-- to the landing pages of their journey by time decay (half-life 7 days, back from the
-- purchase), with consecutive visits through the same page collapsed (the exposure transform).
SELECT page_url AS landing_page,
       conversions AS purchases,
       revenue
FROM attribute('time_decay', by => 'page_url', transforms => ARRAY['exposure'])
ORDER BY revenue DESC, landing_page;
