"""Command line: click commands wired to the modules that do the work."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import click
from rich.console import Console

from dovecot_index_tool import __version__
from dovecot_index_tool.exitcodes import (
    CHECK_EXIT_HELP,
    EXIT_HELP,
    REPAIR_EXIT_HELP,
    Exit,
    repair_status,
    status_for,
)
from dovecot_index_tool.format.errors import FormatError


def setup_logging(level: str) -> None:
    """Logs on stderr; worker processes log through the parent's handler."""
    import logging

    import multiprocessing_logging

    logging.getLogger().setLevel(level.upper())
    if _LOGGING_INSTALLED:
        return  # once per process: each install would wrap the handlers again
    logging.basicConfig(
        stream=sys.stderr, format="%(asctime)s %(processName)s %(levelname)s %(message)s"
    )
    multiprocessing_logging.install_mp_handler()
    _LOGGING_INSTALLED.append(True)


_LOGGING_INSTALLED: list[bool] = []


def run() -> None:
    """The console entry point: click's usage errors exit 16 (e2fsck's bit), Ctrl-C 32."""
    try:
        main(standalone_mode=False)
    except click.UsageError as err:
        err.show()
        sys.exit(Exit.USAGE)
    except click.ClickException as err:
        err.show()
        sys.exit(Exit.OPERATIONAL_ERROR)
    except (click.Abort, KeyboardInterrupt):
        Console(stderr=True).print("cancelled")
        sys.exit(Exit.CANCELLED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dovecot-index-tool")
def main() -> None:
    """Read-only integrity checks of Dovecot index files across mailstores."""


@main.command(epilog=EXIT_HELP)
@click.argument("path", type=click.Path(exists=True, dir_okay=True, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print one lossless JSON document.")
@click.option(
    "--no-replay",
    is_flag=True,
    help="Show dovecot.index as stored, without replaying its transaction log.",
)
@click.option("--uid", type=click.IntRange(min=1), help="Only the record with this UID.")
def dump(path: str, as_json: bool, no_replay: bool, uid: int | None) -> None:
    """Show what a Dovecot file holds, like `doveadm dump`, without opening it in Dovecot.

    PATH is a dovecot.index (or list, map, pvt, backup index), a .log or .log.2,
    a .cache, a dovecot-uidlist, a dovecot-keywords, a dbox file (u.N, m.N), or a
    mailbox's index directory. An index is shown with its log replayed, as Dovecot
    sees it when it opens the mailbox; nothing is written.
    """
    from dovecot_index_tool.dump import build_dump, has_problems
    from dovecot_index_tool.present.dump_view import render
    from dovecot_index_tool.present.json_out import write_json

    try:
        doc = build_dump(path, replay=not no_replay, uid=uid)
    except (FormatError, OSError) as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False)
        sys.exit(Exit.OPERATIONAL_ERROR)
    if uid is not None and doc.get("kind") == "index" and not doc.get("records"):
        Console(stderr=True).print(f"[bold red]error:[/] no message with UID {uid} in {path}")
        sys.exit(Exit.OPERATIONAL_ERROR)
    if as_json:
        write_json(doc, sys.stdout)
    else:
        render(doc, Console(highlight=False))
    sys.exit(Exit.PROBLEMS_LEFT if has_problems(doc) else Exit.OK)


DIR = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)
VIP = click.option(
    "--vip",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File of VIP users, domains or tenants, one per line: served first.",
)


def _db_option(func):
    return click.option(
        "--db",
        "db_path",
        type=str,
        help="Ledger database (default as for scan).",
    )(func)


def _mailbox_path(func, required: bool = True):
    """PATH and the INDEX= / CONTROL= trees that go with it (``check``, ``repair``)."""
    for option in reversed((
        click.argument("path", type=DIR, required=required),
        click.option(
            "--index-root", type=DIR, help="This user's INDEX= directory, if not beside the mail."
        ),
        click.option("--control-root", type=DIR, help="This user's CONTROL= directory (uidlists)."),
    )):
        func = option(func)
    return func


def _nothing_there(err: Exception) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False)
    sys.exit(Exit.OPERATIONAL_ERROR)


@main.command(epilog=CHECK_EXIT_HELP)
@_mailbox_path
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("-v", "--verbose", is_flag=True, help="Also show info findings (normal states).")
def check(
    path: Path, index_root: Path | None, control_root: Path | None, as_json: bool, verbose: bool
) -> None:
    """Check one mailbox, or every mailbox of one user, without changing anything.

    PATH is a mailbox's index or mail directory, a user's mail root (Maildir,
    sdbox, mdbox) or a user's home directory. Each finding names the damaged file,
    the byte offset and field, what was expected and found, what Dovecot will do
    about it, and the repair we recommend. `dovecot-index-tool rules` lists them.
    """
    from dovecot_index_tool.check.target import NothingToCheck, check_path
    from dovecot_index_tool.present.check_view import render_report, render_summary
    from dovecot_index_tool.present.json_out import write_json

    console = Console(highlight=False)
    try:
        reports = []
        for report in check_path(path, index_root, control_root):
            reports.append(report)
            if not as_json:
                render_report(report, console, verbose)
    except NothingToCheck as err:
        _nothing_there(err)
    if as_json:
        write_json({"mailboxes": [r.to_dict() for r in reports]}, sys.stdout)
    else:
        render_summary(reports, console)
    sys.exit(status_for([(f.check, f.severity.value) for r in reports for f in r.findings]))


@main.command(epilog=REPAIR_EXIT_HELP)
@lambda func: _mailbox_path(func, required=False)
@click.option("--plan", "plan_only", is_flag=True, help="Print what would be done; change nothing.")
@click.option(
    "--backup-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="/var/backups/dovecot-index-tool",
    show_default=True,
    envvar="DIT_BACKUP_DIR",
    help="Where every file is copied before it is changed (env DIT_BACKUP_DIR).",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for Dovecot's lock on a mailbox.",
)
@click.option(
    "-y", "--yes", is_flag=True, envvar="DIT_REPAIR_YES", help="Do not ask (env DIT_REPAIR_YES=1)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--format", "output_format", type=click.Choice(["rich", "json"]), default="rich",
    show_default=True, help="Output: rich text, or one JSON document (same as --json).",
)
@_db_option
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
@click.option(
    "--dovecot-config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="DIT_DOVECOT_CONFIG",
    help="doveadm -c FILE (env DIT_DOVECOT_CONFIG); default: Dovecot's own.",
)
@click.option(
    "--mail-location", "mail_location",
    help="mail_location template for doveadm, with {user}, {home}, {root}; "
    "default: where the mailbox was found (with INDEX=/CONTROL=/LAYOUT=fs).",
)
@click.option(
    "--userdb", is_flag=True,
    help="Ask Dovecot's auth service for the user (doveadm -u); default: USER and HOME.",
)
@click.option(
    "--reindex", is_flag=True, help="After a rebuild, warm the cache with doveadm index."
)
def repair(
    path: Path | None,
    index_root: Path | None,
    control_root: Path | None,
    plan_only: bool,
    backup_dir: Path,
    lock_timeout: float,
    yes: bool,
    as_json: bool,
    output_format: str,
    db_path: str | None,
    volume: str | None,
    batch: int,
    forever: bool,
    workers: int,
    dovecot_config: Path | None,
    mail_location: str | None,
    userdb: bool,
    reindex: bool,
) -> None:
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
    from dovecot_index_tool.check.target import NothingToCheck
    from dovecot_index_tool.present import repair_view
    from dovecot_index_tool.present.json_out import write_json
    from dovecot_index_tool.repair.doveadm import DovecotSetup
    from dovecot_index_tool.repair.incident import carry_out, plan_path, recover
    from dovecot_index_tool.repair.job_action import JobRepair

    as_json = as_json or output_format == "json"
    console = Console(highlight=False)
    dovecot = DovecotSetup(
        str(dovecot_config) if dovecot_config else None, mail_location, userdb
    )
    if path is None:
        action = JobRepair(backup_dir, lock_timeout, dovecot, reindex,
                           lambda path: _scanned_dirs(db_path, path))
        _repair_queue(db_path, volume, action, plan_only, yes, as_json, batch, forever, workers)
    if not plan_only:
        for directory in recover(path, backup_dir):  # a diagnostic: stderr, never the JSON
            Console(stderr=True, highlight=False).print(
                f"[yellow]undone[/] an unfinished repair, from {directory}")
    try:
        plans = list(plan_path(path, index_root, control_root))
    except NothingToCheck as err:
        _nothing_there(err)
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
    from dovecot_index_tool.ledger.store import Ledger, default_path

    ledger = Ledger.open(db_path or str(default_path()))
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
                  workers) -> None:
    """``repair`` without PATH: queue workers (they exit when done unless ``forever``)."""
    from dovecot_index_tool.jobqueue.worker import work_in_parallel
    from dovecot_index_tool.present import repair_view
    from dovecot_index_tool.present.json_out import write_json

    queued = _open_queue(db_path).jobs(state="queued", volume=volume)
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

    work_in_parallel(
        lambda: _open_queue(db_path), action, workers, batch=batch, volume=volume,
        forever=forever, on_result=report,
    )
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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
@click.option("--markdown", is_flag=True, help="Print the catalogue as a Markdown document.")
def rules(as_json: bool, markdown: bool) -> None:
    """List every check: stable ID, severity, what Dovecot does, the recommended repair."""
    from dovecot_index_tool.check.catalogue import NOT_CHECKED, RULES
    from dovecot_index_tool.present.json_out import write_json
    from dovecot_index_tool.present.rules_view import markdown_catalogue, render_rules

    if as_json:
        write_json(
            {
                "rules": [r.to_dict() for r in RULES.values()],
                "not_checked": [{"check": a, "why": b} for a, b in NOT_CHECKED],
            },
            sys.stdout,
        )
    elif markdown:
        sys.stdout.write(markdown_catalogue())
    else:
        render_rules(Console(highlight=False))


@main.command(epilog=CHECK_EXIT_HELP)
@click.argument(
    "volumes", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path)
)
@click.option(
    "--layout",
    default="{user}",
    show_default=True,
    help="Where users sit under a volume, e.g. '{domain}/{user}' or 'home/{user}'.",
)
@click.option("--index-root", type=DIR, help="Tree with one INDEX= directory per user.")
@click.option("--control-root", type=DIR, help="Tree with one CONTROL= directory per user.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: number of CPUs).",
)
@click.option(
    "--db",
    "db_path",
    type=str,
    help="Ledger: a SQLite file (default: /var/lib/dovecot-index-tool/ledger.sqlite3 for "
    "root, else ~/.local/state/dovecot-index-tool/ledger.sqlite3) or a postgresql:// URL.",
)
@click.option(
    "--incremental",
    is_flag=True,
    help="Do not re-read mailboxes whose files are unchanged since the last scan.",
)
@click.option(
    "--max-duration",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Stop starting new users after this time; the next run starts with the "
    "least recently scanned.",
)
@click.option(
    "--mailbox-timeout",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up on one mailbox after this (0: no limit).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rich", "json", "ndjson"]),
    default="rich",
    show_default=True,
    help="Output on stdout.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--silent-if-healthy",
    is_flag=True,
    help="Print nothing when everything was checked and nothing is above info "
    "(for cron, which mails whatever a job prints).",
)
@click.option("--enqueue", is_flag=True, help="Queue a repair job for every affected mailbox.")
@click.option(
    "--prometheus",
    "prometheus_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a node_exporter textfile (atomically) with the scan's figures.",
)
@VIP
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="Log messages on stderr.",
)
def scan(
    volumes: tuple[Path, ...],
    layout: str,
    index_root: Path | None,
    control_root: Path | None,
    jobs: int | None,
    db_path: Path | None,
    incremental: bool,
    max_duration: float | None,
    mailbox_timeout: float,
    fmt: str,
    quiet: bool,
    silent_if_healthy: bool,
    enqueue: bool,
    prometheus_file: Path | None,
    vip: Path | None,
    log_level: str,
) -> None:
    """Scan whole mailstore volumes in parallel, read-only, into the findings ledger.

    Every mailbox of every user is checked as `check` does, one mailbox per task in
    a pool of worker processes. Nothing in the mailstore is written, locked or
    renamed; a mailbox that changes while it is read is read again, and only
    damage seen on a stable read is reported. A missing, unreadable or empty
    volume is an error, never clean (an unmounted mount point looks empty).
    Results go to the ledger (runs, mailboxes, findings with first and last seen).

    What a scan cannot see: message bodies are not read (a cached size or MIME
    structure that contradicts the message is not found); ALT= storage, LAYOUT=index
    and non-default DIRNAME/MAILBOXDIR are not followed; mdbox refcounts are only
    compared for users whose mailboxes were all read again in this run.
    """
    import os

    from dovecot_index_tool.ledger.lock import LedgerBusy, LedgerLock
    from dovecot_index_tool.ledger.store import Ledger, default_path
    from dovecot_index_tool.present.progress import ScanProgress
    from dovecot_index_tool.present.scan_view import JsonOut, NdjsonOut, RichOut
    from dovecot_index_tool.scan.engine import Scanner, ScanOptions
    from dovecot_index_tool.volumes import parse_layout

    try:
        parse_layout(layout)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--layout") from None
    setup_logging(log_level)
    db = db_path or str(default_path())
    options = ScanOptions(
        tuple(Path(v).absolute() for v in volumes),
        layout,
        index_root,
        control_root,
        jobs or os.cpu_count() or 1,
        mailbox_timeout,
        incremental,
        max_duration,
    )
    out = {"json": JsonOut, "ndjson": NdjsonOut}.get(fmt)
    output = out(sys.stdout) if out else RichOut(Console(highlight=False))
    progress = ScanProgress(enabled=not quiet and sys.stderr.isatty())
    try:
        with LedgerLock(db):
            ledger = _open_ledger(Ledger, db)
            try:
                result = Scanner(options, ledger, output, progress).run()
                if enqueue:
                    from dovecot_index_tool.jobqueue.priority import VipList
                    from dovecot_index_tool.jobqueue.store import JobQueue

                    q = JobQueue(ledger, VipList.load(vip))
                    volumes_scanned = [str(v) for v in options.volumes]
                    results = [
                        r for v in volumes_scanned for r in q.enqueue(q.candidates(volume=v))
                    ]
                    new = sum(1 for _, state in results if state == "new")
                    Console(stderr=True).print(
                        f"queue: {new} new jobs, {len(results) - new} already queued or widened"
                    )
            finally:
                progress.close()
                ledger.close()
    except (LedgerBusy, OSError) as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False)
        sys.exit(Exit.OPERATIONAL_ERROR)
    healthy = not result.affected and not result.unchecked and not result.volume_errors
    if not (silent_if_healthy and healthy and result.status == "complete"):
        output.finish(result)
    if prometheus_file is not None:
        from dovecot_index_tool.present.prometheus import write_textfile

        write_textfile(prometheus_file, result)
    status = status_for(list(result.findings))
    if result.volume_errors:
        status |= Exit.OPERATIONAL_ERROR
    if result.status == "interrupted":
        status |= Exit.CANCELLED
    sys.exit(status)


