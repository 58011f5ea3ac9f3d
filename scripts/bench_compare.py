#!/usr/bin/env python3
"""Runs the same queries on the same Parquet files in journeydb (over the wire, psycopg) and in
DuckDB (in process), and prints the ratio DuckDB time / journeydb time (above 1: journeydb is
faster).

    scripts/bench.sh                 # sets up a venv, builds the release binary, runs this
    scripts/bench_compare.py --events 1000000 10000000

Each query runs once to warm up, then --runs times; the median is reported. The data is made
by `journeydb demo` (deterministic, seed 42) under bench-data/ and reused when present.
"""
import argparse
import csv
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "journeydb-target")) / "release" / "journeydb"

# name -> (journeydb SQL, DuckDB SQL): the same question, asked the way each engine allows.
QUERIES = {
    "revenue_by_channel": (
        "SELECT channel, count(*) AS events, sum(revenue) AS revenue FROM events GROUP BY channel ORDER BY channel",
    ) * 2,
    "per_user": (
        "SELECT user_id, count(*) AS events, min(event_time) AS first_seen, max(event_time) AS last_seen, "
        "sum(revenue) AS revenue FROM events WHERE user_id IS NOT NULL GROUP BY user_id "
        "ORDER BY revenue DESC NULLS LAST, user_id LIMIT 10",
    ) * 2,
    # Sessions (30-minute gap) per cookie, summed: sessionize() against lag() in DuckDB.
    "sessionize": (
        "SELECT sum(s) FROM (SELECT max(session) AS s FROM (SELECT anonymous_id, "
        "sessionize(event_time) OVER (PARTITION BY anonymous_id ORDER BY event_time) AS session "
        "FROM events WHERE anonymous_id IS NOT NULL) GROUP BY anonymous_id)",
        "SELECT sum(CASE WHEN prev IS NULL OR event_time - prev > INTERVAL '30 minutes' THEN 1 ELSE 0 END) FROM ("
        "SELECT event_time, lag(event_time) OVER (PARTITION BY anonymous_id ORDER BY event_time) AS prev "
        "FROM events WHERE anonymous_id IS NOT NULL)",
    ),
}

