"""A queued job's repair: find its mailbox again, check it now, repair, verify.

The job was planned from an earlier scan; the mailbox is checked again before
anything is done, so a mailbox that Dovecot already repaired on its own (or that
changed) is judged on what it holds now, not on old findings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dovecot_index_tool.discovery import MailboxLocation, iter_mailboxes, locate
from dovecot_index_tool.jobqueue.store import Job
from dovecot_index_tool.jobqueue.worker import RepairFailed
from dovecot_index_tool.repair.incident import carry_out, plan_mailbox
from dovecot_index_tool.repair.locking import DEFAULT_TIMEOUT


@dataclass(frozen=True)
class JobRepair:
    """The ``RepairAction`` the queue worker runs for each claimed job."""

    backup_root: str | os.PathLike[str]
    lock_timeout: float = DEFAULT_TIMEOUT

    def __call__(self, job: Job) -> str:
        location = find_location(Path(job.path), job.mailbox)
        plan = plan_mailbox(location)
        if plan is None:
            return "healthy when checked again: nothing done"
        outcome = next(iter(carry_out([plan], self.backup_root, self.lock_timeout)))
        if outcome.state != "repaired":
            raise RepairFailed(outcome.reason)
        return f"{outcome.action} verified; backup {outcome.backup}"


def find_location(path: Path, mailbox: str) -> MailboxLocation:
    """The mailbox named ``mailbox`` whose files are at ``path`` (its index directory)."""
    if not path.is_dir():
        raise RepairFailed(f"{path} is gone")
    root, mailboxes = locate(path)
    candidates = mailboxes or (iter_mailboxes(root) if root is not None else ())
    for location in candidates:
        if location.name == mailbox:
            return location
    raise RepairFailed(f"no mailbox {mailbox!r} at {path}")
