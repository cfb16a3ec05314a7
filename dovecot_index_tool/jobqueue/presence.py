"""Which workers serve which volume now: the queue's view of its workers.

A worker is seen when it polls the queue (``claim``, even when it gets nothing) and
while it holds the lease of a running job (its heartbeats extend the lease). A poll
counts for ``PRESENCE_TTL`` seconds: a worker that stopped polling longer ago than
that no longer serves, so that no estimate rests on a worker that is gone.
"""

from __future__ import annotations

from dataclasses import dataclass

PRESENCE_TTL = 60.0


def note(db, worker: str, volume: str | None, now: float) -> None:
    """``worker`` polled the queue for ``volume`` (None: every volume) at ``now``."""
    db.execute(
        "INSERT INTO workers (name, volume, seen, until) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(name) DO UPDATE SET volume=excluded.volume, seen=excluded.seen, "
        "until=excluded.until",
        (worker, volume, now, now + PRESENCE_TTL),
    )


@dataclass(frozen=True)
class Serving:
    """Live workers: those bound to one volume, those taking any volume, lease holders."""

    bound: dict[str, frozenset[str]]
    anywhere: frozenset[str]

    def workers(self, volume: str) -> frozenset[str]:
        return self.bound.get(volume, frozenset()) | self.anywhere


def serving(db, now: float) -> Serving:
    bound: dict[str, set[str]] = {}
    anywhere: set[str] = set()
    for r in db.all("SELECT name, volume FROM workers WHERE until >= ?", (now,)):
        if r["volume"] is None:
            anywhere.add(r["name"])
        else:
            bound.setdefault(r["volume"], set()).add(r["name"])
    for r in db.all(
        "SELECT lease_owner, volume FROM jobs WHERE state='running' AND lease_until >= ?",
        (now,),
    ):
        bound.setdefault(r["volume"], set()).add(r["lease_owner"])
    return Serving({v: frozenset(w) for v, w in bound.items()}, frozenset(anywhere))
