"""Calling Dovecot's ``doveadm`` on one mailbox, as the mail owner.

Repairs let Dovecot write its own files (``force-resync``, ``flags add``, ``mailbox
update``) rather than writing index files by hand. Without an auth service, Dovecot
learns the user from ``USER`` and ``HOME`` in the environment and the mail location
from ``-o mail_location=``, which is built from where discovery found the mailbox or
from a template (``{user}``, ``{home}``, ``{root}``). With an auth service (``auth``)
``doveadm -u USER`` asks it instead.

Dovecot refuses mail access as root and a file it creates belongs to whoever ran it,
so when this runs as root doveadm is started with the owner of the mailbox's files.
When doveadm runs through another program (``--doveadm 'chroot /srv/dc24 doveadm'``)
that program cannot be started as the owner, so Dovecot is told the owner instead
(``mail_uid``/``mail_gid``), and paths are translated to what doveadm sees there.

Dovecot 2.4 is called as 2.4 wants: its own mail settings instead of
``mail_location`` (``mail_settings.py``) and ``--no-userdb-lookup`` when USER and HOME
say who the user is.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dovecot_index_tool.discovery import MailboxFormat, MailboxLocation, MailRoot
from dovecot_index_tool.dovecot_config.variables import VariableError, expand
from dovecot_index_tool.repair.doveadm_command import SAFE_PATH, DoveadmCommand
from dovecot_index_tool.repair.dovecot_version import DovecotVersion, detect_version
from dovecot_index_tool.repair.mail_settings import LocationError, location_settings

DEFAULT_TIMEOUT = 600.0  # seconds; a storage rebuild of a big mdbox takes a while
IGNORED_FLAGS = {"\\Recent"}  # per-session, never stored


class DoveadmError(RuntimeError):
    """doveadm failed, hung or could not be started; the message says which and why.
    ``killed`` is set when it died of a signal (an assertion abort, for one)."""

    def __init__(self, message: str, killed: bool = False) -> None:
        super().__init__(message)
        self.killed = killed


@dataclass(frozen=True)
class DovecotSetup:
    """How to reach Dovecot: ``doveadm -c config``, the mail location, the user lookup,
    and the command doveadm runs through (with its path maps)."""

    config: str | None = None
    mail_location: str | None = None  # template; None: from what discovery found
    auth: bool = False  # ask the auth service (doveadm -u) instead of USER/HOME
    doveadm: DoveadmCommand = field(default_factory=DoveadmCommand)
    timeout: float = DEFAULT_TIMEOUT

    @property
    def config_inside(self) -> str | None:
        """``-c``'s path as doveadm sees it."""
        return self.doveadm.inside(self.config) if self.config else None

    def version(self) -> DovecotVersion:
        """The Dovecot version doveadm reaches (asked once per run)."""
        version = detect_version(self.doveadm, self.config_inside)
        if version is None:
            raise DoveadmError(f"cannot tell which Dovecot {self.doveadm.text} runs: neither "
                               "dovecot --version nor doveadm config answered")
        return version

    def for_mailbox(self, root: MailRoot, location: MailboxLocation) -> MailboxDoveadm:
        home = root.root.parent
        user = home.name
        return MailboxDoveadm(self, user, str(home), self._location(root, user), location.name,
                              _owner(location))

    def _location(self, root: MailRoot, user: str) -> str:
        if self.mail_location:
            return expand_location(self.mail_location, user, str(root.root.parent),
                                   str(root.root))
        return mail_location_of(root)


def expand_location(template: str, user: str, home: str, root: str) -> str:
    """``mail_location`` with Dovecot's variables filled in for one user, because
    doveadm does not expand ``-o`` values (a literal ``%h`` becomes a directory):
    Dovecot's variables (see ``dovecot_config.variables``), ``~`` at the start of each
    path of the location, and this tool's own ``{user}``, ``{home}``, ``{root}``."""
    homes = re.sub(r"(^|(?<=[:=]))~(?=/|$|:)", "%{home}", template)
    try:
        expanded = expand(homes, user, home)
    except VariableError as err:
        raise LocationError(f"--mail-location: {err} (use %u %n %d %h ~ or {{user}} {{home}} "
                            "{root})") from None
    for name, value in (("user", user), ("home", home), ("root", root)):
        expanded = expanded.replace("{" + name + "}", value)
    return expanded


def mail_location_of(root: MailRoot) -> str:
    """The ``mail_location`` that makes Dovecot open the store discovery found."""
    parts = [f"{root.format}:{root.root}"]
    if root.format == MailboxFormat.MAILDIR and root.layout == "fs":
        parts.append("LAYOUT=fs")
    if root.index_root != root.root:
        parts.append(f"INDEX={root.index_root}")
    if root.control_root != root.root:
        parts.append(f"CONTROL={root.control_root}")
    return ":".join(parts)


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    guid: str
    flags: frozenset[str]


@dataclass(frozen=True)
class MailboxStatus:
    messages: int
    uidnext: int
    uidvalidity: int
    guid: str
    highest_modseq: int


