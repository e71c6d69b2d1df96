# The two quick-start commands (see README): `make plan` and `make test`. Both set up what they need first.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup plan test lint

$(VENV)/.installed: requirements.txt requirements-dev.txt scripts/setup-system.sh
	bash scripts/setup-system.sh
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# gitlab-ci-local, which the tests use to run .gitlab-ci.yml, exactly as package-lock.json pins it.
node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

# Evaluate every stack offline (no cloud account, no Pulumi CLI): what it would create, the zone-loss audit, and an
# architecture picture per stack in out/diagrams/. Exit 1 when a stack does not survive the loss of a zone.
plan: setup
	$(PY) -m plan --diagram out/diagrams

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest
