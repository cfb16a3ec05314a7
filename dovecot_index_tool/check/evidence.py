"""The bytes and file metadata behind each finding, read once per file.

Why: a signature is read from the bytes at the finding's offset, and an incident is
told apart by where (the file system: ``st_dev``) and when (the file's mtime) the
damage happened. The checks work on parsed data; this is the one place that goes
back to the files for them, read-only, with ``read_at`` (one ``pread`` per window).
A file that changed or vanished since it was checked gives what is there now, or
no bytes: the signature then says so (``unknown``), never an error.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import replace

from dovecot_index_tool.check.data import MailboxData, read_at
from dovecot_index_tool.check.findings import Finding
from dovecot_index_tool.check.identity import file_identities
from dovecot_index_tool.check.signatures import Window, signature_of

WINDOW = 16384  # bytes read around an offset: four pages each side of a 4 KiB page


def signed(findings: Iterable[Finding], data: MailboxData | None = None) -> list[Finding]:
    """The findings, each with its signature, device and file mtime."""
    identities = file_identities(data) if data is not None else {}
    stats: dict[str, os.stat_result | None] = {}
    out = []
    for finding in findings:
        st = _stat(finding.file, stats)
        signature = signature_of(finding, _window(finding, st), identities.get(finding.file))
        out.append(replace(finding, signature=signature, device=_device(finding.file, st, stats),
                           file_mtime=st.st_mtime if st is not None else None))
    return out


def _device(path: str | None, st: os.stat_result | None,
            cache: dict[str, os.stat_result | None]) -> int | None:
    """The file's ``st_dev``; for a missing file, its directory's (the file system the
    file was lost from)."""
    if st is not None or path is None:
        return st.st_dev if st is not None else None
    parent = _stat(os.path.dirname(path), cache)
    return parent.st_dev if parent is not None else None


def _stat(path: str | None, cache: dict[str, os.stat_result | None]) -> os.stat_result | None:
    if path is None:
        return None
    if path not in cache:
        try:
            cache[path] = os.stat(path)
        except OSError:
            cache[path] = None
    return cache[path]


def _window(finding: Finding, st: os.stat_result | None) -> Window | None:
    """The bytes around the finding's offset, page-aligned, or None without a file."""
    if st is None or not stat.S_ISREG(st.st_mode) or finding.file is None:
        return None
    if finding.offset is None:
        return Window(st.st_size, b"", st.st_size)
    start = max(0, (finding.offset - WINDOW // 2) // 4096 * 4096)
    try:
        data = read_at(finding.file, [start], WINDOW)[start]
    except OSError:
        return None
    return Window(start, data, st.st_size)
