-- Statements run on journeydb and on PostgreSQL 15 (tests/it/oracle.rs): the answers, as text,
-- must be the same; where PostgreSQL fails, journeydb must fail with the same SQLSTATE.
-- One statement per line.
SELECT format('%I.%I', 'public', 'events')
SELECT format('%I.%I', 'My Schema', 'a"b')
SELECT format('%s|%s|', NULL, 'x')
SELECT format('%L, %L', 'O''Reilly', NULL)
SELECT format('%L', 'back\slash')
SELECT format('%2$s %1$s %s', 'a', 'b', 'c')
SELECT format('[%5s][%-5s]', 'ab', 'cd')
SELECT format('[%*s][%-*s]', 4, 'x', 3, 'y')
SELECT format('[%1$-*3$s]', 'x', 'unused', 4)
SELECT format('100%% of %s', 'events')
SELECT format('"%s"."%s"', 'journey', 'touchpoints')
SELECT format('%s and %s', true, 42)
SELECT format('%s %s', 'only one')
SELECT format('%x', 'a')
SELECT format('abc %', 'a')
SELECT format('%0$s', 'a')
SELECT format('%I', NULL)
SELECT format(NULL, 'a') IS NULL
SELECT quote_literal('it''s'), quote_literal('a\b'), quote_ident('Mixed Case'), quote_ident('plain')
SELECT age(timestamp '2001-04-10 00:00:00', timestamp '1957-06-13 00:00:00')
SELECT age(timestamp '1957-06-13 00:00:00', timestamp '2001-04-10 00:00:00')
SELECT age(timestamp '2024-03-01 00:00:00', timestamp '2024-01-31 12:00:00')
SELECT age(timestamp '2024-03-11 23:59:59', timestamp '2024-03-01 00:00:00')
SELECT age(timestamp '2023-03-31 10:00:00', timestamp '2023-02-28 11:30:00')
SELECT age(timestamptz '2024-12-25 00:00:00+00', timestamptz '2020-02-29 06:00:00+00')
SELECT CAST(extract(year from age(timestamp '2024-03-01 00:00:00', timestamp '1999-06-13 00:00:00')) AS integer)
SELECT timezone('Europe/Paris', timestamptz '2024-07-01 12:00:00+00')
SELECT timezone('America/New_York', timestamp '2024-01-15 09:30:00')
SELECT timezone('UTC', timestamptz '2024-01-15 09:30:00+00')
SELECT timezone('Mars/Olympus_Mons', timestamptz '2024-01-15 09:30:00+00')
SELECT make_time(8, 15, 23.5)
SELECT make_time(23, 59, 59)
SELECT make_time(25, 0, 0)
SELECT substring('Thomas' from '...$'), substring('Thomas' from 'T(h)o'), substring('Thomas' from 2 for 3)
SELECT substring('Thomas' from 'x+') IS NULL
SELECT substring('/pricing/plans' from '^/([a-z]+)')
SELECT to_regclass('no_such_table') IS NULL
SELECT 'no_such_table'::regclass
SELECT 'pg_class'::regclass = 'pg_catalog.pg_class'::regclass
SELECT 'pg_class'::regclass::oid = (SELECT oid FROM pg_class WHERE relname = 'pg_class')
SELECT count(*) FROM information_schema.table_constraints WHERE table_schema = 'public'
SELECT count(*) FROM pg_enum
SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = 'no_such_schema'
-- A set-returning function's column is named after its alias, or after the function.
SELECT * FROM generate_series(1, 3)
SELECT * FROM generate_series(1, 3) AS i
SELECT i * 2 AS twice FROM generate_series(1, 3) AS i ORDER BY i DESC
SELECT n FROM generate_series(2, 4) AS g(n)
SELECT trim(s[i]) AS part FROM generate_series(1, 2) AS i, string_to_array('x, y', ',') s ORDER BY i
-- IN subqueries in a select list, ORDER BY and GROUP BY, with their three-valued answers.
SELECT 1 IN (SELECT 1), 3 IN (SELECT 1 UNION ALL SELECT 2), NULL::int IN (SELECT 1), 3 IN (SELECT 1 UNION ALL SELECT NULL), 1 IN (SELECT 1 UNION ALL SELECT NULL), NULL::int IN (SELECT 1 WHERE false)
SELECT 3 NOT IN (SELECT 1 UNION ALL SELECT 2), 3 NOT IN (SELECT 1 UNION ALL SELECT NULL), 'b' NOT IN (SELECT 'a')
SELECT x, x IN (SELECT 2 UNION ALL SELECT 3) AS hit FROM generate_series(1, 4) AS x ORDER BY x IN (SELECT 2 UNION ALL SELECT 3), x
SELECT x % 3 IN (SELECT 0) AS divisible, count(*) FROM generate_series(1, 10) AS x GROUP BY x % 3 IN (SELECT 0) ORDER BY 1
SELECT CASE WHEN 'public' IN (SELECT trim(s[i]) FROM generate_series(1, 2) AS i, string_to_array('"$user", public', ',') s) THEN 'visible' ELSE 'qualified' END
-- Client start-up and pool-reset calls: regtype/regclass names, void functions, no-op statements.
SELECT 'int4'::regtype::text, 'timestamptz'::regtype::text, 'pg_class'::regclass::text
SELECT current_catalog = current_database(), pg_backend_pid() > 0, pg_is_in_recovery()
SELECT pg_advisory_unlock_all()
CLOSE ALL
UNLISTEN *
CLOSE no_such_cursor
SELECT pg_type_is_visible(23), pg_type_is_visible(1184), pg_type_is_visible(999999)
SELECT pg_get_indexdef(0) IS NULL, pg_get_constraintdef(0) IS NULL, pg_get_viewdef(0) IS NULL
SELECT pg_cancel_backend(0), pg_terminate_backend(0)
SELECT count(*) FROM information_schema.routines WHERE routine_schema = 'no_such_schema'
SELECT count(*) FROM information_schema.role_table_grants WHERE table_schema = 'no_such_schema'
SELECT timestamptz '2024-07-01 12:00:00+00' AT TIME ZONE 'Europe/Paris', timestamp '2024-07-01 12:00:00' AT TIME ZONE 'Europe/Paris'
SELECT timestamptz '2024-01-15 12:00:00+00' AT TIME ZONE 'America/New_York' AS ny
-- Casts to text write values as PostgreSQL does.
SELECT CAST(timestamptz '2024-07-01 12:00:00+00' AS text), CAST(timestamp '2024-07-01 12:00:00.5' AS text), CAST(interval '1 day 2 hours' AS text), CAST(ARRAY[1,2] AS text)
SELECT timestamptz '2024-07-01 12:00:00+00'::varchar AS v, CAST(date '2024-07-01' AS text) AS d, CAST(1.5 AS text) AS f, CAST(true AS text) AS b
-- Timestamp text without seconds compared with timestamps.
SELECT timestamp '2024-01-01 00:00:30' > '2024-01-01 00:00' AS gt, timestamp '2024-01-01 00:00:30' BETWEEN '2024-01-01 00:00' AND '2024-01-01 00:01' AS b, timestamp '2024-01-01 12:00' IN ('2024-01-01 12:00', '2024-01-02 00:00') AS i, timestamptz '2024-01-01 12:00+00' = '2024-01-01 13:00+01' AS z
-- So do the implicit casts of text || value, concat and concat_ws.
SELECT 'at ' || timestamp '2024-01-02 03:04:05' AS a, 'at ' || timestamptz '2024-01-02 03:04:05+00' AS b, 'i ' || interval '1 day' AS i, timestamp '2024-01-02 03:04:05' || ' end' AS e
SELECT concat('x', timestamp '2024-01-02 03:04:05', interval '2 hours') AS c, concat_ws('/', 'a', interval '3 days', date '2024-01-02') AS w, 'd ' || date '2024-01-02' AS d
SELECT 1 AS a, 2 AS a, x, x FROM (SELECT 3 AS x) t
