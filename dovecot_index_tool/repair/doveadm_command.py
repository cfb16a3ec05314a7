"""Where ``doveadm`` lives: a command prefix and how paths differ there.

Dovecot often runs somewhere the tool does not: in a chroot (``chroot /srv/dc24
doveadm``) or a container (``docker exec -i mailcow-dovecot doveadm``). The tool
still reads the files on the host, so every path it gives doveadm is translated to
the path doveadm sees (``--path-map HOST=INSIDE``), and paths in what doveadm says
are translated back, so messages name files the operator can open.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ABSOLUTE = re.compile(r"(?<![\w.~-])/[^\s:,'\"()]*")  # a path inside a message


class CommandError(ValueError):
    """A ``--doveadm`` or ``--path-map`` value the tool cannot use."""


@dataclass(frozen=True)
class PathMap:
    """One directory as the host sees it and as doveadm sees it."""

    host: str
    inside: str

    @classmethod
    def parse(cls, text: str) -> PathMap:
        """``HOST=INSIDE``, both absolute; trailing slashes do not matter."""
        host, sep, inside = text.partition("=")
        if not sep or not host.startswith("/") or not inside.startswith("/"):
            raise CommandError(f"--path-map {text}: give HOST=INSIDE, two absolute paths")
        return cls(posixpath.normpath(host), posixpath.normpath(inside))


def _under(path: str, top: str) -> str | None:
    """The rest of ``path`` below directory ``top``, or None when it is not below."""
    if top == "/":
        return path.lstrip("/")
    if path == top:
        return ""
    return path[len(top) + 1:] if path.startswith(top + "/") else None


def _rebase(path: str, pairs: list[tuple[str, str]]) -> str:
    """``path`` moved from the first element of the deepest matching pair to the second."""
    for old, new in sorted(pairs, key=lambda pair: len(pair[0]), reverse=True):
        rest = _under(path, old)
        if rest is not None:
            return posixpath.join(new, rest) if rest else new
    return path


@dataclass(frozen=True)
class DoveadmCommand:
    """The argv that starts doveadm (its last word is doveadm itself) and the path maps."""

    argv: tuple[str, ...] = ("doveadm",)
    path_maps: tuple[PathMap, ...] = ()

    @classmethod
    def parse(cls, text: str | None, path_maps: tuple[str, ...] = ()) -> DoveadmCommand:
        """``--doveadm`` split as a shell would (quotes kept together), and ``--path-map``."""
        try:
            argv = tuple(shlex.split(text)) if text else cls.argv
        except ValueError as err:
            raise CommandError(f"--doveadm {text}: {err}") from None
        if not argv:
            raise CommandError("--doveadm is empty: give the command that runs doveadm")
        return cls(argv, tuple(PathMap.parse(item) for item in path_maps))

    @property
    def text(self) -> str:
        """The command as a shell line, for messages."""
        return shlex.join(self.argv)

    @property
    def wrapped(self) -> bool:
        """doveadm is started through another program (chroot, docker exec, ssh): the
        tool cannot switch that program to the mail owner, so Dovecot has to."""
        return len(self.argv) > 1

    def inside(self, path: str) -> str:
        """A host path as doveadm sees it."""
        return _rebase(path, [(m.host, m.inside) for m in self.path_maps])

    def on_host(self, path: str) -> str:
        """A path doveadm printed, as the host sees it."""
        return _rebase(path, [(m.inside, m.host) for m in self.path_maps])

    def host_text(self, text: str) -> str:
        """doveadm's message with every absolute path in it translated to the host's."""
        if not self.path_maps:
            return text
        return _ABSOLUTE.sub(lambda match: self.on_host(match.group(0)), text)

    def sibling(self, program: str) -> tuple[str, ...] | None:
        """The same prefix running ``program`` from doveadm's directory (``dovecot`` for
        its version), or None when the last word is not doveadm."""
        head, name = posixpath.split(self.argv[-1])
        if name != "doveadm":
            return None
        return (*self.argv[:-1], posixpath.join(head, program) if head else program)

