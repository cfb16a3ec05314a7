"""The backup a repair takes: whole, checksummed, and able to put a mailbox back as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dovecot_index_tool.repair.quarantine import (
    MANIFEST,
    BackupError,
    load_backup,
    restore_backup,
    take_backup,
    verify_backup,
)

INDEX_FILES = ("dovecot.index", "dovecot.index.log", "dovecot.index.log.2", "dovecot.index.cache")


@pytest.fixture
def mailbox(fixtures_dir: Path, tmp_path: Path) -> Path:
    """A copy of a real Dovecot maildir, so the fixtures themselves are never changed."""
    copy = tmp_path / "Maildir"
    shutil.copytree(fixtures_dir / "maildir" / "alice" / "Maildir", copy, symlinks=True)
    return copy


def _index_paths(mailbox: Path) -> list[Path]:
    return [mailbox / name for name in INDEX_FILES]


def _contents(paths: list[Path]) -> dict[str, bytes | None]:
    return {p.name: p.read_bytes() if p.exists() else None for p in paths}


def test_backup_manifest_names_every_file_with_its_checksum_and_findings(mailbox, tmp_path):
    backup = take_backup(
        mailbox, _index_paths(mailbox), tmp_path / "backups",
        finding_ids=["cache.record-chain-loop"], job_id=7,
    )
    manifest = json.loads((Path(backup.directory) / MANIFEST).read_text())
    assert manifest["finding_ids"] == ["cache.record-chain-loop"]
    assert manifest["job_id"] == 7
    assert [Path(f["path"]).name for f in manifest["files"]] == list(INDEX_FILES)
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert load_backup(backup.directory) == backup
    assert verify_backup(backup) == []


def test_restore_puts_back_changed_and_removed_files_exactly(mailbox, tmp_path):
    paths = _index_paths(mailbox)
    before = _contents(paths)
    backup = take_backup(mailbox, paths, tmp_path / "backups")
    (mailbox / "dovecot.index").write_bytes(b"\0" * 64)
    (mailbox / "dovecot.index.cache").unlink()

    changed = restore_backup(backup)

    assert sorted(Path(p).name for p in changed) == ["dovecot.index", "dovecot.index.cache"]
    assert _contents(paths) == before


def test_restore_removes_files_that_were_absent_before_the_repair(mailbox, tmp_path):
    created = mailbox / "dovecot.index.backup"
    assert not created.exists()
    backup = take_backup(mailbox, [created], tmp_path / "backups")
    created.write_bytes(b"written by the repair")

    assert restore_backup(backup) == [str(created)]
    assert not created.exists()


def test_restore_keeps_mode_and_mtime(mailbox, tmp_path):
    index = mailbox / "dovecot.index"
    index.chmod(0o640)
    before = index.stat()
    backup = take_backup(mailbox, [index], tmp_path / "backups")
    index.write_bytes(b"damaged")
    index.chmod(0o666)

    restore_backup(backup)

    after = index.stat()
    assert after.st_mode & 0o7777 == 0o640
    assert after.st_mtime_ns == before.st_mtime_ns


def test_damaged_backup_is_refused_and_mailbox_left_untouched(mailbox, tmp_path):
    paths = _index_paths(mailbox)
    backup = take_backup(mailbox, paths, tmp_path / "backups")
    stored = Path(backup.directory) / backup.files[1].stored
    stored.write_bytes(stored.read_bytes()[:-1])
    (mailbox / "dovecot.index").write_bytes(b"after the repair")
    after_repair = _contents(paths)

    assert verify_backup(backup)
    with pytest.raises(BackupError, match="damaged"):
        restore_backup(backup)
    assert _contents(paths) == after_repair


def test_unreadable_file_fails_the_backup_without_leaving_a_partial_one(mailbox, tmp_path):
    directory_in_the_way = mailbox / "dovecot.index.cache"
    directory_in_the_way.unlink()
    directory_in_the_way.mkdir()
    root = tmp_path / "backups"

    with pytest.raises(BackupError, match=r"dovecot\.index\.cache"):
        take_backup(mailbox, _index_paths(mailbox), root)
    assert list(root.iterdir()) == []


def test_manifest_that_is_not_ours_is_a_typed_error(tmp_path):
    (tmp_path / MANIFEST).write_text('{"version": 99}')
    with pytest.raises(BackupError, match="version 99"):
        load_backup(tmp_path)
    (tmp_path / MANIFEST).write_text("not json")
    with pytest.raises(BackupError, match="not a readable backup"):
        load_backup(tmp_path)


def test_two_backups_of_the_same_job_do_not_overwrite_each_other(mailbox, tmp_path):
    first = take_backup(mailbox, _index_paths(mailbox), tmp_path / "backups", job_id=3)
    second = take_backup(mailbox, _index_paths(mailbox), tmp_path / "backups", job_id=3)
    assert first.directory != second.directory
    assert verify_backup(load_backup(first.directory)) == []
