#!/usr/bin/env bash
# Airflow's JWT secret and API secret key, with no fixed value anywhere: every Airflow
# process starts through this wrapper (the docker image's entrypoint, and
# infra/airflow/native.sh for the local Airflow).
#   with-secrets.sh COMMAND [ARGS...]
# For AIRFLOW__API_AUTH__JWT_SECRET and AIRFLOW__API__SECRET_KEY: a value set in the
# environment (AIRFLOW_JWT_SECRET / AIRFLOW_SECRET_KEY in .env) wins; otherwise it comes
# from a file in $PLATFORM_AIRFLOW_SECRETS_DIR (jwt_secret, api_secret_key), generated
# at random (mode 0600) by the first process that needs it and reused from then on, so
# that all Airflow processes share it and it survives restarts. The file appears
# atomically (a hard link of a complete file), so processes starting together agree on
# one value. Then COMMAND is exec'd with both in its environment; they are never printed
# nor put on a command line.
set -euo pipefail
dir="${PLATFORM_AIRFLOW_SECRETS_DIR:?PLATFORM_AIRFLOW_SECRETS_DIR is not set}"
[ "$#" -gt 0 ] || { echo "usage: with-secrets.sh COMMAND [ARGS...]" >&2; exit 2; }

load_secret() {
  local var="$1" name="$2" file tmp value=""
  if [ -n "${!var:-}" ]; then
    export "$var"
    return 0
  fi
  file="$dir/$name"
  if [ ! -s "$file" ]; then
    (umask 077 && mkdir -p "$dir")
    tmp="$(mktemp "$dir/.$name.XXXXXX")" # mode 0600
    # 48 random bytes, base64 without padding (no argv carries the value)
    head -c 48 /dev/urandom | base64 -w 0 | tr -d '=' >"$tmp"
    echo >>"$tmp"
    ln "$tmp" "$file" 2>/dev/null || [ -s "$file" ] || mv -f "$tmp" "$file"
    rm -f "$tmp"
  fi
  IFS= read -r value <"$file" || true
  if [ -z "$value" ]; then
    echo "with-secrets.sh: $file is empty; delete it to generate a new $var" >&2
    exit 1
  fi
  export "$var=$value"
}

load_secret AIRFLOW__API_AUTH__JWT_SECRET jwt_secret
load_secret AIRFLOW__API__SECRET_KEY api_secret_key
exec "$@"
