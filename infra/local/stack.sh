#!/usr/bin/env bash
# The local stack: the platform's services as native processes, no Docker.
#   stack.sh up               install what is missing, start everything, wait until usable
#   stack.sh down             stop what this stack started (and nothing else)
#   stack.sh status           each service, its port and its state
#   stack.sh up-generator     the generator service (datagen serve) on GENERATOR_PORT
#   stack.sh install          only install
#   stack.sh install-browser  Chromium and chromedriver (for the browser tests)
#   stack.sh standby start|stop|rebuild|status
#                             only the PostgreSQL hot standby (rebuild: a new copy of
#                             the primary, for a broken or promoted standby)
# Installs are cached in $PLATFORM_CACHE (default ~/.cache/finals-platform) so later
# starts reuse them; data, logs and pid files live in $PLATFORM_STATE (default .local/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/local"
# shellcheck source=infra/local/lib.sh
source "$HERE/lib.sh"

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

cmd="${1:-}"
case "$cmd" in
  install) install_all ;;
  install-browser) install_browser ;;
  up-generator) start_generator ;;
  up) shift; stack_up "$@" ;;
  down) stack_down ;;
  status) stack_status ;;
  standby)
    mkdir -p "$LOGS" "$RUN"
    case "${2:-}" in
      start) start_postgres_standby ;;
      stop) stop_postgres_standby ;;
      rebuild) rebuild_postgres_standby ;;
      status) standby_status ;;
      *) usage >&2; exit 2 ;;
    esac ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
