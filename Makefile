# Two set-up commands: `make run` starts the main job, `make test` runs the tests.
# Each creates the virtual environment on first use (torch pinned to the CPU build on this machine's disk; the
# llama-cpp extra compiles llama.cpp from source, about 6 minutes on 2 cores, once).

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.shieldkit-installed

.PHONY: install run test bench browser servers policies

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,llama-cpp]"
	touch $(STAMP)

install: $(STAMP)

# The guardrail proxy on the embedded Gemma with the default policy: http://127.0.0.1:8000/v1
run: install
	$(BIN)/shieldkit serve

# Debian's Chromium for the UI's browser test (installed once; skipped when already on PATH).
browser:
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Debian's Redis and PostgreSQL for the scale-out tests (their fixtures start them on loopback; installed once).
servers:
	(command -v redis-server && ls /usr/lib/postgresql/*/bin/initdb) >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql)

test: install browser servers
	HF_HUB_OFFLINE=1 $(BIN)/pytest

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python bench/runtime.py

# Retrain the safety model and the default policy heads from ../shared/data/training + the team examples (~75 min on 2 cores).
policies: install
	HF_HUB_OFFLINE=1 flock /tmp/shieldkit-cpu.lock $(BIN)/shieldkit train-defaults
