#!/usr/bin/env python3
"""The same queries in journeydb alone and on a cluster of one and of two executors on this
machine (issue 19), over the wire (psycopg), on the same Parquet files; prints each median and
the ratio alone / cluster (above 1: the cluster is faster), and whether the answers agree.

    .venv-bench/bin/python scripts/bench_cluster.py --events 10000000 50000000 --runs 3
    .venv-bench/bin/python scripts/bench_cluster.py --events 10000000 --layout time

The queries are bench_compare.py's (journeydb's side), plus `point`: a query over few rows,
for the cluster path's fixed cost. Executors get --memory-limit 4GB and --concurrent-tasks 2
each; shuffle reads go over Arrow Flight only between executors (each reads its own files
locally), as on several machines. The data is made by `journeydb demo` under bench-data/.
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compare import BIN, QUERIES, ROOT, free_port, time_ordered, timed  # noqa: E402
from bench_store import wait_port  # noqa: E402

EXTRA = {
    "point": "SELECT count(*), sum(revenue) FROM events WHERE user_id = 'u000042'",
}


def two_free_ports():
    import socket
    while True:
        p = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            pass


def start_cluster(executors, work):
    env = dict(os.environ, RUST_LOG="warn")
    port = two_free_ports()
    scheduler = f"127.0.0.1:{port}"
    procs = [subprocess.Popen([str(BIN), "scheduler", "--listen", scheduler], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    wait_port(port, procs[0])
    for i in range(executors):
        p = two_free_ports()
        e = subprocess.Popen([str(BIN), "executor", "--scheduler", scheduler, "--listen", f"127.0.0.1:{p}",
                              "--memory-limit", "4GB", "--concurrent-tasks", "2", "--work-dir", str(work / f"e{i}")],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(e)
        wait_port(p, e)
    return scheduler, procs


def serve(data, cluster):
    port = free_port()
    args = [str(BIN), "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"]
    if cluster:
        args += ["--cluster", cluster]
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    server.stdout.readline()  # "journeydb listening on ..."
    return server, port


def main():
    import psycopg
    import tempfile

    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="+", default=[10_000_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", nargs="+", help="query names to run (default: all)")
    ap.add_argument("--layout", choices=["person", "time"], default="person")
    args = ap.parse_args()
    queries = {name: sql for name, (sql, _) in QUERIES.items()}
    queries.update(EXTRA)
    names = [n for n in queries if not args.only or n in args.only]
    print(f"{'events':>10} {'query':<18} {'alone s':>9} {'1 exec s':>9} {'ratio':>6} {'2 exec s':>9} {'ratio':>6}  same")
    for n in args.events:
        data = ROOT / "bench-data" / str(n)
        if not (data / "events").exists():
            out = subprocess.run([str(BIN), "demo", "--events", str(n), "--out", str(data)], check=True,
                                 capture_output=True, text=True)
            print("  " + out.stdout.strip(), file=sys.stderr)
        if args.layout == "time":
            data = time_ordered(data, ROOT / "bench-data" / f"{n}-by-time")
        # The three setups run side by side (one query at a time): each query's line is printed
        # as soon as it ran on all three.
        with tempfile.TemporaryDirectory() as work:
            procs, conns = [], []
            try:
                for executors in (0, 1, 2):
                    scheduler, nodes = start_cluster(executors, Path(work) / str(executors)) if executors else (None, [])
                    server, port = serve(data, scheduler)
                    procs += nodes + [server]
                    conns.append(psycopg.connect(f"host=127.0.0.1 port={port} user=journey dbname=journeydb",
                                                 autocommit=True))
                for name in names:
                    runs = [timed(lambda: c.execute(queries[name]).fetchall(), args.runs) for c in conns]
                    (a, ra), (c1, r1), (c2, r2) = ((t, [tuple(map(str, r)) for r in rows]) for t, rows in runs)
                    same = "yes" if ra == r1 == r2 else "NO"
                    print(f"{n:>10} {name:<18} {a:>9.3f} {c1:>9.3f} {a / c1:>6.2f} {c2:>9.3f} {a / c2:>6.2f}  {same}",
                          flush=True)
            finally:
                for c in conns:
                    c.close()
                for p in procs:
                    p.terminate()
                    p.wait()


if __name__ == "__main__":
    main()
