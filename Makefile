# The two set-up commands of the README: `make demo` and `make test`.
# Both bootstrap the virtual environment from scratch with pip only.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install browser demo test test-fast lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

browser:
	@scripts/install-browser.sh

demo: install
	$(BIN)/hub demo

test: install browser
	$(BIN)/python -m pytest tests

test-fast: install
	$(BIN)/python -m pytest tests -m "not slow and not browser"

lint: install
	$(BIN)/ruff check hub adapters canonical routing identity_index admin_ui tests

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache
