"""``report webhooks add|list|remove|log`` and ``report deliver``: tenants' webhook
subscriptions in the ledger, and the process that sends their events."""

from __future__ import annotations

import secrets
import sys
import threading

import click

from dovecot_index_tool.cli.options import db_option, format_option, open_queue
from dovecot_index_tool.cli.report_cmd import report
from dovecot_index_tool.errors import NotFound, UsageProblem


@report.group("webhooks")
def webhooks() -> None:
    """A tenant's webhook subscriptions: every state change of its mailboxes is POSTed
    to each URL as a signed JSON event."""


def _hooks(db_path):
    from dovecot_index_tool.ledger.webhooks import Webhooks

    return Webhooks(open_queue(db_path).db)


@webhooks.command("add")
@db_option
@click.option("--tenant", required=True)
@click.option("--url", required=True, help="http:// or https:// URL the events are POSTed to.")
@click.option("--secret", help="Signing secret (default: a new random one, printed).")
def add(db_path, tenant, url, secret) -> None:
    """Subscribe URL to TENANT's state changes from now on."""
    if not url.startswith(("http://", "https://")):
        raise UsageProblem(f"--url {url}: give an http:// or https:// URL")
    secret = secret or secrets.token_urlsafe(32)
    webhook_id = _hooks(db_path).add(tenant, url, secret)
    click.echo(f"webhook {webhook_id} for {tenant}: {url}\nsecret: {secret}")


@webhooks.command("list")
@db_option
@click.option("--tenant")
@format_option("table", "json")
def list_(db_path, tenant, fmt) -> None:
    """The subscriptions (secrets not shown)."""
    from dovecot_index_tool.present.json_out import write_json

    subs = [{"id": s.id, "tenant": s.tenant, "url": s.url, "created": s.created}
            for s in _hooks(db_path).subscriptions(tenant)]
    if fmt == "json":
        write_json({"webhooks": subs}, sys.stdout)
        return
    for s in subs:
        click.echo(f"{s['id']}\t{s['tenant']}\t{s['url']}")


@webhooks.command("remove")
@db_option
@click.argument("webhook_id", type=int)
def remove(db_path, webhook_id) -> None:
    """Remove a subscription and its pending deliveries."""
    if not _hooks(db_path).remove(webhook_id):
        raise NotFound(f"no webhook {webhook_id}")


@webhooks.command("log")
@db_option
@click.option("--tenant")
def log(db_path, tenant) -> None:
    """Every delivery attempt as JSON: subscription, event, time, HTTP status or error."""
    from dovecot_index_tool.present.json_out import write_json

    write_json({"attempts": _hooks(db_path).log(tenant)}, sys.stdout)


@report.command("deliver")
@db_option
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", type=click.FloatRange(0.1), default=10.0, show_default=True,
              help="Seconds between passes.")
def deliver(db_path, once, interval) -> None:
    """Send the webhook events owed (retrying failures with backoff) until stopped."""
    from dovecot_index_tool import webhook_delivery
    from dovecot_index_tool.jobqueue.store import JobQueue
    from dovecot_index_tool.ledger.store import Ledger

    queue = open_queue(db_path)
    target = queue.ledger.path
    stop = threading.Event()
    if once:
        stop.set()
    try:
        webhook_delivery.run(lambda: JobQueue(Ledger.open(target)), stop, interval)
    except KeyboardInterrupt:
        stop.set()
