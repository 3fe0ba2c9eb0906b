#!/usr/bin/env bash
# The deployment checks (`make deploy-check`), on a machine without a Docker engine:
#   1. docker-compose.yml resolved and validated by Docker Compose v2 (built once from the
#      Go module proxy by install-compose.sh, cached in ~/.cache/finals-platform),
#   2. infra/docker/Dockerfile through BuildKit's Dockerfile frontend (dockerfile-check/),
#   3. pytest, in the cached Airflow 3 virtualenv (infra/airflow/install-venv.sh):
#      test_compose.py  services, ports and their bind address, healthchecks, dependency
#                       conditions, images, no secret on a command line or fixed in a file
#      test_dags.py     DAG import, ids, settings, Asset wiring (replicate and cdc ->
#                       replicas -> marts), no credentials in tasks
#      test_native_airflow.py  the local Airflow's environment (native.sh), no secret in argv
#      test_cdc.py      change data capture: one connector config for both deployments,
#                       the captured tables = `jobs list --json`, no password in it (and
#                       on the running local stack: the connector runs, no password shown)
#      test_dags_e2e.py every DAG with `airflow dags test` against the local stack (the
#                       CDC DAG: a PostgreSQL change reaches MySQL, the replica Assets
#                       are updated, or none when nothing changed), no secret in a task
#                       log (needs `make up`; skipped while `jobs replicate` does not exist)
#   run.sh [pytest args...]     e.g. run.sh -k e2e
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
compose="$(tests/deploy/install-compose.sh)"
echo "compose: validating docker-compose.yml with $($compose version --short 2>/dev/null || $compose version)" >&2
# shellcheck disable=SC2086 # "docker compose" is two words on purpose
$compose --project-directory "$root" -f docker-compose.yml config --quiet
# The Dockerfile through BuildKit's own frontend (lint rules of `docker build --check`
# and conversion of every stage), built once into the cache.
cache="${PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/finals-platform}"
src=tests/deploy/dockerfile-check
dfcheck="$cache/dockerfile-check/$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"
if [ ! -x "$dfcheck" ]; then
  echo "building $src (BuildKit's Dockerfile frontend) into $dfcheck" >&2
  go="$(tests/deploy/ensure-go.sh)"
  (cd "$src" && CGO_ENABLED=0 GOTOOLCHAIN=local "$go" build -o "$dfcheck" .)
fi
set -a; source <(grep -E '^(SPARK_VERSION|SCALA_BINARY_VERSION|POSTGRES_JDBC_VERSION|MYSQL_CONNECTOR_VERSION|AIRFLOW_VERSION|SUPERSET_VERSION)=' .env); set +a
"$dfcheck" infra/docker/Dockerfile SPARK_VERSION="$SPARK_VERSION" \
  SCALA_BINARY_VERSION="$SCALA_BINARY_VERSION" POSTGRES_JDBC_VERSION="$POSTGRES_JDBC_VERSION" \
  MYSQL_CONNECTOR_VERSION="$MYSQL_CONNECTOR_VERSION" AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}" \
  SUPERSET_VERSION="${SUPERSET_VERSION:-6.1.0}"
venv="$(infra/airflow/install-venv.sh)"
COMPOSE_BIN="$compose" AIRFLOW_VENV_BIN="$venv/bin" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning \
  -rs tests/deploy "$@"
