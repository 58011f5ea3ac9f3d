-- Session functions and type formatting clients call on connect (psql, pgjdbc, Grafana, dbt).
SELECT format_type(23, -1), format_type(1043, 68), format_type(1700, 786438), format_type(1184, -1), format_type(1009, -1)
SELECT to_regtype('int4')::oid::int, to_regtype('text[]')::oid::int, to_regtype('hstore') IS NULL
SELECT 'int4'::regtype::oid::int, 'timestamptz'::regtype::oid::int
SELECT quote_ident('select'), quote_ident('a"b'), quote_ident('_x1')
SELECT parse_ident('journey."My Table"')
SELECT array_lower(ARRAY[1,2,3], 1), array_upper(ARRAY[1,2,3], 1), array_upper(ARRAY[]::int[], 1) IS NULL
SELECT current_setting('DateStyle'), current_setting('IntervalStyle'), current_setting('standard_conforming_strings')
SELECT current_setting('no_such_setting')
SELECT current_setting('no_such_setting', true) IS NULL
SELECT pg_size_pretty(0::bigint), pg_size_pretty(123456789::bigint), pg_size_pretty(9876543210987::bigint)
SELECT date_trunc('month', timestamp '2024-07-19 13:45:10'), date_trunc('week', timestamp '2024-07-19 13:45:10')
SELECT CAST(extract(dow from timestamp '2024-07-19 13:45:10') AS integer), CAST(extract(doy from timestamp '2024-07-19 13:45:10') AS integer)
SELECT interval '1 day 02:03:04', interval '-3 hours', interval '14 months'
SELECT 1.50::numeric(10,2), 2.5::float8, 1e20::float8, -0.000123::float8
SELECT true, false, NULL::boolean IS NULL
SELECT date '2024-02-29' + 1, date '2024-03-01' - date '2024-02-01'
SELECT timestamp '2024-01-01 00:00:00' + interval '1 month 2 days'
SELECT split_part('a/b/c', '/', 2), split_part('a/b/c', '/', 5), replace('aXbX', 'X', '-')
SELECT coalesce(NULL, 'x'), nullif(1, 1) IS NULL, greatest(1, 5, 3), least(2, 0)
SELECT 1 / 0
SELECT 'abc'::int
SELECT round(2.5), round(-2.5), round(2.345, 2), trunc(2.99)
SELECT to_char(timestamp '2024-07-19 13:45:10', 'YYYY-MM-DD')
SELECT pg_is_other_temp_schema(2200), pg_table_is_visible(0)
SELECT quote_ident('user'), quote_ident('between'), quote_ident('left'), quote_ident('name'), quote_ident('events'), quote_ident('a$b')
SHOW no_such_setting
SET server_version = '1'
SELECT pg_table_is_visible('pg_class'::regclass)
SELECT 'abc' || 'def', length('héllo'), lower('ÀB'), upper('abc')
SELECT 7 / 2, 7 % 3, -7 / 2, 7.5 / 2.5 > 2
SELECT '1 day 02:03:04'::interval, CAST('-01:30' AS interval), interval '2 hours 30 minutes'
SELECT to_char(timestamp '2024-07-09 08:05:03.25', 'FMDD/FMMM/YY "at" HH12:MI AM, Dy DD Mon YYYY, DDD, IW, MS')
SELECT to_char(date '2024-07-09', 'YYYY-MM-DD HH24:MI:SS'), to_char(timestamptz '2024-07-09 23:30:00+00', 'YYYY-MM-DD HH24:MI')
SELECT to_char(NULL::timestamp, 'YYYY') IS NULL
SET no_such_setting = 1
SELECT to_char(timestamp '2024-07-09 20:05:03', 'FMMonth FMDay, HH12 pm')
-- TimeZone: instants shown with the zone's offset, truncated and formatted in its wall clock.
SET TimeZone = 'Europe/Paris'
SHOW TimeZone
SELECT timestamptz '2024-07-01 12:00:00+00', timestamptz '2024-01-15 12:00:00+00'
SELECT timestamptz '2024-07-01 12:00', timestamp '2024-07-01 12:00'
SELECT date_trunc('day', timestamptz '2024-07-01 23:30:00+00'), date_trunc('month', timestamptz '2024-06-30 22:30:00+00')
SELECT CAST(extract(hour from timestamptz '2024-07-01 23:30:00+00') AS integer), CAST(extract(day from timestamptz '2024-07-01 23:30:00+00') AS integer)
SELECT to_char(timestamptz '2024-07-01 23:30:00+00', 'YYYY-MM-DD HH24:MI')
SELECT timestamptz '2024-07-01 12:00:00+00' = timestamptz '2024-07-01 14:00:00+02'
SELECT timestamptz '2024-07-01 10:00:00' < timestamptz '2024-07-01 09:00:00+00'
SET TimeZone = 'America/New_York'
SELECT timestamptz '2024-01-15 12:00:00+00', date_trunc('month', timestamptz '2024-02-01 03:00:00+00')
SELECT age(timestamptz '2024-03-01 02:00:00+00', timestamptz '2024-02-01 03:00:00+00')
SET TimeZone = 'Mars/Olympus_Mons'
SET TIME ZONE 'Asia/Kathmandu'
SELECT timestamptz '2024-07-01 12:00:00+00'
SET TimeZone = 'UTC'
SELECT timestamptz '2024-07-01 12:00:00+00', date_trunc('day', timestamptz '2024-07-01 23:30:00+00')
SHOW DateStyle
SHOW search_path
SHOW TRANSACTION ISOLATION LEVEL
SET DateStyle = 'ISO, DMY'
SHOW DateStyle
SET DateStyle = 'ISO'
SHOW DateStyle
SET DateStyle = 'Bogus'
RESET DateStyle
SHOW DateStyle
SET IntervalStyle = 'postgres'
SET IntervalStyle = 'bogus'
SHOW IntervalStyle
SET TimeZone = 'Europe/Paris'
SELECT CAST(timestamptz '2024-07-01 23:30:00+00' AS text) AS t
SELECT 'at ' || timestamptz '2024-07-01 23:30:00+00' AS t, concat('c ', timestamptz '2024-07-01 23:30:00+00') AS c
SELECT CAST(timestamptz '2024-07-01 23:30:00+00' AS timestamp), CAST(timestamptz '2024-01-15 12:00:00+00' AS date)
SELECT x, CAST(x AS timestamp) AS local FROM (SELECT timestamptz '2024-07-01 23:30:00+00' AS x) t
SET TimeZone = 'Pacific/Kiritimati'
SELECT age(timestamp '2000-01-01') AS a, age(date '2020-02-29') AS d, age(timestamptz '2000-01-01 00:00:00+00') AS z
RESET TimeZone
