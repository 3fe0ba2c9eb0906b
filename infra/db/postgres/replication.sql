-- Change data capture (Debezium's PostgreSQL connector, infra/kafka-connect/): the
-- connector logs in as the platform role. Idempotent. Variable (psql -v): user.
-- Why this role and not the admin: it owns the tables, which PostgreSQL requires for
-- the connector's CREATE PUBLICATION ... FOR TABLE (publication.autocreate.mode =
-- filtered), and REPLICATION (to create the logical replication slot and stream from
-- it) is the only right it lacks. The admin would work too, but then the superuser's
-- password would sit in the Kafka Connect worker. (REPLICATION also allows physical
-- replication connections, pg_basebackup, where pg_hba.conf admits them.)
SELECT format('ALTER ROLE %I REPLICATION', :'user') \gexec
