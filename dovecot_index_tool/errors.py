"""The one error model of the commands: an error class per failure, whose docstring is
its message template and which carries its exit status (as borg does).

Commands raise these; one place (``cli/app.py``) prints the message in one line and
exits with the status. Anything else that escapes a command is an internal error:
its own exit bit, and a pointer to the traceback, never a status that means success.
"""

from __future__ import annotations

from dovecot_index_tool.exitcodes import Exit


class ToolError(Exception):
    """{}"""

    exit_status: Exit = Exit.OPERATIONAL_ERROR

    def message(self) -> str:
        """The docstring's first line filled with the arguments; a class whose
        docstring only explains it says what it was raised with."""
        template = (type(self).__doc__ or "{}").strip().splitlines()[0]
        if "{" not in template:
            return str(self) or template
        return template.format(*self.args) if self.args else template


class UsageProblem(ToolError):
    """{}"""

    exit_status = Exit.USAGE


class NotFound(ToolError):
    """{}"""


class LedgerUnavailable(ToolError):
    """ledger {}: {}"""


class NoLedger(ToolError):
    """no ledger at {}: scan first, or check --db"""


class Unreadable(ToolError):
    """{}"""


class DovecotConfigUnavailable(ToolError):
    """Dovecot configuration {}: {}"""


class UsersNotListable(ToolError):
    """{}: give VOLUME and --layout (scan) or PATH (check, repair) instead"""

    exit_status = Exit.USAGE


class UnknownUser(ToolError):
    """user {} is not in the userdb of {}"""

    exit_status = Exit.USAGE
