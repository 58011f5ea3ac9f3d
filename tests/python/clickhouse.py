"""ClickHouse (chDB, in process) as an oracle: runs queries over one Parquet file.

Run by tests/it/sequence.rs as `clickhouse.py FILE`, with one query per line on stdin, each
using `{file}` for the Parquet file. Prints each query's rows as tab-separated values, then a
line `--` after each query. Exits non-zero when a query fails.
"""

import sys

import chdb


def main() -> None:
    path = sys.argv[1]
    session = chdb.session.Session()
    for line in sys.stdin:
        query = line.strip()
        if not query:
            continue
        sql = query.replace("{file}", f"file('{path}', Parquet)")
        out = session.query(sql, "TSV").bytes().decode()
        sys.stdout.write(out)
        if out and not out.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.write("--\n")
    session.close()


if __name__ == "__main__":
    main()
