"""Replicate the PostgreSQL source tables into MySQL (`jobs replicate`), one task per table.

Each task, when it succeeds, updates the Asset of its MySQL table; the marts DAG is
scheduled on those Assets, so it runs after replication has produced new data.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG
from platform_jobs import DEFAULT_ARGS, TABLES, JobsOperator, replica_asset


with DAG(
    dag_id="replicate_from_pg_to_mysql",
    description="PostgreSQL -> MySQL over Spark Connect (JDBC), one task per table",
    schedule="@hourly",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    max_active_runs=1,
    # Spark Connect is one application on a small cluster: two tables at a time.
    max_active_tasks=2,
    dagrun_timeout=timedelta(hours=2),
    default_args=DEFAULT_ARGS,
    tags=["platform", "replication"],
    doc_md=__doc__,
) as dag:
    for table in TABLES:
        JobsOperator(
            task_id=f"replicate_{table}",
            command=["replicate", "--table", table],
            outlets=[replica_asset(table)],
        )