@dataclass(frozen=True)
class MailboxDoveadm:
    """doveadm bound to one user and one mailbox."""

    setup: DovecotSetup
    user: str
    home: str
    mail_location: str
    mailbox: str
    owner: tuple[int, int] | None

    def run(self, name: str, *args: str, tabular: bool = False) -> str:
        """Run ``doveadm [-f tab] NAME [-u USER] ARGS``; NAME may be two words."""
        cmd, env = self.command(name, *args, tabular=tabular)
        try:
            done = subprocess.run(
                cmd, env=env, capture_output=True, text=True,
                timeout=self.setup.timeout, check=False, **self._as_owner(),
            )
        except subprocess.TimeoutExpired as exc:
            raise DoveadmError(f"doveadm {name} took over {exc.timeout:.0f} s") from exc
        except OSError as exc:
            raise DoveadmError(f"cannot run {self.setup.doveadm.text}: "
                               f"{exc.strerror or exc}") from exc
        if done.returncode != 0:
            message = self.setup.doveadm.host_text(_failure(name, done))
            raise DoveadmError(message, killed=done.returncode < 0)
        return done.stdout

    def command(
        self, name: str, *args: str, tabular: bool = False
    ) -> tuple[list[str], dict[str, str]]:
        setup, doveadm = self.setup, self.setup.doveadm
        version = setup.version()
        cmd = list(doveadm.argv)
        if setup.config:
            cmd += ["-c", setup.config_inside]
        inside = doveadm.inside if doveadm.path_maps else None
        for setting in location_settings(self.mail_location, version, inside):
            cmd += ["-o", setting]
        if doveadm.wrapped and self.owner is not None:
            cmd += ["-o", f"mail_uid={self.owner[0]}", "-o", f"mail_gid={self.owner[1]}"]
        if tabular:
            cmd += ["-f", "tab"]
        cmd += name.split()
        env = {"PATH": SAFE_PATH}
        if setup.auth:
            cmd += ["-u", self.user]
        else:
            env |= {"USER": self.user, "HOME": doveadm.inside(self.home)}
            if version.settings_24:
                cmd += ["--no-userdb-lookup"]
        return cmd + list(args), env

    def _as_owner(self) -> dict[str, object]:
        if (os.geteuid() != 0 or self.owner is None or self.owner[0] == 0
                or self.setup.doveadm.wrapped):
            return {}
        uid, gid = self.owner
        return {"user": uid, "group": gid, "extra_groups": []}

    # --- what repairs ask of Dovecot ----------------------------------------------
    def fetch(self) -> list[FetchedMessage]:
        out = self.run("fetch", "uid guid flags", "mailbox", self.mailbox, "all", tabular=True)
        return [_fetched(line) for line in out.splitlines()[1:] if line.strip()]

    def status(self) -> MailboxStatus:
        fields = "messages uidnext uidvalidity guid highestmodseq"
        out = self.run("mailbox status", fields, self.mailbox, tabular=True)
        lines = out.splitlines()
        values = dict(zip(lines[0].split("\t"), lines[1].split("\t"), strict=False))
        return MailboxStatus(int(values["messages"]), int(values["uidnext"]),
                             int(values["uidvalidity"]), values["guid"],
                             int(values["highestmodseq"]))

    def force_resync(self) -> None:
        self.run("force-resync", self.mailbox)

    def reindex(self) -> None:
        self.run("index", self.mailbox)

    def add_flags(self, flags: Iterable[str], uids: Iterable[int]) -> None:
        self.run("flags add", " ".join(sorted(flags)), "mailbox", self.mailbox,
                 "uid", uid_set(uids))

    def remove_flags(self, flags: Iterable[str], uids: Iterable[int]) -> None:
        self.run("flags remove", " ".join(sorted(flags)), "mailbox", self.mailbox,
                 "uid", uid_set(uids))

    def update(self, *, guid: str | None = None, uid_validity: int | None = None,
               min_next_uid: int | None = None, min_modseq: int | None = None) -> None:
        args = []
        if guid:
            args += ["--mailbox-guid", guid]
        if uid_validity:
            args += ["--uid-validity", str(uid_validity)]
        if min_next_uid:
            args += ["--min-next-uid", str(min_next_uid)]
        if min_modseq:
            args += ["--min-highest-modseq", str(min_modseq)]
        if args:
            self.run("mailbox update", *args, self.mailbox)


def uid_set(uids: Iterable[int]) -> str:
    """``1:3,7,9:10``: an IMAP UID set, as short as the UIDs allow."""
    ranges: list[list[int]] = []
    for uid in sorted(set(uids)):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)


def _fetched(line: str) -> FetchedMessage:
    uid, guid, flags = [*line.split("\t"), "", ""][:3]
    names = frozenset(flags.split()) - IGNORED_FLAGS
    return FetchedMessage(int(uid), guid, names)


def _failure(command: str, done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    if done.returncode < 0:
        return f"doveadm {command} was killed by signal {-done.returncode}: " + " | ".join(
            lines[-2:]
        )
    detail = " | ".join(lines[-3:]) or "no message"
    return f"doveadm {command} exited with {done.returncode}: {detail}"


def _owner(location: MailboxLocation) -> tuple[int, int] | None:
    for path in (location.mail_dir, location.index_dir):
        if path is None:
            continue
        try:
            st = Path(path).stat()
        except OSError:
            continue
        return st.st_uid, st.st_gid
    return None
