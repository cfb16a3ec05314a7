"""Command line: one module per command (``*_cmd.py``), shared options defined once
(``options.py``), and one place that turns errors into messages and exit statuses
(``app.py``). The commands only wire options to the packages that do the work; each
command's module is imported when that command runs (``app.COMMAND_MODULES``)."""

from dovecot_index_tool.cli.app import main, run

__all__ = ["main", "run"]
