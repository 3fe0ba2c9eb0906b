#!/usr/bin/env bash
# The Spark version matrix (`make compat`): for each version, restarts the local stack's
# Spark services (master, worker, Connect server) on it — installing that pyspark, its
# Kafka connector and building the plugin against it on first use — then runs the three
# jobs and every integration test (Rust and the plugin's Java tests) against it. The
# databases and Kafka keep running. At the end Spark runs the .env version again.
#   tests/compat.sh [VERSION ...]      default: the .env version, 4.1.3 and 4.0.4
# Prints one line per version and exits non-zero if any version failed; the output of
# each version is in .local/logs/compat-<version>.log.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../infra/local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env
cd "$ROOT"

DEFAULT="$SPARK_VERSION"
versions=("$@")
[ "${#versions[@]}" -gt 0 ] || versions=("$DEFAULT" 4.1.3 4.0.4)

# The jobs and the integration tests against the running stack.
check_version() {
  local v="$1"
  export SPARK_VERSION="$v"
  set -x
  target/release/datagen pg
  target/release/jobs replicate
  target/release/jobs marts
  target/release/jobs stream --available-now
  ${CARGO:-cargo} test --release --locked --workspace --test '*' -- --test-threads=1
  (cd infra/spark/sink && mvn -B -q -Dstyle.color=never -Dspark.version="$v" test)
}

[ -x target/release/jobs ] || die "build first (make build)"
failed=0
results=()
for v in "${versions[@]}"; do
  logfile="$LOGS/compat-$v.log"
  log "Spark $v: starting the cluster"
  started=$SECONDS
  if restart_spark_on "$v" >"$logfile" 2>&1 && (check_version "$v") >>"$logfile" 2>&1; then
    results+=("Spark $v: ok ($((SECONDS - started)) s; $logfile)")
  else
    results+=("Spark $v: FAILED ($((SECONDS - started)) s; see $logfile)")
    failed=1
  fi
done
log "Spark $DEFAULT (.env): restarting the cluster"
restart_spark_on "$DEFAULT" >>"$LOGS/compat-restore.log" 2>&1 || die "could not restart Spark $DEFAULT; see $LOGS/compat-restore.log"
printf '%s\n' "${results[@]}"
exit "$failed"
