# The two quick-start commands (see README): `make plan` and `make test`. Both set up what they need first.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup plan test lint

$(VENV)/.installed: requirements.txt requirements-dev.txt scripts/setup-system.sh
	bash scripts/setup-system.sh
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

# Evaluate every stack offline (no cloud account, no Pulumi CLI): what it would create, the zone-loss audit, and an
# architecture picture per stack in out/diagrams/. Exit 1 when a stack does not survive the loss of a zone.
plan: setup
	$(PY) -m infra.plan --diagram out/diagrams

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest
