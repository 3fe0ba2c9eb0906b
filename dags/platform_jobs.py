"""What every DAG of the platform shares: the operator that runs the Rust `jobs` binary.

The DAGs stay thin: each task is one `jobs` sub-command. Where the services are and how
to log in comes from Airflow connections (provisioned from the environment as
``AIRFLOW_CONN_*``, so nothing is created by hand); the operator turns them into the
environment variables the binary reads (the names in ``.env``) for that one process.
Credentials therefore never appear in a task's arguments, its rendered fields or the
command line it logs. That includes the Spark Connect token: the ``spark_connect``
connection holds it in its password field ("Token" in the UI), the provider's hook
renders it as a ``;token=`` parameter of the URL, and the operator moves it from there
to ``SPARK_CONNECT_TOKEN``, so ``SPARK_REMOTE`` never carries it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from airflow.sdk import Asset, BaseHook, BaseOperator

# Connection ids. Override with PLATFORM_CONN_* environment variables if needed.
POSTGRES_CONN_ID = os.environ.get("PLATFORM_CONN_POSTGRES", "platform_postgres")
MYSQL_CONN_ID = os.environ.get("PLATFORM_CONN_MYSQL", "platform_mysql")
KAFKA_CONN_ID = os.environ.get("PLATFORM_CONN_KAFKA", "platform_kafka")
SPARK_CONN_ID = os.environ.get("PLATFORM_CONN_SPARK", "spark_connect_default")

# Non-secret settings passed through from the worker's environment to the binary.
PASSTHROUGH_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "POSTGRES_SCHEMA",
    "KAFKA_TOPIC",
    "POSTGRES_READ_FROM",
)
# ...and the jobs' own tuning settings (none of them secret), by prefix.
PASSTHROUGH_PREFIXES = ("JOBS_", "REPLICATE_", "MARTS_", "STREAM_", "CDC_", "DWH_", "POSTGRES_STANDBY_")

# What the DAGs work on (the `jobs` CLI's names).
TABLES = ("users", "product_categories", "products", "orders", "order_details")
MARTS = ("mart_user_activity", "mart_product_sales", "mart_average_check")


def runs_continuously(setting: str) -> bool:
    """Whether a service next to this Airflow runs the job continuously (docker compose
    sets ``setting`` to "true" for Airflow): its DAG is then created paused, as only one
    run of the job may be active at a time."""
    return os.environ.get(setting, "").strip().lower() in {"1", "true"}


def vault_asset() -> Asset:
    """The data vault warehouse (hubs, links, satellites), loaded by dwh_from_cdc."""
    return Asset(name="dwh_vault", uri="platform://postgres/dwh/vault")


def replica_asset(table: str) -> Asset:
    """The MySQL copy of one source table. Updated by replicate_from_pg_to_mysql (a full
    copy) and by cdc_from_pg_to_mysql (the changes applied, every table at once);
    create_analytical_marts is scheduled on the five of them."""
    return Asset(name=f"mysql_replica_{table}", uri=f"platform://mysql/replica/{table}")


def mart_asset(mart: str) -> Asset:
    return Asset(name=mart, uri=f"platform://mysql/marts/{mart}")


STREAMED_USERS = Asset(name="pg_users_from_kafka", uri="platform://postgres/users")

# Defaults for every task of the platform's DAGs.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "platform",
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=30),
}


def jobs_binary() -> str:
    """The `jobs` executable: $PLATFORM_JOBS_BIN, else `jobs` on PATH."""
    configured = os.environ.get("PLATFORM_JOBS_BIN")
    if configured:
        return configured
    found = shutil.which("jobs")
    if not found:
        raise RuntimeError("the `jobs` binary is not on PATH; set PLATFORM_JOBS_BIN")
    return found


def split_spark_url(url: str) -> tuple[str, str]:
    """A Spark Connect URL split into the URL without its ``token`` parameter and the
    token ("" when there is none).

    The provider's hook renders ``sc://host:port/`` followed by ``;``-separated
    parameters (``user_id``, ``token``, ``use_ssl``); the other parameters stay, a bare
    endpoint is ``sc://host:port``.
    """
    base, *params = url.split(";")
    base = base.rstrip("/")
    token = ""
    kept = []
    for param in params:
        if not param:
            continue
        if param.startswith("token="):
            token = unquote(param[len("token="):])
        else:
            kept.append(param)
    return (f"{base}/;{';'.join(kept)}" if kept else base), token


def spark_connection(conn_id: str) -> tuple[str, str]:
    """SPARK_REMOTE (without the token) and the token of a ``spark_connect`` connection,
    rendered the provider's way (SparkConnectHook: the token is the password field)."""
    from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook

    return split_spark_url(SparkConnectHook(conn_id).get_connection_url())


