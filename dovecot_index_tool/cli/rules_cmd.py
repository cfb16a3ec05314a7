"""``rules``: the catalogue of checks."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from dovecot_index_tool.cli.app import main
from dovecot_index_tool.cli.options import format_option


@main.command()
@format_option("text", "json", "markdown")
@click.option("--markdown", is_flag=True, help="The same as --format markdown.")
def rules(fmt: str, markdown: bool) -> None:
    """List every check: stable ID, severity, what Dovecot does, the recommended repair."""
    from dovecot_index_tool.check.catalogue import NOT_CHECKED, RULES
    from dovecot_index_tool.present.json_out import write_json
    from dovecot_index_tool.present.rules_view import markdown_catalogue, render_rules

    if fmt == "json":
        write_json(
            {
                "rules": [r.to_dict() for r in RULES.values()],
                "not_checked": [{"check": a, "why": b} for a, b in NOT_CHECKED],
            },
            sys.stdout,
        )
    elif markdown or fmt == "markdown":
        sys.stdout.write(markdown_catalogue())
    else:
        render_rules(Console(highlight=False))
