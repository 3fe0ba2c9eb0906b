#!/usr/bin/env bash
# Benchmark of change data capture on the local stack (make up first): what it costs
# to bring the MySQL replicas up to date after a burst of changes in PostgreSQL, by
# `jobs cdc --available-now` (applies the changes) against `jobs replicate` (copies
# every table in full, the way the platform refreshed replicas before CDC), side by
# side in one run. Each round: catch up (not timed), `datagen changes --count N`,
# then both, each followed by `replicate --verify-only` (must pass). Works on the
# platform's own data set (the schema Debezium captures); the changes stay.
# BENCH_SCALE=10 first regenerates that data set at 10x the default volumes and puts
# the default one back at the end (datagen pg --reset, carried to MySQL by CDC).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env
cd "$ROOT"

RUNS="${BENCH_RUNS:-3}"
CHANGES="${BENCH_CHANGES:-2000}"
SCALE="${BENCH_SCALE:-1}"
JOBS="$ROOT/target/release/jobs"
DATAGEN="$ROOT/target/release/datagen"

${CARGO:-cargo} build --release -p jobs -p datagen >&2

now() { date +%s.%N; }
timed() { local t0; t0=$(now); "$@" >/dev/null 2>&1; awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
verified() { if "$JOBS" replicate --verify-only >/dev/null 2>&1; then echo yes; else echo NO; fi; }

if [ "$SCALE" != 1 ]; then
  "$DATAGEN" pg --reset --users $((5000 * SCALE)) --products $((500 * SCALE)) \
    --orders $((10000 * SCALE)) --order-details $((40000 * SCALE)) \
    --categories $((5000 * SCALE)) >/dev/null 2>&1
  trap '"$DATAGEN" pg --reset >/dev/null 2>&1; "$JOBS" cdc --available-now >/dev/null 2>&1' EXIT
fi

echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rows in PostgreSQL: $("$JOBS" summary 2>/dev/null | awk 'NR>1 && NR<=6 { n += $2 } END { print n }')"
echo
echo "| run | transactions | jobs cdc --available-now (s) | equal | jobs replicate (s) | equal | replicate / cdc |"
echo "|---|---|---|---|---|---|---|"
for run in $(seq 1 "$RUNS"); do
  # A reload by the previous round made the apply replay its topics: done here, untimed.
  "$JOBS" cdc --available-now >/dev/null 2>&1
  "$DATAGEN" changes --count "$CHANGES" --seed "$run" >/dev/null 2>&1
  cdc=$(timed "$JOBS" cdc --available-now)
  cdc_ok=$(verified)
  rep=$(timed "$JOBS" replicate)
  rep_ok=$(verified)
  echo "| $run | $CHANGES | $cdc | $cdc_ok | $rep | $rep_ok | $(ratio "$rep" "$cdc") |"
done
"$JOBS" cdc --available-now >/dev/null 2>&1
