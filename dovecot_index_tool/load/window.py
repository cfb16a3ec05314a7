"""``--window HH:MM-HH:MM``: the hours in which a run may start new work.

A window whose end is before its start runs past midnight (``22:00-06:00``); the
start is inside, the end is not (``02:00-06:00`` ends at 06:00 sharp).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time

_WINDOW = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)-([01]?\d|2[0-3]):([0-5]\d)$")


class WindowError(ValueError):
    """Not a window of the form HH:MM-HH:MM."""


@dataclass(frozen=True)
class Window:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> Window:
        match = _WINDOW.match(text.strip())
        if match is None:
            raise WindowError(f"{text!r} is not HH:MM-HH:MM (e.g. 01:00-06:00)")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h1, m1) == (h2, m2):
            raise WindowError(f"{text!r} is empty: start and end are the same")
        return cls(time(h1, m1), time(h2, m2))

    def contains(self, moment: datetime) -> bool:
        now = moment.time()
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"
