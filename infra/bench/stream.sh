#!/usr/bin/env bash
# Benchmark of `jobs stream` on the local stack (make up first):
#   1. catch-up: a backlog of BENCH_EVENTS (default 1,000,000) events in a scratch topic,
#      drained by `jobs stream --available-now`; events/s, rows checked;
#   2. latency: jobs/examples/stream_latency.rs, continuous mode at LAT_RATE events/s
#      (default 1000) for LAT_SECONDS (60) with a LAT_TRIGGER_MS (1000) trigger:
#      p50/p99 from produce to visible in PostgreSQL, lost and duplicated events.
# Everything it writes (topic, users, quarantine and progress rows) is removed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env; kafka_topics, platform_psql
cd "$ROOT"

EVENTS="${BENCH_EVENTS:-1000000}"
TOPIC="stream_bench_$$"
JOBS="$ROOT/target/release/jobs"
max_user() { platform_psql -At -c "SELECT coalesce(max(user_id), 0) FROM $POSTGRES_SCHEMA.users"; }
BEFORE=0
cleanup() {
  platform_psql -c "DELETE FROM $POSTGRES_SCHEMA.users WHERE user_id > $BEFORE; \
    DELETE FROM $POSTGRES_SCHEMA.users_quarantine WHERE kafka_topic = '$TOPIC'; \
    DELETE FROM $POSTGRES_SCHEMA.stream_sink_progress WHERE sink_id = '$TOPIC'" >/dev/null 2>&1 || true
  kafka_topics --delete --if-exists --topic "$TOPIC" >/dev/null 2>&1 || true
  # A million deleted rows would slow the next benchmark's reads of users.
  platform_psql -c "VACUUM ANALYZE $POSTGRES_SCHEMA.users" >/dev/null 2>&1 || true
}
trap cleanup EXIT

${CARGO:-cargo} build --release -p jobs -p datagen --bins --example stream_latency >&2
kafka_topics --create --topic "$TOPIC" --partitions 1 --replication-factor 1 >/dev/null
BEFORE="$(max_user)"
echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$ROOT/target/release/datagen" kafka --kafka-topic "$TOPIC" --count "$EVENTS" >/dev/null
t0=$(date +%s.%N)
"$JOBS" --kafka-topic "$TOPIC" stream --available-now --sink-id "$TOPIC" >/dev/null
t1=$(date +%s.%N)
rows=$(platform_psql -At -c "SELECT count(*) FROM $POSTGRES_SCHEMA.users WHERE user_id > $BEFORE")
quarantined=$(platform_psql -At -c "SELECT count(*) FROM $POSTGRES_SCHEMA.users_quarantine WHERE kafka_topic = '$TOPIC'")
awk -v n="$EVENTS" -v r="$rows" -v q="$quarantined" -v a="$t1" -v b="$t0" 'BEGIN {
  printf "catch-up: %d events in %.1f s = %.0f events/s (users %d, quarantined %d, missing %d)\n",
    n, a - b, n / (a - b), r, q, n - r - q }'
cleanup
"$ROOT/target/release/examples/stream_latency" "${LAT_RATE:-1000}" "${LAT_SECONDS:-60}" "${LAT_TRIGGER_MS:-1000}"
