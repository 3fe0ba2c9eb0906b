"""Load the data vault warehouse (`jobs dwh --available-now`), every 5 minutes.

Each run loads every change PostgreSQL committed before it started (Debezium's change
topics, the ones cdc_from_pg_to_mysql applies to MySQL) into the hubs, links and
satellites of the warehouse database (DWH_DB), exactly once, then exits; runs never
overlap.

Assets: the task's outlet is the vault's Asset (`dwh_vault`), for whatever reads the
warehouse (dashboards, downstream DAGs); no DAG of the platform is scheduled on it. The
DAG consumes no Asset: it runs on its schedule.

Where it runs: this DAG is for deployments without a continuous `jobs dwh` - the local
stack (`make up-airflow`) and Airflow-only installations. Only one `jobs dwh` may run
at a time (a second one refuses to start), and docker compose runs the continuous
`jobs-dwh` service (a micro-batch every DWH_TRIGGER_INTERVAL_MS), so there the Airflow
services set PLATFORM_DWH_CONTINUOUS=true and this DAG is created *paused*. To use the
DAG instead, stop the service (`docker compose stop jobs-dwh`; `docker compose up -d
--scale jobs-dwh=0` keeps it stopped across `up`), then unpause the DAG; a run while the
service runs fails with "jobs dwh is already running". (Paused-at-creation applies when
Airflow first sees the DAG; later the pause switch is yours.) With the continuous
service the `dwh_vault` Asset gets no events: the vault is seconds behind the source.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG
from platform_jobs import DEFAULT_ARGS, JobsOperator, runs_continuously, vault_asset

with DAG(
    dag_id="dwh_from_cdc",
    description="PostgreSQL changes (Debezium topics) -> data vault (hubs, links, satellites)",
    schedule=timedelta(minutes=5),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    # paused next to a continuous `jobs-dwh` service (docker-compose.yml)
    is_paused_upon_creation=runs_continuously("PLATFORM_DWH_CONTINUOUS"),
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(minutes=20)},
    tags=["platform", "cdc", "warehouse"],
    doc_md=__doc__,
) as dag:
    JobsOperator(
        task_id="load_vault",
        command=["dwh", "--available-now"],
        outlets=[vault_asset()],
    )
