-- What predicts a purchase? Among people who downloaded content, the events they did and the
-- channels that reached them between that download and buying (or 180 days without buying):
-- how many buyers and non-buyers had each, the odds ratio with its 95% interval, and the
-- p-value; the surest first.
SELECT candidate, value, converters AS buyers, non_converters AS non_buyers,
       round(odds_ratio, 2) AS odds_ratio, round(ci_low, 2) AS ci_low, round(ci_high, 2) AS ci_high,
       round(p_value, 4) AS p_value, correlation
FROM funnel_correlation('content_download', 'purchase', window => INTERVAL '180 days',
                        candidates => ARRAY['event_name', 'channel'], top => 10);
