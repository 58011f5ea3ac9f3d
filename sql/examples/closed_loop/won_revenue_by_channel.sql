-- Which channels bring the won revenue, and which pay back? With the CRM joined in, the
-- conversions are the won deals (a deal's first change to closedwon, worth its amount), credited
-- to the marketing touches before them under first touch, W-shaped (first touch, the lead and
-- the opportunity milestones, the touch before the win) and Markov, with the paid channels' ad
-- spend beside them.
SELECT model, channel, round(conversions, 2) AS deals_won, revenue AS won_revenue, spend,
       round(roas, 2) AS roas
FROM attribute('first_touch', 'w_shaped', 'markov', spend => 'ad_spend')
ORDER BY model, won_revenue DESC, channel;
