"""``check``: one mailbox, or every mailbox of one user, checked read-only."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from dovecot_index_tool.check.findings import status_for
from dovecot_index_tool.cli.app import main
from dovecot_index_tool.cli.options import (
    dovecot_config_options,
    format_option,
    mailbox_path,
    user_target,
)
from dovecot_index_tool.exitcodes import CHECK_EXIT_HELP


@main.command(epilog=CHECK_EXIT_HELP)
@mailbox_path(required=False)
@dovecot_config_options
@format_option("text", "json")
@click.option("-v", "--verbose", is_flag=True, help="Also show info findings (normal states).")
def check(
    path: Path | None, index_root: Path | None, control_root: Path | None,
    dovecot_config: Path | None, doveconf_command: str, user_name: str | None,
    fmt: str, verbose: bool,
) -> None:
    """Check one mailbox, or every mailbox of one user, without changing anything.

    PATH is a mailbox's index or mail directory, a user's mail root (Maildir,
    sdbox, mdbox) or a user's home directory; or, with --user NAME, that user of
    the Dovecot configuration (--dovecot-config, default /etc/dovecot/dovecot.conf),
    which also says where a PATH's index and control files are. Each finding names the damaged file,
    the byte offset and field, what was expected and found, what Dovecot will do
    about it, and the repair we recommend. `dovecot-index-tool rules` lists them.
    """
    from dovecot_index_tool.check.target import check_path
    from dovecot_index_tool.present.check_view import render_report, render_summary
    from dovecot_index_tool.present.json_out import write_json

    path, index_root, control_root = user_target(
        dovecot_config, doveconf_command, user_name, path, index_root, control_root)
    if path is None:
        raise click.UsageError("give PATH, or --user NAME of the Dovecot configuration")
    console = Console(highlight=False)
    reports = []
    for report in check_path(path, index_root, control_root):
        reports.append(report)
        if fmt == "text":
            render_report(report, console, verbose)
    if fmt == "json":
        write_json({"mailboxes": [r.to_dict() for r in reports]}, sys.stdout)
    else:
        render_summary(reports, console)
    sys.exit(status_for([(f.check, f.severity.value) for r in reports for f in r.findings]))
