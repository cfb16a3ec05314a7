"""Extension records: intros select an extension, the records after them change it.

An intro that Dovecot rejects leaves a broken selection, so that the updates
after it are skipped rather than written to another extension; an intro with a
stale reset_id selects the extension but its updates are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.index import ext_header_problem
from dovecot_index_tool.format.layouts import UNSIGNED
from dovecot_index_tool.format.replay.ext_layout import (
    add_extension,
    clear_extension,
    resize_extension,
)
from dovecot_index_tool.format.replay.record_map import MapExt, RecordMap
from dovecot_index_tool.format.replay.results import Corrupted

NO_EXT = -1  # no intro seen yet
BROKEN_EXT = -2  # the last intro was rejected
NO_ID = 0xFFFFFFFF  # an intro that names its extension instead


@dataclass(frozen=True)
class Selection:
    """The extension the last intro selected, and the record size it announced."""

    index: int = NO_EXT
    ignore: bool = False
    record_size: int = 0


BROKEN = Selection(BROKEN_EXT, True, 0)


def introduce(m: RecordMap, u: L.ExtIntro, internal: bool = False) -> Selection:
    """Apply one intro: create or resize the extension it names. ``internal`` intros
    (Dovecot's own, for keywords) may name ``keywords`` and select nothing."""
    if u.ext_id != NO_ID and u.ext_id >= len(m.exts):
        raise Corrupted(f"Extension introduction for unknown id {u.ext_id}")
    same = _unchanged(m, u)
    if same is not None:
        return same
    if u.ext_id == NO_ID and u.name_size == 0:
        raise Corrupted("Extension introduction without id or name")
    idx = u.ext_id if u.ext_id != NO_ID else m.ext_index(u.name)
    name = m.exts[idx].name if idx is not None else u.name
    if not internal and name == "keywords":
        raise Corrupted("Extension introduction for keywords")
    problem = ext_header_problem(m.record_size, name, u.hdr_size, 0, u.record_size, u.record_align)
    if problem:
        raise Corrupted(f"Broken extension introduction: {problem}")
    if idx is not None:
        ignore = u.reset_id != m.exts[idx].reset_id
        if not ignore:
            resize_extension(m, idx, u, bool(u.flags & L.INTRO_FLAG_NO_SHRINK))
        return Selection(idx, ignore, u.record_size)
    idx = add_extension(m, name, u)
    return Selection(NO_EXT if internal else idx, False, u.record_size)


def _unchanged(m: RecordMap, u: L.ExtIntro) -> Selection | None:
    """An intro by id of an extension as the map already has it (most intros: every
    transaction introduces the extensions it writes), which ``introduce`` would accept
    and leave as it is; None for every other intro."""
    if u.ext_id == NO_ID:
        return None
    ext = m.exts[u.ext_id]
    if (ext.reset_id != u.reset_id or ext.hdr_size != u.hdr_size or ext.name == "keywords"
            or ext.record_size != u.record_size or ext.record_align != u.record_align
            or ext_header_problem(m.record_size, ext.name, u.hdr_size, 0, u.record_size,
                                  u.record_align)):
        return None
    return Selection(u.ext_id, False, u.record_size)


def selected_ext(m: RecordMap, sel: Selection, missing_intro: str) -> MapExt | None:
    """The extension the last intro selected; None when its updates are to be ignored."""
    if sel.index == NO_EXT:
        raise Corrupted(missing_intro)
    if sel.ignore:
        return None
    return m.exts[sel.index]


def reset(m: RecordMap, sel: Selection, record: L.LogRecord) -> None:
    """A new reset_id for the selected extension, its data cleared unless preserved."""
    if sel.index == NO_EXT:
        raise Corrupted("Extension reset without intro prefix")
    if sel.index == BROKEN_EXT:
        return
    ext = m.exts[sel.index]
    (u,) = record.items
    ext.reset_id = u.new_reset_id
    if not u.preserve_data:
        clear_extension(m, ext)
    m.write_ext_header(ext)


def write_header(m: RecordMap, ext: MapExt, u: L.HeaderUpdate) -> None:
    """One ext-hdr update, which must stay inside the extension's header."""
    if u.offset + u.size > ext.hdr_size:
        raise Corrupted("Extension header update points outside header size")
    start = ext.hdr_offset + u.offset
    m.hdr[start : start + u.size] = u.data


def update_records(m: RecordMap, sel: Selection, record: L.LogRecord) -> None:
    """ext-rec updates: the intro's record size of data, the rest of the field zeroed."""
    ext = selected_ext(m, sel, "Extension record updated without intro prefix")
    if ext is None:
        return
    size = min(sel.record_size, ext.record_size)
    next_uid = m.get("next_uid")
    start = ext.record_offset
    rest = bytes(ext.record_size - size)
    for u in record.items:
        if u.uid == 0 or u.uid >= next_uid:
            raise Corrupted(f"Extension record update for invalid uid={u.uid}")
        seq = m.seq_of(u.uid)
        if seq is None:
            continue
        data = u.data if len(u.data) == size else u.data[:size].ljust(size, b"\0")
        m.records[seq][start : start + size + len(rest)] = data + rest


def increment_records(m: RecordMap, sel: Selection, record: L.LogRecord) -> None:
    """ext-atomic-inc: add to a record field read as an unsigned number of its size."""
    ext = selected_ext(m, sel, "Extension record updated without intro prefix")
    if ext is None:
        return
    for u in record.items:
        if u.uid == 0 or u.uid >= m.get("next_uid"):
            raise Corrupted(f"Extension record inc for invalid uid={u.uid}")
        seq = m.seq_of(u.uid)
        if seq is not None:
            _increment(m, ext, sel.record_size, seq, u)


def _increment(m: RecordMap, ext: MapExt, size: int, seq: int, u: L.AtomicInc) -> None:
    if size not in UNSIGNED:
        raise Corrupted(f"Extension record inc with invalid size={size}")
    max_value = (1 << (8 * size)) - 1
    if u.diff > 0 and u.diff > max_value:
        raise Corrupted(
            f"Extension record inc diff={u.diff} larger than max value={max_value} "
            f"(uid={u.uid})"
        )
    st = m.lay.unsigned(size)
    (orig,) = st.unpack_from(m.records[seq], ext.record_offset)
    new = orig + u.diff
    if new < 0:
        raise Corrupted(
            f"Extension record inc drops number below zero "
            f"(uid={u.uid}, diff={u.diff}, orig={orig})"
        )
    if new > max_value:
        raise Corrupted(
            f"Extension record inc overflows number (uid={u.uid}, diff={u.diff}, orig={orig})"
        )
    st.pack_into(m.records[seq], ext.record_offset, new)
