"""``queue``: the repair queue, its jobs, limits and plan."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from dovecot_index_tool.cli.app import main
from dovecot_index_tool.cli.options import db_option, format_option, open_queue, vip_option
from dovecot_index_tool.errors import NotFound, UsageProblem
from dovecot_index_tool.jobqueue.rechecks import JobKind
from dovecot_index_tool.jobqueue.store import JobState
from dovecot_index_tool.present.queue_view import held_back_note


@main.group()
def queue() -> None:
    """The repair queue: jobs from the ledger's findings, prioritized, per-volume limits."""


@queue.command("add")
@db_option
@vip_option
@click.option("--volume")
@click.option("--tenant")
@click.option("--user")
@click.option("--check", "check_id", help="Only mailboxes with this finding.")
@click.option("--mailboxes", type=click.File("r"), help="File of mailbox paths, one per line.")
def queue_add(db_path, vip, volume, tenant, user, check_id, mailboxes) -> None:
    """Turn open findings into jobs (one per mailbox); never duplicates an active job."""
    q = open_queue(db_path, vip)
    if volume is not None:
        _known_volume(q, volume)
    if check_id is not None:
        _known_check(check_id)
    paths = [line.strip() for line in mailboxes if line.strip()] if mailboxes else None
    results = q.enqueue(q.candidates(volume, tenant, user, check_id, paths))
    held = q.held_back(volume, tenant, user, check_id, paths)
    counts = {k: sum(1 for _, s in results if s == k) for k in ("new", "updated", "unchanged")}
    click.echo(
        f"{counts['new']} new jobs, {counts['updated']} widened or raised, "
        f"{counts['unchanged']} already queued" + held_back_note(len(held))
    )


@queue.command("list")
@db_option
@format_option("text", "json")
@click.option("--state", type=click.Choice([str(s) for s in JobState]))
@click.option("--volume")
@click.option("--tenant")
@click.option("--user")
@click.option("--kind", type=click.Choice([*(str(k) for k in JobKind), "all"]),
              default=str(JobKind.REPAIR), show_default=True,
              help="Repairs, the re-checks that follow them, or all.")
def queue_list(db_path, fmt, state, volume, tenant, user, kind) -> None:
    """Jobs, running first, then queued by priority."""
    from dovecot_index_tool.present.queue_view import render_jobs

    jobs = open_queue(db_path).jobs(state, volume, tenant, user,
                                    None if kind == "all" else kind)
    _render(fmt, {"jobs": [j.to_dict() for j in jobs]}, lambda c: render_jobs(jobs, c))


@queue.command("stats")
@db_option
@format_option("text", "json")
def queue_stats(db_path, fmt) -> None:
    """Counts per state and volume, limits, oldest queued job, recent throughput."""
    from dovecot_index_tool.present.queue_view import render_stats

    stats = open_queue(db_path).stats()
    _render(fmt, stats, lambda c: render_stats(stats, c))


