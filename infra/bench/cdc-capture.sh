#!/usr/bin/env bash
# What change data capture costs the machine (make up first): BENCH_ROWS (200,000) users
# inserted in one statement, then the wall time until Debezium has put all of them on
# the users change topic, and the CPU seconds the Kafka Connect worker spent meanwhile
# (/proc/<pid>/stat). The rows are deleted at the end (their capture is waited for, not
# measured). BENCH_RUNS rounds (3); the first after a worker start includes its JIT
# warm-up.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env; platform_psql
cd "$ROOT"

ROWS="${BENCH_ROWS:-200000}"
RUNS="${BENCH_RUNS:-3}"
S="$POSTGRES_SCHEMA"
TOPIC="$CDC_TOPIC_PREFIX.$S.users"
MARK="cdc-capture-$$"
pid=$(pgrep -f "org.apache.kafka.connect.cli.ConnectDistributed" | head -n 1) ||
  { echo "no Kafka Connect worker runs here (make up)" >&2; exit 1; }
ticks=$(getconf CLK_TCK)

ends() { kafka_end_offsets "${TOPIC//./\\.}"; }
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
wait_for() { # until the topic holds $1 more records than $2, at most 10 minutes
  local deadline=$((SECONDS + 600)) n
  while n=$(ends); [ $((n - $2)) -lt "$1" ]; do
    [ "$SECONDS" -lt "$deadline" ] || {
      echo "$TOPIC got $((n - $2)) of $1 records in 10 minutes (is kafka-connect up? $LOGS/kafka-connect.log)" >&2
      exit 1
    }
    sleep 1
  done
}
cleanup() { platform_psql -c "DELETE FROM $S.users WHERE email LIKE '$MARK-%'" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "worker: $(tr '\0' ' ' <"/proc/$pid/cmdline" | grep -o -- '-Xm[sx][^ ]*\|-XX:+Use[A-Za-z0-9]*GC' | tr '\n' ' ')"
for i in $(seq 1 "$RUNS"); do
  o0=$(ends); c0=$(cpu); t0=$(date +%s.%N)
  platform_psql -c "INSERT INTO $S.users (first_name, last_name, email, phone, registration_date,
      loyalty_status)
    SELECT 'Bench', 'Capture', '$MARK-' || g || '@example.com', '+1000000', now(), 'Gold'
    FROM generate_series(1, $ROWS) g" >/dev/null
  wait_for "$ROWS" "$o0"
  t1=$(date +%s.%N); c1=$(cpu)
  awk -v n="$ROWS" -v w="$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')" \
    -v c="$(((c1 - c0)))" -v t="$ticks" -v i="$i" 'BEGIN {
    printf "round %d: %d inserts captured in %.1f s (%.0f events/s), worker CPU %.1f s (%.1f us per event)\n",
      i, n, w, n / w, c / t, c / t / n * 1e6 }'
  o1=$(ends)
  cleanup
  wait_for $((2 * ROWS)) "$o1" # the deletes and their tombstones, before the next round
done
