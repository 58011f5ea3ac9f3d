#!/usr/bin/env bash
# Installs what the tests use beyond Rust: the psql client (Debian's postgresql-client).
set -euo pipefail
need=()
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest not found: the tests run with cargo test" >&2
fi
