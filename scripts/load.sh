#!/usr/bin/env bash
# Throughput and latency under load: a release server on the demo dataset (created with
# 300 000 events when the data directory is missing), then pgbench with 32 connections of
# mixed journey queries (tests/load/*.sql) for DURATION seconds, in the simple and the
# prepared protocol.   scripts/load.sh [DATA_DIR]   (DURATION=30 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/journeydb-target}"
cargo build --release --locked
data="${1:-journeydb-data}"
port=54329
"$CARGO_TARGET_DIR/release/journeydb" serve --data "$data" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid' EXIT
for _ in $(seq 1 600); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 1
done
for mode in simple prepared; do
  echo "== $mode protocol"
  pgbench -n -c 32 -j 2 -T "${DURATION:-30}" -M "$mode" \
    -f tests/load/plain.sql@3 -f tests/load/funnel.sql@1 -f tests/load/attribute.sql@1 -f tests/load/paths.sql@1 \
    -h 127.0.0.1 -p "$port" -U journey journeydb
done
