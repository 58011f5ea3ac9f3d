-- Which campaigns create opportunities at which accounts? Each account is one journey: every
-- person's touches at the account, merged in time order. Each new deal's opportunity (its first
-- change to an opportunity stage) is credited linearly to the account's touches of the 90 days
-- before it, by campaign; the accounts with the most opportunities first.
WITH opportunities AS (
  SELECT account_id, deal_id, event_time AS opened_at
  FROM journey.events
  WHERE milestone = 'opportunity' AND account_id IS NOT NULL
),
journeys AS (
  SELECT o.account_id, o.deal_id, t.event_time, coalesce(t.campaign, '(' || t.channel || ')') AS campaign
  FROM opportunities o
  JOIN journey.touchpoints t
    ON t.account_id = o.account_id
   AND t.event_time <= o.opened_at
   AND t.event_time >= o.opened_at - INTERVAL '90 days'
),
credits AS (
  SELECT account_id, campaign,
         attribute('linear') OVER (PARTITION BY account_id, deal_id ORDER BY event_time, campaign) AS credit
  FROM journeys
),
top_accounts AS (
  SELECT account_id, count(*) AS opportunities FROM opportunities GROUP BY account_id
  ORDER BY opportunities DESC, account_id LIMIT 5
)
SELECT c.account_id, a.opportunities, c.campaign, round(sum(c.credit), 2) AS opportunities_credited
FROM credits c JOIN top_accounts a USING (account_id)
GROUP BY c.account_id, a.opportunities, c.campaign
ORDER BY a.opportunities DESC, c.account_id, opportunities_credited DESC, c.campaign;
