"""Command line: click commands wired to the modules that do the work."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from dovecot_index_tool import __version__
from dovecot_index_tool.exitcodes import CHECK_EXIT_HELP, EXIT_HELP, Exit, status_for
from dovecot_index_tool.format.errors import FormatError


def setup_logging(level: str) -> None:
    """Logs on stderr; worker processes log through the parent's handler."""
    import logging

    import multiprocessing_logging

    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(processName)s %(levelname)s %(message)s",
    )
    multiprocessing_logging.install_mp_handler()


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
    if as_json:
        write_json(doc, sys.stdout)
    else:
        render(doc, Console(highlight=False))
    sys.exit(Exit.PROBLEMS_LEFT if has_problems(doc) else Exit.OK)


DIR = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)


@main.command(epilog=CHECK_EXIT_HELP)
@click.argument("path", type=DIR)
@click.option(
    "--index-root", type=DIR, help="This user's INDEX= directory, if not beside the mail."
)
@click.option("--control-root", type=DIR, help="This user's CONTROL= directory (uidlists).")
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
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False)
        sys.exit(Exit.OPERATIONAL_ERROR)
    if as_json:
        write_json({"mailboxes": [r.to_dict() for r in reports]}, sys.stdout)
    else:
        render_summary(reports, console)
    sys.exit(status_for([(f.check, f.severity.value) for r in reports for f in r.findings]))


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
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ledger database (default: /var/lib/dovecot-index-tool/ledger.sqlite3 "
    "for root, else ~/.local/state/dovecot-index-tool/ledger.sqlite3).",
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
    help="Give up on one mailbox after this.",
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
    log_level: str,
) -> None:
    """Scan whole mailstore volumes in parallel, read-only, into the findings ledger.

    Every mailbox of every user is checked as `check` does, one mailbox per task in
    a pool of worker processes. Nothing in the mailstore is written, locked or
    renamed; a mailbox that changes while it is read is read again, and only
    damage seen on a stable read is reported. A missing, unreadable or empty
    volume is an error, never clean (an unmounted mount point looks empty).
    Results go to the ledger (runs, mailboxes, findings with first and last seen).
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
    db = db_path or default_path()
    options = ScanOptions(
        tuple(volumes),
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
            ledger = Ledger.open(db)
            try:
                result = Scanner(options, ledger, output, progress).run()
            finally:
                progress.close()
                ledger.close()
    except LedgerBusy as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False)
        sys.exit(Exit.OPERATIONAL_ERROR)
    output.finish(result)
    status = status_for(result.findings)
    if result.volume_errors:
        status |= Exit.OPERATIONAL_ERROR
    if result.status == "interrupted":
        status |= Exit.CANCELLED
    sys.exit(status)
