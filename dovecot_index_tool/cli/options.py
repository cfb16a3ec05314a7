"""Click options shared by several commands, defined once (as pip-tools does), and the
few helpers every command uses to reach the ledger."""

from __future__ import annotations

import functools
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


def dovecot_options(func):
    """How Dovecot is reached, folded into one ``dovecot`` argument (a DovecotSetup):
    ``repair PATH`` and the queue workers (``repair`` without PATH) share them."""

    @click.option(
        "--dovecot-config", type=click.Path(dir_okay=False, path_type=Path),
        envvar="DIT_DOVECOT_CONFIG",
        help="doveadm -c FILE (env DIT_DOVECOT_CONFIG); default: Dovecot's own.",
    )
    @click.option(
        "--mail-location", "mail_location",
        help="mail_location for doveadm, with Dovecot's %u %n %d %h ~ (or {user}, {home}, "
        "{root}); default: where the mailbox was found (with INDEX=/CONTROL=/LAYOUT=fs). "
        "Written as for 2.3; Dovecot 2.4 gets the same as its own settings.",
    )
    @click.option(
        "--userdb", is_flag=True,
        help="Ask Dovecot's auth service for the user (doveadm -u); default: USER and HOME.",
    )
    @click.option(
        "--doveadm", "doveadm_command", metavar="CMD", envvar="DIT_DOVEADM",
        help="The command that runs doveadm, for Dovecot in a chroot or container, e.g. "
        "'chroot /srv/dc24 doveadm' or 'docker exec -i mailcow-dovecot doveadm' "
        "(env DIT_DOVEADM); default: doveadm.",
    )
    @click.option(
        "--path-map", "path_maps", metavar="HOST=INSIDE", multiple=True,
        help="A directory on this host and where doveadm sees it (repeatable); paths "
        "given to doveadm are translated, paths it prints translated back.",
    )
    @functools.wraps(func)
    def wrapper(*args, dovecot_config, mail_location, userdb, doveadm_command, path_maps,
                **kwargs):
        from dovecot_index_tool.repair.doveadm import DovecotSetup
        from dovecot_index_tool.repair.doveadm_command import CommandError, DoveadmCommand

        try:
            doveadm = DoveadmCommand.parse(doveadm_command, path_maps)
        except CommandError as err:
            raise UsageProblem(str(err)) from None
        config = str(dovecot_config) if dovecot_config else None
        return func(*args, dovecot=DovecotSetup(config, mail_location, userdb, doveadm),
                    **kwargs)

    return wrapper


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
