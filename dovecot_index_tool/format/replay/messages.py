"""Records that add, remove or change messages, and updates of the base header."""

from __future__ import annotations

from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.index import (
    HDR_FLAG_HAVE_DIRTY,
    MAIL_DELETED,
    MAIL_DIRTY,
    MAIL_SEEN,
)
from dovecot_index_tool.format.replay.counters import count_flag_change, lower_lowwaters
from dovecot_index_tool.format.replay.modseqs import Modseqs
from dovecot_index_tool.format.replay.record_map import RecordMap
from dovecot_index_tool.format.replay.results import Corrupted


def append(m: RecordMap, modseqs: Modseqs, record: L.LogRecord) -> None:
    """New messages; their UIDs must be at least ``next_uid``."""
    for item in record.items:
        next_uid = m.get("next_uid")
        if item.uid < next_uid:
            raise Corrupted(f"Append with UID {item.uid}, but next_uid = {next_uid}")
        rec = bytearray(m.record_size)
        m.lay.record_head.pack_into(rec, 0, item.uid, item.flags)
        m.records.append(rec)
        m.uids.append(item.uid)
        m.set("messages_count", m.get("messages_count") + 1)
        m.set("next_uid", item.uid + 1)
        if item.flags & MAIL_DIRTY:
            m.set("flags", m.get("flags") | HDR_FLAG_HAVE_DIRTY)
        modseqs.touch(m, len(m.records) - 1, len(m.records) - 1, record.modseq)
        lower_lowwaters(m, item.uid, item.flags)
        count_flag_change(m, item.uid, 0, item.flags)


def expunge(m: RecordMap, modseqs: Modseqs, record: L.LogRecord) -> None:
    """Remove messages; the counters are settled before any record goes."""
    if not record.external:
        return  # only a request; the backend expunges later
    seqs = sorted(_expunged_seqs(m, record))
    problems = []
    for seq in seqs:
        try:
            count_flag_change(m, m.uids[seq], m.flags(seq), 0)
        except Corrupted as err:
            problems.append(str(err))
    for seq in reversed(seqs):
        del m.records[seq]
        del m.uids[seq]
        m.set("messages_count", m.get("messages_count") - 1)
    if problems:
        raise Corrupted(problems[0])


def _expunged_seqs(m: RecordMap, record: L.LogRecord) -> set[int]:
    seqs: set[int] = set()
    for item in record.items:
        if isinstance(item, L.Range):
            found = m.seq_range(item.uid1, item.uid2)
            if found:
                seqs.update(range(found[0], found[1] + 1))
        else:
            seq = m.seq_of(item.uid)
            if seq is not None:
                seqs.add(seq)
    return seqs


def update_flags(m: RecordMap, modseqs: Modseqs, record: L.LogRecord) -> None:
    """Add and remove flags over UID ranges; every range is applied before a complaint."""
    problems = []
    for u in record.items:
        found = m.seq_range(u.uid1, u.uid2)
        if not found:
            continue
        if not u.internal:
            modseqs.touch(m, *found, record.modseq)
        if u.add_flags & MAIL_DIRTY:
            m.set("flags", m.get("flags") | HDR_FLAG_HAVE_DIRTY)
        mask = ~u.remove_flags & 0xFF
        counted = (u.add_flags | u.remove_flags) & (MAIL_SEEN | MAIL_DELETED)
        for seq in range(found[0], found[1] + 1):
            old = m.records[seq][4]
            new = (old & mask) | u.add_flags
            m.records[seq][4] = new
            if counted:
                lower_lowwaters(m, m.uids[seq], new)
                try:
                    count_flag_change(m, m.uids[seq], old, new, check_next_uid=False)
                except Corrupted as err:
                    problems.append(str(err))
    if problems:
        raise Corrupted(problems[0])


def update_header(m: RecordMap, modseqs: Modseqs, record: L.LogRecord) -> None:
    """Base header writes; ``next_uid`` never goes down and the tail offset is kept."""
    base_size = m.get("base_header_size")
    for u in record.items:
        if u.offset >= base_size or u.offset + u.size > base_size:
            raise Corrupted(f"Header update outside range: {u.offset} + {u.size} > {base_size}")
        tail = m.get("log_file_tail_offset")
        next_uid = m.get("next_uid")
        m.hdr[u.offset : u.offset + u.size] = u.data
        if m.get("next_uid") < next_uid:
            m.set("next_uid", next_uid)
        m.set("log_file_tail_offset", tail)
