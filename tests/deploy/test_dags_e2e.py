"""End to end on the local stack (`make up`): each DAG run with `airflow dags test`
succeeds and its data lands (MySQL replicas, marts, streamed users, PostgreSQL changes
applied to the replicas by change data capture, and the Asset events that schedule the
marts).

Airflow runs from a temporary AIRFLOW_HOME (SQLite metadata), reading the repository's
dags/; the connections are provisioned from .env as AIRFLOW_CONN_* variables, the only
place the passwords and the Spark Connect token are given to Airflow. After each run, no
task log holds any of them. `airflow dags test` runs the tasks in its own process and
their logs go to its output (Airflow's secrets masker is not applied there, so this
checks what the operator and `jobs` print, unmasked); a copy is kept as
AIRFLOW_HOME/task-logs/<dag_id>.log. The base log folder, where a scheduler's task logs
go (dag_id=*/run_id=*/task_id=*/attempt=*.log), is checked as well. Skipped, with the
reason, while the `jobs` binary has no `replicate` sub-command yet.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import read_dotenv

ROOT = Path(__file__).resolve().parents[2]
JOBS = Path(os.environ.get("JOBS_BIN", ROOT / "target/release/jobs"))
DATAGEN = Path(os.environ.get("DATAGEN_BIN", ROOT / "target/release/datagen"))
DAG_TIMEOUT = int(os.environ.get("DAG_TEST_TIMEOUT", "1800"))


def _jobs_has_replicate() -> tuple[bool, str]:
    if not JOBS.exists():
        return False, f"{JOBS} is not built (make build)"
    proc = subprocess.run([str(JOBS), "replicate", "--help"], capture_output=True, text=True)
    if proc.returncode != 0:
        return False, f"`{JOBS} replicate --help` fails: the jobs binary has no replicate yet"
    return True, ""


_ok, _why = _jobs_has_replicate()
pytestmark = pytest.mark.skipif(not _ok, reason=_why)


@pytest.fixture(scope="module")
def settings() -> dict[str, str]:
    """.env, with the environment winning (as for the local stack and the binaries)."""
    values = read_dotenv()
    return {k: os.environ.get(k, v) for k, v in values.items()}


@pytest.fixture(scope="module")
def stack(settings):
    """The local stack must be up: its services answer on their ports."""
    ports = {
        "postgres": settings["POSTGRES_PORT"], "mysql": settings["MYSQL_PORT"],
        "kafka": settings["KAFKA_PORT"], "spark-connect": settings["SPARK_CONNECT_PORT"],
    }
    down = []
    for name, port in ports.items():
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=3).close()
        except OSError:
            down.append(f"{name}:{port}")
    if down:
        pytest.fail(f"the local stack is not up ({', '.join(down)} closed): run `make up` first")
    return settings


def pg_query(s: dict[str, str], sql: str, database: str | None = None) -> str:
    """One statement as the platform role, in the source database (search path: the
    platform's schema) or in `database` (its public schema)."""
    env = {**os.environ, "PGPASSWORD": s["POSTGRES_PASSWORD"]}
    schema = s["POSTGRES_SCHEMA"] if database is None else "public"
    out = subprocess.run(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", s["POSTGRES_HOST"],
         "-p", s["POSTGRES_PORT"], "-U", s["POSTGRES_USER"], "-d", database or s["POSTGRES_DB"],
         "-c", f"SET search_path TO {schema}", "-c", sql],
        env=env, capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def my_query(s: dict[str, str], sql: str) -> str:
    client = shutil.which("mysql") or shutil.which("mariadb")
    assert client, "needs the mysql or mariadb client"
    env = {**os.environ, "MYSQL_PWD": s["MYSQL_PASSWORD"]}
    out = subprocess.run(
        [client, "--no-defaults", "-h", "127.0.0.1" if s["MYSQL_HOST"] == "localhost" else s["MYSQL_HOST"],
         "-P", s["MYSQL_PORT"], "-u", s["MYSQL_USER"], "-D", s["MYSQL_DB"], "-N", "-B", "-e", sql],
        env=env, capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def spark_endpoint(s: dict[str, str]) -> tuple[str, int, str]:
    """host, port and token of the Spark Connect server: SPARK_REMOTE is sc://host:port
    (a `;token=` parameter is accepted there too, SPARK_CONNECT_TOKEN wins)."""
    base, *params = s["SPARK_REMOTE"].split(";")
    hostport = base.split("://", 1)[1].split("/", 1)[0]
    host, port = hostport.rsplit(":", 1)
    token = s.get("SPARK_CONNECT_TOKEN") or next(
        (p[len("token="):] for p in params if p.startswith("token=")), "")
    return host, int(port), token


def secret_values(s: dict[str, str]) -> dict[str, str]:
    """The values no log may show: every *_PASSWORD of .env and the Spark Connect token."""
    names = [k for k in s if k.endswith("_PASSWORD")] + ["SPARK_CONNECT_TOKEN"]
    return {k: s[k] for k in names if len(s.get(k) or "") >= 4}


def task_log_files(home: Path) -> list[Path]:
    """Every file of the base log folder (task logs, when a scheduler runs them)."""
    return [p for p in (home / "logs").rglob("*") if p.is_file()]


def count_pg(s, table: str) -> int:
    return int(pg_query(s, f"SELECT count(*) FROM {table}"))


def count_my(s, table: str) -> int:
    return int(my_query(s, f"SELECT count(*) FROM {table}"))


@pytest.fixture(scope="module")
def airflow(stack, tmp_path_factory):
    """Run `airflow ...` with a fresh AIRFLOW_HOME and env-provisioned connections."""
    s = stack
    home = tmp_path_factory.mktemp("airflow-home")
    venv_bin = Path(os.environ.get("AIRFLOW_VENV_BIN", Path(sys.executable).parent))
    airflow_bin = venv_bin / "airflow"
    assert airflow_bin.exists(), f"no airflow at {airflow_bin}; run via tests/deploy/run.sh"
    # Only what Airflow needs: no .env password reaches it except inside a connection.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ")}
    env["PATH"] = f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}"
    spark_host, spark_port, spark_token = spark_endpoint(s)
    assert spark_token, "SPARK_CONNECT_TOKEN is not set (.env): the Spark Connect server requires it"
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        PLATFORM_JOBS_BIN=str(JOBS),
        RUST_LOG=s.get("RUST_LOG", "info"),
        AIRFLOW_CONN_PLATFORM_POSTGRES=json.dumps({
            "conn_type": "postgres", "host": s["POSTGRES_HOST"], "port": int(s["POSTGRES_PORT"]),
            "schema": s["POSTGRES_DB"], "login": s["POSTGRES_USER"],
            "password": s["POSTGRES_PASSWORD"], "extra": {"search_path": s["POSTGRES_SCHEMA"]},
        }),
        AIRFLOW_CONN_PLATFORM_MYSQL=json.dumps({
            "conn_type": "mysql", "host": s["MYSQL_HOST"], "port": int(s["MYSQL_PORT"]),
            "schema": s["MYSQL_DB"], "login": s["MYSQL_USER"], "password": s["MYSQL_PASSWORD"],
        }),
        AIRFLOW_CONN_PLATFORM_KAFKA=json.dumps({
            "conn_type": "kafka",
            "extra": {"bootstrap.servers": s["KAFKA_BOOTSTRAP_SERVERS"], "topic": s["KAFKA_TOPIC"]},
        }),
        # the token the provider's way: the connection's password
        AIRFLOW_CONN_SPARK_CONNECT_DEFAULT=json.dumps({
            "conn_type": "spark_connect", "host": spark_host, "port": spark_port,
            "password": spark_token,
        }),
    )
    subprocess.run([str(airflow_bin), "db", "migrate"], env=env, check=True,
                   capture_output=True, text=True, cwd=home)
    secrets = secret_values(s)
    assert "SPARK_CONNECT_TOKEN" in secrets and "POSTGRES_PASSWORD" in secrets

    def run_dag(dag_id: str) -> str:
        proc = subprocess.run(
            [str(airflow_bin), "dags", "test", dag_id], env=env, cwd=home,
            capture_output=True, text=True, timeout=DAG_TIMEOUT,
        )
        output = proc.stdout + proc.stderr
        saved = home / "task-logs" / f"{dag_id}.log"
        saved.parent.mkdir(exist_ok=True)
        saved.write_text(output)
        # No task log shows a password or the token: the run's output (its task logs,
        # checked before anything else, even when the run failed) and every file of
        # the base log folder.
        for path in [saved, *task_log_files(home)]:
            text = path.read_text(errors="replace")
            for name, secret in secrets.items():
                assert secret not in text, f"{name}'s value appears in {path} ({dag_id})"
        assert proc.returncode == 0, f"`airflow dags test {dag_id}` failed:\n{output[-6000:]}"
        # (and the check saw the tasks' own log lines: `jobs` ran and logged)
        assert f"running: {JOBS} " in output, f"no task log lines in {dag_id}'s output"
        runs = subprocess.run(
            [str(airflow_bin), "dags", "list-runs", dag_id, "-o", "json"], env=env, cwd=home,
            capture_output=True, text=True, check=True,
        )
        # (Airflow may print warnings before the JSON document)
        listing = runs.stdout[re.search(r"^\[", runs.stdout, re.M).start() :]
        states = [r["state"] for r in json.JSONDecoder().raw_decode(listing)[0]]
        assert states and states[0] == "success", f"{dag_id} runs: {states}\n{output[-6000:]}"
        return output

    run_dag.home = home  # (its metadata database: home / "airflow.db")
    return run_dag


