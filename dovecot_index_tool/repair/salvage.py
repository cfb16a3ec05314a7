"""What a damaged mailbox index still tells about its messages, read before a rebuild.

For sdbox and mdbox the flags and keywords of a message live only in the index, so a
rebuild that starts from the message files alone would lose them. Before anything
changes, every index file that still parses is read:

1. ``dovecot.index`` with every transaction log (``.log.2`` and ``.log``) replayed over
   it (the state Dovecot would see);
2. ``dovecot.index.backup`` with the logs replayed over it: independent of the damaged
   index, and complete when the logs still chain from the backup's position;
3. ``dovecot.index`` alone and ``dovecot.index.backup`` alone.

A source is *current* when it reaches the end of the newest log with nothing lost on
the way; the others hold an older state. Each message takes its flags from the first
current source with a plausible record of it (UID above zero, below the header's next
UID, in increasing order, no flag bit Dovecot never writes, no keyword bit beyond the
defined keywords). Only when no current source has one, an older state is used, and
the message's flags are marked as not known: the repair puts that older state back
but does not claim it verified them. When ``dovecot.index`` itself is damaged, the
backup replayed to the end of the log comes before it.

``.log.2`` is read here, before Dovecot runs: Dovecot deletes it at its next sync
once ``log2_rotate_time`` is older than ``mail_index_log2_max_age``, which on a
damaged mailbox means during the repair.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dovecot_index_tool.files import IndexSet, parse_or_none, read_index_set
from dovecot_index_tool.format.binary import layout
from dovecot_index_tool.format.extensions import decode_ext_header
from dovecot_index_tool.format.index import IndexFile, parse_index
from dovecot_index_tool.format.log import END_PARTIAL_TRANSACTION, END_UNFINISHED, LogFile
from dovecot_index_tool.format.replay import Replay, replay

INDEX = "dovecot.index"
SYSTEM_FLAGS = (
    (0x01, "\\Answered"),
    (0x02, "\\Flagged"),
    (0x04, "\\Deleted"),
    (0x08, "\\Seen"),
    (0x10, "\\Draft"),
)
NEVER_WRITTEN_FLAG = 0x20  # the old \\Recent bit, always zero on disk since v1.2
DIRTY_FLAG = 0x80  # only with the header's HAVE_DIRTY flag
HDR_HAVE_DIRTY = 0x02
HEX_GUID = re.compile(r"^[0-9a-f]{32}$")
MIN_RECORD_SIZE = 12  # a log record header (8 bytes) and the smallest payload
WHOLE_LOG_RECORDS = (1 << 20) // MIN_RECORD_SIZE  # mail_index_log_rotate_max_size: 1M


@dataclass(frozen=True)
class KnownMessage:
    """One message as an index file recorded it; ``guid`` is the 128-bit GUID (mdbox).
    ``current`` is False when only an older state of the index recorded it."""

    uid: int
    flags: frozenset[str]
    guid: str | None
    source: str
    map_uid: int | None = None  # mdbox: the message's entry in the map
    current: bool = True


@dataclass(frozen=True)
class Source:
    """One readable view of the index: a file, alone or with the logs replayed."""

    name: str
    index: IndexFile
    current: bool  # reaches the end of the newest log, nothing lost on the way
    data: bytes | None = None  # the whole replayed index, when this is a replay


@dataclass(frozen=True)
class Salvage:
    uid_validity: int | None
    next_uid: int | None
    highest_modseq: int | None
    mailbox_guid: str | None
    messages: tuple[KnownMessage, ...]
    sources: tuple[str, ...]  # what each readable source gave, for the report
    uid_validities: tuple[tuple[str, int], ...] = ()  # what each file says
    rebuilt: bytes | None = None  # a complete, current index made of the sources
    rebuilt_from: str | None = None

    def by_uid(self) -> dict[int, KnownMessage]:
        return {m.uid: m for m in self.messages}

    def by_guid(self) -> dict[str, KnownMessage]:
        return {m.guid: m for m in self.messages if m.guid}


def salvage(index_dir: str | os.PathLike[str]) -> Salvage:
    """Everything the index files in ``index_dir`` still say about the mailbox."""
    prefix = Path(index_dir) / INDEX
    current = read_index_set(prefix, with_cache=False)
    read = [(source, _plausible_records(source)) for source in _sources(prefix, current)]
    # a current source whose every record is plausible comes first: when dovecot.index
    # holds damaged records, the backup replayed to the end of the log does
    read.sort(key=lambda sr: (not sr[0].current, not _whole(*sr)))
    sources = [source for source, _ in read]
    known: dict[int, KnownMessage] = {}
    told = []
    for source, records in read:
        told.append(f"{source.name}: {len(records)} record(s)"
                    + ("" if source.current else " (an older state)")
                    + ("" if _whole(source, records) else
                       f", {len(source.index.records) - len(records)} damaged"))
        for message in records:
            if message.uid not in known or (message.current and not known[message.uid].current):
                known[message.uid] = message
    if any(source.current and _whole(source, records) for source, records in read):
        # it lists every message: one that only an older state has was expunged since
        known = {uid: m for uid, m in known.items() if m.current}
    validities = _uid_validities(sources)
    header = next((s.index for s in sources if s.index.header.uid_validity), None)
    rebuilt = next((s for s, records in read if s.data is not None and _whole(s, records)),
                   None)
    return Salvage(
        uid_validity=majority(validities, header.header.uid_validity if header else None),
        next_uid=max((s.index.header.next_uid for s in sources), default=None),
        highest_modseq=_highest_modseq(sources, current.logs),
        mailbox_guid=_mailbox_guid(header) if header else None,
        messages=tuple(known[uid] for uid in sorted(known)),
        sources=tuple(told),
        uid_validities=validities,
        rebuilt=rebuilt.data if rebuilt else None,
        rebuilt_from=rebuilt.name if rebuilt else None,
    )


def majority(votes: tuple[tuple[str, int], ...], tie: int | None) -> int | None:
    """The value most files agree on; on a tie, ``tie`` when it is among the most
    common, else the first of them."""
    counts = Counter(value for _, value in votes if value)
    if not counts:
        return tie
    top = max(counts.values())
    best = [value for value, n in counts.items() if n == top]
    return tie if tie in best else best[0]


def guid_128(guid: str) -> str:
    """The 128-bit form Dovecot stores for a message GUID: the GUID itself when it is 32
    hex digits, else the last 16 bytes of its SHA-1 (how migrated GUIDs are kept)."""
    if HEX_GUID.match(guid):
        return guid
    return hashlib.sha1(guid.encode()).digest()[4:20].hex()


def system_flags(bits: int) -> frozenset[str]:
    return frozenset(name for bit, name in SYSTEM_FLAGS if bits & bit)


def _sources(prefix: Path, current: IndexSet) -> list[Source]:
    """Every readable view, current ones first; the backup replayed over the logs
    before the index when the index itself has damage."""
    backup = parse_or_none(f"{prefix}.backup", parse_index)
    logs, index = current.logs, current.index
    head = _Head.of(logs, (index, backup))
    damaged = index is None or bool(index.problems)
    replayed = []
    if logs and index is not None:
        replayed.append(_replayed(f"{INDEX} + log", replay(index, logs), head, damaged))
    if logs and backup is not None:
        replayed.append(_replayed(f"{INDEX}.backup + log", replay(backup, logs), head,
                                  bool(backup.problems)))
    if damaged:
        replayed.reverse()
    alone = []
    if index is not None:
        alone.append(Source(INDEX, index, head.written_at_end(index)))
    if backup is not None:  # without logs nothing shows the backup is as new as the index
        alone.append(Source(f"{INDEX}.backup", backup,
                            bool(logs) and head.written_at_end(backup)))
    return sorted(replayed + alone, key=lambda s: not s.current)


@dataclass(frozen=True)
class _Head:
    """Where the newest log ends, and the newest position any index file recorded:
    a view older than that position is an older state, however cleanly it replays."""

    log: LogFile | None
    newest_recorded: tuple[int, int]

    @classmethod
    def of(cls, logs: tuple[LogFile, ...], indexes) -> _Head:
        positions = [(i.header.log_file_seq, i.header.log_file_head_offset)
                     for i in indexes if i is not None]
        head = max(logs, key=lambda f: f.header.file_seq) if logs else None
        return cls(head, max(positions, default=(0, 0)))

    @property
    def end(self) -> tuple[int, int]:
        return (self.log.header.file_seq, self.log.valid_end) if self.log else (0, 0)

    @property
    def clean(self) -> bool:
        """Nothing after the log's valid end could hold a committed change: no bytes,
        or only the start of a write that has not finished."""
        return self.log is None or self.log.trailing == 0 or self.log.end_reason in (
            END_UNFINISHED, END_PARTIAL_TRANSACTION)

    def reached(self, position: tuple[int, int]) -> bool:
        return self.clean and position == self.end and position >= self.newest_recorded

    def written_at_end(self, index: IndexFile) -> bool:
        """The file alone is current when it was written at the end of the newest log.
        A log shorter than the index's position was cut: what came after is unknown."""
        if index.problems:
            return False
        h = index.header
        if self.log is None:
            return not h.log_file_seq  # written against a log that is gone: older
        position = (h.log_file_seq, h.log_file_head_offset)
        if position[0] == self.log.header.file_seq and position[1] == self.log.size:
            return True  # the log ends where the index was written: nothing came after
        return self.reached(position)


