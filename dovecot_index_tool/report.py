"""Who is affected and when they will be back: one row per mailbox that has (or had)
damage, from the ledger and the queue, with the estimated time back from the plan."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from dovecot_index_tool.check.severity import rank
from dovecot_index_tool.check.severity import worst as worst_of
from dovecot_index_tool.jobqueue.plan import simulate
from dovecot_index_tool.jobqueue.store import JobQueue

STATES = ("affected", "queued", "repairing", "repaired", "failed")


@dataclass(frozen=True)
class ReportRow:
    volume: str
    tenant: str | None
    user: str
    mailbox: str
    path: str
    state: str
    worst: str | None
    checks: str
    first_seen: float
    last_seen: float
    job: int | None
    eta: float | None  # UNIX time the mailbox is expected back
    repaired: float | None = None  # when a scan last saw it without damage

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def build_report(
    queue: JobQueue,
    tenant: str | None = None,
    volume: str | None = None,
    user: str | None = None,
    since: float | None = None,
    state: str | None = None,
    now: float | None = None,
) -> list[ReportRow]:
    """Rows for mailboxes with findings above info, open or resolved since ``since``."""
    now = time.time() if now is None else now
    db = queue.db
    rows = db.all(
        "SELECT m.path, m.volume, m.tenant, m.user_name, m.name, f.severity, f.check_id, "
        "f.first_seen, f.last_seen, f.resolved FROM mailboxes m JOIN findings f "
        "ON f.mailbox_id = m.id WHERE f.severity != 'info'"
    )
    jobs = {j.path: j for j in sorted(queue.jobs(), key=lambda j: j.id)}  # newest last wins
    etas = _etas(queue, now)
    grouped: dict[str, list[dict]] = {}
    for r in rows:
        grouped.setdefault(r["path"], []).append(r)
    out = []
    for path, group in grouped.items():
        row = _row(path, group, jobs.get(path), etas)
        if _wanted(row, tenant, volume, user, since, state):
            out.append(row)
    return sorted(
        out,
        key=lambda r: (STATES.index(r.state), -rank(r.worst), r.first_seen),
    )


def _row(path: str, group: list[dict], job, etas: dict[int, float]) -> ReportRow:
    first = group[0]
    open_ = [r for r in group if r["resolved"] is None]
    worst = str(worst_of(r["severity"] for r in open_)) if open_ else None
    if open_:
        state = {
            "queued": "queued",
            "running": "repairing",
            "dead": "failed",
            "failed": "failed",
        }.get(job.state if job else "", "affected")
    else:
        state = "repaired"
    checks = ",".join(sorted({r["check_id"] for r in (open_ or group)}))
    return ReportRow(
        first["volume"],
        first["tenant"],
        first["user_name"],
        first["name"],
        path,
        state,
        worst,
        checks,
        min(r["first_seen"] for r in group),
        max(r["last_seen"] for r in group),
        job.id if job else None,
        etas.get(job.id) if job and state in ("queued", "repairing") else None,
    )


def _etas(queue: JobQueue, now: float) -> dict[int, float]:
    active = queue.jobs("queued") + queue.jobs("running")
    if not active:
        return {}
    plan = simulate(active, "priority", queue.cost_model(), queue.limits())
    return {p.job.id: now + p.end for p in plan.planned}


def _wanted(row: ReportRow, tenant, volume, user, since, state) -> bool:
    return (
        (tenant is None or row.tenant == tenant)
        and (volume is None or row.volume == volume)
        and (user is None or row.user == user)
        and (since is None or row.last_seen >= since)
        and (state is None or row.state == state)
    )
