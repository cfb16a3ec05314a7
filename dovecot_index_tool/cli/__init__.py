"""Command line: one module per command (``*_cmd.py``), shared options defined once
(``options.py``), and one place that turns errors into messages and exit statuses
(``app.py``). The commands only wire options to the packages that do the work."""

from dovecot_index_tool.cli import (  # noqa: F401  (each module adds its command)
    check_cmd,
    dump_cmd,
    incident_cmd,
    queue_cmd,
    repair_cmd,
    report_cmd,
    rules_cmd,
    scan_cmd,
    serve_cmd,
    webhooks_cmd,
)
from dovecot_index_tool.cli.app import main, run

__all__ = ["main", "run"]
