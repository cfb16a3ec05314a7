"""``repair PATH``: check the mailboxes under PATH now and repair what can be repaired.

Each damaged mailbox gets the least destructive action that covers all of its
findings (the highest ``Repair`` rank among them). Only actions this package can
carry out and verify are performed; a mailbox that needs more is reported and
left exactly as it was, never half-repaired.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dovecot_index_tool.check.catalogue import Repair
from dovecot_index_tool.check.target import NothingToCheck
from dovecot_index_tool.discovery import MailboxLocation, MailRoot, iter_mailboxes, locate
from dovecot_index_tool.jobqueue.worker import RepairFailed
from dovecot_index_tool.repair.cache_purge import findings_now, purge_cache
from dovecot_index_tool.repair.doveadm import DovecotSetup
from dovecot_index_tool.repair.garbage import garbage_under_lock
from dovecot_index_tool.repair.locking import DEFAULT_TIMEOUT
from dovecot_index_tool.repair.outcome import RepairOutcome
from dovecot_index_tool.repair.preflight import SetupError
from dovecot_index_tool.repair.putback import recover_under
from dovecot_index_tool.repair.quarantine import BackupError, MailboxChanged
from dovecot_index_tool.repair.rebuild import RebuildJob, Settings, rebuild
from dovecot_index_tool.repair.user_files import (
    LIST_INDEX,
    LIST_NAME,
    needs_repair,
    rebuild_list_index,
)

NOT_PERFORMED = (
    "Dovecot cannot be pointed at it: no mail root or mail directory found above the "
    "index (give --index-root/--control-root)"
)
THROUGH_DOVECOT = {Repair.INDEX_REBUILD, Repair.FORCE_RESYNC, Repair.STORAGE_REBUILD}


@dataclass(frozen=True)
class PlannedRepair:
    location: MailboxLocation
    action: Repair
    findings: tuple[str, ...]  # the ones that call for the action
    seen: frozenset[str] = frozenset()  # every finding ID of the check, info included
    root: MailRoot | None = None  # where Dovecot is pointed; None for a lone mailbox

    @property
    def performed(self) -> bool:
        """False when Dovecot is needed but cannot be pointed at the mailbox."""
        if self.action not in THROUGH_DOVECOT:
            return self.action is Repair.CACHE_PURGE
        if self.location.format == LIST_INDEX:
            return self.root is not None
        return self.root is not None and self.location.mail_dir is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "mailbox": self.location.name,
            "format": self.location.format,
            "index_dir": str(self.location.index_dir),
            "action": self.action.value,
            "findings": list(self.findings),
            "performed": self.performed,
        }


def plan_path(
    path: Path, index_root: Path | None = None, control_root: Path | None = None
) -> Iterator[PlannedRepair]:
    """The repair each damaged mailbox under ``path`` needs, checked now."""
    root, mailboxes = locate(path, index_root, control_root)
    if root is None and not mailboxes:
        raise NothingToCheck(f"no Dovecot mailbox found at {path}")
    for location in mailboxes or iter_mailboxes(root):
        planned = plan_mailbox(location, root)
        if planned is not None:
            yield planned
    if root is not None and not mailboxes:
        yield from _plan_list_index(root)


def _plan_list_index(root: MailRoot) -> Iterator[PlannedRepair]:
    """The user's mailbox list index, when a whole user is repaired and it is damaged."""
    findings = needs_repair(root, LIST_NAME)
    if findings:
        place = MailboxLocation(LIST_NAME, LIST_INDEX, Path(root.list_index_dir), None, None)
        yield PlannedRepair(place, Repair.INDEX_REBUILD, findings, frozenset(findings), root)


