# The two quick-start commands (README): `make plan` and `make test`. Each sets up only what it needs first.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup tools plan rehearse test lint

# The virtualenv with the program's and the checks' Python packages (pip only: no npm, no Go).
$(VENV)/.installed: requirements.txt requirements-dev.txt packer/files/app-secrets-requirements.txt
	bash scripts/setup-system.sh plan
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The system tools the tests run (packer, shellcheck, systemd-analyze, rsync, Node.js), from Debian when missing.
.system-test-tools: scripts/setup-system.sh
	bash scripts/setup-system.sh test
	touch $@

# gitlab-ci-local, which the tests use to run .gitlab-ci.yml, exactly as package-lock.json pins it.
node_modules/.installed: package.json package-lock.json .system-test-tools
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed .system-test-tools node_modules/.installed

# The Pulumi CLI, its Python language host and the alicloud/random providers, built from Go modules at the pins into a
# cache outside git (toolchain/README.md): the first build takes about half an hour, later ones return at once.
tools:
	bash toolchain/build.sh

# Evaluate every stack offline (no cloud account, no Pulumi CLI): what it would create, the zone-loss audit, and an
# architecture picture per stack in out/diagrams/. Exit 1 when a stack does not survive the loss of a zone.
plan: $(VENV)/.installed
	$(PY) -m plan --diagram out/diagrams

# Rehearse the working tree on one stack against a local Alibaba Cloud with the real engine (docs/rehearsal.md): the first
# run creates the stack under out/rehearsal/<stack>, later runs preview and apply the working tree's changes to it.
STACK ?= dev
rehearse: $(VENV)/.installed
	$(PY) -m localcloud rehearse --stack $(STACK)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: setup tools lint
	cd toolchain/pyhost-adapter && go test ./...
	cd app && go test ./...
	$(PY) -m pytest
