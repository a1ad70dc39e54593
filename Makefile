# The README's two commands are `make demo` and `make test`. Both build .venv when it is
# missing or pyproject.toml changed, and do nothing extra when it is up to date.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.stamp-run
TEST_STAMP := $(VENV)/.stamp-test

.PHONY: demo test lint typecheck importlint pytest coverage bench soak openrpc clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@ $(RUN_STAMP)

demo: $(RUN_STAMP)
	$(BIN)/glosmsd --demo

test: $(TEST_STAMP) lint typecheck importlint pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check glosmsd tests bench ipc/examples
	$(BIN)/ruff format --check glosmsd tests bench ipc/examples

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

importlint: $(TEST_STAMP)
	$(BIN)/lint-imports

# pytest exits 5 when it ran no test: that is a failure, not green.
# Two workers (pytest-xdist), each running whole test files in file order (`loadfile`):
# the suite mostly waits on processes it started (servers, daemons, Chromium), so one
# process left a 2-core machine half idle (554 s of wall time for 400 s of CPU). Whole
# files keep each module's fixtures and its tests' order; every desktop piece (Xvfb,
# trayer, the D-Bus bus, dunst, Chromium) is started per test, module or worker, never
# shared between workers. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
pytest: $(TEST_STAMP)
	@$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest ran no tests: failing" >&2; exit 1; fi; exit $$rc

# The suite with line and branch coverage of glosmsd (slower: about 1.4x).
coverage: $(TEST_STAMP)
	$(MAKE) pytest PYTEST_ARGS="--cov=glosmsd --cov-branch --cov-report=term:skip-covered $(PYTEST_ARGS)"

# One report: every figure next to its floor, table printed, bench/results.json written
# (about 3 minutes; BENCH_ARGS=--quick for a smoke run, "--only ipc,cli" for a subset).
bench: $(TEST_STAMP)
	$(BIN)/python -m bench.report $(BENCH_ARGS)

# The issue 13 soaks, one after the other: the daemon's, then the server's (10 minutes
# each; SOAK_ARGS="--seconds 60" for a short run). Each exits 1 past its goals.
SOAK_ARGS ?= --minutes 10
soak: $(TEST_STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)
	$(BIN)/python -m bench.soak_server $(SOAK_ARGS)

openrpc: $(RUN_STAMP)
	$(BIN)/python -m glosmsd.daemon.api > ipc/openrpc.json

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage*
