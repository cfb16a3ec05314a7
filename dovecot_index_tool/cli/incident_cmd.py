"""``incident``: what kind of damage, where, since when, and did it come back."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from dovecot_index_tool.cli.app import main
from dovecot_index_tool.cli.options import db_option, format_option, open_queue
from dovecot_index_tool.cli.report_cmd import _since


@main.command()
@db_option
@format_option("text", "json")
@click.option("--since", metavar="DATE",
              help="Only damage first seen since DATE (YYYY-MM-DD or YYYY-MM-DDTHH:MM).")
@click.option("--volume", help="Only this volume.")
@click.option("--window", type=click.FloatRange(min=1), default=60, show_default=True,
              metavar="MINUTES", help="Damage further apart than this is another group.")
def incident(db_path, fmt, since, volume, window) -> None:
    """Open damage grouped by signature, volume, device and time window, each group
    with the layer it points at (storage, memory, dovecot, unknown) and the evidence;
    then the mailboxes damaged again after a verified repair."""
    from dovecot_index_tool.incidents import build_incident
    from dovecot_index_tool.present import incident_view
    from dovecot_index_tool.present.json_out import write_json

    since_ts = _since(since)
    ledger = open_queue(db_path).ledger
    found = build_incident(ledger, since_ts, volume, window * 60)
    if fmt == "json":
        write_json(found.to_dict(), sys.stdout)
    else:
        incident_view.render(found, Console(highlight=False))
