-- Which sequences of channels lead to a purchase? The most frequent whole paths, up to each
-- person's first purchase, over the stitched journey (anonymous visits included).
SELECT rank, path, steps, users
FROM journey_paths(node => 'CASE WHEN event_name = ''purchase'' THEN ''purchase'' ELSE channel END',
                   end => 'purchase', max_steps => 4, top => 10, output => 'paths')
ORDER BY rank;
