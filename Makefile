# Two entry points for a new user: `make demo` and `make test`.
# Everything lives in .venv at the repository root; nothing is installed globally.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install install-test demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the project's metadata changes (the package itself is editable).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/activeprop simulate --out activeprop-out

test: install-test
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/bench_rounds.py

clean:
	rm -rf $(VENV) activeprop-out .pytest_cache
