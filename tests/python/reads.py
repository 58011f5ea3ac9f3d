"""Journey queries from the Python stack analysts use, against a journeydb server on 127.0.0.1.

Run by tests/it/clients.rs with the port as the only argument; exits non-zero on any failure.
Each driver runs a journey query (the funnel report, the attribution report) and a
parameterised query: psycopg 3 (server-side parameters, binary results too), psycopg2
(client-side parameters), asyncpg (binary protocol, prepared statements), and SQLAlchemy 2
with pandas.read_sql (through psycopg2 and through psycopg 3), and SQLAlchemy's whole inspector
API with pandas.read_sql_table. The tests run it at the pinned versions and at the newest ones.
"""

import asyncio
import datetime as dt
import decimal
import sys

import asyncpg
import pandas as pd
import psycopg
import psycopg2
import sqlalchemy as sa

PORT = int(sys.argv[1])
DSN = f"host=127.0.0.1 port={PORT} user=journey dbname=journeydb"
FUNNEL = (
    "SELECT step, users FROM funnel('page_view', 'form_submit', 'purchase', window => INTERVAL '30 days') "
    "ORDER BY step"
)
ATTRIBUTION = "SELECT channel, revenue FROM attribute('linear') ORDER BY channel"
PARAMETERISED = "SELECT count(*) FROM events WHERE channel = %s AND event_time >= %s"
SINCE = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok {what}")


def expected():
    """The answers, read once with psycopg 3 in text."""
    with psycopg.connect(DSN) as conn:
        funnel = [tuple(r) for r in conn.execute(FUNNEL).fetchall()]
        attribution = [tuple(r) for r in conn.execute(ATTRIBUTION).fetchall()]
        email = conn.execute(PARAMETERISED, ("Email", SINCE)).fetchone()[0]
    check(len(funnel) == 3 and funnel[0][1] >= funnel[1][1] >= funnel[2][1] > 0, "funnel narrows")
    check(len(attribution) > 3 and all(isinstance(r[1], decimal.Decimal) for r in attribution), "revenue is numeric")
    check(email > 0, "parameterised count")
    return funnel, attribution, email


def with_psycopg3(funnel, attribution, email):
    with psycopg.connect(DSN) as conn:
        with conn.cursor(binary=True) as cur:
            cur.execute(FUNNEL)
            check([tuple(r) for r in cur.fetchall()] == funnel, "psycopg 3 binary results: funnel")
            cur.execute(PARAMETERISED, ("Email", SINCE))
            check(cur.fetchone()[0] == email, "psycopg 3 binary, server-side parameters")
        cur = conn.cursor()
        cur.execute(ATTRIBUTION)
        check([tuple(r) for r in cur.fetchall()] == attribution, "psycopg 3 text results: attribution")


def with_time_zone():
    """SET TimeZone: psycopg 3 learns the zone from the server's ParameterStatus and returns
    instants in it, in text and in binary; psycopg2 parses the offsets the server writes."""
    with psycopg.connect(DSN) as conn:
        conn.execute("SET TimeZone = 'Europe/Paris'")
        check(str(conn.info.timezone) == "Europe/Paris", "psycopg 3 follows SET TimeZone")
        text = conn.execute("SELECT timestamptz '2024-07-01 12:00:00+00'").fetchone()[0]
        with conn.cursor(binary=True) as cur:
            binary = cur.execute("SELECT timestamptz '2024-07-01 12:00:00+00'").fetchone()[0]
        for t in (text, binary):
            check(t.hour == 14 and t.utcoffset() == dt.timedelta(hours=2), f"psycopg 3 instant in Paris time: {t}")
    conn = psycopg2.connect(DSN)
    cur = conn.cursor()
    cur.execute("SET TimeZone = 'America/New_York'")
    cur.execute("SELECT timestamptz '2024-01-15 12:00:00+00'")
    t = cur.fetchone()[0]
    check(t.hour == 7 and t.utcoffset() == dt.timedelta(hours=-5), f"psycopg2 instant in New York time: {t}")
    conn.close()


def with_psycopg2(funnel, attribution, email):
    conn = psycopg2.connect(DSN)
    cur = conn.cursor()
    cur.execute(FUNNEL)
    check([tuple(r) for r in cur.fetchall()] == funnel, "psycopg2 funnel")
    cur.execute(ATTRIBUTION)
    check([tuple(r) for r in cur.fetchall()] == attribution, "psycopg2 attribution")
    cur.execute(PARAMETERISED, ("Email", SINCE))
    check(cur.fetchone()[0] == email, "psycopg2 client-side parameters")
    conn.rollback()
    conn.close()


async def with_asyncpg(funnel, attribution, email):
    conn = await asyncpg.connect(host="127.0.0.1", port=PORT, user="journey", database="journeydb")
    rows = await conn.fetch(FUNNEL)
    check([tuple(r) for r in rows] == funnel, "asyncpg funnel (binary)")
    rows = await conn.fetch(ATTRIBUTION)
    check([tuple(r) for r in rows] == attribution, "asyncpg attribution")
    stmt = await conn.prepare("SELECT count(*) FROM events WHERE channel = $1 AND event_time >= $2")
    check(await stmt.fetchval("Email", SINCE) == email, "asyncpg prepared statement")
    check(await stmt.fetchval("Nope", SINCE) == 0, "asyncpg prepared statement, again")
    # Arrays: asyncpg introspects their types through pg_type, pg_range and a recursive query.
    check(await conn.fetchval("SELECT NULL::int[]") is None, "asyncpg NULL::int[]")
    check(await conn.fetchval("SELECT ARRAY[1, 2]") == [1, 2], "asyncpg ARRAY[1, 2]")
    channels = ["Email", "Nope"]
    n = await conn.fetchval("SELECT count(*) FROM events WHERE channel = ANY($1::text[]) AND event_time >= $2", channels, SINCE)
    check(n == email, "asyncpg = ANY($1) with a list")
    await conn.close()


