"""Which Dovecot a ``doveadm`` command reaches, because 2.3 and 2.4 are called apart.

2.4 renamed the mail settings (``mail_location`` became ``mail_driver``,
``mail_path``, ``mail_index_path`` ...) and its mail commands refuse to run without
``-u``, ``-F``, ``-A`` or ``--no-userdb-lookup``. doveadm itself has no version
option, so ``dovecot --version`` is asked through the same prefix (the container or
chroot doveadm runs in); a doveadm that is not named doveadm (a wrapper script) is
asked for its configuration instead (``doveadm config -n``), whose first line names
the version.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from dovecot_index_tool.repair.doveadm_command import SAFE_PATH, DoveadmCommand

VERSION_TIMEOUT = 30.0
_VERSION = re.compile(r"^(?:# )?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True, order=True)
class DovecotVersion:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> DovecotVersion | None:
        """``2.4.1-4 (7d8c0e5759)``, ``2.3.19.1 (9b53102964)`` or doveconf's ``# 2.3.19.1
        (...): /etc/dovecot/dovecot.conf``; None for anything else."""
        match = _VERSION.match(text.strip())
        return cls(*map(int, match.groups())) if match else None

    @property
    def settings_24(self) -> bool:
        """Speaks 2.4's settings and doveadm options."""
        return (self.major, self.minor) >= (2, 4)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@lru_cache(maxsize=16)
def detect_version(command: DoveadmCommand, config: str | None) -> DovecotVersion | None:
    """The version of the Dovecot ``command`` runs (``config`` a path as doveadm sees
    it), or None when neither question is answered; asked once per run."""
    questions = []
    if dovecot := command.sibling("dovecot"):
        questions.append([*dovecot, "--version"])
    questions.append([*command.argv, *(["-c", config] if config else []), "config", "-n"])
    for argv in questions:
        try:
            done = subprocess.run(argv, env={"PATH": SAFE_PATH}, capture_output=True,
                                  text=True, errors="replace", timeout=VERSION_TIMEOUT,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        # doveconf prints its header before it checks the settings (some of which only
        # the daemon needs), so the first line counts even when it then exits non-zero.
        if version := DovecotVersion.parse(done.stdout.partition("\n")[0]):
            return version
    return None
