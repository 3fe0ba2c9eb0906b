#!/usr/bin/env bash
# Lag of the continuous `jobs dwh` on the local stack (make up first): from the commit
# of a row in PostgreSQL to the moment the warehouse's current view shows it.
# BENCH_PROBES probes, one a second, each a product category inserted in PostgreSQL and
# looked for (by its key) in the warehouse's current_product_categories every 50 ms,
# while `datagen changes --rate BENCH_RATE` (shop transactions per second, 0: as fast
# as PostgreSQL takes them) keeps the source busy. Probes start after BENCH_WARMUP
# seconds (30) of load. Prints the change events per second the source actually
# produced (all change topics, Kafka offsets), the lags and their median, 95th and
# 99th percentile and maximum. The probe rows are removed at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env
cd "$ROOT"

PROBES="${BENCH_PROBES:-60}"
RATE="${BENCH_RATE:-400}"
JOBS="$ROOT/target/release/jobs"
DATAGEN="$ROOT/target/release/datagen"
TAG="dwh-probe-$$"
export PGPASSWORD="$POSTGRES_PASSWORD"
PSQL=(psql -qtAX -v ON_ERROR_STOP=1 -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER")
SCHEMA="${POSTGRES_SCHEMA:-postgres_finals_schema}"

# Change events in Kafka so far, all of the vault's topics together.
events() { kafka_end_offsets "$CDC_TOPIC_PREFIX\.$SCHEMA\..*"; }

${CARGO:-cargo} build --release -p jobs -p datagen >&2
"$JOBS" dwh --available-now >/dev/null 2>&1
"$JOBS" dwh >/dev/null 2>&1 &
dwh=$!
"$DATAGEN" changes --rate "$RATE" --count 100000000 >/dev/null 2>&1 &
load=$!
cleanup() {
  kill "$load" 2>/dev/null || true
  "${PSQL[@]}" -d "$POSTGRES_DB" -c "DELETE FROM $SCHEMA.product_categories WHERE name LIKE '$TAG-%'" >/dev/null || true
  sleep 3
  kill "$dwh" 2>/dev/null || true # SIGTERM: the job stops its query
  wait "$dwh" 2>/dev/null || true
}
trap cleanup EXIT
# The query starts, then catches up with what the source made meanwhile: the figures
# are the steady state under the load, not the start.
sleep "${BENCH_WARMUP:-30}"

echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); source load: datagen changes --rate $RATE; warm-up ${BENCH_WARMUP:-30} s"
e0=$(events)
s0=$(date +%s.%N)
lags=()
for i in $(seq 1 "$PROBES"); do
  row=$("${PSQL[@]}" -d "$POSTGRES_DB" -c "INSERT INTO $SCHEMA.product_categories (name) VALUES ('$TAG-$i') RETURNING category_id, extract(epoch FROM clock_timestamp())")
  id=$(head -n 1 <<<"$row" | cut -d'|' -f1)
  t0=$(head -n 1 <<<"$row" | cut -d'|' -f2)
  # By its key, as a reader would look a row up: a few ms even on a large vault (a
  # search by name scans every hub's latest satellite).
  until [ -n "$("${PSQL[@]}" -d "$DWH_DB" -c "SELECT 1 FROM current_product_categories WHERE category_id = $id AND name = '$TAG-$i'")" ]; do
    sleep 0.05
  done
  lags+=("$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')")
  sleep 1
done
e1=$(events)
echo "change events produced: $((e1 - e0)) in $(awk -v a="$(date +%s.%N)" -v b="$s0" 'BEGIN { printf "%.0f", a - b }') s: $(awk -v n="$((e1 - e0))" -v a="$(date +%s.%N)" -v b="$s0" 'BEGIN { printf "%.0f", n / (a - b) }') events/s"
echo "lags (s): ${lags[*]}"
printf '%s\n' "${lags[@]}" | sort -n | awk '{ v[NR] = $1 } END {
  p = int(NR * 0.95 + 0.999); if (p > NR) p = NR
  q = int(NR * 0.99 + 0.999); if (q > NR) q = NR
  printf "probes %d: median %.2f s, p95 %.2f s, p99 %.2f s, max %.2f s\n", NR, v[int((NR + 1) / 2)], v[p], v[q], v[NR] }'
