"""What a replay hands back, and how one record reports that it cannot be applied."""

from __future__ import annotations

from dataclasses import dataclass, field

from dovecot_index_tool.format.index import IndexFile


@dataclass(frozen=True)
class ReplayIssue:
    """A log record that Dovecot would reject or find inconsistent while syncing."""

    file: str | None
    offset: int
    reason: str


@dataclass(frozen=True)
class Replay:
    """The replayed state and how it was reached."""

    index: IndexFile
    start: tuple[int, int]
    end: tuple[int, int]
    applied: int
    reset: bool
    lost: str | None
    issues: tuple[ReplayIssue, ...]
    data: bytes = field(default=b"", repr=False)  # the replayed index, as Dovecot writes it


class Corrupted(Exception):
    """One record could not be applied (Dovecot: ``mail_index_sync_set_corrupted``)."""
