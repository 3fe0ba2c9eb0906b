"""The DAGs under Airflow 3 (installed by infra/airflow/install-venv.sh): they import
without errors, have the expected DAG and task ids and settings, and no credential
ends up in any task's arguments, serialized form or logged command line."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import stat
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"

# Connections exactly as the deployment provisions them (AIRFLOW_CONN_*), with
# recognisable passwords. Set before Airflow is imported.
SECRETS = {"pg": "pg-Secret-4242", "my": "my-Secret-4343", "token": "spark-Token-4444"}
AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-dag-test-")
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)
os.environ.update(
    AIRFLOW_HOME=AIRFLOW_HOME,
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
    AIRFLOW__CORE__UNIT_TEST_MODE="True",
    AIRFLOW_CONN_PLATFORM_POSTGRES=json.dumps({
        "conn_type": "postgres", "host": "pg.example", "port": 5433, "schema": "src_db",
        "login": "pg_user", "password": SECRETS["pg"], "extra": {"search_path": "src_schema"},
    }),
    AIRFLOW_CONN_PLATFORM_MYSQL=json.dumps({
        "conn_type": "mysql", "host": "my.example", "port": 3307, "schema": "dst_db",
        "login": "my_user", "password": SECRETS["my"],
    }),
    AIRFLOW_CONN_PLATFORM_KAFKA=json.dumps({
        "conn_type": "kafka", "extra": {"bootstrap.servers": "k1:9092,k2:9092", "topic": "t1"},
    }),
    AIRFLOW_CONN_PLATFORM_GENERATOR=json.dumps({"conn_type": "http", "host": "gen.example", "port": 8090}),
    # The token the Spark provider's way: the connection's password field.
    AIRFLOW_CONN_SPARK_CONNECT_DEFAULT=json.dumps({
        "conn_type": "spark_connect", "host": "spark.example", "port": 15002,
        "password": SECRETS["token"],
    }),
)
sys.path.insert(0, str(DAGS))  # Airflow puts the DAG folder on sys.path, as here

from airflow.dag_processing.dagbag import DagBag  # noqa: E402
from airflow.serialization.serialized_objects import DagSerialization  # noqa: E402

from platform_jobs import MARTS, TABLES, replica_asset  # noqa: E402
EXPECTED = {
    "replicate_from_pg_to_mysql": {f"replicate_{t}": ["replicate", "--table", t] for t in TABLES},
    "create_analytical_marts": {f"build_{m}": ["marts", "--mart", m] for m in MARTS},
    "stream_from_kafka_to_pg": {"stream_new_users": ["stream", "--available-now"]},
    "cdc_from_pg_to_mysql": {"apply_changes": ["cdc", "--available-now"]},
    "dwh_from_cdc": {"load_vault": ["dwh", "--available-now"]},
}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


def test_dag_lists_are_the_jobs_lists(facts):
    """Python and Rust agree on the tables and marts (written once in common::schema)."""
    assert list(TABLES) == [t["name"] for t in facts["tables"]]
    assert list(MARTS) == facts["marts"]


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


# DAGs that call a service's API instead of `jobs`: dag id -> task ids.
API_DAGS = {"generator_burst": ["request_burst"]}


def test_dag_and_task_ids(dagbag):
    assert set(dagbag.dag_ids) == set(EXPECTED) | set(API_DAGS)
    for dag_id, task_ids in API_DAGS.items():
        assert [t.task_id for t in dagbag.dags[dag_id].tasks] == task_ids
    for dag_id, tasks in EXPECTED.items():
        dag = dagbag.dags[dag_id]
        assert {t.task_id: t.command for t in dag.tasks} == tasks


def test_active_on_creation_retries_and_timeouts(dagbag):
    for dag in dagbag.dags.values():
        assert dag.is_paused_upon_creation is False, dag.dag_id
        assert dag.max_active_runs == 1, dag.dag_id
        assert dag.catchup is False, dag.dag_id
        for task in dag.tasks:
            assert task.retries >= 1, task.task_id
            assert task.retry_exponential_backoff, task.task_id
            assert task.execution_timeout is not None, task.task_id


def test_marts_run_after_replication(dagbag):
    replicate = dagbag.dags["replicate_from_pg_to_mysql"]
    produced = {o.uri for t in replicate.tasks for o in t.outlets}
    assert len(produced) == len(TABLES)
    marts = dagbag.dags["create_analytical_marts"]
    timetable = type(marts.timetable).__name__
    assert timetable == "AssetTriggeredTimetable", timetable
    consumed = {a.uri for a in marts.timetable.asset_condition.objects}
    assert consumed == produced


def test_cdc_updates_the_replica_assets_the_marts_wait_for(dagbag):
    """The CDC DAG's task updates the very Assets replication updates (all five at once),
    so the marts, scheduled on all five, run after a CDC run as after a replication."""
    replicate = dagbag.dags["replicate_from_pg_to_mysql"]
    cdc = dagbag.dags["cdc_from_pg_to_mysql"]
    (task,) = cdc.tasks
    produced = [o.uri for o in task.outlets]
    assert produced == [replica_asset(t).uri for t in TABLES]
    assert set(produced) == {o.uri for t in replicate.tasks for o in t.outlets}
    marts = dagbag.dags["create_analytical_marts"]
    condition = marts.timetable.asset_condition
    assert type(condition).__name__ == "AssetAll", condition  # every replica, not any
    assert {a.uri for a in condition.objects} == set(produced)
    # and nothing else consumes them or feeds the marts
    for dag in dagbag.dags.values():
        if dag.dag_id != "create_analytical_marts":
            assert type(dag.timetable).__name__ != "AssetTriggeredTimetable", dag.dag_id


def test_the_vault_load_is_scheduled_and_updates_the_vault_asset(dagbag):
    dwh = dagbag.dags["dwh_from_cdc"]
    assert dwh.schedule == timedelta(minutes=5), dwh.schedule
    assert dwh.max_active_runs == 1 and dwh.catchup is False
    (task,) = dwh.tasks
    assert [o.uri for o in task.outlets] == ["platform://postgres/dwh/vault"]
    assert task.execution_timeout is not None and task.execution_timeout <= dwh.dagrun_timeout


def test_cdc_is_scheduled_every_five_minutes(dagbag):
    cdc = dagbag.dags["cdc_from_pg_to_mysql"]
    assert cdc.schedule == timedelta(minutes=5), cdc.schedule
    assert cdc.max_active_runs == 1 and cdc.catchup is False
    (task,) = cdc.tasks
    assert task.execution_timeout is not None and task.execution_timeout <= cdc.dagrun_timeout


@pytest.mark.parametrize("dag_id,setting", [
    ("cdc_from_pg_to_mysql", "PLATFORM_CDC_CONTINUOUS"),
    ("dwh_from_cdc", "PLATFORM_DWH_CONTINUOUS"),
])
@pytest.mark.parametrize(
    "value,paused", [("true", True), ("1", True), ("", False), ("false", False)]
)
def test_dag_starts_paused_next_to_its_continuous_service(monkeypatch, dag_id, setting, value, paused):
    """docker compose runs `jobs cdc` and `jobs dwh` continuously (jobs-cdc, jobs-dwh)
    and sets PLATFORM_CDC_CONTINUOUS / PLATFORM_DWH_CONTINUOUS=true for Airflow: only one
    of each job can run, so its DAG is created paused there; the other DAGs are not
    affected (the local stack sets neither: every DAG active)."""
    for name in ("PLATFORM_CDC_CONTINUOUS", "PLATFORM_DWH_CONTINUOUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(setting, value)
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert bag.dags[dag_id].is_paused_upon_creation is paused
    for other in set(EXPECTED) - {dag_id}:
        assert bag.dags[other].is_paused_upon_creation is False, other


def test_stream_is_scheduled(dagbag):
    stream = dagbag.dags["stream_from_kafka_to_pg"]
    assert type(stream.timetable).__name__ != "NullTimetable"


def test_no_credentials_in_tasks(dagbag):
    for dag in dagbag.dags.values():
        serialized = json.dumps(DagSerialization.to_dict(dag), default=str)
        for secret in (*SECRETS.values(), "finals_pass", "root_pass"):
            assert secret not in serialized, dag.dag_id
        for task in dag.tasks:
            for field in task.template_fields:
                value = json.dumps(getattr(task, field), default=str)
                assert "password" not in value.lower(), (task.task_id, field)
                assert not any(s in value for s in SECRETS.values())


def test_spark_endpoint_from_spark_connect_connection():
    import platform_jobs

    assert platform_jobs.spark_remote("spark_connect_default") == "sc://spark.example:15002"
    assert platform_jobs.spark_connection("spark_connect_default") == (
        "sc://spark.example:15002", SECRETS["token"])


def test_the_provider_renders_the_token_into_the_url():
    """What the operator relies on: SparkConnectHook puts the connection's password into
    the URL as `;token=` (so the URL must never be passed on as it is)."""
    from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook

    url = SparkConnectHook("spark_connect_default").get_connection_url()
    assert f"token={SECRETS['token']}" in url


def test_token_is_split_off_the_url_and_other_parameters_stay(monkeypatch):
    import platform_jobs

    split = platform_jobs.split_spark_url
    assert split("sc://h:1/") == ("sc://h:1", "")
    assert split("sc://h:1") == ("sc://h:1", "")
    assert split("sc://h:1/;token=abc") == ("sc://h:1", "abc")
    assert split("sc://h:1/;user_id=me;token=a%2Fb%7E;use_ssl=True") == (
        "sc://h:1/;user_id=me;use_ssl=True", "a/b~")
    # a connection with a user id, TLS and a token, rendered by the provider's hook
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_FULL", json.dumps({
        "conn_type": "spark_connect", "host": "sc://tls.example", "port": 443, "login": "me",
        "password": "tok-Ab1.~_", "extra": {"use_ssl": True},
    }))
    assert platform_jobs.spark_connection("spark_full") == (
        "sc://tls.example:443/;user_id=me;use_ssl=True", "tok-Ab1.~_")
    # no token: none is passed on
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_OPEN", json.dumps({
        "conn_type": "spark_connect", "host": "open.example", "port": 15002,
    }))
    assert platform_jobs.spark_connection("spark_open") == ("sc://open.example:15002", "")
    monkeypatch.setattr(platform_jobs, "SPARK_CONN_ID", "spark_open")
    env = platform_jobs.connection_env()
    assert "SPARK_CONNECT_TOKEN" not in env and env["SPARK_REMOTE"] == "sc://open.example:15002"


def test_environment_of_the_jobs_process():
    import platform_jobs

    base = {"PATH": "/usr/bin", "RUST_LOG": "debug", "JOBS_X": "1", "STREAM_SINK_ID": "s",
            "CDC_TOPIC_PREFIX": "pg2",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://a:secret@h/db",
            "AIRFLOW_CONN_PLATFORM_POSTGRES": "x", "SOMETHING_ELSE": "y",
            # only the connection's token counts, never a stray variable of the worker
            "SPARK_CONNECT_TOKEN": "stray", "SPARK_REMOTE": "sc://stray:1",
            "AIRFLOW__API_AUTH__JWT_SECRET": "jwt", "AIRFLOW__API__SECRET_KEY": "key"}
    env = platform_jobs.child_env(base)
    assert env == {
        "PATH": "/usr/bin", "RUST_LOG": "debug", "JOBS_X": "1", "STREAM_SINK_ID": "s",
        "CDC_TOPIC_PREFIX": "pg2",
        "POSTGRES_HOST": "pg.example", "POSTGRES_PORT": "5433", "POSTGRES_DB": "src_db",
        "POSTGRES_SCHEMA": "src_schema", "POSTGRES_USER": "pg_user",
        "POSTGRES_PASSWORD": SECRETS["pg"],
        "MYSQL_HOST": "my.example", "MYSQL_PORT": "3307", "MYSQL_DB": "dst_db",
        "MYSQL_USER": "my_user", "MYSQL_PASSWORD": SECRETS["my"],
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092", "KAFKA_TOPIC": "t1",
        # the token as a variable of its own; the remote without it
        "SPARK_REMOTE": "sc://spark.example:15002",
        "SPARK_CONNECT_TOKEN": SECRETS["token"],
    }


def test_operator_runs_the_binary_without_exposing_credentials(dagbag, tmp_path, monkeypatch):
    """Run a task's operator with a stand-in `jobs` that reports what it was given."""
    fake = tmp_path / "jobs"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "argv: $*"\n'
        'echo "cwd-has-env-file: $(test -e .env && echo yes || echo no)"\n'
        'echo "pg-password-set: ${POSTGRES_PASSWORD:+yes}"\n'
        'echo "airflow-conn-leaked: ${AIRFLOW_CONN_PLATFORM_POSTGRES:+yes}"\n'
        'echo "remote: $SPARK_REMOTE"\n'
        f'test "$SPARK_CONNECT_TOKEN" = "{SECRETS["token"]}" && echo "token-in-env: yes"\n'
        f'test "$MYSQL_PASSWORD" = "{SECRETS["my"]}" && echo "my-password-in-env: yes"\n'
        'case "$SPARK_REMOTE" in *token*) echo "token-in-remote: yes" ;; esac\n'
        # the process's own command line, as `ps` shows it
        "echo \"cmdline: $(tr '\\0' ' ' </proc/$$/cmdline)\"\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PLATFORM_JOBS_BIN", str(fake))
    task = dagbag.dags["replicate_from_pg_to_mysql"].get_task("replicate_users")

    lines: list[str] = []

    class Capture:
        def info(self, msg, *args):
            lines.append(msg % args if args else msg)

        def __getattr__(self, name):
            return lambda *a, **k: None

    monkeypatch.setattr(type(task), "log", property(lambda self: Capture()), raising=False)
    task.execute(context={})
    text = "\n".join(lines)
    assert f"running: {fake} replicate --table users" in text
    assert "argv: replicate --table users" in text
    assert "pg-password-set: yes" in text
    assert "airflow-conn-leaked: yes" not in text
    assert "cwd-has-env-file: no" in text
    assert "remote: sc://spark.example:15002" in text
    assert "token-in-env: yes" in text and "my-password-in-env: yes" in text
    assert "token-in-remote: yes" not in text
    assert "cmdline: " in text
    for secret in SECRETS.values():
        assert secret not in text
    # nothing the task keeps (its templated fields) holds a secret either
    rendered = json.dumps({f: getattr(task, f) for f in task.template_fields}, default=str)
    assert not any(s in rendered for s in SECRETS.values())


