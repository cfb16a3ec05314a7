"""``repair``: the mailboxes under PATH now, or the queued jobs without PATH."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import click
from rich.console import Console

from dovecot_index_tool.cli.app import main
from dovecot_index_tool.cli.options import (
    db_option,
    doveconf_option,
    dovecot_options,
    format_option,
    load_options,
    mailbox_path,
    open_queue,
    user_option,
    user_target,
)
from dovecot_index_tool.exitcodes import REPAIR_EXIT_HELP, repair_status


@main.command(epilog=REPAIR_EXIT_HELP)
@mailbox_path(required=False)
@click.option("--plan", "plan_only", is_flag=True, help="Print what would be done; change nothing.")
@click.option(
    "--backup-dir", type=click.Path(file_okay=False, path_type=Path),
    default="/var/backups/dovecot-index-tool", show_default=True, envvar="DIT_BACKUP_DIR",
    help="Where every file is copied before it is changed (env DIT_BACKUP_DIR).",
)
@click.option(
    "--lock-timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
    help="Seconds to wait for Dovecot's lock on a mailbox.",
)
@click.option(
    "-y", "--yes", is_flag=True, envvar="DIT_REPAIR_YES", help="Do not ask (env DIT_REPAIR_YES=1)."
)
@format_option("text", "json")
@db_option
@click.option("--volume", help="Without PATH: only this volume's jobs.")
@click.option(
    "--batch", type=click.IntRange(min=1), default=1, show_default=True,
    help="Without PATH: jobs claimed at a time.",
)
@click.option("--forever", is_flag=True, help="Without PATH: keep serving the queue.")
@click.option(
    "-j", "--jobs", "workers", type=click.IntRange(min=1), default=1, show_default=True,
    help="Without PATH: queue workers running side by side.",
)
@load_options
@dovecot_options
@user_option
@doveconf_option
@click.option(
    "--reindex", is_flag=True, help="After a rebuild, warm the cache with doveadm index."
)
def repair(path: Path | None, index_root: Path | None, control_root: Path | None,
           plan_only: bool, backup_dir: Path, lock_timeout: float, yes: bool, fmt: str,
           db_path: str | None, volume: str | None, batch: int,
           forever: bool, workers: int, load, dovecot, dovecot_config: Path | None,
           user_name: str | None, doveconf_command: str, reindex: bool) -> None:
    """Repair the damaged mailboxes under PATH now, for an incident, or, without
    PATH, work through the repair queue until it is empty.

    Each mailbox is checked and gets the least destructive repair that covers its
    findings: cache-purge (the cache file goes into the backup; Dovecot rebuilds
    it), index-rebuild, force-resync or, for a damaged mdbox map, storage-rebuild.
    The last three let Dovecot rebuild the index (doveadm force-resync, run as the
    mail owner), then put back the flags, keywords, UIDVALIDITY and next UID that the
    damaged index, its backup and its log still held. Every repair is verified (every
    message on disk visible with its flags, a clean rescan); one that does not verify
    is undone from its backup. Queued jobs are checked again before they are run; a
    job that cannot be repaired fails with the reason and is retried later.
    """
    from dovecot_index_tool.repair.job_action import JobRepair

    as_json = fmt == "json"
    if user_name is not None or path is not None:  # the user's own INDEX=/CONTROL= dirs
        config = dovecot_config if user_name else None  # else only doveadm's -c
        path, index_root, control_root = user_target(
            config, doveconf_command, user_name, path, index_root, control_root)
    if path is None:
        from dovecot_index_tool.jobqueue.rechecks import JobKind
        from dovecot_index_tool.jobqueue.worker import ByKind
        from dovecot_index_tool.scan.recheck import Recheck

        action = ByKind({
            JobKind.REPAIR: JobRepair(backup_dir, lock_timeout, dovecot, reindex,
                                      lambda path: _scanned_dirs(db_path, path)),
            JobKind.RECHECK: Recheck(lambda: open_queue(db_path).ledger),
        })
        _repair_queue(db_path, volume, action, plan_only, yes, as_json, batch, forever, workers,
                      load)
    _repair_path(path, index_root, control_root, plan_only, backup_dir, lock_timeout, yes,
                 as_json, dovecot, reindex)


def _repair_path(path, index_root, control_root, plan_only, backup_dir, lock_timeout, yes,
                 as_json, dovecot, reindex) -> None:
    """``repair PATH``: every mailbox under PATH, checked now."""
    from dovecot_index_tool.present import repair_view
    from dovecot_index_tool.present.json_out import write_json
    from dovecot_index_tool.repair.incident import carry_out, plan_path, recover

    console = Console(highlight=False)
    if not plan_only:
        for directory in recover(path, backup_dir):  # a diagnostic: stderr, never the JSON
            Console(stderr=True, highlight=False).print(
                f"[yellow]undone[/] an unfinished repair, from {directory}")
    plans = list(plan_path(path, index_root, control_root))
    if plan_only:
        _show_plans(plans, console, as_json)
        sys.exit(repair_status(["planned"] * len(plans)))
    performable = sum(p.performed for p in plans)
    if performable and not yes:
        for plan in plans:
            repair_view.render_plan(plan, Console(stderr=True, highlight=False))
        _confirm(performable, "mailbox(es)")
    outcomes = []
    for outcome in carry_out(plans, backup_dir, lock_timeout, dovecot, reindex):
        outcomes.append(outcome)
        if not as_json:
            repair_view.render_outcome(outcome, console)
    states = [o.state for o in outcomes]
    if as_json:
        write_json({"outcomes": [o.to_dict() for o in outcomes]}, sys.stdout)
    else:
        repair_view.render_summary(states, console)
    sys.exit(repair_status(states))


def _scanned_dirs(db_path: str | None, path: str) -> tuple[str | None, str | None]:
    """Where the scan found a mailbox's mail and control files (INDEX=/CONTROL= stores)."""
    from dovecot_index_tool.cli.options import ledger_target
    from dovecot_index_tool.ledger.store import Ledger

    ledger = Ledger.open(ledger_target(db_path))
    try:
        return ledger.mailbox_dirs(path)
    finally:
        ledger.close()


