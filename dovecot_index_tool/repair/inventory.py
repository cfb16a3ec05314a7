"""What a mailbox holds on disk, independent of its indexes.

A repair is judged against this: it is taken before anything changes and again
afterwards, and every message that was on disk must still be there with the
flags its file carried. For maildir the message files are the truth (the base
name identifies a message, the info part after ``:2,`` carries its flags and
keyword letters); for sdbox each ``u.N`` file is one message with UID N and its
GUID in the metadata block.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from dovecot_index_tool.discovery import MailboxFormat
from dovecot_index_tool.files import read_file
from dovecot_index_tool.format.dbox import parse_dbox
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.format.uidlist import maildir_flags

SDBOX_FILE = re.compile(r"^u\.(\d+)$")


@dataclass(frozen=True)
class DiskMessage:
    """One message file: ``key`` is the maildir base name or the sdbox ``u.N`` name."""

    key: str
    file: str
    size: int
    flags: str = ""
    guid: str | None = None


@dataclass(frozen=True)
class Inventory:
    directory: str
    format: str
    messages: tuple[DiskMessage, ...]
    problems: tuple[str, ...] = ()

    def by_key(self) -> dict[str, DiskMessage]:
        return {m.key: m for m in self.messages}


def take_inventory(directory: str | os.PathLike[str], mail_format: str) -> Inventory:
    """The messages on disk in one mailbox directory (maildir or sdbox ``dbox-Mails``)."""
    directory = Path(directory)
    if mail_format == MailboxFormat.MAILDIR:
        return _maildir(directory)
    if mail_format == MailboxFormat.SDBOX:
        return _sdbox(directory)
    raise ValueError(f"no on-disk inventory for {mail_format!r} mailboxes")


def lost_since(before: Inventory, after: Inventory) -> list[str]:
    """Every message, or flag of a maildir message, that ``before`` held and ``after`` does not."""
    now = after.by_key()
    lost = []
    for message in before.messages:
        kept = now.get(message.key)
        if kept is None:
            lost.append(f"{message.file}: message no longer on disk")
        elif missing := sorted(set(message.flags) - set(kept.flags)):
            lost.append(f"{message.file}: flags {''.join(missing)} no longer set")
        elif message.guid and kept.guid != message.guid:
            lost.append(f"{message.file}: GUID changed from {message.guid} to {kept.guid}")
    return lost


def _maildir(directory: Path) -> Inventory:
    messages, problems = [], []
    for sub in ("new", "cur"):
        for entry in _entries(directory / sub, problems):
            if not entry.is_file(follow_symlinks=False):
                continue
            base, flags = maildir_flags(entry.name) or (entry.name, "")
            size = _size(entry, problems)
            if size is not None:
                flags = "".join(sorted(flags))
                messages.append(DiskMessage(base, f"{sub}/{entry.name}", size, flags))
    return Inventory(str(directory), "maildir", _sorted(messages), tuple(problems))


def _sdbox(directory: Path) -> Inventory:
    messages, problems = [], []
    for entry in _entries(directory, problems):
        if not SDBOX_FILE.match(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            parsed = parse_dbox(read_file(entry.path).data, entry.path)
        except OSError as exc:
            problems.append(f"{entry.path}: {exc.strerror or exc}")
            continue
        except FormatError as err:
            problems.append(str(err))
            parsed = None
        guid = parsed.messages[0].guid if parsed and parsed.messages else None
        size = parsed.size if parsed else _size(entry, problems) or 0
        messages.append(DiskMessage(entry.name, entry.name, size, "", guid))
    return Inventory(str(directory), "sdbox", _sorted(messages), tuple(problems))


def _entries(directory: Path, problems: list[str]) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as it:
            return list(it)
    except FileNotFoundError:
        return []
    except OSError as exc:
        problems.append(f"{directory}: {exc.strerror or exc}")
        return []


def _size(entry: os.DirEntry, problems: list[str]) -> int | None:
    try:
        return entry.stat(follow_symlinks=False).st_size
    except OSError as exc:
        problems.append(f"{entry.path}: {exc.strerror or exc}")
        return None


def _sorted(messages: list[DiskMessage]) -> tuple[DiskMessage, ...]:
    return tuple(sorted(messages, key=lambda m: m.key))
