"""When a mailbox is back: ``usable_at`` (Dovecot opens it and new mail is visible)
and ``complete_at`` (all its old state is back).

Both are estimated only from the queue plan (the cost model calibrated on measured
repairs) over the workers that actually serve the volume now; with no such worker
they are unknown, with that reason. A repair brings a mailbox back in one step
today, so the two times are the same; once a repair is done they are the times it
ended, not estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dovecot_index_tool.jobqueue.plan import simulate
from dovecot_index_tool.jobqueue.presence import serving
from dovecot_index_tool.jobqueue.store import DEFAULT_LIMIT, JobQueue
from dovecot_index_tool.states import MailboxState, Transition

NO_WORKER = "no worker"


class TimeKind(StrEnum):
    ACTUAL = "actual"
    ESTIMATE = "estimate"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class BackTimes:
    usable_at: float | None
    complete_at: float | None
    kind: TimeKind
    reason: str | None = None  # why the times are unknown

    @classmethod
    def unknown(cls, reason: str) -> BackTimes:
        return cls(None, None, TimeKind.UNKNOWN, reason)

    @classmethod
    def actual(cls, at: float) -> BackTimes:
        return cls(at, at, TimeKind.ACTUAL)


@dataclass(frozen=True)
class QueuePlan:
    """End time of each active job that a live worker will run; why not for the others."""

    ends: dict[int, float]
    reasons: dict[str, str]  # volume -> why its jobs have no estimate

    def times(self, job: int, volume: str) -> BackTimes:
        if job in self.ends:
            return BackTimes(self.ends[job], self.ends[job], TimeKind.ESTIMATE)
        return BackTimes.unknown(self.reasons.get(volume, NO_WORKER))


def queue_plan(queue: JobQueue, now: float) -> QueuePlan:
    """Simulate the queued and running jobs on every volume a worker serves, each volume
    at most as parallel as its limit and its live workers allow; a running job has
    its estimate left minus the time since its attempt began."""
    active = queue.jobs("queued") + queue.jobs("running")
    live = serving(queue.db, now)
    paused = {r["volume"] for r in queue.db.all("SELECT volume FROM volume_limits WHERE paused=1")}
    limits, reasons, allowed = {}, {}, queue.limits()
    for vol in {j.volume for j in active}:
        workers = len(live.workers(vol))
        if vol in paused:
            reasons[vol] = "volume paused"
        elif workers == 0:
            reasons[vol] = NO_WORKER
        else:
            limits[vol] = min(workers, allowed.get(vol, DEFAULT_LIMIT))
    served = [j for j in active if j.volume in limits]
    if not served:
        return QueuePlan({}, reasons)
    costs = queue.cost_model()
    started = {r["id"]: r["started"] for r in queue.db.all(
        "SELECT id, started FROM jobs WHERE state='running' AND started IS NOT NULL")}
    left = {
        j.id: max(0.001, costs.seconds(j.action, j.messages, j.bytes) - (now - started[j.id]))
        for j in served if j.state == "running" and j.id in started
    }
    plan = simulate(served, "priority", costs, limits, left)
    return QueuePlan({p.job.id: now + p.end for p in plan.planned}, reasons)


def back_times(current: Transition, volume: str, plan: QueuePlan,
               done_at: float | None) -> BackTimes:
    """The two times of a mailbox in ``current`` state (``done_at``: when its repair
    job ended successfully, if it did)."""
    state, job = current.state, current.evidence.job
    if state is MailboxState.REPAIRED:
        return BackTimes.actual(done_at if done_at is not None else current.at)
    if state is MailboxState.REPAIRING and done_at is not None:
        return BackTimes.actual(done_at)
    if state in (MailboxState.QUEUED, MailboxState.REPAIRING) and job is not None:
        return plan.times(job, volume)
    if state is MailboxState.FAILED:
        return BackTimes.unknown("repair failed")
    if state is MailboxState.NOT_CHECKED:
        return BackTimes.unknown("not checked")
    return BackTimes.unknown("no repair queued")
