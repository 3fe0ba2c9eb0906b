#!/usr/bin/env bash
# Benchmark of the data generators on the local stack (make up first):
#   - datagen pg: rows/s for the default volumes and for 10x them (3 runs each),
#   - datagen kafka: events/s for --count 1000000 into a one-partition topic.
# It works in a scratch schema and a scratch topic, both removed at the end, so the
# platform's data set and events topic are not touched. Output: a Markdown table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env; kafka_topics, platform_psql
cd "$ROOT"

RUNS="${BENCH_RUNS:-3}"
EVENTS="${BENCH_EVENTS:-1000000}"
SCHEMA="datagen_bench_$$"
TOPIC="datagen_bench_$$"
BIN="$ROOT/target/release/datagen"
cleanup() {
  platform_psql -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  kafka_topics --delete --if-exists --topic "$TOPIC" >/dev/null 2>&1 || true
}
trap cleanup EXIT

${CARGO:-cargo} build --release -p datagen >&2
platform_psql -v schema="$SCHEMA" -v user="$POSTGRES_USER" -f infra/db/postgres/schema.sql >/dev/null
kafka_topics --create --topic "$TOPIC" --partitions 1 --replication-factor 1 >/dev/null

now() { date +%s.%N; }
echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| run | what | rows / events | wall time (s) | per second |"
echo "|---|---|---|---|---|"
for scale in 1 10; do
  v=(--users $((5000 * scale)) --products $((500 * scale)) --orders $((10000 * scale))
     --order-details $((40000 * scale)) --categories $((5000 * scale)))
  for run in $(seq "$RUNS"); do
    t0=$(now)
    log_line=$(RUST_LOG=info NO_COLOR=1 "$BIN" pg --pg-schema "$SCHEMA" --reset "${v[@]}" 2>&1 | grep 'loaded ')
    t1=$(now)
    rows=$(sed -E 's/.*loaded ([0-9]+) rows.*/\1/' <<<"$log_line")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    rate=$(awk -v r="$rows" -v w="$wall" 'BEGIN { printf "%.0f", r / w }')
    echo "| $run | datagen pg --reset, ${scale}x default volumes | $rows rows | $wall | $rate rows/s |"
  done
done
t0=$(now)
log_line=$(RUST_LOG=info NO_COLOR=1 "$BIN" kafka --kafka-topic "$TOPIC" --count "$EVENTS" 2>&1 | grep 'delivered ')
t1=$(now)
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
rate=$(sed -E 's/.* ([0-9]+) events\/s.*/\1/' <<<"$log_line")
delivered=$(sed -E 's/.*delivered ([0-9]+) of.*/\1/' <<<"$log_line")
echo "| 1 | datagen kafka --count $EVENTS (1 partition) | $delivered events delivered | $wall | $rate events/s (first event to last ack); $(awk -v n="$delivered" -v w="$wall" 'BEGIN { printf "%.0f", n / w }') incl. start-up |"
