# Two commands for a fresh machine: `make demo` (the main job) and `make test`.
# Each creates or updates the virtual environment .venv itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.phasewatch-installed
# Data for tests and the demo: ../shared/corpora when it exists, else the user cache (verified download).
PHASEWATCH_DATA ?= $(shell [ -d ../shared/corpora ] && cd ../shared/corpora && pwd)
export PHASEWATCH_DATA

.PHONY: install test test-fast lint demo bench clean

install: $(STAMP)

# torch is installed first, pinned to the CPU wheel, so that no CUDA build is pulled in.
$(STAMP): pyproject.toml
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check phasewatch tests examples benchmarks
	$(VENV)/bin/ruff format --check phasewatch tests examples benchmarks

# OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning (same bits): the 2-process
# DDP tests and a shared 2-core machine lose time to spinning threads (benchmarks/bench_omp_wait.py).
test: lint
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q

test-fast: install
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q -m "not slow"

demo: install
	$(PY) examples/demo.py

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