def plan_mailbox(location: MailboxLocation, root: MailRoot | None = None) -> PlannedRepair | None:
    """None when nothing about the mailbox calls for a repair."""
    found = findings_now(location, root)
    found += garbage_under_lock(found, Path(location.index_dir))
    findings = [f for f in found if f.calls_for_repair]
    action = max((f.repair for f in findings), key=lambda r: r.rank, default=Repair.NONE)
    if action is Repair.NONE:
        return None
    seen = frozenset(f.check for f in found)
    return PlannedRepair(location, action, tuple(sorted({f.check for f in findings})), seen, root)


def recover(path: Path, backup_root: str | os.PathLike[str]) -> list[str]:
    """Undo every repair below ``path`` that was killed half-way (from its backup)."""

    def mailbox_at(index_dir: str) -> MailboxLocation | None:
        _, found = locate(index_dir)
        return found[0] if len(found) == 1 else None

    return recover_under(path, os.fspath(backup_root), mailbox_at)


def still_needed(location: MailboxLocation, root: MailRoot | None = None) -> tuple[str, ...]:
    """The findings that, checked now, still call for a repair of the mailbox."""
    plan = plan_mailbox(location, root)
    return plan.findings if plan else ()


def carry_out(
    plans: Iterable[PlannedRepair],
    backup_root: str | os.PathLike[str],
    lock_timeout: float = DEFAULT_TIMEOUT,
    dovecot: DovecotSetup | None = None,
    reindex: bool = False,
    job_id: int | None = None,
) -> Iterator[RepairOutcome]:
    """Perform each plan, verified; a plan that cannot be carried out is skipped."""
    settings = Settings(dovecot or DovecotSetup(), str(backup_root), lock_timeout, reindex)
    for plan in plans:
        yield _guarded(plan, lambda p=plan: _perform(p, settings, job_id))


def _perform(plan: PlannedRepair, settings: Settings, job_id: int | None) -> RepairOutcome:
    if plan.action is Repair.CACHE_PURGE:
        return purge_cache(
            plan.location, settings.backup_root, plan.findings, job_id,
            lock_timeout=settings.lock_timeout, checked=plan.seen,
        )
    if not plan.performed:
        return _left_as_it_was(plan, NOT_PERFORMED, skipped=True)
    if plan.location.format == LIST_INDEX:
        return _list_index(plan, settings, job_id)
    job = RebuildJob(plan.root, plan.location, plan.action, plan.findings, job_id)
    return rebuild(job, settings, lambda location: still_needed(location, plan.root))


def _list_index(plan: PlannedRepair, settings: Settings, job_id: int | None) -> RepairOutcome:
    try:
        how, backup = rebuild_list_index(plan.root, settings, plan.findings, job_id)
    except RepairFailed as err:
        return RepairOutcome(plan.location.name, plan.action.value, False, None,
                             remaining=plan.findings, reason=str(err))
    return RepairOutcome(plan.location.name, plan.action.value, True, backup, reason=how)


def _guarded(plan: PlannedRepair, action) -> RepairOutcome:
    """An action that could not start (no backup, lock held, file changed) leaves the
    mailbox as it was; that is a failed repair of this mailbox, not of the run."""
    try:
        return action()
    except SetupError as err:
        return RepairOutcome(plan.location.name, plan.action.value, False, None,
                             remaining=plan.findings, reason=f"not started: {err}",
                             setup_error=True)
    except (OSError, BackupError, MailboxChanged) as err:
        return _left_as_it_was(plan, f"not started: {err}", skipped=False)
    except Exception as err:  # a bug must not stop the other mailboxes' repairs
        return RepairOutcome(
            plan.location.name, plan.action.value, False, None, remaining=plan.findings,
            reason=f"stopped by {type(err).__name__}: {err}; if its backup is marked "
            "in-progress, the next repair of this mailbox puts it back first",
        )


def _left_as_it_was(plan: PlannedRepair, reason: str, skipped: bool) -> RepairOutcome:
    return RepairOutcome(
        plan.location.name,
        plan.action.value,
        False,
        None,
        remaining=plan.findings,
        reason=f"{reason}; left as it was",
        skipped=skipped,
    )
