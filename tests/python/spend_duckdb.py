"""DuckDB (in process) as the oracle of the ad spend joined to attribution: over the demo's
own Parquet files, the days of the touches in a window and the spend per dimension value on
those days.

    spend_duckdb.py DATA_DIR FROM UNTIL BY

Prints `range FIRST LAST` (the first and last day with a touch at or after FROM and before
UNTIL), then one line per value of BY (a column of ad_spend) with spend in that range:
`value<TAB>spend`.
"""
import sys

import duckdb

data, since, until, by = sys.argv[1:5]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
first, last = con.execute(
    f"SELECT min(CAST(event_time AS DATE)), max(CAST(event_time AS DATE)) FROM read_parquet('{data}/events/*.parquet') "
    "WHERE channel IS NOT NULL AND event_time >= CAST(? AS TIMESTAMPTZ) AND event_time < CAST(? AS TIMESTAMPTZ)",
    [since, until],
).fetchone()
print(f"range {first} {last}")
rows = con.execute(
    f"SELECT {by}, sum(spend) FROM read_parquet('{data}/ad_spend/*.parquet') WHERE day BETWEEN ? AND ? "
    f"GROUP BY {by} ORDER BY {by}",
    [first, last],
).fetchall()
for value, spend in rows:
    print(f"{value}\t{spend:.2f}")
