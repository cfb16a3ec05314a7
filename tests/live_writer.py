"""Real Dovecot writing to a mailstore in the background, for live-scan tests.

Copies the maildir and sdbox fixture users into a volume owned by the fixtures'
mail user and loops deliveries, flag changes, expunges and log rotations with
``doveadm`` until stopped.
"""

from __future__ import annotations

import contextlib
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from conftest import FIXTURES, need_doveadm
from mail_sandbox import CONFIG, MAIL_USER

TUNING = (
    "mail_index_rewrite_min_log_bytes=512",
    "mail_index_rewrite_max_log_bytes=2k",
    "mail_index_log_rotate_min_size=1k",
    "mail_index_log_rotate_max_size=4k",
    "mail_index_log_rotate_min_age=1s",
)
USERS = {"alice": ("maildir/alice", "maildir", "Maildir"), "bob": ("sdbox/bob", "sdbox", "sdbox")}


class LiveWriter:
    def __init__(self, tmp: Path) -> None:
        need_doveadm()
        try:
            entry = pwd.getpwnam(MAIL_USER)
        except KeyError:
            import pytest

            pytest.skip(f"mail user {MAIL_USER} missing: run scripts/make-fixtures once")
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        tmp = Path(tempfile.mkdtemp(prefix="live-"))  # pytest's tmp_path is 0700: use /tmp
        tmp.chmod(0o755)
        self.base = tmp
        self.volume = tmp / "live"
        self.conf = tmp / "dovecot.conf"
        self.conf.write_text(CONFIG.format(tmp=tmp, uid=self.uid, gid=self.gid))
        for user, (src, _, _) in USERS.items():
            shutil.copytree(FIXTURES / src, self.volume / user)
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(self.volume)], check=True)
        self.operations = 0
        self.errors: list[str] = []
        self._stop = threading.Event()

    def command(self, user: str, *args: str) -> tuple[list[str], dict[str, str]]:
        """The doveadm command line and environment that act on ``user``'s mailboxes."""
        _, fmt, root = USERS[user]
        home = self.volume / user
        opts = [x for t in TUNING for x in ("-o", t)]
        location = ["-o", f"mail_location={fmt}:{home}/{root}"]
        cmd = ["doveadm", "-c", str(self.conf), *location, *opts, *args]
        env = {"USER": user, "HOME": str(home), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
        return cmd, env

    def doveadm(self, user: str, *args: str) -> None:
        cmd, env = self.command(user, *args)
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            self.errors.append(done.stderr.decode(errors="replace"))
        self.operations += 1

    def _loop(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            for user in USERS:
                msg = f"From: x@example.org\nSubject: live {n}\n\nbody {n}\n".encode()
                self._save(user, msg)
                self.doveadm(user, "flags", "add", "\\Seen $Label1", "mailbox", "INBOX", "all")
                self.doveadm(user, "flags", "remove", "\\Seen", "mailbox", "INBOX", "1:3")
                if n % 3 == 0:
                    self.doveadm(user, "expunge", "mailbox", "INBOX", "1")
            time.sleep(0.05)

    def _save(self, user: str, message: bytes) -> None:
        cmd, env = self.command(user, "save", "-m", "INBOX")
        subprocess.run(cmd, env=env, input=message, capture_output=True, timeout=60, check=False)
        self.operations += 1

    @contextlib.contextmanager
    def running(self):
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        time.sleep(0.5)
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=60)
            shutil.rmtree(self.base, ignore_errors=True)
