# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint mutate clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/moltbot gateway $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Mutation testing of the security- and data-critical modules (slow; not part of `test`).
# MUTATE_ARGS: target names, --survivors, -j N, --report (see mutation/run.py).
mutate: $(STAMP)
	$(BIN)/python mutation/run.py $(MUTATE_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench mutation
	$(BIN)/ruff format --check src tests bench mutation

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
