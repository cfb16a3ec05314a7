"""``report``: who is affected and when they will be back."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from dovecot_index_tool.cli.app import main
from dovecot_index_tool.cli.options import db_option, format_option, open_queue
from dovecot_index_tool.states import ORDER

STATES = [s.value for s in ORDER]


@main.group(invoke_without_command=True)
@click.pass_context
@db_option
@format_option("table", "json", "csv", "html", "atom", "status")
@click.option("--tenant")
@click.option("--volume")
@click.option("--user")
@click.option(
    "--since", metavar="DATE",
    help="Only mailboxes seen damaged since DATE (YYYY-MM-DD or YYYY-MM-DDTHH:MM).",
)
@click.option("--state", type=click.Choice(STATES))
def report(ctx, db_path, fmt, tenant, volume, user, since, state) -> None:
    """Who is affected and when they will be back: one row per damaged mailbox, its
    state (affected, queued, repairing, repaired, failed, not-checked, recurred) since
    when and why, worst severity, first seen, and when it is usable and complete again
    (estimated from the queue plan and the workers serving its volume).
    ``report webhooks`` manages tenants' webhooks, ``report deliver`` sends them."""
    if ctx.invoked_subcommand is not None:
        return
    from dovecot_index_tool.present import report_view
    from dovecot_index_tool.report import Filters, build_report

    since_ts = _since(since)
    queue = open_queue(db_path)
    if fmt in ("atom", "status"):
        _status(queue, tenant, fmt)
        return
    rows = build_report(queue, Filters(tenant, volume, user, since_ts, state))
    writers = {"json": report_view.write_json, "csv": report_view.write_csv,
               "html": report_view.write_html}
    if fmt in writers:
        writers[fmt](rows, sys.stdout)
    else:
        report_view.render_table(rows, Console(highlight=False))


def _since(since: str | None) -> float | None:
    from datetime import datetime

    if not since:
        return None
    try:
        return datetime.fromisoformat(since).timestamp()
    except ValueError:
        raise click.BadParameter(
            "use YYYY-MM-DD or YYYY-MM-DDTHH:MM", param_hint="--since"
        ) from None


def _status(queue, tenant: str | None, fmt: str) -> None:
    from dovecot_index_tool.present.json_out import write_json
    from dovecot_index_tool.status import atom_feed, tenant_status

    if fmt == "atom":
        sys.stdout.write(atom_feed(queue, tenant).decode("utf-8") + "\n")
    else:
        write_json(tenant_status(queue, tenant), sys.stdout)