def test_replicate_from_pg_to_mysql(stack, airflow, facts):
    s = stack
    if DATAGEN.exists():  # idempotent: fills PostgreSQL once
        subprocess.run([str(DATAGEN), "pg"], cwd=ROOT, check=True, capture_output=True)
    assert count_pg(s, "users") > 0, "PostgreSQL has no data: run `datagen pg`"
    airflow("replicate_from_pg_to_mysql")
    for table in (t["name"] for t in facts["tables"]):
        assert count_my(s, table) == count_pg(s, table), table


def test_create_analytical_marts(stack, airflow, facts):
    s = stack
    airflow("create_analytical_marts")
    for mart in facts["marts"]:
        assert count_my(s, mart) > 0, mart
    orders = count_my(s, "orders")
    counted = int(my_query(s, "SELECT COALESCE(SUM(order_count), 0) FROM mart_user_activity"))
    assert counted == orders


def test_stream_from_kafka_to_pg(stack, airflow):
    s = stack
    assert DATAGEN.exists(), f"{DATAGEN} is needed to produce events (make build)"
    before = count_pg(s, "users")
    # A few valid registration events (the generator stops after --count).
    subprocess.run([str(DATAGEN), "kafka", "--count", "10", "--rate", "0", "--bad-ratio", "0"],
                   cwd=ROOT, check=True, capture_output=True, timeout=120)
    airflow("stream_from_kafka_to_pg")
    assert count_pg(s, "users") > before


