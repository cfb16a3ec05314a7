"""How serious a finding is: one ordered type, so that every "worst of" and every
display order in the package comes from here."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    FATAL = "fatal"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return self.rank < other.rank
        return NotImplemented

    def __le__(self, other: object) -> bool:
        return self == other or self < other

    def __gt__(self, other: object) -> bool:
        return not self <= other

    def __ge__(self, other: object) -> bool:
        return not self < other

    @classmethod
    def of(cls, value: str | Severity | None) -> Severity:
        """A severity as stored (a ledger row, a JSON document); unknown is info."""
        try:
            return cls(value)
        except ValueError:
            return cls.INFO


_ORDER = (Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.FATAL)
SERIOUS = tuple(reversed(_ORDER[1:]))  # fatal, error, warning: the order tables show


def rank(value: str | Severity | None) -> int:
    return Severity.of(value).rank


def worst(values: Iterable[str | Severity | None]) -> Severity | None:
    """The most serious of ``values``; None when there are none."""
    found = [Severity.of(v) for v in values]
    return max(found) if found else None
