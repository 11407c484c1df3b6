# phenomena -- `make help` lists the targets.
#   make figures                 create .venv if missing, run every notebook (quick preset), write figures/
#   make test                    unit tests, controls, freshness, every notebook at smoke (what CI runs; < 10 min)
#   make verify                  every notebook at the quick preset under nbval
#   make sweep STUDY=all TIER=full JOBS=2              every claim row over each study's registered seeds -> data/sweeps/
#   make study-icl_linear_regression PRESET=paper OVERRIDES='{steps: 1000}'

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON    ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
PRESET    ?= quick
TIER      ?= full
SEED      ?= 0
DEVICE    ?= auto
OVERRIDES ?= {}
THREADS   ?=
STUDY     ?= all
SEEDS     ?=
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
EXECUTOR  ?= local
SWEEP_ARGS ?=
STUDIES   := $(patsubst notebooks/%.ipynb,%,$(wildcard notebooks/*.ipynb))
# Tests write to a scratch output root so they never modify tracked files (figures/, data/).
TEST_OUT  := $(CURDIR)/build/test-out
# the cache of every notebook make test runs at smoke (nbval's, the report's, JupyterLab's kernels'): each study's
# smoke results are computed once per run and read by the others (tests/conftest.py: SMOKE_CACHE); emptied first
SMOKE_CACHE := $(TEST_OUT)/smoke-cache
NBVAL     := --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 -p no:randomly
# pytest-xdist: JOBS workers, each notebook's cells (each test file) on one worker
XDIST     := -n $(JOBS) --dist loadfile --no-loadscope-reorder
# every parallel notebook and test single-threaded (torch and BLAS), without worker processes, headless
ONE_THREAD := PHENOMENA_THREADS=1 PHENOMENA_WORKERS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PHENOMENA_HEADLESS=1

export PYTHONHASHSEED := 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help env figures readme rejudge controls sweep report browser test verify test-fast test-unit bench lint format clean \
	clean-cache hooks new-study

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_%-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: PRESET=smoke|quick|full|gpu|paper (default quick: each headline in minutes), TIER (make sweep; default full: every row),"
	@echo "             SEED, DEVICE=auto|cpu|cuda, THREADS, OVERRIDES='{key: value}'"
	@echo "             STUDY=<name>|all, SEEDS (default: each study's registered population), JOBS (default: cores), EXECUTOR=local|submitit, SWEEP_ARGS"
	@echo "  studies: $(STUDIES)"

env: $(STAMP) ## create the virtual environment .venv from requirements.txt (+ editable lib/)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $@

figures: $(STAMP) ## run every notebook at PRESET, seed 0, JOBS at a time (longest first): figures/, data/results/, README
	env -u PHENOMENA_PRESET -u PHENOMENA_OUT $(BIN)/python -m phenomena figures --study $(STUDY) \
	  --preset $(PRESET) --device $(DEVICE) --jobs $(JOBS)
	$(MAKE) readme

study-%: $(STAMP) ## run one notebook with papermill, e.g. make study-icl_linear_regression PRESET=paper
	@mkdir -p build
	env -u PHENOMENA_PRESET -u PHENOMENA_OUT PHENOMENA_HEADLESS=1 $(BIN)/papermill notebooks/$*.ipynb \
	  build/$*.ipynb --cwd notebooks -k python3 -p preset $(PRESET) -p seed $(SEED) -p device $(DEVICE) \
	  $(if $(THREADS),-p threads $(THREADS)) -y "overrides: $(OVERRIDES)" --progress-bar
	@echo "wrote figures/$*/ and data/results/$*.json (executed notebook: build/$*.ipynb)"

sweep: $(STAMP) ## run STUDY over SEEDS at TIER (default full: every row; EXECUTOR=local|submitit, DEVICE, SWEEP_ARGS)
	env -u PHENOMENA_PRESET -u PHENOMENA_OUT $(BIN)/python -m phenomena sweep --study $(STUDY) $(if $(SEEDS),--seeds $(SEEDS)) \
	  --preset $(TIER) --device $(DEVICE) --executor $(EXECUTOR) --jobs $(JOBS) $(SWEEP_ARGS)
	$(MAKE) readme

readme: $(STAMP) ## rewrite the README's study table, "what did not reproduce", gallery and CLAIMS.md from the committed outputs
	env -u PHENOMENA_OUT $(BIN)/python -m phenomena.readme README.md

rejudge: $(STAMP) ## only the claims changed: rewrite stored results from their own metrics (then make readme)
	env -u PHENOMENA_OUT $(BIN)/python -m phenomena.rejudge --study $(STUDY)
	$(MAKE) readme

controls: $(STAMP) ## every claim row under its null and oracle controls -> data/controls/ (then make readme)
	env -u PHENOMENA_OUT PHENOMENA_THREADS=1 $(BIN)/python -m phenomena.controls --study $(STUDY)
	$(MAKE) readme

report: $(STAMP) ## build the offline report site build/site/ (after make figures / make sweep); refresh its screenshot
	env -u PHENOMENA_OUT $(BIN)/python -m phenomena.report --root $(CURDIR) --out build/site \
	  --screenshot figures/report_dashboard.png

browser: ## install Debian's chromium if missing (the browser test and the report's screenshot drive it)
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends chromium fonts-liberation; }

test: $(STAMP) ## what CI runs: unit tests, null/oracle controls, freshness of committed outputs, notebooks at smoke
	@mkdir -p build && { git status --porcelain 2>/dev/null || true; } > build/.status-before
	rm -rf $(SMOKE_CACHE)
	PHENOMENA_OUT=$(TEST_OUT) PHENOMENA_CACHE=$(SMOKE_CACHE) PHENOMENA_PRESET=smoke $(ONE_THREAD) $(BIN)/pytest \
	  $(XDIST) $(NBVAL) --durations=30 \
	  tests notebooks
	@{ git status --porcelain 2>/dev/null || true; } | diff -q build/.status-before - >/dev/null || \
	  { echo "tests modified tracked files:"; git status --porcelain; exit 1; }

verify: $(STAMP) ## every notebook at the quick preset under nbval (~35 min on 2 cores)
	PHENOMENA_OUT=$(CURDIR)/build/verify-out PHENOMENA_PRESET=quick $(ONE_THREAD) $(BIN)/pytest $(XDIST) $(NBVAL) \
	  notebooks

test-fast: $(STAMP) ## make test without the slow and browser tests (~2 min)
	rm -rf $(SMOKE_CACHE)
	PHENOMENA_OUT=$(TEST_OUT) PHENOMENA_CACHE=$(SMOKE_CACHE) PHENOMENA_PRESET=smoke $(ONE_THREAD) $(BIN)/pytest \
	  $(XDIST) $(NBVAL) -m "not slow and not browser" tests notebooks

test-unit: $(STAMP) ## unit tests only
	PHENOMENA_OUT=$(TEST_OUT) $(ONE_THREAD) $(BIN)/pytest $(XDIST) tests

bench: $(STAMP) ## each notebook alone at quick and full (and the old path beside full) against its targets; MISSED marks a miss (BENCH_ARGS)
	$(BIN)/python scripts/bench.py --device $(DEVICE) $(BENCH_ARGS)

new-study: $(STAMP) ## scaffold a new study package, notebook and test: make new-study NAME=my_phenomenon
	$(BIN)/python scripts/new_study.py $(NAME)

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

.PHONY: slurm-up slurm-down

slurm-up: ## start a one-node Slurm cluster on this machine (root, Debian 12; installs the packages where missing)
	scripts/slurm.sh up

slurm-down: ## stop the one-node Slurm cluster started by make slurm-up
	scripts/slurm.sh down
