"""Copies of the fixture stores that the real Dovecot can open, and what Dovecot shows.

Dovecot refuses mail access as root and cannot reach pytest's 0700 temp dirs as the
mail user, so each sandbox lives under /tmp, belongs to the fixtures' mail user, and
has a doveadm config of its own (no daemon, no auth service: USER and HOME say who).
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

from conftest import FIXTURES, IN_CI, need_doveadm
from damage import Store, age_store, copy_store
from dovecot_index_tool.repair import rebuild as rebuild_module
from dovecot_index_tool.repair.doveadm import DovecotSetup
from dovecot_index_tool.repair.reconcile import Verdict

MAIL_USER = "dovecot-fixtures"
MAIL_ID = 5000
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
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

    @classmethod
    def create(cls, age: str = "fresh") -> Sandbox:
        uid, gid = mail_user()
        base = Path(tempfile.mkdtemp(prefix="dit-sandbox-"))
        base.chmod(0o755)
        conf = base / "dovecot.conf"
        conf.write_text(CONFIG.format(tmp=base, uid=uid, gid=gid))
        return cls(base, conf, uid, gid, age)

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def store(self, name: str, fixtures: Path = FIXTURES) -> Store:
        copy = age_store(copy_store(fixtures, name, self.base / "stores"), self.age)
        self.give_to_mail_user(copy.base)
        return copy

    def give_to_mail_user(self, path: Path) -> None:
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)

    def setup(self) -> DovecotSetup:
        return DovecotSetup(config=str(self.conf))

    def doveadm(self, store: Store, *args: str, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess:
        cmd = ["doveadm", "-c", str(self.conf), "-o", f"mail_location={location(store)}", *args]
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
