"""Provision Superset from the repository, idempotently, on every start:

1. the admin login SUPERSET_ADMIN_USER / SUPERSET_ADMIN_PASSWORD (.env): created, or its
   password reset to .env's when it differs;
2. every asset under assets/ (Superset's export format: databases, datasets, charts,
   dashboards), imported with Superset's own asset import, which overwrites what it
   imported before: changing a dashboard means editing its YAML file.

The YAML files hold no secret and no deployment detail: `${NAME}` and `${NAME:-default}`
are replaced by the environment's non-secret settings (hosts, ports, databases, users,
schema). A database's password comes from the environment too, handed to the import
beside the files (its `${X_USER}` login takes `X_PASSWORD`), never written anywhere but
Superset's encrypted store. The warehouse (assets/databases/warehouse.yaml, the data
vault's database DWH_DB on the platform's PostgreSQL) is provisioned only when that
database exists.

Runs inside Superset's virtualenv / image: python provision.py [assets dir]."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

import psycopg2
import yaml

log = logging.getLogger("provision")
HERE = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN")
WAREHOUSE = "databases/warehouse.yaml"


class ProvisionError(Exception):
    pass


def render(text: str, env: dict[str, str], name: str) -> str:
    """The file's ${NAME} / ${NAME:-default} replaced from the environment (never a
    secret: those only travel beside the files)."""

    def value(m: re.Match[str]) -> str:
        key, default = m.group(1), m.group(2)
        if SECRET.search(key):
            raise ProvisionError(f"{name}: ${{{key}}} names a secret; secrets never go into asset files")
        if env.get(key):
            return env[key]
        if default is not None:
            return default
        raise ProvisionError(f"{name}: ${{{key}}} is not set (.env)")

    # (comment lines are left alone: they may describe the placeholders)
    return "".join(
        line if line.lstrip().startswith("#") else PLACEHOLDER.sub(value, line)
        for line in text.splitlines(keepends=True)
    )


def load_assets(root: Path, env: dict[str, str]) -> dict[str, str]:
    """{'databases/x.yaml': text, ...} as the import expects them (paths relative to root)."""
    contents = {}
    for path in sorted(root.rglob("*.yaml")):
        rel = path.relative_to(root).as_posix()
        contents[rel] = render(path.read_text(), env, rel)
    if "metadata.yaml" not in contents:
        raise ProvisionError(f"{root}/metadata.yaml is missing")
    return contents


def database_passwords(root: Path, env: dict[str, str]) -> dict[str, str]:
    """Each database file's password: the login `${X_USER}` of its URI takes X_PASSWORD."""
    passwords = {}
    for path in sorted((root / "databases").glob("*.yaml")):
        rel = path.relative_to(root).as_posix()
        raw = path.read_text()
        m = re.search(r"://\$\{(\w+)_USER\}", raw)
        if not m:
            raise ProvisionError(f"{rel}: its sqlalchemy_uri must log in as ${{<X>_USER}}")
        key = f"{m.group(1)}_PASSWORD"
        if not env.get(key):
            raise ProvisionError(f"{rel}: {key} is not set (.env)")
        passwords[rel] = env[key]
    return passwords


def without_database(contents: dict[str, str], database_file: str) -> dict[str, str]:
    """The assets minus one database and everything that depends on it."""
    db_uuid = yaml.safe_load(contents[database_file])["uuid"]
    datasets = {
        yaml.safe_load(text)["uuid"]
        for rel, text in contents.items()
        if rel.startswith("datasets/") and yaml.safe_load(text)["database_uuid"] == db_uuid
    }
    kept = {}
    for rel, text in contents.items():
        if rel == database_file:
            continue
        if rel.startswith("datasets/") and yaml.safe_load(text)["uuid"] in datasets:
            continue
        if rel.startswith("charts/") and yaml.safe_load(text)["dataset_uuid"] in datasets:
            continue
        kept[rel] = text
    return kept


def warehouse_exists(env: dict[str, str]) -> bool:
    name = env.get("DWH_DB") or "dwh"
    conn = psycopg2.connect(
        host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"], dbname=env["POSTGRES_DB"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"], connect_timeout=10,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def ensure_admin(security_manager, env: dict[str, str]):
    username = env.get("SUPERSET_ADMIN_USER") or "admin"
    password = env.get("SUPERSET_ADMIN_PASSWORD")
    if not password:
        raise ProvisionError("SUPERSET_ADMIN_PASSWORD is not set (.env)")
    role = security_manager.find_role("Admin")
    if role is None:
        raise ProvisionError("role Admin is missing: run `superset init` first")
    user = security_manager.find_user(username=username)
    if user is None:
        user = security_manager.add_user(
            username, "Platform", "Admin", f"{username}@localhost", role, password=password
        )
        if not user:
            raise ProvisionError(f"could not create the Superset user {username}")
        log.info("created the admin user %s", username)
    else:
        from werkzeug.security import check_password_hash

        if not check_password_hash(user.password, password):
            security_manager.reset_password(user.id, password)
            log.info("reset the password of %s to .env's", username)
        if role not in user.roles:
            user.roles.append(role)
            security_manager.update_user(user)
    return user


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [provision] %(message)s")
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "assets"
    env = dict(os.environ)
    contents = load_assets(root, env)
    passwords = database_passwords(root, env)
    if WAREHOUSE in contents and not warehouse_exists(env):
        log.info("no database %s on PostgreSQL (yet): the warehouse connection is skipped",
                 env.get("DWH_DB") or "dwh")
        contents = without_database(contents, WAREHOUSE)
        passwords.pop(WAREHOUSE, None)

    from flask import g
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand

        g.user = ensure_admin(security_manager, env)
        ImportAssetsCommand(contents, passwords=passwords).run()
        kinds = {}
        for rel in contents:
            kinds[rel.split("/")[0]] = kinds.get(rel.split("/")[0], 0) + 1
        kinds.pop("metadata.yaml", None)
        log.info("imported %s", ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ProvisionError as exc:
        print(f"provision: error: {exc}", file=sys.stderr)
        sys.exit(1)
