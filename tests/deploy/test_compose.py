"""docker-compose.yml and infra/docker/Dockerfile, checked for real: the file is
resolved by Docker Compose v2 (see conftest.compose_config) and the result is checked
against what the deployment promises."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess

import pytest
from conftest import ROOT, read_dotenv, resolve_compose, run_compose_config

SERVICES = {
    "postgres", "mysql", "kafka", "kafka-init", "spark-master", "spark-worker",
    "spark-connect", "pg-datagen", "kafka-datagen", "airflow-init", "airflow-apiserver",
    "airflow-scheduler", "airflow-dag-processor", "kafka-connect", "cdc-register", "jobs-cdc",
    "jobs-dwh", "superset-init", "superset",
    "generator",
    "postgres-standby",
}
ONE_SHOT = {"kafka-init", "pg-datagen", "airflow-init", "cdc-register", "superset-init"}
LONG_RUNNING = SERVICES - ONE_SHOT

# service -> {dependency: condition}, in the spirit of the seed's graph
DEPENDS_ON = {
    "kafka-init": {"kafka": "service_healthy"},
    "kafka-connect": {"kafka": "service_healthy", "postgres": "service_healthy"},
    "cdc-register": {"kafka-connect": "service_healthy"},
    # the continuous change apply: the services it talks to, and the connector registered
    "jobs-cdc": {
        "postgres": "service_healthy",
        "mysql": "service_healthy",
        "kafka": "service_healthy",
        "spark-connect": "service_healthy",
        "cdc-register": "service_completed_successfully",
    },
    # the continuous vault load: the change topics in, the warehouse (on postgres) out
    "jobs-dwh": {
        "postgres": "service_healthy",
        "kafka": "service_healthy",
        "spark-connect": "service_healthy",
        "cdc-register": "service_completed_successfully",
    },
    "spark-worker": {"spark-master": "service_healthy"},
    "spark-connect": {"spark-master": "service_healthy", "spark-worker": "service_healthy"},
    "pg-datagen": {"postgres": "service_healthy"},
    "postgres-standby": {"postgres": "service_healthy"},
    "kafka-datagen": {"kafka-init": "service_completed_successfully"},
    "generator": {"postgres": "service_healthy", "kafka-init": "service_completed_successfully"},
    "airflow-init": {
        "postgres": "service_healthy",
        "postgres-standby": "service_healthy",
        "mysql": "service_healthy",
        "kafka-init": "service_completed_successfully",
        "kafka-datagen": "service_healthy",
        "spark-connect": "service_healthy",
        "pg-datagen": "service_completed_successfully",
    },
    "airflow-apiserver": {"airflow-init": "service_completed_successfully"},
    "airflow-scheduler": {
        "airflow-init": "service_completed_successfully",
        "airflow-apiserver": "service_healthy",
    },
    "airflow-dag-processor": {"airflow-init": "service_completed_successfully"},
    # Superset: its metadata and the provisioned connections need both databases
    "superset-init": {"postgres": "service_healthy", "mysql": "service_healthy"},
    "superset": {"superset-init": "service_completed_successfully"},
}

# Exactly what is published on the host: service -> {(host port from .env, container port)}.
# Not the master's RPC port 7077 nor the worker UI 8082 (see docker-compose.yml's header).
PUBLISHED = {
    "airflow-apiserver": {("AIRFLOW_PORT", 8080)},
    "spark-master": {("SPARK_MASTER_WEBUI_PORT", 8081)},
    "spark-connect": {("SPARK_CONNECT_PORT", 15002), ("SPARK_UI_PORT", 4040)},
    "postgres": {("POSTGRES_PORT", 5432)},
    "postgres-standby": {("POSTGRES_STANDBY_PORT", 5432)},
    "mysql": {("MYSQL_PORT", 3306)},
    "kafka": {("KAFKA_PORT", 9092)},
    "kafka-connect": {("KAFKA_CONNECT_PORT", 8083)},
    "superset": {("SUPERSET_PORT", 8088)},
    "generator": {("GENERATOR_PORT", 8090)},
}
AIRFLOW_SERVICES = {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"}
# What .env holds that is secret: its values must never be on a command line.
SECRET_KEYS = re.compile(r"PASSWORD|TOKEN|SECRET")

OFFICIAL_IMAGE = re.compile(
    r"^(postgres|mysql|debian|rust|maven|apache/kafka|apache/spark|apache/airflow"
    r"|apache/superset|quay\.io/debezium/connect)(:|$)"
)


def published(service: dict) -> set[tuple[str, int]]:
    return {(str(p.get("published")), int(p["target"])) for p in service.get("ports", [])}


def bound(service: dict) -> set[tuple[str, str, int]]:
    return {
        (p.get("host_ip", ""), str(p.get("published")), int(p["target"]))
        for p in service.get("ports", [])
    }


def secret_values(dotenv: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in dotenv.items() if SECRET_KEYS.search(k) and v}


def test_services(compose_config):
    assert set(compose_config["services"]) == SERVICES


def expected_ports(dotenv: dict[str, str], address: str) -> dict[str, set]:
    defaults = {"AIRFLOW_PORT": "8080", "SUPERSET_PORT": "8088"}
    return {
        name: {(address, dotenv.get(key, defaults.get(key)), target) for key, target in ports}
        for name, ports in PUBLISHED.items()
    }


def test_ports(compose_config, dotenv):
    """Only the intended ports are published, each on 127.0.0.1 (PLATFORM_BIND_ADDRESS's
    default): this machine only."""
    assert dotenv.get("PLATFORM_BIND_ADDRESS", "127.0.0.1") == "127.0.0.1", \
        "the repository's .env must not open the ports to the network"
    expected = expected_ports(dotenv, "127.0.0.1")
    for name, service in compose_config["services"].items():
        assert bound(service) == expected.get(name, set()), name
    # the Spark application UI (4040) is the Connect server's
    assert (dotenv["SPARK_UI_PORT"], 4040) in published(compose_config["services"]["spark-connect"])
    # the documented defaults
    assert {dotenv[k] for k in ("POSTGRES_PORT", "MYSQL_PORT", "KAFKA_PORT",
                                "SPARK_MASTER_WEBUI_PORT", "SPARK_CONNECT_PORT",
                                "SPARK_UI_PORT", "KAFKA_CONNECT_PORT",
                                "POSTGRES_STANDBY_PORT")} == {
        "5432", "3306", "9092", "8081", "15002", "4040", "8083", "5433"}


def test_one_setting_opens_every_port(compose_cmd, dotenv):
    """PLATFORM_BIND_ADDRESS=0.0.0.0 binds every published port to all interfaces, and
    publishes nothing more."""
    config = resolve_compose(compose_cmd, {"PLATFORM_BIND_ADDRESS": "0.0.0.0"})
    expected = expected_ports(dotenv, "0.0.0.0")
    for name, service in config["services"].items():
        assert bound(service) == expected.get(name, set()), name


def test_not_published_master_rpc_and_worker_ui(compose_config):
    services = compose_config["services"]
    assert all(target != 7077 for _, target in published(services["spark-master"]))
    assert not services["spark-worker"].get("ports")


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_healthcheck_on_long_running_services(compose_config, name):
    service = compose_config["services"][name]
    check = service.get("healthcheck")
    assert check and not check.get("disable"), f"{name} has no healthcheck"
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert service.get("restart") in ("unless-stopped", "always"), name


@pytest.mark.parametrize("name", sorted(ONE_SHOT))
def test_one_shot_services_do_not_restart(compose_config, name):
    assert compose_config["services"][name].get("restart", "no") == "no"


def test_dependency_conditions(compose_config):
    for name, expected in DEPENDS_ON.items():
        actual = {
            dep: spec["condition"]
            for dep, spec in compose_config["services"][name].get("depends_on", {}).items()
        }
        assert actual == expected, name
    for name in SERVICES - DEPENDS_ON.keys():
        assert not compose_config["services"][name].get("depends_on"), name


def test_memory_limits_fit_a_16gb_laptop(compose_config):
    # (13 GiB since Superset joined: still room for the host on a 16 GB laptop)
    limits = {}
    for name, service in compose_config["services"].items():
        limit = service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
        assert limit, f"{name} has no memory limit"
        limits[name] = int(limit)
    running = sum(limits[n] for n in LONG_RUNNING)
    # what stays up, plus the largest one-shot container (they finish before Airflow starts)
    peak = running + max(limits[n] for n in ONE_SHOT)
    assert running <= 13 * 1024**3, f"long-running limits add up to {running / 1024**3:.1f} GiB"
    assert peak <= 14 * 1024**3, f"peak memory limits add up to {peak / 1024**3:.1f} GiB"


def test_named_volumes(compose_config):
    def named(service: str) -> dict[str, str]:
        return {
            v["target"]: v["source"]
            for v in compose_config["services"][service].get("volumes", [])
            if v["type"] == "volume"
        }

    assert named("postgres") == {"/var/lib/postgresql/data": "postgres-data"}
    assert named("postgres-standby") == {"/var/lib/postgresql/data": "postgres-standby-data"}
    assert named("mysql") == {"/var/lib/mysql": "mysql-data"}
    assert named("spark-connect")["/opt/spark/checkpoints"] == "spark-checkpoints"
    assert "spark-checkpoints" in compose_config["volumes"]
    cmd = compose_config["services"]["spark-connect"]["command"]
    assert "spark.sql.streaming.checkpointLocation=/opt/spark/checkpoints" in cmd


def test_same_db_init_as_the_local_stack(compose_config):
    for service, folder in (("postgres", "infra/db/postgres"), ("mysql", "infra/db/mysql")):
        binds = {
            v["target"]: v["source"]
            for v in compose_config["services"][service]["volumes"]
            if v["type"] == "bind"
        }
        assert binds["/docker-entrypoint-initdb.d/platform"] == str(ROOT / folder)
        wrapper = binds["/docker-entrypoint-initdb.d/10-platform-init.sh"]
        assert "platform/init.sh" in open(wrapper).read()
    pg_env = compose_config["services"]["postgres"]["environment"]
    # the image's superuser is the admin; the platform user comes from init.sh
    assert pg_env["POSTGRES_USER"] != pg_env["APP_USER"]


def test_images_are_official(compose_config):
    dockerfile = (ROOT / "infra/docker/Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", dockerfile, re.M))
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile, re.M))
    for base in bases:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert resolved in stages or OFFICIAL_IMAGE.match(resolved), resolved
    for name, service in compose_config["services"].items():
        if "build" in service:
            assert service["build"]["target"] in stages
        else:
            image = service["image"]
            built = {s["image"] for s in compose_config["services"].values() if "build" in s}
            assert image in built or OFFICIAL_IMAGE.match(image), (name, image)
    assert compose_config["services"]["mysql"]["image"] == "mysql:8.4"
    assert compose_config["services"]["kafka"]["image"].startswith("apache/kafka:")


def test_images_get_everything_at_build_time():
    dockerfile = (ROOT / "infra/docker/Dockerfile").read_text()
    spark = dockerfile.split("AS spark\n", 1)[1].split("\nFROM ", 1)[0]
    assert "COPY --from=spark-jars /out/jars/ /opt/spark/jars/" in spark
    maven = dockerfile.split("AS spark-jars\n", 1)[1].split("\nFROM ", 1)[0]
    assert "extra-jars.pom.xml" in maven and "infra/spark/sink" in maven
    airflow = dockerfile.split("AS airflow\n", 1)[1]
    assert "COPY --from=rust-build /out/jobs /usr/local/bin/jobs" in airflow
    rust = dockerfile.split("AS rust-build\n", 1)[1].split("\nFROM ", 1)[0]
    assert "cargo build --release --locked" in rust
    assert "--mount=type=cache" in rust


def test_kafka_is_kraft(compose_config):
    kafka = compose_config["services"]["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any("zookeeper" in name for name in compose_config["services"])
    init = compose_config["services"]["kafka-init"]
    assert "--if-not-exists" in " ".join(init["command"])


def test_spark_connect_server(compose_config):
    connect = compose_config["services"]["spark-connect"]
    cmd = connect["command"]
    assert "org.apache.spark.sql.connect.service.SparkConnectServer" in cmd
    assert "spark://spark-master:7077" in cmd
    assert "SPARK_REMOTE" not in connect.get("environment", {})
    assert "SPARK_DAEMON_MEMORY" not in connect.get("environment", {})


def test_spark_connect_token_from_the_environment(compose_config, dotenv):
    """The server's token is SPARK_CONNECT_TOKEN, given as Spark's own variable, never on
    its command line; without it in .env, compose refuses to start (no open door)."""
    connect = compose_config["services"]["spark-connect"]
    token = dotenv["SPARK_CONNECT_TOKEN"]
    assert token
    assert connect["environment"]["SPARK_CONNECT_AUTHENTICATE_TOKEN"] == token
    text = (ROOT / "docker-compose.yml").read_text()
    assert re.search(r"SPARK_CONNECT_AUTHENTICATE_TOKEN: \$\{SPARK_CONNECT_TOKEN[:?}]", text)
    words = [*(connect.get("command") or []), *(connect.get("entrypoint") or [])]
    for word in words:
        assert token not in word
        assert "authenticate" not in word.lower() and "token" not in word.lower(), word
        for value in secret_values(dotenv).values():
            assert value not in word, word


def test_spark_processes_get_the_database_passwords(compose_config, dotenv):
    """The platform's JDBC connection provider reads the passwords from the environment
    of the driver (the Connect server) and of the executors (children of the worker)."""
    for name in ("spark-connect", "spark-worker"):
        env = compose_config["services"][name]["environment"]
        assert env["POSTGRES_PASSWORD"] == dotenv["POSTGRES_PASSWORD"], name
        assert env["MYSQL_PASSWORD"] == dotenv["MYSQL_PASSWORD"], name
    # ...and no admin password anywhere in Spark
    for name in ("spark-master", "spark-worker", "spark-connect"):
        env = compose_config["services"][name].get("environment", {})
        assert not {"MYSQL_ROOT_PASSWORD", "POSTGRES_ADMIN_PASSWORD"} & env.keys(), name


def test_spark_event_logs(compose_config):
    connect = compose_config["services"]["spark-connect"]
    cmd = connect["command"]
    assert "spark.eventLog.enabled=true" in cmd
    assert "spark.eventLog.dir=/opt/spark/events" in cmd
    volumes = {v["target"]: v["source"] for v in connect["volumes"] if v["type"] == "volume"}
    assert volumes["/opt/spark/events"] == "spark-events"
    assert "spark-events" in compose_config["volumes"]
    # the image creates the directory for the spark user (a new volume inherits it)
    dockerfile = (ROOT / "infra/docker/Dockerfile").read_text()
    spark = dockerfile.split("AS spark\n", 1)[1].split("\nFROM ", 1)[0]
    assert "/opt/spark/events" in spark and "chown -R spark:spark" in spark


def test_spark_uis_have_no_kill_links(compose_config):
    services = compose_config["services"]
    assert "spark.ui.killEnabled=false" in services["spark-connect"]["command"]
    assert "-Dspark.ui.killEnabled=false" in services["spark-master"]["environment"]["SPARK_MASTER_OPTS"]


def test_airflow_settings(compose_config, dotenv):
    env = compose_config["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"
    assert env["AIRFLOW__API__EXPOSE_CONFIG"] == "false"

    spark = json.loads(env["AIRFLOW_CONN_SPARK_CONNECT_DEFAULT"])
    assert spark["conn_type"] == "spark_connect" and spark["port"] == 15002
    # the token the provider's way: the connection's password ("Token" in the UI)
    assert spark["password"] == dotenv["SPARK_CONNECT_TOKEN"]
    for conn in ("AIRFLOW_CONN_PLATFORM_POSTGRES", "AIRFLOW_CONN_PLATFORM_MYSQL",
                 "AIRFLOW_CONN_PLATFORM_KAFKA"):
        json.loads(env[conn])  # valid JSON after interpolation
    # the raw token is nowhere else in Airflow's environment
    assert "SPARK_CONNECT_TOKEN" not in env and "SPARK_REMOTE" not in env
    api = compose_config["services"]["airflow-apiserver"]
    assert api["environment"]["AIRFLOW_ADMIN_USER"] == "admin"
    assert api["environment"]["AIRFLOW_ADMIN_PASSWORD"] == dotenv["AIRFLOW_ADMIN_PASSWORD"]
    # only the API server knows the admin password; nobody uses the image's user
    # creation (`airflow users create --password ...` would put it on a command line)
    for name in AIRFLOW_SERVICES:
        service_env = compose_config["services"][name]["environment"]
        assert not any(k.startswith("_AIRFLOW_WWW_USER") for k in service_env), name
        if name != "airflow-apiserver":
            assert "AIRFLOW_ADMIN_PASSWORD" not in service_env, name


def test_continuous_cdc_service(compose_config, dotenv):
    """jobs-cdc: `jobs cdc` without --available-now (runs until SIGTERM), from the
    platform image, restarted unless stopped; its secrets in its environment only (the
    two database passwords and the Spark Connect token, nothing else), none on its
    command line; and the Airflow DAG doing the same starts paused next to it."""
    services = compose_config["services"]
    service = services["jobs-cdc"]
    assert service["image"] == services["pg-datagen"]["image"]  # the image with `jobs`
    assert service["command"] == ["jobs", "cdc"]
    assert not service.get("entrypoint")
    assert service["restart"] == "unless-stopped"
    assert "jobs cdc" in " ".join(service["healthcheck"]["test"])
    env = service["environment"]
    assert env["POSTGRES_PASSWORD"] == dotenv["POSTGRES_PASSWORD"]
    assert env["MYSQL_PASSWORD"] == dotenv["MYSQL_PASSWORD"]
    assert env["SPARK_CONNECT_TOKEN"] == dotenv["SPARK_CONNECT_TOKEN"]
    assert {k for k in env if SECRET_KEYS.search(k)} == {
        "POSTGRES_PASSWORD", "MYSQL_PASSWORD", "SPARK_CONNECT_TOKEN"}
    # the endpoint without the token; the settings the other platform containers get
    assert env["SPARK_REMOTE"] == "sc://spark-connect:15002"
    assert env["CDC_TOPIC_PREFIX"] == dotenv.get("CDC_TOPIC_PREFIX", "pg")
    for name in ("POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_SCHEMA", "POSTGRES_USER", "MYSQL_HOST",
                 "MYSQL_DB", "MYSQL_USER", "KAFKA_BOOTSTRAP_SERVERS"):
        assert env[name] == services["pg-datagen"]["environment"][name], name
    words = [*service["command"], *(service["healthcheck"]["test"])]
    for value in secret_values(dotenv).values():
        assert not [w for w in words if value in w.split() or (len(value) >= 6 and value in w)]
    assert not service.get("ports")
    # SIGTERM stops the streaming queries: time for it before a SIGKILL
    assert service.get("stop_grace_period") == "1m0s"
    for name in AIRFLOW_SERVICES:
        airflow_env = services[name]["environment"]
        assert airflow_env["PLATFORM_CDC_CONTINUOUS"] == "true", name
        assert airflow_env["CDC_TOPIC_PREFIX"] == env["CDC_TOPIC_PREFIX"], name


def test_continuous_dwh_service(compose_config, dotenv):
    """jobs-dwh: `jobs dwh` without --available-now (runs until SIGTERM), as jobs-cdc:
    the platform image, restarted unless stopped; its secrets in its environment only
    (the PostgreSQL password and the Spark Connect token: it never talks to MySQL), none
    on its command line; its settings from .env; its checkpoints under the Connect
    server's checkpoint location, on the spark-checkpoints volume; and the Airflow DAG
    doing the same starts paused next to it."""
    services = compose_config["services"]
    service = services["jobs-dwh"]
    cdc = services["jobs-cdc"]
    assert service["image"] == services["pg-datagen"]["image"]  # the image with `jobs`
    assert service["command"] == ["jobs", "dwh"]
    assert not service.get("entrypoint")
    assert service["restart"] == "unless-stopped"
    assert "jobs dwh" in " ".join(service["healthcheck"]["test"])
    assert service["healthcheck"]["test"][1] == cdc["healthcheck"]["test"][1].replace(
        "jobs cdc", "jobs dwh")
    env = service["environment"]
    assert env["POSTGRES_PASSWORD"] == dotenv["POSTGRES_PASSWORD"]
    assert env["SPARK_CONNECT_TOKEN"] == dotenv["SPARK_CONNECT_TOKEN"]
    assert {k for k in env if SECRET_KEYS.search(k)} == {"POSTGRES_PASSWORD", "SPARK_CONNECT_TOKEN"}
    assert env["SPARK_REMOTE"] == "sc://spark-connect:15002"
    assert env["CDC_TOPIC_PREFIX"] == cdc["environment"]["CDC_TOPIC_PREFIX"]
    for name in ("DWH_DB", "DWH_TRIGGER_INTERVAL_MS", "DWH_MAX_OFFSETS_PER_TRIGGER"):
        assert env[name] == dotenv[name], name
    # the warehouse database the job writes is the one the postgres init creates
    assert env["DWH_DB"] == services["postgres"]["environment"]["APP_DWH_DB"]
    for name in ("POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_SCHEMA", "POSTGRES_USER",
                 "KAFKA_BOOTSTRAP_SERVERS"):
        assert env[name] == services["pg-datagen"]["environment"][name], name
    # no DWH_CHECKPOINT_LOCATION: the job's checkpoints go under the Connect server's
    # spark.sql.streaming.checkpointLocation (as jobs-cdc's), a path both Spark
    # processes see on the shared volume
    assert "DWH_CHECKPOINT_LOCATION" not in env and "CDC_CHECKPOINT_LOCATION" not in cdc["environment"]
    location = "spark.sql.streaming.checkpointLocation=/opt/spark/checkpoints"
    assert location in services["spark-connect"]["command"]
    for name in ("spark-connect", "spark-worker"):
        volumes = {v["target"]: v["source"] for v in services[name]["volumes"] if v["type"] == "volume"}
        assert volumes["/opt/spark/checkpoints"] == "spark-checkpoints", name
    words = [*service["command"], *(service["healthcheck"]["test"])]
    for value in secret_values(dotenv).values():
        assert not [w for w in words if value in w.split() or (len(value) >= 6 and value in w)]
    assert not service.get("ports")
    # as jobs-cdc: time to stop the streaming query before a SIGKILL, the same limits
    for key in ("stop_grace_period", "logging", "deploy"):
        assert service.get(key) == cdc.get(key), key
    assert service.get("stop_grace_period") == "1m0s"
    for name in AIRFLOW_SERVICES:
        airflow_env = services[name]["environment"]
        assert airflow_env["PLATFORM_DWH_CONTINUOUS"] == "true", name
        # a DAG run (once unpaused) loads the same warehouse from the same topics
        assert airflow_env["DWH_DB"] == env["DWH_DB"], name
        assert airflow_env["DWH_MAX_OFFSETS_PER_TRIGGER"] == env["DWH_MAX_OFFSETS_PER_TRIGGER"], name
        assert airflow_env["CDC_TOPIC_PREFIX"] == env["CDC_TOPIC_PREFIX"], name


def test_airflow_secrets_are_not_fixed_in_the_repository(compose_config, compose_cmd):
    """JWT secret and API secret key: empty unless .env sets them, then generated on the
    first start into the airflow-secrets volume by the image's entrypoint."""
    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text
    assert re.search(r"AIRFLOW__API_AUTH__JWT_SECRET: \$\{AIRFLOW_JWT_SECRET:-\}", text)
    assert re.search(r"AIRFLOW__API__SECRET_KEY: \$\{AIRFLOW_SECRET_KEY:-\}", text)
    assert not read_dotenv().get("AIRFLOW_JWT_SECRET") and not read_dotenv().get("AIRFLOW_SECRET_KEY")
    for name in AIRFLOW_SERVICES:
        service = compose_config["services"][name]
        assert service["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] == "", name
        assert service["environment"]["AIRFLOW__API__SECRET_KEY"] == "", name
        volumes = {v["target"]: v["source"] for v in service["volumes"] if v["type"] == "volume"}
        assert volumes["/opt/airflow/secrets"] == "airflow-secrets", name
        assert not service.get("entrypoint"), f"{name} must keep the image's entrypoint"
    assert "airflow-secrets" in compose_config["volumes"]
    # an explicitly set value wins
    config = resolve_compose(compose_cmd, {"AIRFLOW_JWT_SECRET": "jwt-x1", "AIRFLOW_SECRET_KEY": "key-x2"})
    env = config["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "jwt-x1"
    assert env["AIRFLOW__API__SECRET_KEY"] == "key-x2"
    # every Airflow process starts through with-secrets.sh, then the image's entrypoint
    dockerfile = (ROOT / "infra/docker/Dockerfile").read_text()
    airflow = dockerfile.split("AS airflow\n", 1)[1]
    assert ('ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/platform/with-secrets.sh", '
            '"/entrypoint"]') in airflow
    assert "PLATFORM_AIRFLOW_SECRETS_DIR=/opt/airflow/secrets" in airflow
    assert "mkdir -m 0700 /opt/airflow/secrets" in airflow


@pytest.mark.parametrize(
    "missing", ["SPARK_CONNECT_TOKEN", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_DB_PASSWORD"]
)
def test_no_default_for_a_secret(compose_cmd, tmp_path, missing):
    """No open door: without the secret in .env, compose refuses instead of starting
    with a default (or no) password or token."""
    lines = [
        line for line in (ROOT / ".env").read_text().splitlines()
        if not line.startswith(f"{missing}=")
    ]
    env_file = tmp_path / "env"
    env_file.write_text("\n".join(lines) + "\n")
    proc = run_compose_config(compose_cmd, env_file=env_file)
    assert proc.returncode != 0, f"compose accepted a .env without {missing}"
    assert missing in proc.stderr


def _command_lines(service: dict) -> list[list[str]]:
    check = service.get("healthcheck", {}).get("test") or []
    return [service.get("command") or [], service.get("entrypoint") or [], check]


def test_no_secret_on_a_command_line(compose_config, dotenv):
    """No password, token or key from .env in any service's command, entrypoint or
    healthcheck (whatever needs one gets it from its environment)."""
    secrets = set(secret_values(dotenv).values())
    assert {"finals_pass", "pg_admin_pass", "airflow_admin_pass", "airflow_db_pass",
            dotenv["SPARK_CONNECT_TOKEN"]} <= secrets

    def leaks(words: list[str]) -> set[str]:
        # a secret as a word of its own, or as the value of an option (x=pw, -ppw)...
        tokens = {t for w in words for t in w.split()}
        found = {
            s for s in secrets for t in tokens
            if t.strip("'\"") == s or t.endswith("=" + s) or t == "-p" + s
        }
        # ...or anywhere inside one (distinctive values only: `postgres` is a program)
        return found | {s for s in secrets if len(s) >= 6 for w in words if s in w}

    for name, service in compose_config["services"].items():
        command, entrypoint, check = _command_lines(service)
        # (argv[0] is a program name, e.g. `postgres`, which may equal a default password)
        assert not leaks(command[1:] + entrypoint[1:]), f"a secret is on {name}'s command line"
        assert not leaks(check), f"a secret is in {name}'s healthcheck"


def test_with_secrets_generates_once_and_an_explicit_value_wins(tmp_path):
    script = ROOT / "infra/airflow/with-secrets.sh"
    secrets = tmp_path / "secrets"
    base = {"PATH": os.environ["PATH"], "PLATFORM_AIRFLOW_SECRETS_DIR": str(secrets)}
    show = ["sh", "-c", 'echo "$AIRFLOW__API_AUTH__JWT_SECRET|$AIRFLOW__API__SECRET_KEY"']

    def run(env=None) -> str:
        out = subprocess.run([str(script), *show], env={**base, **(env or {})},
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    # processes starting together agree on one value
    procs = [subprocess.Popen([str(script), *show], env=base, stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    outputs = {p.communicate()[0].strip() for p in procs}
    assert len(outputs) == 1, outputs
    first = outputs.pop()
    jwt, key = first.split("|")
    assert len(jwt) >= 40 and len(key) >= 40 and jwt != key
    assert run() == first  # stable across restarts
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for name in ("jwt_secret", "api_secret_key"):
        assert stat.S_IMODE((secrets / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in secrets.iterdir()) == ["api_secret_key", "jwt_secret"]
    # an explicitly set value wins (an empty one does not)
    assert run({"AIRFLOW__API_AUTH__JWT_SECRET": "explicit-1"}) == f"explicit-1|{key}"
    assert run({"AIRFLOW__API_AUTH__JWT_SECRET": ""}) == first


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, enough for the allow-list used here."""
    import fnmatch

    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatch(p, "*" + pat[2:]) or p.endswith(pat[3:]) for p in prefixes)
        else:
            hit = any(fnmatch.fnmatch(p, pat) for p in prefixes)
        if hit:
            ignored = not negate
    return ignored


def test_dockerfile_sources_exist_and_are_in_the_build_context():
    dockerfile = (ROOT / "infra/docker/Dockerfile").read_text()
    patterns = [
        line.strip()
        for line in (ROOT / "infra/docker/Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] in (["COPY"], ["ADD"]) and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), f"{src} does not exist"
        assert not _ignored(src.rstrip("/"), patterns), f"{src} is excluded from the build context"
    assert _ignored(".local/postgres", patterns) and _ignored("target/release/jobs", patterns)


def test_superset_services(compose_config, dotenv):
    """Superset: the official image (+ drivers and infra/superset's provisioning), its
    metadata in its own database of `postgres` (created by the same init as Airflow's),
    provisioned by superset-init on every start; the server holds only its own secrets
    (no platform database password, no admin password) and none is on a command line."""
    services = compose_config["services"]
    init, server = services["superset-init"], services["superset"]
    assert init["build"]["target"] == "superset" and server["image"] == init["image"]
    dockerfile = (ROOT / "infra/docker/Dockerfile").read_text()
    stage = dockerfile.split("AS superset\n", 1)[1]
    assert "FROM apache/superset:${SUPERSET_VERSION} AS superset" in dockerfile
    assert "psycopg2-binary pymysql" in stage and "constraints-${SUPERSET_VERSION}.txt" in stage
    assert "COPY infra/superset /opt/platform/superset" in stage
    assert "ENV SUPERSET_CONFIG_PATH=/opt/platform/superset/superset_config.py" in stage
    assert "provision.py" in " ".join(init["command"])
    assert "superset db upgrade" in " ".join(init["command"])
    env = init["environment"]
    assert env["SUPERSET_ADMIN_PASSWORD"] == dotenv["SUPERSET_ADMIN_PASSWORD"]
    assert env["POSTGRES_PASSWORD"] == dotenv["POSTGRES_PASSWORD"]
    assert env["MYSQL_PASSWORD"] == dotenv["MYSQL_PASSWORD"]
    assert env["POSTGRES_HOST"] == "postgres" and env["MYSQL_HOST"] == "mysql"
    server_env = server["environment"]
    assert {k for k in server_env if SECRET_KEYS.search(k)} == {"SUPERSET_SECRET_KEY", "SUPERSET_DB_PASSWORD"}
    assert server_env["SUPERSET_SECRET_KEY"] == dotenv["SUPERSET_SECRET_KEY"]
    assert "curl" in server["healthcheck"]["test"] and "http://localhost:8088/health" in server["healthcheck"]["test"]
    assert int(server_env["SERVER_WORKER_AMOUNT"]) <= 2
    for service in (init, server):
        words = [*(service.get("command") or []), *(service.get("entrypoint") or [])]
        for value in secret_values(dotenv).values():
            assert not [w for w in words if len(value) >= 6 and value in w]
    # the metadata database: created with the platform's idempotent roles.sql
    pg_env = services["postgres"]["environment"]
    assert pg_env["SUPERSET_DB_PASSWORD"] == dotenv["SUPERSET_DB_PASSWORD"]
    assert pg_env["SUPERSET_DB"] == server_env["SUPERSET_DB"]
    wrapper = (ROOT / "infra/docker/postgres/10-platform-init.sh").read_text()
    assert 'ROLE_PASSWORD="$SUPERSET_DB_PASSWORD"' in wrapper and "roles.sql" in wrapper


def test_superset_assets_hold_no_secret(dotenv):
    """The dashboards' files: Superset's export format, no password (only the mask
    XXXXXXXXXX), no deployment detail but ${...} settings from .env."""
    import yaml

    assets = ROOT / "infra/superset/assets"
    kinds = {p.relative_to(assets).parts[0] for p in assets.rglob("*.yaml")}
    assert kinds == {"metadata.yaml", "databases", "datasets", "charts", "dashboards"}
    assert yaml.safe_load((assets / "metadata.yaml").read_text())["type"] == "assets"
    for path in assets.rglob("*.yaml"):
        text = path.read_text()
        for value in secret_values(dotenv).values():
            assert len(value) < 6 or value not in text, path
        if path.parent.name == "databases":
            uri = yaml.safe_load(text)["sqlalchemy_uri"]
            assert ":XXXXXXXXXX@${" in uri, path
    assert len(list((assets / "dashboards").glob("*.yaml"))) >= 3
def test_generator_service(compose_config):
    """The generator service listens on 8090 inside the network and its healthcheck
    asks its /health endpoint."""
    service = compose_config["services"]["generator"]
    assert service["command"] == ["datagen", "serve"]
    assert service["environment"]["GENERATOR_BIND"] == "0.0.0.0"
    assert service["environment"]["GENERATOR_PORT"] == "8090"
    assert "/dev/tcp/127.0.0.1/8090" in " ".join(service["healthcheck"]["test"])
    assert "GET /health" in " ".join(service["healthcheck"]["test"])
