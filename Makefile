# The platform's entry points. `make demo` runs it, `make test` checks everything.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
STACK := infra/local/stack.sh
CARGO ?= cargo
# One profile for everything (binaries, tests, demo) so dependencies compile once.
PROFILE := --release

# (up-airflow: see below)
.PHONY: help install build up up-airflow up-bi up-generator down status standby-rebuild demo test fmt-check clippy unit-tests integration-tests bi-check generator

help:
	@echo "make demo    run the platform on the local stack"
	@echo "make test    everything CI checks: fmt, clippy, unit and integration tests"
	@echo "make up | down | status    the local stack (infra/local)"
	@echo "make up-airflow            the local stack plus Airflow on :8080"
	@echo "make standby-rebuild       a new copy of the primary for the PostgreSQL standby (:5433)"
	@echo "make up-bi                 the local stack plus Superset's dashboards on :8088"
	@echo "make up-generator          the local stack plus the generator service on :8090"
	@echo "make compat                the jobs and integration tests on each supported Spark version"

install:
	@$(STACK) install

build: install
	$(CARGO) build $(PROFILE) --locked --workspace --bins

up: build
	@$(STACK) up

# The local stack plus Airflow (API server/UI on AIRFLOW_PORT, scheduler, DAG processor),
# which then runs the DAGs against the local stack as the docker deployment does.
up-airflow: up
	@infra/airflow/native.sh up

# The local stack plus Superset (SUPERSET_PORT): connections, datasets and dashboards
# provisioned from infra/superset/assets on every start.
up-bi: up
	@infra/superset/native.sh up
# The generator service (`datagen serve`: page and JSON API) on GENERATOR_PORT, detached.
up-generator: up
	@$(STACK) up-generator

down:
	@if [ -x infra/superset/native.sh ]; then infra/superset/native.sh down; fi
	@if [ -x infra/airflow/native.sh ]; then infra/airflow/native.sh down; fi
	@$(STACK) down

status:
	@$(STACK) status
	@infra/airflow/native.sh status 2>/dev/null | tail -n +2 || true
	@infra/superset/native.sh status 2>/dev/null | tail -n +2 || true

# A broken or promoted PostgreSQL hot standby: stopped, its data removed, cloned anew
# from the running primary (pg_basebackup) and started.
standby-rebuild:
	@$(STACK) standby rebuild

demo: up
# Data generators: the default data set (a no-op when it is there already), then a
# burst of registration events, 10% of them malformed for the stream's quarantine.
	target/release/datagen pg
	target/release/datagen kafka --count 100 --rate 20 --bad-ratio 0.1
# The platform's jobs, each done by the Spark cluster over Spark Connect.
	target/release/jobs replicate
	target/release/jobs marts
	target/release/jobs stream --available-now
# Change data capture: what Debezium captured so far (on a first run, its snapshot of
# the five tables), then a live workload on PostgreSQL (orders placed and delivered,
# prices changed, lines and customers removed) and its changes applied to MySQL.
	target/release/jobs cdc --available-now
	target/release/datagen changes --count 200
	target/release/jobs cdc --available-now
# The data vault warehouse (database DWH_DB): hubs, links and satellites with the full
# history, loaded from the same change topics.
	target/release/jobs dwh --available-now
	@echo
	@target/release/jobs summary
	@echo
	@echo "Spark master UI http://localhost:$${SPARK_MASTER_WEBUI_PORT:-8081}, application UI http://localhost:$${SPARK_UI_PORT:-4040}; 'make status' lists every service."

fmt-check:
	$(CARGO) fmt --all --check

clippy: install
	$(CARGO) clippy $(PROFILE) --locked --workspace --all-targets -- -D warnings

unit-tests: build
	$(CARGO) test $(PROFILE) --locked --workspace --lib --bins

# Integration tests talk to the real services of the local stack; the pipeline tests
# need the default data set, which `datagen pg` makes (a no-op when it is there).
integration-tests: up
	@$(STACK) install-browser
	target/release/datagen pg
	$(CARGO) test $(PROFILE) --locked --workspace --test '*' -- --test-threads=1
	cd infra/spark/sink && mvn -B -q -Dstyle.color=never test


# The dashboards in headless Chromium (tests/bi/run.sh starts Superset when needed and
# checks one chart per dashboard against SQL on its tables); needs the marts built, which
# the integration tests do.
bi-check: up
	tests/bi/run.sh
test: fmt-check clippy unit-tests integration-tests generator-fuzz deploy-check bi-check

# The generator service's API against its OpenAPI document (Schemathesis).
generator-fuzz: build
	tests/generator/fuzz.sh

# The Spark version matrix: the jobs and the integration tests on each supported Spark
# version (tests/compat.sh; not part of `make test`, which tests the .env version).
.PHONY: compat
compat: up
	tests/compat.sh

# The docker deployment and the DAGs, checked without a Docker engine: compose file
# validated by Docker Compose v2, DAG tests under Airflow 3, and each DAG run end to
# end on the local stack (needs `make up`; skipped while `jobs replicate` is missing).
.PHONY: deploy-check
deploy-check:
	tests/deploy/run.sh
