# The two commands of the README, and the pieces of the check. Each target makes
# its own virtual environment in .venv from PyPI; nothing else is needed.
# The newest Python 3.11+ on PATH that runs (python3 may be older where several are installed).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types contracts unit constraints namespace clean

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "dropq needs Python 3.11 or newer on PATH (python3.11, python3.12, ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dropq demo

test: $(STAMP) lint types contracts
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy and import-linter read the package through build/namespace (see .ci/namespace_view.py).
namespace:
	$(PYTHON) .ci/namespace_view.py

types: $(STAMP) namespace
	$(BIN)/mypy

contracts: $(STAMP) namespace
	cd build/namespace && $(CURDIR)/$(BIN)/lint-imports $(CURDIR)/pyproject.toml

# Re-resolve the newest versions pyproject.toml allows, into constraints.txt (then run make test).
constraints:
	rm -rf build/resolve && $(PYTHON) -m venv build/resolve
	build/resolve/bin/python -m pip install --quiet '.[dev]'
	{ sed -n '1,2p' constraints.txt; build/resolve/bin/python -m pip freeze --exclude-editable | grep -v '^dropq'; } > constraints.new
	mv constraints.new constraints.txt

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

clean:
	rm -rf $(VENV) build *.egg-info
