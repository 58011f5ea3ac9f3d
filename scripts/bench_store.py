#!/usr/bin/env python3
"""The journey reports with the data on a local disk and on an S3-compatible server (moto on
127.0.0.1), cold and warm, and with the listing cache on and off (issue 18).

    scripts/bench_store.py --events 1000000            # the release binary (cargo build --release)
    JOURNEYDB_BIN=target/debug/journeydb scripts/bench_store.py --events 100000

Cold: the first run of a query after the server started (tables looked up, footers or the
Delta log read). Warm: the median of the next --runs runs. "S3, cache 2 s" is the default
([store] refresh_seconds = 2: a table's listing, files and footers trusted for 2 seconds);
"S3, no cache" looks everything up at every query. moto is a Python server: its latencies are
larger than a real S3's in the same region, so the S3 columns bound the cost from above.
Needs .venv-test (scripts/install-test-deps.sh: moto[server], psycopg).
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "journeydb-target"))
BIN = Path(os.environ.get("JOURNEYDB_BIN", TARGET / "release" / "journeydb"))
VENV = ROOT / ".venv-test" / "bin"

QUERIES = {
    "funnel": "SELECT step, users FROM funnel('page_view', 'form_submit', 'purchase', window => INTERVAL '30 days') ORDER BY step",
    "attribution": "SELECT channel, revenue FROM attribute('linear') ORDER BY channel",
    "group by channel": "SELECT channel, count(*), sum(revenue) FROM events GROUP BY channel ORDER BY channel",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"process exited: {proc.args}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def serve(data, env, refresh=None):
    port = free_port()
    config = None
    if refresh is not None:
        config = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        config.write(f"[store]\nrefresh_seconds = {refresh}\n")
        config.close()
    args = [str(BIN), "serve", "--data", data, "--listen", f"127.0.0.1:{port}"]
    if config:
        args += ["--config", config.name]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, port


def measure(port, runs):
    import psycopg

    out = {}
    with psycopg.connect(f"host=127.0.0.1 port={port} user=journey dbname=journeydb", autocommit=True) as conn:
        for name, sql in QUERIES.items():
            times = []
            for _ in range(runs + 1):
                started = time.perf_counter()
                conn.execute(sql).fetchall()
                times.append(time.perf_counter() - started)
            out[name] = (times[0], statistics.median(times[1:]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--events-per-file", type=int, default=1_000_000, help="more files: more listing")
    args = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: cargo build --release (or set JOURNEYDB_BIN)")
    work = Path(tempfile.mkdtemp(prefix="journeydb-bench-store-"))
    moto_port = free_port()
    moto = subprocess.Popen([str(VENV / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [moto]
    try:
        wait_port(moto_port, moto)
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{moto_port}/bench", method="PUT")).read()
        env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}", AWS_ACCESS_KEY_ID="bench",
                   AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1", AWS_ALLOW_HTTP="true")
        local = work / "data"
        for out in (str(local), "s3://bench/data"):
            subprocess.run([str(BIN), "demo", "--events", str(args.events), "--out", out, "--seed", "42",
                            "--events-per-file", str(args.events_per_file)],
                           env=env, check=True, stdout=subprocess.DEVNULL)
        results = {}
        for label, data, refresh in [("local disk", str(local), None), ("S3, cache 2 s", "s3://bench/data", None),
                                     ("S3, no cache", "s3://bench/data", 0)]:
            proc, port = serve(data, env, refresh)
            procs.append(proc)
            results[label] = measure(port, args.runs)
            proc.terminate()
            proc.wait()
        files = -(-args.events // args.events_per_file)
        print(f"{args.events} events in {files} file(s), {BIN.name} at {BIN.parent}; "
              f"seconds, cold / warm (median of {args.runs})")
        labels = list(results)
        print("| query | " + " | ".join(labels) + " |")
        print("|---|" + "---|" * len(labels))
        for q in QUERIES:
            cells = [f"{results[l][q][0]:.3f} / {results[l][q][1]:.3f}" for l in labels]
            print(f"| {q} | " + " | ".join(cells) + " |")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


if __name__ == "__main__":
    main()
