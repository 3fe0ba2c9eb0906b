#!/usr/bin/env bash
# Start Airflow's API server (UI + REST) with the admin login from the environment
# (AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD, i.e. .env). Airflow 3's simple auth
# manager reads passwords from a JSON file; it is written here, readable only by this
# user, and never printed. Used by the docker image and usable by a native start.
#   start-api-server.sh [airflow api-server options...]
set -euo pipefail
: "${AIRFLOW_ADMIN_USER:?}" "${AIRFLOW_ADMIN_PASSWORD:?}"
file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-${AIRFLOW_HOME:-$HOME/airflow}/simple_auth_manager_passwords.json}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$file"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-$AIRFLOW_ADMIN_USER:admin}"
mkdir -p "$(dirname "$file")"
(umask 077 && python3 - "$file" <<'PY'
import json, os, sys
with open(sys.argv[1], "w") as f:
    json.dump({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, f)
    f.write("\n")
PY
)
exec airflow api-server "$@"
