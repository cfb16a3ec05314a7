"""Repairs of a user's shared index files: the mailbox list index and the mdbox map.

A scan reports them as entries of their own, ``(mailbox list index)`` and ``(mdbox
map)``, and queues a job for each, whose path is the file itself.

* The list index is a cache of the mailbox tree: for the layouts discovery reads, the
  tree is in the file system, so the damaged list index is moved into the backup and
  Dovecot builds it again when it lists the mailboxes. Verified: every mailbox on
  disk is listed, and the new list index checks clean. Nothing is lost.
* The mdbox map is rebuilt by a storage rebuild, which goes through each mailbox
  that needs it (``rebuild.py``: its messages and flags recorded first, verified
  after). Verified: the map checks clean afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dovecot_index_tool.check.runner import check_locations
from dovecot_index_tool.discovery import (
    MailboxFormat,
    MailboxLocation,
    MailRoot,
    iter_mailboxes,
    locate,
)
from dovecot_index_tool.jobqueue.store import Job
from dovecot_index_tool.jobqueue.worker import RepairFailed
from dovecot_index_tool.repair.doveadm import DoveadmError
from dovecot_index_tool.repair.locking import lock_if_present
from dovecot_index_tool.repair.outcome import RepairOutcome
from dovecot_index_tool.repair.preflight import check_setup, doveadm_for
from dovecot_index_tool.repair.putback import put_back
from dovecot_index_tool.repair.quarantine import (
    mark_finished,
    mark_started,
    refuse_if_changed,
    take_backup,
)
from dovecot_index_tool.repair.rebuild import LIST_FILES, Settings

LIST_INDEX = MailboxFormat.LIST_INDEX
MDBOX_MAP = MailboxFormat.MDBOX_MAP
LIST_NAME = "(mailbox list index)"  # how a check report names them
MAP_NAME = "(mdbox map)"
USER_FILE_FORMATS = {LIST_INDEX, MDBOX_MAP}


@dataclass(frozen=True)
class UserFileRepair:
    """Runs the job of a shared file; ``carry_out_mailbox(location, root)`` repairs one
    mailbox the way ``repair`` does (None when it needed nothing)."""

    settings: Settings
    carry_out_mailbox: Callable[[MailboxLocation, MailRoot], RepairOutcome | None]

    def __call__(self, job: Job) -> str:
        if job.format == MDBOX_MAP:
            return self._map(Path(job.path))
        return self._list_index(Path(job.path), job)

    def _map(self, path: Path) -> str:
        root = _root_at(path.parent.parent)
        repaired = []
        for location in iter_mailboxes(root):
            outcome = self.carry_out_mailbox(location, root)
            if outcome is None:
                continue
            if outcome.state != "repaired":
                raise RepairFailed(f"{location.name}: {outcome.reason}")
            repaired.append(location.name)
        if remaining := needs_repair(root, MAP_NAME):
            raise RepairFailed("the map still calls for a repair: " + ", ".join(remaining))
        return f"storage rebuilt through {', '.join(repaired) or 'no mailbox'}; map checks clean"

    def _list_index(self, path: Path, job: Job) -> str:
        root = _root_at(path.parent)
        if not needs_repair(root, LIST_NAME):
            return "healthy when checked again: nothing done"
        how, backup = rebuild_list_index(root, self.settings, job.checks, job.id)
        return f"{how}; backup {backup}"


def rebuild_list_index(
    root: MailRoot, settings: Settings, finding_ids: tuple[str, ...], job_id: int | None = None
) -> tuple[str, str]:
    """Move the user's list index into a backup and let Dovecot build it again: what was
    done, and the backup directory. Raises RepairFailed (with the backup put back) when
    the result does not verify."""
    directory = Path(root.list_index_dir)
    names = sorted(location.name for location in iter_mailboxes(root))
    files = [directory / name for name in LIST_FILES]
    backup = take_backup(directory, files, settings.backup_root, finding_ids, job_id)
    mark_started(backup)
    with lock_if_present(directory / "dovecot.list.index.log", settings.lock_timeout):
        refuse_if_changed(backup)
        for file in files:
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
    problems = _relist(root, names, settings)
    if problems:
        put_back(backup, _inbox(root))
        mark_finished(backup)
        raise RepairFailed("; ".join(problems) + "; the list index was put back")
    mark_finished(backup)
    return f"list index rebuilt by Dovecot, {len(names)} mailbox(es) listed", backup.directory


def _relist(root: MailRoot, names: list[str], settings: Settings) -> list[str]:
    doveadm = doveadm_for(settings.dovecot, root, _inbox(root))
    check_setup(doveadm)
    try:
        listed = set(doveadm.run("mailbox list").split("\n"))
    except DoveadmError as err:
        return [str(err)]
    problems = []
    if missing := [n for n in names if n not in listed]:
        problems.append(f"{len(missing)} mailbox(es) not listed (first: {missing[0]})")
    if remaining := needs_repair(root, LIST_NAME):
        problems.append("the list index still calls for a repair: " + ", ".join(remaining))
    return problems


def needs_repair(root: MailRoot, name: str) -> tuple[str, ...]:
    """The findings of one shared file of the user (by its report name) that call for a
    repair, checked now."""
    reports = check_locations(
        [], root.list_index_dir, root.map_index_dir, root.storage_dir, complete=False
    )
    return tuple(
        sorted(
            {
                f.check
                for report in reports
                if report.name == name
                for f in report.findings
                if f.calls_for_repair
            }
        )
    )


def _root_at(directory: Path) -> MailRoot:
    root, _ = locate(directory)
    if root is None:
        raise RepairFailed(f"no mail root at {directory}")
    return root


def _inbox(root: MailRoot) -> MailboxLocation:
    """Where doveadm is pointed for user-wide commands (and whose owner runs them)."""
    return next((m for m in iter_mailboxes(root) if m.name == "INBOX"),
                MailboxLocation("INBOX", root.format, root.index_root, root.root, None))