# journey_paths: Sankey edges (top 10 nodes per depth + (other), drop-off, 5 steps) and the top
# whole paths, per cookie, against the same computation in DuckDB SQL (lead() to collapse
# repeats, row_number() for depths, a ranked join for the top nodes, lead() again for edges).
_DUCK_STEPS = (
    "WITH o AS (SELECT anonymous_id AS p, event_time AS t, event_name AS n, "
    "lead(event_name) OVER (PARTITION BY anonymous_id ORDER BY event_time, event_name) AS nx "
    "FROM events WHERE anonymous_id IS NOT NULL AND event_name IS NOT NULL), "
    "c AS (SELECT p, t, n, row_number() OVER (PARTITION BY p ORDER BY t, n) AS d FROM o WHERE nx IS NULL OR nx <> n), "
    "s AS (SELECT * FROM c WHERE d <= 5) "
)
QUERIES["paths_edges"] = (
    "SELECT depth, source, target, users, paths, round(avg_seconds, 3) FROM journey_paths(source => 'events', "
    "person => 'anonymous_id', max_steps => 5, top => 10) ORDER BY depth, users DESC, paths DESC, source, target",
    _DUCK_STEPS
    + ", top AS (SELECT d, n FROM (SELECT d, n, row_number() OVER (PARTITION BY d ORDER BY count(*) DESC, n) AS rk "
    "FROM s GROUP BY d, n) WHERE rk <= 10), "
    "m AS (SELECT s.p, s.t, s.d, CASE WHEN top.n IS NULL THEN '(other)' ELSE s.n END AS n FROM s LEFT JOIN top USING (d, n)), "
    "e AS (SELECT d, n AS source, coalesce(lead(n) OVER w, CASE WHEN d < 5 THEN '(drop-off)' END) AS target, p, "
    "(epoch_us(lead(t) OVER w) - epoch_us(t)) / 1e6 AS secs FROM m WINDOW w AS (PARTITION BY p ORDER BY d)) "
    "SELECT d, source, target, count(DISTINCT p) AS users, count(*) AS paths, round(avg(secs), 3) FROM e "
    "WHERE target IS NOT NULL GROUP BY ALL ORDER BY d, users DESC, paths DESC, source, target",
)
# The same edges over the stitched journey model (journey.events: cookies tied to users) against
# DuckDB doing the stitching too.
QUERIES["paths_journey"] = (
    "SELECT depth, source, target, users, paths FROM journey_paths(max_steps => 5, top => 10) "
    "ORDER BY depth, users DESC, paths DESC, source, target",
    "WITH ids AS (SELECT anonymous_id, min(user_id) AS u FROM events WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL "
    "GROUP BY anonymous_id), j AS (SELECT coalesce(e.user_id, ids.u, e.anonymous_id) AS p, e.event_time AS t, "
    "e.event_name AS n FROM events e LEFT JOIN ids ON e.anonymous_id = ids.anonymous_id), "
    "o AS (SELECT p, t, n, lead(n) OVER (PARTITION BY p ORDER BY t, n) AS nx FROM j WHERE p IS NOT NULL AND n IS NOT NULL), "
    "c AS (SELECT p, t, n, row_number() OVER (PARTITION BY p ORDER BY t, n) AS d FROM o WHERE nx IS NULL OR nx <> n), "
    "s AS (SELECT * FROM c WHERE d <= 5), "
    "top AS (SELECT d, n FROM (SELECT d, n, row_number() OVER (PARTITION BY d ORDER BY count(*) DESC, n) AS rk "
    "FROM s GROUP BY d, n) WHERE rk <= 10), "
    "m AS (SELECT s.p, s.t, s.d, CASE WHEN top.n IS NULL THEN '(other)' ELSE s.n END AS n FROM s LEFT JOIN top USING (d, n)), "
    "e AS (SELECT d, n AS source, coalesce(lead(n) OVER w, CASE WHEN d < 5 THEN '(drop-off)' END) AS target, p "
    "FROM m WINDOW w AS (PARTITION BY p ORDER BY d)) "
    "SELECT d, source, target, count(DISTINCT p) AS users, count(*) AS paths FROM e "
    "WHERE target IS NOT NULL GROUP BY ALL ORDER BY d, users DESC, paths DESC, source, target",
)
# window_funnel: a 3-step funnel per cookie within 7 days, the level histogram. DuckDB: the same
# latest-anchor dynamic programme with ASOF joins; chDB: ClickHouse's windowFunnel.
_FUNNEL_STEPS = ("page_view", "email_click", "form_submit")
_DUCK_FUNNEL_LEVELS = (
    "WITH e AS (SELECT anonymous_id AS p, epoch(event_time) AS t, event_name AS n FROM events "
    "WHERE anonymous_id IS NOT NULL), "
    f"s1 AS (SELECT p, t FROM e WHERE n = '{_FUNNEL_STEPS[0]}'), s2 AS (SELECT p, t FROM e WHERE n = '{_FUNNEL_STEPS[1]}'), "
    f"s3 AS (SELECT p, t FROM e WHERE n = '{_FUNNEL_STEPS[2]}'), "
    "l2 AS (SELECT s2.p, s2.t, s1.t AS a FROM s2 ASOF JOIN s1 ON s2.p = s1.p AND s2.t >= s1.t WHERE s2.t - s1.t <= 604800), "
    "l2m AS (SELECT p, t, max(a) OVER (PARTITION BY p ORDER BY t) AS a FROM l2), "
    "l3 AS (SELECT s3.p FROM s3 ASOF JOIN l2m ON s3.p = l2m.p AND s3.t >= l2m.t WHERE s3.t - l2m.a <= 604800), "
    "lv AS (SELECT p, 1 AS lv FROM s1 UNION ALL SELECT p, 2 FROM l2 UNION ALL SELECT p, 3 FROM l3), "
    "per AS (SELECT p, max(lv) AS level FROM lv GROUP BY p) "
)
QUERIES["window_funnel"] = (
    "SELECT level, count(*) AS people FROM (SELECT anonymous_id, window_funnel(INTERVAL '7 days', event_time, "
    + ", ".join(f"event_name = '{s}'" for s in _FUNNEL_STEPS)
    + ") AS level FROM events WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id) f GROUP BY level ORDER BY level",
    _DUCK_FUNNEL_LEVELS + ", everyone AS (SELECT DISTINCT p FROM e) "
    "SELECT coalesce(level, 0) AS level, count(*) AS people FROM everyone LEFT JOIN per USING (p) GROUP BY 1 ORDER BY 1",
)
CHDB = {
    "window_funnel": "SELECT level, count() AS people FROM (SELECT anonymous_id, windowFunnel(604800)(toDateTime(event_time), "
    + ", ".join(f"event_name = '{s}'" for s in _FUNNEL_STEPS)
    + ") AS level FROM file('{data}/events/*.parquet', Parquet) WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id) "
    "GROUP BY level ORDER BY level",
}
# funnel: the same funnel as a report, people reaching each step (journeydb also computes each
# step's conversion, drop-off and time-to-convert percentiles, which the others are not asked
# for). DuckDB: the same levels, counted per step; chDB: windowFunnel levels counted per step.
QUERIES["funnel"] = (
    "SELECT step, users FROM funnel("
    + ", ".join(f"'{s}'" for s in _FUNNEL_STEPS)
    + ", window => INTERVAL '7 days', source => 'events', person => 'anonymous_id') ORDER BY step",
    _DUCK_FUNNEL_LEVELS
    + "SELECT k AS step, count(*) FILTER (WHERE level >= k) AS users FROM per, range(1, 4) r(k) GROUP BY k ORDER BY k",
)
CHDB["funnel"] = (
    "SELECT k AS step, countIf(level >= k) AS users FROM (SELECT windowFunnel(604800)(toDateTime(event_time), "
    + ", ".join(f"event_name = '{s}'" for s in _FUNNEL_STEPS)
    + ") AS level FROM file('{data}/events/*.parquet', Parquet) WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id) "
    "ARRAY JOIN [1, 2, 3] AS k GROUP BY k ORDER BY k"
)
# attribute_window: position-based (U) credit per channel, each cookie's touches one journey
# (DuckDB: row_number() and count() over the same window, the 40/20/40 rule with its small-n
# cases in a CASE).
QUERIES["attribute_window"] = (
    "SELECT channel, round(sum(s), 3) AS credit FROM (SELECT channel, attribute('position_based') OVER "
    "(PARTITION BY anonymous_id ORDER BY event_time, channel) AS s FROM events "
    "WHERE channel IS NOT NULL AND anonymous_id IS NOT NULL) x GROUP BY channel ORDER BY channel",
    "WITH t AS (SELECT channel, row_number() OVER (PARTITION BY anonymous_id ORDER BY event_time, channel) AS k, "
    "count(*) OVER (PARTITION BY anonymous_id) AS n FROM events WHERE channel IS NOT NULL AND anonymous_id IS NOT NULL) "
    "SELECT channel, round(sum(CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN k = 1 OR k = n THEN 0.4 "
    "ELSE 0.2 / (n - 2) END), 3) AS credit FROM t GROUP BY channel ORDER BY channel",
)
# attribute_report: purchases credited per channel by position-based attribution, each purchase's
# journey the buyer's touches since their previous purchase and at most 90 days back, touchless
# purchases to (direct); person = user id, else cookie (no stitching on either side). DuckDB:
# the same in plain SQL (lag, a range join, row_number and count over each journey).
_PERSON = "coalesce(user_id, anonymous_id)"
QUERIES["attribute_report"] = (
    "SELECT channel, CAST(round(conversions, 3) AS DOUBLE) AS conversions FROM attribute('position_based', "
    f"source => 'events', person => '{_PERSON}', touch => 'channel IS NOT NULL', conversion => 'purchase') "
    "ORDER BY channel",
    f"WITH e AS (SELECT {_PERSON} AS p, event_time AS t, channel, event_name, revenue FROM events "
    f"WHERE {_PERSON} IS NOT NULL), "
    "c AS (SELECT p, t, row_number() OVER (PARTITION BY p ORDER BY t, coalesce(revenue, 0)) AS cn, "
    "lag(t) OVER (PARTITION BY p ORDER BY t, coalesce(revenue, 0)) AS prev FROM e WHERE event_name = 'purchase'), "
    "j AS (SELECT c.p, c.cn, x.t AS tt, x.channel FROM c LEFT JOIN e x ON x.p = c.p AND x.channel IS NOT NULL "
    "AND x.t <= c.t AND x.t >= c.t - INTERVAL 90 DAY AND (c.prev IS NULL OR x.t > c.prev)), "
    "r AS (SELECT coalesce(channel, '(direct)') AS channel, "
    "row_number() OVER (PARTITION BY p, cn ORDER BY tt, channel) AS k, count(channel) OVER (PARTITION BY p, cn) AS n "
    "FROM j) "
    "SELECT channel, CAST(round(sum(CASE WHEN n <= 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN k = 1 OR k = n THEN 0.4 "
    "ELSE 0.2 / (n - 2) END), 3) AS DOUBLE) AS conversions FROM r GROUP BY channel ORDER BY channel",
)
# The same journeys as paths for ChannelAttribution's Markov model: converting journeys, and
# the touches after a person's last purchase (all of them when they never bought), at most 90
# days before the last of them.
_DUCK_MARKOV_PATHS = (
    f"WITH e AS (SELECT {_PERSON} AS p, event_time AS t, channel, event_name, revenue FROM events "
    f"WHERE {_PERSON} IS NOT NULL), "
    "c AS (SELECT p, t, row_number() OVER (PARTITION BY p ORDER BY t, coalesce(revenue, 0)) AS cn, "
    "lag(t) OVER (PARTITION BY p ORDER BY t, coalesce(revenue, 0)) AS prev FROM e WHERE event_name = 'purchase'), "
    "j AS (SELECT c.p, c.cn, string_agg(x.channel, ' > ' ORDER BY x.t, x.channel) AS path FROM c JOIN e x "
    "ON x.p = c.p AND x.channel IS NOT NULL AND x.t <= c.t AND x.t >= c.t - INTERVAL 90 DAY "
    "AND (c.prev IS NULL OR x.t > c.prev) GROUP BY c.p, c.cn), "
    "last AS (SELECT p, max(t) AS lt FROM c GROUP BY p), "
    "tail AS (SELECT e.p, e.t, e.channel, max(e.t) OVER (PARTITION BY e.p) AS mt FROM e LEFT JOIN last l ON l.p = e.p "
    "WHERE e.channel IS NOT NULL AND (l.lt IS NULL OR e.t > l.lt)), "
    "n AS (SELECT p, string_agg(channel, ' > ' ORDER BY t, channel) AS path FROM tail "
    "WHERE t >= mt - INTERVAL 90 DAY GROUP BY p) "
    "SELECT path, sum(conv) AS total_conversions, sum(nul) AS total_null FROM "
    "(SELECT path, 1 AS conv, 0 AS nul FROM j UNION ALL SELECT path, 0, 1 FROM n) GROUP BY path ORDER BY path"
)
MARKOV_SQL = (
    "SELECT channel, removal_effect FROM attribute('markov', "
    f"source => 'events', person => '{_PERSON}', touch => 'channel IS NOT NULL', conversion => 'purchase') "
    "WHERE removal_effect IS NOT NULL ORDER BY channel"
)
QUERIES["paths_top"] = (
    "SELECT path, users FROM journey_paths(source => 'events', person => 'anonymous_id', max_steps => 5, "
    "top => 10, output => 'paths') ORDER BY rank",
    _DUCK_STEPS
    + "SELECT path, count(*) AS users FROM (SELECT p, string_agg(n, ' > ' ORDER BY d) AS path FROM s GROUP BY p) "
    "GROUP BY path ORDER BY users DESC, path LIMIT 10",
)

