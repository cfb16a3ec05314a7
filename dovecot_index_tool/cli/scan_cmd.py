"""``scan``: whole volumes, in parallel, read-only, into the ledger."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from dovecot_index_tool.cli.app import main
from dovecot_index_tool.cli.logs import setup_logging, workers_finished
from dovecot_index_tool.cli.options import (
    DIR,
    configured_doveconf,
    db_option,
    doveconf_option,
    dovecot_config_option,
    format_option,
    ledger_target,
    load_options,
    log_options,
    open_ledger,
    vip_option,
)
from dovecot_index_tool.errors import ToolError, UsageProblem
from dovecot_index_tool.exitcodes import CHECK_EXIT_HELP


@main.command(epilog=CHECK_EXIT_HELP)
@click.argument(
    "volumes", nargs=-1, required=False, type=click.Path(file_okay=False, path_type=Path)
)
@dovecot_config_option
@doveconf_option
@click.option(
    "--layout", default="{user}", show_default=True,
    help="Where users sit under a volume, e.g. '{domain}/{user}' or 'home/{user}'.",
)
@click.option("--index-root", type=DIR, help="Tree with one INDEX= directory per user.")
@click.option("--control-root", type=DIR, help="Tree with one CONTROL= directory per user.")
@click.option(
    "-j", "--jobs", type=click.IntRange(min=1), default=None,
    help="Worker processes (default: number of CPUs).",
)
@db_option
@click.option(
    "--incremental", is_flag=True,
    help="Do not re-read mailboxes whose files are unchanged since the last scan.",
)
@click.option(
    "--max-duration", type=click.FloatRange(min=0), metavar="SECONDS",
    help="Stop starting new users after this time; the next run starts with the "
    "least recently scanned.",
)
@click.option(
    "--mailbox-timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
    metavar="SECONDS", help="Give up on one mailbox after this (0: no limit).",
)
@load_options
@click.option(
    "--per-volume", type=click.IntRange(min=1), metavar="N",
    help="At most N mailboxes of one volume read at once (volumes are scanned in turn).",
)
@format_option("text", "json", "ndjson")
@click.option("-q", "--quiet", is_flag=True, help="No progress.")
@click.option(
    "--silent-if-healthy", is_flag=True,
    help="Print nothing when everything was checked and nothing is above info "
    "(for cron, which mails whatever a job prints).",
)
@click.option("--enqueue", is_flag=True, help="Queue a repair job for every affected mailbox.")
@click.option(
    "--prometheus", "prometheus_file", type=click.Path(dir_okay=False, path_type=Path),
    help="Write a node_exporter textfile (atomically) with the scan's figures.",
)
@vip_option
@log_options
def scan(volumes: tuple[Path, ...], dovecot_config: Path | None, doveconf_command: str,
         layout: str, index_root: Path | None,
         control_root: Path | None, jobs: int | None, db_path: str | None, incremental: bool,
         max_duration: float | None, mailbox_timeout: float, load, per_volume: int | None,
         fmt: str, quiet: bool,
         silent_if_healthy: bool, enqueue: bool, prometheus_file: Path | None,
         vip: Path | None, log_level: str, log_json: bool) -> None:
    """Scan whole mailstore volumes in parallel, read-only, into the findings ledger.

    Every mailbox of every user is checked as `check` does, one mailbox per task in
    a pool of worker processes. Nothing in the mailstore is written, locked or
    renamed; a mailbox that changes while it is read is read again, and only
    damage seen on a stable read is reported. A missing, unreadable or empty
    volume is an error, never clean (an unmounted mount point looks empty).
    Results go to the ledger (runs, mailboxes, findings with first and last seen).

    With --dovecot-config (default /etc/dovecot/dovecot.conf when no VOLUME is
    given) every user of its passwd-file userdb is scanned where the configuration
    puts their mail; a user's volume is the mount point of their mail, or the given
    VOLUME it is under (users elsewhere are left out). An SQL or LDAP userdb cannot
    be listed: give VOLUMEs and --layout then.

    What a scan cannot see: message bodies are not read (a cached size or MIME
    structure that contradicts the message is not found); ALT= storage, LAYOUT=index
    and non-default DIRNAME/MAILBOXDIR are not followed; mdbox refcounts are only
    compared for users whose mailboxes were all read again in this run.
    """
    from dovecot_index_tool.ledger.lock import LedgerLock
    from dovecot_index_tool.present.progress import ScanProgress
    from dovecot_index_tool.present.scan_view import output_for
    from dovecot_index_tool.scan.engine import Scanner, ScanOptions
    from dovecot_index_tool.user_dirs import require_tree
    from dovecot_index_tool.volumes import parse_layout

    try:
        parse_layout(layout)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--layout") from None
    require_tree("--index-root", index_root)
    require_tree("--control-root", control_root)
    setup_logging(log_level, log_json)
    db = ledger_target(db_path)
    given = tuple(Path(v).absolute() for v in volumes)
    options = ScanOptions(
        given, layout, index_root, control_root,
        jobs or os.cpu_count() or 1, mailbox_timeout, incremental, max_duration,
        load=load, per_volume=per_volume,
    )
    doveconf = configured_doveconf(dovecot_config, doveconf_command, has_path=bool(volumes))
    if doveconf is not None:
        options = _configured(options, doveconf)
    elif not volumes:
        raise click.UsageError("give VOLUME..., or --dovecot-config FILE")
    output = output_for(fmt, sys.stdout, Console(highlight=False))
    progress = ScanProgress(enabled=not quiet and sys.stderr.isatty(),
                            json_stream=sys.stderr if log_json and not quiet else None)
    try:
        with LedgerLock(db):
            ledger = open_ledger(db)
            try:
                result = Scanner(options, ledger, output, progress).run()
                workers_finished()
                result.recurred = _recurred(ledger, options)
                if enqueue:
                    _enqueue(ledger, options, vip)
            finally:
                progress.close()
                ledger.close()
    except OSError as err:
        raise ToolError(str(err)) from None
    if not (silent_if_healthy and result.healthy and result.status == "complete"):
        output.finish(result)
    if prometheus_file is not None:
        from dovecot_index_tool.present.prometheus import write_textfile

        write_textfile(prometheus_file, result)
    sys.exit(result.exit_status)


def _configured(options, doveconf):
    """The users and volumes of Dovecot's configuration, which then says where each
    user's files are: --layout, --index-root and --control-root would contradict it."""
    from dataclasses import replace

    from dovecot_index_tool.dovecot_config.targets import scan_users, stores_of

    layout_given = click.get_current_context().get_parameter_source("layout")
    if options.index_root or options.control_root or (
            layout_given is not click.core.ParameterSource.DEFAULT):
        raise UsageProblem("--dovecot-config says where every user's files are: "
                           "leave out --layout, --index-root and --control-root")
    volumes, users = scan_users(stores_of(doveconf), options.volumes)
    return replace(options, volumes=volumes, users=users, dovecot_config=str(doveconf.config))


def _enqueue(ledger, options, vip: Path | None) -> None:
    from dovecot_index_tool.jobqueue.priority import VipList
    from dovecot_index_tool.jobqueue.store import JobQueue
    from dovecot_index_tool.present.queue_view import held_back_note

    new, other, held = JobQueue(ledger, VipList.load(vip)).enqueue_volumes(
        [str(v) for v in options.volumes])
    click.echo(f"queue: {new} new jobs, {other} already queued or widened"
               + held_back_note(held), err=True)


def _recurred(ledger, options) -> dict[str, int]:
    """The scanned volumes' recurrences, counted as ``incident`` counts them."""
    from dovecot_index_tool.incidents import recurred_mailboxes

    return recurred_mailboxes(ledger, [str(v) for v in options.volumes])
