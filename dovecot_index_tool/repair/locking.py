"""Dovecot's own index lock, taken before a repair moves any index file.

Dovecot (``lock_method=fcntl``, its default) serialises every change to a mailbox
index with an exclusive fcntl write lock on the whole ``dovecot.index.log``; the
cache file is locked the same way. Holding that lock keeps imap, lmtp and doveadm
from writing the index while we replace it: they wait, and carry on afterwards.

The lock is taken as an open-file-description lock where the kernel has them
(Linux): it conflicts with Dovecot's classic record locks exactly the same, but
it is not silently released when some other descriptor of the same file is closed
in this process, as a classic record lock would be the moment a check reads the
log. Elsewhere a classic record lock is used.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import time
from collections.abc import Iterator

from dovecot_index_tool.files import FLOCK

DEFAULT_TIMEOUT = 30.0
POLL = 0.05
BUSY = {errno.EACCES, errno.EAGAIN}


class LockTimeout(OSError):
    """Another process (Dovecot, most likely) kept the mailbox locked past the timeout."""


@contextlib.contextmanager
def dovecot_lock(
    path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT
) -> Iterator[int]:
    """Hold Dovecot's exclusive lock on ``path`` (a ``dovecot.index.log`` or cache) for
    the ``with`` block; yields the locked descriptor. Raises LockTimeout, or
    FileNotFoundError when there is no such file (then there is nothing to lock)."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    try:
        _acquire(fd, os.fspath(path), timeout)
        yield fd
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(fd: int, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _try_lock(fd)
            return
        except OSError as exc:
            if exc.errno not in BUSY:
                raise
        if time.monotonic() >= deadline:
            raise LockTimeout(errno.EAGAIN, f"still locked after {timeout:g} s", path)
        time.sleep(POLL)


def _try_lock(fd: int) -> None:
    ofd = getattr(fcntl, "F_OFD_SETLK", None)
    if ofd is not None and struct.calcsize(FLOCK) == 32:
        fcntl.fcntl(fd, ofd, struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    else:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextlib.contextmanager
def lock_if_present(log: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT):
    """Dovecot's lock on ``log`` while the block runs; nothing to lock when the log does
    not exist (Dovecot creates it, under its own lock, when it next writes)."""
    if not os.path.exists(log):
        yield
        return
    with dovecot_lock(log, timeout):
        yield