# The analyses of issue 21, per cookie. retention: ClickHouse's aggregate (DuckDB: max() flags).
_RET = "event_name = 'page_view', event_name = 'email_click', event_name = 'form_submit'"
QUERIES["retention"] = (
    f"SELECT sum(r[1]), sum(r[2]), sum(r[3]) FROM (SELECT retention({_RET}) AS r FROM events "
    "WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id) x",
    "SELECT sum(a), sum(a * b), sum(a * c) FROM (SELECT max(CASE WHEN event_name = 'page_view' THEN 1 ELSE 0 END) a, "
    "max(CASE WHEN event_name = 'email_click' THEN 1 ELSE 0 END) b, max(CASE WHEN event_name = 'form_submit' THEN 1 "
    "ELSE 0 END) c FROM events WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id)",
)
CHDB["retention"] = (
    f"SELECT sum(r[1]), sum(r[2]), sum(r[3]) FROM (SELECT retention({_RET}) AS r "
    "FROM file('{data}/events/*.parquet', Parquet) WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id)"
)
# sequence_match: cookies with an email click within an hour after a page view (any events
# between). DuckDB: an ASOF join to the latest page view at or before each click.
QUERIES["sequence_match"] = (
    "SELECT count(*) FROM (SELECT anonymous_id FROM events WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id "
    "HAVING sequence_match('(?1)(?t<=3600)(?2)', event_time, event_name = 'page_view', event_name = 'email_click')) x",
    "WITH e AS (SELECT anonymous_id AS p, epoch(event_time) AS t, event_name AS n FROM events "
    "WHERE anonymous_id IS NOT NULL), a AS (SELECT p, t FROM e WHERE n = 'page_view'), "
    "b AS (SELECT p, t FROM e WHERE n = 'email_click') "
    "SELECT count(DISTINCT b.p) FROM b ASOF JOIN a ON b.p = a.p AND b.t >= a.t WHERE b.t - a.t <= 3600",
)
CHDB["sequence_match"] = (
    "SELECT count() FROM (SELECT anonymous_id FROM file('{data}/events/*.parquet', Parquet) "
    "WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id HAVING sequenceMatch('(?1)(?t<=3600)(?2)')"
    "(toDateTime(event_time), event_name = 'page_view', event_name = 'email_click'))"
)
# sequence_count: page views immediately followed by an email click (among those two events),
# counted per cookie and summed. Such pairs cannot overlap, so DuckDB counts the clicks whose
# previous event is a page view (ties in time: the page view first, as sequence_count orders
# them by the condition they meet).
QUERIES["sequence_count"] = (
    "SELECT sum(c) FROM (SELECT sequence_count('(?1)(?2)', event_time, event_name = 'page_view', "
    "event_name = 'email_click') AS c FROM events WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id) x",
    "SELECT count(*) FROM (SELECT event_name AS n, lag(event_name) OVER (PARTITION BY anonymous_id ORDER BY event_time, "
    "CASE WHEN event_name = 'page_view' THEN 0 ELSE 1 END) AS prev FROM events WHERE anonymous_id IS NOT NULL "
    "AND event_name IN ('page_view', 'email_click')) WHERE n = 'email_click' AND prev = 'page_view'",
)
CHDB["sequence_count"] = (
    "SELECT sum(c) FROM (SELECT sequenceCount('(?1)(?2)')(toDateTime(event_time), event_name = 'page_view', "
    "event_name = 'email_click') AS c FROM file('{data}/events/*.parquet', Parquet) WHERE anonymous_id IS NOT NULL "
    "GROUP BY anonymous_id)"
)
# sequence_next_node: what cookies do right after their first form submission (ties in time by
# event name). DuckDB: lead() after the first one.
QUERIES["sequence_next_node"] = (
    "SELECT nxt, count(*) AS people FROM (SELECT sequence_next_node('forward', 'first_match', event_time, event_name, "
    "true, event_name = 'form_submit') AS nxt FROM events WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id) x "
    "WHERE nxt IS NOT NULL GROUP BY nxt ORDER BY people DESC, nxt",
    "WITH o AS (SELECT event_name AS n, lead(event_name) OVER w AS nx, "
    "count(*) FILTER (WHERE event_name = 'form_submit') OVER w AS k FROM events WHERE anonymous_id IS NOT NULL "
    "WINDOW w AS (PARTITION BY anonymous_id ORDER BY event_time, event_name ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) "
    "SELECT nx, count(*) AS people FROM o WHERE n = 'form_submit' AND k = 1 AND nx IS NOT NULL "
    "GROUP BY nx ORDER BY people DESC, nx",
)
CHDB["sequence_next_node"] = (
    "SELECT nxt, count() AS people FROM (SELECT sequenceNextNode('forward', 'first_match')(toDateTime(event_time), "
    "event_name, true, event_name = 'form_submit') AS nxt FROM file('{data}/events/*.parquet', Parquet) "
    "WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id) WHERE nxt IS NOT NULL GROUP BY nxt ORDER BY people DESC, nxt "
    "SETTINGS allow_experimental_funnel_functions = 1"
)
# The retention report: cookies by the week of their first form submission, page views in each
# week after, summed per week (the report's rows, added up). DuckDB: the same in SQL, weeks not
# lived yet left out as the report does.
QUERIES["retention_report"] = (
    "SELECT period, sum(retained) FROM retention(start => 'form_submit', return => 'page_view', interval => 'week', "
    "periods => 8, source => 'events', person => 'anonymous_id', time_zone => 'UTC') GROUP BY period ORDER BY period",
    "WITH f AS (SELECT anonymous_id AS p, min(event_time) AS t0 FROM events WHERE event_name = 'form_submit' "
    "AND anonymous_id IS NOT NULL GROUP BY 1), "
    "last AS (SELECT date_trunc('week', max(event_time)) AS lw FROM events WHERE anonymous_id IS NOT NULL "
    "AND event_name IN ('form_submit', 'page_view')), "
    "r AS (SELECT DISTINCT f.p, date_trunc('week', f.t0) AS c, "
    "datediff('week', date_trunc('week', f.t0), date_trunc('week', e.event_time)) AS k FROM f JOIN events e "
    "ON e.anonymous_id = f.p AND e.event_name = 'page_view' AND e.event_time >= f.t0), "
    "rows AS (SELECT date_trunc('week', t0) AS c, 0 AS k FROM f UNION ALL SELECT c, k FROM r WHERE k BETWEEN 1 AND 7) "
    "SELECT k, count(*) FROM rows, last WHERE c + k * INTERVAL 7 DAY <= lw GROUP BY k ORDER BY k",
)
# stickiness: cookies by the number of days they viewed a page.
QUERIES["stickiness"] = (
    "SELECT intervals, persons FROM stickiness(event => 'page_view', source => 'events', person => 'anonymous_id', "
    "time_zone => 'UTC') WHERE persons > 0 ORDER BY intervals",
    "SELECT n, count(*) FROM (SELECT count(DISTINCT date_trunc('day', event_time)) AS n FROM events "
    "WHERE event_name = 'page_view' AND anonymous_id IS NOT NULL GROUP BY anonymous_id) GROUP BY n ORDER BY n",
)
# lifecycle: new, returning, resurrecting and dormant cookies per week (page views), summed per
# status. DuckDB: active weeks with lag() and lead().
QUERIES["lifecycle"] = (
    "SELECT status, sum(persons) FROM lifecycle(event => 'page_view', interval => 'week', source => 'events', "
    "person => 'anonymous_id', time_zone => 'UTC') GROUP BY status ORDER BY status",
    "WITH d AS (SELECT DISTINCT anonymous_id AS p, date_trunc('week', event_time) AS w FROM events "
    "WHERE event_name = 'page_view' AND anonymous_id IS NOT NULL), "
    "s AS (SELECT w, lag(w) OVER (PARTITION BY p ORDER BY w) AS prev, lead(w) OVER (PARTITION BY p ORDER BY w) AS nxt FROM d), "
    "st AS (SELECT w, CASE WHEN prev IS NULL THEN 'new' WHEN prev = w - INTERVAL 7 DAY THEN 'returning' "
    "ELSE 'resurrecting' END AS status FROM s UNION ALL SELECT w + INTERVAL 7 DAY, 'dormant' FROM s "
    "WHERE nxt IS NULL OR nxt > w + INTERVAL 7 DAY) "
    "SELECT status, count(*) FROM st WHERE w <= (SELECT max(w) FROM d) GROUP BY status ORDER BY status",
)


