# Two commands do all the set-up on a fresh machine:
#   make demo   create the environment if missing, then run the whole lifecycle on generated data
#   make test   create the environment if missing, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LOCK := requirements.lock

.PHONY: install interop-env demo test test-fast lint docs docs-examples clean browser lock

# The install resolves nothing anew: every package is the version the lock names (the set CI tested).
$(STAMP): pyproject.toml constraints.txt $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c $(LOCK) pip
	# torch first, pinned to the CPU build; the constraints keep the stack installable together.
	$(BIN)/python -m pip install --quiet -c constraints.txt -c $(LOCK) torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -c $(LOCK) -e ".[dev]"
	touch $(STAMP)

# Refresh the lock: resolve pyproject.toml under constraints.txt alone in a new environment, then pin what
# it installed. Run it to take upgrades on purpose, then `make test` and commit requirements.lock.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -c constraints.txt torch==2.13.0
	.lock-venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	.lock-venv/bin/python -m infra.lock > $(LOCK).new && mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv

install: $(STAMP)

# open_clip and timm for the parity tests, in their own environment: their torchvision does not import beside
# the CPU torch above (tests/interop/requirements.txt says why and what it holds).
INTEROP := .venv-interop
INTEROP_STAMP := $(INTEROP)/.installed
$(INTEROP_STAMP): tests/interop/requirements.txt
	test -x $(INTEROP)/bin/python || $(PYTHON) -m venv $(INTEROP)
	$(INTEROP)/bin/python -m pip install --quiet -r tests/interop/requirements.txt
	touch $(INTEROP_STAMP)

interop-env: $(INTEROP_STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/alignops demo

# Debian's Chromium renders the Prefect UI in the stack test (skipped, with the reason, where it cannot install).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null) || echo "chromium not installed"

# One xdist worker per core, each with its share of the threads (tests/conftest.py): much of the suite waits
# on servers and subprocesses that start single-threaded, so two workers at one thread each beat one at two
# (2 cores, 2026-12-07: 18 min against 27). A module stays on one worker, so its fixtures are built once;
# modules go out in collection order, the few long end-to-end ones first, rather than xdist's default of the
# modules with the most tests first, which left the long ones to run alone at the end.
# Serial, e.g. to debug: `make test PYTEST_ARGS="-p no:xdist"`.
PYTEST_ARGS ?= -n auto --dist loadscope --no-loadscope-reorder
test: $(STAMP) $(INTEROP_STAMP) browser
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -p no:cacheprovider --durations=25 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -m "not slow" $(PYTEST_ARGS)

# The documentation site, built strictly (a broken link or reference fails it) into site/.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The console examples the docs show, written from real runs (docs/examples/).
docs-examples: $(STAMP)
	$(BIN)/python -m infra.docs_examples

lint: $(STAMP)
	$(BIN)/ruff check core components registry serving flows infra benchmarks tests

clean:
	rm -rf $(VENV) .alignops .lock-venv site
