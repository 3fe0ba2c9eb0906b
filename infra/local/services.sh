# shellcheck shell=bash
# Start, stop and inspect each service of the local stack.

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# --- PostgreSQL -------------------------------------------------------------
PG_DIR="$STATE/postgres"
PG_MARKER="$STATE/postgres/data"

pg_admin_env() { echo "PGHOST=$PG_DIR/run PGPORT=$POSTGRES_PORT PGUSER=$POSTGRES_ADMIN_USER"; }

# Change data capture (Debezium, infra/kafka-connect/) decodes the WAL through a logical
# replication slot: wal_level=logical, and room for slots and WAL senders. Given on the
# server's command line, so they hold for a data directory initialised before too.
PG_CDC_SETTINGS="-c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10"
# The warehouse's hash keys put every insert on a random index page, and the first change
# of a page after a checkpoint writes the whole page to the WAL: with the default 1 GB
# of WAL between checkpoints, a load at 1,000 changes/s checkpointed every minute and
# wrote 6 MB/s of WAL, most of it page images, which Debezium's decoder and the standby
# read too. Compressed page images and checkpoints every 15 minutes write a quarter of
# that (docs/BENCHMARKS.md, data vault lag).
PG_WAL_SETTINGS="-c wal_compression=lz4 -c max_wal_size=4GB -c checkpoint_timeout=15min"
# The primary's and the standby's: a hot standby needs max_connections, max_wal_senders
# (and the other limits) at least as high as its primary's.
PG_SERVER_SETTINGS="-c listen_addresses=localhost -c max_connections=200 -c shared_buffers=128MB -c fsync=on $PG_CDC_SETTINGS $PG_WAL_SETTINGS"

# Does the running server have the settings above? ("" when it does not answer)
pg_cdc_ready() {
  PGHOST="$PG_DIR/run" PGPORT="$POSTGRES_PORT" PGUSER="$POSTGRES_ADMIN_USER" \
    psql -X -q -A -t -d postgres -c "SELECT current_setting('wal_level') = 'logical'
      AND current_setting('max_replication_slots')::int >= 10
      AND current_setting('max_wal_senders')::int >= 10" 2>/dev/null || true
}

start_postgres() {
  local bin; bin="$(pg_bin)"
  [ -n "$bin" ] || die "PostgreSQL binaries not found under /usr/lib/postgresql"
  if running postgres "$PG_MARKER"; then
    case "$(pg_cdc_ready)" in
      t) log "postgres already running"; return 0 ;;
      f) log "postgres runs without wal_level=logical (change data capture needs it); restarting it"
         stop_postgres ;;
      *) log "postgres is running but does not answer; leaving it as it is"; return 0 ;;
    esac
  fi
  port_free_or_die postgres "$POSTGRES_PORT"
  mkdir -p "$PG_DIR/run" "$LOGS"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$PG_DIR" "$PG_DIR/run"; fi
  chmod 700 "$PG_DIR/run"
  if [ ! -s "$PG_DIR/data/PG_VERSION" ]; then
    log "initialising PostgreSQL data directory"
    local pwfile="$PG_DIR/.pw"
    printf '%s\n' "$POSTGRES_ADMIN_PASSWORD" >"$pwfile"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$pwfile"
    # Local socket connections (in a 0700 directory) are trusted; TCP needs a password.
    as_user postgres "$bin/initdb" -D "$PG_DIR/data" -U "$POSTGRES_ADMIN_USER" -E UTF8 \
      --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 --pwfile="$pwfile" \
      >>"$LOGS/postgres.log" 2>&1 || { rm -f "$pwfile"; die "initdb failed; see $LOGS/postgres.log"; }
    rm -f "$pwfile"
  fi
  touch "$LOGS/postgres.log"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$LOGS/postgres.log"
  log "starting postgres on port $POSTGRES_PORT"
  as_user postgres "$bin/pg_ctl" -D "$PG_DIR/data" -l "$LOGS/postgres.log" -w -t "$UP_TIMEOUT" \
    -o "-p $POSTGRES_PORT -k $PG_DIR/run $PG_SERVER_SETTINGS" \
    start >/dev/null || die "postgres did not start; see $LOGS/postgres.log"
  mkdir -p "$RUN"
  head -n 1 "$PG_DIR/data/postmaster.pid" >"$RUN/postgres.pid"
}

