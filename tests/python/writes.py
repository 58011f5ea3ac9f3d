"""Writes from the Python drivers analysts use, against a journeydb server on 127.0.0.1.

Run by tests/it/writes.rs with the port as the only argument; exits non-zero on any failure.
psycopg 3 (COPY FROM STDIN row by row and COPY TO STDOUT), psycopg2 (copy_expert in CSV,
batched INSERT with client-side parameters, as dbt seeds do) and asyncpg
(copy_records_to_table, which sends binary COPY, and prepared INSERT with $1 parameters).
"""

import asyncio
import datetime as dt
import sys

import asyncpg
import psycopg
import psycopg2

PORT = int(sys.argv[1])
DSN = f"host=127.0.0.1 port={PORT} user=journey dbname=journeydb"


def check(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")
    print(f"ok {what}")


def with_psycopg3():
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA py")
        conn.execute("CREATE TABLE py.visits (id BIGINT, page TEXT, at TIMESTAMP, value DOUBLE PRECISION)")
        rows = [
            (1, "/pricing", dt.datetime(2025, 1, 1, 9, 30), 1.5),
            (2, "tab\there", None, None),
            (3, "line\nbreak, \"quoted\"", dt.datetime(2025, 1, 2), 2.0),
        ]
        with conn.cursor() as cur:
            with cur.copy("COPY py.visits (id, page, at, value) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
            check(cur.rowcount, 3, "psycopg 3 COPY FROM STDIN row count")
            cur.execute("SELECT id, page, at, value FROM py.visits ORDER BY id")
            check([tuple(r) for r in cur.fetchall()], rows, "psycopg 3 rows read back")
            out = []
            with cur.copy("COPY (SELECT id, page FROM py.visits ORDER BY id) TO STDOUT") as copy:
                for row in copy.rows():
                    out.append(row)
            check(out, [("1", "/pricing"), ("2", "tab\there"), ("3", "line\nbreak, \"quoted\"")], "psycopg 3 COPY TO STDOUT")
            cur.execute("INSERT INTO py.visits (id, page) VALUES (%s, %s)", (4, "it's"))
            cur.execute("SELECT page FROM py.visits WHERE id = %s", (4,))
            check(cur.fetchone()[0], "it's", "psycopg 3 parameterised INSERT")


def with_psycopg2():
    conn = psycopg2.connect(DSN)
    conn.autocommit = True
    cur = conn.cursor()
    import io

    cur.copy_expert("COPY py.visits (id, page, value) FROM STDIN WITH (FORMAT csv, HEADER)", io.StringIO("id,page,value\n5,/a,1\n6,\"/b,c\",\n"))
    check(cur.rowcount, 2, "psycopg2 copy_expert CSV row count")
    # dbt seeds: one INSERT with many rows, values interpolated by the client.
    cur.execute("INSERT INTO py.visits (id, page) VALUES (%s, %s), (%s, %s)", (7, "/x", 8, None))
    cur.execute("SELECT count(*), count(page) FROM py.visits")
    check(cur.fetchone(), (8, 7), "psycopg2 batched INSERT")
    buf = io.StringIO()
    cur.copy_expert("COPY (SELECT id FROM py.visits WHERE id > 4 ORDER BY id) TO STDOUT WITH CSV", buf)
    check(buf.getvalue(), "5\n6\n7\n8\n", "psycopg2 COPY TO STDOUT")
    conn.close()


async def with_asyncpg():
    conn = await asyncpg.connect(host="127.0.0.1", port=PORT, user="journey", database="journeydb")
    n = await conn.copy_records_to_table(
        "visits",
        schema_name="py",
        records=[(9, "/bin", dt.datetime(2025, 3, 1, 12, 0), 9.5), (10, None, None, None)],
        columns=["id", "page", "at", "value"],
    )
    check(n, "COPY 2", "asyncpg copy_records_to_table (binary COPY)")
    await conn.execute("INSERT INTO py.visits (id, page, value) VALUES ($1, $2, $3)", 11, "/prepared", 0.25)
    row = await conn.fetchrow("SELECT page, at, value FROM py.visits WHERE id = $1", 9)
    check((row["page"], row["at"], row["value"]), ("/bin", dt.datetime(2025, 3, 1, 12, 0), 9.5), "asyncpg read back")
    check(await conn.fetchval("SELECT count(*) FROM py.visits"), 11, "asyncpg total rows")
    await conn.execute("DROP SCHEMA py CASCADE")
    await conn.close()


with_psycopg3()
with_psycopg2()
asyncio.run(with_asyncpg())
print("all ok")
