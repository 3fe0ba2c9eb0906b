#!/usr/bin/env bash
# The deployment checks (`make deploy-check`), on a machine without a Docker engine:
#   1. docker-compose.yml resolved and validated by Docker Compose v2 (built once from the
#      Go module proxy by install-compose.sh, cached in ~/.cache/finals-platform),
#   2. pytest, in the cached Airflow 3 virtualenv (infra/airflow/install-venv.sh):
#      test_compose.py  services, ports, healthchecks, dependency conditions, images
#      test_dags.py     DAG import, ids, settings, no credentials in tasks
#      test_dags_e2e.py every DAG with `airflow dags test` against the local stack
#                       (needs `make up`; skipped while `jobs replicate` does not exist)
#   run.sh [pytest args...]     e.g. run.sh -k e2e
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
compose="$(tests/deploy/install-compose.sh)"
echo "compose: validating docker-compose.yml with $($compose version --short 2>/dev/null || $compose version)" >&2
# shellcheck disable=SC2086 # "docker compose" is two words on purpose
$compose --project-directory "$root" -f docker-compose.yml config --quiet
venv="$(infra/airflow/install-venv.sh pytest)"
COMPOSE_BIN="$compose" AIRFLOW_VENV_BIN="$venv/bin" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning \
  -rs tests/deploy "$@"