# The funnel's other outputs and funnel_correlation, on a two-step funnel per cookie (page view,
# then a form submission within 7 days). Each cookie's chain is the funnel's: the earliest form
# submission with a page view at most 7 days before it, entered at the latest such page view;
# a cookie that never gets there entered at its first page view. DuckDB and chDB build the same
# chains with an ASOF join.
_F2 = "'page_view', 'form_submit', window => INTERVAL '7 days', source => 'events', person => 'anonymous_id'"
_WEEK_US = 7 * 86400 * 1_000_000


def _units(scan, us, ranged=""):
    """The chains as SQL: `units(p, [r,] entry, done)`, times in microseconds. `scan` reads the
    events, `us` turns event_time into microseconds; `ranged` adds a column r (the ranges of
    `compare`) that the chains are built within."""
    r = ", r" if ranged else ""
    on_r = " AND b.r = a.r" if ranged else ""
    return (
        f"e AS (SELECT anonymous_id AS p, {us} AS t, event_name AS n{ranged} FROM {scan} "
        "WHERE anonymous_id IS NOT NULL AND event_name IN ('page_view', 'form_submit')), "
        f"a AS (SELECT p{r}, t FROM e WHERE n = 'page_view'), b AS (SELECT p{r}, t FROM e WHERE n = 'form_submit'), "
        f"conv AS (SELECT b.p AS p{', b.r AS r' if ranged else ''}, min(b.t) AS done, ARGMIN(a.t, b.t) AS entry "
        f"FROM b ASOF JOIN a ON b.p = a.p{on_r} AND b.t >= a.t WHERE b.t - a.t <= {_WEEK_US} GROUP BY b.p{', b.r' if ranged else ''}), "
        f"firsts AS (SELECT p{r}, min(t) AS t FROM a GROUP BY p{r}), "
        f"units AS (SELECT f.p AS p{', f.r AS r' if ranged else ''}, if(c.done IS NULL, f.t, c.entry) AS entry, c.done AS done "
        f"FROM firsts f LEFT JOIN conv c ON c.p = f.p{' AND c.r = f.r' if ranged else ''}) "
    )


