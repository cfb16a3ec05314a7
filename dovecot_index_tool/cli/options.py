"""Click options shared by several commands, defined once (as pip-tools does), and the
few helpers every command uses to reach the ledger."""

from __future__ import annotations

from pathlib import Path

import click

from dovecot_index_tool.errors import LedgerUnavailable, NoLedger, UsageProblem

DIR = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)

vip_option = click.option(
    "--vip",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File of VIP users, domains or tenants, one per line: served first.",
)

db_option = click.option(
    "--db",
    "db_path",
    type=str,
    help="Ledger: a SQLite file (default: /var/lib/dovecot-index-tool/ledger.sqlite3 for "
    "root, else ~/.local/state/dovecot-index-tool/ledger.sqlite3) or a postgresql:// URL.",
)


def format_option(*choices: str):
    """``--format`` with these choices; the first is the default."""
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default=choices[0], show_default=True,
        help="Output on stdout.",
    )


def mailbox_path(required: bool = True):
    """PATH and the INDEX= / CONTROL= trees that go with it (``check``, ``repair``)."""

    def decorate(func):
        for option in reversed((
            click.argument("path", type=DIR, required=required),
            click.option("--index-root", type=DIR,
                         help="This user's INDEX= directory, if not beside the mail."),
            click.option("--control-root", type=DIR,
                         help="This user's CONTROL= directory (uidlists)."),
        )):
            func = option(func)
        return func

    return decorate


def ledger_target(db_path: str | None) -> str:
    """The ledger a command works on: ``--db``, or the default path (whose directory is
    made when missing). A ``--db`` that is neither a path whose directory exists nor a
    ``postgresql://`` URL is a usage error, never a file by that name."""
    from dovecot_index_tool.ledger.db import is_url
    from dovecot_index_tool.ledger.store import default_path

    if db_path is None:
        return str(default_path())
    if is_url(db_path):
        return db_path
    if "://" in db_path:
        raise UsageProblem(f"--db {db_path}: give a SQLite file path or a postgresql:// URL")
    if not Path(db_path).parent.is_dir():
        raise UsageProblem(f"--db {db_path}: directory {Path(db_path).parent} does not exist")
    return db_path


def open_ledger(db: str):
    """Open the ledger, or stop with one line (exit 8) before any work starts."""
    import sqlite3

    from dovecot_index_tool.ledger.db import is_url
    from dovecot_index_tool.ledger.store import Ledger

    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError, RuntimeError)
    if is_url(db):
        import psycopg  # only for PostgreSQL ledgers: it costs memory in every process

        errors += (psycopg.Error,)
    try:
        return Ledger.open(db)
    except errors as err:
        raise LedgerUnavailable(db, err) from None


def open_queue(db_path: str | None, vip: Path | None = None):
    """The repair queue of an existing ledger."""
    from dovecot_index_tool.jobqueue.priority import VipList
    from dovecot_index_tool.jobqueue.store import JobQueue
    from dovecot_index_tool.ledger.db import is_url

    target = ledger_target(db_path)
    if not is_url(target) and not Path(target).exists():
        raise NoLedger(target)
    return JobQueue(open_ledger(target), VipList.load(vip))
