"""Ask the generator service (`datagen serve`) for a burst of user registration events,
as the original system's DAG did, and wait until Kafka confirmed all of them; the
stream DAG then carries them into PostgreSQL.

Manual (Trigger DAG w/ config): `count`, `bad_ratio`, `rate` (events/s, optional). The
service's address is the `platform_generator` connection (AIRFLOW_CONN_PLATFORM_GENERATOR,
provisioned from .env). The task only speaks the service's JSON API; the generation is
the service's (one code path with `datagen kafka`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from airflow.sdk import DAG, BaseHook, Param, task
from platform_jobs import DEFAULT_ARGS

GENERATOR_CONN_ID = "platform_generator"


def _call(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # the service says why in {"error": ...}
        raise RuntimeError(f"{url}: {e.code} {e.read().decode(errors='replace')}") from None


with DAG(
    dag_id="generator_burst",
    description="A burst of events through the generator service's API",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    max_active_runs=1,
    # A retry asks for a new burst: the events are synthetic, more of them harm nothing.
    default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(minutes=30)},
    params={
        "count": Param(1000, type="integer", minimum=1),
        "bad_ratio": Param(0.1, type="number", minimum=0, maximum=1),
        "rate": Param(None, type=["null", "number"]),
    },
    tags=["platform", "generator"],
    doc_md=__doc__,
) as dag:

    @task
    def request_burst(params: dict | None = None) -> dict:
        conn = BaseHook.get_connection(GENERATOR_CONN_ID)
        base = f"http://{conn.host}:{conn.port or 8090}"
        body = {"target": "kafka", "count": params["count"], "bad_ratio": params["bad_ratio"]}
        if params.get("rate") is not None:
            body["rate"] = params["rate"]
        run = _call(f"{base}/api/runs", body)
        print(f"generator run {run['id']} started: {run['count']} events to {run['destination']}")
        while run["status"] == "running":  # each call returns when the run ends, or after 20 s
            run = _call(f"{base}/api/runs/{run['id']}?wait=20")
        print(f"generator run {run['id']} {run['status']}: {run['acked']} acknowledged, "
              f"{run['failed']} failed; {run['breakdown']}")
        if run["status"] != "succeeded":
            raise RuntimeError(f"generator run {run['id']} {run['status']}: {run.get('message')}")
        return {"id": run["id"], "acked": run["acked"], "breakdown": run["breakdown"]}

    request_burst()