def _confirm(count: int, what: str) -> None:
    """Ask once, e2fsck-style but stricter: the number typed must match."""
    answer = click.prompt(f"Type {count} to repair {count} {what}", err=True, default="")
    if answer.strip() != str(count):
        raise click.Abort()


def _repair_queue(db_path, volume, action, plan_only, yes, as_json, batch, forever,
                  workers, load) -> None:
    """``repair`` without PATH: queue workers (they exit when done unless ``forever``)."""
    from dovecot_index_tool.jobqueue.worker import work_in_parallel
    from dovecot_index_tool.present import repair_view
    from dovecot_index_tool.present.json_out import write_json

    queued = open_queue(db_path).jobs(state="queued", volume=volume)
    if plan_only:
        if as_json:
            write_json({"jobs": [j.to_dict() for j in queued]}, sys.stdout)
        else:
            for job in queued:
                repair_view.render_job(job, Console(highlight=False))
        sys.exit(repair_status(["planned"] * len(queued)))
    if queued and not yes and not forever:
        for job in queued:
            repair_view.render_job(job, Console(stderr=True, highlight=False))
        _confirm(len(queued), "queued job(s)")
    progress = Console(highlight=False, stderr=as_json)
    lock = threading.Lock()
    results = []

    def report(job, state: str, detail: str) -> None:
        with lock:
            results.append({"job": job.id, "user": job.user, "mailbox": job.mailbox,
                            "action": job.action, "state": state, "detail": detail})
            repair_view.render_job_result(job, state, detail, progress)

    summary = work_in_parallel(
        lambda: open_queue(db_path), action, workers, batch=batch, volume=volume,
        forever=forever, on_result=report, load=load,
    )
    if summary.stopped or summary.paused:  # a diagnostic: stderr, never the JSON
        Console(stderr=True, highlight=False).print(
            f"queue workers paused {sum(summary.paused.values()):.0f} s"
            + (f"; stopped: {summary.stopped}" if summary.stopped else ""))
    states = [repair_view.job_outcome_state(r["state"]) for r in results]
    if as_json:
        write_json({"results": results}, sys.stdout)
    else:
        repair_view.render_summary(states, progress)
    sys.exit(repair_status(states))


def _show_plans(plans, console: Console, as_json: bool) -> None:
    from dovecot_index_tool.present import repair_view
    from dovecot_index_tool.present.json_out import write_json

    if as_json:
        write_json({"plans": [p.to_dict() for p in plans]}, sys.stdout)
        return
    for plan in plans:
        repair_view.render_plan(plan, console)
    repair_view.render_summary(["planned"] * len(plans), console)
