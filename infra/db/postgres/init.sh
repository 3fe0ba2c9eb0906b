#!/usr/bin/env bash
# Idempotent PostgreSQL init: role (with REPLICATION, for change data capture),
# database, schema and tables; with APP_REPLICATION_USER (and APP_REPLICATION_PASSWORD)
# set, also the role the hot standby streams as.
# Used by the local stack and mounted into the postgres image's /docker-entrypoint-initdb.d.
# Connects as the admin role through whatever libpq settings the caller exports
# (PGHOST, PGPORT, PGUSER, PGPASSWORD). The platform's names come from APP_DB,
# APP_SCHEMA, APP_USER and APP_PASSWORD, so they never clash with the image's own
# POSTGRES_* variables. APP_DWH_DB, when set, names the data vault warehouse's database
# (owned by the same role; `jobs dwh` creates its tables).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${APP_DB:?}" "${APP_SCHEMA:?}" "${APP_USER:?}" "${APP_PASSWORD:?}"
run_psql() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$@"; }
ROLE_PASSWORD="$APP_PASSWORD" run_psql -d "${APP_ADMIN_DB:-postgres}" -v db="$APP_DB" \
    -v user="$APP_USER" -f "$here/roles.sql"
if [ -n "${APP_DWH_DB:-}" ]; then
  ROLE_PASSWORD="$APP_PASSWORD" run_psql -d "${APP_ADMIN_DB:-postgres}" -v db="$APP_DWH_DB" \
      -v user="$APP_USER" -f "$here/roles.sql"
fi
run_psql -d "${APP_ADMIN_DB:-postgres}" -v user="$APP_USER" -f "$here/replication.sql"
run_psql -d "$APP_DB" -v schema="$APP_SCHEMA" -v user="$APP_USER" -f "$here/schema.sql"
if [ -n "${APP_REPLICATION_USER:-}" ]; then
  : "${APP_REPLICATION_PASSWORD:?APP_REPLICATION_PASSWORD must be set with APP_REPLICATION_USER}"
  ROLE_PASSWORD="$APP_REPLICATION_PASSWORD" run_psql -d "${APP_ADMIN_DB:-postgres}" \
      -v user="$APP_REPLICATION_USER" -f "$here/standby.sql"
fi
