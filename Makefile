# Two commands: `make demo` (the main job on the offline default) and `make test`.
# Both set up .venv first. torch/torchvision are pinned in pyproject.toml and come from the
# machine's local wheel store through pip (no other installer, no unpinned torch).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WORKDIR ?= narbuild-data
PYTEST_ARGS ?=
CONSTRAINTS ?= -c constraints.txt  # pinned for Python 3.11 on x86_64; elsewhere: CONSTRAINTS=
CONSTRAINTS_HEADER := \# The versions narbuild's figures were made with (python 3.11, x86_64): make setup installs with -c constraints.txt; make constraints rewrites it.

.PHONY: setup demo test test-slow bench lint constraints clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) -e ".[dev,ray,serve,sources]"
	$(BIN)/python -m pip install --quiet --no-deps "litgpt==0.5.13"  # pyproject.toml: extra litgpt
	$(BIN)/python -m pip install --quiet --no-deps "python-doctr==1.1.0"  # pyproject.toml: extra doctr
	$(BIN)/python -m pip install --quiet --no-deps "torchtitan==0.3.0"  # pyproject.toml: extra torchtitan
	$(BIN)/python -m pip install --quiet --no-deps "pylocron==0.3.0"  # pyproject.toml: extra holocron
	$(BIN)/python -m pip install --quiet --no-deps "tsai==1.0.1" "fastai==2.8.12"  # pyproject.toml: extra tsai
	$(BIN)/python -m pip install --quiet --no-deps "nni==3.0"  # pyproject.toml: extra nni
	touch $(STAMP)

demo: setup
	$(BIN)/python -m narbuild.demo --workdir $(WORKDIR)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/bench_search.py ranking   # the rest need a traced catalog: bench/README.md

lint: setup
	$(BIN)/ruff check src tests bench

constraints: setup  # pin what is installed now (after an upgrade whose figures are re-measured)
	{ printf '%s\n' "$(CONSTRAINTS_HEADER)"; $(BIN)/python -m pip freeze --exclude-editable \
	  | grep -v '^narbuild' | sed -E 's|^([A-Za-z0-9_.-]+) @ .*/[A-Za-z0-9_.]+-([0-9][^-]*)-.*|\1==\2|'; \
	} > constraints.txt

clean:
	rm -rf $(VENV) $(WORKDIR) $(WORKDIR)-release .pytest_cache