def spark_remote(conn_id: str) -> str:
    """The Spark Connect URL (sc://host:port, no token) of a spark_connect connection."""
    return spark_connection(conn_id)[0]


def connection_env() -> dict[str, str]:
    """The binary's settings (the names used in .env) from the Airflow connections."""
    env: dict[str, str] = {}

    pg = BaseHook.get_connection(POSTGRES_CONN_ID)
    env.update(
        POSTGRES_HOST=pg.host or "",
        POSTGRES_PORT=str(pg.port or 5432),
        POSTGRES_DB=pg.schema or "",
        POSTGRES_USER=pg.login or "",
        POSTGRES_PASSWORD=pg.password or "",
    )
    pg_schema = pg.extra_dejson.get("search_path")
    if pg_schema:
        env["POSTGRES_SCHEMA"] = pg_schema

    my = BaseHook.get_connection(MYSQL_CONN_ID)
    env.update(
        MYSQL_HOST=my.host or "",
        MYSQL_PORT=str(my.port or 3306),
        MYSQL_DB=my.schema or "",
        MYSQL_USER=my.login or "",
        MYSQL_PASSWORD=my.password or "",
    )

    kafka = BaseHook.get_connection(KAFKA_CONN_ID)
    bootstrap = kafka.extra_dejson.get("bootstrap.servers")
    if not bootstrap and kafka.host:
        bootstrap = f"{kafka.host}:{kafka.port or 9092}"
    env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap or ""
    topic = kafka.extra_dejson.get("topic")
    if topic:
        env["KAFKA_TOPIC"] = topic

    # The token travels as a variable of its own, never inside SPARK_REMOTE.
    env["SPARK_REMOTE"], env["SPARK_CONNECT_TOKEN"] = spark_connection(SPARK_CONN_ID)
    return {k: v for k, v in env.items() if v}


