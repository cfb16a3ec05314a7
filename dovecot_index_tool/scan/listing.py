"""A user's mailboxes as the last run found them, taken again by ``--incremental`` while
none of the directories they were found in changed.

Why: finding a user's mailboxes looks up some forty names per user, which in an
incremental run where nothing changed cost more than the stat calls of the mailboxes'
own files. What discovery finds depends on nothing but the entries of the directories
it read (``discovery.noting_consulted``), and a directory's mtime and ctime move with
every entry added, removed or renamed in it; its device and inode change when it is
replaced, or when a link named by the caller points elsewhere. So the list is kept
with those four numbers of each such directory, and one stat per directory tells
whether it still holds.

A listing is only kept when every directory's times are older than the listing itself
by ``RACY_NS``: a directory that changed after discovery read it but before its times
were taken would otherwise be trusted with a list that misses the change (two
seconds, since many file systems keep whole seconds and FAT two). A listing that
noted unreadable directories is never kept: it is read again, and the unreadable
directories reported, every run; nor is one whose directories cannot all be stat'ed
(missing is a state, a refused stat is not). A listing answers one question: the
home, the INDEX= and CONTROL= trees as absolute paths, the configured root, and
this version of the tool, whose discovery rules may differ from another's.

Stored as JSON (the ledger is data, never code), checked on the way in: anything that
does not decode is no listing, and the user's mailboxes are found again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from dovecot_index_tool import __version__
from dovecot_index_tool.discovery import MailboxLocation, MailRoot

VERSION = 1
RACY_NS = 2_000_000_000  # a directory changed this close to the listing is not trusted
_ROOT_FIELDS = tuple(f.name for f in fields(MailRoot))
_TEXT_FIELDS = frozenset({"format", "layout"})
_OPTIONAL_FIELDS = frozenset({"storage_dir", "map_index_dir", "inbox_dir"})


@dataclass(frozen=True)
class Listing:
    inputs: tuple[str | None, ...]  # what was looked for (see ``inputs``)
    dirs: tuple[str, ...]  # the directories discovery read
    stamps: str  # digest of their (device, inode, mtime, ctime)
    root: MailRoot
    locations: tuple[MailboxLocation, ...]


def inputs(home: Path, index_tree: Path | None, control_tree: Path | None,
           configured: MailRoot | None) -> tuple[str | None, ...]:
    """What a listing answers: this version of the tool, the home and the INDEX= and
    CONTROL= trees given (absolute, as discovery makes them), and the root the Dovecot
    configuration names; a listing made for another question is no answer."""
    root = json.dumps(_root_doc(configured)) if configured is not None else None
    return (__version__, _absolute(home), _absolute(index_tree), _absolute(control_tree),
            root)


class _Unknown(Exception):
    """A directory whose state a stat could not tell (refused, I/O error, bad name)."""


_MISSING = (errno.ENOENT, errno.ENOTDIR)


def stamps(dirs: Iterable[str]) -> str | None:
    """The digest of the directories' identities and times (a missing one counts too:
    its appearing is a change); None when one of them could not be stat'ed."""
    now = _stamps(dirs)
    return None if now is None else _digest(now)


def _stamps(dirs: Iterable[str]) -> list[tuple[int, int, int, int] | None] | None:
    try:
        return [_stamp(d) for d in dirs]
    except _Unknown:
        return None


def _digest(now: list) -> str:
    return hashlib.sha1(repr(now).encode()).hexdigest()


def _stamp(directory: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(directory)
    except OSError as err:
        if err.errno in _MISSING:
            return None
        raise _Unknown from err
    except (ValueError, UnicodeError) as err:
        raise _Unknown from err
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def made(asked: tuple[str | None, ...], consulted: set[str], root: MailRoot,
         locations: list[MailboxLocation], started_ns: int) -> Listing | None:
    """The listing just made, or None when a directory changed too close to it or
    could not be stat'ed."""
    dirs = tuple(sorted(consulted))
    now = _stamps(dirs)
    if now is None:
        return None
    newest = max((max(s[2], s[3]) for s in now if s is not None), default=0)
    if newest >= started_ns - RACY_NS:
        return None
    return Listing(asked, dirs, _digest(now), root, tuple(locations))


def still_holds(listing: Listing | None, asked: tuple[str | None, ...]) -> bool:
    if listing is None or listing.inputs != asked:
        return False
    now = stamps(listing.dirs)
    return now is not None and now == listing.stamps


def encode(listing: Listing) -> str:
    return json.dumps({
        "version": VERSION,
        "inputs": list(listing.inputs),
        "dirs": list(listing.dirs),
        "stamps": listing.stamps,
        "root": _root_doc(listing.root),
        "mailboxes": [[m.name, m.format, str(m.index_dir), _text(m.mail_dir),
                       _text(m.control_dir)] for m in listing.locations],
    })


def decode(text: str | None) -> Listing | None:
    """The stored listing, or None for anything that is not one of this version."""
    if not text:
        return None
    try:
        doc = json.loads(text)
        if doc["version"] != VERSION:
            return None
        root = MailRoot(**{name: _value(name, doc["root"][name]) for name in _ROOT_FIELDS})
        locations = tuple(
            MailboxLocation(_str(name), _str(fmt), Path(_str(index)), _path(mail),
                            _path(control))
            for name, fmt, index, mail, control in map(_row, doc["mailboxes"]))
        return Listing(tuple(_opt(x) for x in _list(doc["inputs"])),
                       tuple(_str(d) for d in _list(doc["dirs"])), _str(doc["stamps"]),
                       root, locations)
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


def _list(value: object) -> list:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return value


def _row(value: object) -> list:
    row = _list(value)
    if len(row) != 5:
        raise ValueError("not a mailbox row")
    return row


def _absolute(path: object) -> str | None:
    """As discovery makes them: absolute, links not resolved."""
    return None if path is None else os.path.abspath(os.fspath(path))


def _root_doc(root: MailRoot) -> dict[str, str | None]:
    return {name: _text(getattr(root, name)) for name in _ROOT_FIELDS}


def _value(name: str, value: object) -> object:
    if name in _TEXT_FIELDS:
        return _str(value)
    return _path(value) if name in _OPTIONAL_FIELDS else Path(_str(value))


def _text(path: object) -> str | None:
    return None if path is None else str(path)


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _opt(value: object) -> str | None:
    return None if value is None else _str(value)


def _path(value: object) -> Path | None:
    return None if value is None else Path(_str(value))
