"""Re-checks after a repair: a repaired mailbox is read again, read-only, some time
after its repair (by default after one hour and after a day).

Why: a repair that verified can break again (the second bug of an outage, or a
cause the repair did not remove), and a full scan of every volume to find out costs
hours. A re-check is a job of its own kind in the same queue, so it has the queue's
leases, per-volume limits and events; its priority is below every repair, so it only
uses slots no repair is waiting for. The delays are a setting of the ledger, so every
worker on every host schedules the same ones.
"""

from __future__ import annotations

from enum import StrEnum

from dovecot_index_tool.ledger.db import Database

DEFAULT_DELAYS = (3600.0, 86400.0)  # seconds after a verified repair
PRIORITY = -1.0  # below every repair: ``priority()`` is never negative
SETTING = "recheck_delays"


class JobKind(StrEnum):
    """What a job does: repair its mailbox, or only read it again and record it."""

    REPAIR = "repair"
    RECHECK = "recheck"


def delays(db: Database) -> tuple[float, ...]:
    """The seconds after a verified repair at which its mailbox is checked again."""
    row = db.one("SELECT value FROM queue_settings WHERE name=?", (SETTING,))
    if row is None:
        return DEFAULT_DELAYS
    return tuple(float(v) for v in row["value"].split(",") if v)


def set_delays(db: Database, seconds: tuple[float, ...]) -> None:
    """Store the delays (none: no re-checks are scheduled)."""
    if any(s <= 0 for s in seconds):
        raise ValueError("re-check delays must be positive")
    value = ",".join(f"{s:g}" for s in sorted(seconds))
    with db.exclusive():
        db.execute("DELETE FROM queue_settings WHERE name=?", (SETTING,))
        db.execute("INSERT INTO queue_settings (name, value) VALUES (?, ?)", (SETTING, value))


def parse_delay(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``1h``, ``2d``: seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    unit = units.get(text[-1:]) if text else None
    number = text[:-1] if unit else text
    try:
        value = float(number) * (unit or 1)
    except ValueError:
        raise ValueError(f"not a delay: {text!r} (use 90s, 30m, 1h or 2d)") from None
    if value <= 0:
        raise ValueError(f"not a delay: {text!r} (must be positive)")
    return value
