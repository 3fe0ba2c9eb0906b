#!/usr/bin/env bash
# Compose's postgres-standby: on the first start (an empty volume) the data directory
# is cloned from the primary with pg_basebackup through the physical slot $SLOT
# (infra/db/postgres/standby-clone.sh, the local stack's script), then the postgres
# image's own entrypoint starts the server, which finds a data directory and only runs
# it: as a hot standby (standby.signal), streaming from primary_conninfo (the command).
# The replication role's password is in the environment (PGPASSWORD), where
# pg_basebackup and the walreceiver's libpq read it; never in argv or a file.
set -euo pipefail
: "${PGDATA:?}" "${PRIMARY_HOST:?}" "${PRIMARY_PORT:?}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  # What a clone that failed halfway left behind.
  find "$PGDATA" -mindepth 1 -delete
  chown postgres: "$PGDATA"
  chmod 700 "$PGDATA"
  until pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT"; do sleep 1; done
  STANDBY_DATA="$PGDATA" gosu postgres bash /opt/platform/standby-clone.sh
fi
exec docker-entrypoint.sh "$@"
