#!/usr/bin/env bash
# Idempotent MySQL/MariaDB init: database, user, grants and tables.
# Used by the local stack and mounted into the mysql image's /docker-entrypoint-initdb.d.
# Connects as an administrator through the client options the caller gives in
# MYSQL_ADMIN_ARGS (e.g. "--socket=/path -uroot"; a password goes in MYSQL_PWD).
# The platform's names come from APP_DB, APP_USER and APP_PASSWORD.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${APP_DB:?}" "${APP_USER:?}" "${APP_PASSWORD:?}"
client="$(command -v mysql || command -v mariadb)"
# shellcheck disable=SC2086 # MYSQL_ADMIN_ARGS is a list of options on purpose
run_sql() { "$client" ${MYSQL_ADMIN_ARGS:-} --batch "$@"; }
# Quote a value as a SQL string literal (backslashes and quotes doubled).
lit() { local v="${1//\\/\\\\}"; printf "'%s'" "${v//\'/\'\'}"; }
ident() { printf '`%s`' "${1//\`/\`\`}"; }
run_sql <<SQL
CREATE DATABASE IF NOT EXISTS $(ident "$APP_DB") CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS $(lit "$APP_USER")@'%' IDENTIFIED BY $(lit "$APP_PASSWORD");
ALTER USER $(lit "$APP_USER")@'%' IDENTIFIED BY $(lit "$APP_PASSWORD");
GRANT ALL PRIVILEGES ON $(ident "$APP_DB").* TO $(lit "$APP_USER")@'%';
FLUSH PRIVILEGES;
SQL
run_sql "$APP_DB" < "$here/tables.sql"