def with_sqlalchemy(funnel, attribution, email):
    for driver in ("postgresql+psycopg2", "postgresql+psycopg"):
        engine = sa.create_engine(f"{driver}://journey@127.0.0.1:{PORT}/journeydb")
        with engine.connect() as conn:
            df = pd.read_sql(sa.text(FUNNEL), conn)
            check(list(df.columns) == ["step", "users"] and [tuple(r) for r in df.itertuples(index=False)] == funnel,
                  f"pandas.read_sql funnel via {driver}")
            df = pd.read_sql(sa.text(ATTRIBUTION), conn)
            check(len(df) == len(attribution), f"pandas.read_sql attribution via {driver}")
            n = conn.execute(sa.text("SELECT count(*) FROM events WHERE channel = :c AND event_time >= :t"),
                             {"c": "Email", "t": SINCE}).scalar_one()
            check(n == email, f"SQLAlchemy bound parameters via {driver}")
            names = sa.inspect(conn).get_table_names()
            check("events" in names, f"SQLAlchemy inspector lists the tables via {driver}")
        with_inspector(driver, engine)
        engine.dispose()


def with_inspector(driver, engine):
    """The whole inspector API, as table browsers (Superset, notebooks, pandas.read_sql_table)
    call it: what journeydb has (columns, comments, views) and what it never has (keys,
    indexes, constraints) both answered."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP VIEW IF EXISTS inspected_names"))
        conn.execute(sa.text("DROP TABLE IF EXISTS inspected"))
        conn.execute(sa.text("CREATE TABLE inspected (id BIGINT, name TEXT, seen TIMESTAMPTZ)"))
        conn.execute(sa.text("COMMENT ON TABLE inspected IS 'rows to inspect'"))
        conn.execute(sa.text("COMMENT ON COLUMN inspected.name IS 'who'"))
        conn.execute(sa.text("CREATE VIEW inspected_names AS SELECT name FROM inspected"))
    i = sa.inspect(engine)
    via = f"via {driver}"
    check({"public", "journey"} <= set(i.get_schema_names()), f"inspector schema names {via}")
    check("inspected" in i.get_table_names(), f"inspector table names {via}")
    check(i.get_view_names() == ["inspected_names"], f"inspector view names {via}")
    check(set(i.get_view_names(schema="journey")) == {"conversions", "events", "identities", "touchpoints"},
          f"inspector journey views {via}")
    cols = i.get_columns("inspected")
    check([c["name"] for c in cols] == ["id", "name", "seen"], f"inspector column names {via}")
    check(isinstance(cols[0]["type"], sa.BigInteger) and isinstance(cols[1]["type"], sa.Text)
          and isinstance(cols[2]["type"], sa.DateTime) and cols[2]["type"].timezone, f"inspector column types {via}")
    check([c["comment"] for c in cols] == [None, "who", None], f"inspector column comments {via}")
    check(all(c["nullable"] and c["default"] is None for c in cols), f"inspector nullability and defaults {via}")
    check(i.get_table_comment("inspected") == {"text": "rows to inspect"}, f"inspector table comment {via}")
    check(i.get_pk_constraint("inspected")["constrained_columns"] == [], f"inspector primary key {via}")
    check(i.get_foreign_keys("inspected") == [], f"inspector foreign keys {via}")
    check(i.get_indexes("inspected") == [], f"inspector indexes {via}")
    check(i.get_unique_constraints("inspected") == [], f"inspector unique constraints {via}")
    check(i.get_check_constraints("inspected") == [], f"inspector check constraints {via}")
    check(i.get_table_options("inspected") == {}, f"inspector table options {via}")
    check("inspected" in i.get_view_definition("inspected_names"), f"inspector view definition {via}")
    touch = [c["name"] for c in i.get_columns("touchpoints", schema="journey")]
    check("person_id" in touch and "channel" in touch, f"inspector journey view columns {via}")
    multi = i.get_multi_columns()
    check([c["name"] for c in multi[(None, "inspected")]] == ["id", "name", "seen"], f"inspector multi columns {via}")
    for name in ("pk_constraint", "foreign_keys", "indexes", "unique_constraints", "check_constraints",
                 "table_comment"):
        got = getattr(i, f"get_multi_{name}")()
        check((None, "inspected") in got and (None, "events") in got, f"inspector get_multi_{name} {via}")
    table = sa.Table("inspected", sa.MetaData(), autoload_with=engine)
    check([c.name for c in table.columns] == ["id", "name", "seen"] and table.comment == "rows to inspect",
          f"reflected Table {via}")
    events = pd.read_sql_table("events", engine)
    check(len(events) > 0 and "event_name" in events.columns, f"pandas.read_sql_table {via}")
    with engine.begin() as conn:
        conn.execute(sa.text("DROP VIEW inspected_names"))
        conn.execute(sa.text("DROP TABLE inspected"))


print("versions: " + ", ".join(f"{m.__name__} {m.__version__}" for m in (sa, pd, psycopg, asyncpg)) +
      f", psycopg2 {psycopg2.__version__.split()[0]}")
f, a, e = expected()
with_psycopg3(f, a, e)
with_time_zone()
with_psycopg2(f, a, e)
asyncio.run(with_asyncpg(f, a, e))
with_sqlalchemy(f, a, e)
print("all ok")
