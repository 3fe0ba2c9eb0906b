# The platform's entry points. `make demo` runs it, `make test` checks everything.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
STACK := infra/local/stack.sh
CARGO ?= cargo
# One profile for everything (binaries, tests, demo) so dependencies compile once.
PROFILE := --release

.PHONY: help install build up down status demo test fmt-check clippy unit-tests integration-tests

help:
	@echo "make demo    run the platform on the local stack"
	@echo "make test    everything CI checks: fmt, clippy, unit and integration tests"
	@echo "make up | down | status    the local stack (infra/local)"

install:
	@$(STACK) install

build: install
	$(CARGO) build $(PROFILE) --locked --workspace --bins

up: build
	@$(STACK) up

down:
	@$(STACK) down

status:
	@$(STACK) status

demo: up
	@echo "The local stack is up; see 'make status' for every service and port."
# Data generators: the default data set (a no-op when it is there already), then a
# burst of registration events, 10% of them malformed for the stream's quarantine.
	$(CARGO) run $(PROFILE) --locked -q -p datagen -- pg
	$(CARGO) run $(PROFILE) --locked -q -p datagen -- kafka --count 100 --rate 20 --bad-ratio 0.1

fmt-check:
	$(CARGO) fmt --all --check

clippy: install
	$(CARGO) clippy $(PROFILE) --locked --workspace --all-targets -- -D warnings

unit-tests: build
	$(CARGO) test $(PROFILE) --locked --workspace --lib --bins

# Integration tests talk to the real services of the local stack.
integration-tests: up
	$(CARGO) test $(PROFILE) --locked --workspace --test '*' -- --test-threads=1

test: fmt-check clippy unit-tests integration-tests

# The docker deployment and the DAGs, checked without a Docker engine: compose file
# validated by Docker Compose v2, DAG tests under Airflow 3, and each DAG run end to
# end on the local stack (needs `make up`; skipped while `jobs replicate` is missing).
.PHONY: deploy-check
deploy-check:
	tests/deploy/run.sh
