"""What a damaged mailbox index still tells about its messages, read before a rebuild.

For sdbox and mdbox the flags and keywords of a message live only in the index, so a
rebuild that starts from the message files alone would lose them. Before anything
changes, every index file that still parses is read, most recent first:

1. ``dovecot.index`` with its transaction log replayed over it (the state Dovecot
   would see);
2. ``dovecot.index`` alone (its readable records, when the replay stops early);
3. ``dovecot.index.backup`` with the log replayed over it;
4. ``dovecot.index.backup`` alone.

Each message takes its flags from the first source that has a plausible record of it
(UID above zero, below the header's next UID, in increasing order). A flag removed by a
transaction that the damage destroyed can therefore come back: the repair keeps
everything the files still hold rather than guess what a lost record said.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from dovecot_index_tool.files import IndexSet, parse_or_none, read_index_set
from dovecot_index_tool.format.binary import layout
from dovecot_index_tool.format.extensions import decode_ext_header
from dovecot_index_tool.format.index import IndexFile, parse_index
from dovecot_index_tool.format.replay import replay

INDEX = "dovecot.index"
SYSTEM_FLAGS = (
    (0x01, "\\Answered"),
    (0x02, "\\Flagged"),
    (0x04, "\\Deleted"),
    (0x08, "\\Seen"),
    (0x10, "\\Draft"),
)
HEX_GUID = re.compile(r"^[0-9a-f]{32}$")
MIN_RECORD_SIZE = 12  # a log record header (8 bytes) and the smallest payload


@dataclass(frozen=True)
class KnownMessage:
    """One message as an index file recorded it; ``guid`` is the 128-bit GUID (mdbox)."""

    uid: int
    flags: frozenset[str]
    guid: str | None
    source: str
    map_uid: int | None = None  # mdbox: the message's entry in the map


@dataclass(frozen=True)
class Salvage:
    uid_validity: int | None
    next_uid: int | None
    highest_modseq: int | None
    mailbox_guid: str | None
    messages: tuple[KnownMessage, ...]
    sources: tuple[str, ...]  # what each readable source gave, for the report

    def by_uid(self) -> dict[int, KnownMessage]:
        return {m.uid: m for m in self.messages}

    def by_guid(self) -> dict[str, KnownMessage]:
        return {m.guid: m for m in self.messages if m.guid}


def salvage(index_dir: str | os.PathLike[str]) -> Salvage:
    """Everything the index files in ``index_dir`` still say about the mailbox."""
    prefix = Path(index_dir) / INDEX
    current = read_index_set(prefix, with_cache=False)
    sources = _sources(prefix, current)
    known: dict[int, KnownMessage] = {}
    told = []
    for name, index in sources:
        records = _plausible_records(index, name)
        told.append(f"{name}: {len(records)} record(s)")
        for message in records:
            known.setdefault(message.uid, message)
    header = next((index for _, index in sources if index.header.uid_validity), None)
    return Salvage(
        uid_validity=header.header.uid_validity if header else None,
        next_uid=max((i.header.next_uid for _, i in sources), default=None),
        highest_modseq=_highest_modseq(sources, current.logs),
        mailbox_guid=_mailbox_guid(header) if header else None,
        messages=tuple(known[uid] for uid in sorted(known)),
        sources=tuple(told),
    )


def guid_128(guid: str) -> str:
    """The 128-bit form Dovecot stores for a message GUID: the GUID itself when it is 32
    hex digits, else the last 16 bytes of its SHA-1 (how migrated GUIDs are kept)."""
    if HEX_GUID.match(guid):
        return guid
    return hashlib.sha1(guid.encode()).digest()[4:20].hex()


def system_flags(bits: int) -> frozenset[str]:
    return frozenset(name for bit, name in SYSTEM_FLAGS if bits & bit)


def _sources(prefix: Path, current: IndexSet) -> list[tuple[str, IndexFile]]:
    backup = parse_or_none(f"{prefix}.backup", parse_index)
    found: list[tuple[str, IndexFile]] = []
    if current.logs:
        found.append((f"{INDEX} + log", replay(current.index, current.logs, str(prefix)).index))
    if current.index is not None:
        found.append((INDEX, current.index))
    if backup is not None and current.logs:
        found.append((f"{INDEX}.backup + log", replay(backup, current.logs).index))
    if backup is not None:
        found.append((f"{INDEX}.backup", backup))
    return found


def _plausible_records(index: IndexFile, source: str) -> list[KnownMessage]:
    next_uid = index.header.next_uid or 2**32
    keywords = index.extension("keywords")
    guids = index.extension("guid")
    mdbox = index.extension("mdbox")
    u32 = layout(index.byteorder, "I")
    found: list[KnownMessage] = []
    last = 0
    for record in index.records:
        if not last < record.uid < next_uid:
            continue  # a zeroed or garbled record: another source may know this UID
        last = record.uid
        names = set(system_flags(record.flags))
        if keywords is not None:
            names |= _keywords(record.data, keywords, index.keywords)
        guid = _field(record.data, guids, 16)
        map_uid = None
        if mdbox is not None and mdbox.record_size >= 4:
            map_uid = u32.unpack_from(record.data, mdbox.record_offset)[0]
        found.append(KnownMessage(record.uid, frozenset(names), guid, source, map_uid))
    return found


def _keywords(data: bytes, ext, names: tuple[str, ...]) -> set[str]:
    field = data[ext.record_offset : ext.record_offset + ext.record_size]
    return {
        names[bit]
        for bit in range(min(len(field) * 8, len(names)))
        if field[bit // 8] >> (bit % 8) & 1
    }


def _field(data: bytes, ext, size: int) -> str | None:
    if ext is None or ext.record_size != size:
        return None
    raw = data[ext.record_offset : ext.record_offset + size]
    return raw.hex() if len(raw) == size and any(raw) else None


def _highest_modseq(sources: list[tuple[str, IndexFile]], logs) -> int | None:
    """The highest modification sequence any file reached: a rebuilt index must not go
    below it, or CONDSTORE/QRESYNC clients would miss the changes made after."""
    values = [_ext_header(index, "modseq").get("highest_modseq") for _, index in sources]
    values += [_log_modseq_bound(log) for log in logs]
    numbers = [v for v in values if isinstance(v, int) and v > 0]
    return max(numbers, default=None)


def _log_modseq_bound(log) -> int:
    """The log's last modseq; when records past the damage cannot be read, raised by
    one per record they could hold. Too high is harmless (clients fetch a few changes
    again), too low makes them miss changes."""
    unreadable = max(0, log.size - log.valid_end)
    return log.end_modseq + unreadable // MIN_RECORD_SIZE


def _mailbox_guid(index: IndexFile) -> str | None:
    for name in ("dbox-hdr", "mdbox-hdr"):
        guid = _ext_header(index, name).get("mailbox_guid")
        if isinstance(guid, str) and guid.strip("0"):
            return guid
    return None


def _ext_header(index: IndexFile, name: str) -> dict[str, object]:
    ext = index.extension(name)
    if ext is None:
        return {}
    return decode_ext_header(name, ext.data, index.byteorder) or {}
