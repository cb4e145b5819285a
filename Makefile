# The two commands a newcomer runs: `make book` and `make test`. Each creates .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# one BLAS/torch thread per process: the test runner already uses both cores
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
WORKERS ?= 2

.PHONY: book test lab labs lint clean bench test-browser

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m nnparam.labs --check
	$(BIN)/pytest -n $(WORKERS) --dist loadfile --nbval-lax --durations=0 tests book solutions labs

lab: $(STAMP)
	$(BIN)/jupyter lab labs/

labs: $(STAMP)
	$(BIN)/python -m nnparam.labs

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf _build .jupyter_cache .pytest_cache
