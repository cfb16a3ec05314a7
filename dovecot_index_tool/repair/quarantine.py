"""The backup a repair takes before it changes a mailbox, and the way back.

Every file a repair action may touch is copied into its own directory under the
backup root, with a manifest that names the original path, size, SHA-256, mode,
owner and mtime, and the finding IDs that sent the mailbox to repair. Files that
do not exist yet are recorded as absent, so that restoring also removes what the
repair created: the mailbox is left exactly as it was.

A backup directory is complete only once ``manifest.json`` is in it; the files
are written first under a temporary name and the directory renamed last, so a
repair killed half-way never leaves a backup that looks whole but is not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from dovecot_index_tool.atomic import replace_atomically
from dovecot_index_tool.files import read_file

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
IN_PROGRESS = "in-progress"


class BackupError(Exception):
    """A backup could not be taken, read or put back; the mailbox was not changed by it."""


@dataclass(frozen=True)
class SavedFile:
    """One file as it was before the repair (``sha256`` is None when it was absent)."""

    path: str
    stored: str | None
    size: int
    sha256: str | None
    mode: int
    uid: int
    gid: int
    mtime_ns: int

    @property
    def absent(self) -> bool:
        return self.sha256 is None


@dataclass(frozen=True)
class Backup:
    directory: str
    mailbox: str
    job_id: int | None
    finding_ids: tuple[str, ...]
    created: float
    files: tuple[SavedFile, ...]


def take_backup(
    mailbox: str,
    paths: Iterable[str | os.PathLike[str]],
    backup_root: str | os.PathLike[str],
    finding_ids: Iterable[str] = (),
    job_id: int | None = None,
) -> Backup:
    """Copy ``paths`` (absent ones recorded as absent) into a new directory under
    ``backup_root``; only the finished directory carries a manifest."""
    root = Path(backup_root)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{'job' + str(job_id) if job_id else 'mailbox'}"
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        files = tuple(_save(Path(p), staging, n) for n, p in enumerate(_unique(paths)))
        backup = Backup(str(staging), str(mailbox), job_id, tuple(finding_ids), time.time(), files)
        _write_manifest(staging, backup)
        final = _free_name(root, name)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return replace(backup, directory=str(final))


def load_backup(directory: str | os.PathLike[str]) -> Backup:
    """Read a finished backup's manifest."""
    path = Path(directory) / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("version") != MANIFEST_VERSION:
            found = raw.get("version")
            raise BackupError(f"{path}: manifest version {found!r}, expected {MANIFEST_VERSION}")
        files = tuple(SavedFile(**entry) for entry in raw["files"])
        return Backup(
            str(directory), raw["mailbox"], raw["job_id"], tuple(raw["finding_ids"]),
            raw["created"], files,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{path}: not a readable backup manifest ({exc})") from exc


class MailboxChanged(RuntimeError):
    """A file to repair is no longer what was backed up: rescan before repairing."""


def refuse_if_changed(backup: Backup) -> None:
    """Raise MailboxChanged unless every file is still the one that was backed up (or
    still absent): a mailbox that changed must be rescanned, not repaired on old
    evidence."""
    for saved in backup.files:
        if file_sha256(saved.path) != saved.sha256:
            raise MailboxChanged(f"{saved.path} changed since it was backed up; rescan")


def mark_started(backup: Backup) -> None:
    """Say, before the first change, that the mailbox may be half-repaired: a repair that
    is killed leaves this mark, and the next repair of the mailbox puts the backup back."""
    _write_synced(Path(backup.directory) / IN_PROGRESS, b"", 0o600)


def mark_finished(backup: Backup) -> None:
    """The mailbox is repaired and verified, or was put back as it was."""
    with contextlib.suppress(FileNotFoundError):
        (Path(backup.directory) / IN_PROGRESS).unlink()


def unfinished_backups(
    backup_root: str | os.PathLike[str], mailbox: str | None
) -> list[Backup]:
    """Backups of ``mailbox`` (None: of any) whose repair never finished, newest first."""
    try:
        marks = sorted(Path(backup_root).glob(f"*/{IN_PROGRESS}"), reverse=True)
    except OSError:
        return []
    found = []
    for mark in marks:
        with contextlib.suppress(BackupError):
            backup = load_backup(mark.parent)
            if mailbox is None or backup.mailbox == str(mailbox):
                found.append(backup)
    return found


def verify_backup(backup: Backup) -> list[str]:
    """What is wrong with the stored copies (missing, wrong size or checksum); empty when whole."""
    problems = []
    for saved in backup.files:
        if saved.absent:
            continue
        stored = Path(backup.directory) / saved.stored
        try:
            size, digest = stored.stat().st_size, file_sha256(stored)
        except OSError as exc:
            problems.append(f"{stored}: {exc.strerror or exc}")
            continue
        if size != saved.size or digest != saved.sha256:
            problems.append(f"{stored}: does not match the checksum of {saved.path}")
    return problems


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    """The file's SHA-256, read in chunks; None when it does not exist."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def restore_backup(backup: Backup) -> list[str]:
    """Put every file back as it was (and remove those that were absent); return the
    paths changed. Refuses before touching anything when a stored copy is damaged."""
    problems = verify_backup(backup)
    if problems:
        raise BackupError("backup is damaged, nothing restored: " + "; ".join(problems))
    changed = []
    for saved in backup.files:
        if _restore_one(backup, saved):
            changed.append(saved.path)
    return changed


def _unique(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for path in paths:
        seen.setdefault(os.path.abspath(os.fspath(path)), None)
    return list(seen)


def _save(path: Path, staging: Path, number: int) -> SavedFile:
    try:
        content = read_file(path)
    except FileNotFoundError:
        return SavedFile(str(path), None, 0, None, 0, -1, -1, 0)
    except OSError as exc:
        raise BackupError(f"{path}: cannot be backed up ({exc.strerror or exc})") from exc
    stat = os.stat(path, follow_symlinks=False)
    stored = f"{number:04d}-{path.name}"
    _write_synced(staging / stored, content.data, 0o600)
    return SavedFile(
        str(path), stored, len(content.data), hashlib.sha256(content.data).hexdigest(),
        stat.st_mode & 0o7777, stat.st_uid, stat.st_gid, content.mtime_ns,
    )


def _restore_one(backup: Backup, saved: SavedFile) -> bool:
    target = Path(saved.path)
    if saved.absent:
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        return True
    data = (Path(backup.directory) / saved.stored).read_bytes()
    if _unchanged(target, saved, data):
        return False
    def keep_owner_and_times(temporary: str) -> None:
        if os.geteuid() == 0:
            os.chown(temporary, saved.uid, saved.gid)
        os.utime(temporary, ns=(saved.mtime_ns, saved.mtime_ns))

    replace_atomically(target, data, saved.mode, keep_owner_and_times)
    return True


def _unchanged(target: Path, saved: SavedFile, data: bytes) -> bool:
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        return False
    return current == data and (target.stat().st_mode & 0o7777) == saved.mode


def _write_synced(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _write_manifest(staging: Path, backup: Backup) -> None:
    body = asdict(backup)
    del body["directory"]
    body["version"] = MANIFEST_VERSION
    text = json.dumps(body, indent=2, sort_keys=True) + "\n"
    _write_synced(staging / MANIFEST, text.encode(), 0o600)


def _free_name(root: Path, name: str) -> Path:
    candidate, n = root / name, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{name}.{n}"
    return candidate