def _open_ledger(ledger_class, db: str):
    """Open the ledger or stop with exit 8 before any work starts."""
    import sqlite3

    from dovecot_index_tool.ledger.db import is_url

    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError, RuntimeError)
    if is_url(db):
        import psycopg  # only for PostgreSQL ledgers: it costs memory in every process

        errors += (psycopg.Error,)
    try:
        return ledger_class.open(db)
    except errors as err:
        Console(stderr=True).print(f"[bold red]error:[/] ledger {db}: {err}", highlight=False)
        sys.exit(Exit.OPERATIONAL_ERROR)


def _format_option(func):
    return click.option(
        "--format", "fmt", type=click.Choice(["rich", "json"]), default="rich", show_default=True
    )(func)


def _open_queue(db_path: str | None, vip: Path | None = None):
    from dovecot_index_tool.jobqueue.priority import VipList
    from dovecot_index_tool.jobqueue.store import JobQueue
    from dovecot_index_tool.ledger.db import is_url
    from dovecot_index_tool.ledger.store import Ledger, default_path

    target = db_path or str(default_path())
    if not is_url(target) and not Path(target).exists():
        raise click.ClickException(f"no ledger at {target}: scan first, or check --db")

    return JobQueue(_open_ledger(Ledger, db_path or str(default_path())), VipList.load(vip))


@main.group()
def queue() -> None:
    """The repair queue: jobs from the ledger's findings, prioritized, per-volume limits."""