CDC_DAG = "cdc_from_pg_to_mysql"


def cdc_runs(home: Path) -> list[tuple[str, str, list[dict]]]:
    """Each run of the CDC DAG in Airflow's metadata database (oldest first): its run id,
    its task's state, and the asset events it emitted (asset URI and extra)."""
    with sqlite3.connect(home / "airflow.db") as db:
        runs = db.execute(
            "SELECT r.run_id, t.state FROM dag_run r JOIN task_instance t "
            "ON t.dag_id = r.dag_id AND t.run_id = r.run_id "
            "WHERE r.dag_id = ? AND t.task_id = 'apply_changes' ORDER BY r.id", (CDC_DAG,),
        ).fetchall()
        result = []
        for run_id, state in runs:
            events = db.execute(
                "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                "WHERE e.source_dag_id = ? AND e.source_run_id = ?", (CDC_DAG, run_id),
            ).fetchall()
            events = [{"uri": uri, "extra": json.loads(extra or "{}")} for uri, extra in events]
            result.append((run_id, state, events))
    return result


def test_cdc_from_pg_to_mysql(stack, airflow, facts):
    """A change committed in PostgreSQL reaches the MySQL replica through the DAG
    (Debezium -> Kafka -> `jobs cdc --available-now` on Spark), and the run updates the
    five replica Assets the marts DAG is scheduled on (each with its table's counts);
    a run that changes no replica row is skipped and updates none."""
    s = stack
    proc = subprocess.run([str(JOBS), "cdc", "--help"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("the jobs binary has no `cdc` sub-command yet")
    url = f"http://127.0.0.1:{s.get('KAFKA_CONNECT_PORT', '8083')}"
    name = s["CDC_CONNECTOR"]
    try:
        with urllib.request.urlopen(f"{url}/connectors/{name}/status", timeout=10) as r:
            connector = json.load(r)["connector"]["state"]
    except OSError as e:
        pytest.fail(f"Kafka Connect does not answer at {url} ({e}): run `make up` first")
    assert connector == "RUNNING", f"the connector {name} is {connector} (make status)"
    assert count_my(s, "products") > 0, "no replica: run replication first"
    # One change of our own in the source: a product's stock, one more than before.
    row = pg_query(s, "UPDATE products SET stock_quantity = stock_quantity + 1 WHERE "
                      "product_id = (SELECT min(product_id) FROM products) "
                      "RETURNING product_id, stock_quantity")
    product_id, stock = row.split("|")

    output = airflow(CDC_DAG)
    replica = my_query(s, f"SELECT stock_quantity FROM products WHERE product_id = {product_id}")
    assert replica == stock, (product_id, replica, stock)
    # the operator read the job's per-table summary (else it says so and emits anyway)
    assert "no summary line of jobs cdc" not in output, output[-6000:]
    tables = [t["name"] for t in facts["tables"]]
    (run_id, state, events) = cdc_runs(airflow.home)[-1]
    assert state == "success", (run_id, state)
    replicas = sorted(f"platform://mysql/replica/{t}" for t in tables)
    assert sorted(e["uri"] for e in events) == replicas, events
    extras = {e["uri"].rsplit("/", 1)[1]: e["extra"] for e in events}
    assert all(x["source"] == "jobs cdc" for x in extras.values()), extras
    assert extras["products"]["upserted"] >= 1, extras
    # ...and the marts DAG, their consumer, has a run queued on all five
    with sqlite3.connect(airflow.home / "airflow.db") as db:
        queued = {uri for (uri,) in db.execute(
            "SELECT a.uri FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id "
            "WHERE q.target_dag_id = 'create_analytical_marts'")}
    assert queued == {e["uri"] for e in events}, queued

    # At once again: whatever was committed meanwhile (nothing, unless something else
    # writes to PostgreSQL now). No replica row changed <=> skipped, and no asset event.
    airflow(CDC_DAG)
    (run_id, state, events) = cdc_runs(airflow.home)[-1]
    assert state in ("success", "skipped"), (run_id, state)
    if state == "skipped":
        assert events == []
    else:
        assert len(events) == len(tables)
        assert any(x["extra"]["upserted"] or x["extra"]["deleted"] for x in events), events


def test_dwh_from_cdc(stack, airflow):
    """A change committed in PostgreSQL reaches the data vault through the DAG (Debezium
    -> Kafka -> `jobs dwh --available-now` on Spark): the product's current view in the
    warehouse shows it, its satellite gained a row."""
    s = stack
    proc = subprocess.run([str(JOBS), "dwh", "--help"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("the jobs binary has no `dwh` sub-command yet")
    row = pg_query(s, "UPDATE products SET stock_quantity = stock_quantity + 1 WHERE "
                      "product_id = (SELECT max(product_id) FROM products) "
                      "RETURNING product_id, stock_quantity")
    product_id, stock = row.split("|")
    airflow("dwh_from_cdc")
    current = pg_query(s, f"SELECT stock_quantity FROM current_products "
                          f"WHERE product_id = {product_id}", database=s["DWH_DB"])
    assert current == stock, (product_id, current, stock)
