"""When will each mailbox be back? A simulation of the queue under a policy.

Each volume runs at most its limit of jobs at once; a job takes the time the cost
model predicts. Policies: ``priority`` (the queue's order), ``fifo`` (oldest job
first) and ``volume-at-a-time`` (one volume after the other, as operators often
do by hand). Time-to-restore is measured from now, as mean and 95th percentile,
over all jobs and over the VIPs.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from dovecot_index_tool.jobqueue.costs import CostModel
from dovecot_index_tool.jobqueue.store import DEFAULT_LIMIT, Job

POLICIES = ("priority", "fifo", "volume-at-a-time")


@dataclass(frozen=True)
class Planned:
    job: Job
    start: float
    end: float  # seconds from now until the mailbox is back


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    planned: tuple[Planned, ...]

    def metrics(self, vip_only: bool = False) -> dict[str, float | int | None]:
        ends = sorted(p.end for p in self.planned if p.job.vip or not vip_only)
        if not ends:
            return {"jobs": 0, "mean": None, "p95": None, "last": None}
        p95 = ends[min(len(ends) - 1, math.ceil(0.95 * len(ends)) - 1)]
        return {"jobs": len(ends), "mean": sum(ends) / len(ends), "p95": p95, "last": ends[-1]}


def order(jobs: list[Job], policy: str) -> list[Job]:
    if policy == "fifo":
        return sorted(jobs, key=lambda j: (j.created, j.id))
    if policy == "volume-at-a-time":
        first_seen: dict[str, float] = {}
        for j in sorted(jobs, key=lambda j: (j.created, j.id)):
            first_seen.setdefault(j.volume, j.created)
        return sorted(jobs, key=lambda j: (first_seen[j.volume], j.volume, j.created, j.id))
    return sorted(jobs, key=lambda j: (-j.priority, j.id))


def simulate(
    jobs: list[Job],
    policy: str,
    costs: CostModel,
    limits: dict[str, int],
    running_left: dict[int, float] | None = None,
) -> PolicyResult:
    """Start times and restore times of ``jobs`` (queued or running) under ``policy``."""
    slots: dict[str, list[float]] = {}
    for vol in {j.volume for j in jobs}:
        slots[vol] = [0.0] * max(1, limits.get(vol, DEFAULT_LIMIT))
        heapq.heapify(slots[vol])
    planned = []
    running_left = running_left or {}
    sequence = order(jobs, policy)
    barrier = 0.0  # volume-at-a-time: the next volume starts when the previous one ends
    previous_volume = None
    for job in sorted(sequence, key=lambda j: j.state != "running"):
        if policy == "volume-at-a-time" and job.volume != previous_volume and previous_volume:
            barrier = max(max(s) for s in slots.values())
        previous_volume = job.volume
        start = max(heapq.heappop(slots[job.volume]), barrier)
        seconds = running_left.get(job.id) or costs.seconds(job.action, job.messages, job.bytes)
        heapq.heappush(slots[job.volume], start + seconds)
        planned.append(Planned(job, start, start + seconds))
    return PolicyResult(policy, tuple(planned))


def plan_document(results: list[PolicyResult], detail: PolicyResult,
                  calibrated: set[str] | frozenset[str]) -> dict[str, object]:
    """``queue plan --format json``: every policy's figures, and ``detail``'s order."""
    return {
        "calibrated_actions": sorted(calibrated),
        "policies": {
            r.policy: {"all": r.metrics(), "vip": r.metrics(vip_only=True)} for r in results
        },
        "order": [
            {
                "job": p.job.id,
                "volume": p.job.volume,
                "user": p.job.user,
                "mailbox": p.job.mailbox,
                "start": p.start,
                "back_in": p.end,
            }
            for p in detail.planned
        ],
    }
