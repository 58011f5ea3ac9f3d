#!/usr/bin/env bash
# Installs what the tests use beyond Rust: the psql client and pgbench (Debian's
# postgresql-client), a PostgreSQL 15 server as the oracle (postgresql-15), pgjdbc (libpostgresql-jdbc-java) and a JDK, the Python packages of
# scripts/test-requirements.txt in .venv-test, the drivers' newest releases
# (scripts/test-requirements-latest.txt) in .venv-test-latest, and dbt
# (scripts/dbt-requirements.txt) in .venv-dbt.
set -euo pipefail
need=()
command -v psql >/dev/null 2>&1 && command -v pgbench >/dev/null 2>&1 || need+=(postgresql-client)
# pgjdbc for tests/it/jdbc.rs, and a JDK to compile its program.
[ -f /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
command -v javac >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
# PostgreSQL 15, the oracle of tests/it/oracle.rs (started there on a private port).
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
# openssl makes the TLS test's certificate (tests/it/auth.rs).
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Headless Chromium and its driver: the explorer's browser test (tests/it/explorer.rs).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)  # legible screenshots
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest not found: the tests run with cargo test" >&2
fi
# Python packages (tests/it/markov.rs runs ChannelAttribution), in the project's own venv.
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$root/.venv-test/bin/python" ]; then
  python3 -m venv "$root/.venv-test"
fi
"$root/.venv-test/bin/pip" install -q --disable-pip-version-check -r "$root/scripts/test-requirements.txt"
# The same drivers at their newest releases (scripts/test-requirements-latest.txt), upgraded at
# every run so that the tests meet what users install today.
if [ ! -x "$root/.venv-test-latest/bin/python" ]; then
  python3 -m venv "$root/.venv-test-latest"
fi
"$root/.venv-test-latest/bin/pip" install -q --disable-pip-version-check --upgrade -r "$root/scripts/test-requirements-latest.txt"
# dbt (tests/it/dbt.rs) in a venv of its own: its pins need not agree with the above.
if [ ! -x "$root/.venv-dbt/bin/python" ]; then
  python3 -m venv "$root/.venv-dbt"
fi
"$root/.venv-dbt/bin/pip" install -q --disable-pip-version-check -r "$root/scripts/dbt-requirements.txt"
# Apache Superset (tests/it/superset.rs) in a venv of its own: its pins are many and its own.
if [ ! -x "$root/.venv-superset/bin/python" ]; then
  python3 -m venv "$root/.venv-superset"
fi
"$root/.venv-superset/bin/pip" install -q --disable-pip-version-check -r "$root/scripts/superset-requirements.txt"
