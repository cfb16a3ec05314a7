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
(by ``RACY_NS``): a directory that changed after discovery read it but before its
times were taken would otherwise be trusted with a list that misses the change. A
listing that noted unreadable directories is never kept: it is read again, and the
unreadable directories reported, every run.

Stored as JSON (the ledger is data, never code), checked on the way in: anything that
does not decode is no listing, and the user's mailboxes are found again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from dovecot_index_tool.discovery import MailboxLocation, MailRoot

VERSION = 1
RACY_NS = 100_000_000  # a directory changed this close to the listing is not trusted
_ROOT_FIELDS = tuple(f.name for f in fields(MailRoot))
_TEXT_FIELDS = frozenset({"format", "layout"})


@dataclass(frozen=True)
class Listing:
    inputs: tuple[str | None, ...]  # what was looked for (see ``inputs``)
    dirs: tuple[str, ...]  # the directories discovery read
    stamps: str  # digest of their (device, inode, mtime, ctime)
    root: MailRoot
    locations: tuple[MailboxLocation, ...]


def inputs(home: Path, index_tree: Path | None, control_tree: Path | None,
           configured: MailRoot | None) -> tuple[str | None, ...]:
    """What a listing answers: the home, the INDEX= and CONTROL= trees given, and the
    root the Dovecot configuration names; a listing made for others is no answer."""
    root = json.dumps(_root_doc(configured)) if configured is not None else None
    return (str(home), _text(index_tree), _text(control_tree), root)


def stamps(dirs: Iterable[str]) -> str:
    """The digest of the directories' identities and times (a missing one counts too:
    its appearing is a change)."""
    return hashlib.sha1(repr([_stamp(d) for d in dirs]).encode()).hexdigest()


def _stamp(directory: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def made(asked: tuple[str | None, ...], consulted: set[str], root: MailRoot,
         locations: list[MailboxLocation], started_ns: int) -> Listing | None:
    """The listing just made, or None when a directory changed too close to it."""
    dirs = tuple(sorted(consulted))
    now = [_stamp(d) for d in dirs]
    newest = max((max(s[2], s[3]) for s in now if s is not None), default=0)
    if newest >= started_ns - RACY_NS:
        return None
    digest = hashlib.sha1(repr(now).encode()).hexdigest()
    return Listing(asked, dirs, digest, root, tuple(locations))


def still_holds(listing: Listing | None, asked: tuple[str | None, ...]) -> bool:
    return (listing is not None and listing.inputs == asked
            and stamps(listing.dirs) == listing.stamps)


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
            for name, fmt, index, mail, control in doc["mailboxes"])
        return Listing(tuple(_opt(x) for x in doc["inputs"]),
                       tuple(_str(d) for d in doc["dirs"]), _str(doc["stamps"]), root,
                       locations)
    except (ValueError, KeyError, TypeError):
        return None


def _root_doc(root: MailRoot) -> dict[str, str | None]:
    return {name: _text(getattr(root, name)) for name in _ROOT_FIELDS}


def _value(name: str, value: object) -> object:
    return _str(value) if name in _TEXT_FIELDS else _path(value)


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
