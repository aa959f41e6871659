# Everything a fresh machine needs: `make demo` and `make test` build their own virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := .demo

.PHONY: demo test check lint venv clean peers

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
	@sh muninmaild/demo/demo.sh $(BIN) $(DEMO)
	@$(BIN)/python -m muninmaild.demo.monitor $(DEMO)/muninmail.db

# The integration tests start a real Dovecot (TESTING.md): as root, install it when missing.
# They use ports of their own, never 143/993, so a system Dovecot the package starts is harmless.
# Dovecot's IMAP server is the dovecot-imapd package's: another imap-server package can take
# its place and leave dovecot-core (and its `dovecot` command) behind, so look for the binary.
# systemd-socket-activate comes with systemd. The metrics are checked with promtool (package
# prometheus) and read by a node_exporter of their own, on a free port, beside any the packages
# start on 9090 and 9100.
DOVECOT_IMAP := /usr/lib/dovecot/imap
peers:
	@{ [ -x $(DOVECOT_IMAP) ] && command -v systemd-socket-activate >/dev/null; } || \
		[ "$$(id -u)" != 0 ] || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd systemd >/dev/null; }
	@{ command -v promtool && command -v prometheus-node-exporter; } >/dev/null || \
		[ "$$(id -u)" != 0 ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq prometheus prometheus-node-exporter >/dev/null; }

# The whole suite, as CI runs it.
test: $(VENV)/.installed-test peers
	$(BIN)/pytest

# The fast loop: the unit tests only (no Dovecot, systemd, daemon process; tests/kinds.py).
# One pytest worker a core: the unit tests share nothing but the PostgreSQL server, where each
# worker has a database of its own.
check: $(VENV)/.installed-test
	$(BIN)/pytest -m "not integration" -n auto

# Style, types, and the architecture's import contracts (pyproject.toml, docs/architecture.md).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache

# Installing and packaging (packaging/README.md). Both build the application's own virtual
# environment with Debian's python3: `make install DESTDIR=/tmp/stage PREFIX=/usr/local`.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
SYSTEM_PYTHON ?= /usr/bin/python3
DIST ?= dist

.PHONY: install deb dist

install:
	DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' SYSCONFDIR='$(SYSCONFDIR)' \
		PYTHON='$(SYSTEM_PYTHON)' sh packaging/install.sh

deb:
	@sh packaging/need-lintian.sh
	deb=$$(OUT='$(DIST)' DEB_PYTHON='$(SYSTEM_PYTHON)' sh packaging/build-deb.sh) && \
		ls -l "$$deb" && \
		lintian --pedantic --display-info --fail-on error,warning "$$deb"

dist: $(VENV)/.installed-test
	rm -f $(DIST)/muninmail-*.tar.gz $(DIST)/muninmail-*.whl
	$(BIN)/python -m build --outdir $(DIST) .

# Benchmarks (bench/README.md): every scenario beside its anchor, results in bench/results.*.
# The anchors install themselves: isync (mbsync) through apt when root and missing, Celery with
# Redis support into a virtualenv of its own so the project's stays clean.
ANCHORS := bench/.venv-anchors

.PHONY: bench bench-smoke anchors

$(ANCHORS)/.installed:
	$(PYTHON) -m venv $(ANCHORS)
	$(ANCHORS)/bin/pip install --quiet 'celery[redis]>=5.3,<6'
	touch $@

anchors: $(ANCHORS)/.installed peers
	@command -v mbsync >/dev/null || [ "$$(id -u)" != 0 ] || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq isync >/dev/null; }

bench: $(VENV)/.installed anchors
	$(BIN)/python -m bench.run --size full

bench-smoke: $(VENV)/.installed anchors
	$(BIN)/python -m bench.run --size smoke --runs 1
