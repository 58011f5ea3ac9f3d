SELECT channel, count(*), sum(revenue) FROM events GROUP BY channel ORDER BY channel;
