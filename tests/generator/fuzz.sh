#!/usr/bin/env bash
# Property-based run of the generator service's API (`datagen serve`) against its own
# OpenAPI document, with Schemathesis (PyPI, pinned in requirements.txt, installed into
# a cached virtualenv). Checks: all of Schemathesis's but positive_data_acceptance:
# no 5xx, status codes, content types, headers and bodies as the document declares
# them, schema-violating requests refused. (A schema-valid request may still get a 422:
# the limits depend on the target and on the server's .env, see the document.) The server under test is started here on a free port with
# targets that cannot be written: a Kafka topic that does not exist and a PostgreSQL
# schema without tables, so the runs it starts fail cleanly and nothing of the
# platform is touched. Needs target/release/datagen (make build) and the local stack.
#   fuzz.sh [schemathesis args...]      e.g. fuzz.sh --max-examples 200
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/tests/generator"
cache="${PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/finals-platform}"
stamp="$(sha256sum "$here/requirements.txt" | cut -c1-16)"
venv="$cache/schemathesis-$stamp/venv"
if [ ! -f "$venv/.installed" ]; then
  echo "installing Schemathesis into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check -q -r "$here/requirements.txt" \
    >"$venv/../pip.log" 2>&1 || { tail -n 30 "$venv/../pip.log" >&2; exit 1; }
  touch "$venv/.installed"
fi

bin="$root/target/release/datagen"
[ -x "$bin" ] || { echo "fuzz.sh: $bin is missing (make build)" >&2; exit 1; }
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$root/target/generator-fuzz-server.log"
cd "$root"
GENERATOR_PORT="$port" GENERATOR_BIND=127.0.0.1 KAFKA_TOPIC="generator_fuzz_no_such_topic" \
  GENERATOR_KAFKA_WAIT_SECS=1 POSTGRES_SCHEMA="generator_fuzz_no_such_schema" \
  GENERATOR_MAX_COUNT=1000 GENERATOR_MAX_PG_USERS=1000 GENERATOR_MAX_RUNNING=8 NO_COLOR=1 \
  "$bin" serve >"$log" 2>&1 &
server=$!
trap 'kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/openapi.json" \
  --url "http://127.0.0.1:$port" --checks all --exclude-checks positive_data_acceptance --max-examples 60 \
  --seed 19 --no-color "$@"
# The server survived all of it.
curl -fsS "http://127.0.0.1:$port/health" >/dev/null
if grep -q "panicked" "$log"; then echo "fuzz.sh: the server panicked; see $log" >&2; exit 1; fi
echo "generator fuzz: no server error; server log $log"