# psql as the platform user over TCP, as the jobs connect (password from the environment).
platform_psql() {
  PGPASSWORD="$POSTGRES_PASSWORD" psql -q -X -v ON_ERROR_STOP=1 -h "$POSTGRES_HOST" \
    -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$POSTGRES_DB" "$@"
}

init_postgres() {
  log "initialising the PostgreSQL database (idempotent)"
  # Exported in a subshell, never passed as arguments: argv is visible in `ps`.
  (
    export PGHOST="$PG_DIR/run" PGPORT="$POSTGRES_PORT" PGUSER="$POSTGRES_ADMIN_USER" \
      APP_DB="$POSTGRES_DB" APP_SCHEMA="$POSTGRES_SCHEMA" APP_USER="$POSTGRES_USER" \
      APP_PASSWORD="$POSTGRES_PASSWORD" APP_DWH_DB="$DWH_DB" \
      APP_REPLICATION_USER="$POSTGRES_REPLICATION_USER" \
      APP_REPLICATION_PASSWORD="$POSTGRES_REPLICATION_PASSWORD"
    "$ROOT/infra/db/postgres/init.sh"
  ) >>"$LOGS/postgres-init.log" 2>&1 || die "PostgreSQL init failed; see $LOGS/postgres-init.log"
}

stop_postgres() {
  if running postgres "$PG_MARKER"; then
    log "stopping postgres"
    as_user postgres "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  stop_pid postgres "$PG_MARKER"
}

# --- PostgreSQL hot standby (streaming replication from the primary) -------
# Cloned from the primary with pg_basebackup on its first start (infra/db/postgres/
# standby-clone.sh), then fed by streaming replication through the physical slot
# POSTGRES_STANDBY_SLOT, as POSTGRES_REPLICATION_USER. The batch jobs read it
# (POSTGRES_READ_FROM=standby). Nothing on the primary needs a restart: its wal_level
# (logical) and max_wal_senders already allow it, and initdb's pg_hba.conf admits
# replication connections from localhost with a password.
PGS_DIR="$STATE/postgres-standby"
PGS_MARKER="$PGS_DIR/data"

pg_standby_admin() {
  PGHOST="$PGS_DIR/run" PGPORT="$POSTGRES_STANDBY_PORT" PGUSER="$POSTGRES_ADMIN_USER" \
    psql -X -q -A -t -d postgres "$@"
}

pg_primary_admin() {
  PGHOST="$PG_DIR/run" PGPORT="$POSTGRES_PORT" PGUSER="$POSTGRES_ADMIN_USER" \
    psql -X -q -A -t -d postgres "$@"
}

# The replication role's password for the walreceiver and pg_basebackup, in a
# passfile only the postgres account reads (never in argv or postgresql.auto.conf);
# rewritten on every start, so it follows .env.
write_standby_passfile() {
  local pass="$PGS_DIR/.pgpass" escaped
  escaped="$(printf '%s' "$POSTGRES_REPLICATION_PASSWORD" | sed 's/[\\:]/\\&/g')"
  (umask 077; printf '*:*:*:%s:%s\n' "$POSTGRES_REPLICATION_USER" "$escaped" >"$pass")
  [ "$(id -u)" -eq 0 ] && chown postgres: "$pass"
  return 0
}