def _replayed(name: str, result: Replay, head: _Head, base_damaged: bool) -> Source:
    complete = (result.lost is None and not result.issues and not base_damaged
                and head.reached(result.end))
    return Source(name, result.index, complete, result.data if complete else None)


def _whole(source: Source, records: list[KnownMessage]) -> bool:
    """Every record of the source is plausible: none is damaged bytes."""
    return len(records) == len(source.index.records)


def _uid_validities(sources: list[Source]) -> tuple[tuple[str, int], ...]:
    """UIDVALIDITY as each file records it (a replay counts for the file it starts
    from, so that one file does not vote twice)."""
    votes: dict[str, int] = {}
    for source in sources:
        file = source.name.split(" + ")[0]
        if source.index.header.uid_validity and file not in votes:
            votes[file] = source.index.header.uid_validity
    return tuple(votes.items())


def _plausible_records(source: Source) -> list[KnownMessage]:
    index = source.index
    next_uid = index.header.next_uid or 2**32
    keywords = index.extension("keywords")
    guids = index.extension("guid")
    mdbox = index.extension("mdbox")
    u32 = layout(index.byteorder, "I")
    dirty_allowed = bool(index.header.flags & HDR_HAVE_DIRTY)
    found: list[KnownMessage] = []
    last = 0
    for record in index.records:
        if not last < record.uid < next_uid:
            continue  # a zeroed or garbled record: another source may know this UID
        if record.flags & NEVER_WRITTEN_FLAG or (record.flags & DIRTY_FLAG
                                                 and not dirty_allowed):
            continue  # flag bits Dovecot never writes: damaged bytes, not evidence
        names = set(system_flags(record.flags))
        if keywords is not None:
            words = _keywords(record.data, keywords, index.keywords)
            if words is None:
                continue
            names |= words
        last = record.uid
        guid = _field(record.data, guids, 16)
        map_uid = None
        if mdbox is not None and mdbox.record_size >= 4:
            map_uid = u32.unpack_from(record.data, mdbox.record_offset)[0]
        found.append(KnownMessage(record.uid, frozenset(names), guid, source.name, map_uid,
                                  source.current))
    return found


