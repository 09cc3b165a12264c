# Everything runs inside .venv, created on first use. torch and torchvision are pinned to the
# builds this machine carries on disk; a newer torchvision from PyPI does not load beside them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
TRAIN_ARGS ?=

.PHONY: setup data train test test-all fuzz lint format bench recipes-doc d2l-book docs screenshots clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -e '.[dev,d2l,sweep]' $(TORCH_PINS)
	touch $(STAMP)

data: setup
	$(BIN)/trainlab data fetch mnist

train: data
	$(BIN)/trainlab train $(TRAIN_ARGS)

# `make test` stays under 10 minutes on 2 cores; tests marked slow run in `make test-all`.
# The whole suite runs (no -x): one failure does not hide the others; -ra lists them at the end.
test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -q

# The property tests with 10,000 inputs per target (`make test` runs 200), and the 20-point
# SIGKILL test; the counts are printed at the end.
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -p no:randomly tests/fuzz tests/fault -k "fuzz or sigkill"

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: setup
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

bench: setup
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,sweep]' $(TORCH_PINS)
	$(BIN)/python benchmarks/bench.py

# The d2l book's chapters at the book's epochs on Fashion-MNIST, beside its recorded figures.
d2l-book: setup
	$(BIN)/python benchmarks/d2l_book.py $(D2L_ARGS)

# The site: the reference and benchmark pages are written from the parser, the registries and
# benchmarks/results/ first (scripts/docs_gen.py), then built with --strict (a broken link fails).
docs: setup
	$(BIN)/python -m pip install --quiet -e '.[docs]' $(TORCH_PINS)
	$(BIN)/python scripts/docs_gen.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# The report and serve screenshots in docs/, taken in Chromium (run by hand, then committed).
screenshots: setup
	$(BIN)/python scripts/screenshots.py

recipes-doc: data
	$(BIN)/python scripts/recipes_doc.py

clean:
	rm -rf runs build site .pytest_cache .ruff_cache
