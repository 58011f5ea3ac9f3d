SELECT * FROM journey_paths(max_steps => 3) ORDER BY 1 LIMIT 20;
