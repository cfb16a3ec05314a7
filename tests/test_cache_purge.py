"""Cache purge on real Dovecot mailboxes: the damaged cache goes, nothing else does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURES
from damage import copy_store, truncate
from dovecot_index_tool.discovery import iter_mailboxes, locate
from dovecot_index_tool.repair import cache_purge
from dovecot_index_tool.repair.cache_purge import purge_cache
from dovecot_index_tool.repair.quarantine import MailboxChanged, load_backup
from live_writer import LiveWriter


def _inbox(root: Path):
    mail_root, _ = locate(root)
    return next(m for m in iter_mailboxes(mail_root) if m.name == "INBOX")


@pytest.fixture(params=["maildir", "sdbox", "mdbox"])
def damaged(request, tmp_path):
    """INBOX of a copy of a real store, its cache cut off after 16 bytes."""
    store = copy_store(FIXTURES, request.param, tmp_path / "store")
    cache = store.cache("INBOX")
    truncate(cache, 16)
    return _inbox(store.home), cache


def test_purge_removes_the_damaged_cache_and_verifies_clean(damaged, tmp_path):
    inbox, cache = damaged
    damaged_bytes = cache.read_bytes()
    assert any(i.startswith("cache.") for i in cache_purge._finding_ids(inbox))
    outcome = purge_cache(inbox, tmp_path / "backups", ("cache.header-truncated",))

    assert outcome.verified, outcome.reason
    assert not cache.exists()
    assert not [i for i in outcome.remaining if i.startswith("cache.")]
    backup = load_backup(outcome.backup)
    assert backup.finding_ids == ("cache.header-truncated",)
    stored = Path(backup.directory) / backup.files[0].stored
    assert stored.read_bytes() == damaged_bytes


def test_purge_of_a_mailbox_without_cache_changes_nothing(damaged, tmp_path):
    inbox, cache = damaged
    cache.unlink()
    outcome = purge_cache(inbox, tmp_path / "backups")
    assert outcome.verified and outcome.backup is None and outcome.changed == ()


def test_cache_rewritten_after_the_backup_is_not_removed(damaged, tmp_path, monkeypatch):
    inbox, cache = damaged
    real_backup = cache_purge.take_backup

    def backup_then_dovecot_writes(*args, **kwargs):
        backup = real_backup(*args, **kwargs)
        cache.write_bytes(cache.read_bytes() + b"\0" * 8)
        return backup

    monkeypatch.setattr(cache_purge, "take_backup", backup_then_dovecot_writes)
    with pytest.raises(MailboxChanged, match="rescan"):
        purge_cache(inbox, tmp_path / "backups")
    assert cache.exists()


def test_failed_verification_puts_the_cache_back(damaged, tmp_path, monkeypatch):
    inbox, cache = damaged
    before = cache.read_bytes()
    lost = ["cur/x: message no longer on disk"]
    monkeypatch.setattr(cache_purge, "lost_since", lambda before, after: lost)

    outcome = purge_cache(inbox, tmp_path / "backups")

    if inbox.format == "mdbox":  # no per-mailbox inventory: nothing to compare
        assert outcome.verified
        return
    assert not outcome.verified
    assert "put back" in outcome.reason
    assert outcome.lost == tuple(lost)
    assert cache.read_bytes() == before


def test_dovecot_reads_every_message_after_the_purge(tmp_path):
    writer = LiveWriter(tmp_path)
    try:
        home = writer.volume / "alice"
        cache = home / "Maildir" / "dovecot.index.cache"
        fetch = ("fetch", "uid flags", "mailbox", "INBOX", "all")
        cmd, env = writer.command("alice", *fetch)
        healthy = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        truncate(cache, 16)

        outcome = purge_cache(_inbox(home), tmp_path / "backups")
        after = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)

        assert outcome.verified, outcome.reason
        assert after.returncode == 0, after.stderr
        assert after.stdout == healthy
    finally:
        shutil.rmtree(writer.base, ignore_errors=True)
