-- How do people progress through the stages (awareness, consideration, decision, customer),
-- and where do they stop? Sankey edges between the furthest stages people reach; drop-off is
-- where they stop. source_node and target_node are the step-prefixed names a Sankey panel
-- (Grafana, Metabase) takes as-is.
SELECT source_node, target_node, users
FROM journey_paths(node => 'stage_reached', max_steps => 4)
ORDER BY depth, users DESC, source, target;
