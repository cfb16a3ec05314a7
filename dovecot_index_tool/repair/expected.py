"""What a repaired mailbox must show: every message the files hold, with its flags.

Taken before anything changes, from the mail files and the index files that still
parse, and compared afterwards with what Dovecot shows (``doveadm fetch``):

* maildir: every message file, identified by its base name (or the GUID the uidlist
  gives it), its UID from ``dovecot-uidlist`` and its flags from the file name;
* sdbox: every ``u.N`` file is message UID N; its flags come from the salvaged index;
* mdbox: every salvaged index record whose message the map still references, by its
  128-bit GUID; flags from the same record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from dovecot_index_tool.discovery import MailboxFormat, MailboxLocation, MailRoot
from dovecot_index_tool.files import parse_or_none
from dovecot_index_tool.format.uidlist import parse_maildir_keywords, parse_uidlist
from dovecot_index_tool.repair.doveadm import FetchedMessage
from dovecot_index_tool.repair.inventory import take_inventory
from dovecot_index_tool.repair.list_votes import list_uid_validity
from dovecot_index_tool.repair.map_refs import referenced_map_uids, stored_guids
from dovecot_index_tool.repair.salvage import Salvage, guid_128, majority

MAILDIR_LETTERS = {
    "R": "\\Answered",
    "F": "\\Flagged",
    "T": "\\Deleted",
    "S": "\\Seen",
    "D": "\\Draft",
}


@dataclass(frozen=True)
class ExpectedMessage:
    key: str  # what identifies it in doveadm fetch output, see message_key()
    uid: int | None
    flags: frozenset[str]
    where: str  # file name, or index source, for the report
    flags_known: bool = True  # False: only an older state, or no record at all, says
    restore: bool = True  # put ``flags`` back; False: nothing independent recorded them


@dataclass(frozen=True)
class Expected:
    format: str
    uid_validity: int | None
    next_uid: int | None
    mailbox_guid: str | None
    messages: tuple[ExpectedMessage, ...]
    highest_modseq: int | None = None

    def by_key(self) -> dict[str, ExpectedMessage]:
        return {m.key: m for m in self.messages}


def expected_state(
    root: MailRoot, location: MailboxLocation, saved: Salvage, map_trusted: bool = True
) -> Expected:
    """``map_trusted`` is False for a storage rebuild: the mdbox map is the damaged part,
    so the messages are found in the ``m.N`` files instead."""
    votes = saved.uid_validities
    listed = list_uid_validity(root.list_index_dir, location.name)
    if listed:
        votes += (("dovecot.list.index", listed),)
    if location.format == MailboxFormat.MAILDIR:
        messages, validity, next_uid = _maildir(location)
        votes += (("dovecot-uidlist", validity),) if validity else ()
        next_uid = max(next_uid or 0, saved.next_uid or 0) or None
    elif location.format == MailboxFormat.SDBOX:
        messages, next_uid = _sdbox(location, saved), saved.next_uid
    else:
        messages, next_uid = _mdbox(root, saved, map_trusted), saved.next_uid
    # UIDVALIDITY is what most files record: a client that sees it change downloads
    # the whole mailbox again, so one damaged file must not decide it
    validity = majority(votes, saved.uid_validity)
    return Expected(
        location.format, validity, next_uid, saved.mailbox_guid, tuple(messages),
        saved.highest_modseq,
    )


def with_view(expected: Expected, shown: list[FetchedMessage]) -> Expected:
    """``expected`` plus the messages Dovecot showed before the repair that no file
    accounts for: they must stay visible. Their flags are not evidence (Dovecot read
    them from the damaged index, where garbage shows as keywords or ``\\Deleted``), so
    they are neither put back nor verified. For maildir every message file is already
    expected (Dovecot may show one under its file name instead of its GUID)."""
    if expected.format == MailboxFormat.MAILDIR:
        return expected
    messages = {m.key: m for m in expected.messages}
    for seen in shown:
        key = message_key(expected.format, seen)
        if key not in messages:
            messages[key] = ExpectedMessage(key, None, frozenset(),
                                            f"uid {seen.uid} as Dovecot showed it before",
                                            flags_known=False, restore=False)
    return replace(expected, messages=tuple(messages.values()))


def message_key(mail_format: str, fetched: FetchedMessage) -> str:
    if mail_format == MailboxFormat.SDBOX:
        return str(fetched.uid)
    if mail_format == MailboxFormat.MDBOX:
        return guid_128(fetched.guid)
    return fetched.guid


def _maildir(location: MailboxLocation) -> tuple[list[ExpectedMessage], int | None, int | None]:
    control = Path(location.control_dir or location.index_dir)
    uidlist = parse_or_none(control / "dovecot-uidlist", parse_uidlist)
    keywords = parse_or_none(control / "dovecot-keywords", parse_maildir_keywords)
    letters = dict(keywords.names) if keywords else {}
    records = {r.filename.partition(":")[0]: r for r in uidlist.records} if uidlist else {}
    messages = []
    for disk in take_inventory(location.mail_dir, "maildir").messages:
        record = records.get(disk.key)
        key = (record.guid if record else None) or disk.key
        flags = {MAILDIR_LETTERS[c] for c in disk.flags if c in MAILDIR_LETTERS}
        flags |= {letters[ord(c) - ord("a")] for c in disk.flags if ord(c) - ord("a") in letters}
        messages.append(ExpectedMessage(key, record.uid if record else None,
                                        frozenset(flags), disk.file))
    if uidlist is None:
        return messages, None, None
    return messages, uidlist.uid_validity, uidlist.next_uid


def _sdbox(location: MailboxLocation, saved: Salvage) -> list[ExpectedMessage]:
    known = saved.by_uid()
    messages = []
    for disk in take_inventory(location.mail_dir, "sdbox").messages:
        uid = int(disk.key.partition(".")[2])
        record = known.get(uid)
        flags = record.flags if record else frozenset()
        where = f"{disk.file} (flags from {record.source})" if record else disk.file
        messages.append(ExpectedMessage(str(uid), uid, flags, where,
                                        record is not None and record.current,
                                        record is not None))
    return messages


def _mdbox(root: MailRoot, saved: Salvage, map_trusted: bool) -> list[ExpectedMessage]:
    def kept(message) -> bool:
        if map_trusted:
            return referenced is None or message.map_uid in referenced
        return message.guid in stored

    referenced = stored = None
    if map_trusted and root.map_index_dir is not None:
        referenced = referenced_map_uids(root.map_index_dir)
    if not map_trusted:
        stored = stored_guids(root.storage_dir) if root.storage_dir else frozenset()
    return [
        ExpectedMessage(m.guid, m.uid, m.flags, f"map_uid {m.map_uid} ({m.source})",
                        m.current)
        for m in saved.messages
        if m.guid and kept(m)
    ]
