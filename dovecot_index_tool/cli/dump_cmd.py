"""``dump``: what a Dovecot file holds, decoded like ``doveadm dump``."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from dovecot_index_tool.cli.app import main
from dovecot_index_tool.cli.options import format_option
from dovecot_index_tool.errors import NotFound, Unreadable
from dovecot_index_tool.exitcodes import EXIT_HELP, Exit
from dovecot_index_tool.format.errors import FormatError


@main.command(epilog=EXIT_HELP)
@click.argument("path", type=click.Path(exists=True, dir_okay=True, path_type=str))
@format_option("text", "json")
@click.option(
    "--no-replay",
    is_flag=True,
    help="Show dovecot.index as stored, without replaying its transaction log.",
)
@click.option("--uid", type=click.IntRange(min=1), help="Only the record with this UID.")
def dump(path: str, fmt: str, no_replay: bool, uid: int | None) -> None:
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
        raise Unreadable(str(err)) from None
    if uid is not None and doc.get("kind") == "index" and not doc.get("records"):
        raise NotFound(f"no message with UID {uid} in {path}")
    if fmt == "json":  # lossless: every field of the file
        write_json(doc, sys.stdout)
    else:
        render(doc, Console(highlight=False))
    sys.exit(Exit.PROBLEMS_LEFT if has_problems(doc) else Exit.OK)
