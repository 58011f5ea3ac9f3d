-- Operator precedence as PostgreSQL 15's table gives it (issue 24): each line mixes operators of
-- different precedence without parentheses. The tests run it on both servers (tests/it/oracle.rs).
SELECT 1 IS DISTINCT FROM 2 AND true
SELECT 1 IS DISTINCT FROM 1 OR false
SELECT 1 IS NOT DISTINCT FROM 2 OR true
SELECT NULL IS NOT DISTINCT FROM NULL AND 1 = 1
SELECT true IS DISTINCT FROM 2 = 3
SELECT 2 = 2 IS DISTINCT FROM false
SELECT NOT 1 IS DISTINCT FROM 1
SELECT 1 + 1 IS NOT DISTINCT FROM 2 AND 3 > 2 OR false
SELECT 1 IS DISTINCT FROM NULL AND NULL IS NOT DISTINCT FROM NULL
SELECT NOT true AND false, NOT (true AND false), NOT false OR true
SELECT true OR false AND false, (true OR false) AND false
SELECT 1 + 2 * 3, (1 + 2) * 3, 2 ^ 3 ^ 2
SELECT -2 ^ 2, - 2 ^ 3, -(2 ^ 2), +3 ^ 2
SELECT -2 * 3, -2 + 3, 2 - -3, - 1.5::numeric(4,1), -'5'::int
SELECT 5 BETWEEN 1 AND 10 AND true, 5 NOT BETWEEN 6 AND 10 OR false
SELECT 'ab' LIKE 'a%' AND 'b' NOT LIKE 'a%', 'x' || 'y' = 'xy'
SELECT 1 IN (1, 2) AND 3 NOT IN (1, 2), NULL IS NULL AND 1 IS NOT NULL
SELECT true IS TRUE AND false IS NOT TRUE, NULL::boolean IS UNKNOWN OR false
SELECT 7 % 3 * 2, 7 - 3 - 2, 2 * 3 % 4, 10 / 3 * 3
SELECT 1 = 1 AND 2 = 2 OR 1 = 2 AND NOT 2 = 2
SELECT - -2, -(-3), - - - 3, 2 - -3
SELECT 1 < 2 = true
SELECT (1 < 2) = true, 1 = 1 AND 2 < 3, NOT 1 = 2
