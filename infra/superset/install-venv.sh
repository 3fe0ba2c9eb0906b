#!/usr/bin/env bash
# Install Apache Superset (SUPERSET_VERSION, default 6.1.0), the database drivers and the
# dashboard test's packages (requirements.txt) into a cached virtualenv outside the
# repository, for running Superset natively (infra/superset/native.sh) and for tests/bi/.
# Versions of every dependency are pinned in constraints-<version>.txt. Idempotent: a
# complete install is reused.
#   install-venv.sh     prints the venv's path on stdout
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${SUPERSET_VERSION:-6.1.0}"
cache="${PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/finals-platform}"
venv="$cache/superset-$version/venv"
constraints="$here/constraints-$version.txt"
log="$cache/superset-$version/pip.log"

# A fingerprint of what is asked for: a changed pin reinstalls.
stamp="$(cat "$here/requirements.txt" "$constraints" 2>/dev/null | sha256sum | cut -c1-16)"
if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$stamp" ]; then
  echo "$venv"; exit 0
fi

# Superset 6.1 supports Python 3.10-3.12; prefer the one the constraints were made with.
python=""
for p in python3.11 python3.12 python3.10 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import sys, venv, ensurepip; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' 2>/dev/null; then
    python="$(command -v "$p")"; break
  fi
done
[ -n "$python" ] || { echo "install-venv.sh: need Python 3.10-3.12 with venv/ensurepip (apt-get install python3-venv)" >&2; exit 1; }

echo "installing Apache Superset $version into $venv (log: $log)" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
constraint_args=()
[ -f "$constraints" ] && constraint_args=(-c "$constraints")
if ! "$venv/bin/pip" install --disable-pip-version-check -q "${constraint_args[@]}" \
    "apache-superset==$version" -r "$here/requirements.txt" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "install-venv.sh: pip install failed; see $log" >&2
  exit 1
fi
echo "$stamp" >"$venv/.installed"
echo "$venv"
