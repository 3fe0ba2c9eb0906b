"""Stream new user events from Kafka into PostgreSQL (`jobs stream --available-now`).

Each run processes what the topic holds since the last checkpoint, then exits; runs
never overlap, so the streaming checkpoint has one writer at a time. Invalid events
go to the quarantine table and never fail the run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG
from platform_jobs import DEFAULT_ARGS, STREAMED_USERS, JobsOperator

with DAG(
    dag_id="stream_from_kafka_to_pg",
    description="Kafka -> PostgreSQL users, Structured Streaming with availableNow",
    schedule=timedelta(minutes=5),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(minutes=20)},
    tags=["platform", "streaming"],
    doc_md=__doc__,
) as dag:
    JobsOperator(
        task_id="stream_new_users",
        command=["stream", "--available-now"],
        outlets=[STREAMED_USERS],
    )
