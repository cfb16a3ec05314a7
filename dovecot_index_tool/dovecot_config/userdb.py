"""The users of a passwd-file userdb: name, home and per-user fields.

A passwd-file line is ``user:password:uid:gid:gecos:home:shell:extra fields``; the
extra fields are ``key=value`` words (``userdb_mail=...`` in 2.3,
``userdb_mail_path=...`` in 2.4, the ``userdb_`` prefix optional in a userdb). The
userdb's ``default_fields`` (2.3) or ``fields { }`` (2.4) come before a user's own,
``override_fields`` after. Only a file the tool can read is enumerated: an SQL or LDAP
userdb, or a path with variables in it, cannot be listed without Dovecot's auth
service, and saying so is better than scanning nobody.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dovecot_index_tool.dovecot_config.sections import Section
from dovecot_index_tool.errors import DovecotConfigUnavailable, UsersNotListable

PASSWD_FILE = "passwd-file"
HOME_COLUMN = 5


@dataclass(frozen=True)
class UserEntry:
    """One user of the userdb; ``fields`` keys have no ``userdb_`` prefix."""

    user: str
    home: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PasswdFileUserdb:
    path: Path
    default_fields: dict[str, str] = field(default_factory=dict)
    override_fields: dict[str, str] = field(default_factory=dict)

    def entries(self) -> Iterator[UserEntry]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            raise DovecotConfigUnavailable(
                self.path, f"userdb passwd-file cannot be read: {err.strerror}") from None
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                yield self._entry(line)

    def _entry(self, line: str) -> UserEntry:
        columns = line.split(":", 7)
        own = _fields(columns[7]) if len(columns) > 7 else {}
        if _column(columns, HOME_COLUMN):  # the home column is the user's own field
            own = {"home": columns[HOME_COLUMN], **own}
        fields = {**self.default_fields, **own, **self.override_fields}
        return UserEntry(columns[0], fields.pop("home", ""), fields)


def passwd_file_userdbs(root: Section, config: object) -> list[PasswdFileUserdb]:
    """Every userdb of the configuration, each a passwd-file this tool can read."""
    userdbs = root.children("userdb")
    if not userdbs:
        raise UsersNotListable(f"{config} has no userdb")
    others = sorted({_driver(u) for u in userdbs} - {PASSWD_FILE})
    if others:
        raise UsersNotListable(
            f"{config}: a {'/'.join(others)} userdb cannot be listed by this tool")
    return [_passwd_file(userdb, config) for userdb in userdbs]


def _passwd_file(userdb: Section, config: object) -> PasswdFileUserdb:
    path = userdb.get("passwd_file_path") or _args_path(userdb.get("args"))
    if not path or "%" in path:
        raise UsersNotListable(
            f"{config}: userdb passwd-file {path or '(no path)'} is not one file to read")
    fields = userdb.child("fields")
    defaults = dict(fields.settings) if fields else _fields(userdb.get("default_fields"))
    return PasswdFileUserdb(Path(path), defaults, _fields(userdb.get("override_fields")))


def _driver(userdb: Section) -> str:
    """2.3 says ``driver = ``; 2.4 may name the section after its driver."""
    return userdb.get("driver") or userdb.name


def _args_path(args: str) -> str:
    """The file of 2.3's ``args = [key=value ...] /path``: the word without ``=``."""
    words = [word for word in shlex.split(args) if "=" not in word]
    return words[-1] if words else ""


def _fields(text: str) -> dict[str, str]:
    """``key=value`` words; ``userdb_`` is dropped, a word without ``=`` is ignored."""
    found = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep:
            found[key.removeprefix("userdb_")] = value
    return found


def _column(columns: list[str], index: int) -> str:
    return columns[index] if len(columns) > index else ""
