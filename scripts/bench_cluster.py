#!/usr/bin/env python3
"""The same queries in journeydb alone and on a cluster of one and of two executors on this
machine (issue 19), over the wire (psycopg), on the same Parquet files; prints each median and
the ratio alone / cluster (above 1: the cluster is faster), and whether the answers agree. The
setups run one after another, each alone on the machine.

    .venv-bench/bin/python scripts/bench_cluster.py --events 10000000 50000000 --runs 3
    .venv-bench/bin/python scripts/bench_cluster.py --events 10000000 --layout time

The queries are bench_compare.py's (journeydb's side), plus `point`: a query over few rows,
for the cluster path's fixed cost. Executors get --memory-limit 4GB and --concurrent-tasks 2
each; shuffle reads go over Arrow Flight only between executors (each reads its own files
locally), as on several machines. The data is made by `journeydb demo` under bench-data/.
"""
import argparse
import contextlib
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


def log(work, name):
    """Where a process's log goes: `work/name.log`, kept with --keep-logs."""
    work.mkdir(parents=True, exist_ok=True)
    return open(work / f"{name}.log", "w")


def start_cluster(executors, work):
    env = dict(os.environ, RUST_LOG="warn")
    port = two_free_ports()
    scheduler = f"127.0.0.1:{port}"
    procs = [subprocess.Popen([str(BIN), "scheduler", "--listen", scheduler], env=env,
                              stdout=subprocess.DEVNULL, stderr=log(work, "scheduler"))]
    wait_port(port, procs[0])
    for i in range(executors):
        p = two_free_ports()
        e = subprocess.Popen([str(BIN), "executor", "--scheduler", scheduler, "--listen", f"127.0.0.1:{p}",
                              "--memory-limit", "4GB", "--concurrent-tasks", "2", "--work-dir", str(work / f"e{i}")],
                             env=env, stdout=subprocess.DEVNULL, stderr=log(work, f"executor{i}"))
        procs.append(e)
        wait_port(p, e)
    return scheduler, procs


def serve(data, cluster, work):
    port = free_port()
    args = [str(BIN), "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"]
    if cluster:
        args += ["--cluster", cluster]
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log(work, "server"), text=True)
    server.stdout.readline()  # "journeydb listening on ..."
    return server, port


def run(conn, sql, runs):
    """The median time and the rows; no time and the error when the query failed."""
    import psycopg
    try:
        t, rows = timed(lambda: conn.execute(sql).fetchall(), runs)
        return t, [tuple(map(str, r)) for r in rows]
    except psycopg.Error as e:
        return None, f"{e.sqlstate}: {str(e).strip()}"


def secs(t):
    return f"{t:>9.3f}" if t is not None else f"{'failed':>9}"


def ratio(alone, cluster):
    return f"{alone / cluster:>6.2f}" if alone is not None and cluster is not None else f"{'':>6}"


def main():
    import tempfile

    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="+", default=[10_000_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", nargs="+", help="query names to run (default: all)")
    ap.add_argument("--layout", choices=["person", "time"], default="person")
    ap.add_argument("--work", help="keep each process's log and work files here (default: a temporary directory)")
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
        # The three setups run one after another, each alone on the machine (side by side, three
        # servers and three executors, each with its own memory budget, overcommit 50M events'
        # memory and the kernel kills one); the table is printed once all three have run.
        with contextlib.nullcontext(args.work) if args.work else tempfile.TemporaryDirectory() as work:
            results = [setup(data, executors, Path(work) / str(executors), names, queries, args.runs)
                       for executors in (0, 1, 2)]
        for name in names:
            (a, ra), (c1, r1), (c2, r2) = (r[name] for r in results)
            same = "yes" if ra == r1 == r2 else "NO"
            print(f"{n:>10} {name:<18} {secs(a)} {secs(c1)} {ratio(a, c1)} {secs(c2)} {ratio(a, c2)}  {same}",
                  flush=True)
            for where, (t, rows) in zip(("alone", "1 executor", "2 executors"), (r[name] for r in results)):
                if t is None:
                    print(f"  {name} failed {where}: {rows}", flush=True)


def setup(data, executors, work, names, queries, runs):
    """Each query's (median, rows) on the server alone or with a cluster of `executors`."""
    import psycopg
    procs = []
    try:
        scheduler, nodes = start_cluster(executors, work) if executors else (None, [])
        procs += nodes
        server, port = serve(data, scheduler, work)
        procs.append(server)
        with psycopg.connect(f"host=127.0.0.1 port={port} user=journey dbname=journeydb", autocommit=True) as c:
            results = {}
            for name in names:
                results[name] = run(c, queries[name], runs)
                t = results[name][0]
                print(f"  {executors} executor(s) {name}: {secs(t).strip()}", file=sys.stderr, flush=True)
            return results
    finally:
        for p in procs:
            p.terminate()
            p.wait()

if __name__ == "__main__":
    main()
