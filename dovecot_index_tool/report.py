"""Who is affected and when they will be back: one row per mailbox that has (or had)
damage, in the one state model (``states.py``), with its evidence and the two times
back (``back_times.py``). Every output renders these rows."""

from __future__ import annotations

import time
from dataclasses import dataclass

from dovecot_index_tool.back_times import BackTimes, QueuePlan, back_times, queue_plan
from dovecot_index_tool.check.severity import rank
from dovecot_index_tool.jobqueue.rechecks import JobKind
from dovecot_index_tool.jobqueue.store import JobQueue
from dovecot_index_tool.states import (
    ORDER,
    FindingFact,
    JobFact,
    MailboxState,
    Transition,
    history,
)

STATES = tuple(s.value for s in ORDER)


@dataclass(frozen=True)
class ReportRow:
    volume: str
    tenant: str | None
    user: str
    mailbox: str
    path: str
    history: tuple[Transition, ...]
    first_seen: float
    last_seen: float
    times: BackTimes

    @property
    def current(self) -> Transition:
        return self.history[-1]

    @property
    def state(self) -> str:
        return self.current.state.value

    @property
    def since(self) -> float:
        return self.current.at

    @property
    def worst(self) -> str:
        return self.current.worst

    @property
    def checks(self) -> list[str]:
        return list(self.current.checks)

    @property
    def job(self) -> int | None:
        return self.current.evidence.job

    @property
    def usable_at(self) -> float | None:
        return self.times.usable_at

    @property
    def complete_at(self) -> float | None:
        return self.times.complete_at

    def to_dict(self) -> dict[str, object]:
        evidence = self.current.evidence
        return {
            "volume": self.volume,
            "tenant": self.tenant,
            "user": self.user,
            "mailbox": self.mailbox,
            "path": self.path,
            "state": self.state,
            "since": self.since,
            "worst": self.worst,
            "checks": self.checks,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "usable_at": self.usable_at,
            "complete_at": self.complete_at,
            "times": self.times.kind.value,
            "times_reason": self.times.reason,
            "evidence": {
                "job": evidence.job,
                "run": evidence.run,
                "findings": list(evidence.findings),
                "detail": evidence.detail,
            },
            "history": [
                {"state": t.state.value, "at": t.at, "from": t.previous and t.previous.value,
                 "detail": t.evidence.detail}
                for t in self.history
            ],
        }


@dataclass(frozen=True)
class Filters:
    tenant: str | None = None
    volume: str | None = None
    user: str | None = None
    since: float | None = None
    state: str | None = None

    def sql(self) -> tuple[str, list[object]]:
        """The mailbox filters as SQL over ``m`` (the mailboxes table)."""
        where, args = "", []
        for column, value in (("m.tenant", self.tenant), ("m.volume", self.volume),
                              ("m.user_name", self.user)):
            if value is not None:
                where += f" AND {column} = ?"
                args.append(value)
        return where, args

    def wants(self, row: ReportRow) -> bool:
        return (self.since is None or row.last_seen >= self.since or row.since >= self.since) \
            and (self.state is None or row.state == self.state)


def build_report(queue: JobQueue, filters: Filters | None = None,
                 now: float | None = None) -> list[ReportRow]:
    """Rows for mailboxes with findings above info, open or resolved, most urgent first."""
    filters = filters or Filters()
    now = time.time() if now is None else now
    boxes, findings = _findings(queue, filters)
    jobs = _jobs(queue, filters)
    plan = queue_plan(queue, now)
    rows = [_row(boxes[path], facts, jobs.get(path, []), plan)
            for path, facts in findings.items()]
    wanted = [r for r in rows if r is not None and filters.wants(r)]
    return sorted(wanted, key=lambda r: (STATES.index(r.state), -rank(r.worst), r.first_seen))


def _row(box: dict, facts: list[FindingFact], jobs: list[JobFact],
         plan: QueuePlan) -> ReportRow | None:
    steps = history(facts, jobs)
    if not steps:
        return None
    current = steps[-1]
    job = next((j for j in jobs if j.id == current.evidence.job), None)
    times = back_times(current, box["volume"], plan, job.done_at() if job else None)
    return ReportRow(box["volume"], box["tenant"], box["user_name"], box["name"], box["path"],
                     tuple(steps), min(f.first_seen for f in facts),
                     max(f.last_seen for f in facts), times)


def _findings(queue: JobQueue, filters: Filters):
    where, args = filters.sql()
    rows = queue.db.all(
        "SELECT m.path, m.volume, m.tenant, m.user_name, m.name, f.id, f.check_id, f.severity, "
        "f.first_seen, f.last_seen, f.resolved, f.resolved_run FROM mailboxes m "
        f"JOIN findings f ON f.mailbox_id = m.id WHERE f.severity != 'info'{where} "
        "ORDER BY f.id",
        args,
    )
    boxes: dict[str, dict] = {}
    facts: dict[str, list[FindingFact]] = {}
    for r in rows:
        boxes.setdefault(r["path"], r)
        facts.setdefault(r["path"], []).append(FindingFact(
            r["id"], r["check_id"], r["severity"], r["first_seen"], r["last_seen"],
            r["resolved"], r["resolved_run"]))
    return boxes, facts


def _jobs(queue: JobQueue, filters: Filters):
    """Each mailbox's jobs with their events."""
    where, args = filters.sql()
    where = where.replace("m.", "j.")  # the jobs table has the same columns
    jobs = queue.db.all(
        "SELECT j.id, j.path, j.action, j.created, j.finished, j.last_error "
        f"FROM jobs j WHERE j.kind = '{JobKind.REPAIR}'{where} ORDER BY j.id",
        args,
    )
    events: dict[int, list[tuple[float, str, str]]] = {}
    for e in queue.db.all(
        f"SELECT e.job_id, e.at, e.state, e.detail FROM job_events e JOIN jobs j "
        f"ON j.id = e.job_id WHERE j.kind = '{JobKind.REPAIR}'{where} ORDER BY e.id",
        args,
    ):
        events.setdefault(e["job_id"], []).append((e["at"], e["state"], e["detail"] or ""))
    out: dict[str, list[JobFact]] = {}
    for j in jobs:
        out.setdefault(j["path"], []).append(JobFact(
            j["id"], j["action"], j["created"], j["finished"], j["last_error"],
            tuple(events.get(j["id"], ()))))
    return out


__all__ = ["STATES", "Filters", "MailboxState", "ReportRow", "build_report"]
