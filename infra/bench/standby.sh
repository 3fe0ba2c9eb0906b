#!/usr/bin/env bash
# Benchmark of `jobs replicate` reading the PostgreSQL primary against reading its hot
# standby (POSTGRES_READ_FROM), on the local stack (make up first), at SCALE x the
# default volumes (default 10), while a shop workload (`datagen changes`, BENCH_RATE
# transactions/s) writes to the primary the whole time (into a second scratch schema:
# its WAL is what the standby replays meanwhile). Both in one run, alternating,
# BENCH_RUNS rounds each. Per run: wall time (verification included), the rows read
# from the copied tables on the primary and on the standby meanwhile
# (pg_stat_user_tables seq_tup_read + idx_tup_fetch of the source schema, which only
# the job reads: the read load each server carried), and how long the run waited for
# the standby to catch up. The data lives in scratch PostgreSQL schemas, dropped at the
# end (the default volumes stay untouched); the MySQL replicas are rebuilt from the
# platform's own data afterwards.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env; platform_psql, pg_primary_admin, pg_standby_admin
cd "$ROOT"

RUNS="${BENCH_RUNS:-3}"
SCALE="${SCALE:-10}"
RATE="${BENCH_RATE:-20}"
SCHEMA="standby_bench_$$"
WRITES="standby_bench_writes_$$"
JOBS="$ROOT/target/release/jobs"
DATAGEN="$ROOT/target/release/datagen"
WRITER=""

cleanup() {
  if [ -n "$WRITER" ]; then kill "$WRITER" 2>/dev/null || true; wait "$WRITER" 2>/dev/null || true; fi
  platform_psql -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; DROP SCHEMA IF EXISTS $WRITES CASCADE" >/dev/null 2>&1 || true
  # Back to the platform's own data in MySQL (retried: others restart Spark Connect).
  local i
  for i in 1 2 3 4 5 6; do
    "$JOBS" replicate >/dev/null 2>&1 && return 0
    sleep 10
  done
  log "WARNING: the MySQL replicas still hold the benchmark's data: run target/release/jobs replicate"
}
trap cleanup EXIT

${CARGO:-cargo} build --release -p jobs -p datagen >&2
[ "$(pg_standby_admin -c 'SELECT pg_is_in_recovery()')" = t ] ||
  die "the standby on port $POSTGRES_STANDBY_PORT is not running as a standby (make up)"
for s in "$SCHEMA" "$WRITES"; do
  platform_psql -v schema="$s" -v user="$POSTGRES_USER" -f infra/db/postgres/schema.sql >/dev/null
done

now() { date +%s.%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# Rows read from the source schema's tables, on the primary / the standby.
reads() {
  "$1" -d "$POSTGRES_DB" -c "SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0)
    FROM pg_stat_user_tables WHERE schemaname = '$SCHEMA'"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One replication of the scratch schema reading $1 (primary|standby); prints
# "seconds primary_rows standby_rows waited_ms".
run_from() {
  local t0 p0 s0 log waited
  p0=$(reads pg_primary_admin) s0=$(reads pg_standby_admin) t0=$(now)
  log=$(NO_COLOR=1 POSTGRES_READ_FROM="$1" "$JOBS" --pg-schema "$SCHEMA" replicate 2>&1 >/dev/null) ||
    { printf '%s\n' "$log" >&2; die "jobs replicate reading the $1 failed"; }
  local t1; t1=$(now)
  # pg_stat_database is updated when a backend reports (at the latest on exit).
  sleep 1
  waited=$(printf '%s\n' "$log" | sed -n 's/.*(waited \([0-9]*\) ms).*/\1/p' | head -n 1)
  awk -v a="$t1" -v b="$t0" -v p="$(( $(reads pg_primary_admin) - p0 ))" \
    -v s="$(( $(reads pg_standby_admin) - s0 ))" -v w="${waited:--}" \
    'BEGIN { printf "%.2f %d %d %s\n", a - b, p, s, w }'
}

echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$DATAGEN" pg --pg-schema "$SCHEMA" --reset --users $((5000 * SCALE)) --products $((500 * SCALE)) \
  --orders $((10000 * SCALE)) --order-details $((40000 * SCALE)) --categories $((5000 * SCALE)) >/dev/null 2>&1
rows=$(platform_psql -A -t -c "SELECT (SELECT count(*) FROM $SCHEMA.users) + (SELECT count(*) FROM $SCHEMA.product_categories) + (SELECT count(*) FROM $SCHEMA.products) + (SELECT count(*) FROM $SCHEMA.orders) + (SELECT count(*) FROM $SCHEMA.order_details)")
"$DATAGEN" pg --pg-schema "$WRITES" --reset >/dev/null 2>&1
echo "source: ${SCALE}x the default volumes, $rows rows in 5 tables; writer: datagen changes at $RATE tx/s on the primary throughout (1x data set of its own)"
echo

# The writer: shop transactions on the scratch schema for as long as the benchmark runs.
"$DATAGEN" changes --pg-schema "$WRITES" --count 100000000 --rate "$RATE" >/dev/null 2>&1 &
WRITER=$!
# Warm-up of both (Spark's JIT of the plans, the standby's caches), not recorded.
run_from primary >/dev/null
run_from standby >/dev/null

echo "| run | reads from | wall time (s) | source rows read on the primary | on the standby | waited for the standby (ms) |"
echo "|---|---|---|---|---|---|"
t_p=() t_s=() r_p=() r_s=()
for run in $(seq 1 "$RUNS"); do
  # Alternating which goes first, so drift in the machine's load favours neither.
  if [ $((run % 2)) -eq 1 ]; then order="primary standby"; else order="standby primary"; fi
  for from in $order; do
    read -r secs prows srows waited <<<"$(run_from "$from")"
    echo "| $run | $from | $secs | $prows | $srows | $waited |"
    if [ "$from" = primary ]; then t_p+=("$secs") r_p+=("$prows"); else t_s+=("$secs") r_s+=("$prows"); fi
  done
done
kill -0 "$WRITER" 2>/dev/null || die "the writer (datagen changes) stopped during the benchmark"
m_tp=$(median "${t_p[@]}") m_ts=$(median "${t_s[@]}") m_rp=$(median "${r_p[@]}") m_rs=$(median "${r_s[@]}")
echo "| median | primary | $m_tp | ${m_rp%.*} | | |"
echo "| median | standby | $m_ts | ${m_rs%.*} | | |"
echo
echo "wall time standby / primary: x$(ratio "$m_ts" "$m_tp"); source rows read on the primary, standby run / primary run: $(ratio "$m_rs" "$m_rp")"
echo "writer: $(platform_psql -A -t -c "SELECT count(*) FROM $WRITES.orders") orders in its schema at the end (1x starts with 10000); load after: $(cut -d' ' -f1-3 /proc/loadavg)"
