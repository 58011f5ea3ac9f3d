-- How much revenue does each channel drive under each model? Every model side by side, from
-- first touch to the data-driven ones: Markov (removal effects solved exactly over converting
-- and non-converting journeys) and Shapley. Each column adds up to the same total revenue;
-- 0 where a model gives a channel nothing (first touch never credits a Direct visit here).
SELECT channel,
       coalesce(sum(revenue) FILTER (WHERE model = 'first_touch'), 0) AS first_touch,
       coalesce(sum(revenue) FILTER (WHERE model = 'last_touch'), 0) AS last_touch,
       coalesce(sum(revenue) FILTER (WHERE model = 'last_non_direct'), 0) AS last_non_direct,
       coalesce(sum(revenue) FILTER (WHERE model = 'linear'), 0) AS linear,
       coalesce(sum(revenue) FILTER (WHERE model = 'position_based'), 0) AS u_shaped,
       coalesce(sum(revenue) FILTER (WHERE model = 'time_decay'), 0) AS time_decay,
       coalesce(sum(revenue) FILTER (WHERE model = 'w_shaped'), 0) AS w_shaped,
       coalesce(sum(revenue) FILTER (WHERE model = 'shapley'), 0) AS shapley,
       coalesce(sum(revenue) FILTER (WHERE model = 'markov'), 0) AS markov
FROM attribute('all')
GROUP BY channel
ORDER BY markov DESC, channel;
