"""The gate a run passes before each new task (a scan's user or batch of a few
mailboxes, a repair job): wait while the host is busy, stop starting work outside
the window or past the time budget.

A pause is taken between tasks, never inside a mailbox (a read is short; a half-read
mailbox would have to be read again). Every pause is counted by its reason, so the
run can say how long it waited and why (ledger, progress, Prometheus).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from dovecot_index_tool.load.probe import LoadProbe
from dovecot_index_tool.load.window import Window

log = logging.getLogger(__name__)

TIME_BUDGET = "time budget reached"


class PauseReason(StrEnum):
    LOAD = "load"
    IO_PRESSURE = "io-pressure"


@dataclass(frozen=True)
class LoadLimits:
    """What the operator allowed: ``--max-load``, ``--max-io-pressure``, ``--window``,
    ``--io-idle``; ``recheck`` is how often a paused run reads the host again."""

    max_load: float | None = None
    max_io_pressure: float | None = None
    window: Window | None = None
    io_idle: bool = False
    recheck: float = 5.0


@dataclass(frozen=True)
class Busy:
    """A reading above its limit: why the run waits."""

    reason: PauseReason
    reading: float
    limit: float

    def __str__(self) -> str:
        if self.reason is PauseReason.LOAD:
            return f"load {self.reading:.2f} per CPU above {self.limit:g}"
        return f"I/O pressure {self.reading:.1f}% above {self.limit:g}%"


class LoadGate:
    """Asked before each mailbox; ``paused`` holds the seconds waited per reason."""

    def __init__(self, limits: LoadLimits, probe: LoadProbe | None = None,
                 deadline: float | None = None,
                 on_pause: Callable[[Busy | None], None] | None = None) -> None:
        self.limits = limits
        self.probe = probe or LoadProbe()
        self.deadline = None if deadline is None else self.probe.monotonic() + deadline
        self.on_pause = on_pause  # told of each pause (a Busy) and of its end (None)
        self.paused: Counter[str] = Counter()
        self.pauses = 0

    @property
    def paused_seconds(self) -> float:
        return sum(self.paused.values())

    def busy(self) -> Busy | None:
        """The first reading above its limit, or None."""
        checks = (
            (PauseReason.LOAD, self.limits.max_load, self.probe.load),
            (PauseReason.IO_PRESSURE, self.limits.max_io_pressure, self.probe.pressure),
        )
        for reason, limit, read in checks:
            if limit is None:
                continue
            reading = read()
            if reading is not None and reading > limit:
                return Busy(reason, reading, limit)
        return None

    def stop_reason(self, budget: bool = True) -> str | None:
        """Why no new work may start now: past the time budget (when ``budget``: it
        stops a run between users only), outside the window."""
        if budget and self.deadline is not None and self.probe.monotonic() > self.deadline:
            return TIME_BUDGET
        window = self.limits.window
        if window is not None and not window.contains(self.probe.now()):
            return f"outside window {window}"
        return None

    def admit(self, new_user: bool = False) -> str | None:
        """Wait while the host is busy; None when the next mailbox may start, else why
        the run stops starting work (it keeps what it did). The time budget counts
        before a new user, and ends a pause that outlasts it."""
        waited: Busy | None = None
        while (stop := self.stop_reason(new_user or waited is not None)) is None and (
                busy := self.busy()) is not None:
            if waited is None:
                self.pauses += 1
                log.warning("pausing: %s", busy)
                self._tell(busy)
            waited = busy
            start = self.probe.monotonic()
            self.probe.sleep(self.limits.recheck)
            self.paused[str(busy.reason)] += self.probe.monotonic() - start
        if waited is not None:
            log.info("resuming after %.0f s paused", self.paused_seconds)
            self._tell(None)
        return stop

    def _tell(self, busy: Busy | None) -> None:
        if self.on_pause is not None:
            self.on_pause(busy)
