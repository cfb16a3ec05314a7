"""``--io-idle``: the idle I/O class and the lowest CPU priority for the processes that
read mailboxes, so that Dovecot's own I/O always goes first (``ionice -c 3``, nice 19).

``ioprio_set`` has no wrapper in Python's ``os``; it is called through libc's
``syscall``. Where that cannot work (another architecture, a seccomp filter), the
command is executed again under ``ionice -c 3``, whose class every child inherits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import shutil
import sys

log = logging.getLogger(__name__)

IOPRIO_CLASS_IDLE = 3
IOPRIO_CLASS_SHIFT = 13
IOPRIO_WHO_PROCESS = 1
LOWEST_NICE = 19
REEXEC_MARK = "DIT_UNDER_IONICE"
# (ioprio_set, ioprio_get) per architecture, from the kernel's syscall tables
_SYSCALLS = {
    "x86_64": (251, 252), "amd64": (251, 252), "aarch64": (30, 31), "arm64": (30, 31),
    "i386": (289, 290), "i686": (289, 290), "ppc64le": (273, 274), "s390x": (282, 283),
    "riscv64": (30, 31), "armv7l": (314, 315),
}


def _syscall(index: int, *args: int) -> int:
    numbers = _SYSCALLS.get(platform.machine().lower())
    if numbers is None:
        return -1
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.syscall(numbers[index], *args)
    except (OSError, AttributeError):
        return -1


def set_idle_io(pid: int = 0) -> bool:
    """Put ``pid`` (0: this thread, whose later children inherit it) in the idle class."""
    value = IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT
    return _syscall(0, IOPRIO_WHO_PROCESS, pid, value) == 0


def io_class(pid: int = 0) -> int | None:
    """The I/O scheduling class of ``pid`` (3 is idle), or None when it cannot be read."""
    value = _syscall(1, IOPRIO_WHO_PROCESS, pid)
    return None if value < 0 else value >> IOPRIO_CLASS_SHIFT


def lower_cpu() -> None:
    """The lowest CPU priority (nice only goes up for a process that is not root)."""
    try:
        os.nice(LOWEST_NICE - os.nice(0))
    except OSError as err:
        log.warning("--io-idle: cannot lower the CPU priority: %s", err)


def go_idle() -> bool:
    """Idle I/O and lowest CPU for this process; False when the I/O class could not be
    set (the caller may then run again under ionice)."""
    lower_cpu()
    return set_idle_io() or io_class() == IOPRIO_CLASS_IDLE


def ensure_idle_or_reexec() -> None:
    """In the parent, before any worker starts: when ``ioprio_set`` cannot work here,
    execute this command again under ``ionice -c 3`` (once), else go on as is."""
    if io_class() is not None or os.environ.get(REEXEC_MARK):
        return
    ionice = shutil.which("ionice")
    if ionice is None:
        log.warning("--io-idle: neither ioprio_set nor ionice is available; "
                    "only the CPU priority is lowered")
        return
    os.environ[REEXEC_MARK] = "1"
    os.execv(ionice, [ionice, "-c", "3", sys.executable, *sys.orig_argv[1:]])