_DUCK_SCAN, _DUCK_US = "events", "epoch_us(event_time)"
_CH_SCAN, _CH_US = "file('{data}/events/*.parquet', Parquet)", "toUnixTimestamp64Micro(event_time)"


def _duck_units(ranged=""):
    return "WITH " + _units(_DUCK_SCAN, _DUCK_US, ranged).replace("ARGMIN", "arg_min")


def _ch_units(ranged=""):
    return "WITH " + _units(_CH_SCAN, _CH_US, ranged).replace("ARGMIN", "argMin")


# trend: people entering per week and converting, per week of entry.
QUERIES["funnel_trend"] = (
    f"SELECT period, step, users FROM funnel({_F2}, trend => 'week', time_zone => 'UTC') ORDER BY period, step",
    _duck_units()
    + "SELECT CAST(date_trunc('week', make_timestamp(entry)) AS TIMESTAMP) AS period, k AS step, count(*) FILTER (WHERE k = 1 OR done IS NOT NULL) "
    "FROM units, range(1, 3) r(k) GROUP BY ALL ORDER BY 1, 2",
)
CHDB["funnel_trend"] = (
    _ch_units()
    + "SELECT toDateTime(toStartOfWeek(fromUnixTimestamp64Micro(entry, 'UTC'), 1), 'UTC') AS period, k AS step, "
    "countIf(k = 1 OR done IS NOT NULL) AS users FROM units ARRAY JOIN [1, 2] AS k GROUP BY period, step "
    "ORDER BY period, step SETTINGS join_use_nulls = 1"
)
# compare: the last 28 days before 2025-04-01 against the 28 days before them, each range's
# chains built from its own events.
_UNTIL_US = 1743465600 * 1_000_000  # 2025-04-01 00:00:00 UTC
_LEN_US = 28 * 86400 * 1_000_000
_RANGE = (f"CASE WHEN {{us}} >= {_UNTIL_US - _LEN_US} AND {{us}} < {_UNTIL_US} THEN 'current' "
          f"WHEN {{us}} >= {_UNTIL_US - 2 * _LEN_US} AND {{us}} < {_UNTIL_US - _LEN_US} THEN 'previous' END AS r")
