"""One state model per mailbox, derived from the evidence, never stored as a verdict.

A mailbox that has had damage is, at any moment, in one :class:`MailboxState`. The
state is computed from what the ledger and the queue recorded (findings with first
seen and resolved, which run resolved them by reading the files, jobs and their
events), so that every output says the same thing and each state names the job,
run and findings that justify it. ``repaired`` needs a scan that read the files
after the damage and found it gone; a finding resolved without a read (the files
are gone) is ``not-checked``, as is a mailbox whose last scan could not read it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from dovecot_index_tool.check.findings import could_not_check
from dovecot_index_tool.check.severity import worst


class MailboxState(StrEnum):
    AFFECTED = "affected"
    QUEUED = "queued"
    REPAIRING = "repairing"
    REPAIRED = "repaired"
    FAILED = "failed"
    NOT_CHECKED = "not-checked"
    RECURRED = "recurred"


ORDER = tuple(MailboxState)  # the order tables and totals show
BROKEN = (MailboxState.AFFECTED, MailboxState.RECURRED, MailboxState.FAILED)


@dataclass(frozen=True)
class FindingFact:
    """One non-info finding of the mailbox as the ledger has it."""

    id: int
    check: str
    severity: str
    first_seen: float
    last_seen: float
    resolved: float | None
    resolved_run: int | None  # the run that read the files and no longer saw it

    def open_at(self, t: float) -> bool:
        return self.first_seen <= t and (self.resolved is None or self.resolved > t)

    @property
    def unchecked(self) -> bool:
        return could_not_check(self.check, self.severity)


@dataclass(frozen=True)
class JobFact:
    """One repair job of the mailbox and its events (time, state, detail)."""

    id: int
    action: str
    created: float
    finished: float | None
    last_error: str | None
    events: tuple[tuple[float, str, str], ...]

    def state_at(self, t: float) -> str | None:
        states = [state for at, state, _ in self.events if at <= t]
        return states[-1] if states else None

    def started_at(self, t: float) -> float | None:
        """When the attempt running at ``t`` was claimed."""
        starts = [at for at, state, _ in self.events if at <= t and state == "running"]
        return starts[-1] if starts else None

    def done_at(self) -> float | None:
        done = [at for at, state, _ in self.events if state == "done"]
        return done[-1] if done else None


@dataclass(frozen=True)
class Evidence:
    """What the state of one mailbox rests on at one moment."""

    job: int | None = None
    run: int | None = None
    findings: tuple[int, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class Transition:
    """The mailbox entered ``state`` at ``at`` (from ``previous``)."""

    state: MailboxState
    at: float
    previous: MailboxState | None
    evidence: Evidence
    worst: str
    checks: tuple[str, ...]


def history(findings: list[FindingFact], jobs: list[JobFact]) -> list[Transition]:
    """Every state the mailbox went through, oldest first; the last one is its state now.
    Each moment at which evidence was recorded is looked at once, so the same ledger
    always gives the same history (the feed's ids and the webhooks rest on that)."""
    moments = sorted(
        {f.first_seen for f in findings}
        | {f.resolved for f in findings if f.resolved is not None}
        | {at for j in jobs for at, _, _ in j.events}
    )
    out: list[Transition] = []
    for t in moments:
        now = _state_at(t, findings, jobs)
        if now is None:
            continue
        state, evidence, episode = now
        checks = tuple(sorted({f.check for f in episode}))
        if out and out[-1].state == state:  # the same state, on newer evidence
            out[-1] = replace(out[-1], evidence=evidence, worst=_worst(episode), checks=checks)
            continue
        out.append(Transition(state, t, out[-1].state if out else None, evidence,
                              _worst(episode), checks))
    return out


def _worst(findings: list[FindingFact]) -> str:
    found = worst(f.severity for f in findings)
    return str(found) if found is not None else "unknown"


def _state_at(t: float, findings: list[FindingFact], jobs: list[JobFact]):
    """(state, evidence, the findings it is about) at ``t``; None before any damage."""
    open_ = [f for f in findings if f.open_at(t)]
    if not open_:
        return _closed_state(t, findings, jobs)
    ids = tuple(f.id for f in open_)
    unchecked = [f for f in open_ if f.unchecked]
    if unchecked:
        checks = ", ".join(sorted({f.check for f in unchecked}))
        return (MailboxState.NOT_CHECKED,
                Evidence(findings=ids, detail=f"the last scan could not read it ({checks})"),
                open_)
    episode = min(f.first_seen for f in open_)
    job = _job_of_episode(t, jobs, episode)
    if job is not None:
        found = _job_state(t, job, open_)
        if found is not None:
            state, detail = found
            return state, Evidence(job=job.id, findings=ids, detail=detail), open_
    checks = ", ".join(sorted({f.check for f in open_}))
    if any(f.resolved_run is not None and f.resolved <= episode for f in findings):
        return (MailboxState.RECURRED,
                Evidence(findings=ids, detail=f"damaged again after a repair: {checks}"), open_)
    return MailboxState.AFFECTED, Evidence(findings=ids, detail=f"a scan found {checks}"), open_


def _closed_state(t: float, findings: list[FindingFact], jobs: list[JobFact]):
    """No open damage at ``t``: repaired if the last resolution was a read, else we
    do not know (the files went away, or nobody looked)."""
    resolved = [f for f in findings if f.resolved is not None and f.resolved <= t]
    if not resolved:
        return None
    last = max(f.resolved for f in resolved)
    episode = [f for f in resolved if f.resolved == last]
    ids = tuple(f.id for f in episode)
    runs = {f.resolved_run for f in episode}
    if None in runs:
        return (MailboxState.NOT_CHECKED,
                Evidence(findings=ids, detail="its files are no longer there: not read"),
                episode)
    run = max(runs)
    done = [j for j in jobs if (j.done_at() or t + 1) <= last]
    job = max(done, key=lambda j: j.done_at() or 0.0).id if done else None
    by = f" after repair job {job}" if job is not None else ""
    return (MailboxState.REPAIRED,
            Evidence(job=job, run=run, findings=ids,
                     detail=f"scan run {run} read the files{by}: the damage is gone"),
            episode)


def _job_of_episode(t: float, jobs: list[JobFact], episode: float) -> JobFact | None:
    """The newest job that existed at ``t`` and is about this episode of damage (a job
    that ended before the damage was first seen belongs to an earlier one)."""
    mine = [j for j in jobs if j.created <= t]
    if not mine:
        return None
    job = max(mine, key=lambda j: (j.created, j.id))
    state = job.state_at(t)
    if state in ("queued", "running"):
        return job
    ended = max((at for at, _, _ in job.events if at <= t), default=job.created)
    return job if ended >= episode else None


def _job_state(t: float, job: JobFact, open_: list[FindingFact]):
    state = job.state_at(t)
    if state == "queued":
        return MailboxState.QUEUED, f"repair job {job.id} queued ({job.action})"
    if state == "running":
        return MailboxState.REPAIRING, f"repair job {job.id} running ({job.action})"
    if state in ("dead", "failed"):
        return MailboxState.FAILED, f"repair job {job.id} {state}: {job.last_error or 'no reason'}"
    if state == "done":
        done = job.done_at() or t
        still = sorted({f.check for f in open_ if f.last_seen > done})
        if still:
            return (MailboxState.FAILED,
                    f"a scan after repair job {job.id} still finds {', '.join(still)}")
        return (MailboxState.REPAIRING,
                f"repair job {job.id} done; waiting for a scan to read the files")
    return None  # cancelled: the damage is as it was
