"""Cache purge, the least destructive repair: move ``dovecot.index.cache`` aside.

What it can lose: nothing a user sees. The cache holds only copies of what is in
the messages (headers, sizes, body structure); Dovecot builds it again as clients
ask, at the cost of reading those messages once more.

The sequence: record what the mailbox holds and what is wrong with it, back the
cache up, take Dovecot's index lock, make sure the cache is still the file that
was backed up (a mailbox that changed since must be rescanned, not repaired on
old evidence), remove it, and release the lock. Then verify: a rescan must show
no cache finding and nothing new, and every message on disk must still be there
with its flags. When verification fails the backup is put back.
"""

from __future__ import annotations

import os

from dovecot_index_tool.check.catalogue import Repair
from dovecot_index_tool.check.findings import Finding
from dovecot_index_tool.check.runner import check_locations
from dovecot_index_tool.discovery import MailboxFormat, MailboxLocation, MailRoot
from dovecot_index_tool.repair.inventory import Inventory, lost_since, take_inventory
from dovecot_index_tool.repair.locking import DEFAULT_TIMEOUT, dovecot_lock
from dovecot_index_tool.repair.outcome import RepairOutcome
from dovecot_index_tool.repair.quarantine import refuse_if_changed, restore_backup, take_backup

CACHE = "dovecot.index.cache"
LOG = "dovecot.index.log"
INVENTORY_FORMATS = {"maildir", "sdbox"}
ACTION = Repair.CACHE_PURGE.value


def purge_cache(
    location: MailboxLocation,
    backup_root: str | os.PathLike[str],
    finding_ids: tuple[str, ...] = (),
    job_id: int | None = None,
    lock_timeout: float = DEFAULT_TIMEOUT,
    checked: frozenset[str] | None = None,
) -> RepairOutcome:
    """Remove the mailbox's cache file under Dovecot's lock, verify, or put it back.

    ``checked`` is every finding ID of a check made just before; without it the
    mailbox is checked here."""
    cache = location.index_dir / CACHE
    if not cache.exists():
        return RepairOutcome(location.name, ACTION, True, None, reason="no cache file")
    before_ids = _finding_ids(location) if checked is None else checked
    before = _inventory(location)
    backup = take_backup(location.index_dir, [cache], backup_root, finding_ids, job_id)
    with dovecot_lock(location.index_dir / LOG, lock_timeout):
        refuse_if_changed(backup)
        cache.unlink()
    problems, remaining, lost = _verify(location, before_ids, before)
    if problems:
        restore_backup(backup)
        return RepairOutcome(
            location.name, ACTION, False, backup.directory, (str(cache),),
            lost, remaining, "; ".join(problems) + "; the cache file was put back",
        )
    return RepairOutcome(
        location.name, ACTION, True, backup.directory, (str(cache),), (), remaining
    )


def _verify(
    location: MailboxLocation, before_ids: frozenset[str], before: Inventory | None
) -> tuple[list[str], tuple[str, ...], tuple[str, ...]]:
    after_ids = _finding_ids(location)
    problems = []
    if cache_left := sorted(i for i in after_ids if i.startswith("cache.")):
        problems.append("cache findings remain: " + ", ".join(cache_left))
    if new := sorted(after_ids - before_ids):
        problems.append("new findings after the repair: " + ", ".join(new))
    lost = tuple(lost_since(before, _inventory(location))) if before else ()
    if lost:
        problems.append(f"{len(lost)} message(s) or flags lost")
    return problems, tuple(sorted(after_ids)), lost


def findings_now(location: MailboxLocation, root: MailRoot | None = None) -> list[Finding]:
    """Check this one mailbox now; for mdbox with ``root`` also the map it points into
    (the list index is left out: no repair of one mailbox changes it)."""
    map_dir = storage = None
    if root is not None and root.format == MailboxFormat.MDBOX:
        map_dir, storage = root.map_index_dir, root.storage_dir
    reports = check_locations([location], None, map_dir, storage, complete=False)
    return [f for report in reports for f in report.findings]


def _finding_ids(location: MailboxLocation) -> frozenset[str]:
    return frozenset(f.check for f in findings_now(location))


def _inventory(location: MailboxLocation) -> Inventory | None:
    if location.format not in INVENTORY_FORMATS or location.mail_dir is None:
        return None
    return take_inventory(location.mail_dir, location.format)