def _keywords(data: bytes, ext, names: tuple[str, ...]) -> set[str] | None:
    """The keywords a record has; None when a bit beyond the defined keywords is set
    (Dovecot never sets one: the bytes are damaged)."""
    field = data[ext.record_offset : ext.record_offset + ext.record_size]
    bits = {bit for bit in range(len(field) * 8) if field[bit // 8] >> (bit % 8) & 1}
    if any(bit >= len(names) for bit in bits):
        return None
    return {names[bit] for bit in bits}


def _field(data: bytes, ext, size: int) -> str | None:
    if ext is None or ext.record_size != size:
        return None
    raw = data[ext.record_offset : ext.record_offset + size]
    return raw.hex() if len(raw) == size and any(raw) else None


def _highest_modseq(sources: list[Source], logs) -> int | None:
    """The highest modification sequence any file reached: a rebuilt index must not go
    below it, or CONDSTORE/QRESYNC clients would miss the changes made after."""
    values = [_ext_header(s.index, "modseq").get("highest_modseq") for s in sources]
    values += [_log_modseq_bound(log) for log in logs]
    values += [_missing_log_bound(s.index, logs) for s in sources if " + " not in s.name]
    numbers = [v for v in values if isinstance(v, int) and v > 0]
    return max(numbers, default=None)


def _log_modseq_bound(log) -> int:
    """The log's last modseq; when records past the damage cannot be read, raised by
    one per record they could hold. Too high is harmless (clients fetch a few changes
    again), too low makes them miss changes."""
    unreadable = max(0, log.size - log.valid_end)
    return log.end_modseq + unreadable // MIN_RECORD_SIZE


def _missing_log_bound(index: IndexFile, logs) -> int:
    """When the log an index file was written against is gone (deleted, or never
    synced to disk), what it held is unknown: the modseq reached is bounded by the
    readable logs before it, a whole log's worth of records for each log missing in
    between, and one per record that fits before the index's position in the missing
    log. Dovecot would start HIGHESTMODSEQ again from the index (1 without CONDSTORE)."""
    seq, offset = index.header.log_file_seq, index.header.log_file_head_offset
    if not seq or any(log.header.file_seq == seq for log in logs):
        return 0
    before = [log for log in logs if log.header.file_seq < seq]
    base = max((_log_modseq_bound(log) for log in before), default=1)
    gone = seq - 1 - max((log.header.file_seq for log in before), default=0)
    return base + gone * WHOLE_LOG_RECORDS + offset // MIN_RECORD_SIZE


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
