#!/usr/bin/env bash
# Initial load of the data vault on the local stack (make up first): an empty warehouse
# loaded by `jobs dwh --available-now` from the change topics (Debezium's snapshot of
# every row plus every change since), against a full `jobs replicate` of the same
# source tables, side by side in one run. Each round empties the warehouse's schema
# (the vault is rebuilt by the load), times both, and checks that every current view
# has the source table's row count. BENCH_SCALE=10 first regenerates the source data
# set at 10x the default volumes (datagen pg --reset, which Debezium captures) and puts
# the default one back at the end. The topics keep their whole history, so a load
# reads more events than the source has rows: the events column says how many.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env
cd "$ROOT"

RUNS="${BENCH_RUNS:-3}"
SCALE="${BENCH_SCALE:-1}"
JOBS="$ROOT/target/release/jobs"
DATAGEN="$ROOT/target/release/datagen"
export PGPASSWORD="$POSTGRES_PASSWORD"
PSQL=(psql -qtAX -v ON_ERROR_STOP=1 -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER")
SCHEMA="${POSTGRES_SCHEMA:-postgres_finals_schema}"
TABLES=(users product_categories products orders order_details)

${CARGO:-cargo} build --release -p jobs -p datagen >&2
now() { date +%s.%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
if [ "$SCALE" != 1 ]; then
  "$DATAGEN" pg --reset --users $((5000 * SCALE)) --products $((500 * SCALE)) \
    --orders $((10000 * SCALE)) --order-details $((40000 * SCALE)) \
    --categories $((5000 * SCALE)) >/dev/null 2>&1
  trap '"$DATAGEN" pg --reset >/dev/null 2>&1; "$JOBS" cdc --available-now >/dev/null 2>&1; "$JOBS" dwh --available-now >/dev/null 2>&1' EXIT
fi
# Every current view has as many rows as its source table.
equal() {
  local t
  for t in "${TABLES[@]}"; do
    [ "$("${PSQL[@]}" -d "$POSTGRES_DB" -c "SELECT count(*) FROM $SCHEMA.$t")" = \
      "$("${PSQL[@]}" -d "$DWH_DB" -c "SELECT count(*) FROM current_$t")" ] || { echo NO; return; }
  done
  echo yes
}
# Untimed: Debezium captures the regenerated data set (the load's capture barrier would
# otherwise time out, and the wait is not the vault's cost).
CDC_CAPTURE_WAIT_SECS=1800 "$JOBS" dwh --available-now >/dev/null 2>&1
echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
rows=0
for t in "${TABLES[@]}"; do rows=$((rows + $("${PSQL[@]}" -d "$POSTGRES_DB" -c "SELECT count(*) FROM $SCHEMA.$t"))); done
echo "rows in PostgreSQL: $rows (scale $SCALE)"
echo
echo "| run | events loaded | jobs dwh --available-now, empty vault (s) | events/s | views = source | jobs replicate (s) | dwh / replicate |"
echo "|---|---|---|---|---|---|---|"
for run in $(seq 1 "$RUNS"); do
  "${PSQL[@]}" -d "$DWH_DB" -c "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public"
  t0=$(now)
  out=$("$JOBS" dwh --available-now 2>/dev/null)
  dwh=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
  events=$(sed -n 's/^vault load: \([0-9]*\) events.*/\1/p' <<<"$out")
  ok=$(equal)
  t0=$(now)
  "$JOBS" replicate >/dev/null 2>&1
  rep=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
  echo "| $run | $events | $dwh | $(awk -v n="$events" -v s="$dwh" 'BEGIN { printf "%.0f", n / s }') | $ok | $rep | $(ratio "$dwh" "$rep") |"
done
