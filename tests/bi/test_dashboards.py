"""The dashboards, checked as a person would: headless Chromium (Debian's chromium and
chromium-driver, through WebDriver) logs in to Superset, opens each provisioned dashboard,
waits until every chart has rendered, saves a screenshot, and fails on any chart error or
failed chart-data request. For one chart per dashboard, the numbers the browser received
from the chart-data API must equal a SQL query the test runs itself on the chart's source
tables (PostgreSQL or MySQL, not through Superset).

Needs Superset running (tests/bi/run.sh starts it) on the local stack."""

from __future__ import annotations

import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

import psycopg2
import pymysql
import pytest
import requests
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/deploy"))
from conftest import read_dotenv  # noqa: E402  (one .env reader for the tests)

ASSETS = ROOT / "infra/superset/assets"
SHOTS = Path(os.environ.get("BI_SCREENSHOTS", ROOT / "target/bi-screenshots"))
RENDER_TIMEOUT = 120


def settings() -> dict[str, str]:
    env = read_dotenv()
    env.update({k: v for k, v in os.environ.items() if k in env})
    return env


ENV = settings()
BASE = f"http://localhost:{ENV.get('SUPERSET_PORT', '8088')}"


def dashboards() -> dict[str, dict]:
    """slug -> the dashboard's YAML (the repository's definition)."""
    out = {}
    for path in sorted((ASSETS / "dashboards").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        out[config["slug"]] = config
    return out


def chart_titles(config: dict) -> set[str]:
    return {v["meta"]["sliceName"] for v in config["position"].values()
            if isinstance(v, dict) and v.get("type") == "CHART"}


# --- the independent side: SQL on the source tables ----------------------------------

def mysql_rows(sql: str) -> list[tuple]:
    conn = pymysql.connect(host=ENV["MYSQL_HOST"], port=int(ENV["MYSQL_PORT"]), user=ENV["MYSQL_USER"],
                           password=ENV["MYSQL_PASSWORD"], database=ENV["MYSQL_DB"], connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def pg_rows(sql: str) -> list[tuple]:
    conn = psycopg2.connect(host=ENV["POSTGRES_HOST"], port=ENV["POSTGRES_PORT"], user=ENV["POSTGRES_USER"],
                            password=ENV["POSTGRES_PASSWORD"], dbname=ENV["POSTGRES_DB"],
                            options=f"-c search_path={ENV['POSTGRES_SCHEMA']}", connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def as_map(rows) -> dict[str, Decimal]:
    return {str(k): Decimal(str(v)).quantize(Decimal("0.01")) for k, v in rows}


def sales_by_status() -> dict:
    return as_map(mysql_rows("SELECT status, SUM(total_sales) FROM mart_product_sales GROUP BY status"))


def users_by_loyalty() -> dict:
    return as_map(pg_rows("SELECT loyalty_status, COUNT(*) FROM users GROUP BY loyalty_status"))


MYSQL_TABLES = ["users", "product_categories", "products", "orders", "order_details",
                "mart_user_activity", "mart_product_sales", "mart_average_check", "cdc_quarantine"]


def mysql_row_counts() -> dict:
    return as_map((t, mysql_rows(f"SELECT COUNT(*) FROM `{t}`")[0][0]) for t in MYSQL_TABLES)


# dashboard slug -> (chart title, the chart's category column, its value column, the SQL side)
CHECKS = {
    "sales": ("Product sales by order status", "status", "sales", sales_by_status),
    "users": ("Users by loyalty status", "loyalty_status", "count", users_by_loyalty),
    "data-quality": ("Rows per table: MySQL", "table_name", "row_count", mysql_row_counts),
}


def chart_map(body: dict, key: str, value: str) -> dict:
    data = body["result"][0]["data"]
    return as_map((row[key], row[value]) for row in data)


# --- the browser side ---------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1800"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")),
                              options=options)
    try:
        # The login page's unload handler posts an event log unauthenticated; when its
        # response lands after the login's, its session cookie replaces the logged-in one
        # (seen once in a clean-clone run). Then the form is simply submitted again.
        for _ in range(3):
            driver.get(f"{BASE}/login/")
            driver.find_element(By.ID, "username").send_keys(ENV.get("SUPERSET_ADMIN_USER", "admin"))
            driver.find_element(By.ID, "password").send_keys(ENV["SUPERSET_ADMIN_PASSWORD"])
            driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            deadline = time.time() + 30
            while "/login" in driver.current_url and time.time() < deadline:
                time.sleep(0.2)
            time.sleep(1)  # let a late cookie from the racing request arrive
            driver.get(f"{BASE}/superset/welcome/")
            if "/login" not in driver.current_url:
                break
        assert "/login" not in driver.current_url, "the login did not succeed in 3 attempts"
        yield driver
    finally:
        driver.quit()


def chart_data_responses(driver) -> list[dict]:
    """Every /api/v1/chart/data exchange since the last call: status, request body, body."""
    requests_seen, out = {}, []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        if msg["method"] == "Network.requestWillBeSent" and "/api/v1/chart/data" in params["request"]["url"]:
            requests_seen[params["requestId"]] = params["request"].get("postData")
        elif msg["method"] == "Network.responseReceived" and "/api/v1/chart/data" in params["response"]["url"]:
            out.append({"id": params["requestId"], "status": params["response"]["status"]})
    for resp in out:
        resp["request"] = requests_seen.get(resp["id"])
        body = driver.execute_cdp_cmd("Network.getResponseBody", {"requestId": resp["id"]})
        resp["body"] = json.loads(body["body"])
    return out


def render_state(driver) -> tuple[int, int, list[str]]:
    """(chart holders, holders done rendering, error texts) on the current dashboard."""
    holders = driver.find_elements(By.CSS_SELECTOR, "[data-test='dashboard-component-chart-holder']")
    done, errors = 0, []
    for holder in holders:
        failed = holder.find_elements(By.CSS_SELECTOR, "[role='alert'], .ant-alert-error, [data-test='error-tooltip']")
        if failed:
            errors.append(holder.text.replace("\n", " / ")[:300])
            done += 1
            continue
        loading = holder.find_elements(By.CSS_SELECTOR, "[data-test='loading-indicator'], .loading")
        drawn = holder.find_elements(By.CSS_SELECTOR, ".chart-container canvas, .chart-container svg, "
                                     ".chart-container table, .superset-legacy-chart-big-number, "
                                     "[data-test='big-number'], .chart-container .header-line")
        empty = "No results" in holder.text
        if not loading and (drawn or empty):
            done += 1
    return len(holders), done, errors


@pytest.mark.parametrize("slug", sorted(dashboards()))
def test_dashboard_renders_and_shows_the_tables_numbers(browser, slug):
    config = dashboards()[slug]
    titles = chart_titles(config)
    browser.get_log("performance")  # drop what earlier pages logged
    browser.get(f"{BASE}/superset/dashboard/{slug}/")
    deadline = time.time() + RENDER_TIMEOUT
    while True:
        total, done, errors = render_state(browser)
        if total == len(titles) and done == total:
            break
        assert time.time() < deadline, f"{slug}: {done} of {total} charts rendered within {RENDER_TIMEOUT}s"
        time.sleep(0.5)
    time.sleep(1)  # let the last animation settle for the screenshot
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / f"{slug}.png"))
    assert not errors, f"{slug}: chart errors: {errors}"
    assert config["dashboard_title"] in browser.title or config["dashboard_title"] in browser.page_source

    responses = chart_data_responses(browser)
    failed = [(r["status"], r["body"]) for r in responses if r["status"] != 200]
    assert not failed, f"{slug}: chart-data requests failed: {failed}"
    assert len(responses) >= len(titles), f"{slug}: {len(responses)} chart-data responses for {len(titles)} charts"

    # One chart's numbers against the source tables: the browser's response first; when
    # the tables changed meanwhile (other writers on the shared stack), the same request
    # again, between two SQL reads.
    title, key, value, sql_side = CHECKS[slug]
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    charts = requests.get(f"{BASE}/api/v1/dashboard/{slug}/charts", cookies=cookies, timeout=30).json()["result"]
    chart_id = next(c["id"] for c in charts if c["slice_name"] == title)
    mine = [r for r in responses if json.loads(r["request"] or "{}").get("form_data", {}).get("slice_id") == chart_id]
    assert mine, f"{slug}: no chart-data response for {title!r}"
    shown = chart_map(mine[0]["body"], key, value)
    for attempt in range(3):
        before = sql_side()
        if attempt:
            resp = requests.post(f"{BASE}/api/v1/chart/data", data=mine[0]["request"], cookies=cookies,
                                 headers={"Content-Type": "application/json"}, timeout=60)
            assert resp.status_code == 200, resp.text
            shown = chart_map(resp.json(), key, value)
        after = sql_side()
        if shown in (before, after):
            break
    assert shown in (before, after), f"{slug}: {title!r} shows {shown}, the tables hold {after}"
    assert shown, f"{slug}: {title!r} shows no data"
