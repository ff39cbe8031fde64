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

venv: $(STAMP) $(VENV)/.molecule-wrapper

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# .venv/bin/molecule without an activated venv: molecule and ansible-compat run ansible-config,
# ansible-playbook, ansible-galaxy and pytest by name from PATH, and podman's netavark runs
# iptables/nft from sbin. pip's entry point is replaced by a script that puts the venv's bin (and
# the sbin directories) on PATH; rewritten whenever pip has run again.
$(VENV)/.molecule-wrapper: $(STAMP) Makefile
	@printf '%s\n' '#!/bin/sh' \
	  '# Written by `make venv` (see the Makefile): the venv'"'"'s tools first on PATH, then molecule.' \
	  'bin=$$(CDPATH= cd -- "$$(dirname -- "$$0")" && pwd)' \
	  'PATH="$$bin:$$PATH:/usr/local/sbin:/usr/sbin:/sbin" exec "$$bin/python" -c '"'"'import sys' \
	  'from molecule.shell import main' \
	  'sys.argv[0] = "molecule"' \
	  'sys.exit(main())'"'"' "$$@"' \
	  > $(BIN)/molecule
	@chmod 755 $(BIN)/molecule
	@touch $@

# The pinned training stack (ms-swift, CPU torch) for the training agent's tests, apart from .venv.
TRAIN_VENV := .cache/train-venv
TRAIN_REQUIREMENTS := roles/python_env/files/requirements-train.txt

train-venv: $(TRAIN_VENV)/.requirements.sha256

$(TRAIN_VENV)/.requirements.sha256: $(TRAIN_REQUIREMENTS)
	@test -x $(TRAIN_VENV)/bin/python || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install -q --disable-pip-version-check -r $(TRAIN_REQUIREMENTS)
	sha256sum $(TRAIN_REQUIREMENTS) | cut -d' ' -f1 > $@

# antsibull-docs (Ansible's documentation linter) checks every plugin's and role's DOCUMENTATION,
# EXAMPLES and RETURN; it runs ansible-galaxy and ansible-doc by name, from the venv.
lint: venv
	$(BIN)/ruff check .
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/ansible-lint
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/antsibull-docs lint-collection-docs --plugin-docs \
	  --validate-collection-refs=dependent --disallow-unknown-collection-refs .

test: setup train-venv lint
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest -q -ra --durations=15

demo: setup
	@scripts/demo.sh

down:
	-$(BIN)/localcloud down

clean:
	-$(BIN)/localcloud down --purge
	rm -rf .localcloud .cache/chaos-report.json
