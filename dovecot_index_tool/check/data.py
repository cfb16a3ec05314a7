"""Everything the checks of one mailbox (or one user) read, loaded once.

Loading is the only I/O the checks do: every file is read read-only through
``files.read_file``; directory listings use ``os.scandir``. The checks themselves
are pure functions of these objects.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dovecot_index_tool.discovery import MailboxFormat, MailboxLocation
from dovecot_index_tool.files import IndexSet, read_file, read_index_set
from dovecot_index_tool.format.errors import FormatError, ReadError
from dovecot_index_tool.format.index import IndexFile
from dovecot_index_tool.format.replay import Replay, replay
from dovecot_index_tool.format.uidlist import (
    MaildirKeywords,
    Uidlist,
    parse_maildir_keywords,
    parse_uidlist,
)

SDBOX_FILE = re.compile(r"^u\.(\d+)$")
MDBOX_FILE = re.compile(r"^m\.(\d+)$")


@dataclass(frozen=True)
class IndexState:
    """An index prefix read from disk, and its log replayed (the state Dovecot sees)."""

    files: IndexSet
    replay: Replay | None
    # what the checks derive from these files more than once (their effective state),
    # kept here: the files do not change, and several checks of one mailbox ask
    derived: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def state(self) -> IndexFile | None:
        return self.replay.index if self.replay is not None else self.files.index

    @property
    def path(self) -> str:
        return self.files.prefix


@dataclass(frozen=True)
class MailboxData:
    name: str
    format: str
    index: IndexState
    mail_dir: Path | None
    control_dir: Path | None
    uidlist: Uidlist | None = None
    uidlist_path: str | None = None
    uidlist_error: FormatError | None = None
    maildir_keywords: MaildirKeywords | None = None
    mail_files: tuple[str, ...] | None = None  # maildir cur/ and new/ names, or sdbox u.N names
    file_heads: dict[str, bytes] = field(default_factory=dict)  # sdbox: first bytes of u.N
    read_errors: tuple[ReadError, ...] = field(default=())


def load_index(prefix: str | os.PathLike[str]) -> IndexState:
    files = read_index_set(prefix)
    result = replay(files.index, files.logs, files.prefix) if files.logs else None
    return IndexState(files, result)


def load_mailbox(location: MailboxLocation) -> MailboxData:
    errors: list[ReadError] = []
    index = load_index(f"{location.index_dir}/dovecot.index")  # strings: once per mailbox
    data = MailboxData(
        location.name, location.format, index, location.mail_dir, location.control_dir
    )
    if location.format == MailboxFormat.MAILDIR:
        return _with_maildir(data, errors)
    if location.format == MailboxFormat.SDBOX and location.mail_dir is not None:
        names = _listing(location.mail_dir, errors)
        files = tuple(n for n in names if SDBOX_FILE.match(n))
        heads = {n: _head(f"{location.mail_dir}/{n}", errors) for n in files}
        return _replace(data, mail_files=files, file_heads=heads, read_errors=tuple(errors))
    return _replace(data, read_errors=tuple(errors))


def _replace(data: MailboxData, **changes) -> MailboxData:
    values = {f: getattr(data, f) for f in data.__dataclass_fields__}
    values.update(changes)
    return MailboxData(**values)


def _with_maildir(data: MailboxData, errors: list[ReadError]) -> MailboxData:
    control = data.control_dir or data.mail_dir
    uidlist = uidlist_error = keywords = None
    uidlist_path = None
    if control is not None:
        uidlist_path = f"{control}/dovecot-uidlist"
        raw = _read(uidlist_path, errors)
        if raw is not None:
            try:
                uidlist = parse_uidlist(raw, uidlist_path)
            except FormatError as err:
                uidlist_error = err
        keywords_path = f"{control}/dovecot-keywords"
        raw = _read(keywords_path, errors)
        if raw is not None:
            keywords = parse_maildir_keywords(raw, keywords_path)
    files = None
    if data.mail_dir is not None:
        files = tuple(
            f"{sub}/{name}"
            for sub in ("new", "cur")
            for name in _listing(f"{data.mail_dir}/{sub}", errors)
        )
    return _replace(
        data,
        uidlist=uidlist,
        uidlist_path=uidlist_path,
        uidlist_error=uidlist_error,
        maildir_keywords=keywords,
        mail_files=files,
        read_errors=tuple(errors),
    )


HEAD_SIZE = 128


def _head(path: str, errors: list[ReadError]) -> bytes:
    """The first bytes of a mail file: its dbox header line."""
    try:  # os.read: a buffered file would read 8 KB to hand back 128 bytes
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.read(fd, HEAD_SIZE)
        finally:
            os.close(fd)
    except OSError as err:
        errors.append(ReadError(f"cannot read: {err}", file=str(path)))
        return b""


def _read(path: str, errors: list[ReadError]) -> bytes | None:
    try:
        return read_file(path).data
    except FileNotFoundError:
        return None
    except OSError as err:
        errors.append(ReadError(f"cannot read: {err}", file=path))
        return None


def _listing(directory: str | Path, errors: list[ReadError]) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if not e.name.startswith("."))
    except FileNotFoundError:
        return []
    except OSError as err:
        errors.append(ReadError(f"cannot list: {err}", file=str(directory)))
        return []


@dataclass(frozen=True)
class StorageFile:
    """An mdbox ``m.N`` file: its size and the two bytes at each map offset asked for."""

    path: str
    size: int
    head: bytes = b""


@dataclass(frozen=True)
class UserData:
    """What the user-level checks need: list index and, for mdbox, the map and m.N files."""

    list_index: IndexState | None
    map_index: IndexState | None
    storage_dir: Path | None
    storage_files: dict[int, StorageFile] = field(default_factory=dict)
    read_errors: tuple[ReadError, ...] = ()


def load_user(
    list_index_dir: Path | None,
    map_index_dir: Path | None,
    storage_dir: Path | None,
) -> UserData:
    errors: list[ReadError] = []
    list_index = None
    if list_index_dir is not None:
        prefix = Path(list_index_dir) / "dovecot.list.index"
        if prefix.exists() or Path(f"{prefix}.log").exists():
            list_index = load_index(prefix)
    map_index = None
    if map_index_dir is not None:
        map_index = load_index(Path(map_index_dir) / "dovecot.map.index")
    storage: dict[int, StorageFile] = {}
    if storage_dir is not None:
        for name in _listing(Path(storage_dir), errors):
            m = MDBOX_FILE.match(name)
            if m:
                path = Path(storage_dir) / name
                try:
                    size = path.stat().st_size
                    storage[int(m.group(1))] = StorageFile(str(path), size, _head(path, errors))
                except OSError as err:
                    errors.append(ReadError(f"cannot stat: {err}", file=str(path)))
    return UserData(list_index, map_index, storage_dir, storage, tuple(errors))


def read_at(path: str, offsets: list[int], size: int = 2) -> dict[int, bytes]:
    """A few bytes at each offset of one file, with one open (``pread``)."""
    out: dict[int, bytes] = {}
    fd = os.open(path, os.O_RDONLY)
    try:
        for offset in offsets:
            out[offset] = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    return out
