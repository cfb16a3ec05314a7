"""A queued re-check: read one repaired mailbox again, read-only, and record it in the
ledger as a scan would.

Why: recurrences (damage again after a verified repair) must be seen within hours,
not at the next full scan. The mailbox is checked by the scan's own worker function
(the same checks, the same re-reads while it changes, nothing written, locked or
renamed) and recorded in a run of its own, so its findings get first-seen times, the
report's states and the incident's recurrences like any scan's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dovecot_index_tool.check.findings import could_not_check
from dovecot_index_tool.discovery import find_mailbox
from dovecot_index_tool.ledger.store import Ledger
from dovecot_index_tool.scan.worker import MailboxTask, scan_mailbox

TIMEOUT = 300.0  # seconds, as a scan's --mailbox-timeout


class RecheckFailed(Exception):
    """The mailbox cannot be found where the job says (the job is retried)."""


@dataclass(frozen=True)
class Recheck:
    """The action a queue worker runs for a re-check job (a ``RepairAction``)."""

    open_ledger: Callable[[], Ledger]  # a connection of the worker's thread
    timeout: float = TIMEOUT

    def __call__(self, job) -> str:
        found = find_mailbox(Path(job.path), job.mailbox) if Path(job.path).is_dir() else None
        if found is None:
            raise RecheckFailed(f"no mailbox {job.mailbox!r} at {job.path}")
        _, location = found
        outcome = scan_mailbox(MailboxTask(job.volume, job.tenant, job.user, location,
                                           timeout=self.timeout))
        ledger = self.open_ledger()
        try:
            run_id = ledger.start_run([job.volume], {"recheck_job": job.id})
            recorded = ledger.record(run_id, outcome.mailbox_record(),
                                     list(outcome.report.findings), outcome.reread)
            unread = sorted({f.check for f in recorded if could_not_check(f.check, f.severity)})
            damage = sorted({f.check for f in recorded if f.severity.value != "info"
                             and f.check not in unread})
            ledger.finish_run(run_id, "complete", {
                "mailboxes": 1, "reread": int(outcome.reread), "affected": int(bool(damage)),
                "bytes": outcome.bytes})
        finally:
            ledger.close()
        if damage:
            return f"re-checked (run {run_id}): damaged again: {', '.join(damage)}"
        if unread or not outcome.reread:  # healthy only for files that were read
            return f"re-checked (run {run_id}): could not check: {', '.join(unread) or 'not read'}"
        return f"re-checked (run {run_id}): healthy"
