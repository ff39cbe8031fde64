# make demo  - install what is missing, start localcloud, run site.yml and chaos.yml, print the figures
# make test  - install what is missing, lint, run every test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system venv train-venv lint test demo down clean

setup: system venv

system:
	@scripts/install-system.sh
	@scripts/setup-podman.sh

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# The pinned training stack (ms-swift, CPU torch) for the training agent's tests, apart from .venv.
TRAIN_VENV := .cache/train-venv
TRAIN_REQUIREMENTS := roles/python_env/files/requirements-train.txt

train-venv: $(TRAIN_VENV)/.requirements.sha256

$(TRAIN_VENV)/.requirements.sha256: $(TRAIN_REQUIREMENTS)
	@test -x $(TRAIN_VENV)/bin/python || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install -q --disable-pip-version-check -r $(TRAIN_REQUIREMENTS)
	sha256sum $(TRAIN_REQUIREMENTS) | cut -d' ' -f1 > $@

lint: venv
	$(BIN)/ruff check .
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/ansible-lint

test: setup train-venv lint
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest -q -ra

demo: setup
	@scripts/demo.sh

down:
	-$(BIN)/localcloud down

clean:
	-$(BIN)/localcloud down --purge
	rm -rf .localcloud .cache/chaos-report.json
