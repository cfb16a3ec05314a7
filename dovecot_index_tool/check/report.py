"""What checking one mailbox gives back, apart from the checks that make it.

Why a module of its own: a scan's parent, and an ``--incremental`` run that reads no
mailbox, handle reports without running a check; importing the checks (and the
parsers under them) would cost them a tenth of a small run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dovecot_index_tool.check.findings import Finding


@dataclass(frozen=True)
class MailboxReport:
    """The findings of one mailbox (or of a user-level file such as the mdbox map)."""

    path: str
    name: str
    format: str
    findings: tuple[Finding, ...] = ()
    messages: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "name": self.name,
            "format": self.format,
            "messages": self.messages,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class References:
    """mdbox map references counted over all mailboxes of a user."""

    counts: Counter = field(default_factory=Counter)
    complete: bool = True


def unreadable_report(where: str, reason: str) -> MailboxReport:
    """A directory that could not be looked into: whatever is behind it was not checked."""
    return MailboxReport(
        where,
        "(unreadable)",
        "unknown",
        (Finding("scanner.unreadable", where, f"cannot look into {where}: {reason}"),),
    )
