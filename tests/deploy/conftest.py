"""Shared fixtures of the deployment checks (docker-compose.yml, Dockerfile, DAGs)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def read_dotenv(path: Path = ROOT / ".env") -> dict[str, str]:
    """The .env file as compose reads it: KEY=VALUE lines, optional quotes, # comments."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


JOBS = Path(os.environ.get("JOBS_BIN", ROOT / "target/release/jobs"))


def jobs_facts() -> dict:
    """The platform's tables, marts and allowed values as the Rust code defines them
    (`jobs list --json`): the one place they are written."""
    if not JOBS.exists():
        pytest.skip(f"{JOBS} is not built (make build): it holds the table and mart lists")
    out = subprocess.run([str(JOBS), "list", "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def facts() -> dict:
    return jobs_facts()


@pytest.fixture(scope="session")
def dotenv() -> dict[str, str]:
    return read_dotenv()


@pytest.fixture(scope="session")
def compose_cmd() -> list[str]:
    """A real Compose implementation (COMPOSE_BIN, else tests/deploy/install-compose.sh)."""
    configured = os.environ.get("COMPOSE_BIN")
    if not configured:
        configured = subprocess.run(
            [str(ROOT / "tests/deploy/install-compose.sh")],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    return shlex.split(configured)


def compose_variables() -> set[str]:
    """Every variable docker-compose.yml interpolates (${NAME...})."""
    return set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))


def run_compose_config(
    compose_cmd: list[str], env: dict[str, str] | None = None, env_file: Path | None = None,
) -> subprocess.CompletedProcess:
    """`compose config --format json` on docker-compose.yml. Only .env (or env_file) and
    the given env may feed the interpolation: this shell's variables of the same names
    are dropped."""
    names = read_dotenv().keys() | compose_variables()
    full_env = {k: v for k, v in os.environ.items() if k not in names}
    full_env.update(env or {})
    extra = ["--env-file", str(env_file)] if env_file else []
    return subprocess.run(
        [*compose_cmd, "--project-directory", str(ROOT), *extra,
         "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True, text=True, env=full_env, cwd=ROOT,
    )


def resolve_compose(compose_cmd: list[str], env: dict[str, str] | None = None) -> dict:
    proc = run_compose_config(compose_cmd, env)
    assert proc.returncode == 0, f"compose config failed:\n{proc.stderr}"
    assert "not set" not in proc.stderr, f"compose warnings:\n{proc.stderr}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def compose_config(compose_cmd: list[str]) -> dict:
    """docker-compose.yml as Compose resolves it (.env interpolated, anchors merged)."""
    return resolve_compose(compose_cmd)
