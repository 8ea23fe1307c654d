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

.PHONY: install demo test test-defaults test-hooks unit lint lint-types bench clean dist-check

# The benchmark's peers (benchmarks/requirements.txt) go into the project environment too, so the test suite
# exercises the harness's peer code paths; they are never dependencies of the core distribution.
$(STAMP): pyproject.toml $(ADAPTER_PROJECTS) benchmarks/requirements.txt
	# The Go reference verifier of audit checkpoints and proofs (tests/test_audit_go_interop.py) builds offline
	# from Debian's golang.org/x/mod sources.
	(command -v go >/dev/null && test -d /usr/share/gocode/src/golang.org/x/mod) || \
		(apt-get update && apt-get install -y golang-go golang-golang-x-mod-dev)
	# The console's browser tests drive Debian's chromium through Playwright (never `playwright install`).
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,serve,postgres]' $(foreach d,$(ADAPTER_DIRS),-e '$(d)[test]') \
		-r benchmarks/requirements.txt
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v apt-get >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) || \
		echo "warning: PostgreSQL binaries not installed; the PostgreSQL tests need a server" >&2
	command -v promtool >/dev/null || ! command -v apt-get >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) || \
		echo "warning: promtool not installed; tests/test_alert_rules.py needs it" >&2
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

# The suite runs twice: with the default plugins only (the governor calls its built-in steps directly), and
# with a no-op plugin on every pipeline hook (every step through pluggy), which must not change any result.
# The PostgreSQL tests need a server: scripts/with_postgres.py uses the one at CLAW_TEST_POSTGRES_URL, or starts a
# throwaway cluster from the installed PostgreSQL binaries (the install step installs them when missing).
test: test-defaults test-hooks

test-defaults: $(STAMP)
	$(BIN)/python scripts/with_postgres.py -- $(BIN)/python -m pytest -q -p no:cacheprovider tests integrations_tests

test-hooks: $(STAMP)
	CLAW_PLUGINS=claw_governance.testing:NoopPlugin $(BIN)/python scripts/with_postgres.py -- \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests integrations_tests

unit: $(STAMP)
	$(BIN)/python scripts/with_postgres.py -- $(BIN)/python -m pytest -q tests

# The folders linted; .pre-commit-config.yaml runs the same three checks on the same folders (see its `files:`),
# and tests/test_build_config.py keeps the two in step.
LINT_DIRS := claw_governance adapters tests integrations_tests examples benchmarks scripts

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(MAKE) --no-print-directory lint-types

# mypy --strict (pyproject's [tool.mypy] sets strict) on the core, then on every adapter; pre-commit calls this.
lint-types: $(STAMP)
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
