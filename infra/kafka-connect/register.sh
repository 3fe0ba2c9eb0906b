#!/usr/bin/env bash
# Registers the platform's change data capture connector (Debezium's PostgreSQL
# connector) on a Kafka Connect worker, idempotently, and waits until it runs.
# Used by the local stack (infra/local/services.sh) and by the docker deployment's
# one-shot `cdc-register` service, with the same connector config: postgres-cdc.json.
#
#   register.sh          render postgres-cdc.json, PUT it when the worker holds another
#                        config (or none), restart a FAILED connector or task, then wait
#                        until the connector and every task are RUNNING
#   register.sh status   one line: the connector's state and its tasks' states
#
# Settings from the environment (the .env names): KAFKA_CONNECT_URL (default
# http://localhost:$KAFKA_CONNECT_PORT), CDC_CONNECTOR, CDC_TOPIC_PREFIX, POSTGRES_HOST,
# POSTGRES_PORT, POSTGRES_DB, POSTGRES_SCHEMA, POSTGRES_USER; CDC_WAIT_SECS (default
# 180) bounds the waits; CDC_LOG_HINT names where the worker's log is (error messages).
# The database password is not needed here and never in the config: the config says
# ${env:POSTGRES_PASSWORD}, which the worker resolves from its own environment
# (config.providers=env), so the REST API and the config topic show only that.
# Needs bash, curl, grep, sed and sort only (it runs in the Debezium image too).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
template="$here/postgres-cdc.json"

url="${KAFKA_CONNECT_URL:-http://localhost:${KAFKA_CONNECT_PORT:-8083}}"
name="${CDC_CONNECTOR:-postgres-cdc}"
wait_secs="${CDC_WAIT_SECS:-180}"
log_hint="${CDC_LOG_HINT:-the log of the Kafka Connect worker}"

say() { printf '%s [cdc] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# curl METHOD PATH [BODY-FILE] -> the HTTP status on stdout (000: no answer), the body in
# $tmp/body.
http() {
  local method="$1" path="$2" data=()
  [ -n "${3:-}" ] && data=(-H 'Content-Type: application/json' --data-binary "@$3")
  curl -sS -m 15 -o "$tmp/body" -w '%{http_code}' -X "$method" "${data[@]}" "$url$path" \
    2>"$tmp/curl.err" || true
}

# The connector's states, connector first then each task, as words ("" when unknown).
states() {
  [ "$(http GET "/connectors/$name/status")" = 200 ] || return 0
  grep -o '"state":"[A-Z_]*"' "$tmp/body" | cut -d'"' -f4 | tr '\n' ' '
}

status_line() {
  local s; s="$(states)"
  if [ -z "$s" ]; then echo "connector $name: not registered (or $url does not answer)"; return 1; fi
  # shellcheck disable=SC2086 # word splitting on purpose
  set -- $s
  local connector="$1"; shift
  echo "connector $name: $connector, tasks: ${*:-none}"
}

if [ "${1:-}" = status ]; then status_line; exit $?; fi
[ "$#" -eq 0 ] || fail "usage: register.sh [status]"

# --- render the config: @NAME@ placeholders from the environment --------------------
config="$(cat "$template")"
: "${CDC_TOPIC_PREFIX:=pg}"
for var in POSTGRES_HOST POSTGRES_PORT POSTGRES_DB POSTGRES_SCHEMA POSTGRES_USER CDC_TOPIC_PREFIX; do
  [ -n "${!var:-}" ] || fail "$var is not set"
  value="${!var}"
  case "$value" in *'"'* | *'\'* | *'@'*) fail "$var must not contain '\"', '\\' or '@'" ;; esac
  config="${config//"@$var@"/"$value"}"
done
if grep -q '@[A-Z_]*@' <<<"$config"; then
  fail "unfilled placeholder in $template: $(grep -o '@[A-Z_]*@' <<<"$config" | head -n 1)"
fi
printf '%s\n' "$config" >"$tmp/config.json"

# A flat JSON object of strings as sorted "key"="value" lines, without "name" (the
# worker adds it): the worker's copy and ours compare equal when nothing changed.
pairs() {
  tr -d '\n' | grep -o '"[^"]*"[[:space:]]*:[[:space:]]*"[^"]*"' |
    sed 's/"[[:space:]]*:[[:space:]]*"/"="/' | grep -v '^"name"=' | sort
}

# --- wait for the REST API -----------------------------------------------------------
deadline=$((SECONDS + wait_secs))
until [ "$(http GET /)" = 200 ]; do
  [ "$SECONDS" -ge "$deadline" ] &&
    fail "Kafka Connect at $url does not answer after ${wait_secs}s ($(cat "$tmp/curl.err")); see $log_hint"
  sleep 1
done

# --- register (PUT is create-or-update; skipped when the worker has this config) ----
# After a change the worker restarts the connector and its task; until it has, the
# status still shows the old ones: a changed or restarted connector has to be seen
# RUNNING on 5 polls in a row (1 s apart), an unchanged one once.
need=1
# 200 (has one) or 404 (has none) decide; 409/5xx: the worker is still starting
while :; do
  code="$(http GET "/connectors/$name/config")"
  case "$code" in 200 | 404) break ;; esac
  [ "$SECONDS" -ge "$deadline" ] &&
    fail "GET /connectors/$name/config: HTTP $code: $(head -c 500 "$tmp/body"); see $log_hint"
  sleep 1
