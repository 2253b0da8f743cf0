# mmcl-live — `make demo` runs the main job, `make test` passes the tests; both set everything up first.
VENV ?= .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/demo

.PHONY: setup demo test test-fast lint clean

setup:
	@./scripts/setup.sh

# The live monitor for a minute: camera + microphone when both exist, else the generated demo session
# (the dashboard says which); then the latency summary. Ctrl-C stops earlier. Override: make demo DEMO_ARGS=...
DEMO_ARGS ?= --auto --duration 60
demo: setup
	$(BIN)/mmcl monitor $(DEMO_ARGS)

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf runs .pytest_cache .ruff_cache