QUERIES["funnel_compare"] = (
    f"SELECT range, step, users FROM funnel({_F2}, compare => INTERVAL '28 days', until => '2025-04-01 00:00:00+00') "
    "ORDER BY range, step",
    _duck_units(", " + _RANGE.format(us=_DUCK_US))
    + "SELECT r, k AS step, count(*) FILTER (WHERE k = 1 OR done IS NOT NULL) FROM units, range(1, 3) x(k) "
    "WHERE r IS NOT NULL GROUP BY ALL ORDER BY 1, 2",
)
CHDB["funnel_compare"] = (
    _ch_units(", " + _RANGE.format(us=_CH_US))
    + "SELECT r, k AS step, countIf(k = 1 OR done IS NOT NULL) AS users FROM units ARRAY JOIN [1, 2] AS k "
    "WHERE r IS NOT NULL GROUP BY r, step ORDER BY r, step SETTINGS join_use_nulls = 1"
)
# time_to_convert: the histogram of whole seconds from the page view to the form submission,
# 10 bins of the smallest whole width covering the shortest to the longest.
QUERIES["funnel_ttc"] = (
    f"SELECT bin_start_seconds, bin_end_seconds, users FROM funnel({_F2}, output => 'time_to_convert', bins => 10) "
    "ORDER BY bin_start_seconds",
    _duck_units()
    + ", s AS (SELECT (done - entry) // 1000000 AS s FROM units WHERE done IS NOT NULL), "
    "w AS (SELECT min(s) AS lo, (max(s) - min(s) + 1 + 9) // 10 AS w, max(s) - min(s) + 1 AS span FROM s), "
    "bins AS (SELECT unnest(range(0, (span + w - 1) // w)) AS k, lo, w FROM w), "
    "c AS (SELECT (s - lo) // w AS k, count(*) AS n FROM s, w GROUP BY 1) "
    "SELECT lo + bins.k * w, lo + (bins.k + 1) * w, coalesce(n, 0) FROM bins LEFT JOIN c USING (k) ORDER BY 1",
)
CHDB["funnel_ttc"] = (
    _ch_units()
    + ", s AS (SELECT intDiv(done - entry, 1000000) AS s FROM units WHERE done IS NOT NULL), "
    "w AS (SELECT min(s) AS lo, intDiv(max(s) - min(s) + 1 + 9, 10) AS w, max(s) - min(s) + 1 AS span FROM s), "
    "c AS (SELECT intDiv(s - lo, w) AS k, count() AS n FROM s, w GROUP BY k) "
    "SELECT lo + k * w AS a, lo + (k + 1) * w AS b, coalesce(n, 0) FROM (SELECT arrayJoin(range(0, intDiv(span + w - 1, w))) AS k, "
    "lo, w FROM w) bins LEFT JOIN c USING (k) ORDER BY a SETTINGS join_use_nulls = 1"
)
# people: who entered and did not submit the form (the retargeting list), counted with their
# first and last entry and the sum of the steps they reached.
QUERIES["funnel_people"] = (
    "SELECT count(*), min(entered_at), max(entered_at), sum(last_step) FROM funnel("
    f"{_F2}, output => 'people', step => 2, status => 'dropped')",
    _duck_units()
    + "SELECT count(*), make_timestamp(min(entry)), make_timestamp(max(entry)), count(*) FROM units WHERE done IS NULL",
)
CHDB["funnel_people"] = (
    _ch_units()
    + "SELECT count(), fromUnixTimestamp64Micro(min(entry), 'UTC'), fromUnixTimestamp64Micro(max(entry), 'UTC'), "
    "count() FROM units WHERE done IS NULL SETTINGS join_use_nulls = 1"
)
# funnel_correlation: which events go with submitting the form, per event name (the step events
# left out), among each cookie's events from its page view to its submission or to 7 days after.
QUERIES["funnel_correlation"] = (
    f"SELECT value, converters, non_converters FROM funnel_correlation({_F2}, top => 100) ORDER BY value",
    _duck_units()
    + ", spans AS (SELECT p, entry, coalesce(done, entry + " + str(_WEEK_US) + ") AS fin, done IS NOT NULL AS conv FROM units), "
    "has AS (SELECT DISTINCT s.p, s.conv, x.event_name AS v FROM spans s JOIN events x ON x.anonymous_id = s.p "
    "AND epoch_us(x.event_time) BETWEEN s.entry AND s.fin WHERE x.event_name NOT IN ('page_view', 'form_submit')) "
    "SELECT v, count(*) FILTER (WHERE conv), count(*) FILTER (WHERE NOT conv) FROM has GROUP BY v ORDER BY v",
)
CHDB["funnel_correlation"] = (
    _ch_units()
    + ", spans AS (SELECT p, entry, if(done IS NULL, entry + " + str(_WEEK_US) + ", done) AS fin, done IS NOT NULL AS conv "
    "FROM units), has AS (SELECT DISTINCT s.p, s.conv, x.event_name AS v FROM spans s JOIN "
    + _CH_SCAN + " x ON x.anonymous_id = s.p WHERE toUnixTimestamp64Micro(x.event_time) BETWEEN s.entry AND s.fin "
    "AND x.event_name NOT IN ('page_view', 'form_submit')) "
    "SELECT v, countIf(conv), countIf(NOT conv) FROM has GROUP BY v ORDER BY v SETTINGS join_use_nulls = 1"
)
# The reports in ClickHouse SQL (ClickHouse has no such functions), as DuckDB's above.
CHDB["retention_report"] = (
    "WITH e AS (SELECT anonymous_id AS p, event_time AS t, event_name AS n FROM " + _CH_SCAN + " "
    "WHERE anonymous_id IS NOT NULL AND event_name IN ('form_submit', 'page_view')), "
    "f AS (SELECT p, min(t) AS t0 FROM e WHERE n = 'form_submit' GROUP BY p), "
    "r AS (SELECT DISTINCT f.p, toStartOfWeek(f.t0, 1) AS c, "
    "intDiv(dateDiff('day', toStartOfWeek(f.t0, 1), toStartOfWeek(e.t, 1)), 7) AS k FROM f JOIN e ON e.p = f.p "
    "WHERE e.n = 'page_view' AND e.t >= f.t0), "
    "rows AS (SELECT toStartOfWeek(t0, 1) AS c, 0 AS k FROM f UNION ALL SELECT c, k FROM r WHERE k BETWEEN 1 AND 7) "
    "SELECT k, count() FROM rows WHERE addDays(c, 7 * k) <= (SELECT toStartOfWeek(max(t), 1) FROM e) "
    "GROUP BY k ORDER BY k"
)
CHDB["stickiness"] = (
    "SELECT n, count() FROM (SELECT uniqExact(toStartOfDay(event_time)) AS n FROM " + _CH_SCAN + " "
    "WHERE event_name = 'page_view' AND anonymous_id IS NOT NULL GROUP BY anonymous_id) GROUP BY n ORDER BY n"
)
CHDB["lifecycle"] = (
    "WITH d AS (SELECT DISTINCT anonymous_id AS p, toStartOfWeek(event_time, 1) AS w FROM " + _CH_SCAN + " "
    "WHERE event_name = 'page_view' AND anonymous_id IS NOT NULL), "
    "s AS (SELECT w, lagInFrame(toNullable(w)) OVER (PARTITION BY p ORDER BY w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS prev, "
    "leadInFrame(toNullable(w)) OVER (PARTITION BY p ORDER BY w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS nxt FROM d), "
    "st AS (SELECT w, multiIf(prev IS NULL, 'new', prev = subtractDays(w, 7), 'returning', 'resurrecting') AS status FROM s "
    "UNION ALL SELECT addDays(w, 7), 'dormant' FROM s WHERE nxt IS NULL OR nxt > addDays(w, 7)) "
    "SELECT status, count() FROM st WHERE w <= (SELECT max(w) FROM d) GROUP BY status ORDER BY status"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def markov(conn, duck, n, runs):
    """attribute('markov') against ChannelAttribution's markov_model on the same paths.

    journeydb's time covers reading the events and building the paths; ChannelAttribution's only
    its model fit on the already aggregated paths (built here by DuckDB, not timed)."""
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        import ChannelAttribution as ca
    jt, jrows = timed(lambda: conn.execute(MARKOV_SQL).fetchall(), runs)
    paths = duck.execute(_DUCK_MARKOV_PATHS).df()

    def fit():
        with contextlib.redirect_stdout(io.StringIO()):
            return ca.markov_model(paths, var_path="path", var_conv="total_conversions", var_null="total_null",
                                   max_step=1000, out_more=True, verbose=0, flg_pro=False)
    ct, result = timed(fit, max(1, runs // 2))
    theirs = dict(zip(result["removal_effects"]["channel_name"], result["removal_effects"]["removal_effect"]))
    diff = max(abs(float(e) - float(theirs.get(c, 0.0))) for c, e in jrows)
    print(f"{n:>10} {'markov':<20} {jt:>12.4f} {'ChannelAttribution':>18} {ct:>8.4f} {ct / jt:>7.2f}  "
          f"removal effects differ by at most {diff:.4f} ({len(paths)} distinct paths)")


def _rewrite(out):
    """Where a rewritten copy of the data is made (`out` + ".tmp", emptied, renamed to `out`
    when complete) and the DuckDB that reads the original; no DuckDB when `out` is made."""
    import duckdb
    if (out / "events").exists():
        return out, None
    tmp = out.with_name(out.name + ".tmp")
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    duck = duckdb.connect()
    duck.execute("SET enable_progress_bar = false")
    return tmp, duck


def time_ordered(data, out):
    """The demo's events (and app events) rewritten in time order, made once under `out`."""
    tmp, duck = _rewrite(out)
    if duck is None:
        return out
    for table, person in (("events", "anonymous_id"), ("app_events", "user_id")):
        if not (data / table).exists():
            continue
        (tmp / table).parent.mkdir(parents=True, exist_ok=True)
        duck.execute(f"COPY (SELECT * FROM read_parquet('{data}/{table}/*.parquet') ORDER BY event_time, {person}, "
                     f"event_name) TO '{tmp / table}' (FORMAT parquet, ROW_GROUP_SIZE 131072, FILE_SIZE_BYTES '16MB')")
    tmp.rename(out)
    return out


def shuffled(data, out):
    """The demo's events (and app events) with their rows in random order, across files and
    within them, written by pyarrow with its defaults (dictionary-encoded strings, snappy) in
    files of about 1M rows, one row group each: what a file written by another tool looks like.
    Made once under `out`; the order is a hash of each row, so the same on every machine."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    tmp, duck = _rewrite(out)
    if duck is None:
        return out
    rows_per_file = 1 << 20
    for table in ("events", "app_events"):
        if not (data / table).exists():
            continue
        (tmp / table).mkdir(parents=True)
        files = sorted((data / table).glob("*.parquet"))
        schema = pq.read_schema(files[0]).remove_metadata()
        columns = ", ".join(f'"{c}"' for c in schema.names)
        reader = duck.execute(f"SELECT {columns} FROM read_parquet('{data}/{table}/*.parquet') "
                              f"ORDER BY hash({columns}, 'shuffled')").fetch_record_batch(1 << 16)
        pending, count, part = [], 0, 0

        def flush(batches):
            nonlocal part
            pq.write_table(pa.Table.from_batches(batches).cast(schema), tmp / table / f"part-{part:05}.parquet",
                           row_group_size=rows_per_file)
            part += 1
        for batch in reader:
            pending.append(batch)
            count += batch.num_rows
            if count >= rows_per_file:
                flush(pending)
                pending, count = [], 0
        if pending:
            flush(pending)
    tmp.rename(out)
    return out


def main():
    import duckdb
    import psycopg

    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", nargs="+", help="query names to run (default: all)")
    ap.add_argument("--layout", choices=["person", "time", "shuffled"], default="person",
                    help="person: the demo's files, each person's events together (as written per visit or "
                         "sorted by person); time: the same events rewritten in time order by DuckDB, people "
                         "interleaved (as an append-only event log); shuffled: the rows in random order, "
                         "written by pyarrow with its defaults (as a file from another tool)")
    args = ap.parse_args()
    print(f"{'events':>10} {'query':<20} {'journeydb s':>12} {'duckdb s':>10} {'ratio':>7}  same answer"
          f"  {'chdb s':>8} {'ratio':>7}  same answer")
    for n in args.events:
        data = ROOT / "bench-data" / str(n)
        if not (data / "events").exists():
            out = subprocess.run([str(BIN), "demo", "--events", str(n), "--out", str(data)], check=True, capture_output=True, text=True)
            print("  " + out.stdout.strip(), file=sys.stderr)
        if args.layout == "time":
            data = time_ordered(data, ROOT / "bench-data" / f"{n}-by-time")
        elif args.layout == "shuffled":
            data = shuffled(data, ROOT / "bench-data" / f"{n}-shuffled")
        port = free_port()
        server = subprocess.Popen([str(BIN), "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            server.stdout.readline()  # "journeydb listening on ..."
            conn = psycopg.connect(f"host=127.0.0.1 port={port} user=journey dbname=journeydb", autocommit=True)
            duck = duckdb.connect()
            duck.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{data}/events/*.parquet')")
            for name, (jsql, dsql) in QUERIES.items():
                if args.only and name not in args.only:
                    continue
                jt, jrows = timed(lambda: conn.execute(jsql).fetchall(), args.runs)
                dt, drows = timed(lambda: duck.execute(dsql).fetchall(), args.runs)
                same = [tuple(map(str, r)) for r in jrows] == [tuple(map(str, r)) for r in drows] or \
                    [tuple(map(lambda v: str(v)[:19], r)) for r in jrows] == [tuple(map(lambda v: str(v)[:19], r)) for r in drows]
                line = f"{n:>10} {name:<20} {jt:>12.4f} {dt:>10.4f} {dt / jt:>7.2f}  {'yes' if same else 'NO':<11}"
                if name in CHDB:
                    import chdb
                    csql = CHDB[name].replace("{data}", str(data))
                    ct, crows = timed(lambda: list(csv.reader(str(chdb.query(csql, "CSV")).splitlines())), args.runs)
                    csame = [tuple(map(str, r)) for r in jrows] == [tuple(map(str, r)) for r in crows] or \
                        [tuple(map(lambda v: str(v)[:19], r)) for r in jrows] == [tuple(map(lambda v: str(v)[:19], r)) for r in crows]
                    line += f"  {ct:>8.4f} {ct / jt:>7.2f}  {'yes' if csame else 'NO'}"
                print(line)
            if not args.only or "markov" in args.only:
                markov(conn, duck, n, args.runs)
            conn.close()
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
