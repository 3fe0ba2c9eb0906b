-- The role a hot standby streams the primary's WAL as (infra/db/postgres/standby-clone.sh,
-- the local stack's postgres-standby and compose's postgres-standby). Idempotent.
-- Variable (psql -v): user. The password comes from the environment variable
-- ROLE_PASSWORD, never from the command line.
-- A role of its own rather than the platform's (which has REPLICATION for change data
-- capture): the standby's password then opens no table, and the platform's password
-- is not stored with the standby.
\getenv password ROLE_PASSWORD
\if :{?password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'ROLE_PASSWORD is not set'; END $$;
\endif
SELECT format('CREATE ROLE %I LOGIN REPLICATION PASSWORD %L', :'user', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
-- Keep the password in step with .env when the role already exists.
SELECT format('ALTER ROLE %I LOGIN REPLICATION PASSWORD %L', :'user', :'password') \gexec
