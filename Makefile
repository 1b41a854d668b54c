# mlmd_exercise: `make run` for the demo job, `make test` for the test suite.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# ml-metadata, the reference backend, ships wheels only for CPython 3.9 to 3.11 (Linux x86-64):
# take the newest of those, else the newest Python 3.12 or later (the native backend runs there).
PYTHONS := python3.11 python3.10 python3.9 python3.13 python3.12 python3
PYTHON ?= $(shell for p in python3.11 python3.10 python3.9; do \
	$$p -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 11))' >/dev/null 2>&1 \
	&& { echo $$p; exit; }; done; for p in python3.13 python3.12 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info[:2] < (3, 9))' >/dev/null 2>&1 \
	&& { echo $$p; exit; }; done)

# The other kind of Python for the cross-reading tests (tests/test_native_crossread.py, the
# foreign stores on 3.12+): 3.13 or 3.12 beside one that has ml-metadata, or the reverse.
# `make test` makes a second virtualenv with it where this machine has one (OTHER_PYTHON= to skip),
# with the integrations' test libraries too (.ci/run runs the whole suite in it as well);
# pyenv's Pythons count even when they are not pyenv's global ones.
OTHER_VENV ?= .venv-other
# pytest-xdist's workers for make test: one per core (TEST_JOBS=0 runs the suite in one process).
TEST_JOBS ?= auto
OTHER_PYTHON ?= $(shell if $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] > (3, 11))' 2>/dev/null; \
	then v="3.13 3.12"; else v="3.11 3.10 3.9"; fi; \
	for p in $$(for n in $$v; do echo python$$n $(HOME)/.pyenv/versions/$$n*/bin/python$$n; done); do $$p -c 'import venv' >/dev/null 2>&1 && { echo $$p; exit; }; done)

.PHONY: help venv other-venv test-setup dot run lineage-graph test test-quick test-mlmd121 stress bench bench-quick clean

help:
	@echo "make run            create .venv, install, run the demo job (writes metadata.db, data/, models/)"
	@echo "make lineage-graph  draw the store's lineage to lineage.svg and lineage.png"
	@echo "make test           run the test suite (SQLite, and throwaway PostgreSQL and MariaDB servers)"
	@echo "make test-quick     the SQLite tests alone: no servers, no second virtualenv"
	@echo "make test-mlmd121   the ml-metadata backend's tests under ml-metadata 1.21, in a Debian 13 root (needs root)"
	@echo "make stress         8 writers x 200 runs at once, and 50 writers killed mid-run, on all three (servers: both backends)"
	@echo "make bench          speed against raw MLMD and the exercise's ORM (bench-quick: a minute)"
	@echo "make clean          remove what the demo job wrote"

venv: $(BIN)/.installed

$(BIN)/.installed: setup.cfg pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "no Python 3.9 or later on the PATH (looked for $(PYTHONS))" >&2; \
		exit 1; fi
	@$(PYTHON) -c 'import sys, venv; sys.exit(sys.version_info[:2] < (3, 9))' >/dev/null 2>&1 || { \
		echo "PYTHON=$(PYTHON) does not run here as a Python 3.9 or later with its venv module" >&2; \
		exit 1; }
	@echo "creating $(VENV) with $$($(PYTHON) --version) and installing mlmd_exercise with scikit-learn,"
	@echo "pandas, matplotlib, pytest and, on Python 3.9 to 3.11, Google's ml-metadata (else the package's"
	@echo "own backend opens stores): about 1 to 2 minutes the first time (pip is quiet meanwhile)"
	@start=$$(date +%s); \
	$(PYTHON) -m venv $(VENV) && \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]' && \
	echo "installed in $$(( $$(date +%s) - start )) s"
	@touch $@

# graphviz's `dot` draws the lineage graph: install Debian's package as root, else say how.
dot:
	@command -v dot >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian's graphviz for the dot program"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
		else \
			echo "graphviz's dot program is missing: install it with 'sudo apt-get install graphviz'" >&2; \
			exit 1; \
		fi; }

run: venv dot
	$(BIN)/mlmd-exercise run

lineage-graph: venv dot
	$(BIN)/mlmd-exercise graph --output lineage.svg
	$(BIN)/mlmd-exercise graph --output lineage.png

other-venv:
	@if [ -n "$(OTHER_PYTHON)" ]; then \
		echo "a second virtualenv, $(OTHER_VENV), with $(OTHER_PYTHON) for the cross-reading tests"; \
		$(MAKE) --no-print-directory venv $(OTHER_VENV)/bin/.test-extras VENV=$(OTHER_VENV) PYTHON=$(OTHER_PYTHON) \
			OTHER_PYTHON=; \
	else echo "no Python of the other kind here: the cross-reading tests will be skipped"; fi

