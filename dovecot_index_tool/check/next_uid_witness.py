"""Whether an append the replay refuses proves the index's ``next_uid`` wrong.

Why: Dovecot assigns a new message the UID ``next_uid`` and logs the append. When the
replay meets "Append with UID u, but next_uid = N" and u is exactly the UID after the
highest one the index's records and all earlier appends of the logs hold, the log
continues the mailbox's own history without a gap: it is the index header's
``next_uid`` (raised, by a flipped bit or a stray write) that fits neither, and the
finding belongs on the index. Any other UID leaves the log record as the suspect.
"""

from __future__ import annotations

from dovecot_index_tool.check.data import IndexState
from dovecot_index_tool.check.findings import Finding
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.index import HEADER_OFFSETS
from dovecot_index_tool.format.replay.results import ReplayIssue


def raised_next_uid(index: IndexState, issue: ReplayIssue) -> Finding | None:
    """The index's next_uid finding when the refused append continues the history."""
    idx = index.files.index
    if idx is None or not issue.reason.startswith("Append with UID"):
        return None
    uid = _refused_uid(index, issue)
    if uid is None:
        return None
    history = max((r.uid for r in idx.records), default=0)
    for log in index.files.logs:
        for rec in log.records:
            if log.path == issue.file and rec.offset >= issue.offset:
                break
            if rec.base_code == L.APPEND and rec.error is None:
                history = max([history, *(item.uid for item in rec.items)])
    if uid != history + 1 or idx.header.next_uid <= uid:
        return None
    return Finding(
        "index.next-uid-ahead",
        index.path,
        f"next_uid {idx.header.next_uid}, but the log appends uid {uid}, right after the "
        f"highest uid the index's records and earlier appends hold ({history}): Dovecot "
        f"refuses the append ('{issue.reason}')",
        offset=HEADER_OFFSETS["next_uid"][0],
        field="header.next_uid",
        expected=uid,
        found=idx.header.next_uid,
    )


def _refused_uid(index: IndexState, issue: ReplayIssue) -> int | None:
    for log in index.files.logs:
        if log.path != issue.file:
            continue
        for rec in log.records:
            if rec.offset == issue.offset and rec.base_code == L.APPEND and rec.items:
                return rec.items[0].uid
    return None