@queue.command("add")
@_db_option
@VIP
@click.option("--volume")
@click.option("--tenant")
@click.option("--user")
@click.option("--check", "check_id", help="Only mailboxes with this finding.")
@click.option("--mailboxes", type=click.File("r"), help="File of mailbox paths, one per line.")
def queue_add(db_path, vip, volume, tenant, user, check_id, mailboxes) -> None:
    """Turn open findings into jobs (one per mailbox); never duplicates an active job."""
    q = _open_queue(db_path, vip)
    paths = [line.strip() for line in mailboxes if line.strip()] if mailboxes else None
    results = q.enqueue(q.candidates(volume, tenant, user, check_id, paths))
    counts = {k: sum(1 for _, s in results if s == k) for k in ("new", "updated", "unchanged")}
    click.echo(
        f"{counts['new']} new jobs, {counts['updated']} widened or raised, "
        f"{counts['unchanged']} already queued"
    )


@queue.command("list")
@_db_option
@_format_option
@click.option(
    "--state", type=click.Choice(["queued", "running", "done", "failed", "dead", "cancelled"])
)
@click.option("--volume")
@click.option("--tenant")
@click.option("--user")
def queue_list(db_path, fmt, state, volume, tenant, user) -> None:
    """Jobs, running first, then queued by priority."""
    from dovecot_index_tool.present.json_out import write_json
    from dovecot_index_tool.present.queue_view import render_jobs

    jobs = _open_queue(db_path).jobs(state, volume, tenant, user)
    if fmt == "json":
        write_json({"jobs": [j.to_dict() for j in jobs]}, sys.stdout)
    else:
        render_jobs(jobs, Console(highlight=False))


@queue.command("stats")
@_db_option
@_format_option
def queue_stats(db_path, fmt) -> None:
    """Counts per state and volume, limits, oldest queued job, recent throughput."""
    from dovecot_index_tool.present.json_out import write_json
    from dovecot_index_tool.present.queue_view import render_stats

    stats = _open_queue(db_path).stats()
    if fmt == "json":
        write_json(stats, sys.stdout)
    else:
        render_stats(stats, Console(highlight=False))


@queue.command("show")
@click.argument("job_id", type=int)
@_db_option
@_format_option
def queue_show(job_id, db_path, fmt) -> None:
    """One job with its events and the findings that made it."""
    from dovecot_index_tool.present.json_out import write_json
    from dovecot_index_tool.present.queue_view import render_job

    q = _open_queue(db_path)
    job = q.job(job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id}")
    events, findings = q.events(job_id), q.ledger.open_findings(job.path)
    if fmt == "json":
        write_json({"job": job.to_dict(), "events": events, "findings": findings}, sys.stdout)
    else:
        render_job(job, events, findings, Console(highlight=False))


@queue.command("limit")
@click.argument("volume")
@click.argument("max_running", type=click.IntRange(min=0))
@_db_option
def queue_limit(volume, max_running, db_path) -> None:
    """At most MAX_RUNNING repairs at once on VOLUME (default 1)."""
    _open_queue(db_path).set_limit(volume, max_running=max_running)


@queue.command("pause")
@click.argument("volume")
@_db_option
def queue_pause(volume, db_path) -> None:
    """Start no new job on VOLUME (running ones finish)."""
    _open_queue(db_path).set_limit(volume, paused=True)


@queue.command("resume")
@click.argument("volume")
@_db_option
def queue_resume(volume, db_path) -> None:
    """Start jobs on VOLUME again."""
    _open_queue(db_path).set_limit(volume, paused=False)


@queue.command("retry")
@click.argument("job_id", type=int, required=False)
@click.option("--dead", is_flag=True, help="Every dead job.")
@_db_option
def queue_retry(job_id, dead, db_path) -> None:
    """Queue a dead, failed or cancelled job (or all dead ones) again."""
    if job_id is None and not dead:
        raise click.UsageError("give a JOB_ID or --dead")
    ids = _open_queue(db_path).retry(job_id, dead)
    click.echo(f"{len(ids)} jobs queued again")
    if job_id is not None and not ids:
        raise click.ClickException(
            f"job {job_id} is not dead, failed or cancelled, or its mailbox has an active job"
        )


