"""Build the analytical marts in MySQL from the replicated tables (`jobs marts`), one
task per mart.

Data-aware: scheduled on the Assets of the MySQL replicas (all five), so a run starts
once every replica has been updated since the last run: by replicate_from_pg_to_mysql
(one task per table; waiting for all five means one build per replication, never one
on a half-refreshed set) or by a cdc_from_pg_to_mysql run that changed the replicas (it
updates all five at once; a run that changed nothing is skipped and emits no event).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG
from platform_jobs import DEFAULT_ARGS, MARTS, TABLES, JobsOperator, mart_asset, replica_asset


with DAG(
    dag_id="create_analytical_marts",
    description="MySQL replicas -> marts over Spark Connect, one task per mart",
    schedule=[replica_asset(t) for t in TABLES],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    max_active_runs=1,
    max_active_tasks=2,
    dagrun_timeout=timedelta(hours=2),
    default_args=DEFAULT_ARGS,
    tags=["platform", "marts"],
    doc_md=__doc__,
) as dag:
    for mart in MARTS:
        JobsOperator(
            task_id=f"build_{mart}",
            command=["marts", "--mart", mart],
            outlets=[mart_asset(mart)],
        )