start_postgres_standby() {
  local bin; bin="$(pg_bin)"
  if running postgres-standby "$PGS_MARKER"; then
    log "postgres-standby already running"
    standby_warn_if_promoted
    return 0
  fi
  port_free_or_die postgres-standby "$POSTGRES_STANDBY_PORT"
  mkdir -p "$PGS_DIR/run" "$LOGS"
  touch "$LOGS/postgres-standby.log"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$PGS_DIR" "$PGS_DIR/run" "$LOGS/postgres-standby.log"; fi
  chmod 700 "$PGS_DIR" "$PGS_DIR/run"
  write_standby_passfile
  if [ ! -s "$PGS_DIR/data/PG_VERSION" ]; then
    log "cloning the primary into postgres-standby (pg_basebackup, slot $POSTGRES_STANDBY_SLOT)"
    rm -rf "$PGS_DIR/data"
    as_user postgres env PGPASSFILE="$PGS_DIR/.pgpass" PG_BIN="$bin" PRIMARY_HOST="$POSTGRES_HOST" \
      PRIMARY_PORT="$POSTGRES_PORT" REPL_USER="$POSTGRES_REPLICATION_USER" \
      SLOT="$POSTGRES_STANDBY_SLOT" STANDBY_DATA="$PGS_DIR/data" \
      "$ROOT/infra/db/postgres/standby-clone.sh" >>"$LOGS/postgres-standby.log" 2>&1 ||
      { rm -rf "$PGS_DIR/data"; die "cloning the primary into postgres-standby failed; see $LOGS/postgres-standby.log"; }
  fi
  log "starting postgres-standby on port $POSTGRES_STANDBY_PORT"
  # hot_standby_feedback: the primary keeps the row versions the standby's snapshots
  # still read, so a long batch read is not cancelled by the primary's vacuum.
  local conninfo="host=$POSTGRES_HOST port=$POSTGRES_PORT user=$POSTGRES_REPLICATION_USER passfile=$PGS_DIR/.pgpass application_name=$POSTGRES_STANDBY_SLOT"
  as_user postgres "$bin/pg_ctl" -D "$PGS_DIR/data" -l "$LOGS/postgres-standby.log" -w -t "$UP_TIMEOUT" \
    -o "-p $POSTGRES_STANDBY_PORT -k $PGS_DIR/run $PG_SERVER_SETTINGS -c hot_standby=on -c hot_standby_feedback=on -c primary_slot_name=$POSTGRES_STANDBY_SLOT -c primary_conninfo='$conninfo'" \
    start >/dev/null || die "postgres-standby did not start; see $LOGS/postgres-standby.log (rebuild it: make standby-rebuild)"
  mkdir -p "$RUN"
  head -n 1 "$PGS_DIR/data/postmaster.pid" >"$RUN/postgres-standby.pid"
  standby_warn_if_promoted
}

# A standby that was promoted still runs but no longer follows the primary.
standby_warn_if_promoted() {
  if [ "$(pg_standby_admin -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; then
    log "WARNING: postgres-standby is not in recovery (promoted): it no longer follows the primary; rebuild it with: make standby-rebuild"
  fi
}

stop_postgres_standby() {
  if running postgres-standby "$PGS_MARKER"; then
    log "stopping postgres-standby"
    as_user postgres "$(pg_bin)/pg_ctl" -D "$PGS_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  stop_pid postgres-standby "$PGS_MARKER"
}

# A new copy of the primary: for a standby that is broken, promoted, or lost the WAL
# it needed. The primary keeps running.
rebuild_postgres_standby() {
  running postgres "$PG_MARKER" || die "the primary (postgres) is not running: make up first"
  stop_postgres_standby
  log "removing the standby's data directory $PGS_DIR/data"
  rm -rf "$PGS_DIR/data"
  start_postgres_standby
  standby_status
}

# One line: is the standby following the primary, and how far behind it replays.
standby_status() {
  local recovery row
  if ! running postgres-standby "$PGS_MARKER"; then
    echo "postgres standby: stopped (make up starts it; make standby-rebuild makes a new copy)"
    return 0
  fi
  recovery="$(pg_standby_admin -c 'SELECT pg_is_in_recovery()' 2>/dev/null || true)"
  case "$recovery" in
    f) echo "postgres standby: PROMOTED (not in recovery): it no longer follows the primary; rebuild it: make standby-rebuild"; return 0 ;;
    t) ;;
    *) echo "postgres standby: does not answer; see $LOGS/postgres-standby.log"; return 0 ;;
  esac
  row="$(pg_primary_admin -F ' ' -v slot="$POSTGRES_STANDBY_SLOT" 2>/dev/null <<'SQL' || true
SELECT state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
       coalesce(round(extract(epoch FROM replay_lag)::numeric, 3), 0)
  FROM pg_stat_replication WHERE application_name = :'slot' LIMIT 1;
SQL
)"
  if [ -z "$row" ]; then
    echo "postgres standby: in recovery but not streaming from the primary (slot $POSTGRES_STANDBY_SLOT); see $LOGS/postgres-standby.log"
  else
    local state bytes secs
    read -r state bytes secs <<<"$row"
    echo "postgres standby: $state from the primary (slot $POSTGRES_STANDBY_SLOT), replay lag $bytes bytes, ${secs} s"
  fi
}

