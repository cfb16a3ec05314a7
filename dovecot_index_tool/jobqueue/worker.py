"""A repair worker: claim a batch, run each job's action under a heartbeat, record the
result. The actions themselves are plugged in (``RepairAction``); a job whose worker
dies is claimed again by another once its lease ends.

Load control (``LoadLimits``) works as in a scan: a worker waits before each job while
the host is busy, and claims nothing outside its window (a claimed batch is finished,
so no job waits out its lease)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from dovecot_index_tool.jobqueue.store import DEFAULT_LEASE, DONE, Job, JobQueue
from dovecot_index_tool.load.gate import LoadGate, LoadLimits
from dovecot_index_tool.load.priority import go_idle
from dovecot_index_tool.load.probe import LoadProbe

HEALTHY = "healthy"  # a job's result (not a queue state): done, nothing needed repairing


class RepairFailed(Exception):
    """The action could not repair (or verify) the mailbox; the job is retried."""


class PermanentFailure(Exception):
    """The action cannot work as things are set up (no doveadm, mail owned by root, a
    user database that does not answer): the job fails at once, with the reason,
    instead of using up its retries."""


@dataclass(frozen=True)
class Healthy:
    """What an action returns when the mailbox needed nothing when checked again: the
    job is done, but nothing was repaired."""

    detail: str


class RepairAction(Protocol):
    def __call__(self, job: Job) -> str | Healthy:
        """Repair ``job``'s mailbox and return what was done; raise to fail."""


@dataclass(frozen=True)
class ByKind:
    """The action for each kind of job: a repair, or a read-only re-check. A job of a
    kind this worker was given no action for fails at once."""

    actions: dict[str, RepairAction]

    def __call__(self, job: Job) -> str | Healthy:
        action = self.actions.get(job.kind)
        if action is None:
            raise PermanentFailure(f"this worker cannot run {job.kind} jobs")
        return action(job)


@dataclass
class WorkSummary:
    done: int = 0
    failed: int = 0
    claimed: int = 0
    results: list[tuple[int, str]] = field(default_factory=list)
    paused: Counter = field(default_factory=Counter)  # seconds waited, per reason
    stopped: str | None = None  # why the worker stopped claiming (outside its window)


def work(
    open_queue: Callable[[], JobQueue],
    action: RepairAction,
    worker: str,
    batch: int = 1,
    volume: str | None = None,
    lease: float = DEFAULT_LEASE,
    forever: bool = False,
    idle_sleep: float = 2.0,
    stop: threading.Event | None = None,
    on_result: Callable[[Job, str, str], None] | None = None,
    load: LoadLimits | None = None,
    probe: LoadProbe | None = None,
) -> WorkSummary:
    """Run jobs until the queue has none for us (or, with ``forever``, until ``stop``,
    or until the window closes); ``on_result(job, state, detail)`` is told of each job
    as it ends (progress output)."""
    queue = open_queue()
    summary = WorkSummary()
    gate = LoadGate(load or LoadLimits(), probe)
    stop = stop or threading.Event()
    while not stop.is_set():
        summary.stopped = gate.admit()
        if summary.stopped is not None:
            break
        jobs = queue.claim(worker, batch=batch, volume=volume, lease=lease)
        if not jobs:
            if not forever:
                break
            stop.wait(idle_sleep)
            continue
        summary.claimed += len(jobs)
        with _Heartbeat(open_queue, worker, [j.id for j in jobs], lease):
            for n, job in enumerate(jobs):
                if n:
                    gate.admit()  # a pause only: the claimed batch is finished
                state, detail = _run_one(queue, action, worker, job)
                summary.results.append((job.id, state))
                if on_result is not None:
                    on_result(job, state, detail)
                summary.done += state in (DONE, HEALTHY)
                summary.failed += state not in (DONE, HEALTHY)
    summary.paused = Counter(gate.paused)
    return summary


def work_in_parallel(
    open_queue: Callable[[], JobQueue],
    action: RepairAction,
    workers: int,
    **options,
) -> WorkSummary:
    """``workers`` workers side by side, each with its own queue connection and name
    (``host:pid:N``); a repair waits on doveadm, so threads are enough. With
    ``--io-idle`` this process goes idle first: its threads and doveadm inherit it."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    load = options.get("load")
    if load is not None and load.io_idle:
        go_idle()
    if workers == 1:
        return work(open_queue, action, base, **options)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(work, open_queue, action, f"{base}:{n}", **options)
            for n in range(1, workers + 1)
        ]
        summaries = [f.result() for f in futures]
    total = WorkSummary()
    for one in summaries:
        total.done += one.done
        total.failed += one.failed
        total.claimed += one.claimed
        total.results += one.results
        total.paused.update(one.paused)
        total.stopped = total.stopped or one.stopped
    return total


def _run_one(queue: JobQueue, action: RepairAction, worker: str, job: Job) -> tuple[str, str]:
    """The job's state afterwards, and what the repair said."""
    current = queue.job(job.id)
    if current is None or current.state != "running" or current.lease_owner != worker:
        # its lease ran out while we waited
        return (current.state, "lease lost before it ran") if current else ("gone", "")
    start = time.monotonic()
    try:
        result = action(job)
    except PermanentFailure as err:
        detail = f"setup: {err}"
        return queue.finish(job, worker, False, detail, permanent=True), detail
    except Exception as err:
        detail = f"{type(err).__name__}: {err}"
        return queue.finish(job, worker, False, detail), detail
    if isinstance(result, Healthy):
        queue.finish(job, worker, True, result.detail)
        return HEALTHY, result.detail
    return queue.finish(job, worker, True, result, seconds=time.monotonic() - start), result


class _Heartbeat:
    """Extends the leases every third of their length while the batch runs."""

    def __init__(
        self, open_queue: Callable[[], JobQueue], worker: str, job_ids: list[int], lease: float
    ) -> None:
        self.open_queue, self.worker, self.job_ids, self.lease = open_queue, worker, job_ids, lease
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        queue = self.open_queue()  # its own connection: SQLite connections stay in a thread
        while not self.stop.wait(self.lease / 3):
            try:
                queue.heartbeat(self.worker, self.job_ids, self.lease)
            except Exception:
                continue
        queue.ledger.close()

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
