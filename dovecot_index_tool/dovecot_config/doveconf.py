"""Asking Dovecot for its effective settings: ``doveconf -c FILE -n``.

Dovecot itself reads the file (includes, ``!include_try``, defaults, 2.3 or 2.4
syntax), so the tool never guesses what a setting resolves to. ``-P`` is never passed:
without it doveconf hides passwords and keys, so nothing secret reaches this process.
The command is a prefix (``chroot /srv/dc24 doveconf``, ``docker exec dovecot
doveconf``) because Dovecot often lives in a chroot or a container.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dovecot_index_tool.dovecot_config.sections import ConfigSyntax, ParsedConfig, parse_doveconf
from dovecot_index_tool.errors import DovecotConfigUnavailable

DEFAULT_CONFIG = Path("/etc/dovecot/dovecot.conf")
TIMEOUT = 60.0


@dataclass(frozen=True)
class Doveconf:
    """How to run doveconf on which file; ``command`` is split as a shell would."""

    config: Path
    command: str = "doveconf"

    def run(self, *args: str) -> str:
        """doveconf's stdout; a missing binary, a failure or a hang is one clear error."""
        argv = [*shlex.split(self.command), "-c", str(self.config), *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                                  check=False)
        except FileNotFoundError:
            raise DovecotConfigUnavailable(
                self.config, f"{argv[0]} not found (install dovecot-core, or give --doveconf)"
            ) from None
        except subprocess.TimeoutExpired:
            raise DovecotConfigUnavailable(
                self.config, f"{self.command} gave no answer in {TIMEOUT:.0f}s") from None
        if done.returncode != 0:
            raise DovecotConfigUnavailable(self.config, _last_error(done.stderr, done.returncode))
        return done.stdout

    def setting(self, name: str) -> str:
        """One effective value (``doveconf -h``), defaults included."""
        return self.run("-h", name).strip()


def _last_error(stderr: str, status: int) -> str:
    """doveconf's own reason (its last Fatal/Error line), without its prefix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return f"doveconf exited with status {status}"
    return lines[-1].removeprefix("doveconf: ").removeprefix("Fatal: ")


def read_config(doveconf: Doveconf) -> ParsedConfig:
    """The non-default settings as Dovecot resolves them (``doveconf -n``)."""
    try:
        return parse_doveconf(doveconf.run("-n"))
    except ConfigSyntax as err:
        raise DovecotConfigUnavailable(doveconf.config, f"doveconf output: {err}") from None
