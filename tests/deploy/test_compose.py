"""docker-compose.yml and infra/docker/Dockerfile, checked for real: the file is
resolved by Docker Compose v2 (see conftest.compose_config) and the result is checked
against what the deployment promises."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

SERVICES = {
    "postgres", "mysql", "kafka", "kafka-init", "spark-master", "spark-worker",
    "spark-connect", "pg-datagen", "kafka-datagen", "airflow-init", "airflow-apiserver",
    "airflow-scheduler", "airflow-dag-processor",
}
ONE_SHOT = {"kafka-init", "pg-datagen", "airflow-init"}
LONG_RUNNING = SERVICES - ONE_SHOT

# service -> {dependency: condition}, in the spirit of the seed's graph
DEPENDS_ON = {
    "kafka-init": {"kafka": "service_healthy"},
    "spark-worker": {"spark-master": "service_healthy"},
    "spark-connect": {"spark-master": "service_healthy", "spark-worker": "service_healthy"},
    "pg-datagen": {"postgres": "service_healthy"},
    "kafka-datagen": {"kafka-init": "service_completed_successfully"},
    "airflow-init": {
        "postgres": "service_healthy",
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
}

# service -> (host port from .env or fixed, container port)
PUBLISHED = {
    "airflow-apiserver": ("8080", 8080),
    "spark-master": ("SPARK_MASTER_WEBUI_PORT", 8081),
    "spark-connect": ("SPARK_CONNECT_PORT", 15002),
    "postgres": ("POSTGRES_PORT", 5432),
    "mysql": ("MYSQL_PORT", 3306),
    "kafka": ("KAFKA_PORT", 9092),
}

OFFICIAL_IMAGE = re.compile(
    r"^(postgres|mysql|debian|rust|maven|apache/kafka|apache/spark|apache/airflow)(:|$)"
)


def published(service: dict) -> set[tuple[str, int]]:
    return {(str(p.get("published")), int(p["target"])) for p in service.get("ports", [])}


def test_services(compose_config):
    assert set(compose_config["services"]) == SERVICES


def test_ports(compose_config, dotenv):
    for name, (host, target) in PUBLISHED.items():
        host_port = dotenv.get(host, host)
        assert (host_port, target) in published(compose_config["services"][name]), name
    # the Spark application UI (4040) is the Connect server's
    assert (dotenv["SPARK_UI_PORT"], 4040) in published(compose_config["services"]["spark-connect"])
    # the documented defaults
    assert {dotenv[k] for k in ("POSTGRES_PORT", "MYSQL_PORT", "KAFKA_PORT",
                                "SPARK_MASTER_WEBUI_PORT", "SPARK_CONNECT_PORT",
                                "SPARK_UI_PORT")} == {"5432", "3306", "9092", "8081", "15002", "4040"}


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
    limits = {}
    for name, service in compose_config["services"].items():
        limit = service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
        assert limit, f"{name} has no memory limit"
        limits[name] = int(limit)
    running = sum(limits[n] for n in LONG_RUNNING)
    # what stays up, plus the largest one-shot container (they finish before Airflow starts)
    peak = running + max(limits[n] for n in ONE_SHOT)
    assert running <= 11 * 1024**3, f"long-running limits add up to {running / 1024**3:.1f} GiB"
    assert peak <= 12 * 1024**3, f"peak memory limits add up to {peak / 1024**3:.1f} GiB"


def test_named_volumes(compose_config):
    def named(service: str) -> dict[str, str]:
        return {
            v["target"]: v["source"]
            for v in compose_config["services"][service].get("volumes", [])
            if v["type"] == "volume"
        }

    assert named("postgres") == {"/var/lib/postgresql/data": "postgres-data"}
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


def test_airflow_settings(compose_config):
    env = compose_config["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"
    import json

    spark = json.loads(env["AIRFLOW_CONN_SPARK_CONNECT_DEFAULT"])
    assert spark["conn_type"] == "spark_connect" and spark["port"] == 15002
    for conn in ("AIRFLOW_CONN_PLATFORM_POSTGRES", "AIRFLOW_CONN_PLATFORM_MYSQL",
                 "AIRFLOW_CONN_PLATFORM_KAFKA"):
        json.loads(env[conn])  # valid JSON after interpolation
    api = compose_config["services"]["airflow-apiserver"]
    assert api["environment"]["AIRFLOW_ADMIN_USER"] == "admin"
    assert api["environment"]["AIRFLOW_ADMIN_PASSWORD"] == "admin"


def test_no_secret_on_a_command_line(compose_config, dotenv):
    secrets = {v for k, v in dotenv.items() if "PASSWORD" in k and v}

    def leaks(words: list[str]) -> set[str]:
        # a password as a word of its own, or as the value of an option (x=pw, -ppw)
        tokens = {t for w in words for t in w.split()}
        return {
            s for s in secrets for t in tokens
            if t.strip("'\"") == s or t.endswith("=" + s) or t == "-p" + s
        }

    for name, service in compose_config["services"].items():
        # (argv[0] is a program name, e.g. `postgres`, which may equal a default password)
        argv = (service.get("command") or [])[1:] + (service.get("entrypoint") or [])[1:]
        assert not leaks(argv), f"a password is on {name}'s command line"
        assert not leaks(service.get("healthcheck", {}).get("test", [])), name


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
