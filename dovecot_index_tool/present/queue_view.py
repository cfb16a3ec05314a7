"""Queue views: job tables, statistics, one job's history, and the plan."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dovecot_index_tool.jobqueue.plan import PolicyResult
from dovecot_index_tool.jobqueue.store import Job, JobState
from dovecot_index_tool.present.tables import print_table


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def render_jobs(jobs: list[Job], console: Console) -> None:
    table = Table(title=f"{len(jobs)} jobs")
    for col in (
        "id",
        "state",
        "volume",
        "user",
        "mailbox",
        "action",
        "severity",
        "vip",
        "tries",
        "last error",
    ):
        table.add_column(col)
    for j in jobs:
        table.add_row(
            str(j.id),
            j.state,
            escape(j.volume),
            escape(j.user),
            escape(j.mailbox),
            j.action,
            j.severity,
            "yes" if j.vip else "",
            f"{j.attempts}/{j.max_attempts}",
            escape(j.last_error or ""),
        )
    print_table(console, table)


def render_stats(stats: dict, console: Console) -> None:
    table = Table(title="jobs per volume")
    states = tuple(str(s) for s in JobState)
    for col in ("volume", *states, "limit", "paused"):
        table.add_column(col)
    for vol, counts in sorted(stats["per_volume"].items()):
        limit = stats["limits"].get(vol, {})
        table.add_row(
            escape(vol),
            *(str(counts.get(s, 0)) for s in states),
            str(limit.get("max_running", 1)),
            "yes" if limit.get("paused") else "",
        )
    print_table(console, table)
    console.print(
        f"oldest queued: {_when(stats['oldest_queued'])}; "
        f"done in the last hour: {stats['done_last_hour']}"
    )


def render_job(job: Job, events: list[dict], findings: list[dict], console: Console) -> None:
    console.print(
        f"[bold]job {job.id}[/] {job.state}: {job.action} of {escape(job.user)} "
        f"{escape(job.mailbox)} on {escape(job.volume)}"
    )
    console.print(
        f"path {escape(job.path)}; attempts {job.attempts}/{job.max_attempts}; "
        f"priority {job.priority:.0f}; last error {escape(job.last_error or '-')}"
    )
    for e in events:
        console.print(
            f"  {_when(e['at'])} {e['state']:<9} {escape(str(e['worker'] or ''))} "
            f"{escape(str(e['detail'] or ''))}"
        )
    for f in findings:
        console.print(f"  finding {f['check_id']} ({f['severity']}): {escape(f['message'])}")


def render_plan(results: list[PolicyResult], console: Console, detail: PolicyResult) -> None:
    table = Table(title="when will they be back (seconds from now)")
    for col in ("policy", "jobs", "mean", "p95", "last", "VIP mean", "VIP p95"):
        table.add_column(col)
    for r in results:
        m, v = r.metrics(), r.metrics(vip_only=True)
        table.add_row(
            r.policy,
            str(m["jobs"]),
            _duration(m["mean"]),
            _duration(m["p95"]),
            _duration(m["last"]),
            _duration(v["mean"]),
            _duration(v["p95"]),
        )
    print_table(console, table)
    order = Table(title=f"order under '{detail.policy}'")
    for col in ("volume", "user", "mailbox", "action", "starts in", "back in"):
        order.add_column(col)
    for p in sorted(detail.planned, key=lambda p: (p.job.volume, p.end)):
        order.add_row(
            escape(p.job.volume),
            escape(p.job.user),
            escape(p.job.mailbox),
            p.job.action,
            _duration(p.start),
            _duration(p.end),
        )
    print_table(console, order)


def held_back_note(held: int) -> str:
    """The words for affected mailboxes that got no job because they could not be checked."""
    return (f"; {held} affected mailbox(es) not queued: could not be checked at their last "
            "read (scan them again once they can be read)") if held else ""
