#!/usr/bin/env bash
# The test command of the README: installs what the tests need, then runs every test.
#   unit tests (both crates), the .slt files in process and over the wire,
#   tokio-postgres and psql against a real server on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/journeydb-target}"
scripts/install-test-deps.sh
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast
else
  cargo test --locked --workspace --no-fail-fast
fi
