-- Which emails drive revenue? Purchases are credited over the whole journey (every channel
-- competes for the credit), linear per touch; the email touches are credited per campaign, the
-- other touches grouped under their channel.
SELECT value AS touch,
       conversions AS purchases,
       revenue
FROM attribute('linear', by => 'CASE WHEN channel = ''Email'' THEN ''Email: '' || coalesce(campaign, ''(none)'') ELSE channel END')
ORDER BY value LIKE 'Email:%' DESC, revenue DESC, value;
