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
	@echo "== dovecot-index-tool check: a healthy maildir user"
	$(BIN)/dovecot-index-tool check tests/fixtures/maildir/alice
	@echo "== check a copy of an mdbox user after damaging two files (seen counter, cache)"
	rm -rf demo && mkdir -p demo && cp -r tests/fixtures/mdbox/carol demo/carol
	$(BIN)/python scripts/damage-demo demo/carol
	-$(BIN)/dovecot-index-tool check demo/carol
	@echo "== what repair would do about it (--plan changes nothing)"
	-$(BIN)/dovecot-index-tool repair --plan demo/carol
	@echo "== dovecot-index-tool dump: a maildir INBOX with its log replayed (first lines)"
	$(BIN)/dovecot-index-tool dump tests/fixtures/maildir/alice/Maildir | head -30
	@echo "== dump --json of an mdbox mailbox index, one message"
	$(BIN)/dovecot-index-tool dump --json --uid 1 tests/fixtures/mdbox/carol/mdbox/mailboxes/INBOX/dbox-Mails | head -40
	@echo "== a transaction log, record by record (first lines)"
	$(BIN)/dovecot-index-tool dump tests/fixtures/sdbox/bob/sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index.log | head -20
	@echo "== the catalogue of checks (first lines; docs/checks.md has all)"
	$(BIN)/dovecot-index-tool rules | head -12

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
