# rootfree: every entry point of the project. `make help` lists them.
PYTHON ?= python3
# The torch build this project is developed and tested with; override for other machines.
TORCH ?= torch==2.14.1 torchvision==0.29.1
FASHION_MNIST ?= /usr/share/datasets/fashion-mnist

INSTALLED := .make/installed

.PHONY: help install data train smoke test test-all test-gpu bench bench-gpu tables

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: data $(INSTALLED)  ## install torch, rootfree and its dev dependencies, and the default dataset

$(INSTALLED): pyproject.toml
	$(PYTHON) -m pip install -q $(TORCH)
	$(PYTHON) -m pip install -q -e '.[dev]'
	@mkdir -p $(@D) && touch $@

train: install  ## train the default: a small CNN on Fashion-MNIST, CPU, about a minute
	$(PYTHON) train.py

smoke: install  ## a tiny end-to-end run on generated data (seconds)
	$(PYTHON) train.py experiment=smoke

data:  ## Fashion-MNIST from Debian's dataset-fashion-mnist package (needs root)
	@if [ -d $(FASHION_MNIST) ]; then echo "Fashion-MNIST present in $(FASHION_MNIST)"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; fi

test: install  ## the default test suite (excludes tests marked slow)
	$(PYTHON) -m pytest -q

test-all: install  ## every test, slow ones included
	$(PYTHON) -m pytest -q -m ''

test-gpu:  ## the tests that need CUDA (they skip without it)
	$(PYTHON) -m pytest -q -m '' -k cuda

bench:  ## step time, state memory and precision of every optimizer on CPU (results/bench)
	$(PYTHON) scripts/bench_optimizers.py
	$(PYTHON) scripts/bench_precision.py

bench-gpu:  ## the same on CUDA
	$(PYTHON) scripts/bench_optimizers.py --device cuda --steps 20 --warmup 5
	$(PYTHON) scripts/bench_precision.py --device cuda

RUNS ?= runs
tables:  ## comparison tables (Markdown, LaTeX, CSV) from the run directories in RUNS
	$(PYTHON) -m rootfree.results $(RUNS) --out results/tables
