"""Keyword records: names live in the ``keywords`` extension header, one bit per record.

Dovecot adds a name the log uses that the header lacks, and grows the extension
(through an intro of its own) when the header or the record bits run out.
"""

from __future__ import annotations

from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import align
from dovecot_index_tool.format.replay.ext_records import NO_ID, introduce
from dovecot_index_tool.format.replay.modseqs import Modseqs
from dovecot_index_tool.format.replay.record_map import RecordMap
from dovecot_index_tool.format.replay.results import Corrupted

ADD, REMOVE = 0, 1  # modify_type


def update_keywords(m: RecordMap, modseqs: Modseqs, record: L.LogRecord) -> None:
    """Set or clear one keyword's bit over UID ranges."""
    (u,) = record.items
    names = m.keywords()
    kw = names.index(u.name) if u.name in names else _add_keyword(m, modseqs, u.name)
    idx = m.ext_index("keywords")
    ext = m.exts[idx]
    if kw // 8 >= ext.record_size:
        if u.modify_type == REMOVE:
            return
        _register(m, idx, ext.reset_id, ext.hdr_size, len(m.keywords()))
        ext = m.exts[m.ext_index("keywords")]
    byte, bit = ext.record_offset + kw // 8, 1 << (kw % 8)
    if byte >= m.record_size:
        raise Corrupted(f"keyword {u.name!r}: its bit lies outside the record")
    for seq in _touched(m, modseqs, u.ranges, record.modseq):
        if u.modify_type == ADD:
            m.records[seq][byte] |= bit
        else:
            m.records[seq][byte] &= ~bit & 0xFF


def reset_keywords(m: RecordMap, modseqs: Modseqs, record: L.LogRecord) -> None:
    """Clear every keyword bit over UID ranges."""
    idx = m.ext_index("keywords")
    if idx is None:
        return
    ext = m.exts[idx]
    for seq in _touched(m, modseqs, record.items, record.modseq):
        m.records[seq][ext.record_offset : ext.record_offset + ext.record_size] = bytes(
            ext.record_size
        )


def _touched(m: RecordMap, modseqs: Modseqs, ranges, modseq: int):
    """The record positions of UID ranges, each range's modseq raised first."""
    for r in ranges:
        found = m.seq_range(r.uid1, r.uid2)
        if not found:
            continue
        modseqs.touch(m, *found, modseq)
        yield from range(found[0], found[1] + 1)


def _add_keyword(m: RecordMap, modseqs: Modseqs, name: str) -> int:
    """Append ``name`` to the keywords header; its number."""
    modseqs.start_if_present(m)
    idx = m.ext_index("keywords")
    ext = m.exts[idx] if idx is not None else None
    old = m.keywords() if ext is not None else []
    count = len(old) + 1
    buf = _header_with(m, old, name)
    if ext is None or len(buf) > ext.hdr_size or ext.record_size * 8 < count:
        buf += bytes(128)
        _register(
            m,
            idx if idx is not None else NO_ID,
            ext.reset_id if ext else 0,
            len(buf),
            count,
        )
        ext = m.exts[m.ext_index("keywords")]
    m.hdr[ext.hdr_offset : ext.hdr_offset + len(buf)] = buf
    return count - 1


def _header_with(m: RecordMap, old: list[str], name: str) -> bytearray:
    """The keywords header data with ``name`` added after the ``old`` names."""
    u32 = m.lay.u32
    if old:
        ext = m.exts[m.ext_index("keywords")]
        data = bytes(m.hdr[ext.hdr_offset : ext.hdr_offset + ext.hdr_size])
        recs_end = 4 + 8 * len(old)
        (last_offset,) = u32.unpack_from(data, recs_end - 4)
        names_end = last_offset + len(old[-1].encode("utf-8")) + 1
        buf = bytearray(u32.pack(len(old) + 1) + data[4:recs_end] + bytes(8))
        buf += data[recs_end : recs_end + names_end]
        name_offset = names_end
    else:
        buf = bytearray(u32.pack(1) + bytes(8))
        name_offset = 0
    m.lay.keyword_entry.pack_into(buf, 4 + 8 * len(old), 0, name_offset)
    buf += name.encode("utf-8") + b"\0"
    buf += bytes(align(len(buf), 4) - len(buf))
    return buf


def _register(m: RecordMap, ext_id: int, reset_id: int, hdr_size: int, count: int) -> None:
    """Dovecot's own intro of the keywords extension, sized for ``count`` keywords."""
    record_size = (count + 7) // 8
    if record_size % 4:
        record_size += 1
    intro = L.ExtIntro(ext_id, reset_id, hdr_size, record_size, 1, 0, 8, "keywords")
    introduce(m, intro, internal=True)
