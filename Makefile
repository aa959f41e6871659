# Everything a fresh machine needs: `make demo` and `make test` build their own virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := .demo

.PHONY: demo test lint venv clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed-test

demo: $(VENV)/.installed
	@mkdir -p $(DEMO)
	@rm -f $(DEMO)/muninmail.db $(DEMO)/muninmail.db-wal $(DEMO)/muninmail.db-shm
	@sed -e 's|@STATE@|$(CURDIR)/$(DEMO)|' -e 's|@MAILDIR@|$(CURDIR)/muninmaild/demo/maildir|' \
		muninmaild/demo/muninmaild.toml > $(DEMO)/muninmaild.toml
	$(BIN)/muninmaild --config $(DEMO)/muninmaild.toml --once
	@$(BIN)/python -m muninmaild.demo.monitor $(DEMO)/muninmail.db

test: $(VENV)/.installed-test
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
