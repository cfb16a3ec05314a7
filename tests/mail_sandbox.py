"""Copies of the fixture stores that the real Dovecot can open, and what Dovecot shows.

Dovecot refuses mail access as root and cannot reach pytest's 0700 temp dirs as the
mail user, so each sandbox lives under /tmp, belongs to the fixtures' mail user, and
has a doveadm config of its own (no daemon, no auth service: USER and HOME say who).

A 2.4 sandbox (``Sandbox.create(dovecot24=True)``) holds copies of the 2.4 fixtures
and is bind-mounted at the same path into the Dovecot 2.4 chroot, whose doveadm the
repair reaches as ``chroot DIR doveadm``.
"""

from __future__ import annotations

import multiprocessing
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import FIXTURES, FIXTURES_24, IN_CI, need_doveadm, need_dovecot24
from damage import Store, age_store, copy_store
from dovecot_index_tool.repair import rebuild as rebuild_module
from dovecot_index_tool.repair.doveadm import DoveadmCommand, DovecotSetup
from dovecot_index_tool.repair.mail_settings import MailLocation
from dovecot_index_tool.repair.reconcile import Verdict

MAIL_USER = "dovecot-fixtures"
MAIL_ID = 5000
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONFIG_24 = """dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
"""
CONFIG = """protocols =
listen =
ssl = no
base_dir = {tmp}/run
state_dir = {tmp}/state
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = /
}}
"""


def mail_user() -> tuple[int, int]:
    """The mail user's uid and gid, created when missing (needs root)."""
    need_doveadm()
    try:
        entry = pwd.getpwnam(MAIL_USER)
    except KeyError:
        if os.geteuid() != 0:
            _unavailable(f"mail user {MAIL_USER} missing and not root to create it")
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--uid", str(MAIL_ID), "--user-group",
             "--shell", "/usr/sbin/nologin", MAIL_USER],
            check=True, capture_output=True,
        )
        entry = pwd.getpwnam(MAIL_USER)
    if os.geteuid() != 0:
        _unavailable("Dovecot tests that repair run as root (files change owner)")
    return entry.pw_uid, entry.pw_gid


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Sandbox:
    base: Path
    conf: Path
    uid: int
    gid: int
    age: str = "fresh"  # a key of damage.STORE_AGES: how old the stores' recorded times are
    chroot: Path | None = None  # the Dovecot 2.4 chroot the sandbox is mounted into

    @classmethod
    def create(cls, age: str = "fresh", dovecot24: bool = False) -> Sandbox:
        chroot = need_dovecot24() if dovecot24 else None
        uid, gid = mail_user()
        base = Path(tempfile.mkdtemp(prefix="dit-sandbox-"))
        base.chmod(0o755)
        conf = base / "dovecot.conf"
        conf.write_text((CONFIG_24 if chroot else "") + CONFIG.format(tmp=base, uid=uid, gid=gid))
        box = cls(base, conf, uid, gid, age, chroot)
        if chroot is not None:
            box.mount_point().mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", str(base), str(box.mount_point())], check=True)
        return box

    def mount_point(self) -> Path:
        return self.chroot / str(self.base).lstrip("/")

    def remove(self) -> None:
        if self.chroot is not None:
            subprocess.run(["umount", str(self.mount_point())], check=False)
            self.mount_point().rmdir()
        shutil.rmtree(self.base, ignore_errors=True)

    def store(self, name: str, fixtures: Path | None = None) -> Store:
        fixtures = fixtures or (FIXTURES_24 if self.chroot else FIXTURES)
        copy = age_store(copy_store(fixtures, name, self.base / "stores"), self.age)
        self.give_to_mail_user(copy.base)
        return copy

    def give_to_mail_user(self, path: Path) -> None:
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)

    def command(self) -> DoveadmCommand:
        """doveadm as the repair reaches it: the host's, or the chroot's."""
        if self.chroot is None:
            return DoveadmCommand()
        return DoveadmCommand(("chroot", str(self.chroot), "doveadm"))

    def setup(self) -> DovecotSetup:
        return DovecotSetup(config=str(self.conf), doveadm=self.command())

    def doveadm(self, store: Store, *args: str, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess:
        if self.chroot is None:
            where = [f"mail_location={location(store)}"]
        else:  # 2.4: its own settings; USER and HOME say who when told to take them
            where = MailLocation.parse(location(store)).settings_24()
            args = (*args, "--no-userdb-lookup")
        cmd = [*self.command().argv, "-c", str(self.conf),
               *[arg for setting in where for arg in ("-o", setting)], *args]
        env = {"USER": store.home.name, "HOME": str(store.home), "PATH": SAFE_PATH}
        return subprocess.run(cmd, env=env, input=input, capture_output=True, text=True,
                              timeout=120, check=check)

    def fetch(self, store: Store, mailbox: str = "INBOX") -> dict[str, tuple[int, frozenset]]:
        """guid -> (uid, flags) as Dovecot shows them (``\\Recent`` left out)."""
        out = self.doveadm(store, "-f", "tab", "fetch", "uid guid flags", "mailbox", mailbox,
                           "all").stdout
        shown = {}
        for line in out.splitlines()[1:]:
            uid, guid, flags = [*line.split("\t"), "", ""][:3]
            shown[guid] = (int(uid), frozenset(flags.split()) - {"\\Recent"})
        return shown

    def fetch_untouched(self, store: Store, mailbox: str = "INBOX"
                        ) -> dict[str, tuple[int, frozenset]]:
        """What Dovecot shows of ``store`` now, asked of a throwaway copy: opening a
        mailbox lets Dovecot rewrite its files (and delete an old ``.log.2``), which
        would change the store a test is about to damage and repair."""
        return self.fetch(self.throwaway(store), mailbox)

    def throwaway(self, store: Store) -> Store:
        """A copy of ``store`` under the same sandbox, for Dovecot to change at will."""
        base = Path(tempfile.mkdtemp(prefix="throwaway-", dir=self.base))
        shutil.copytree(store.base / store.name, base / store.name, symlinks=True)
        copy = Store(base, store.info)
        self.give_to_mail_user(base)
        return copy

    def status(self, store: Store, field: str, mailbox: str = "INBOX") -> int:
        """One number of ``doveadm mailbox status`` (uidvalidity, highestmodseq ...)."""
        out = self.doveadm(store, "-f", "tab", "mailbox", "status", field, mailbox)
        return int(out.stdout.splitlines()[1].split("\t")[-1])


def location(store: Store) -> str:
    """The store's mail_location with every path made absolute."""
    return re.sub(r"(^[a-z]+:|:INDEX=|:CONTROL=)(?!/)", lambda m: m.group(1) + f"{store.base}/",
                  store.info["mail_location"])


def killed_half_way(run) -> int:
    """Run ``run()`` in a forked child that dies (exit status 9) right after a repair
    first moved damaged index files aside; the in-place attempt is made to fail so that
    such an attempt is reached. Returns the child's exit status."""

    def child() -> None:
        move_aside = rebuild_module._move_aside

        def die(job, names) -> None:
            move_aside(job, names)
            if names:
                os._exit(9)

        rebuild_module._move_aside = die
        rebuild_module.verify = lambda *args: Verdict(["made to fail"], 0)
        run()

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    return process.exitcode
