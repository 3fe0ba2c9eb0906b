# shellcheck shell=bash
# Shared pieces of the local stack: settings, logging and process helpers.
# Sourced by stack.sh; ROOT and HERE are set by the caller.

# .env is the single source of configuration; variables already in the environment
# win, as they do for docker compose and the Rust binaries.
load_env() {
  local line key
  while IFS= read -r line || [ -n "$line" ]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    key="${line%%=*}"
    [[ -n "${!key+x}" ]] && continue
    eval "export $line"
  done <"$ROOT/.env"
}
load_env

CACHE="${PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/finals-platform}"
STATE="${PLATFORM_STATE:-$ROOT/.local}"
LOGS="$STATE/logs"
RUN="$STATE/run"
UP_TIMEOUT="${PLATFORM_UP_TIMEOUT:-180}"

SPARK_VENV="$CACHE/spark-$SPARK_VERSION/venv"
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
KAFKA_CONNECT_LIBS="$CACHE/kafka-connect-$KAFKA_VERSION/libs"
# Kafka Connect's plugin.path: one folder per plugin below it.
CONNECT_PLUGIN_PATH="$CACHE/debezium-$DEBEZIUM_VERSION/plugins"
SPARK_EXTRA_JARS="$CACHE/spark-extra-$SPARK_VERSION-pg$POSTGRES_JDBC_VERSION-my$MYSQL_CONNECTOR_VERSION/jars"
SINK_JAR_DIR="$STATE/spark/plugins"

log() { printf '%s [stack] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '%s [stack] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Run a command as a system account (PostgreSQL and MariaDB refuse to run as root).
as_user() {
  local user="$1"; shift
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_of() { local f="$RUN/$1.pid"; [ -s "$f" ] && cat "$f"; }

# A pid file only counts while its process lives and still runs what we started
# (pids get reused), recognised by a marker in its command line.
running() {
  local name="$1" marker="$2" pid
  pid="$(pid_of "$name")" || return 1
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# Start a long-running process detached from this shell, output to its log.
spawn() {
  local name="$1"; shift
  mkdir -p "$LOGS" "$RUN"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_port() {
  local name="$1" port="$2" deadline=$((SECONDS + UP_TIMEOUT))
  until port_open "$port"; do
    # Liveness by pid only: the command line changes while launcher scripts exec.
    [ -n "${3:-}" ] && ! kill -0 "$(pid_of "$name")" 2>/dev/null &&
      die "$name exited while starting; see $LOGS/$name.log"
    [ "$SECONDS" -ge "$deadline" ] &&
      die "$name did not open port $port within ${UP_TIMEOUT}s; see $LOGS/$name.log"
    sleep 0.3
  done
}

# Refuse to start on a port that something else already holds.
port_free_or_die() {
  local name="$1" port="$2"
  port_open "$port" && die "port $port is taken by a process this stack did not start; cannot start $name (stop it or change the port in .env)"
  return 0
}

stop_pid() {
  local name="$1" marker="$2" pid i
  if ! running "$name" "$marker"; then rm -f "$RUN/$name.pid"; return 0; fi
  pid="$(pid_of "$name")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.3
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in 30s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
}

spark_home() { echo "$SPARK_VENV/lib/python3.11/site-packages/pyspark"; }

source "$HERE/install.sh"
source "$HERE/services.sh"
