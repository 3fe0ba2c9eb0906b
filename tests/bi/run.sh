#!/usr/bin/env bash
# The dashboards in a real browser (`make bi-check`, part of `make test`): installs
# Debian's chromium and chromium-driver when missing, starts Superset on the local stack
# when it is not running (infra/superset/native.sh up: install, migrate, provision), then
# runs tests/bi/ with pytest in Superset's virtualenv. Screenshots: target/bi-screenshots/.
#   run.sh [pytest args...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "installing Debian's chromium and chromium-driver" >&2
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null
fi
infra/superset/native.sh up
venv="$(infra/superset/install-venv.sh)"
"$venv/bin/python" -m pytest -q -p no:cacheprovider -rs tests/bi "$@"
