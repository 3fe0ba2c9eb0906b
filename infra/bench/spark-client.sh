#!/usr/bin/env bash
# Benchmark of the move to Spark 4.2 and the official Rust client: `jobs replicate` and
# `jobs marts` at SCALE x the default volumes (default 10), with the jobs binary of the
# last commit on `spark-connect-rs` (OLD_REV) against this checkout's (official
# `apache-spark-connect`), on Spark OLD_SPARK (4.0.4) and on the .env version. Runs
# alternate old and new binaries on the same cluster, so each ratio comes from one run.
#   infra/bench/spark-client.sh        (make up first; builds the old binary once)
# The source data lives in a scratch PostgreSQL schema, dropped at the end; the MySQL
# replicas and marts are rebuilt from the platform's own data set afterwards, and Spark
# runs the .env version again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env; platform_psql, restart_spark_on
cd "$ROOT"

RUNS="${BENCH_RUNS:-5}"
SCALE="${SCALE:-10}"
OLD_REV="${OLD_REV:-4af6a82}"
OLD_SPARK="${OLD_SPARK:-4.0.4}"
NEW_SPARK="$SPARK_VERSION"
SCHEMA="client_bench_$$"
NEW="$ROOT/target/release/jobs"
OLD_SRC="$STATE/bench/old-client-src"
OLD_TARGET="$STATE/bench/old-client-target"
OLD="$OLD_TARGET/release/jobs"
DATAGEN="$ROOT/target/release/datagen"

cleanup() {
  platform_psql -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  restart_spark_on "$NEW_SPARK" >/dev/null 2>&1 || echo "could not restart Spark $NEW_SPARK" >&2
  "$NEW" replicate >/dev/null 2>&1 && "$NEW" marts >/dev/null 2>&1 || true
}
trap cleanup EXIT

${CARGO:-cargo} build --release -p jobs -p datagen >&2
if [ ! -x "$OLD" ]; then
  rm -rf "$OLD_SRC" && mkdir -p "$OLD_SRC"
  git archive "$OLD_REV" | tar -x -C "$OLD_SRC"
  (cd "$OLD_SRC" && CARGO_TARGET_DIR="$OLD_TARGET" ${CARGO:-cargo} build --release --locked -p jobs >&2)
fi

platform_psql -v schema="$SCHEMA" -v user="$POSTGRES_USER" -f infra/db/postgres/schema.sql >/dev/null
"$DATAGEN" pg --pg-schema "$SCHEMA" --reset --users $((5000 * SCALE)) --products $((500 * SCALE)) \
  --orders $((10000 * SCALE)) --order-details $((40000 * SCALE)) --categories $((5000 * SCALE)) >/dev/null 2>&1

now() { date +%s.%N; }
# Wall time of a run, or "failed".
timed() {
  local t0; t0=$(now)
  if "$@" >/dev/null 2>>"$LOGS/bench-spark-client.log"; then
    awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }'
  else
    printf failed
  fi
}
median() { printf '%s\n' "$@" | grep -v failed | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { printf "failed"; exit } printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "failed" || b == "failed") print "-"; else printf "%.2f", a / b }'; }

echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); ${SCALE}x volumes, $RUNS runs each"
echo "old: jobs at $OLD_REV (spark-connect-rs 0.0.2); new: jobs at $(git rev-parse --short HEAD) (apache-spark-connect)"
echo
echo "| Spark | job | old client, median (s) | new client, median (s) | new / old |"
echo "|---|---|---|---|---|"
for v in "$OLD_SPARK" "$NEW_SPARK"; do
  restart_spark_on "$v" >>"$LOGS/bench-spark-client.log" 2>&1
  for job in replicate marts; do
    # Warm-up of both binaries (executors, JIT, the session's classes), not recorded.
    timed "$OLD" --pg-schema "$SCHEMA" "$job" >/dev/null
    timed "$NEW" --pg-schema "$SCHEMA" "$job" >/dev/null
    old=() new=()
    for _ in $(seq 1 "$RUNS"); do
      old+=("$(timed "$OLD" --pg-schema "$SCHEMA" "$job")")
      new+=("$(timed "$NEW" --pg-schema "$SCHEMA" "$job")")
    done
    mo=$(median "${old[@]}") mn=$(median "${new[@]}")
    echo "| $v | $job | $mo (${old[*]}) | $mn (${new[*]}) | $(ratio "$mn" "$mo") |"
  done
done
