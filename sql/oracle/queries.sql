-- Query semantics the generated corpus (tests/it/differential.rs) found wrong (issue 24):
-- INTERSECT ALL and EXCEPT ALL count copies; NOT IN over a subquery is NULL, not true, for a
-- NULL probe or a subquery yielding NULL. Run on both servers by tests/it/oracle.rs.
SELECT x FROM (VALUES (1), (1), (1), (2), (NULL), (NULL)) AS l(x) INTERSECT ALL SELECT y FROM (VALUES (1), (1), (NULL), (3)) AS r(y) ORDER BY 1
SELECT x FROM (VALUES (1), (1), (1), (2), (NULL), (NULL)) AS l(x) EXCEPT ALL SELECT y FROM (VALUES (1), (NULL), (3)) AS r(y) ORDER BY 1
SELECT x, s FROM (VALUES (1, 'a'), (1, 'a'), (1, 'b')) AS l(x, s) EXCEPT ALL SELECT 1, 'a' ORDER BY 1, 2
SELECT count(*) FROM (SELECT x FROM (VALUES (1), (1), (2)) AS l(x) INTERSECT ALL SELECT 1 UNION ALL SELECT 5) AS u
SELECT x FROM (VALUES (1), (2), (NULL)) AS t(x) WHERE x NOT IN (SELECT y FROM (VALUES (1), (NULL)) AS s(y)) ORDER BY 1
SELECT x FROM (VALUES (1), (2), (NULL)) AS t(x) WHERE x NOT IN (SELECT y FROM (VALUES (1)) AS s(y)) ORDER BY 1
SELECT x FROM (VALUES (1), (2), (NULL)) AS t(x) WHERE x NOT IN (SELECT y FROM (VALUES (1)) AS s(y) WHERE y > 5) ORDER BY 1
SELECT x FROM (VALUES (1), (2), (NULL)) AS t(x) WHERE x > 0 AND x NOT IN (SELECT max(y) FROM (VALUES (1), (NULL)) AS s(y)) ORDER BY 1
SELECT x FROM (VALUES (1), (2), (3)) AS t(x) WHERE x NOT IN (SELECT y FROM (VALUES (1), (NULL)) AS s(y) WHERE y IS NOT NULL) ORDER BY 1
-- Correlated subqueries DataFusion does not decorrelate: a condition on the outer row that is
-- not an equality, the outer row read in what is aggregated or selected.
SELECT x, (SELECT count(*) FROM (VALUES (1), (2), (3)) AS r(y) WHERE y < x) AS n FROM (VALUES (1), (3), (NULL)) AS l(x) ORDER BY 1
SELECT x FROM (VALUES (1), (3), (4), (NULL)) AS l(x) WHERE x > (SELECT count(*) FROM (VALUES (1), (2), (3)) AS r(y) WHERE y < x) ORDER BY 1
SELECT x, (SELECT max(y + x) FROM (VALUES (1), (2)) AS r(y) WHERE y <> x) AS m FROM (VALUES (1), (2), (NULL)) AS l(x) ORDER BY 1
SELECT x, (SELECT sum(y) FROM (VALUES (1), (2), (NULL)) AS r(y) WHERE y >= x) AS s FROM (VALUES (0), (2), (5)) AS l(x) ORDER BY 1
SELECT x FROM (VALUES (1), (2), (3)) AS l(x) WHERE x IN (SELECT y + x - 1 FROM (VALUES (1), (2)) AS r(y) WHERE y < x) ORDER BY 1
SELECT x FROM (VALUES (1), (2), (NULL)) AS l(x) WHERE x NOT IN (SELECT y FROM (VALUES (1), (NULL)) AS r(y) WHERE y = x) ORDER BY 1
SELECT x FROM (VALUES (1), (2), (3), (NULL)) AS l(x) WHERE x NOT IN (SELECT y FROM (VALUES (1), (5)) AS r(y) WHERE y <= x) ORDER BY 1
SELECT x, (SELECT y * 10 FROM (VALUES (1), (2)) AS r(y) WHERE y = x) AS v FROM (VALUES (1), (2), (3), (NULL)) AS l(x) ORDER BY 1
SELECT x, (SELECT y FROM (VALUES (1), (2)) AS r(y) WHERE y <= x) AS v FROM (VALUES (1), (2)) AS l(x) ORDER BY 1
-- NOT IN over a CTE from a derived table's WHERE (the CTE is the statement's): the subquery is
-- not correlated, and the outer column is not the subquery's column of the same name.
WITH s AS (SELECT * FROM (VALUES ('a', 1), ('b', 2), ('c', NULL)) AS v(p, t)), conv AS (SELECT p FROM (VALUES ('a')) AS w(p)) SELECT * FROM (SELECT p, true AS converted FROM conv UNION ALL SELECT p, false FROM s WHERE p NOT IN (SELECT p FROM conv)) AS u ORDER BY 1, 2
WITH conv AS (SELECT p FROM (VALUES ('a'), (NULL)) AS w(p)) SELECT count(*) FROM (SELECT p FROM (VALUES ('a'), ('b')) AS s(p) WHERE p NOT IN (SELECT p FROM conv)) AS u
SELECT p FROM (VALUES ('a', 1), ('b', 2), ('c', 3)) AS s(p, t) WHERE p NOT IN (SELECT p FROM (VALUES ('a', 1), ('c', 9)) AS r(p, t) WHERE r.t = s.t) ORDER BY 1
