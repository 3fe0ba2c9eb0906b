"""Load the data vault warehouse (`jobs dwh --available-now`), every 5 minutes.

Each run loads every change PostgreSQL committed before it started (Debezium's change
topics, the ones cdc_from_pg_to_mysql applies to MySQL) into the hubs, links and
satellites of the warehouse database (DWH_DB), exactly once, then exits; runs never
overlap. The task's outlet is the vault's Asset, for whatever reads the warehouse
(dashboards, downstream DAGs). A continuous `jobs dwh` (lag of seconds) and this DAG
exclude each other: a run while one is running fails with "jobs dwh is already running".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG
from platform_jobs import DEFAULT_ARGS, JobsOperator, vault_asset

with DAG(
    dag_id="dwh_from_cdc",
    description="PostgreSQL changes (Debezium topics) -> data vault (hubs, links, satellites)",
    schedule=timedelta(minutes=5),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
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
