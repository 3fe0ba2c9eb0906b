#!/usr/bin/env bash
# Builds the pg-exactly-once Spark sink and copies its jar into the directory given as
# $1 (the local stack uses .local/spark/plugins, on the Connect server's classpath).
# Quick when nothing changed: Maven only runs when a source is newer than the jar.
# Tests are separate: (cd infra/spark/sink && mvn -B -q test), they need PostgreSQL.
set -euo pipefail

dest="${1:?usage: $0 <destination directory>}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=pg-exactly-once-sink.jar
built="$here/target/$name"

if [ ! -f "$built" ] || [ -n "$(find "$here/pom.xml" "$here/src/main" -newer "$built" -print -quit)" ]; then
  (cd "$here" && mvn -B -q -Dstyle.color=never package -DskipTests)
  touch "$built" # Maven keeps an unchanged jar's old mtime; mark it as up to date
fi

mkdir -p "$dest"
if ! cmp -s "$built" "$dest/$name"; then
  # Copy then rename, so a JVM starting meanwhile never sees half a jar.
  cp "$built" "$dest/.$name.tmp"
  mv -f "$dest/.$name.tmp" "$dest/$name"
  echo "pg-exactly-once sink: installed $dest/$name"
fi
