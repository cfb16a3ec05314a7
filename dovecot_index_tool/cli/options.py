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
    """``--format`` with these choices (the first is the default) and ``--json``, its
    synonym in every command, folded into one ``fmt`` argument. ``text`` is what a
    person reads; ``json`` one document on stdout."""

    def decorate(func):
        @click.option(
            "--format", "fmt", type=click.Choice(choices), default=choices[0],
            show_default=True, help="Output on stdout.",
        )
        @click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
        @functools.wraps(func)
        def wrapper(*args, fmt: str, as_json: bool, **kwargs):
            return func(*args, fmt="json" if as_json else fmt, **kwargs)

        return wrapper

    return decorate


def mailbox_path(required: bool = True):
    """PATH and the INDEX= / CONTROL= trees that go with it (``check``, ``repair``)."""

    def decorate(func):
        for option in reversed((
            click.argument("path", type=DIR, required=required),
            click.option("--index-root", type=DIR,
                         help="INDEX= files, if not beside the mail: a tree with one "
                         "directory per user (as for scan), or this user's directory."),
            click.option("--control-root", type=DIR,
                         help="CONTROL= files (uidlists): a tree of users, or this user's."),
        )):
            func = option(func)
        return func

    return decorate


dovecot_config_option = click.option(
    "--dovecot-config", type=click.Path(dir_okay=False, path_type=Path),
    envvar="DIT_DOVECOT_CONFIG",
    help="Dovecot's configuration (env DIT_DOVECOT_CONFIG), read through doveconf -n: "
    "where every user's mail, index and control files are. Default: "
    "/etc/dovecot/dovecot.conf, when it exists and no PATH is given.",
)
doveconf_option = click.option(
    "--doveconf", "doveconf_command", default="doveconf", show_default=True, metavar="CMD",
    help="How to run doveconf, e.g. 'chroot /srv/dc24 doveconf'.",
)
user_option = click.option(
    "--user", "user_name", metavar="NAME",
    help="This user of the Dovecot configuration's userdb (instead of PATH).",
)


def dovecot_config_options(func):
    """``--dovecot-config``, ``--doveconf`` and ``--user`` (``check``, ``repair``)."""
    for option in (user_option, doveconf_option, dovecot_config_option):
        func = option(func)
    return func


def configured_doveconf(config: Path | None, command: str, has_path: bool):
    """The configuration a command uses: the one given; else Dovecot's default file when
    it exists and the command was given no PATH (a PATH alone keeps meaning only what is
    on disk); else None."""
    from dovecot_index_tool.dovecot_config.doveconf import DEFAULT_CONFIG, Doveconf

    if config is None and not has_path and DEFAULT_CONFIG.is_file():
        config = DEFAULT_CONFIG
    return None if config is None else Doveconf(config, command)


def user_target(config: Path | None, command: str, user: str | None, path: Path | None,
                index_root: Path | None, control_root: Path | None):
    """PATH, INDEX= and CONTROL= directory for ``check``/``repair``: as given, or, with
    ``--user`` or an explicit ``--dovecot-config``, where the configuration says."""
    if user is None and config is None:
        if path is None:
            return path, index_root, control_root
        from dovecot_index_tool.user_dirs import user_dir

        return (path, user_dir("--index-root", index_root, path),
                user_dir("--control-root", control_root, path))
    doveconf = configured_doveconf(config, command, has_path=False)
    if doveconf is None:
        raise UsageProblem("--user needs --dovecot-config (there is no /etc/dovecot/dovecot.conf)")
    if index_root or control_root:
        raise UsageProblem("--index-root/--control-root: the Dovecot configuration already "
                           "says where this user's files are; give one or the other")
    if user is None and path is None:
        raise UsageProblem("--dovecot-config: give PATH or --user NAME")
    from dovecot_index_tool.dovecot_config.targets import user_paths

    return user_paths(doveconf, user, path)


def dovecot_options(func):
    """How Dovecot is reached, folded into one ``dovecot`` argument (a DovecotSetup):
    ``repair PATH`` and the queue workers (``repair`` without PATH) share them."""

    @dovecot_config_option
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
                    dovecot_config=dovecot_config, **kwargs)

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


def _window(_ctx, _param, value: str | None):
    from dovecot_index_tool.load.window import Window, WindowError

    if value is None:
        return None
    try:
        return Window.parse(value)
    except WindowError as err:
        raise click.BadParameter(str(err)) from None


def load_options(func):
    """``--max-load``, ``--max-io-pressure``, ``--window``, ``--io-idle`` (``scan`` and
    the queue workers), folded into one ``load`` argument (a LoadLimits)."""

    @click.option(
        "--max-load", type=click.FloatRange(min=0), metavar="L",
        help="Pause between mailboxes while the 1-minute load average per CPU is above L.",
    )
    @click.option(
        "--max-io-pressure", type=click.FloatRange(0, 100), metavar="PCT",
        help="Pause between mailboxes while /proc/pressure/io 'some avg10' is above PCT.",
    )
    @click.option(
        "--window", callback=_window, metavar="HH:MM-HH:MM",
        help="Start new mailboxes only inside these hours (local time; 22:00-06:00 "
        "runs past midnight); outside, stop after the current one and keep what was done.",
    )
    @click.option(
        "--io-idle", is_flag=True,
        help="Read in the idle I/O class (ionice -c 3) at the lowest CPU priority.",
    )
    @functools.wraps(func)
    def wrapper(*args, max_load, max_io_pressure, window, io_idle, **kwargs):
        from dovecot_index_tool.load.gate import LoadLimits

        limits = LoadLimits(max_load, max_io_pressure, window, io_idle)
        if io_idle:
            from dovecot_index_tool.load.priority import ensure_idle_or_reexec

            ensure_idle_or_reexec()
        return func(*args, load=limits, **kwargs)

    return wrapper


def log_options(func):
    """``--log-level`` and ``--log-json``: how log messages (and, with --log-json, the
    progress) reach stderr; folded into ``log_level`` and ``log_json``."""
    func = click.option(
        "--log-json", is_flag=True,
        help="Log messages and progress as JSON lines on stderr (as borg's --log-json).",
    )(func)
    return click.option(
        "--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
        default="warning", show_default=True, help="Log messages on stderr.",
    )(func)
