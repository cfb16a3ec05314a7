# dovecot-index-tool: set up, test, demo.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed-stamp

.PHONY: install test lint demo fixtures fixtures24 bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/ruff check dovecot_index_tool tests scripts
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check dovecot_index_tool tests scripts

demo: install
	$(BIN)/python scripts/demo
	@echo "== dovecot-index-tool dump: a maildir INBOX with its log replayed (first lines)"
	$(BIN)/dovecot-index-tool dump tests/fixtures/maildir/alice/Maildir | head -30

fixtures:
	scripts/make-fixtures tests/fixtures.new
	mv tests/fixtures/dovecot24 tests/fixtures.new/dovecot24
	rm -rf tests/fixtures && mv tests/fixtures.new tests/fixtures

DC24 ?= /srv/dc24
fixtures24:
	scripts/setup-dovecot24 $(DC24)
	scripts/make-fixtures --chroot $(DC24) tests/fixtures/dovecot24.new
	rm -rf tests/fixtures/dovecot24 && mv tests/fixtures/dovecot24.new tests/fixtures/dovecot24

bench: install
	$(BIN)/python scripts/bench-parse

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
