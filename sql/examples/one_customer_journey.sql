-- One customer's journey under several attribution models: an organic search visit, a paid
-- search ad that leads to a form fill (the lead), a live chat (the opportunity) and a phone
-- call that closes the sale, both recorded as Direct. Each column is one model: the share of
-- the sale (in %) each touch gets; every column adds up to 100.
WITH touches (ts, touch, channel, milestone) AS (VALUES
  (TIMESTAMP '2025-03-01 09:12:00', 'organic search visit', 'Organic Search', CAST(NULL AS VARCHAR)),
  (TIMESTAMP '2025-03-09 14:40:00', 'paid search ad, form fill', 'Paid Search', 'lead'),
  (TIMESTAMP '2025-03-12 10:05:00', 'live chat', 'Direct', 'opportunity'),
  (TIMESTAMP '2025-03-20 16:30:00', 'phone call, sale', 'Direct', NULL))
SELECT touch, channel,
       round(100 * attribute('first_touch') OVER w, 1) AS first_touch,
       round(100 * attribute('last_touch') OVER w, 1) AS last_touch,
       round(100 * attribute('last_non_direct', channel) OVER w, 1) AS last_non_direct,
       round(100 * attribute('linear') OVER w, 1) AS linear,
       round(100 * attribute('position_based') OVER w, 1) AS u_shaped,
       round(100 * attribute('time_decay', ts) OVER w, 1) AS time_decay,
       round(100 * attribute('w_shaped', milestone) OVER w, 1) AS w_shaped,
       round(100 * attribute('j_shaped') OVER w, 1) AS j_shaped
FROM touches
WINDOW w AS (ORDER BY ts)
ORDER BY ts;
