# shellcheck shell=bash
# First-use installs of the local stack. Each step checks what is already there
# and does nothing when it is; partial downloads are redone (a marker file is
# written only after a step succeeded).

APT_PACKAGES=(postgresql mariadb-server mariadb-client protobuf-compiler libprotobuf-dev maven
  openjdk-17-jre-headless python3-venv build-essential pkg-config curl)

missing_apt_packages() {
  local p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

install_apt() {
  local missing
  mapfile -t missing < <(missing_apt_packages)
  [ "${#missing[@]}" -eq 0 ] && return 0
  # Java and Maven may come from elsewhere (SDKMAN, a JDK tarball): accept those.
  if command -v java >/dev/null && java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -v '^openjdk-')
  fi
  command -v mvn >/dev/null && mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -vx maven)
  command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null &&
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -vx python3-venv)
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  # The stack runs its own database processes on its own data directories, so the
  # packages must not start the system services (policy-rc.d 101 = "do not start").
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod +x "$policy"
    created_policy=1
  fi
  local rc=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$CACHE/apt.log" 2>&1 &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >>"$CACHE/apt.log" 2>&1 || rc=$?
  [ "$created_policy" -eq 1 ] && as_root rm -f "$policy"
  [ "$rc" -eq 0 ] || die "apt-get install failed; see $CACHE/apt.log"
}

# Headless Chromium and its WebDriver, for the browser tests (`make test`), not for
# the stack itself.
install_browser() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null && return 0
  log "installing Debian packages: chromium chromium-driver (browser tests)"
  mkdir -p "$CACHE"
  { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium chromium-driver; } >>"$CACHE/apt.log" 2>&1 ||
    die "apt-get install chromium chromium-driver failed; see $CACHE/apt.log"
}

install_spark() {
  [ -f "$SPARK_VENV/.installed" ] && return 0
  log "installing Spark $SPARK_VERSION (pyspark from PyPI) into $SPARK_VENV"
  rm -rf "$SPARK_VENV"
  python3 -m venv "$SPARK_VENV"
  "$SPARK_VENV/bin/pip" install -q --disable-pip-version-check "pyspark==$SPARK_VERSION" \
    >"$CACHE/pip-spark.log" 2>&1 || die "pip install pyspark failed; see $CACHE/pip-spark.log"
  [ -f "$(spark_home)/jars/spark-connect_${SCALA_BINARY_VERSION}-$SPARK_VERSION.jar" ] ||
    die "pyspark $SPARK_VERSION has no Spark Connect server jar"
  touch "$SPARK_VENV/.installed"
}

# mvn copy-dependencies of one of the project's poms into a cache folder.
maven_fetch() {
  local what="$1" pom="$2" dest="$3"; shift 3
  [ -f "$dest/.installed" ] && return 0
  log "fetching $what from Maven Central into $dest"
  rm -rf "$dest"
  mkdir -p "$dest"
  mvn -B -q -f "$pom" "$@" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$dest" >"$CACHE/mvn-$what.log" 2>&1 ||
    die "fetching $what failed; see $CACHE/mvn-$what.log"
  touch "$dest/.installed"
}

install_kafka() {
  maven_fetch kafka "$ROOT/infra/kafka/pom.xml" "$KAFKA_LIBS" -Dkafka.version="$KAFKA_VERSION"
}

# Kafka Connect (the worker, same Kafka version as the broker) and Debezium's PostgreSQL
# connector as a plugin folder on its plugin.path (the jars of Debezium's plugin archive).
install_kafka_connect() {
  maven_fetch kafka-connect "$ROOT/infra/kafka-connect/pom.xml" "$KAFKA_CONNECT_LIBS" \
    -Dkafka.version="$KAFKA_VERSION"
  maven_fetch debezium-postgres "$ROOT/infra/kafka-connect/debezium-plugin.pom.xml" \
    "$CONNECT_PLUGIN_PATH/debezium-connector-postgres" -Ddebezium.version="$DEBEZIUM_VERSION"
}

install_spark_extra_jars() {
  maven_fetch spark-extra-jars "$ROOT/infra/spark/extra-jars.pom.xml" "$SPARK_EXTRA_JARS" \
    -Dspark.version="$SPARK_VERSION" -Dscala.binary.version="$SCALA_BINARY_VERSION" \
    -Dpostgres.jdbc.version="$POSTGRES_JDBC_VERSION" \
    -Dmysql.connector.version="$MYSQL_CONNECTOR_VERSION"
}

install_all() {
  mkdir -p "$CACHE"
  install_apt
  install_spark
  install_kafka
  install_kafka_connect
  install_spark_extra_jars
}
