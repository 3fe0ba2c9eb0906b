"""Superset's configuration for both deployments (SUPERSET_CONFIG_PATH points here).

Everything comes from the environment (.env through compose or infra/superset/native.sh):
the secret key, and the metadata database (Superset's own PostgreSQL database on the
platform's server). Nothing secret is in this file."""

import os

import pymysql
from sqlalchemy.engine import URL

# Superset's MySQL engine spec imports MySQLdb (mysqlclient, a C extension) for its type
# codes whatever the driver; the connections use PyMySQL, which stands in for it.
pymysql.install_as_MySQLdb()


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise RuntimeError(f"{name} is not set (.env)")
    return value


SECRET_KEY = _required("SUPERSET_SECRET_KEY")

# Superset's metadata: its own database and role on the platform's PostgreSQL.
SQLALCHEMY_DATABASE_URI = URL.create(
    "postgresql+psycopg2",
    username=os.environ.get("SUPERSET_DB_USER", "superset"),
    password=_required("SUPERSET_DB_PASSWORD"),
    host=os.environ.get("SUPERSET_DB_HOST", "localhost"),
    port=int(os.environ.get("SUPERSET_DB_PORT", "5432")),
    database=os.environ.get("SUPERSET_DB", "superset"),
).render_as_string(hide_password=False)

# The dashboards show what the databases hold now: no result cache (a chart's numbers are
# checked against the tables by tests/bi/).
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}

# Errors say what failed, not a Python stack.
SHOW_STACKTRACE = False
# Read-only analytics: no file uploads into the platform's databases.
ALLOWED_EXTENSIONS: set[str] = set()