# The suite runs on SQLite and on throwaway PostgreSQL and MariaDB (MySQL) servers that live
# only for it; the other virtualenv's Python is the other side of the cross-reading tests.
# The libraries the integrations' tests train with and import from (LightGBM, PyTorch Lightning on
# the CPU build of torch, a Jupyter kernel and nbclient, MLflow, openlineage-python): test-only extras, installed for
# `make test` alone, not for `make run`, resolved together with the package (a plain install of
# MLflow would take protobuf 7, which ml-metadata 1.17 cannot load). torch and Lightning only on
# Python 3.11 (see setup.cfg).
TEST_EXTRAS := test,test-lightgbm,test-lightning,test-notebook,test-mlflow,test-openlineage
$(BIN)/.test-extras: $(BIN)/.installed
	@echo "installing the integrations' test libraries into $(VENV) ($(TEST_EXTRAS))"
	@start=$$(date +%s); \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(TEST_EXTRAS)]' && \
	echo "installed in $$(( $$(date +%s) - start )) s"
	@touch $@

# The two virtualenvs are made side by side: pip keeps one core busy, and each takes about 1.5 minutes.
test-setup:
	@$(MAKE) --no-print-directory -j2 $(BIN)/.test-extras dot other-venv

test: test-setup
	MLMD_TEST_OTHER_PYTHON=$$([ -n "$(OTHER_PYTHON)" ] && [ -x $(OTHER_VENV)/bin/python ] && \
		echo "$(abspath $(OTHER_VENV))/bin/python") \
		scripts/with-servers $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadscope $(PYTEST_ARGS)

# The ml-metadata backend's own tests under ml-metadata 1.21 (what TFX 1.21 requires), in the
# Debian 13 root that scripts/mlmd121-root makes once and caches (it needs root, as CI has; the
# cross-reading tests with 1.21 are in make test: tests/test_mlmd121.py). Left out: the tests whose
# reference answers come from ml-metadata 1.17's filter_query and get_lineage_subgraph, which 1.21
# dropped (test_where, test_foreign_stores, test_archive).
MLMD121_TESTS := tests/test_mlmd_plain.py tests/test_store.py tests/test_tracking.py tests/test_lineage.py \
	tests/test_cli.py tests/test_cli_queries.py tests/test_odd_values.py tests/test_bundle.py \
	tests/test_metric_history.py tests/test_web_pages.py tests/test_postgres_tls.py
test-mlmd121:
	scripts/with-servers scripts/mlmd121-root python -m pytest -p no:cacheprovider -n $(TEST_JOBS) \
		--dist loadscope $(MLMD121_TESTS)

# The SQLite tests alone, in .venv: no database servers and no second virtualenv (their tests
# skip), whatever the environment asks of a full run.
QUICK_UNSET := MLMD_TEST_POSTGRES MLMD_TEST_MYSQL MLMD_TEST_OTHER_PYTHON \
	MLMD_REQUIRE_POSTGRES MLMD_REQUIRE_MYSQL MLMD_REQUIRE_CROSSREAD
test-quick: venv $(BIN)/.test-extras dot
	env $(addprefix -u ,$(QUICK_UNSET)) $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadscope $(PYTEST_ARGS)

# Full-size reliability checks: 8 writers x 200 runs, and 50 writers killed mid-run. On the
# servers, with each backend there is here (ml-metadata's where it is installed, and the native one).
STRESS_BACKENDS = $(shell $(BIN)/python -c 'from mlmd_exercise.store import choice; \
	print("mlmd native" if choice.choose().name == "mlmd" else "native")' 2>/dev/null || echo native)
stress: venv
	rm -rf .stress && mkdir .stress
	$(BIN)/python scripts/stress.py writers --store .stress/writers.db
	$(BIN)/python scripts/stress.py kill --store .stress/kill.db
	scripts/with-servers bash -c 'set -e; for base in "$$MLMD_TEST_POSTGRES" "$$MLMD_TEST_MYSQL"; do \
		[ -n "$$base" ] || continue; \
		for backend in $(STRESS_BACKENDS); do \
		echo "$${base%%://*}, $$backend backend:"; \
		MLMD_BACKEND=$$backend $(BIN)/python scripts/stress.py writers --store "$${base}writers_$$backend"; \
		MLMD_BACKEND=$$backend $(BIN)/python scripts/stress.py kill --store "$${base}killed_$$backend"; done; done'
	rm -rf .stress

$(BIN)/.bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	@touch $@

# Not part of make test: timings belong here, printed with their ratios. A throwaway PostgreSQL
# server (fsync off, as the tests') for the PostgreSQL rows; where none can be had they say so.
bench: $(BIN)/.bench
	scripts/with-servers $(BIN)/python bench/run.py

bench-quick: $(BIN)/.bench
	scripts/with-servers $(BIN)/python bench/run.py --quick

clean:
	rm -rf data models metrics metadata.db metadata.db-journal metadata.db-wal metadata.db-shm metadata.db.lock execution_states.png lineage.svg lineage.png
