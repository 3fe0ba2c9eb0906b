#!/usr/bin/env bash
# Builds the pg-exactly-once Spark sink against SPARK_VERSION (from .env) and copies its
# jar into the directory given as $1 (the local stack uses .local/spark/plugins, on the
# Connect server's classpath). Quick when nothing changed: Maven only runs when a source
# is newer than the jar or the Spark version differs from the last build's.
# Tests are separate: (cd infra/spark/sink && mvn -B -q test), they need PostgreSQL.
set -euo pipefail

dest="${1:?usage: $0 <destination directory>}"
spark_version="${SPARK_VERSION:?SPARK_VERSION is not set (.env)}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=pg-exactly-once-sink.jar
built="$here/target/$name"
stamp="$here/target/spark.version"

if [ ! -f "$built" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$spark_version" ] ||
  [ -n "$(find "$here/pom.xml" "$here/src/main" -newer "$built" -print -quit)" ]; then
  (cd "$here" && mvn -B -q -Dstyle.color=never package -DskipTests -Dspark.version="$spark_version")
  touch "$built" # Maven keeps an unchanged jar's old mtime; mark it as up to date
  echo "$spark_version" >"$stamp"
fi

mkdir -p "$dest"
if ! cmp -s "$built" "$dest/$name"; then
  # Copy then rename, so a JVM starting meanwhile never sees half a jar.
  cp "$built" "$dest/.$name.tmp"
  mv -f "$dest/.$name.tmp" "$dest/$name"
  echo "pg-exactly-once sink: installed $dest/$name"
fi
