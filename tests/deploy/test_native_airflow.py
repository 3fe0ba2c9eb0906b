"""The local Airflow (infra/airflow/native.sh, `make up-airflow`): the environment it
gives the Airflow processes, checked without starting anything (the script is sourced
and only its airflow_env function runs). The connections carry the secrets, in valid
JSON; no secret stays in any other variable; the Spark Connect token is the
spark_connect connection's password; the JWT secret and API secret key are not fixed;
and no secret is ever an argument of a process the script starts (traced with strace
where available)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, read_dotenv

NATIVE = ROOT / "infra/airflow/native.sh"
SECRETS = {
    "POSTGRES_PASSWORD": 'pg-"quoted\\-Pw1',
    "MYSQL_PASSWORD": "my-Native-Pw2",
    "MYSQL_ROOT_PASSWORD": "root-Native-Pw3",
    "POSTGRES_ADMIN_PASSWORD": "pgadm-Native-Pw4",
    "AIRFLOW_ADMIN_PASSWORD": "af-admin-Native-Pw5",
    "AIRFLOW_DB_PASSWORD": "af-db-Native-Pw6",
    "SPARK_CONNECT_TOKEN": "native-Token-7777",
}


def airflow_env(tmp_path: Path, extra: dict[str, str] | None = None,
                trace: bool = False) -> tuple[dict[str, str], str]:
    """Source native.sh, run airflow_env, return the environment it exports (and the
    execve trace, when asked)."""
    out = tmp_path / "env"
    # .env's other settings as the local stack reads them; the secrets from here
    env = {k: v for k, v in os.environ.items() if k not in read_dotenv()}
    env.update({"PLATFORM_STATE": str(tmp_path / "state"), **SECRETS, **(extra or {})})
    script = f'set -euo pipefail; source "{NATIVE}"; airflow_env; env -0 >"{out}"'
    argv = ["bash", "-c", script]
    trace_file = tmp_path / "trace"
    if trace:
        argv = ["strace", "-f", "-qq", "-s", "65535", "-e", "trace=execve", "-o",
                str(trace_file), *argv]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    exported = dict(
        item.split("=", 1) for item in out.read_text().split("\0") if "=" in item
    )
    return exported, trace_file.read_text() if trace else ""


def test_connections_carry_the_secrets_and_nothing_else_does(tmp_path):
    env, _ = airflow_env(tmp_path)
    pg = json.loads(env["AIRFLOW_CONN_PLATFORM_POSTGRES"])
    assert pg["password"] == SECRETS["POSTGRES_PASSWORD"]  # '"' and '\' survive
    assert json.loads(env["AIRFLOW_CONN_PLATFORM_MYSQL"])["password"] == SECRETS["MYSQL_PASSWORD"]
    spark = json.loads(env["AIRFLOW_CONN_SPARK_CONNECT_DEFAULT"])
    dotenv = read_dotenv()
    host, port = dotenv["SPARK_REMOTE"].split("://", 1)[1].rsplit(":", 1)
    assert spark == {"conn_type": "spark_connect", "host": host, "port": int(port),
                     "password": SECRETS["SPARK_CONNECT_TOKEN"]}
    for name, value in env.items():
        if name.startswith("AIRFLOW_CONN_"):
            continue
        for secret_name, secret in SECRETS.items():
            assert secret not in value, f"{secret_name}'s value is in {name}"
    assert not [n for n in env if n.endswith("_PASSWORD")]
    assert "SPARK_CONNECT_TOKEN" not in env and "SPARK_REMOTE" not in env


def test_token_from_a_token_parameter_of_spark_remote(tmp_path):
    env, _ = airflow_env(tmp_path, {"SPARK_CONNECT_TOKEN": "",
                                    "SPARK_REMOTE": "sc://sc.example:15099/;token=remote-Tok-1"})
    spark = json.loads(env["AIRFLOW_CONN_SPARK_CONNECT_DEFAULT"])
    assert (spark["host"], spark["port"], spark["password"]) == ("sc.example", 15099, "remote-Tok-1")


def test_no_token_no_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in read_dotenv()}
    env.update({"PLATFORM_STATE": str(tmp_path), **SECRETS, "SPARK_CONNECT_TOKEN": ""})
    proc = subprocess.run(["bash", "-c", f'source "{NATIVE}"; airflow_env'], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode != 0 and "SPARK_CONNECT_TOKEN" in proc.stderr


def test_airflow_secrets_are_generated_unless_set(tmp_path):
    env, _ = airflow_env(tmp_path)
    # empty here: with-secrets.sh generates them into the state directory
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "" and env["AIRFLOW__API__SECRET_KEY"] == ""
    assert env["PLATFORM_AIRFLOW_SECRETS_DIR"] == str(tmp_path / "state/airflow/secrets")
    env, _ = airflow_env(tmp_path, {"AIRFLOW_JWT_SECRET": "set-jwt-1", "AIRFLOW_SECRET_KEY": "set-key-2"})
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "set-jwt-1"
    assert env["AIRFLOW__API__SECRET_KEY"] == "set-key-2"
    assert "AIRFLOW_JWT_SECRET" not in env and "AIRFLOW_SECRET_KEY" not in env


def test_secrets_of_earlier_versions_are_kept(tmp_path):
    state = tmp_path / "state/airflow"
    state.mkdir(parents=True)
    (state / ".jwt_secret").write_text("old-jwt\n")
    airflow_env(tmp_path)
    assert (state / "secrets/jwt_secret").read_text() == "old-jwt\n"
    assert not (state / ".jwt_secret").exists()


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_no_secret_in_any_argv(tmp_path):
    _, trace = airflow_env(tmp_path, trace=True)
    if "execve(" not in trace:
        pytest.skip("strace cannot trace here (ptrace not permitted)")
    for name, secret in SECRETS.items():
        # (strace escapes '"' and '\' inside strings; the other values are plain)
        assert secret not in trace and json.dumps(secret)[1:-1] not in trace, name
