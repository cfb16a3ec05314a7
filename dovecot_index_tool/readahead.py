"""Read-ahead of files about to be read: advice to the kernel, nothing more.

Kept apart from ``files`` (which parses what it reads) so that a scan's workers can
start the disk without importing the parsers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def prefetch(paths: Iterable[str]) -> None:
    """Ask the kernel to read these files into the page cache now (``WILLNEED``), so
    that on a cold cache the disk fetches a user's next mailboxes while the worker
    parses the first. Only advice: a file that is missing, unreadable or not a regular
    file is left to the read that follows, which reports it."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for path in paths:
        try:
            fd = os.open(path, flags)
        except OSError:
            continue
        try:
            advise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)
