#!/usr/bin/env bash
# Benchmark of `jobs replicate` and `jobs marts` on the local stack (make up first),
# side by side in one run with a baseline of Spark's default JDBC options on the same
# cluster (one partition, batchsize 1000, overwrite mode, tables one after another, the
# seed's plain join-then-group mart queries, a new Spark Connect session per run, as
# the seed's spark-submit scripts had).
#   1. default volumes: `jobs replicate` (verification included), BENCH_RUNS times
#   2. SCALE x default volumes (default 10): replicate and marts, ours vs the baseline
# The source data lives in a scratch PostgreSQL schema, dropped at the end; the MySQL
# replicas and marts are rebuilt from the platform's own data set afterwards.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env; platform_psql
cd "$ROOT"

RUNS="${BENCH_RUNS:-3}"
SCALE="${SCALE:-10}"
SCHEMA="pipeline_bench_$$"
JOBS="$ROOT/target/release/jobs"
DATAGEN="$ROOT/target/release/datagen"
export MYSQL_PWD="$MYSQL_PASSWORD"
MYSQL=(mariadb --no-defaults -h 127.0.0.1 -P "$MYSQL_PORT" -u "$MYSQL_USER" "$MYSQL_DB")

cleanup() {
  platform_psql -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  local drops=""
  for t in users product_categories products orders order_details mart_user_activity mart_product_sales mart_average_check; do
    drops+="DROP TABLE IF EXISTS ${t}__baseline; "
  done
  "${MYSQL[@]}" -e "$drops" >/dev/null 2>&1 || true
  # Back to the platform's own data in MySQL.
  "$JOBS" replicate >/dev/null 2>&1 && "$JOBS" marts >/dev/null 2>&1 || true
}
trap cleanup EXIT

${CARGO:-cargo} build --release -p jobs -p datagen >&2
platform_psql -v schema="$SCHEMA" -v user="$POSTGRES_USER" -f infra/db/postgres/schema.sql >/dev/null

now() { date +%s.%N; }
timed() { local t0; t0=$(now); "$@" >/dev/null; awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
gen() {
  "$DATAGEN" pg --pg-schema "$SCHEMA" --reset --users $((5000 * $1)) --products $((500 * $1)) \
    --orders $((10000 * $1)) --order-details $((40000 * $1)) --categories $((5000 * $1)) >/dev/null 2>&1
}

echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
gen 1
"$JOBS" --pg-schema "$SCHEMA" replicate >/dev/null # warm-up: executors, JIT
echo "| run | what | volumes | wall time (s) |"
echo "|---|---|---|---|"
for run in $(seq 1 "$RUNS"); do
  echo "| $run | jobs replicate (5 tables, verified) | 1x | $(timed "$JOBS" --pg-schema "$SCHEMA" replicate) |"
done

gen "$SCALE"
# Warm-up at this volume for both sides (JIT of the new plans), not recorded.
"$JOBS" --pg-schema "$SCHEMA" replicate >/dev/null
"$JOBS" --pg-schema "$SCHEMA" marts >/dev/null
"$JOBS" --pg-schema "$SCHEMA" marts --baseline >/dev/null
rep_ours=() rep_base=() marts_ours=() marts_base=()
for run in $(seq 1 "$RUNS"); do
  ours=$(timed "$JOBS" --pg-schema "$SCHEMA" replicate)
  base=$(timed "$JOBS" --pg-schema "$SCHEMA" replicate --baseline)
  rep_ours+=("$ours") rep_base+=("$base")
  echo "| $run | jobs replicate / baseline | ${SCALE}x | $ours / $base (x$(ratio "$base" "$ours")) |"
  ours=$(timed "$JOBS" --pg-schema "$SCHEMA" marts)
  base=$(timed "$JOBS" --pg-schema "$SCHEMA" marts --baseline)
  marts_ours+=("$ours") marts_base+=("$base")
  echo "| $run | jobs marts / baseline | ${SCALE}x | $ours / $base (x$(ratio "$base" "$ours")) |"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
m_ro=$(median "${rep_ours[@]}") m_rb=$(median "${rep_base[@]}")
m_mo=$(median "${marts_ours[@]}") m_mb=$(median "${marts_base[@]}")
echo "| median | jobs replicate / baseline | ${SCALE}x | $m_ro / $m_rb (x$(ratio "$m_rb" "$m_ro")) |"
echo "| median | jobs marts / baseline | ${SCALE}x | $m_mo / $m_mb (x$(ratio "$m_mb" "$m_mo")) |"
