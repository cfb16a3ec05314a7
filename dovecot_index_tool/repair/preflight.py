"""What must hold before a repair backs up anything: Dovecot can be run, its
configuration parses, its version is known (2.3 and 2.4 are called apart), the mail
belongs to a user Dovecot may act as, and the user database answers when it is asked.

Without these checks a repair backs up, makes three doveadm attempts that all fail
the same way, prints doveadm's raw error three times and puts everything back; as a
queue job it would use up every retry. A ``SetupError`` says in one line what is
wrong and how to fix it, and the queue fails such a job at once instead of retrying.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from dovecot_index_tool.discovery import MailboxLocation, MailRoot
from dovecot_index_tool.jobqueue.worker import PermanentFailure
from dovecot_index_tool.repair.doveadm import (
    SAFE_PATH,
    DoveadmCommand,
    DoveadmError,
    DovecotSetup,
    LocationError,
    MailboxDoveadm,
)

CHECK_TIMEOUT = 30.0


class SetupError(PermanentFailure):
    """The repair cannot work in this setup; retrying will not help. The message
    names the fix."""


def doveadm_for(setup: DovecotSetup, root: MailRoot, location: MailboxLocation
                ) -> MailboxDoveadm:
    """doveadm for one mailbox; a ``--mail-location`` that cannot be filled in is a
    setup error."""
    try:
        return setup.for_mailbox(root, location)
    except LocationError as err:
        raise SetupError(str(err)) from None


def check_setup(doveadm: MailboxDoveadm) -> None:
    """Raise ``SetupError`` when the repair of ``doveadm``'s mailbox cannot work."""
    setup = doveadm.setup
    program = setup.doveadm.argv[0]
    if shutil.which(program, path=SAFE_PATH) is None:
        raise SetupError(f"cannot run {program}: not found; install dovecot-core "
                         "(or give the full path of doveadm)")
    if setup.config and not Path(setup.config).is_file():
        raise SetupError(f"--dovecot-config {setup.config} does not exist; give the "
                         "dovecot.conf doveadm should read")
    if problem := _config_problem(setup.doveadm, setup.config_inside):
        raise SetupError(f"Dovecot's configuration does not parse "
                         f"({setup.doveadm.host_text(problem)}); fix it "
                         "or give another with --dovecot-config")
    try:
        setup.version()
    except DoveadmError as err:
        raise SetupError(f"{err}; give --doveadm the command that runs doveadm") from None
    try:
        doveadm.command("mailbox status")  # 2.4 has no setting for some mail_location parts
    except LocationError as err:
        raise SetupError(str(err)) from None
    _check_owner(doveadm)
    if setup.auth:
        _check_userdb(doveadm)


@lru_cache(maxsize=16)
def _config_problem(command: DoveadmCommand, config: str | None) -> str | None:
    """doveadm's complaint about the configuration, or None (one question per run)."""
    cmd = [*command.argv] + (["-c", config] if config else []) + ["config", "-h", "mail_uid"]
    done = _run(cmd)
    if done is None:
        return "doveadm config did not answer"
    return None if done.returncode == 0 else _last_line(done.stderr)


def _check_owner(doveadm: MailboxDoveadm) -> None:
    owner = doveadm.owner
    if owner is None:
        raise SetupError(f"the mail of {doveadm.user} cannot be found at its location; "
                         "check the path (and --index-root/--control-root)")
    if owner[0] == 0:
        raise SetupError(f"the mail files of {doveadm.user} belong to root, and Dovecot "
                         "refuses mail access as root: chown them to the mail user")
    if os.geteuid() not in (0, owner[0]):
        raise SetupError(f"the mail of {doveadm.user} belongs to uid {owner[0]}: run the "
                         "repair as root or as that user")


def _check_userdb(doveadm: MailboxDoveadm) -> None:
    cmd, env = doveadm.command("user", tabular=False)
    cmd = [part for part in cmd if part != "-u"]  # ``doveadm user NAME``, not ``-u``
    done = _run(cmd, env)
    if done is None or done.returncode != 0:
        detail = _last_line(done.stderr) if done is not None else "no answer"
        raise SetupError(f"Dovecot's user database does not answer for {doveadm.user} "
                         f"({detail}): start Dovecot's auth service, or leave out --userdb")


def _run(cmd: list[str], env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, env=env or {"PATH": SAFE_PATH}, capture_output=True,
                              text=True, timeout=CHECK_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
