#!/usr/bin/env bash
# Benchmark of `jobs stream` on the local stack (make up first):
#   1. catch-up: a backlog of BENCH_EVENTS (default 1,000,000) valid events in a scratch
#      topic, drained by `jobs stream --available-now` (maxOffsetsPerTrigger from .env or
#      its default), BENCH_RUNS times (default 3), alternating with the same backlog
#      drained through the sink's plain `append` mode (no offsets, no de-duplication):
#      events/s of each and the exactly-once overhead as the ratio of the medians;
#   2. latency: jobs/examples/stream_latency.rs, continuous mode at LAT_RATE events/s
#      (default 1000) for LAT_SECONDS (60) with a LAT_TRIGGER_MS (1000) trigger:
#      p50/p99 from produce to visible in PostgreSQL, lost and duplicated events.
# Everything it writes (topic, users, quarantine, offsets, commits, checkpoints) is removed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env; kafka_topics, platform_psql
cd "$ROOT"

EVENTS="${BENCH_EVENTS:-1000000}"
RUNS="${BENCH_RUNS:-3}"
TOPIC="stream_bench_$$"
JOBS="$ROOT/target/release/jobs"
S="$POSTGRES_SCHEMA"
max_user() { platform_psql -At -c "SELECT coalesce(max(user_id), 0) FROM $S.users"; }
BEFORE=0
# Removes one run's rows and bookkeeping, so every run starts from the same state.
reset_run() {
  local sink="$1"
  platform_psql -c "DELETE FROM $S.users WHERE user_id > $BEFORE; \
    DELETE FROM $S.users_quarantine WHERE kafka_topic = '$TOPIC'; \
    DELETE FROM $S.stream_sink_offsets WHERE sink_id = '$sink'; \
    DELETE FROM $S.stream_sink_commits WHERE sink_id = '$sink'" >/dev/null 2>&1 || true
  rm -rf "$STATE/spark/checkpoints/$sink"
  # A million deleted rows would slow the next run's inserts into users.
  platform_psql -c "VACUUM ANALYZE $S.users" >/dev/null 2>&1 || true
}
cleanup() {
  for i in $(seq 1 "$RUNS"); do reset_run "${TOPIC}_eo_$i"; reset_run "${TOPIC}_append_$i"; done
  kafka_topics --delete --if-exists --topic "$TOPIC" >/dev/null 2>&1 || true
}
trap cleanup EXIT

${CARGO:-cargo} build --release -p jobs -p datagen --bins --example stream_latency >&2
kafka_topics --create --topic "$TOPIC" --partitions 1 --replication-factor 1 >/dev/null
BEFORE="$(max_user)"
echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$ROOT/target/release/datagen" kafka --kafka-topic "$TOPIC" --count "$EVENTS" >/dev/null

# Drains the topic into PostgreSQL with sink id $1 (extra flags after it); prints seconds.
drain() {
  local sink="$1"; shift
  local t0 t1 rows
  t0=$(date +%s.%N)
  "$JOBS" --kafka-topic "$TOPIC" stream --available-now --sink-id "$sink" "$@" \
    >/dev/null 2>>"$LOGS/bench-stream.log"
  t1=$(date +%s.%N)
  rows=$(platform_psql -At -c "SELECT count(*) FROM $S.users WHERE user_id > $BEFORE")
  [ "$rows" -eq "$EVENTS" ] || { echo "$sink: $rows users for $EVENTS events" >&2; exit 1; }
  awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }'
}

# With change data capture running, Debezium captures every user a run inserts and then
# deletes (a delete and its tombstone): each run waits for the previous one's capture,
# so it measures the capture of its own inserts, not the reset's leftovers.
CAPTURED="$CDC_TOPIC_PREFIX\\.$S\\.users"
if curl -fsS "http://localhost:$KAFKA_CONNECT_PORT/connectors/$CDC_CONNECTOR/status" 2>/dev/null |
  grep -q '"state":"RUNNING"'; then
  echo "change data capture: $CDC_CONNECTOR running, captures $S.users; runs wait for its capture"
  measured() { # drain, reset, then wait until the run's 3 x EVENTS change records are out
    local o0 secs; o0=$(kafka_end_offsets "$CAPTURED")
    secs=$(drain "$@"); reset_run "$1"
    kafka_wait_end_offsets "$CAPTURED" $((o0 + 3 * EVENTS)) 900 >&2 || exit 1
    echo "$secs"
  }
else
  echo "change data capture: not running"
  measured() { local secs; secs=$(drain "$@"); reset_run "$1"; echo "$secs"; }
fi

eo=() ap=()
for i in $(seq 1 "$RUNS"); do
  s=$(measured "${TOPIC}_eo_$i"); eo+=("$s")
  a=$(measured "${TOPIC}_append_$i" --plain-append); ap+=("$a")
  awk -v n="$EVENTS" -v s="$s" -v a="$a" -v i="$i" 'BEGIN {
    printf "run %d: exactly-once %.2f s = %.0f events/s; plain append %.2f s = %.0f events/s; ratio %.3f\n",
      i, s, n / s, a, n / a, s / a }'
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
me=$(median "${eo[@]}"); ma=$(median "${ap[@]}")
awk -v n="$EVENTS" -v e="$me" -v a="$ma" -v r="$RUNS" 'BEGIN {
  printf "median of %d: exactly-once %.2f s = %.0f events/s; plain append %.2f s = %.0f events/s; exactly-once overhead %+.1f%%\n",
    r, e, n / e, a, n / a, (e / a - 1) * 100 }'
cleanup
"$ROOT/target/release/examples/stream_latency" "${LAT_RATE:-1000}" "${LAT_SECONDS:-60}" "${LAT_TRIGGER_MS:-1000}"
