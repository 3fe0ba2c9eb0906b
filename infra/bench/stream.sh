#!/usr/bin/env bash
# Benchmark of `jobs stream` on the local stack (make up first):
#   1. catch-up: a backlog of BENCH_EVENTS (default 1,000,000) valid events in a scratch
#      topic, drained by `jobs stream --available-now` (maxOffsetsPerTrigger from .env or
#      its default), BENCH_RUNS times (default 3), alternating with the same backlog
#      drained through the sink's plain `append` mode (no offsets, no de-duplication):
#      events/s of each and the exactly-once overhead as the ratio of the medians;
#      Each run also prints the CPU time each part of the stack spent per event while
#      it ran (/proc), against the budget of the target (cores / 150,000 events/s);
#      BENCH_CAPTURE=pause pauses the change data capture connector during the runs
#      (resumed at the end), to measure the stream without Debezium's share of the cores;
#   2. PostgreSQL alone: BENCH_EVENTS rows inserted by one INSERT ... SELECT into a
#      scratch copy of users (LIKE users INCLUDING ALL: its unique indexes and checks),
#      the ceiling of any sink that writes users in one transaction per batch;
#   3. latency: jobs/examples/stream_latency.rs, continuous mode at LAT_RATE events/s
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
CONNECTOR_URL="http://localhost:$KAFKA_CONNECT_PORT/connectors/$CDC_CONNECTOR"
PAUSED=""
cleanup() {
  for i in $(seq 1 "$RUNS"); do reset_run "${TOPIC}_eo_$i"; reset_run "${TOPIC}_append_$i"; done
  kafka_topics --delete --if-exists --topic "$TOPIC" >/dev/null 2>&1 || true
  platform_psql -c "DROP TABLE IF EXISTS $S.${TOPIC}_pg, $S.${TOPIC}_src" >/dev/null 2>&1 || true
}
CPU_LOG=$(mktemp)
# The connector, if this script paused it, resumes only at the very end: Debezium then
# captures the runs' inserts and deletes after the measurements.
trap 'cleanup; rm -f "$CPU_LOG"; [ -z "$PAUSED" ] || curl -fsS -X PUT "$CONNECTOR_URL/resume" >/dev/null' EXIT
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

# CPU seconds (in clock ticks) per part of the stack, from /proc/<pid>/stat.
cpu_parts() {
  local p cmd part
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    case "$cmd" in
      *CoarseGrainedExecutorBackend*) part=spark-executor ;;
      *SparkConnectServer*) part=spark-driver ;;
      *ConnectDistributed*) part=kafka-connect ;;
      *kafka.Kafka*) part=kafka ;;
      *"postgres: walsender"*) part=pg-walsender ;;
      postgres:*) part=postgres ;;
      "$JOBS "*) part=jobs ;;
      *) continue ;;
    esac
    awk -v part="$part" '{ print part, $14 + $15 }' "$p/stat" 2>/dev/null || true
  done | awk '{ t[$1] += $2 } END { for (p in t) print p, t[p] }' | sort
}
TICKS=$(getconf CLK_TCK)
# Microseconds of CPU per event of each part between two cpu_parts snapshots ($1, $2),
# and their sum against the target's budget. Processes that started or ended in
# between count only their own share (the executors live as long as the server).
cpu_report() {
  join -a 2 -e 0 -o 0,1.2,2.2 <(echo "$1") <(echo "$2") | awk -v n="$EVENTS" -v hz="$TICKS" \
    -v cores="$(nproc)" '{ us = ($3 - $2) / hz / n * 1e6; if (us < 0) us = 0; total += us
      line = line sprintf("%s %.1f, ", $1, us) }
    END { printf "  CPU per event (us): %stotal %.1f; 150,000 events/s on %d cores allows %.1f\n",
      line, total, cores, cores / 150000 * 1e6 }'
}

