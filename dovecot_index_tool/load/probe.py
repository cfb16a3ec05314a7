"""Readings of how busy the host is, each behind a function a test can replace.

Linux only reports these through ``os.getloadavg`` and ``/proc/pressure/io`` (PSI,
kernel 4.20+); a reading that is not available is ``None`` and never pauses a run.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

PRESSURE_IO = "/proc/pressure/io"
_SOME_AVG10 = re.compile(r"^some\b.*?\bavg10=([0-9.]+)", re.M)


def load_per_cpu() -> float | None:
    """The 1-minute load average divided by the CPUs this process may run on."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    return load / _cpus()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def io_pressure(path: str = PRESSURE_IO) -> float | None:
    """``some avg10`` of ``/proc/pressure/io``: the percentage of the last 10 s in which
    at least one task waited for I/O."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read(4096)
    except (OSError, UnicodeDecodeError):
        return None
    match = _SOME_AVG10.search(text)
    return float(match.group(1)) if match else None


@dataclass
class LoadProbe:
    """Where the gate gets its readings and its time from; every field can be replaced
    (tests inject a synthetic load, a clock inside or outside the window, a sleep that
    only advances that clock)."""

    load: Callable[[], float | None] = load_per_cpu
    pressure: Callable[[], float | None] = io_pressure
    now: Callable[[], datetime] = field(default=datetime.now)
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
