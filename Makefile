# xpbank — every target installs what it needs; `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
# The venv's interpreter: Debian's CPython 3.11 where the machine has it with venv (built
# with PGO and LTO, as the python:3.11 image of the Dockerfile is), else python3 on the
# PATH; `make PYTHON=...` picks another. An existing .venv keeps the one it was made with
# (docs/benchmarks.md, "The interpreter: the build the image ships").
PYTHON ?= $(shell /usr/bin/python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1 && echo /usr/bin/python3.11 || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
XPBANK := $(VENV)/bin/xpbank
PYTEST_ARGS ?=

.PHONY: help setup mutate prism kafka-up kafka-down kafka-up-secure kafka-down-secure kafka-up-cluster kafka-down-cluster redis-up redis-down redis-up-secure redis-down-secure redis-up-cluster redis-down-cluster services schemas test test-slow check-guarantees test-unit test-integration test-e2e run bench clean

help:
	@echo "make run    - Kafka and Redis, a worker, the gateway, a live demo classroom, until Ctrl-C (SINKS=1: the sinks too)"
	@echo "make test   - all tests (unit, integration, e2e) against a real Kafka and Redis, but the slow tier"
	@echo "make test-slow - the slow tier: clusters and long fault tests (CI runs it after make test)"
	@echo "make check-guarantees - each guarantee turned off, a named test shown failing (CI runs it last)"
	@echo "make bench  - benchmarks against a local Kafka (BENCH_SCALE=0.05 for a quick run); writes bench/results/"
	@echo "make kafka-up-secure - a second broker with SASL_SSL (SCRAM) and ACLs on 127.0.0.1:9094"
	@echo "make redis-up-secure - a second Redis with a password and TLS on 127.0.0.1:6380"
	@echo "                       then: set -a; . .run/kafka/secure.env; . .run/redis/secure.env; set +a"
	@echo "                       (docs/operations.md, Secured clusters)"
	@echo "make kafka-up-cluster - three brokers on 127.0.0.1:9192-9194; make redis-up-cluster - a Redis Cluster on 7101-7106"
	@echo "                       then: set -a; . .run/kafka-cluster/cluster.env; . .run/redis-cluster/cluster.env; set +a"
	@echo "make prism  - Stoplight Prism (npm ci, pinned) for the write-back tests: deploy/prism/"
	@echo "make mutate - mutation testing of the decisions (core/, processing/); results in docs/mutation.md"
	@echo "other: setup kafka-up kafka-down kafka-down-secure kafka-down-cluster redis-up redis-down redis-down-secure"
	@echo "       redis-down-cluster schemas"
	@echo "       test-unit test-integration test-e2e bench clean"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

kafka-up:
	@bash deploy/kafka/kafka.sh up

kafka-down:
	@bash deploy/kafka/kafka.sh down

# The secured broker (SASL_SSL, SCRAM-SHA-512, ACLs) beside the plain one; see deploy/kafka/secure.sh.
kafka-up-secure:
	@bash deploy/kafka/kafka.sh up --secure

kafka-down-secure:
	@bash deploy/kafka/kafka.sh down --secure

# Three KRaft brokers (replication factor 3, min.insync.replicas 2); see deploy/kafka/cluster.sh.
kafka-up-cluster:
	@bash deploy/kafka/cluster.sh up

kafka-down-cluster:
	@bash deploy/kafka/cluster.sh down

redis-up:
	@bash deploy/redis/redis.sh up

redis-down:
	@bash deploy/redis/redis.sh down

# The secured Redis (password, TLS) beside the plain one; see deploy/redis/secure.sh.
redis-up-secure:
	@bash deploy/redis/redis.sh up --secure

redis-down-secure:
	@bash deploy/redis/redis.sh down --secure

# Three Redis masters with a replica each, one Redis Cluster; see deploy/redis/cluster.sh.
redis-up-cluster:
	@bash deploy/redis/cluster.sh up

redis-down-cluster:
	@bash deploy/redis/cluster.sh down

services: kafka-up redis-up

# The contract servers of the write-back tests (the e2e fixtures run this too).
prism:
	@bash deploy/prism/prism.sh ensure >/dev/null

schemas: setup
	$(PY) -m xpbank.contract.schemas schemas

# The test fixtures start Kafka and Redis themselves (or use XPBANK_BROKER / XPBANK_REDIS_URL).
test: setup
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

# Clusters and long fault tests: CI runs them after `make test` (.ci/run).
test-slow: setup
	$(PY) -m pytest tests -m slow $(PYTEST_ARGS)

# Each guarantee turned off in the source, and a named test shown failing for it
# (tests/guarantees_check.py; docs/testing.md). CI runs it after the slow tier.
check-guarantees: setup
	$(PY) -m tests.guarantees_check

test-unit: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: setup
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: setup
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# Benchmarks (not part of `make test`): ingest, latency, recovery, state; ~15 min at BENCH_SCALE=1.
# Like the test fixtures, uses XPBANK_BROKER or a broker already on 127.0.0.1:9092, else starts one.
bench: setup
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,bench]'
	@bash bench/wrk.sh
	@bash deploy/redis/redis.sh install
	$(PY) -m bench

# Mutation testing of core/ and processing/ (docs/mutation.md); not in `make test` nor CI.
# Hypothesis properties run at a fifth of their examples, derandomized (tests/budget.py).
mutate: setup
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,mutation]'
	XPBANK_HYPOTHESIS_SCALE=0.2 $(VENV)/bin/mutmut run --max-children $${MUTATE_JOBS:-2}
	$(VENV)/bin/mutmut results

# Up until Ctrl-C, which stops what it started (deploy/run.sh); DEMO_ARGS go to `xpbank demo`.
# SINKS=1 also starts both write-back sinks (docs/write-back.md); by default neither runs.
DEMO_ARGS ?=
run: setup
	@SINKS=$(SINKS) bash deploy/run.sh $(DEMO_ARGS)

clean:
	rm -rf .run/worker* data .pytest_cache .hypothesis mutants
