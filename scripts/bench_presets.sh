#!/usr/bin/env bash
# What a tracker's preset costs: the same demo journeys (EVENTS, default 10 000 000) as the
# canonical `events` table, the same without its `channel` column (channels derived from the
# UTM context, as for any tracker), and Segment's tables, Snowplow's atomic events and GA4's
# day tables read through their presets; each query's median of three runs over the wire, in
# seconds (release build, 127.0.0.1 only). LAYOUTS picks some of them.
#
#   scripts/bench_presets.sh [EVENTS]
#   LAYOUTS="canonical ga4" scripts/bench_presets.sh 10000000
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
events="${1:-10000000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/journeydb-target}"
cargo build --release --locked --manifest-path "$root/Cargo.toml" >&2
bin="$CARGO_TARGET_DIR/release/journeydb"
data="$root/bench-data/presets-$events"
if [ ! -x "$root/.venv-bench/bin/python" ]; then
  python3 -m venv "$root/.venv-bench"
  "$root/.venv-bench/bin/pip" install -q -r "$root/scripts/bench-requirements.txt" >&2
fi
layouts="${LAYOUTS:-canonical no-channel segment snowplow ga4}"
[ -d "$data/canonical" ] || "$bin" demo --events "$events" --out "$data/canonical" >&2
for shape in segment snowplow ga4; do
  case " $layouts " in *" $shape "*) ;; *) continue ;; esac
  [ -d "$data/$shape" ] || "$bin" demo --events "$events" --out "$data/$shape" --shape "$shape" >&2
  printf '[journey]\npreset = "%s"\n' "$shape" > "$data/$shape.toml"
done
if [ ! -d "$data/no-channel" ]; then
  mkdir -p "$data/no-channel/events"
  "$root/.venv-bench/bin/python" -c "import duckdb, sys; duckdb.sql(f\"COPY (SELECT * EXCLUDE (channel) FROM read_parquet('{sys.argv[1]}/canonical/events/*.parquet')) TO '{sys.argv[1]}/no-channel/events/part-0.parquet' (FORMAT parquet, ROW_GROUP_SIZE 131072)\")" "$data"
fi
queries=(
  "SELECT count(*), count(DISTINCT person_id) FROM journey.events"
  "SELECT count(*) FROM attribute('linear', 'markov')"
  "SELECT count(*) FROM funnel('page_view', 'form_submit', 'opportunity', 'purchase')"
  "SELECT count(*) FROM journey_paths(node => 'channel')"
)
port=55499
for layout in $layouts; do
  args=(serve --data "$data/$layout" --listen "127.0.0.1:$port" --http-listen off)
  [ -f "$data/$layout.toml" ] && args+=(--config "$data/$layout.toml")
  "$bin" "${args[@]}" > "$data/$layout.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do psql -X -At -h 127.0.0.1 -p "$port" -U journey -d journeydb -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
  for q in "${queries[@]}"; do
    times=()
    for _ in 1 2 3; do
      start=$(date +%s.%N)
      psql -X -At -h 127.0.0.1 -p "$port" -U journey -d journeydb -c "$q" >/dev/null
      times+=("$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')")
    done
    printf '%s\t%.2f\t%s\n' "$layout" "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)" "$q"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