@queue.command("cancel")
@click.argument("job_id", type=int)
@_db_option
def queue_cancel(job_id, db_path) -> None:
    """Cancel a queued or running job."""
    if not _open_queue(db_path).cancel(job_id):
        raise click.ClickException(f"job {job_id} is not queued or running")


@queue.command("plan")
@_db_option
@_format_option
@click.option(
    "--policy",
    type=click.Choice(["priority", "fifo", "volume-at-a-time"]),
    default="priority",
    show_default=True,
    help="The order to show in detail.",
)
def queue_plan(db_path, fmt, policy) -> None:
    """When each mailbox will be back, per volume, and the policies compared (mean and 95th
    percentile time-to-restore, overall and for VIPs). Repair times come from the cost
    model, calibrated on measured repairs (documented defaults before any)."""
    from dovecot_index_tool.jobqueue.plan import POLICIES, simulate
    from dovecot_index_tool.present.json_out import write_json
    from dovecot_index_tool.present.queue_view import render_plan

    q = _open_queue(db_path)
    jobs = q.jobs("queued") + q.jobs("running")
    costs, limits = q.cost_model(), q.limits()
    results = [simulate(jobs, p, costs, limits) for p in POLICIES]
    detail = next(r for r in results if r.policy == policy)
    if fmt == "json":
        write_json(
            {
                "calibrated_actions": sorted(costs.calibrated),
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
            },
            sys.stdout,
        )
    else:
        render_plan(results, Console(highlight=False), detail)


@main.command()
@_db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv", "html", "atom", "status"]),
    default="table",
    show_default=True,
)
@click.option("--tenant")
@click.option("--volume")
@click.option("--user")
@click.option(
    "--since",
    metavar="DATE",
    help="Only mailboxes seen damaged since DATE (YYYY-MM-DD or YYYY-MM-DDTHH:MM).",
)
@click.option(
    "--state", type=click.Choice(["affected", "queued", "repairing", "repaired", "failed"])
)
def report(db_path, fmt, tenant, volume, user, since, state) -> None:
    """Who is affected and when they will be back: one row per damaged mailbox, its
    state (affected, queued, repairing, repaired, failed), worst severity, first seen,
    and the time back estimated from the queue plan."""
    from datetime import datetime

    from dovecot_index_tool.present import report_view
    from dovecot_index_tool.report import build_report

    since_ts = None
    if since:
        try:
            since_ts = datetime.fromisoformat(since).timestamp()
        except ValueError:
            raise click.BadParameter(
                "use YYYY-MM-DD or YYYY-MM-DDTHH:MM", param_hint="--since"
            ) from None
    queue = _open_queue(db_path)
    if fmt in ("atom", "status"):
        from dovecot_index_tool.status import atom_feed, tenant_status

        if fmt == "atom":
            sys.stdout.write(atom_feed(queue, tenant).decode("utf-8") + "\n")
        else:
            from dovecot_index_tool.present.json_out import write_json as dump_json

            dump_json(tenant_status(queue, tenant), sys.stdout)
        return
    rows = build_report(queue, tenant, volume, user, since_ts, state)
    if fmt == "json":
        report_view.write_json(rows, sys.stdout)
    elif fmt == "csv":
        report_view.write_csv(rows, sys.stdout)
    elif fmt == "html":
        report_view.write_html(rows, sys.stdout)
    else:
        report_view.render_table(rows, Console(highlight=False))


@main.command("serve")
@_db_option
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="'TOKEN TENANT' per line; TENANT * = all.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8025, show_default=True)
def serve_command(db_path, tokens_file, host, port) -> None:
    """Serve the report page (/), the status JSON (/status.json) and the Atom feed
    (/feed.atom) read-only over HTTP; each token sees only its tenant's mailboxes."""
    from dovecot_index_tool.serve import load_tokens, serve

    _open_queue(db_path)  # fail now, not at the first request
    try:
        tokens = load_tokens(tokens_file)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--tokens") from None
    Console(stderr=True).print(f"serving on http://{host}:{port}/")
    serve(db_path or str(_default_db()), tokens, host, port)


def _default_db():
    from dovecot_index_tool.ledger.store import default_path

    return default_path()
