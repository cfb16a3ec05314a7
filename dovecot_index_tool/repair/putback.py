"""Putting a mailbox back from its backup, and undoing repairs killed half-way.

The index and control files come back byte for byte from the backup. Maildir keeps
flags in file names, which Dovecot renames while it repairs, so the names the files
had are kept in the backup directory too and given back.
"""

from __future__ import annotations

import os
from pathlib import Path

from dovecot_index_tool.discovery import MailboxLocation
from dovecot_index_tool.repair.inventory import take_inventory
from dovecot_index_tool.repair.quarantine import (
    Backup,
    mark_finished,
    restore_backup,
    unfinished_backups,
)

MAILDIR_NAMES = "maildir-names"  # in the backup directory: the message file names before


def record_names(backup: Backup, location: MailboxLocation) -> None:
    """Maildir flags live in file names, which Dovecot renames: keep the names so that
    putting the mailbox back also puts back the flags its files carried."""
    if location.format != "maildir" or location.mail_dir is None:
        return
    names = [m.file for m in take_inventory(location.mail_dir, "maildir").messages]
    (Path(backup.directory) / MAILDIR_NAMES).write_text("\n".join(names) + "\n")


def put_back(backup: Backup, location: MailboxLocation) -> None:
    """Index files as they were; maildir files renamed since get their names back."""
    restore_backup(backup)
    names = Path(backup.directory) / MAILDIR_NAMES
    if location.mail_dir is None or not names.exists():
        return
    mail_dir = Path(location.mail_dir)
    now = take_inventory(mail_dir, "maildir").by_key()
    for old in names.read_text(encoding="utf-8").split():
        base = old.split("/", 1)[-1].partition(":2,")[0]
        current = now.get(base)
        if current and current.file != old and not (mail_dir / old).exists():
            os.rename(mail_dir / current.file, mail_dir / old)


def recover_unfinished(location: MailboxLocation, backup_root: str) -> list[str]:
    """Put back the mailbox from a repair that was killed half-way; the backup paths."""
    recovered = []
    for backup in unfinished_backups(backup_root, str(location.index_dir)):
        put_back(backup, location)
        mark_finished(backup)
        recovered.append(backup.directory)
    return recovered


def recover_under(path: str | os.PathLike[str], backup_root: str,
                  locate_mailbox) -> list[str]:
    """``recover_unfinished`` for every mailbox below ``path`` (``repair PATH``);
    ``locate_mailbox(index_dir)`` finds the mailbox a backup was taken of."""
    top = os.path.abspath(path)
    recovered = []
    for backup in unfinished_backups(backup_root, None):
        if os.path.commonpath([top, os.path.abspath(backup.mailbox)]) != top:
            continue
        location = locate_mailbox(backup.mailbox)
        if location is not None:
            recovered += recover_unfinished(location, backup_root)
    return recovered


def directories_under(top: str | os.PathLike[str]) -> frozenset[str]:
    """Every directory below ``top`` (not following links): taken before a repair so
    that one which fails can remove what Dovecot created while it tried."""
    found = set()
    for directory, subdirs, _ in os.walk(top):
        found.update(os.path.join(directory, name) for name in subdirs)
    return frozenset(found)


def remove_new_directories(top: str | os.PathLike[str], before: frozenset[str]) -> list[str]:
    """Remove the directories below ``top`` that were not there ``before`` and hold
    nothing but Dovecot's own index and control files (a mailbox Dovecot created while
    it tried, a directory literally named after an unexpanded variable). One that got
    a message or any other file stays. Returns what was removed."""
    removed = []
    for path in sorted(directories_under(top) - before, key=len, reverse=True):
        try:
            entries = os.listdir(path)
            if all(_dovecot_file(os.path.join(path, e)) for e in entries):
                for entry in entries:
                    os.unlink(os.path.join(path, entry))
                os.rmdir(path)
                removed.append(path)
        except OSError:
            continue  # not empty after all, or vanished: leave it
    return removed


def _dovecot_file(path: str) -> bool:
    name = os.path.basename(path)
    return os.path.isfile(path) and not os.path.islink(path) and (
        name.startswith("dovecot") or name in ("subscriptions", "maildirfolder"))
