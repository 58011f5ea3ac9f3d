-- Which landing pages drive revenue? Each marketing touch lands on a page; purchases are credited
-- to the landing pages of their journey by time decay (half-life 7 days, back from the
-- purchase), with consecutive visits through the same page collapsed (the exposure transform).
-- Pages are compared by path, so a tracker's absolute URLs (https://site/pricing) and the
-- canonical table's paths (/pricing) read alike.
SELECT value AS landing_page,
       conversions AS purchases,
       revenue
FROM attribute('time_decay', by => 'regexp_replace(page_url, ''^[A-Za-z]+://[^/?#]*'', '''')',
               transforms => ARRAY['exposure'])
ORDER BY revenue DESC, landing_page;
