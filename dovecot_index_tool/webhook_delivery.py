"""Webhooks: every state change of a tenant's mailboxes POSTed to its subscriptions as
one signed JSON event, retried with backoff, each attempt logged in the ledger.

The events are the state changes of the one model (``status.changes``) with the
feed's stable ids, so an event is owed once per subscription, however often the
deliverer looks. Only changes from the time a subscription was added are sent.
A POST is signed in ``SIGNATURE_HEADER`` as ``t=UNIX,v1=HEX``: HEX is the
HMAC-SHA256, keyed with the subscription's secret, of ``UNIX`` ``.`` body. Anything
but a 2xx (a redirect included: a signed event is never sent elsewhere) is a failure,
retried after ``backoff_base * 2**(attempts-1)`` seconds, up to ``MAX_ATTEMPTS``.
Deliveries run from ``serve`` or ``report deliver``, never inside a scan.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from dovecot_index_tool.jobqueue.store import JobQueue
from dovecot_index_tool.ledger.webhooks import Delivery, Webhooks
from dovecot_index_tool.report import ReportRow
from dovecot_index_tool.states import Transition
from dovecot_index_tool.status import change_id, changes, component_status, iso, stable_id

SIGNATURE_HEADER = "X-Dovecot-Index-Tool-Signature"
MAX_ATTEMPTS = 8
BACKOFF_BASE = 30.0
BACKOFF_MAX = 3600.0
TIMEOUT = 10.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def event(row: ReportRow, step: Transition) -> dict[str, object]:
    """One state change as a webhook body: old state, new state, the component, the time."""
    return {
        "id": change_id(row, step),
        "type": "mailbox.state_changed",
        "tenant": row.tenant,
        "at": iso(step.at),
        "old_state": step.previous.value if step.previous else None,
        "new_state": step.state.value,
        "component": {
            "id": stable_id("mailbox", row.path),
            "name": f"{row.user} {row.mailbox}",
            "group_id": stable_id("volume", row.volume),
            "status": component_status(step.state, step.worst),
            "user": row.user,
            "mailbox": row.mailbox,
            "worst": step.worst,
            "checks": list(step.checks),
        },
        "evidence": {"job": step.evidence.job, "run": step.evidence.run,
                     "detail": step.evidence.detail},
    }


def collect(queue: JobQueue, hooks: Webhooks, now: float) -> int:
    """Queue every state change owed to a subscription; returns how many are new."""
    new = 0
    for sub in hooks.subscriptions():
        for row, step in reversed(changes(queue, sub.tenant)):  # oldest first
            if step.at >= sub.created and row.tenant == sub.tenant:
                body = json.dumps(event(row, step), sort_keys=True)
                new += hooks.owe(sub, change_id(row, step), body, now)
    hooks.db.commit()
    return new


@dataclass(frozen=True)
class Attempt:
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is an answer (a failure), never followed


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: dict[str, str]) -> Attempt:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as response:
            return Attempt(response.status, None)
    except urllib.error.HTTPError as err:
        return Attempt(err.code, f"HTTP {err.code}")
    except (OSError, ValueError) as err:
        return Attempt(None, str(getattr(err, "reason", err)))


def deliver_due(hooks: Webhooks, now: float | None = None, backoff_base: float = BACKOFF_BASE,
                send: Callable[[str, bytes, dict[str, str]], Attempt] = post) -> list[Attempt]:
    """One attempt at every delivery that is due."""
    results = []
    for delivery in hooks.due(time.time() if now is None else now):
        attempt = _attempt(delivery, send)
        at = time.time()
        tries = delivery.attempts + 1
        retry = None if tries >= MAX_ATTEMPTS else at + min(
            BACKOFF_MAX, backoff_base * 2 ** (tries - 1))
        hooks.attempted(delivery, at, attempt.status, attempt.error, attempt.ok, retry)
        results.append(attempt)
    return results


def _attempt(delivery: Delivery, send) -> Attempt:
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "dovecot-index-tool",
        "X-Dovecot-Index-Tool-Event": delivery.event_id,
        SIGNATURE_HEADER: sign(delivery.webhook.secret, int(time.time()), body),
    }
    return send(delivery.webhook.url, body, headers)


def run(open_queue: Callable[[], JobQueue], stop: threading.Event, interval: float = 10.0,
        backoff_base: float = BACKOFF_BASE) -> None:
    """Collect and deliver every ``interval`` seconds until ``stop``."""
    queue = open_queue()
    hooks = Webhooks(queue.db)
    while True:
        collect(queue, hooks, time.time())
        deliver_due(hooks, backoff_base=backoff_base)
        if stop.wait(interval):
            break
    queue.ledger.close()