# With change data capture running, Debezium captures every user a run inserts and then
# deletes (a delete and its tombstone): each run waits until the capture is idle (the
# users change topic unchanged for 5 s), so it measures the capture of its own inserts,
# not the leftovers of the previous run or of anything before the benchmark.
CAPTURED="$CDC_TOPIC_PREFIX\\.$S\\.users"
capture="not running"
if curl -fsS "$CONNECTOR_URL/status" 2>/dev/null | grep -q '"state":"RUNNING"'; then
  capture=running
  if [ "${BENCH_CAPTURE:-run}" = pause ]; then
    curl -fsS -X PUT "$CONNECTOR_URL/pause" >/dev/null && PAUSED=1 && capture=paused
  fi
fi
capture_idle() {
  [ "$capture" = running ] || return 0
  local a b deadline=$((SECONDS + 1800))
  b=$(kafka_end_offsets "$CAPTURED")
  while a=$b; sleep 5; b=$(kafka_end_offsets "$CAPTURED"); [ "$a" != "$b" ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "the capture of $S.users did not settle in 30 minutes" >&2; exit 1; }
  done
}
measured() { # wait for an idle capture, drain (its CPU per event to $CPU_LOG), reset
  local secs c0 c1
  capture_idle
  c0=$(cpu_parts); secs=$(drain "$@"); c1=$(cpu_parts)
  { echo "$1:"; cpu_report "$c0" "$c1"; } >>"$CPU_LOG"
  reset_run "$1"
  echo "$secs"
}
echo "change data capture of $S.users: $capture"

eo=() ap=()
for i in $(seq 1 "$RUNS"); do
  s=$(measured "${TOPIC}_eo_$i"); eo+=("$s")
  a=$(measured "${TOPIC}_append_$i" --plain-append); ap+=("$a")
  awk -v n="$EVENTS" -v s="$s" -v a="$a" -v i="$i" 'BEGIN {
    printf "run %d: exactly-once %.2f s = %.0f events/s; plain append %.2f s = %.0f events/s; ratio %.3f\n",
      i, s, n / s, a, n / a, s / a }'
done
cat "$CPU_LOG"
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
me=$(median "${eo[@]}"); ma=$(median "${ap[@]}")
awk -v n="$EVENTS" -v e="$me" -v a="$ma" -v r="$RUNS" 'BEGIN {
  printf "median of %d: exactly-once %.2f s = %.0f events/s; plain append %.2f s = %.0f events/s; exactly-once overhead %+.1f%%\n",
    r, e, n / e, a, n / a, (e / a - 1) * 100 }'
cleanup

# PostgreSQL alone: the same number of users-shaped rows, generated in the database
# first, inserted by one statement into an empty copy of users (after the capture of
# the last run's deletes, which would share the cores).
capture_idle
platform_psql -q -c "CREATE TABLE $S.${TOPIC}_pg (LIKE $S.users INCLUDING ALL)" \
  -c "CREATE UNLOGGED TABLE $S.${TOPIC}_src AS SELECT 'First' || g AS first_name,
        'Last' || g AS last_name, 'pg.' || md5(g::text) || '@example.com' AS email,
        '+1 555 0100' AS phone, now()::timestamp AS registration_date, 'Gold' AS loyalty_status
      FROM generate_series(1, $EVENTS) g" >/dev/null
t0=$(date +%s.%N)
platform_psql -q -c "INSERT INTO $S.${TOPIC}_pg (first_name, last_name, email, phone,
  registration_date, loyalty_status) SELECT * FROM $S.${TOPIC}_src" >/dev/null
t1=$(date +%s.%N)
awk -v n="$EVENTS" -v s="$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')" 'BEGIN {
  printf "PostgreSQL alone: INSERT ... SELECT of %d rows into a copy of users %.2f s = %.0f rows/s\n",
    n, s, n / s }'
cleanup
"$ROOT/target/release/examples/stream_latency" "${LAT_RATE:-1000}" "${LAT_SECONDS:-60}" "${LAT_TRIGGER_MS:-1000}"