@queue.command("show")
@click.argument("job_id", type=int)
@db_option
@format_option("text", "json")
def queue_show(job_id, db_path, fmt) -> None:
    """One job with its events and the findings that made it."""
    from dovecot_index_tool.present.queue_view import render_job

    q = open_queue(db_path)
    job = q.job(job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    events, findings = q.events(job_id), q.ledger.open_findings(job.path)
    _render(fmt, {"job": job.to_dict(), "events": events, "findings": findings},
            lambda c: render_job(job, events, findings, c))


@queue.command("limit")
@click.argument("volume")
@click.argument("max_running", type=click.IntRange(min=0))
@db_option
def queue_limit(volume, max_running, db_path) -> None:
    """At most MAX_RUNNING repairs at once on VOLUME (default 1)."""
    _set_limit(db_path, volume, max_running=max_running)


@queue.command("pause")
@click.argument("volume")
@db_option
def queue_pause(volume, db_path) -> None:
    """Start no new job on VOLUME (running ones finish)."""
    _set_limit(db_path, volume, paused=True)


@queue.command("resume")
@click.argument("volume")
@db_option
def queue_resume(volume, db_path) -> None:
    """Start jobs on VOLUME again."""
    _set_limit(db_path, volume, paused=False)


def _set_limit(db_path: str | None, volume: str, **limit) -> None:
    q = open_queue(db_path)
    q.set_limit(_known_volume(q, volume), **limit)


@queue.command("retry")
@click.argument("job_id", type=int, required=False)
@click.option("--dead", is_flag=True, help="Every dead job.")
@db_option
def queue_retry(job_id, dead, db_path) -> None:
    """Queue a dead, failed or cancelled job (or all dead ones) again."""
    if job_id is None and not dead:
        raise click.UsageError("give a JOB_ID or --dead")
    ids = open_queue(db_path).retry(job_id, dead)
    click.echo(f"{len(ids)} jobs queued again")
    if job_id is not None and not ids:
        raise NotFound(
            f"job {job_id} is not dead, failed or cancelled, or its mailbox has an active job"
        )


@queue.command("cancel")
@click.argument("job_id", type=int)
@db_option
def queue_cancel(job_id, db_path) -> None:
    """Cancel a queued or running job."""
    if not open_queue(db_path).cancel(job_id):
        raise NotFound(f"job {job_id} is not queued or running")


@queue.command("rechecks")
@db_option
@click.argument("delays", nargs=-1, metavar="[DELAY]...")
@click.option("--off", is_flag=True, help="Schedule no re-checks after repairs.")
def queue_rechecks(db_path, delays, off) -> None:
    """Show or set when a repaired mailbox is checked again, read-only (default 1h
    24h; DELAY like 90s, 30m, 1h, 2d). Kept in the ledger, for every worker."""
    from dovecot_index_tool.jobqueue import rechecks

    db = open_queue(db_path).db
    if off or delays:
        try:
            rechecks.set_delays(db, () if off else tuple(map(rechecks.parse_delay, delays)))
        except ValueError as err:
            raise UsageProblem(str(err)) from None
    now = rechecks.delays(db)
    click.echo("re-checks after a verified repair: "
               + (", ".join(f"{s / 3600:g} h" for s in now) if now else "none"))


@queue.command("plan")
@db_option
@format_option("text", "json")
@click.option(
    "--policy", type=click.Choice(["priority", "fifo", "volume-at-a-time"]),
    default="priority", show_default=True, help="The order to show in detail.",
)
def queue_plan(db_path, fmt, policy) -> None:
    """When each mailbox will be back, per volume, and the policies compared (mean and 95th
    percentile time-to-restore, overall and for VIPs). Repair times come from the cost
    model, calibrated on measured repairs (documented defaults before any)."""
    from dovecot_index_tool.jobqueue.plan import POLICIES, plan_document, simulate
    from dovecot_index_tool.present.queue_view import render_plan

    q = open_queue(db_path)
    jobs = q.jobs("queued") + q.jobs("running")
    costs, limits = q.cost_model(), q.limits()
    results = [simulate(jobs, p, costs, limits) for p in POLICIES]
    detail = next(r for r in results if r.policy == policy)
    _render(fmt, lambda: plan_document(results, detail, costs.calibrated),
            lambda c: render_plan(results, c, detail))


def _known_volume(q, volume: str) -> str:
    """A volume a scan recorded (as given, or as its absolute path)."""
    known = q.ledger.volumes()
    for candidate in (volume, str(Path(volume).absolute())):
        if candidate in known:
            return candidate
    raise UsageProblem(f"unknown volume {volume}: the ledger knows "
                       f"{', '.join(known) or 'none (scan first)'}")


def _known_check(check_id: str) -> None:
    from difflib import get_close_matches

    from dovecot_index_tool.check.catalogue import RULES

    if check_id not in RULES:
        near = get_close_matches(check_id, list(RULES), n=3)
        raise UsageProblem(f"unknown check {check_id}"
                           + (f" (did you mean {', '.join(near)}?)" if near else "")
                           + "; `dovecot-index-tool rules` lists them")


def _render(fmt: str, document, rich) -> None:
    """``--format json``: the document (or what a callable makes); else the text view."""
    from dovecot_index_tool.present.json_out import write_json

    if fmt == "json":
        write_json(document() if callable(document) else document, sys.stdout)
    else:
        rich(Console(highlight=False))
