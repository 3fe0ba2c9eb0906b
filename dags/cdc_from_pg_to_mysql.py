"""Apply the PostgreSQL changes Debezium captured to the MySQL replicas
(`jobs cdc --available-now`), every 5 minutes.

Each run applies every change PostgreSQL committed before it started (inserts, updates,
deletes of the five source tables, from the change topics Kafka Connect fills), then
exits; runs never overlap. A table whose changes cannot be applied fails the run (and
Airflow retries it).

Assets: the task's outlets are the replicas' Assets, the same ones
replicate_from_pg_to_mysql updates, so create_analytical_marts (scheduled on all five)
rebuilds the marts after a run that changed the replicas. A run that changed no replica
row is *skipped*: no asset event, no marts build.

Where it runs: this DAG is for deployments without a continuous `jobs cdc` - the local
stack (`make up-airflow`) and Airflow-only installations. Only one `jobs cdc` may run
at a time (a second one refuses to start), and docker compose runs the continuous
`jobs-cdc` service (a micro-batch per table every second), so there the Airflow
services set PLATFORM_CDC_CONTINUOUS=true and this DAG is created *paused*. To use the
DAG instead, stop the service (`docker compose stop jobs-cdc`; `docker compose up -d --scale
jobs-cdc=0` keeps it stopped across `up`), then unpause the DAG; a run while the
service runs fails with "jobs cdc is already running". (Paused-at-creation applies when
Airflow first sees the DAG; later the pause switch is yours.) With the continuous
service no asset event comes from CDC: the marts follow replication (hourly), as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG
from platform_jobs import DEFAULT_ARGS, TABLES, CdcOperator, replica_asset, runs_continuously

with DAG(
    dag_id="cdc_from_pg_to_mysql",
    description="PostgreSQL changes (Debezium topics) -> MySQL replicas, availableNow",
    schedule=timedelta(minutes=5),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    # paused next to a continuous `jobs-cdc` service (docker-compose.yml)
    is_paused_upon_creation=runs_continuously("PLATFORM_CDC_CONTINUOUS"),
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(minutes=20)},
    tags=["platform", "cdc", "replication"],
    doc_md=__doc__,
) as dag:
    CdcOperator(
        task_id="apply_changes",
        outlets=[replica_asset(t) for t in TABLES],
    )
