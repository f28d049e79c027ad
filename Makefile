# fleetpatch: `make run` runs the embedded default, `make test` runs the whole suite.
# Both create .venv and install everything they need (Debian packages included) on first use.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test schemathesis chaos install system-deps vcsim bench clean

run: install vcsim
	$(VENV)/bin/fleetpatch up

test: install vcsim
	$(PY) -m pytest $(PYTEST_ARGS)

# The API against its OpenAPI document (every schemathesis phase and check, admin and customer
# tokens, ~4 min, seed printed; FLEETPATCH_SCHEMATHESIS_SEED=N replays a run). CI runs it after `make test`.
schemathesis: install vcsim
	$(PY) -m pytest -q -s $(PYTEST_ARGS) tests/integration/schemathesis_contract.py

# Fault tests, bounded: storms of registrations while processes die, Temporal restarts and AWS
# throttles; each prints its figures (FLEETPATCH_CHAOS_VMS=100 for the full-size storm).
chaos: install vcsim
	$(PY) -m pytest -m chaos -s tests/chaos $(PYTEST_ARGS)

install: system-deps $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

system-deps:
	scripts/install-system-deps.sh

vcsim: install
	@if [ -x scripts/build-vcsim.sh ]; then scripts/build-vcsim.sh; fi

bench: install vcsim
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
