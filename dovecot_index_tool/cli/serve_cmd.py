"""``serve``: the report, status JSON and Atom feed over HTTP, read-only."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from dovecot_index_tool.cli.app import main
from dovecot_index_tool.cli.options import db_option, ledger_target, open_queue


@main.command("serve")
@db_option
@click.option(
    "--tokens", "tokens_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True, help="'TOKEN TENANT' per line; TENANT * = all.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8025, show_default=True)
@click.option("--deliver-interval", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Seconds between webhook deliveries; 0: none (run 'report deliver').")
def serve_command(db_path, tokens_file, host, port, deliver_interval) -> None:
    """Serve the report page (/), the status JSON (/status.json) and the Atom feed
    (/feed.atom) read-only over HTTP; each token sees only its tenant's mailboxes.
    Webhook events are delivered from here too, unless --deliver-interval 0."""
    import threading

    from dovecot_index_tool import webhook_delivery
    from dovecot_index_tool.jobqueue.store import JobQueue
    from dovecot_index_tool.ledger.store import Ledger
    from dovecot_index_tool.serve import bind, load_tokens

    open_queue(db_path)  # fail now, not at the first request
    try:
        tokens = load_tokens(tokens_file)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--tokens") from None
    target = ledger_target(db_path)
    server = bind(target, tokens, host, port)
    stop = threading.Event()
    if deliver_interval:
        threading.Thread(target=webhook_delivery.run, daemon=True, args=(
            lambda: JobQueue(Ledger.open(target)), stop, deliver_interval)).start()
    Console(stderr=True).print(f"serving on http://{host}:{port}/")
    try:
        server.run()
    finally:
        stop.set()
