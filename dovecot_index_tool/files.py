"""Reading Dovecot's files from disk, read-only, and handing the bytes to the parsers.

Every file is opened read-only and read once; a file that changes while it is
read (size, mtime or inode differ before and after) is read again, a bounded
number of times, because Dovecot keeps writing while we look.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from dovecot_index_tool.format.cache import CacheFile, parse_cache
from dovecot_index_tool.format.errors import FileError, FormatError, ReadError
from dovecot_index_tool.format.index import IndexFile, parse_index
from dovecot_index_tool.format.log import (
    END_PARTIAL_TRANSACTION,
    END_UNFINISHED,
    LogFile,
    parse_log,
)

# struct flock on 64-bit Linux: l_type, l_whence, l_start, l_len, l_pid (+ padding).
FLOCK = "hhqqi4x"
PARTIAL_ENDS = (END_UNFINISHED, END_PARTIAL_TRANSACTION)
READ_RETRIES = 3
RETRY_PAUSE = 0.05
INDEX_PREFIXES = ("dovecot.index", "dovecot.map.index", "dovecot.list.index")
DBOX_NAME = re.compile(r"^[um]\.\d+$")


class UnstableFile(OSError):
    """The file kept changing while it was read."""


@dataclass(frozen=True)
class FileBytes:
    path: str
    data: bytes
    inode: int
    mtime_ns: int


_missing: ContextVar[set[str] | None] = ContextVar("missing", default=None)


@contextmanager
def noting_missing() -> Iterator[set[str]]:
    """The paths the block's reads found missing: a reader that knows the files were
    there before (and after) it read them can tell a read that saw a file vanish."""
    found: set[str] = set()
    token = _missing.set(found)
    try:
        yield found
    finally:
        _missing.reset(token)


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                       | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        found = _missing.get()
        if found is not None:
            found.add(path)
        raise


def read_file(path: str | os.PathLike[str]) -> FileBytes:
    """Read a whole file read-only, retrying while it changes under us."""
    path = os.fspath(path)
    for attempt in range(READ_RETRIES):
        fd = _open(path)
        try:
            before = os.fstat(fd)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if _same(before, after) and len(data) == after.st_size and _same(after, _lstat(path)):
            return FileBytes(path, data, after.st_ino, after.st_mtime_ns)
        if attempt + 1 < READ_RETRIES:
            time.sleep(RETRY_PAUSE)
    raise UnstableFile(f"{path} changed while it was read {READ_RETRIES} times")


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _same(a: os.stat_result | None, b: os.stat_result | None) -> bool:
    return (
        a is not None
        and b is not None
        and (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)
    )


@dataclass(frozen=True)
class IndexSet:
    """One index prefix (``P``, ``P.log``, ``P.log.2``, ``P.cache``) as found on disk.

    ``errors`` holds the files that exist but could not be read (``ReadError``) or
    parsed at all (``FormatError``).
    """

    prefix: str
    index: IndexFile | None
    logs: tuple[LogFile, ...]
    cache: CacheFile | None
    errors: tuple[FileError, ...] = field(default=())
    log_inodes: tuple[int, ...] = ()
    hardlinked: bool = False
    # the head log ends in a partial record: is a writer holding Dovecot's lock on it?
    # None when it ends cleanly or the question could not be asked
    head_log_locked: bool | None = None

    @property
    def exists(self) -> bool:
        return self.index is not None or bool(self.logs) or bool(self.errors)


def read_index_set(prefix: str | os.PathLike[str], with_cache: bool = True) -> IndexSet:
    """Read and parse every file of one index prefix; missing files are simply absent."""
    prefix = os.fspath(prefix)
    errors: list[FileError] = []
    index = _parse_or_none(prefix, parse_index, errors)
    logs = []
    inodes: list[int] = []
    hardlinked = False
    head_locked = None
    for suffix in (".log.2", ".log"):
        raw = _read_or_none(prefix + suffix, errors)
        if raw is None:
            continue
        if raw.inode in inodes:
            hardlinked = True  # .log and .log.2 hard-linked during a rotation: one file
            continue
        try:
            logs.append(parse_log(raw.data, raw.path))
            inodes.append(raw.inode)
        except FormatError as err:
            errors.append(err)
            continue
        if suffix == ".log" and logs[-1].trailing and logs[-1].end_reason in PARTIAL_ENDS:
            head_locked = _writer_at_work(raw)
    # .log.2 then .log, by name: Dovecot's head is the file named .log whatever its
    # sequence says, and it reads .log.2 only for a sequence below the head's
    cache = None
    if with_cache:
        raw = _read_or_none(prefix + ".cache", errors)
        if raw is not None:
            bo = index.byteorder if index else (logs[-1].byteorder if logs else None)
            indexid = index.header.indexid if index else None
            try:
                cache = parse_cache(raw.data, raw.path, byteorder=bo, indexid=indexid)
            except FormatError as err:
                errors.append(err)
    return IndexSet(prefix, index, tuple(logs), cache, tuple(errors), tuple(inodes), hardlinked,
                    head_locked)


def _writer_at_work(raw: FileBytes) -> bool | None:
    """Whether the partial bytes at the end of a log may be a write in progress: Dovecot
    appends only while it holds its lock on the log, so they may while some process
    holds a lock, or when the file changed since it was read (the writer finished).
    Unlocked and unchanged, they are garbage, which Dovecot refuses once it locks."""
    locked = writer_holds_lock(raw.path)
    now = _lstat(raw.path)
    if now is None or (now.st_ino, now.st_size, now.st_mtime_ns) != (
            raw.inode, len(raw.data), raw.mtime_ns):
        return True
    return locked


def writer_holds_lock(path: str | os.PathLike[str]) -> bool | None:
    """Whether any process holds a lock on the file. A query (``F_OFD_GETLK``, else
    ``F_GETLK``): it takes no lock and waits for none. None when it cannot be asked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        command = getattr(fcntl, "F_OFD_GETLK", None)
        if command is None or struct.calcsize(FLOCK) != 32:
            command = fcntl.F_GETLK
        query = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, command, query)
        return struct.unpack(FLOCK, answer)[0] != fcntl.F_UNLCK
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_or_none(path: str, errors: list[FileError]) -> FileBytes | None:
    try:
        return read_file(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        errors.append(ReadError(f"cannot read: {err.strerror or err}", file=path))
        return None


def parse_or_none(path: str | os.PathLike[str], parser):
    """``parser(bytes, path)`` of the file, or None when it is missing, unreadable or
    does not parse: for readers that take whatever still parses."""
    return _parse_or_none(os.fspath(path), parser, [])


def _parse_or_none(path: str, parser, errors: list[FileError]):
    raw = _read_or_none(path, errors)
    if raw is None:
        return None
    try:
        return parser(raw.data, raw.path)
    except FormatError as err:
        errors.append(err)
        return None


def index_prefix_in(directory: str | os.PathLike[str]) -> str | None:
    """The index prefix a directory holds, preferring a mailbox index (as doveadm does)."""
    for prefix in INDEX_PREFIXES:
        base = Path(directory) / prefix
        if base.exists() or Path(str(base) + ".log").exists():
            return str(base)
    return None


def file_kind(path: str | os.PathLike[str]) -> str:
    """What a file is, from its name, falling back to its first bytes."""
    name = Path(path).name
    if name == "dovecot-uidlist":
        return "uidlist"
    if name == "dovecot-keywords":
        return "keywords"
    if DBOX_NAME.match(name):
        return "dbox"
    if name.endswith(".log") or name.endswith(".log.2"):
        return "log"
    if name.endswith(".cache"):
        return "cache"
    if name.endswith(".backup") or ".index" in name:
        return "index"
    return _sniff(path)


def _sniff(path: str | os.PathLike[str]) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return "unknown"
    if len(head) >= 4 and head[0] == 7 and head[2:4] in (b"\x78\x00", b"\x00\x78"):
        return "index"
    if len(head) >= 4 and head[0] == 1 and head[2:4] in (b"\x28\x00", b"\x00\x28"):
        return "log"
    if len(head) >= 2 and head[0] == 1 and head[1] == 8:
        return "cache"
    return "unknown"
