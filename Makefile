# Two entry points (see README): `make demo` and `make test`. `make test` builds the project environment in
# .venv with the core and every distribution under adapters/ installed editable, so a new adapter is picked up
# without changing the commands; `make demo` needs only the core (it installs just that into a fresh .venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ADAPTER_PROJECTS := $(wildcard adapters/*/pyproject.toml)
ADAPTER_DIRS     := $(patsubst %/pyproject.toml,%,$(ADAPTER_PROJECTS))
STAMP  := $(VENV)/.installed
CORE_STAMP := $(VENV)/.core-installed

.PHONY: install demo test unit integration lint bench clean dist-check

# The benchmark's peers (benchmarks/requirements.txt) go into the project environment too, so the test suite
# exercises the harness's peer code paths; they are never dependencies of the core distribution.
$(STAMP): pyproject.toml $(ADAPTER_PROJECTS) benchmarks/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,serve]' $(foreach d,$(ADAPTER_DIRS),-e '$(d)[test]') \
		-r benchmarks/requirements.txt
	touch $(STAMP)

install: $(STAMP)

# The demo needs only the core: a fresh clone reaches it with one small install (no frameworks). Once
# `make install` / `make test` has built the full environment, the demo uses that one as it is.
$(CORE_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -f $(STAMP) || $(BIN)/python -m pip install -q --no-compile --disable-pip-version-check -e .
	touch $(CORE_STAMP)

demo: $(CORE_STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests integrations_tests

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check claw_governance adapters tests integrations_tests examples benchmarks
	$(BIN)/mypy
	$(BIN)/mypy --strict $(patsubst %/__init__.py,%,$(wildcard adapters/*/claw_governance_*/__init__.py))

# Build every distribution (python -m build), twine check --strict, license/version/README checks, and
# npm pack of the OpenClaw plugin (scripts/dist_check.py). tests/test_packaging.py runs it under `make test`.
dist-check: $(STAMP)
	$(BIN)/python scripts/dist_check.py $(VENV)/dist-check

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
