"""Dovecot 2.4 fixtures: our decoding equals 2.4's ``doveadm dump`` value for value, and
``check`` finds every store healthy.

The stores in ``tests/fixtures/dovecot24`` were made by Dovecot 2.4.1 in a Debian 13
chroot (``scripts/make-fixtures --chroot``); they are the same kinds as the 2.3 ones
(maildir Maildir++ and LAYOUT=fs, sdbox, mdbox, split INDEX=/CONTROL=, rotated logs,
caches, list index, mdbox map). These tests need no Dovecot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_dump_matches_doveadm import INDEX_PREFIXES, assert_decodes_like_doveadm, dump_pairs

from conftest import FIXTURES_24
from damage import copy_store
from dovecot_index_tool.check.severity import Severity

PAIRS = dump_pairs(FIXTURES_24)
STORES = [s["store"] for s in json.loads((FIXTURES_24 / "stores.json").read_text())]


@pytest.mark.parametrize(
    ("target", "text"), PAIRS, ids=[str(t.relative_to(FIXTURES_24)) for t, _ in PAIRS]
)
def test_24_file_decodes_like_24s_doveadm(target: Path, text: Path) -> None:
    assert_decodes_like_doveadm(target, text)


def test_24_fixtures_were_made_by_24_and_cover_every_kind_of_file() -> None:
    manifest = json.loads((FIXTURES_24 / "stores.json").read_text())
    assert {entry["dovecot"][:4] for entry in manifest} == {"2.4."}
    assert {entry["format"] for entry in manifest} == {"maildir", "sdbox", "mdbox"}
    names = {t.name for t, _ in PAIRS}
    for wanted in (*INDEX_PREFIXES, "dovecot.index.log", "dovecot.index.log.2"):
        assert wanted in names
    assert any(n.startswith("u.") for n in names) and any(n.startswith("m.") for n in names)
    assert list(FIXTURES_24.rglob("dovecot.index.cache"))


@pytest.mark.parametrize("store", STORES)
def test_24_store_is_healthy(store: str, tmp_path: Path) -> None:
    findings = copy_store(FIXTURES_24, store, tmp_path).findings()
    assert [f for f in findings if f.severity != Severity.INFO] == [], findings
