# phenomena -- `make help` lists the targets.
#   make figures                 create .venv if missing, run every notebook (quick preset), write figures/
#   make test                    unit tests + every notebook at the quick preset (what CI runs)
#   make study-icl_linear_regression PRESET=paper OVERRIDES='{steps: 1000}'

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON    ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
PRESET    ?= quick
SEED      ?= 0
DEVICE    ?= auto
OVERRIDES ?= {}
THREADS   ?=
STUDIES   := $(patsubst notebooks/%.ipynb,%,$(wildcard notebooks/*.ipynb))
# Tests write to a scratch output root so they never modify tracked files (figures/, data/results/).
TEST_OUT  := $(CURDIR)/build/test-out
NBVAL     := --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 -p no:randomly

export PYTHONHASHSEED := 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: help env figures readme test test-fast test-unit bench lint format clean clean-cache hooks

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_%-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: PRESET=smoke|quick|paper (default quick), SEED, DEVICE=auto|cpu|cuda, THREADS, OVERRIDES='{key: value}'"
	@echo "  studies: $(STUDIES)"

env: $(STAMP) ## create the virtual environment .venv from requirements.txt (+ editable lib/)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $@

figures: $(addprefix study-,$(STUDIES)) readme ## run every notebook at PRESET and regenerate figures/, data/results/, README table

study-%: $(STAMP) ## run one notebook with papermill, e.g. make study-icl_linear_regression PRESET=paper
	@mkdir -p build
	env -u PHENOMENA_PRESET -u PHENOMENA_OUT $(BIN)/papermill notebooks/$*.ipynb build/$*.ipynb \
	  --cwd notebooks -k python3 -p preset $(PRESET) -p seed $(SEED) -p device $(DEVICE) \
	  $(if $(THREADS),-p threads $(THREADS)) -y "overrides: $(OVERRIDES)" --progress-bar
	@echo "wrote figures/$*/ and data/results/$*.json (executed notebook: build/$*.ipynb)"

readme: $(STAMP) ## rewrite the README study table from data/results/*.json
	$(BIN)/python -m phenomena.readme README.md

test: $(STAMP) ## unit tests + every notebook at the quick preset (claims enforced); what CI runs
	@mkdir -p build && { git status --porcelain 2>/dev/null || true; } > build/.status-before
	PHENOMENA_OUT=$(TEST_OUT) $(BIN)/pytest tests
	PHENOMENA_OUT=$(TEST_OUT) PHENOMENA_PRESET=quick $(BIN)/pytest $(NBVAL) notebooks
	@{ git status --porcelain 2>/dev/null || true; } | diff -q build/.status-before - >/dev/null || \
	  { echo "tests modified tracked files:"; git status --porcelain; exit 1; }

test-fast: $(STAMP) ## unit tests + every notebook at the smoke preset (< 3 min)
	PHENOMENA_OUT=$(TEST_OUT) $(BIN)/pytest tests -m "not slow"
	PHENOMENA_OUT=$(TEST_OUT) PHENOMENA_PRESET=smoke $(BIN)/pytest $(NBVAL) notebooks

test-unit: $(STAMP) ## unit tests only
	PHENOMENA_OUT=$(TEST_OUT) $(BIN)/pytest tests

bench: $(STAMP) ## micro-benchmarks, then wall time + peak memory of every notebook at PRESET (cache off)
	$(BIN)/python scripts/bench.py --preset $(PRESET) $(BENCH_ARGS)

lint: $(STAMP) ## ruff check + format check (lib, tests, scripts, benchmarks, notebooks)
	$(BIN)/ruff check lib tests scripts benchmarks notebooks
	$(BIN)/ruff format --check lib tests scripts benchmarks

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix lib tests scripts benchmarks notebooks
	$(BIN)/ruff format lib tests scripts benchmarks

hooks: $(STAMP) ## install the pre-commit hooks (ruff, nbstripout)
	$(BIN)/pre-commit install

clean-cache: ## delete cached results (data/cache/)
	rm -rf data/cache

clean: ## delete build outputs and caches (keeps .venv and committed figures)
	rm -rf build data/cache .pytest_cache .ruff_cache .hypothesis