# --- MariaDB (the MySQL server of the local stack) --------------------------
MY_DIR="$STATE/mariadb"
MY_SOCK="$MY_DIR/run/mysqld.sock"
MY_MARKER="--datadir=$MY_DIR/data"

mysql_admin() { mariadb --no-defaults --socket="$MY_SOCK" -uroot "$@"; }

start_mariadb() {
  if running mariadb "$MY_MARKER"; then log "mariadb already running"; return 0; fi
  port_free_or_die mariadb "$MYSQL_PORT"
  mkdir -p "$MY_DIR/run" "$LOGS"
  local user_opt=()
  if [ "$(id -u)" -eq 0 ]; then chown mysql: "$MY_DIR" "$MY_DIR/run"; user_opt=(--user=mysql); fi
  if [ ! -d "$MY_DIR/data/mysql" ]; then
    log "initialising MariaDB data directory"
    rm -rf "$MY_DIR/data"
    mariadb-install-db --no-defaults "${user_opt[@]}" --datadir="$MY_DIR/data" \
      --auth-root-authentication-method=socket --skip-test-db \
      >>"$LOGS/mariadb.log" 2>&1 || die "mariadb-install-db failed; see $LOGS/mariadb.log"
  fi
  log "starting mariadb on port $MYSQL_PORT"
  spawn mariadb mariadbd --no-defaults "${user_opt[@]}" "$MY_MARKER" \
    --port="$MYSQL_PORT" --bind-address=127.0.0.1 --socket="$MY_SOCK" \
    --pid-file="$MY_DIR/run/mariadbd.pid" --skip-name-resolve \
    --innodb-buffer-pool-size=256M --max-connections=200 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
  wait_port mariadb "$MYSQL_PORT" "$MY_MARKER"
  local deadline=$((SECONDS + UP_TIMEOUT))
  until mysql_admin -e 'SELECT 1' >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && die "mariadb does not answer queries; see $LOGS/mariadb.log"
    sleep 0.3
  done
}

init_mariadb() {
  log "initialising the MySQL database (idempotent)"
  # Anonymous accounts would shadow the platform user for local connections.
  mysql_admin -e "DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES;" \
    >>"$LOGS/mariadb-init.log" 2>&1 || true
  (
    export MYSQL_ADMIN_ARGS="--no-defaults --socket=$MY_SOCK -uroot" APP_DB="$MYSQL_DB" \
      APP_USER="$MYSQL_USER" APP_PASSWORD="$MYSQL_PASSWORD"
    "$ROOT/infra/db/mysql/init.sh"
  ) >>"$LOGS/mariadb-init.log" 2>&1 || die "MySQL init failed; see $LOGS/mariadb-init.log"
}

stop_mariadb() { stop_pid mariadb "$MY_MARKER"; }

# --- Kafka (KRaft, one node acting as broker and controller) ----------------
KAFKA_DIR="$STATE/kafka"
KAFKA_MARKER="$KAFKA_DIR/server.properties"

