#!/usr/bin/env bash
# Runs once, when the postgres image initialises an empty data volume
# (/docker-entrypoint-initdb.d). The platform's own, idempotent init is the same
# script the local stack uses: infra/db/postgres, mounted at
# /docker-entrypoint-initdb.d/platform (a directory, which the image's entrypoint
# skips). It is run with bash, so this file works whether the entrypoint executes
# or sources it. Local socket connections are trusted while the image initialises.
PGUSER="$POSTGRES_USER" PGHOST=/var/run/postgresql \
  bash /docker-entrypoint-initdb.d/platform/init.sh
# Airflow's metadata database and role (same idempotent SQL, other names).
PGUSER="$POSTGRES_USER" PGHOST=/var/run/postgresql PGOPTIONS="-c client_min_messages=warning" \
  ROLE_PASSWORD="$AIRFLOW_DB_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -d postgres \
  -v db="$AIRFLOW_DB" -v user="$AIRFLOW_DB_USER" -f /docker-entrypoint-initdb.d/platform/roles.sql
# Superset's metadata database and role (same idempotent SQL).
PGUSER="$POSTGRES_USER" PGHOST=/var/run/postgresql PGOPTIONS="-c client_min_messages=warning" \
  ROLE_PASSWORD="$SUPERSET_DB_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -d postgres \
  -v db="$SUPERSET_DB" -v user="$SUPERSET_DB_USER" -f /docker-entrypoint-initdb.d/platform/roles.sql
