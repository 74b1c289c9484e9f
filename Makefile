# helix_ipc developer entry points. Every target installs what it needs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all venv test demo bench clean

all: test

venv: $(STAMP)

$(STAMP): requirements.txt requirements-bench.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-bench.txt
	touch $(STAMP)

# One suite, two interpreters: every host test runs under CPython and the unix port.
test: venv
	$(BIN)/pytest host_tests

demo: venv
	$(BIN)/python tools/demo.py

bench: venv
	$(BIN)/python tools/bench/run.py

clean:
	rm -rf $(VENV) build .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
