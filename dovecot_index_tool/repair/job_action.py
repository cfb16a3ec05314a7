"""A queued job's repair: find its mailbox again, check it now, repair, verify.

The job was planned from an earlier scan; the mailbox is checked again before
anything is done, so a mailbox that Dovecot already repaired on its own (or that
changed) is judged on what it holds now, not on old findings. A repair of the same
mailbox that was killed half-way is undone first, from its backup.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dovecot_index_tool.discovery import (
    MailboxLocation,
    MailRoot,
    find_mailbox,
    iter_mailboxes,
    locate,
)
from dovecot_index_tool.jobqueue.store import Job
from dovecot_index_tool.jobqueue.worker import Healthy, RepairFailed
from dovecot_index_tool.repair.doveadm import DovecotSetup
from dovecot_index_tool.repair.incident import carry_out, plan_mailbox
from dovecot_index_tool.repair.locking import DEFAULT_TIMEOUT
from dovecot_index_tool.repair.outcome import RepairOutcome
from dovecot_index_tool.repair.preflight import SetupError
from dovecot_index_tool.repair.putback import recover_unfinished
from dovecot_index_tool.repair.rebuild import Settings
from dovecot_index_tool.repair.user_files import USER_FILE_FORMATS, UserFileRepair


@dataclass(frozen=True)
class JobRepair:
    """The ``RepairAction`` the queue worker runs for each claimed job."""

    backup_root: str | os.PathLike[str]
    lock_timeout: float = DEFAULT_TIMEOUT
    dovecot: DovecotSetup = field(default_factory=DovecotSetup)
    reindex: bool = False
    # index dir -> (mail dir, control dir) as the scan found them (the ledger)
    scanned_dirs: Callable[[str], tuple[str | None, str | None]] | None = None

    def __call__(self, job: Job) -> str:
        if job.format in USER_FILE_FORMATS:
            settings = Settings(self.dovecot, os.fspath(self.backup_root), self.lock_timeout,
                                self.reindex)
            return UserFileRepair(settings, self._repair_mailbox)(job)
        root, location = find_location(Path(job.path), job.mailbox)
        if location.mail_dir is None and self.scanned_dirs is not None:
            mail_dir, control_dir = self.scanned_dirs(job.path)
            root, location = split_location(Path(job.path), job.mailbox, mail_dir, control_dir,
                                            (root, location))
        recovered = recover_unfinished(location, os.fspath(self.backup_root))
        plan = plan_mailbox(location, root)
        if plan is None:
            return Healthy("healthy when checked again: nothing done")
        outcomes = carry_out(
            [plan], self.backup_root, self.lock_timeout, self.dovecot, self.reindex, job.id
        )
        outcome = next(iter(outcomes))
        if outcome.setup_error:
            raise SetupError(outcome.reason)
        if outcome.state != "repaired":
            raise RepairFailed(outcome.reason)
        undone = f" (after undoing an unfinished repair: {recovered[0]})" if recovered else ""
        return f"{outcome.action} verified{undone}; {outcome.reason}; backup {outcome.backup}"

    def _repair_mailbox(self, location: MailboxLocation, root: MailRoot) -> RepairOutcome | None:
        """One mailbox of a user-wide repair, checked now; None when it needs nothing."""
        recover_unfinished(location, os.fspath(self.backup_root))
        plan = plan_mailbox(location, root)
        if plan is None:
            return None
        outcomes = carry_out([plan], self.backup_root, self.lock_timeout, self.dovecot,
                             self.reindex)
        return next(iter(outcomes))


def find_location(path: Path, mailbox: str) -> tuple[MailRoot | None, MailboxLocation]:
    """The mailbox named ``mailbox`` whose files are at ``path`` (its index directory),
    and the mail root above it."""
    if not path.is_dir():
        raise RepairFailed(f"{path} is gone")
    found = find_mailbox(path, mailbox)
    if found is None:
        raise RepairFailed(f"no mailbox {mailbox!r} at {path}")
    return found


def split_location(
    index_dir: Path,
    mailbox: str,
    mail_dir: str | None,
    control_dir: str | None,
    fallback: tuple[MailRoot | None, MailboxLocation],
) -> tuple[MailRoot | None, MailboxLocation]:
    """The mailbox of a store whose indexes (INDEX=) or control files (CONTROL=) live in
    another tree: the job knows only the index dir, the scan also the mail dir. The
    INDEX= and CONTROL= roots are the ancestors that make discovery put this mailbox's
    index files at ``index_dir``."""
    if mail_dir is None:
        return fallback
    controls = [*_ancestors(Path(control_dir)), None] if control_dir else [None]
    matches = [
        (root, location)
        for control_root in controls  # the scan's control dir first: it holds the keywords
        for index_root in _ancestors(index_dir)
        for root, location in _located(mail_dir, index_root, control_root)
        if location.name == mailbox and Path(location.index_dir) == index_dir
        and _same_dir(location.control_dir, control_root and control_dir)
    ]
    if not matches:
        return fallback
    # the widest roots that still put the files there: a mailbox's own directory can
    # pass for a root too (INBOX at the root of INDEX=), but Dovecot must get the trees
    return min(matches, key=lambda m: (m[1].control_dir is None,
                                       len(m[0].index_root.parts) + len(m[0].control_root.parts)))


def _located(mail_dir: str, index_root: Path, control_root: Path | None):
    root, found = locate(mail_dir, index_root, control_root)
    for location in found or (iter_mailboxes(root) if root else ()):
        yield root, location


def _same_dir(found: str | os.PathLike[str] | None, wanted: str | None) -> bool:
    return wanted is None or (found is not None and Path(found) == Path(wanted))


def _ancestors(path: Path, depth: int = 4) -> list[Path]:
    return [path, *list(path.parents)[:depth]]
