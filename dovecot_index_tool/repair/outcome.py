"""What became of one mailbox's repair: repaired and verified, failed and put back, or
skipped because it could not be attempted (no mail root to point Dovecot at)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RepairOutcome:
    mailbox: str
    action: str
    verified: bool
    backup: str | None
    changed: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    remaining: tuple[str, ...] = ()
    reason: str = ""
    skipped: bool = False
    setup_error: bool = False  # the setup cannot work: retrying will not help

    @property
    def state(self) -> str:
        if self.skipped:
            return "skipped"
        return "repaired" if self.verified else "failed"

    def to_dict(self) -> dict[str, object]:
        return {
            "mailbox": self.mailbox,
            "action": str(self.action),
            "state": self.state,
            "backup": self.backup,
            "changed": list(self.changed),
            "lost": list(self.lost),
            "remaining": list(self.remaining),
            "reason": self.reason,
            "setup_error": self.setup_error,
        }
