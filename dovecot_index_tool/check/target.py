"""``check PATH``: find what PATH is (home, mail root or one mailbox) and check it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dovecot_index_tool.check.report import MailboxReport, unreadable_report
from dovecot_index_tool.check.runner import check_locations
from dovecot_index_tool.discovery import iter_mailboxes, locate, noting_unreadable
from dovecot_index_tool.errors import ToolError


class NothingToCheck(ToolError, LookupError):
    """PATH holds no Dovecot mailbox that could be recognised."""


def check_path(
    path: Path, index_root: Path | None = None, control_root: Path | None = None
) -> Iterator[MailboxReport]:
    """Reports for every mailbox under ``path`` and for its user's shared files, then for
    every directory that could not be looked into (what is behind it was not checked)."""
    with noting_unreadable() as unreadable:
        yield from _reports(path, index_root, control_root)
    for where, reason in unreadable.items():
        yield unreadable_report(where, reason)


def _reports(
    path: Path, index_root: Path | None, control_root: Path | None
) -> Iterator[MailboxReport]:
    root, mailboxes = locate(path, index_root, control_root)
    if root is None and not mailboxes:
        raise NothingToCheck(f"no Dovecot mailbox found at {path}")
    if root is not None and not mailboxes:
        mailboxes = list(iter_mailboxes(root))
        complete = True
    else:
        complete = False
    if root is None:
        yield from check_locations(mailboxes, None, None, None, complete=False)
        return
    yield from check_locations(
        mailboxes, root.list_index_dir, root.map_index_dir, root.storage_dir, complete
    )
