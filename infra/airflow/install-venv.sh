#!/usr/bin/env bash
# Install Apache Airflow (AIRFLOW_VERSION, default 3.3.2) and the providers the DAGs
# need (requirements.txt), plus pytest, into a cached virtualenv outside the repository,
# for the DAG tests and for running Airflow natively (infra/airflow/native.sh). Versions of every dependency are pinned in
# constraints-<version>.txt (Airflow's own constraint files live on GitHub, which a
# build machine may not reach). Idempotent: a complete install is reused.
#   install-venv.sh     prints the venv's path on stdout
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${AIRFLOW_VERSION:-3.3.2}"
cache="${PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/finals-platform}"
venv="$cache/airflow-$version/venv"
constraints="$here/constraints-$version.txt"
log="$cache/airflow-$version/pip.log"

# A fingerprint of what is asked for: a changed pin reinstalls.
stamp="$(cat "$here/requirements.txt" "$constraints" 2>/dev/null | sha256sum | cut -c1-16)"
if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$stamp" ]; then
  echo "$venv"; exit 0
fi

# Airflow 3.3 supports Python 3.10-3.13; prefer a version the constraints were made with.
python=""
for p in python3.11 python3.12 python3.13 python3.10 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import sys, venv, ensurepip; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null; then
    python="$(command -v "$p")"; break
  fi
done
[ -n "$python" ] || { echo "install-venv.sh: need Python 3.10-3.13 with venv/ensurepip (apt-get install python3-venv)" >&2; exit 1; }

echo "installing Apache Airflow $version into $venv (log: $log)" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
constraint_args=()
[ -f "$constraints" ] && constraint_args=(-c "$constraints")
if ! "$venv/bin/pip" install --disable-pip-version-check -q "${constraint_args[@]}" \
    "apache-airflow==$version" -r "$here/requirements.txt" pytest >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "install-venv.sh: pip install failed; see $log" >&2
  exit 1
fi
echo "$stamp" >"$venv/.installed"
echo "$venv"
