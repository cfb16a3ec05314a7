"""Trailing log bytes re-read under Dovecot's lock: a write in progress, or garbage.

A scan reads without locks, so bytes after a log's last complete record may be a
write in progress (``log.unfinished-write``, info). Dovecot appends only while it
holds the lock on ``dovecot.index.log``; bytes still there while the lock is held
are garbage, which Dovecot answers by marking the log corrupted and recreating it.
Before repairing, the log is read again under that lock to tell the two apart.
"""

from __future__ import annotations

from pathlib import Path

from dovecot_index_tool.check.findings import Finding
from dovecot_index_tool.files import read_file
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.repair.locking import LockTimeout, dovecot_lock

UNFINISHED = "log.unfinished-write"
GARBAGE = "log.garbage-at-eof"
LOCK_WAIT = 5.0  # seconds: a writer holds the lock for milliseconds


def garbage_under_lock(findings: list[Finding], index_dir: Path) -> list[Finding]:
    """``log.garbage-at-eof`` for each log whose unfinished write is still there under
    the lock; nothing when the lock cannot be had (the bytes may still be a write)."""
    found = []
    for finding in findings:
        if finding.check != UNFINISHED or finding.file is None:
            continue
        trailing = _trailing_locked(Path(finding.file), index_dir / "dovecot.index.log")
        if trailing:
            found.append(
                Finding(
                    GARBAGE,
                    finding.file,
                    f"{trailing} bytes after the last complete record, still there under "
                    "Dovecot's lock",
                    offset=finding.offset,
                    field="records",
                    found=trailing,
                )
            )
    return found


def _trailing_locked(path: Path, lock_file: Path) -> int:
    try:
        with dovecot_lock(lock_file, LOCK_WAIT):
            parsed = L.parse_log(read_file(path).data, str(path))
    except (OSError, LockTimeout, FormatError):
        return 0
    if parsed.end_reason in (L.END_UNFINISHED, L.END_PARTIAL_TRANSACTION):
        return parsed.trailing
    return 0
