#!/usr/bin/env bash
# Benchmarks: criterion (kernels and in-process queries) and the DuckDB comparison.
#   scripts/bench.sh            # comparison at 1M and 10M events
#   scripts/bench.sh criterion  # criterion benches too
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/journeydb-target}"
cargo build --release --locked --bin journeydb
if [ ! -x .venv-bench/bin/python ]; then
  python3 -m venv .venv-bench
fi
.venv-bench/bin/pip install -q -r scripts/bench-requirements.txt   # duckdb, chdb, ChannelAttribution, psycopg from PyPI
.venv-bench/bin/python scripts/bench_compare.py "${@:2}"
if [ "${1:-}" = criterion ]; then
  cargo bench --locked --bench queries
fi