done
if [ "$code" = 200 ] && [ "$(pairs <"$tmp/body")" = "$(pairs <"$tmp/config.json")" ]; then
  say "connector $name: config unchanged"
else
  need=5
  [ "$code" = 200 ] && what=updating || what=creating
  say "$what connector $name on $url"
  while :; do
    code="$(http PUT "/connectors/$name/config" "$tmp/config.json")"
    case "$code" in
      200 | 201) break ;;
      # 409: the worker is rebalancing or still reading its config topic; 5xx, 000: retry
      409 | 5?? | 000) ;;
      *) fail "PUT /connectors/$name/config: HTTP $code: $(head -c 2000 "$tmp/body")" ;;
    esac
    [ "$SECONDS" -ge "$deadline" ] &&
      fail "PUT /connectors/$name/config kept failing (HTTP $code: $(head -c 500 "$tmp/body")); see $log_hint"
    sleep 2
  done
fi

# --- wait until the connector and its tasks run ---------------------------------------
restarted_at=""
seen=0
deadline=$((SECONDS + wait_secs))
while :; do
  s="$(states)"
  # shellcheck disable=SC2086
  set -- $s
  if [ "$#" -ge 2 ] && [ -z "$(printf '%s\n' "$@" | grep -vx RUNNING)" ]; then
    seen=$((seen + 1))
    if [ "$seen" -ge "$need" ]; then say "$(status_line)"; exit 0; fi
  else
    seen=0
  fi
  if [[ " $s " == *" FAILED "* ]]; then
    trace="$(grep -o '"trace":"[^"]*' "$tmp/body" | head -n 1 | cut -d'"' -f4 | sed 's/\\n.*//' || true)"
    if [ -z "$restarted_at" ]; then
      say "connector $name has FAILED parts ($s); restarting them once: ${trace:-no trace}"
      http POST "/connectors/$name/restart?includeTasks=true&onlyFailed=true" >/dev/null
      restarted_at=$SECONDS
      need=5
    elif [ $((SECONDS - restarted_at)) -ge 20 ]; then
      fail "connector $name FAILED again after a restart (states: $s): ${trace:-no trace}; see $log_hint"
    fi
  fi
  [ "$SECONDS" -ge "$deadline" ] &&
    fail "connector $name is not RUNNING after ${wait_secs}s (states: ${s:-unknown}); see $log_hint"
  sleep 1
done