def test_operator_fails_the_task_on_a_non_zero_exit(dagbag, tmp_path, monkeypatch):
    fake = tmp_path / "jobs"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PLATFORM_JOBS_BIN", str(fake))
    task = dagbag.dags["create_analytical_marts"].get_task("build_mart_user_activity")
    with pytest.raises(RuntimeError, match="status 3"):
        task.execute(context={})


def test_operator_stops_the_binary_when_the_task_is_interrupted(dagbag, tmp_path, monkeypatch):
    """An execution timeout raises inside execute(): the `jobs` process must not survive it."""
    pidfile = tmp_path / "pid"
    fake = tmp_path / "jobs"
    fake.write_text(f'#!/bin/sh\necho $$ > {pidfile}\necho started\nexec sleep 600\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PLATFORM_JOBS_BIN", str(fake))
    task = dagbag.dags["stream_from_kafka_to_pg"].get_task("stream_new_users")

    class Timeout(Exception):
        pass

    class RaisingLog:
        def info(self, msg, *args):
            if args and args[0] == "started":
                raise Timeout()

        def __getattr__(self, name):
            return lambda *a, **k: None

    monkeypatch.setattr(type(task), "log", property(lambda self: RaisingLog()), raising=False)
    with pytest.raises(Timeout):
        task.execute(context={})
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _fake_jobs(tmp_path: Path, output: str, code: int = 0) -> Path:
    fake = tmp_path / "jobs"
    fake.write_text(f"#!/bin/sh\necho \"argv: $*\"\ncat <<'OUT'\n{output}OUT\nexit {code}\n")
    fake.chmod(0o755)
    return fake


def _summary(counts: dict[str, tuple[int, int, int]]) -> str:
    """`jobs cdc`'s closing lines (jobs/src/cdc/mod.rs), with log lines around them."""
    lines = ["2026-01-01T00:00:00Z  INFO changes committed table=users batch=0 changes=3"]
    for table in TABLES:
        upserted, deleted, quarantined = counts.get(table, (0, 0, 0))
        changes = upserted + deleted + quarantined
        lines.append(f"{table:<20} {changes:>7} changes  {upserted:>7} upserted  {deleted:>6} "
                     f"deleted  {quarantined:>5} quarantined  {0:>6} skipped")
    lines.append("applied the changes of 5 table(s) in 1.7s")
    return "\n".join(lines) + "\n"


def _run_cdc_task(dagbag, monkeypatch, fake: Path):
    from airflow.sdk.execution_time.context import OutletEventAccessors

    monkeypatch.setenv("PLATFORM_JOBS_BIN", str(fake))
    task = dagbag.dags["cdc_from_pg_to_mysql"].get_task("apply_changes")
    events = OutletEventAccessors()
    task.execute(context={"outlet_events": events})
    return {key.uri: accessor.extra for key, accessor in events._dict.items()}


def test_cdc_task_with_changes_records_them_in_the_asset_events(dagbag, tmp_path, monkeypatch):
    fake = _fake_jobs(tmp_path, _summary({"orders": (2, 1, 0), "users": (0, 0, 4)}))
    extras = _run_cdc_task(dagbag, monkeypatch, fake)
    assert set(extras) == {replica_asset(t).uri for t in TABLES}
    assert extras[replica_asset("orders").uri] == {
        "source": "jobs cdc", "changes": 3, "upserted": 2, "deleted": 1, "quarantined": 0,
        "skipped": 0}
    assert extras[replica_asset("products").uri]["changes"] == 0


def test_cdc_task_that_changed_nothing_is_skipped(dagbag, tmp_path, monkeypatch):
    """No replica row upserted or deleted (quarantined events change no replica): the
    task is skipped, so it emits no asset event and the marts are not rebuilt."""
    from airflow.sdk.exceptions import AirflowSkipException

    fake = _fake_jobs(tmp_path, _summary({"users": (0, 0, 2)}))
    with pytest.raises(AirflowSkipException):
        _run_cdc_task(dagbag, monkeypatch, fake)


def test_cdc_task_with_an_unreadable_summary_emits_the_events(dagbag, tmp_path, monkeypatch):
    """An output the operator cannot read (a table's line missing) must not hide changes:
    the events are emitted (a needless marts build is the safe side)."""
    partial = "\n".join(line for line in _summary({}).splitlines() if not line.startswith("orders"))
    extras = _run_cdc_task(dagbag, monkeypatch, _fake_jobs(tmp_path, partial + "\n"))
    assert extras == {}  # (no extra, but the task succeeds: Airflow emits its outlets)


def test_cdc_task_fails_when_the_job_fails(dagbag, tmp_path, monkeypatch):
    fake = _fake_jobs(tmp_path, "jobs cdc is already running (another process holds its lock)\n", 1)
    with pytest.raises(RuntimeError, match="status 1"):
        _run_cdc_task(dagbag, monkeypatch, fake)


def _kafka_tool(dotenv: dict[str, str], tool: str, *args: str) -> str:
    """A Kafka command line tool of the local stack's Kafka install (no Python client
    in the Airflow venv)."""
    import glob
    import subprocess

    cache = os.environ.get("PLATFORM_CACHE", str(Path.home() / ".cache/finals-platform"))
    libs = Path(cache) / f"kafka-{dotenv['KAFKA_VERSION']}" / "libs"
    if not glob.glob(str(libs / "kafka-tools-*.jar")):
        pytest.skip(f"no Kafka tools in {libs} (make up installs them)")
    out = subprocess.run(
        ["java", f"-Dlog4j2.configurationFile={ROOT}/infra/kafka/log4j2-tools.properties",
         "-cp", f"{libs}/*", f"org.apache.kafka.tools.{tool}",
         "--bootstrap-server", dotenv["KAFKA_BOOTSTRAP_SERVERS"], *args],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_generator_burst_through_the_api(dagbag, dotenv, tmp_path):
    """The DAG's task against a real `datagen serve` on its own topic (never the
    platform's): the burst is in Kafka, counted by Kafka's own offset tool."""
    import socket
    import subprocess
    import time
    import urllib.request

    binary = ROOT / "target/release/datagen"
    if not binary.exists():
        pytest.skip("target/release/datagen is missing (make build)")
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", int(dotenv["KAFKA_PORT"]))) != 0:
            pytest.skip("Kafka of the local stack is not running (make up)")
        s2 = socket.socket()
        s2.bind(("127.0.0.1", 0))
        port = s2.getsockname()[1]
        s2.close()
    topic = f"dag_test_burst_{os.getpid()}"
    _kafka_tool(dotenv, "TopicCommand", "--create", "--topic", topic, "--partitions", "1")
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen(
        [str(binary), "serve"], cwd=ROOT, stdout=log, stderr=log,
        env={**os.environ, "KAFKA_TOPIC": topic, "GENERATOR_PORT": str(port), "NO_COLOR": "1"})
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        os.environ["AIRFLOW_CONN_PLATFORM_GENERATOR"] = json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": port})
        import generator_burst

        result = generator_burst.request_burst.function(
            params={"count": 500, "bad_ratio": 0.2, "rate": None})
        assert result["acked"] == 500
        assert sum(result["breakdown"].values()) == 500
        offsets = _kafka_tool(dotenv, "GetOffsetShell", "--topic", topic)
        assert offsets.strip() == f"{topic}:0:500", offsets
    finally:
        os.environ["AIRFLOW_CONN_PLATFORM_GENERATOR"] = json.dumps(
            {"conn_type": "http", "host": "gen.example", "port": 8090})
        server.terminate()
        server.wait(timeout=40)
        _kafka_tool(dotenv, "TopicCommand", "--delete", "--topic", topic)
