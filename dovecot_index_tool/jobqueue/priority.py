"""How urgent a job is: severity first, then the operator's VIPs, then how recently the
mailbox was used, and among equals the cheaper job first (more users back sooner)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from dovecot_index_tool.check.severity import rank

DAY = 86400.0


@dataclass(frozen=True)
class VipList:
    """Users (``alice``, ``alice@example.org``), domains or tenants, one per line."""

    names: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: Path | None) -> VipList:
        if path is None:
            return cls()
        names = set()
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip().lower()
            if line:
                names.add(line)
        return cls(frozenset(names))

    def matches(self, user: str, tenant: str | None) -> bool:
        user = user.lower()
        candidates = {user}
        if tenant:
            candidates |= {tenant.lower(), f"{user}@{tenant.lower()}"}
        if "@" in user:
            candidates.add(user.split("@", 1)[1])
        return bool(candidates & self.names)


def priority(
    severity: str, vip: bool, last_used: float | None, cost_seconds: float, now: float | None = None
) -> float:
    """One number that sorts as (severity, VIP, recency, cheapness), highest first."""
    now = time.time() if now is None else now
    days = (now - last_used) / DAY if last_used else 365.0
    recency = max(0.0, 99.0 - min(days, 99.0))  # used today: 99; a quarter idle: 0
    cheapness = 999.0 - min(cost_seconds, 999.0)
    return rank(severity) * 1e7 + int(vip) * 1e6 + int(recency) * 1e3 + cheapness
