"""Change data capture (capture side): Debezium's PostgreSQL connector on Kafka Connect.
One connector config (infra/kafka-connect/postgres-cdc.json) for the local stack and
docker compose, the same worker settings in both, no password in the config, and the
captured tables are the platform's tables (`jobs list --json`)."""

from __future__ import annotations

import json
import re
import socket
import urllib.request

import pytest
from conftest import ROOT, read_dotenv

CDC = ROOT / "infra/kafka-connect"
PASSWORD_REF = "${env:POSTGRES_PASSWORD}"


def connector_template() -> dict[str, str]:
    return json.loads((CDC / "postgres-cdc.json").read_text())


def worker_properties() -> dict[str, str]:
    props = {}
    for line in (CDC / "connect-distributed.properties").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def test_connector_config():
    config = connector_template()
    assert all(isinstance(v, str) for v in config.values())
    expected = {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput",
        "slot.name": "platform_cdc",
        "publication.name": "platform_cdc",
        "publication.autocreate.mode": "filtered",
        "snapshot.mode": "initial",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "decimal.handling.mode": "string",
        "time.precision.mode": "adaptive_time_microseconds",
        "tombstones.on.delete": "true",
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": "1",
        "topic.prefix": "@CDC_TOPIC_PREFIX@",
        "database.password": PASSWORD_REF,
    }
    assert {k: config.get(k) for k in expected} == expected


def test_no_secret_in_the_connector_config():
    text = (CDC / "postgres-cdc.json").read_text()
    secrets = {v for k, v in read_dotenv().items() if re.search("PASSWORD|TOKEN|SECRET", k) and v}
    assert secrets
    assert not {s for s in secrets if s in text}
    assert text.count("PASSWORD") == 1  # only the reference to the worker's variable


def test_register_fills_every_placeholder():
    text = (CDC / "postgres-cdc.json").read_text()
    used = set(re.findall(r"@([A-Z_]+)@", text))
    script = (CDC / "register.sh").read_text()
    filled = set(re.search(r"^for var in ([A-Z_ ]+); do$", script, re.M).group(1).split())
    assert used == filled


def test_captured_tables_are_the_platform_tables(facts):
    """The table list is written once, in the connector config; it must be the tables
    of common::schema, in the platform's schema."""
    captured = connector_template()["table.include.list"].split(",")
    assert captured == [f"@POSTGRES_SCHEMA@.{t['name']}" for t in facts["tables"]]


def test_compose_worker_matches_the_local_worker(compose_config, dotenv):
    props = worker_properties()
    env = compose_config["services"]["kafka-connect"]["environment"]
    image_names = {  # the Debezium image's own names for some worker properties
        "group.id": "GROUP_ID",
        "config.storage.topic": "CONFIG_STORAGE_TOPIC",
        "offset.storage.topic": "OFFSET_STORAGE_TOPIC",
        "status.storage.topic": "STATUS_STORAGE_TOPIC",
        "offset.flush.interval.ms": "OFFSET_FLUSH_INTERVAL_MS",
    }
    same = [*image_names, "config.storage.replication.factor", "offset.storage.replication.factor",
            "status.storage.replication.factor", "offset.storage.partitions",
            "status.storage.partitions", "config.providers", "config.providers.env.class",
            "config.providers.env.param.allowlist.pattern", "producer.linger.ms",
            "producer.batch.size"]
    for key in same:
        name = image_names.get(key) or "CONNECT_" + key.upper().replace(".", "_")
        assert env[name] == props[key], key
    assert props["config.providers.env.class"] == \
        "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
    assert props["config.providers.env.param.allowlist.pattern"] == "POSTGRES_PASSWORD"
    assert {props[k] for k in props if k.endswith("replication.factor")} == {"1"}
    # the capture's producer batches; the throughput collector on both
    assert int(props["producer.batch.size"]) >= 256 * 1024 and int(props["producer.linger.ms"]) > 0
    assert "-XX:+UseParallelGC" in env["KAFKA_JVM_PERFORMANCE_OPTS"].split()
    services = (ROOT / "infra/local/services.sh").read_text()
    assert re.search(r"spawn kafka-connect java [^\n]*-XX:\+UseParallelGC", services)


