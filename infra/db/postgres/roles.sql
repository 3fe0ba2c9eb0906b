-- Database and role for the platform. Idempotent: safe to run any number of times.
-- Variables (psql -v): db, user. The password comes from the environment variable
-- ROLE_PASSWORD, never from the command line (argv is visible in `ps`).
\getenv password ROLE_PASSWORD
\if :{?password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'ROLE_PASSWORD is not set'; END $$;
\endif
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'user', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
-- Keep the password in step with .env when the role already exists.
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'user', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('GRANT ALL PRIVILEGES ON DATABASE %I TO %I', :'db', :'user') \gexec