kafka_tool() { java -Xmx256m -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2-tools.properties" -cp "$KAFKA_LIBS/*" "$@"; }

# Kafka's topic tool (kafka-topics.sh) against the stack's broker.
kafka_topics() {
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" "$@"
}

# The sum of the end offsets of the topics matching the regex $1: how many records they
# have taken so far (benchmarks count Debezium's output with it).
kafka_end_offsets() {
  kafka_tool org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" \
    --topic "$1" 2>/dev/null | awk -F: '{ n += $3 } END { print n + 0 }'
}

start_kafka() {
  if running kafka "$KAFKA_MARKER"; then log "kafka already running"; return 0; fi
  port_free_or_die kafka "$KAFKA_PORT"
  port_free_or_die kafka-controller "$KAFKA_CONTROLLER_PORT"
  mkdir -p "$KAFKA_DIR/data" "$LOGS"
  sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    -e "s#@ADVERTISED_HOST@#localhost#g" -e "s#@LOG_DIRS@#$KAFKA_DIR/data#g" \
    -e "s#@PARTITIONS@#$KAFKA_TOPIC_PARTITIONS#g" \
    "$ROOT/infra/kafka/server.properties" >"$KAFKA_MARKER"
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    log "formatting Kafka storage (KRaft)"
    local cluster_id
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    kafka_tool kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$KAFKA_MARKER" \
      >>"$LOGS/kafka.log" 2>&1 || die "formatting Kafka storage failed; see $LOGS/kafka.log"
  fi
  log "starting kafka on port $KAFKA_PORT"
  local heap; read -r -a heap <<<"${KAFKA_HEAP_OPTS:-}"
  spawn kafka java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_MARKER"
  wait_port kafka "$KAFKA_PORT" "$KAFKA_MARKER"
}

init_kafka_topic() {
  log "creating topic $KAFKA_TOPIC (idempotent)"
  kafka_topics --create --if-not-exists --topic "$KAFKA_TOPIC" --partitions "$KAFKA_TOPIC_PARTITIONS" \
    --replication-factor 1 >>"$LOGS/kafka-init.log" 2>&1 ||
    die "creating Kafka topic $KAFKA_TOPIC failed; see $LOGS/kafka-init.log"
}

stop_kafka() { stop_pid kafka "$KAFKA_MARKER"; }

# --- Kafka Connect (distributed mode, one worker) with Debezium's PostgreSQL connector
CONNECT_DIR="$STATE/kafka-connect"
CONNECT_MARKER="$CONNECT_DIR/connect-distributed.properties"

start_kafka_connect() {
  if running kafka-connect "$CONNECT_MARKER"; then log "kafka-connect already running"; return 0; fi
  port_free_or_die kafka-connect "$KAFKA_CONNECT_PORT"
  mkdir -p "$CONNECT_DIR" "$LOGS"
  sed -e "s#@BOOTSTRAP_SERVERS@#$KAFKA_BOOTSTRAP_SERVERS#g" -e "s#@PORT@#$KAFKA_CONNECT_PORT#g" \
    -e "s#@PLUGIN_PATH@#$CONNECT_PLUGIN_PATH#g" \
    "$ROOT/infra/kafka-connect/connect-distributed.properties" >"$CONNECT_MARKER"
  log "starting kafka-connect on port $KAFKA_CONNECT_PORT (Debezium $DEBEZIUM_VERSION)"
  local heap; read -r -a heap <<<"${KAFKA_CONNECT_HEAP_OPTS:-}"
  (
    # The worker's environment holds what Java needs and one secret: POSTGRES_PASSWORD,
    # which the env config provider hands to the connector (${env:POSTGRES_PASSWORD} in
    # its config). Everything else from .env (other passwords, the Spark token) stays out.
    local var
    while read -r var; do
      case "$var" in PATH | HOME | LANG | LC_ALL | TZ | JAVA_HOME | POSTGRES_PASSWORD) ;; *) export -n "$var" ;; esac
    done < <(compgen -e)
    # The throughput collector: a worker has no pauses to keep short, and G1 with a
    # 20 ms target collected its young generation hundreds of times a minute.
    spawn kafka-connect java "${heap[@]}" -XX:+UseParallelGC \
      -Dlog4j2.configurationFile="$ROOT/infra/kafka-connect/log4j2.properties" \
      -cp "$KAFKA_CONNECT_LIBS/*" org.apache.kafka.connect.cli.ConnectDistributed "$CONNECT_MARKER"
  )
}

# The change data capture connector, registered idempotently (a no-op when the worker
# already has this config); returns once the connector and its task are RUNNING.
register_cdc() {
  wait_port kafka-connect "$KAFKA_CONNECT_PORT" "$CONNECT_MARKER"
  log "registering the change data capture connector $CDC_CONNECTOR (idempotent)"
  KAFKA_CONNECT_URL="http://localhost:$KAFKA_CONNECT_PORT" CDC_WAIT_SECS="$UP_TIMEOUT" \
    CDC_LOG_HINT="$LOGS/kafka-connect.log" "$ROOT/infra/kafka-connect/register.sh" ||
    die "the change data capture connector $CDC_CONNECTOR is not running; see $LOGS/kafka-connect.log"
}

cdc_status() {
  KAFKA_CONNECT_URL="http://localhost:$KAFKA_CONNECT_PORT" "$ROOT/infra/kafka-connect/register.sh" status
}

stop_kafka_connect() { stop_pid kafka-connect "$CONNECT_MARKER"; }

# --- Spark: standalone master, one worker, the Spark Connect server ---------
SPARK_DIR="$STATE/spark"
MASTER_URL="spark://$SPARK_MASTER_HOST:$SPARK_MASTER_PORT"

spark_env() {
  # SPARK_REMOTE is the clients' setting; spark-submit would take it as its own.
  unset SPARK_REMOTE
  export SPARK_LOCAL_IP=127.0.0.1
  export SPARK_HOME; SPARK_HOME="$(spark_home)"
  export SPARK_LOG_DIR="$LOGS" SPARK_WORKER_DIR="$SPARK_DIR/work" \
    SPARK_LOCAL_DIRS="$SPARK_DIR/tmp" SPARK_DAEMON_MEMORY SPARK_NO_DAEMONIZE=1 \
    SPARK_CONF_DIR="$SPARK_DIR/conf" PYSPARK_PYTHON="$SPARK_VENV/bin/python"
  mkdir -p "$SPARK_DIR/work" "$SPARK_DIR/tmp" "$SPARK_DIR/conf" "$SPARK_DIR/checkpoints" \
    "$SPARK_DIR/events" "$SINK_JAR_DIR"
  cp "$ROOT/infra/spark/log4j2.properties" "$SPARK_DIR/conf/log4j2.properties"
}

start_spark_master() {
  if running spark-master deploy.master.Master; then log "spark-master already running"; return 0; fi
  port_free_or_die spark-master "$SPARK_MASTER_PORT"
  port_free_or_die spark-master-ui "$SPARK_MASTER_WEBUI_PORT"
  log "starting spark-master on port $SPARK_MASTER_PORT (UI $SPARK_MASTER_WEBUI_PORT)"
  # No kill links in the UI: whoever reaches it must not stop the platform's work.
  SPARK_MASTER_OPTS="-Dspark.ui.killEnabled=false" \
  spawn spark-master "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host "$SPARK_MASTER_HOST" --port "$SPARK_MASTER_PORT" --webui-port "$SPARK_MASTER_WEBUI_PORT"
}

start_spark_worker() {
  if running spark-worker deploy.worker.Worker; then log "spark-worker already running"; return 0; fi
  port_free_or_die spark-worker-ui "$SPARK_WORKER_WEBUI_PORT"
  log "starting spark-worker ($SPARK_WORKER_CORES cores, $SPARK_WORKER_MEMORY)"
  spawn spark-worker "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
    --host "$SPARK_MASTER_HOST" --cores "$SPARK_WORKER_CORES" --memory "$SPARK_WORKER_MEMORY" \
    --webui-port "$SPARK_WORKER_WEBUI_PORT" "$MASTER_URL"
}

start_spark_connect() {
  # The streaming sink plugin must be on the classpath before the server starts.
  local built
  built="$("$ROOT/infra/spark/sink/build.sh" "$SINK_JAR_DIR" 2>>"$LOGS/sink-build.log")" ||
    die "building the Spark sink plugin failed; see $LOGS/sink-build.log"
  if running spark-connect SparkConnectServer; then
    if [ -z "$built" ]; then log "spark-connect already running"; return 0; fi
    log "the sink plugin changed; restarting spark-connect to load it"
    stop_pid spark-connect SparkConnectServer
  fi
  port_free_or_die spark-connect "$SPARK_CONNECT_PORT"
  local cp="$SPARK_EXTRA_JARS/*:$SINK_JAR_DIR/*"
  # Spark 4's launcher leaves the Connect jar off the executors' classpath, but the
  # closures the Connect server ships to them live in it.
  local connect_jar="$SPARK_HOME/jars/spark-connect_${SCALA_BINARY_VERSION}-$SPARK_VERSION.jar"
  log "starting spark-connect on port $SPARK_CONNECT_PORT (application UI $SPARK_UI_PORT)"
  # The launcher sizes the Connect server like a daemon when SPARK_DAEMON_MEMORY is
  # set, which would override --driver-memory. The server requires SPARK_CONNECT_TOKEN
  # from every client; it reads it from its environment, never from argv. The
  # database passwords stay in the environment of the server and (through the
  # worker) the executors: the platform's connection provider reads them there.
  [ -n "${SPARK_CONNECT_TOKEN:-}" ] || die "SPARK_CONNECT_TOKEN is not set (.env)"
  SPARK_CONNECT_AUTHENTICATE_TOKEN="$SPARK_CONNECT_TOKEN" \
  spawn spark-connect env -u SPARK_DAEMON_MEMORY "$SPARK_HOME/bin/spark-submit" \
    --class org.apache.spark.sql.connect.service.SparkConnectServer \
    --name "Spark Connect server" --master "$MASTER_URL" \
    --driver-memory "$SPARK_DRIVER_MEMORY" --executor-memory "$SPARK_EXECUTOR_MEMORY" \
    --driver-java-options "$SPARK_DRIVER_JAVA_OPTIONS" \
    --conf spark.executor.extraJavaOptions="$SPARK_EXECUTOR_JAVA_OPTIONS" \
    --conf spark.cores.max="$SPARK_CORES_MAX" \
    --conf spark.driver.host="$SPARK_MASTER_HOST" \
    --conf spark.connect.grpc.binding.port="$SPARK_CONNECT_PORT" \
    --conf spark.ui.port="$SPARK_UI_PORT" --conf spark.ui.killEnabled=false \
    --conf spark.driver.extraClassPath="$cp" --conf spark.executor.extraClassPath="$cp:$connect_jar" \
    --conf spark.sql.streaming.checkpointLocation="$SPARK_DIR/checkpoints" \
    --conf spark.sql.shuffle.partitions="$SPARK_CORES_MAX" \
    --conf spark.sql.session.timeZone=UTC \
    --conf spark.eventLog.enabled=true --conf spark.eventLog.dir="$SPARK_DIR/events" \
    spark-internal
  wait_port spark-connect "$SPARK_CONNECT_PORT" SparkConnectServer
}

stop_spark() {
  stop_pid spark-connect SparkConnectServer
  stop_pid spark-worker deploy.worker.Worker
  stop_pid spark-master deploy.master.Master
}

# Restarts the Spark services on version $1 (installed on first use); the databases
# and Kafka keep running. For the version matrix and the benchmarks across versions.
restart_spark_on() {
  (
    export SPARK_VERSION="$1"
    stop_spark
    "$HERE/stack.sh" up >/dev/null
  )
}

# --- The whole stack --------------------------------------------------------
JOBS_BIN="${JOBS_BIN:-$ROOT/target/release/jobs}"
DATAGEN_BIN="${DATAGEN_BIN:-$ROOT/target/release/datagen}"

# --- The generator service (`datagen serve`; make up-generator) ----------------
GENERATOR_MARKER="datagen serve"

start_generator() {
  local port="${GENERATOR_PORT:-8090}"
  if running generator "$GENERATOR_MARKER"; then return 0; fi
  [ -x "$DATAGEN_BIN" ] || die "$DATAGEN_BIN is missing: build it first (make build)"
  port_free_or_die generator "$port"
  log "starting the generator service on http://127.0.0.1:$port"
  # Settings (and the database password) from the environment (.env), never argv.
  spawn generator env NO_COLOR=1 GENERATOR_BIND=127.0.0.1 GENERATOR_PORT="$port" \
    "$DATAGEN_BIN" serve
  wait_port generator "$port" pid
}

stop_generator() { stop_pid generator "$GENERATOR_MARKER"; }

# PostgreSQL and MariaDB run as their own system users, which must be able to walk
# down to $STATE. A checkout in a private directory (mktemp -d makes 0700) blocks
# them; grant traverse only (o+x, no listing) on the ancestors that lack it.
make_state_reachable() {
  [ "$(id -u)" -eq 0 ] || return 0
  local dir="$STATE"
  while [ "$dir" != / ]; do
    if [ -d "$dir" ] && [ -n "$(find "$dir" -maxdepth 0 -user 0 ! -perm -o+x)" ]; then
      log "granting traverse (o+x) on $dir so that postgres and mysql reach $STATE"
      chmod o+x "$dir"
    fi
    dir="$(dirname "$dir")"
  done
}

stack_up() {
  [ "$#" -eq 0 ] || die "unknown option for up: $1"
  install_all
  mkdir -p "$LOGS" "$RUN"
  make_state_reachable
  spark_env
  start_postgres
  start_mariadb
  start_kafka
  start_kafka_connect
  start_spark_master
  wait_port spark-master "$SPARK_MASTER_PORT" deploy.master.Master
  start_spark_worker
  start_spark_connect
  init_postgres
  start_postgres_standby
  init_mariadb
  init_kafka_topic
  [ -x "$JOBS_BIN" ] || die "$JOBS_BIN is missing: build it first (make build)"
  log "waiting until every service answers (timeout ${UP_TIMEOUT}s)"
  if ! "$JOBS_BIN" check --wait "$UP_TIMEOUT" 2>"$LOGS/check.log"; then
    cat "$LOGS/check.log" >&2
    local svc
    svc="$(grep -o 'service=[a-z-]*' "$LOGS/check.log" | tail -n 1 | cut -d= -f2)"
    case "$svc" in
      postgres) die "PostgreSQL is not usable; see $LOGS/postgres.log" ;;
      postgres-standby) die "the PostgreSQL standby is not usable; see $LOGS/postgres-standby.log (make standby-rebuild makes a new copy)" ;;
      mysql) die "MySQL (MariaDB) is not usable; see $LOGS/mariadb.log" ;;
      kafka) die "Kafka is not usable; see $LOGS/kafka.log" ;;
      spark-connect) die "Spark Connect is not usable; see $LOGS/spark-connect.log (cluster: $LOGS/spark-master.log, $LOGS/spark-worker.log)" ;;
      *) die "a service is not usable; see $LOGS/check.log" ;;
    esac
  fi
  register_cdc
  stack_status
}

stack_down() {
  stop_generator
  stop_spark
  stop_kafka_connect
  stop_kafka
  stop_mariadb
  stop_postgres_standby
  stop_postgres
  log "stopped"
}

# name|port|pid-file name|marker
SERVICES=(
  "postgres|$POSTGRES_PORT|postgres|$PG_MARKER"
  "postgres-standby|$POSTGRES_STANDBY_PORT|postgres-standby|$PGS_MARKER"
  "mysql (mariadb)|$MYSQL_PORT|mariadb|$MY_MARKER"
  "kafka|$KAFKA_PORT|kafka|$KAFKA_MARKER"
  "kafka-connect|$KAFKA_CONNECT_PORT|kafka-connect|$CONNECT_MARKER"
  "spark-master|$SPARK_MASTER_PORT|spark-master|deploy.master.Master"
  "spark-master UI|$SPARK_MASTER_WEBUI_PORT|spark-master|deploy.master.Master"
  "spark-worker|$SPARK_WORKER_WEBUI_PORT|spark-worker|deploy.worker.Worker"
  "spark-connect|$SPARK_CONNECT_PORT|spark-connect|SparkConnectServer"
  "spark app UI|$SPARK_UI_PORT|spark-connect|SparkConnectServer"
  "generator|${GENERATOR_PORT:-8090}|generator|$GENERATOR_MARKER"
)

# Resident memory (MiB) of a process and all its descendants (a worker's executors,
# PostgreSQL's backends).
tree_rss_mib() {
  ps -eo pid=,ppid=,rss= | awk -v root="$1" '
    { ppid[$1] = $2; rss[$1] = $3 }
    END {
      for (p in rss) {
        q = p
        while (q != "" && q != 0 && q != root) q = ppid[q]
        if (q == root) total += rss[p]
      }
      printf "%d", total / 1024
    }'
}

stack_status() {
  local entry name port pidname marker state pid mem total=0 seen=" "
  printf '%-20s %-6s %-8s %-8s %s\n' SERVICE PORT PID RSS STATE
  for entry in "${SERVICES[@]}"; do
    IFS='|' read -r name port pidname marker <<<"$entry"
    if running "$pidname" "$marker"; then
      if port_open "$port"; then state=up; else state="starting (port closed)"; fi
      pid="$(pid_of "$pidname")"
      mem="$(tree_rss_mib "$pid")"
      # Several ports of one process: count its memory once.
      case "$seen" in *" $pid "*) ;; *) total=$((total + mem)); seen+="$pid " ;; esac
      printf '%-20s %-6s %-8s %-8s %s\n' "$name" "$port" "$pid" "${mem}M" "$state"
    else
      if port_open "$port"; then state="port held by another process"; else state=stopped; fi
      printf '%-20s %-6s %-8s %-8s %s\n' "$name" "$port" - - "$state"
    fi
  done
  echo "resident memory of the stack: ${total} MiB; logs: $LOGS"
  standby_status
  if running kafka-connect "$CONNECT_MARKER"; then
    echo "change data capture: $(cdc_status 2>&1 || true)"
  fi
}
