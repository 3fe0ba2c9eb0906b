#!/usr/bin/env bash
# Lag of the continuous `jobs cdc` on the local stack (make up first): from the commit
# of a row in PostgreSQL to the moment it can be read in MySQL. BENCH_PROBES probes, one
# a second, each a product category inserted in PostgreSQL and looked for in MySQL
# every 50 ms, while `datagen changes --rate BENCH_RATE` keeps the source busy. Prints
# the lags and their median, 95th percentile and maximum. The probe rows are removed
# at the end (the removal reaches MySQL through CDC too).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env
cd "$ROOT"

PROBES="${BENCH_PROBES:-30}"
RATE="${BENCH_RATE:-50}"
JOBS="$ROOT/target/release/jobs"
DATAGEN="$ROOT/target/release/datagen"
TAG="lag-probe-$$"
export PGPASSWORD="$POSTGRES_PASSWORD" MYSQL_PWD="$MYSQL_PASSWORD"
PSQL=(psql -qtAX -v ON_ERROR_STOP=1 -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$POSTGRES_DB")
MYSQL=(mariadb --no-defaults -N -h 127.0.0.1 -P "$MYSQL_PORT" -u "$MYSQL_USER" "$MYSQL_DB")
SCHEMA="${POSTGRES_SCHEMA:-postgres_finals_schema}"

${CARGO:-cargo} build --release -p jobs -p datagen >&2
"$JOBS" cdc --available-now >/dev/null 2>&1
"$JOBS" cdc >/dev/null 2>&1 &
cdc=$!
"$DATAGEN" changes --rate "$RATE" --count 1000000 >/dev/null 2>&1 &
load=$!
cleanup() {
  kill "$load" 2>/dev/null || true
  "${PSQL[@]}" -c "DELETE FROM $SCHEMA.product_categories WHERE name LIKE '$TAG-%'" >/dev/null || true
  sleep 3
  kill "$cdc" 2>/dev/null || true # SIGTERM: the job stops its queries
  wait "$cdc" 2>/dev/null || true
}
trap cleanup EXIT
sleep 15 # the queries start

echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); source load: datagen changes --rate $RATE"
lags=()
for i in $(seq 1 "$PROBES"); do
  t0=$("${PSQL[@]}" -c "INSERT INTO $SCHEMA.product_categories (name) VALUES ('$TAG-$i') RETURNING extract(epoch FROM clock_timestamp())")
  t0=$(head -n 1 <<<"$t0")
  until [ -n "$("${MYSQL[@]}" -e "SELECT 1 FROM product_categories WHERE name = '$TAG-$i'")" ]; do
    sleep 0.05
  done
  lags+=("$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')")
  sleep 1
done
echo "lags (s): ${lags[*]}"
printf '%s\n' "${lags[@]}" | sort -n | awk '{ v[NR] = $1 } END {
  p = int(NR * 0.95 + 0.999); if (p > NR) p = NR
  printf "probes %d: median %.2f s, p95 %.2f s, max %.2f s\n", NR, v[int((NR + 1) / 2)], v[p], v[NR] }'
