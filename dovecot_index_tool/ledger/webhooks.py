"""Webhook subscriptions of tenants, the events owed to each, and the delivery log.

A subscription is a tenant's URL and the secret its events are signed with (kept as
given: signing needs it). Each state change owed to a subscription is one delivery
row, unique per (subscription, event), so an event is queued once however often
the deliverer looks; every attempt is logged with its HTTP status or error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from dovecot_index_tool.ledger.db import Database


@dataclass(frozen=True)
class Subscription:
    id: int
    tenant: str
    url: str
    secret: str
    created: float


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook: Subscription
    event_id: str
    body: str
    attempts: int


class Webhooks:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, tenant: str, url: str, secret: str, now: float | None = None) -> int:
        now = time.time() if now is None else now
        webhook_id = self.db.insert(
            "INSERT INTO webhooks (tenant, url, secret, created) VALUES (?, ?, ?, ?)",
            (tenant, url, secret, now),
        )
        self.db.commit()
        return webhook_id

    def remove(self, webhook_id: int, tenant: str | None = None) -> bool:
        """Delete a subscription (only ``tenant``'s, when given) with its deliveries."""
        sql, args = "DELETE FROM webhooks WHERE id=?", [webhook_id]
        if tenant is not None:
            sql += " AND tenant=?"
            args.append(tenant)
        gone = self.db.execute(sql, args).rowcount
        self.db.commit()
        return bool(gone)

    def subscriptions(self, tenant: str | None = None) -> list[Subscription]:
        sql, args = "SELECT * FROM webhooks", []
        if tenant is not None:
            sql, args = sql + " WHERE tenant=?", [tenant]
        return [_subscription(r) for r in self.db.all(sql + " ORDER BY id", args)]

    def owe(self, webhook: Subscription, event_id: str, body: str, now: float) -> bool:
        """Queue ``body`` for ``webhook`` unless this event is already queued for it."""
        if self.db.one("SELECT id FROM webhook_deliveries WHERE webhook_id=? AND event_id=?",
                       (webhook.id, event_id)):
            return False
        self.db.insert(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, body, created, next_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (webhook.id, event_id, body, now, now),
        )
        return True

    def due(self, now: float) -> list[Delivery]:
        rows = self.db.all(
            "SELECT d.id AS delivery_id, d.event_id, d.body, d.attempts, w.* FROM "
            "webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE "
            "d.delivered IS NULL AND d.given_up IS NULL AND d.next_at <= ? ORDER BY d.id",
            (now,),
        )
        return [Delivery(r["delivery_id"], _subscription(r), r["event_id"], r["body"],
                         r["attempts"]) for r in rows]

    def attempted(self, delivery: Delivery, now: float, status: int | None, error: str | None,
                  ok: bool, next_at: float | None) -> None:
        """Log one attempt; ``next_at`` None after a failure: given up."""
        self.db.insert(
            "INSERT INTO webhook_attempts (delivery_id, at, status, error) VALUES (?, ?, ?, ?)",
            (delivery.id, now, status, error),
        )
        if ok:
            self.db.execute("UPDATE webhook_deliveries SET attempts=attempts+1, delivered=? "
                            "WHERE id=?", (now, delivery.id))
        elif next_at is None:
            self.db.execute("UPDATE webhook_deliveries SET attempts=attempts+1, given_up=? "
                            "WHERE id=?", (now, delivery.id))
        else:
            self.db.execute("UPDATE webhook_deliveries SET attempts=attempts+1, next_at=? "
                            "WHERE id=?", (next_at, delivery.id))
        self.db.commit()

    def log(self, tenant: str | None = None) -> list[dict]:
        """Every attempt, oldest first, with its subscription and event."""
        sql = ("SELECT w.id AS webhook, w.tenant, w.url, d.event_id, a.at, a.status, a.error, "
               "d.delivered, d.given_up FROM webhook_attempts a JOIN webhook_deliveries d "
               "ON d.id = a.delivery_id JOIN webhooks w ON w.id = d.webhook_id")
        args: list[object] = []
        if tenant is not None:
            sql, args = sql + " WHERE w.tenant=?", [tenant]
        return self.db.all(sql + " ORDER BY a.id", args)


def _subscription(r: dict) -> Subscription:
    return Subscription(r["id"], r["tenant"], r["url"], r["secret"], r["created"])
