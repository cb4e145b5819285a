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

.PHONY: book test lab labs lint clean bench test-browser data host

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# The book reads offline: MathJax is served from _build/html/_static/mathjax (mathjax_path
# in _config.yml), not from a CDN. `npm pack` fetches the pinned package once into .venv/web/.
WEB := $(VENV)/web
MATHJAX_PACKAGE := mathjax@3.2.2

$(WEB)/.fetched: Makefile
	@command -v npm >/dev/null || { echo "make book needs npm (Node.js) to fetch MathJax" >&2; exit 1; }
	rm -rf $(WEB) && mkdir -p $(WEB)/mathjax
	cd $(WEB) && npm pack --silent $(MATHJAX_PACKAGE) >/dev/null
	tar -xzf $(WEB)/mathjax-*.tgz -C $(WEB)/mathjax --strip-components=1
	touch $@

# notebooks are executed on all cores into the book's jupyter-cache first; the build then
# only merges their outputs (it would otherwise execute them one after the other)
book: $(STAMP) $(WEB)/.fetched
	$(BIN)/python bench/execute_book.py
	$(BIN)/jupyter-book build . -W -n --keep-going
	rm -rf _build/html/_static/mathjax
	cp -r $(WEB)/mathjax/es5 _build/html/_static/mathjax

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m nnparam.labs --check
	$(BIN)/pytest -n $(WORKERS) --dist loadfile --nbval-lax --durations=0 -m "not browser" \
		tests book solutions labs

lab: $(STAMP)
	$(BIN)/jupyter lab labs/

labs: $(STAMP)
	$(BIN)/python -m nnparam.labs

lint: $(STAMP)
	$(BIN)/ruff check .

# Debian's Chromium driven by Playwright (no browser download); screenshots in test-artifacts/
test-browser: $(STAMP) book
	test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }
	$(BIN)/pytest -m browser -p no:xdist tests/test_browser.py

# long truth runs computed once into the ignored .cache/ (notebooks also fill it on demand)
data: $(STAMP)
	$(BIN)/python -m nnparam.cache

# the Fortran host model and its LibTorch shim (torch wheel) into host/build/; gfortran, g++
# and the JSON header come from Debian's packages when missing (host/install-deps.sh)
host: $(STAMP)
	sh host/install-deps.sh
	$(MAKE) -C host PYTHON=$(abspath $(BIN)/python)

# every notebook timed and the engine's hot paths: writes bench/report.md
bench: $(STAMP) host
	$(BIN)/python bench/run_bench.py --out bench/report.md

clean:
	rm -rf _build .jupyter_cache .pytest_cache host/build
