# Everything runs inside .venv, created on first use. torch and torchvision are pinned to the
# builds this machine carries on disk; a newer torchvision from PyPI does not load beside them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
TRAIN_ARGS ?=

.PHONY: setup data train test lint format bench recipes-doc clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(TORCH_PINS)
	touch $(STAMP)

data: setup
	$(BIN)/trainlab data fetch mnist

train: data
	$(BIN)/trainlab train $(TRAIN_ARGS)

test: setup
	$(BIN)/python -m pytest -x -q

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: setup
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

bench: setup
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]' $(TORCH_PINS)
	$(BIN)/python benchmarks/bench.py

recipes-doc: data
	$(BIN)/python scripts/recipes_doc.py

clean:
	rm -rf runs build .pytest_cache .ruff_cache
