# dovecot-index-tool: set up, test, demo.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed-stamp

.PHONY: install test lint demo fixtures bench clean

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
	@echo "== dovecot-index-tool dump: a maildir INBOX with its log replayed (first lines)"
	$(BIN)/dovecot-index-tool dump tests/fixtures/maildir/alice/Maildir | head -40
	@echo "== dump --json of an mdbox mailbox index, one record"
	$(BIN)/dovecot-index-tool dump --json --uid 1 tests/fixtures/mdbox/carol/mdbox/mailboxes/INBOX/dbox-Mails | head -60
	@echo "== a transaction log, record by record (first lines)"
	$(BIN)/dovecot-index-tool dump tests/fixtures/sdbox/bob/sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index.log | head -30

fixtures:
	scripts/make-fixtures tests/fixtures.new
	rm -rf tests/fixtures && mv tests/fixtures.new tests/fixtures

bench: install
	$(BIN)/python scripts/bench-parse

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
