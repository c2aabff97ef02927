# Two commands on a fresh machine: `make run` (the whole pipeline) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install system-deps run test lint airflow-up airflow-down clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use (Chromium for browser tests, Redis and PostgreSQL for the
# Celery scale-out test); skipped when already present.
system-deps:
	bash scripts/system_deps.sh

# The whole pipeline (dvc.yaml) on the embedded synthetic default; reruns only what changed.
run: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro
	@$(VENV)/bin/saviorrec registry summary

test: install system-deps
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check src pipelines data_checks dags tests bench

airflow-up: install
	bash scripts/airflow_up.sh

airflow-down:
	bash scripts/airflow_down.sh

clean:
	rm -rf data artifacts metrics plots reports runs .cache
