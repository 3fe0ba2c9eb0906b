#!/usr/bin/env bash
# Events/s through the generator service's API (`datagen serve`) against the command
# line (`datagen kafka`) on the same run size, into a scratch one-partition topic
# (removed at the end; the platform's topic is not touched). Rounds alternate which
# goes first (the broker is busier just after a run); each is timed from outside: the
# command line from process start to exit, the API from the POST to the answer of a
# GET /api/runs/{id}?wait=60, which returns when the run has ended.
# Prints each round, the medians and the ratio API / command line. Needs `make up`.
#   BENCH_EVENTS=1000000 BENCH_RUNS=3 infra/bench/generator.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=../local/lib.sh
source "$ROOT/infra/local/lib.sh" # loads .env; kafka_topics
cd "$ROOT"

RUNS="${BENCH_RUNS:-3}"
EVENTS="${BENCH_EVENTS:-1000000}"
TOPIC="generator_bench_$$"
BIN="$ROOT/target/release/datagen"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server=""
cleanup() {
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null
  kafka_topics --delete --if-exists --topic "$TOPIC" >/dev/null 2>&1 || true
}
trap cleanup EXIT

${CARGO:-cargo} build --release -p datagen >&2
kafka_topics --create --topic "$TOPIC" --partitions 1 --replication-factor 1 >/dev/null
KAFKA_TOPIC="$TOPIC" GENERATOR_PORT="$PORT" GENERATOR_BIND=127.0.0.1 GENERATOR_MAX_COUNT="$EVENTS" \
  NO_COLOR=1 RUST_LOG=warn \
  "$BIN" serve >"$ROOT/target/bench-generator-server.log" 2>&1 &
server=$!
until curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do sleep 0.1; done

now() { date +%s.%N; }
cli_round() {
  local t0 t1
  t0="$(now)"
  RUST_LOG=warn "$BIN" kafka --kafka-topic "$TOPIC" --count "$EVENTS" >/dev/null 2>&1
  t1="$(now)"
  echo "$EVENTS / ($t1 - $t0)" | bc -l
}
api_round() {
  local t0 t1 id status
  t0="$(now)"
  id="$(curl -fsS -X POST "http://127.0.0.1:$PORT/api/runs" -H 'Content-Type: application/json' \
    -d "{\"target\":\"kafka\",\"count\":$EVENTS}" | sed -E 's/^\{"id":([0-9]+).*/\1/')"
  # Followed with one long-polling request (?wait=: answered when the run ends), so
  # the end is seen at once and no polling takes the cores the run needs.
  while :; do
    status="$(curl -fsS "http://127.0.0.1:$PORT/api/runs/$id?wait=60" |
      sed -E 's/.*"status":"([a-z]+)".*"acked":([0-9]+).*/\1 \2/')"
    [ "${status%% *}" != running ] && break
  done
  t1="$(now)"
  [ "$status" = "succeeded $EVENTS" ] || { echo "run $id: $status" >&2; exit 1; }
  echo "$EVENTS / ($t1 - $t0)" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); $EVENTS events per run, $RUNS rounds"
cli=() api=() ratios=()
for r in $(seq 1 "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then c="$(cli_round)"; a="$(api_round)"; else a="$(api_round)"; c="$(cli_round)"; fi
  cli+=("$c"); api+=("$a"); ratios+=("$(echo "$a / $c" | bc -l)")
  printf 'round %d: datagen kafka %.0f events/s, API %.0f events/s, ratio %.3f\n' "$r" "$c" "$a" "${ratios[-1]}"
done
c="$(printf '%s\n' "${cli[@]}" | median)"
a="$(printf '%s\n' "${api[@]}" | median)"
printf 'median: datagen kafka %.0f events/s, API %.0f events/s, ratio of medians %.3f, median of the rounds'"'"' ratios %.3f\n' \
  "$c" "$a" "$(echo "$a / $c" | bc -l)" "$(printf '%s\n' "${ratios[@]}" | median)"
rss="$(awk '/VmHWM/ {print $2}' "/proc/$server/status")"
echo "server peak resident memory: $((rss / 1024)) MiB"
