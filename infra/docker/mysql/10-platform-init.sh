#!/usr/bin/env bash
# Runs once, when the mysql image initialises an empty data volume
# (/docker-entrypoint-initdb.d). The platform's own, idempotent init is the same
# script the local stack uses: infra/db/mysql, mounted at
# /docker-entrypoint-initdb.d/platform (a directory, which the image's entrypoint
# skips). It is run with bash, so this file works whether the entrypoint executes
# or sources it. The root password goes through MYSQL_PWD for this command only.
MYSQL_PWD="$MYSQL_ROOT_PASSWORD" MYSQL_ADMIN_ARGS="-uroot -hlocalhost" \
  bash /docker-entrypoint-initdb.d/platform/init.sh
