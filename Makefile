# Two entry points for a new user: `make demo` and `make test`.
# Everything lives in .venv at the repository root; nothing is installed globally.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install install-test demo test bench clean

# axe-core (npm) for the page's accessibility test; skipped with a message where npm is absent
# (.ci/run installs Node.js and npm from Debian first).
AXE := tests/.axe/node_modules/axe-core/axe.min.js

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

$(AXE):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix tests/.axe axe-core@4; \
	else echo "npm not found: the page's accessibility test (axe-core) will be skipped"; fi

test: install-test $(AXE)
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/bench_rounds.py

clean:
	rm -rf $(VENV) activeprop-out .pytest_cache tests/.axe
