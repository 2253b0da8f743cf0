# mmcl-live — `make demo` runs the main job, `make test` passes the tests; both set everything up first.
VENV ?= .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/demo

.PHONY: setup demo test test-fast lint clean

setup:
	@./scripts/setup.sh

demo: setup
	$(BIN)/mmcl make-planted --out $(RUN_DIR)/planted.pkl
	$(BIN)/mmcl train --data $(RUN_DIR)/planted.pkl --out $(RUN_DIR)/model --epochs 10 model.d_model=64 model.head_hidden=64
	$(BIN)/mmcl eval --checkpoint $(RUN_DIR)/model/best.pt --data $(RUN_DIR)/planted.pkl

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf runs .pytest_cache .ruff_cache