# The variables of connection_env() that hold secrets.
SECRET_ENV = ("POSTGRES_PASSWORD", "MYSQL_PASSWORD", "SPARK_CONNECT_TOKEN")


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The complete environment of one `jobs` process: an allow-list of the worker's
    own variables (never AIRFLOW_CONN_* or Airflow's own secrets) plus the settings
    taken from the connections."""
    base = os.environ if base is None else base
    env = {
        k: v for k, v in base.items() if k in PASSTHROUGH_ENV or k.startswith(PASSTHROUGH_PREFIXES)
    }
    env.update(connection_env())
    return env


def _mask(secrets: Iterable[str]) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - other Airflow layouts
        return
    for secret in secrets:
        mask_secret(secret)


class JobsOperator(BaseOperator):
    """Run one `jobs` sub-command, e.g. ``JobsOperator(task_id=..., command=["marts"])``.

    ``command`` holds only sub-commands and non-secret options; the connections become
    environment variables of the process. Its output goes to the task log line by
    line; a non-zero exit fails the task (and Airflow retries it).
    """

    template_fields: Sequence[str] = ("command",)
    ui_color = "#f4a460"

    def __init__(self, *, command: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.command = list(command)

    def execute(self, context: Any) -> None:
        argv = [jobs_binary(), *self.command]
        env = child_env()
        # Task logs written under the scheduler already mask connection passwords; say so
        # explicitly for every secret the process gets, in case it ever prints one.
        _mask(env[name] for name in SECRET_ENV if env.get(name))
        self.log.info("running: %s", " ".join(argv))
        self.output_started()
        # A scratch working directory: the binary must not pick up a stray .env.
        with tempfile.TemporaryDirectory(prefix="jobs-") as cwd:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            self._proc = proc
            assert proc.stdout is not None
            try:
                for line in proc.stdout:
                    line = line.rstrip("\n")
                    self.log.info("%s", line)
                    self.read_line(line)
                code = proc.wait()
            except BaseException:
                # execution_timeout or a kill: never leave the job running behind us
                self.on_kill()
                raise
        if code != 0:
            raise RuntimeError(f"`jobs {' '.join(self.command)}` exited with status {code}")
        self.succeeded(context)

    # Hooks for operators that act on what the job printed (CdcOperator).
    def output_started(self) -> None:
        """Called before the process starts."""

    def read_line(self, line: str) -> None:
        """Called with each line of the job's output."""

    def succeeded(self, context: Any) -> None:
        """Called when the job exited with status 0, before the task succeeds."""

    def on_kill(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


# One line per table of `jobs cdc`'s closing summary (jobs/src/cdc/mod.rs):
#   "orders     12 changes     10 upserted      2 deleted      0 quarantined      0 skipped"
CDC_SUMMARY = re.compile(
    r"^(?P<table>\w+)\s+(?P<changes>\d+) changes\s+(?P<upserted>\d+) upserted"
    r"\s+(?P<deleted>\d+) deleted\s+(?P<quarantined>\d+) quarantined\s+(?P<skipped>\d+) skipped\s*$"
)


def cdc_summary(lines: Iterable[str]) -> dict[str, dict[str, int]]:
    """Per replicated table, the counts of a `jobs cdc` run's summary lines."""
    summary = {}
    for line in lines:
        m = CDC_SUMMARY.match(line)
        if m and m["table"] in TABLES:
            summary[m["table"]] = {k: int(v) for k, v in m.groupdict().items() if k != "table"}
    return summary


class CdcOperator(JobsOperator):
    """``jobs cdc --available-now``: applies every change PostgreSQL committed before the
    run to the MySQL replicas (all tables), then exits.

    Its outlets are the replicas' Assets (``replica_asset``). A run that changed no
    replica row (nothing upserted or deleted, by the job's per-table summary) ends as
    *skipped*, so it emits no asset event and the marts are not rebuilt for nothing;
    otherwise each replica's event carries that table's counts as ``extra``. When the
    summary cannot be read (an unexpected output), the events are emitted: a needless
    marts build is the safe side.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(command=["cdc", "--available-now"], **kwargs)

    def output_started(self) -> None:
        self._summary: dict[str, dict[str, int]] = {}

    def read_line(self, line: str) -> None:
        self._summary.update(cdc_summary([line]))

    def succeeded(self, context: Any) -> None:
        summary = getattr(self, "_summary", {})
        missing = [t for t in TABLES if t not in summary]
        if missing:
            self.log.warning(
                "no summary line of jobs cdc for %s: emitting the replicas' asset events anyway",
                ", ".join(missing),
            )
            return
        if not any(c["upserted"] or c["deleted"] for c in summary.values()):
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(
                "no replica row changed: no asset event, the marts are not rebuilt"
            )
        events = context.get("outlet_events")
        if events is None:  # (outside a task run)
            return
        for table in TABLES:
            asset = replica_asset(table)
            if any(getattr(o, "uri", None) == asset.uri for o in self.outlets):
                events[asset].extra = {"source": "jobs cdc", **summary[table]}
