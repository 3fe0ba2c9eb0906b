#!/usr/bin/env bash
# Makes an empty data directory a hot standby of the primary: a physical replication
# slot on the primary (one left by an earlier standby is dropped first: its position is
# worthless to a fresh copy), a base backup that streams its WAL through that slot, and
# standby.signal. The caller then starts the server with primary_conninfo and
# primary_slot_name (the local stack's postgres-standby, compose's postgres-standby).
# Runs as the user that will own the data directory. Environment: PRIMARY_HOST,
# PRIMARY_PORT, REPL_USER, SLOT, STANDBY_DATA, PG_BIN (optional), and the replication
# role's password as libpq reads it (PGPASSWORD or PGPASSFILE), never an argument.
set -euo pipefail
: "${PRIMARY_HOST:?}" "${PRIMARY_PORT:?}" "${REPL_USER:?}" "${SLOT:?}" "${STANDBY_DATA:?}"
bin="${PG_BIN:+$PG_BIN/}"
conn=(-h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPL_USER" -w)

if [ -s "$STANDBY_DATA/PG_VERSION" ]; then
  echo "standby-clone: $STANDBY_DATA already holds a data directory; not touching it" >&2
  exit 1
fi
"${bin}psql" -X -q -v ON_ERROR_STOP=1 "${conn[@]}" -d postgres -v slot="$SLOT" <<'SQL'
SET client_min_messages = warning;
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
 WHERE slot_name = :'slot' AND slot_type = 'physical' AND NOT active;
-- Reserves WAL from now on, so nothing the backup needs is removed before it streams.
SELECT pg_create_physical_replication_slot(:'slot', true)
 WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = :'slot');
SQL
# -c fast: the backup starts at once instead of after the next spread checkpoint.
"${bin}pg_basebackup" "${conn[@]}" -D "$STANDBY_DATA" -X stream -S "$SLOT" -c fast
touch "$STANDBY_DATA/standby.signal"
echo "standby-clone: $STANDBY_DATA is a standby of $PRIMARY_HOST:$PRIMARY_PORT (slot $SLOT)" >&2
