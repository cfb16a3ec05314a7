"""Rich rendering of repair plans and outcomes: a line per mailbox, then a summary."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.markup import escape

from dovecot_index_tool.jobqueue.store import Job
from dovecot_index_tool.repair.incident import NOT_PERFORMED, PlannedRepair
from dovecot_index_tool.repair.outcome import RepairOutcome

STYLE = {"repaired": "green", "healthy": "green", "failed": "bold red", "skipped": "yellow",
         "planned": "cyan"}


def render_plan(plan: PlannedRepair, console: Console) -> None:
    note = "" if plan.performed else f"  [yellow](skipped: {NOT_PERFORMED})[/]"
    console.print(
        f"[cyan]plan    [/] [bold]{escape(plan.location.name)}[/] ({plan.location.format}) "
        f"{escape(str(plan.location.index_dir))}: {plan.action.value}{note}"
    )
    console.print(f"          findings: {', '.join(plan.findings)}")


def render_job(job: Job, console: Console) -> None:
    console.print(
        f"[cyan]job {job.id:<5}[/] [bold]{escape(job.user)}[/] {escape(job.mailbox)} "
        f"({job.format}) {escape(job.path)}: {job.action}"
    )


JOB_STATES = {"done": "repaired", "healthy": "healthy", "queued": "failed", "dead": "failed",
              "failed": "failed"}


def job_outcome_state(job_state: str) -> str:
    """What a job's state after a run means for the run's summary and exit status:
    a job put back in the queue for a retry failed this time."""
    return JOB_STATES.get(job_state, "skipped")


def render_job_result(job: Job, state: str, detail: str, console: Console) -> None:
    shown = job_outcome_state(state)
    console.print(
        f"[{STYLE[shown]}]{shown:<8}[/] job {job.id} [bold]{escape(job.user)}[/] "
        f"{escape(job.mailbox)}: {job.action} ({state})  {escape(detail)}"
    )


def render_outcome(outcome: RepairOutcome, console: Console) -> None:
    state = outcome.state
    console.print(
        f"[{STYLE[state]}]{state:<8}[/] [bold]{escape(outcome.mailbox)}[/]: {outcome.action}"
        + (f"  {escape(outcome.reason)}" if outcome.reason else "")
    )
    if outcome.backup:
        console.print(f"          backup: {escape(outcome.backup)}")
    label = "lost" if state == "repaired" else "would lose"
    for lost in outcome.lost:
        console.print(f"          [red]{label}[/] {escape(lost)}")


def render_summary(states: list[str], console: Console) -> None:
    if not states:
        console.print("[green]nothing to repair[/]")
        return
    counts = Counter(states)
    parts = [f"[{STYLE[s]}]{counts[s]} {s}[/]" for s in STYLE if counts[s]]
    console.print(f"{len(states)} mailbox(es): " + ", ".join(parts))