def test_compose_kafka_connect(compose_config, dotenv):
    service = compose_config["services"]["kafka-connect"]
    assert service["image"] == f"quay.io/debezium/connect:{dotenv['DEBEZIUM_VERSION']}"
    env = service["environment"]
    assert env["BOOTSTRAP_SERVERS"] == "kafka:19092"
    # the one secret the worker needs, and no other
    assert env["POSTGRES_PASSWORD"] == dotenv["POSTGRES_PASSWORD"]
    assert not [k for k in env if re.search("PASSWORD|TOKEN|SECRET", k) and k != "POSTGRES_PASSWORD"]
    heap = re.search(r"-Xmx(\d+)m", env["HEAP_OPTS"])
    assert heap and int(heap.group(1)) <= 512
    assert "curl" in service["healthcheck"]["test"] and \
        "http://localhost:8083/connectors" in service["healthcheck"]["test"]


def test_compose_cdc_register(compose_config, dotenv):
    service = compose_config["services"]["cdc-register"]
    assert service["image"] == compose_config["services"]["kafka-connect"]["image"]
    binds = {v["target"]: v["source"] for v in service["volumes"] if v["type"] == "bind"}
    assert binds["/opt/platform/kafka-connect"] == str(CDC)
    assert service["entrypoint"] == ["bash", "/opt/platform/kafka-connect/register.sh"]
    env = service["environment"]
    assert env["KAFKA_CONNECT_URL"] == "http://kafka-connect:8083"
    assert env["CDC_CONNECTOR"] == dotenv["CDC_CONNECTOR"]
    assert env["POSTGRES_HOST"] == "postgres" and env["POSTGRES_USER"] == dotenv["POSTGRES_USER"]
    assert not [k for k in env if re.search("PASSWORD|TOKEN|SECRET", k)]


def test_postgres_logical_wal(compose_config):
    command = compose_config["services"]["postgres"]["command"]
    assert "wal_level=logical" in command
    services = (ROOT / "infra/local/services.sh").read_text()
    assert "-c wal_level=logical" in services
    # the data vault's lag needs few checkpoints and compressed page images, on both
    for setting in ("wal_compression=lz4", "max_wal_size=4GB", "checkpoint_timeout=15min"):
        assert setting in command and f"-c {setting}" in services, setting
    init = (ROOT / "infra/db/postgres/init.sh").read_text()
    assert "replication.sql" in init
    assert "REPLICATION" in (ROOT / "infra/db/postgres/replication.sql").read_text()


def _connect_url() -> str | None:
    port = int(read_dotenv().get("KAFKA_CONNECT_PORT", "8083"))
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) != 0:
            return None
    return f"http://127.0.0.1:{port}"


def test_live_connector_runs_without_a_password_in_its_config(dotenv):
    """On the running local stack (`make up`): the worker holds the config with the
    reference only, and the connector and its task run."""
    url = _connect_url()
    if not url:
        pytest.skip("Kafka Connect is not running (make up)")
    name = dotenv["CDC_CONNECTOR"]
    with urllib.request.urlopen(f"{url}/connectors/{name}/config", timeout=10) as r:
        config = json.load(r)
    assert config["database.password"] == PASSWORD_REF
    assert dotenv["POSTGRES_PASSWORD"] not in json.dumps(config)
    with urllib.request.urlopen(f"{url}/connectors/{name}/status", timeout=10) as r:
        status = json.load(r)
    assert status["connector"]["state"] == "RUNNING"
    assert status["tasks"] and {t["state"] for t in status["tasks"]} == {"RUNNING"}
