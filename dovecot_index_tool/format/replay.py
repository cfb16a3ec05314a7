"""Mailbox state = ``dovecot.index`` + the log records after its head offset.

This replays the transaction log over the index the way Dovecot does when it
opens an index (``mail_index_sync_map`` for the head): it works on the same byte
layout Dovecot keeps in memory (header buffer, extension headers, fixed-size
records), so the result is the ``dovecot.index`` Dovecot would write next, and
it is parsed back with :func:`parse_index`. Where a record contradicts the state
(an append below ``next_uid``, a flag change of a UID past ``next_uid``) the
problem is recorded with its file and offset instead of being repaired.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import LITTLE, align, layout
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.format.index import (
    BASE_HEADER_SIZE,
    EXT_HEADER_SIZE,
    HDR_FLAG_FSCKD,
    HDR_FLAG_HAVE_DIRTY,
    HEADER_OFFSETS,
    MAIL_DELETED,
    MAIL_DIRTY,
    MAIL_SEEN,
    IndexFile,
    ext_header_problem,
    parse_index,
    parse_keywords_header,
)

NO_EXT = -1  # no intro seen yet
BROKEN_EXT = -2  # the last intro was rejected
LOG_HEADER_SIZE = 40


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


@dataclass
class _Ext:
    name: str
    ext_offset: int
    hdr_offset: int
    hdr_size: int
    reset_id: int
    record_offset: int
    record_size: int
    record_align: int


class _Corrupted(Exception):
    """One record could not be applied (Dovecot: ``mail_index_sync_set_corrupted``)."""


class _Map:
    """Dovecot's in-memory map: header buffer, extensions and records."""

    def __init__(self, bo: str, header: bytearray, exts: list[_Ext], records: list[bytearray]):
        self.bo = bo
        self.hdr = header
        self.exts = exts
        self.records = records
        self.uids = [layout(bo, "I").unpack_from(r, 0)[0] for r in records]

    # base header fields -------------------------------------------------
    def get(self, name: str) -> int:
        offset, size = HEADER_OFFSETS[name]
        code = {1: "B", 2: "H", 4: "I"}[size]
        return layout(self.bo, code).unpack_from(self.hdr, offset)[0]

    def set(self, name: str, value: int) -> None:
        offset, size = HEADER_OFFSETS[name]
        code = {1: "B", 2: "H", 4: "I"}[size]
        layout(self.bo, code).pack_into(self.hdr, offset, value & ((1 << (8 * size)) - 1))

    @property
    def record_size(self) -> int:
        return self.get("record_size")

    # lookups ------------------------------------------------------------
    def ext_index(self, name: str) -> int | None:
        for i, ext in enumerate(self.exts):
            if ext.name == name:
                return i
        return None

    def seq_range(self, uid1: int, uid2: int) -> tuple[int, int] | None:
        """0-based [first, last] positions of records with uid1 <= uid <= uid2."""
        lo = bisect.bisect_left(self.uids, uid1)
        hi = bisect.bisect_right(self.uids, uid2) - 1
        return (lo, hi) if lo <= hi else None

    def seq_of(self, uid: int) -> int | None:
        found = self.seq_range(uid, uid)
        return found[0] if found else None

    def flags(self, i: int) -> int:
        return self.records[i][4]

    def keywords(self) -> list[str]:
        i = self.ext_index("keywords")
        if i is None:
            return []
        ext = self.exts[i]
        data = bytes(self.hdr[ext.hdr_offset : ext.hdr_offset + ext.hdr_size])
        try:
            return list(parse_keywords_header(data, self.bo))
        except FormatError:
            return []

    def write_ext_header(self, ext: _Ext) -> None:
        layout(self.bo, "IIHHH").pack_into(
            self.hdr,
            ext.ext_offset,
            ext.hdr_size,
            ext.reset_id,
            ext.record_offset,
            ext.record_size,
            ext.record_align,
        )

    def to_bytes(self) -> bytes:
        self.set("header_size", len(self.hdr))
        return bytes(self.hdr) + b"".join(bytes(r) for r in self.records)


def _map_from_index(index: IndexFile, data_header: bytes) -> _Map:
    exts = [
        _Ext(
            e.name,
            e.offset,
            e.data_offset,
            e.hdr_size,
            e.reset_id,
            e.record_offset,
            e.record_size,
            e.record_align,
        )
        for e in index.extensions
    ]
    records = [bytearray(r.data) for r in index.records]
    return _Map(index.byteorder, bytearray(data_header), exts, records)


def _empty_map(bo: str, indexid: int, fsckd: bool = False) -> _Map:
    """``mail_index_header_init``: what Dovecot starts from without ``dovecot.index``."""
    m = _Map(bo, bytearray(BASE_HEADER_SIZE), [], [])
    for name, value in (
        ("major_version", 7),
        ("minor_version", 3),
        ("base_header_size", BASE_HEADER_SIZE),
        ("header_size", BASE_HEADER_SIZE),
        ("record_size", 8),
        ("compat_flags", 1 if bo == LITTLE else 0),
        ("indexid", indexid),
        ("log_file_seq", 1),
        ("next_uid", 1),
        ("first_recent_uid", 1),
        ("flags", HDR_FLAG_FSCKD if fsckd else 0),
    ):
        m.set(name, value)
    return m


def replay(index: IndexFile | None, logs: Sequence[L.LogFile], path: str | None = None) -> Replay:
    """Replay ``logs`` (``.log.2`` and ``.log``, any order) over ``index`` (may be None)."""
    files = sorted(logs, key=lambda f: f.header.file_seq)
    head = files[-1] if files else None
    if index is not None:
        raw_header = _header_bytes(index)
        base = _map_from_index(index, raw_header)
        out_path = index.path
    else:
        bo = head.byteorder if head else LITTLE
        base = _empty_map(bo, head.header.indexid if head else 0)
        out_path = path
    engine = _Engine(base, files)
    engine.run()
    data = engine.map.to_bytes()
    state = parse_index(data, out_path)
    return Replay(
        state,
        engine.start,
        engine.end,
        engine.applied,
        engine.reset,
        engine.lost,
        tuple(engine.issues),
        data,
    )


def _header_bytes(index: IndexFile) -> bytes:
    """The header area as stored, with the record count that actually fits."""
    raw = bytearray(index.header_data)
    layout(index.byteorder, "I").pack_into(raw, 32, len(index.records))
    return bytes(raw)


class _Engine:
    """Runs one sync of the map from its log position to the end of the head log."""

    def __init__(self, base: _Map, files: list[L.LogFile]) -> None:
        self.map = base
        self.files = files
        self.issues: list[ReplayIssue] = []
        self.applied = 0
        self.reset = False
        self.lost: str | None = None
        seq, head_offset = base.get("log_file_seq"), base.get("log_file_head_offset")
        self.start = (seq, head_offset)
        self.end = self.start
        self.cur_ext = NO_EXT
        self.cur_ignore = False
        self.cur_rec_size = 0
        self.internal = False
        self.modseq_on = False
        self.current: L.LogRecord | None = None
        self.current_file: L.LogFile | None = None

    # view --------------------------------------------------------------
    def run(self) -> None:
        if not self.files:
            self.lost = "no transaction log"
            return
        view = self._view()
        if view is None:
            return
        head = self.files[-1]
        max_tail = _tail_tracking(head)
        had_dirty = bool(self.map.get("flags") & HDR_FLAG_HAVE_DIRTY)
        if had_dirty:
            self.map.set("flags", self.map.get("flags") & ~HDR_FLAG_HAVE_DIRTY)
        self.modseq_on = self.map.ext_index("modseq") is not None
        if self.modseq_on:
            self._modseq_init(view[0][0].header.file_seq, view[0][1])
        for log_file, start in view:
            if not self._apply_file(log_file, start):
                break
        if had_dirty and any(r[4] & MAIL_DIRTY for r in self.map.records):
            self.map.set("flags", self.map.get("flags") | HDR_FLAG_HAVE_DIRTY)
        self.end = (head.header.file_seq, head.valid_end)
        self._finish(head, max_tail)

    def _view(self) -> list[tuple[L.LogFile, int]] | None:
        """Which files and from which offset to read (``mail_transaction_log_view_set``)."""
        by_seq = {f.header.file_seq: f for f in self.files}
        head = self.files[-1]
        seq, offset = self.start
        for f in self.files:
            if f.header.prev_file_seq == seq and offset == f.header.prev_file_offset:
                seq, offset = f.header.file_seq, f.header.hdr_size
                break
        if seq > head.header.file_seq:
            return self._lose(f"Requested newer log than exists: seq={seq}")
        chain: list[L.LogFile] = []
        s = seq
        while s <= head.header.file_seq:
            f = by_seq.get(s)
            if f is None:
                f = next(
                    (
                        x
                        for x in self.files
                        if x.header.file_seq >= s and x.header.prev_file_seq == 0
                    ),
                    None,
                )
                if f is None:
                    have = ",".join(str(x) for x in sorted(by_seq))
                    return self._lose(
                        f"Missing middle file seq={s} (between {seq}..{head.header.file_seq}, "
                        f"we have seqs {have})"
                    )
                chain = []
                s = f.header.file_seq
            chain.append(f)
            s += 1
        tail = chain[0]
        if tail.header.file_seq != seq:
            offset = 0
        if offset == 0:
            offset = tail.header.hdr_size
        if offset < tail.header.hdr_size:
            return self._lose(
                f"Invalid min_file_offset: file_seq={seq}, min_file_offset ({offset}) "
                f"< hdr_size ({tail.header.hdr_size})"
            )
        if offset > tail.valid_end:
            return self._lose(
                f"Invalid offset: file_seq={seq}, min_file_offset ({offset}) "
                f"> sync_offset ({tail.valid_end})"
            )
        view = [(f, offset if f is tail else f.header.hdr_size) for f in chain]
        for i in range(len(view) - 1, -1, -1):
            f, start = view[i]
            if f.header.prev_file_seq == 0 and (i > 0 or start == f.header.hdr_size):
                view = [(f, f.header.hdr_size), *view[i + 1 :]]
                self._reset(f)
                break
        return view

    def _lose(self, reason: str) -> None:
        self.lost = reason
        return None

    def _reset(self, first: L.LogFile) -> None:
        """A reset log starts the index over: only indexid, FSCKD and the log seq remain."""
        old = self.map
        self.reset = True
        self.map = _empty_map(old.bo, old.get("indexid"), bool(old.get("flags") & HDR_FLAG_FSCKD))
        self.map.set("log_file_seq", first.header.file_seq)
        self.map.set("log_file_tail_offset", 0)

    def _apply_file(self, log_file: L.LogFile, start: int) -> bool:
        self.current_file = log_file
        for record in log_file.records:
            if record.offset < start:
                continue
            if record.error is not None:
                self._issue(record, record.error.reason)
                return False
            self.current = record
            try:
                self._apply(record)
            except _Corrupted as err:
                self._issue(record, str(err))
            self.applied += 1
        return True

    def _issue(self, record: L.LogRecord, reason: str) -> None:
        path = self.current_file.path if self.current_file else None
        self.issues.append(ReplayIssue(path, record.offset, reason))

    def _finish(self, head: L.LogFile, max_tail: int) -> None:
        m = self.map
        if self.modseq_on:
            self._modseq_header_update(head.header.file_seq, head.valid_end, head.end_modseq)
        if m.get("log_file_seq") != head.header.file_seq:
            m.set("log_file_seq", head.header.file_seq)
            m.set("log_file_tail_offset", 0)
        m.set("log_file_head_offset", head.valid_end)
        if m.get("log_file_tail_offset") < max_tail:
            m.set("log_file_tail_offset", max_tail)
        m.set("messages_count", len(m.records))

    # records -----------------------------------------------------------
    def _apply(self, record: L.LogRecord) -> None:
        handler = _HANDLERS.get(record.base_code)
        if handler is None:
            raise _Corrupted(f"Unknown transaction record type 0x{record.code:x}")
        handler(self, record)

    def _append(self, record: L.LogRecord) -> None:
        m = self.map
        for item in record.items:
            next_uid = m.get("next_uid")
            if item.uid < next_uid:
                raise _Corrupted(f"Append with UID {item.uid}, but next_uid = {next_uid}")
            rec = bytearray(m.record_size)
            layout(m.bo, "IB").pack_into(rec, 0, item.uid, item.flags)
            m.records.append(rec)
            m.uids.append(item.uid)
            m.set("messages_count", m.get("messages_count") + 1)
            m.set("next_uid", item.uid + 1)
            if item.flags & MAIL_DIRTY:
                m.set("flags", m.get("flags") | HDR_FLAG_HAVE_DIRTY)
            self._modseq_touch(len(m.records) - 1, len(m.records) - 1)
            self._lowwaters(item.uid, item.flags)
            self._counts(item.uid, 0, item.flags)

    def _expunge(self, record: L.LogRecord) -> None:
        if not record.external:
            return  # only a request; the backend expunges later
        m = self.map
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
        problems = []
        for seq in sorted(seqs):
            try:
                self._counts(m.uids[seq], m.flags(seq), 0)
            except _Corrupted as err:
                problems.append(str(err))
        for seq in sorted(seqs, reverse=True):
            del m.records[seq]
            del m.uids[seq]
            m.set("messages_count", m.get("messages_count") - 1)
        if problems:
            raise _Corrupted(problems[0])

    def _flag_update(self, record: L.LogRecord) -> None:
        m = self.map
        problems = []
        for u in record.items:
            found = m.seq_range(u.uid1, u.uid2)
            if not found:
                continue
            if not u.internal:
                self._modseq_touch(*found)
            if u.add_flags & MAIL_DIRTY:
                m.set("flags", m.get("flags") | HDR_FLAG_HAVE_DIRTY)
            mask = ~u.remove_flags & 0xFF
            counted = (u.add_flags | u.remove_flags) & (MAIL_SEEN | MAIL_DELETED)
            for seq in range(found[0], found[1] + 1):
                old = m.records[seq][4]
                new = (old & mask) | u.add_flags
                m.records[seq][4] = new
                if counted:
                    self._lowwaters(m.uids[seq], new)
                    try:
                        self._counts(m.uids[seq], old, new, check_next_uid=False)
                    except _Corrupted as err:
                        problems.append(str(err))
        if problems:
            raise _Corrupted(problems[0])

    def _header_update(self, record: L.LogRecord) -> None:
        m = self.map
        base_size = m.get("base_header_size")
        for u in record.items:
            if u.offset >= base_size or u.offset + u.size > base_size:
                raise _Corrupted(
                    f"Header update outside range: {u.offset} + {u.size} > {base_size}"
                )
            tail = m.get("log_file_tail_offset")
            next_uid = m.get("next_uid")
            m.hdr[u.offset : u.offset + u.size] = u.data
            if m.get("next_uid") < next_uid:
                m.set("next_uid", next_uid)
            m.set("log_file_tail_offset", tail)

    # extensions --------------------------------------------------------
    def _ext_intro(self, record: L.LogRecord) -> None:
        for intro in record.items:
            self._one_intro(intro)

    def _one_intro(self, u: L.ExtIntro) -> None:
        m = self.map
        self.cur_ext, self.cur_ignore, self.cur_rec_size = BROKEN_EXT, True, 0
        if u.ext_id != 0xFFFFFFFF and u.ext_id >= len(m.exts):
            raise _Corrupted(f"Extension introduction for unknown id {u.ext_id}")
        if u.ext_id == 0xFFFFFFFF and u.name_size == 0:
            raise _Corrupted("Extension introduction without id or name")
        idx = u.ext_id if u.ext_id != 0xFFFFFFFF else m.ext_index(u.name)
        name = m.exts[idx].name if idx is not None else u.name
        if not self.internal and name == "keywords":
            raise _Corrupted("Extension introduction for keywords")
        problem = ext_header_problem(
            m.record_size, name, u.hdr_size, 0, u.record_size, u.record_align
        )
        if problem:
            raise _Corrupted(f"Broken extension introduction: {problem}")
        self.cur_rec_size = u.record_size
        if idx is not None:
            ext = m.exts[idx]
            self.cur_ignore = u.reset_id != ext.reset_id
            if not self.cur_ignore:
                self._resize(u, idx, bool(u.flags & L.INTRO_FLAG_NO_SHRINK))
            self.cur_ext = idx
            return
        idx = self._new_ext(name, u)
        self.cur_ignore = False
        self.cur_ext = NO_EXT if self.internal else idx

    def _new_ext(self, name: str, u: L.ExtIntro) -> int:
        m = self.map
        m.hdr.extend(bytes(align(len(m.hdr), 8) - len(m.hdr)))
        encoded = name.encode("ascii")
        ext_offset = len(m.hdr)
        hdr_offset = ext_offset + align(EXT_HEADER_SIZE + len(encoded), 8)
        ext = _Ext(
            name, ext_offset, hdr_offset, u.hdr_size, u.reset_id, 0, u.record_size, u.record_align
        )
        m.hdr.extend(
            layout(m.bo, "IIHHHH").pack(
                u.hdr_size, u.reset_id, 0, u.record_size, u.record_align, len(encoded)
            )
        )
        m.hdr.extend(encoded)
        m.hdr.extend(bytes(hdr_offset - len(m.hdr) + align(u.hdr_size, 8)))
        m.exts.append(ext)
        m.set("header_size", len(m.hdr))
        self._reorder(len(m.exts) - 1, 0)
        if self.modseq_on is False and name == "modseq":
            pass  # tracking starts with the modseq header update that follows
        return len(m.exts) - 1

    def _resize(self, u: L.ExtIntro, idx: int, no_shrink: bool) -> None:
        m = self.map
        ext = m.exts[idx]
        old_pad, new_pad = align(ext.hdr_size, 8), align(u.hdr_size, 8)
        if ext.record_align == u.record_align and ext.record_size == u.record_size:
            if new_pad < old_pad and no_shrink:
                return
            if new_pad >= old_pad and ext.hdr_size == u.hdr_size:
                return
        if new_pad < old_pad:
            if no_shrink:
                new_pad = old_pad
            else:
                del m.hdr[ext.hdr_offset + new_pad : ext.hdr_offset + old_pad]
                ext.hdr_size = u.hdr_size
        elif new_pad > old_pad:
            at = ext.hdr_offset + old_pad
            m.hdr[at:at] = bytes(new_pad - old_pad)
            ext.hdr_size = u.hdr_size
        else:
            ext.hdr_size = u.hdr_size
        reorder = False
        if ext.record_align < u.record_align or (
            ext.record_align > u.record_align and not no_shrink
        ):
            ext.record_align = u.record_align
            reorder = True
        old_record_size = ext.record_size
        if ext.record_size < u.record_size or (ext.record_size > u.record_size and not no_shrink):
            ext.record_size = u.record_size
            reorder = True
        m.set("header_size", len(m.hdr))
        m.write_ext_header(ext)
        if new_pad != old_pad:
            for later in m.exts[idx + 1 :]:
                later.ext_offset += new_pad - old_pad
                later.hdr_offset += new_pad - old_pad
        if reorder:
            self._reorder(idx, old_record_size)

    def _reorder(self, idx: int, old_ext_size: int) -> None:
        """``sync_ext_reorder``: lay the record fields out again, widest alignment first."""
        m = self.map
        old_offsets = [e.record_offset for e in m.exts]
        copy_sizes = [e.record_size for e in m.exts]
        copy_sizes[idx] = min(copy_sizes[idx], old_ext_size)
        for e in m.exts:
            e.record_offset = 0
        ordered = sorted(m.exts, key=lambda e: -e.record_align)
        # damaged values must neither divide by zero nor blow records up: Dovecot's own limits
        aligns = {id(e): min(8, max(1, e.record_align)) for e in m.exts}
        for e in m.exts:
            if e.record_size >= 32768:
                e.record_size = 0
        offset, max_align = 5, 4
        while True:
            min_align = None
            chosen = None
            for e in ordered:
                max_align = max(max_align, aligns[id(e)])
                if e.record_offset == 0 and e.record_size > 0:
                    if offset % aligns[id(e)] == 0:
                        chosen = e
                        break
                    min_align = (
                        aligns[id(e)] if min_align is None else min(min_align, aligns[id(e)])
                    )
            if chosen is None:
                if min_align is None:
                    break
                offset += min_align - offset % min_align
            else:
                chosen.record_offset = offset
                offset += chosen.record_size
        new_size = align(offset, max_align)
        new_records = []
        for old in m.records:
            new = bytearray(new_size)
            new[0:8] = old[0:8]
            for e, old_off, size in zip(m.exts, old_offsets, copy_sizes, strict=True):
                if size:
                    new[e.record_offset : e.record_offset + size] = old[old_off : old_off + size]
            new_records.append(new)
        m.records = new_records
        m.set("record_size", new_size)
        for e in m.exts:
            m.write_ext_header(e)

    def _ext_reset(self, record: L.LogRecord) -> None:
        if self.cur_ext == NO_EXT:
            raise _Corrupted("Extension reset without intro prefix")
        if self.cur_ext == BROKEN_EXT:
            return
        m = self.map
        ext = m.exts[self.cur_ext]
        (reset,) = record.items
        ext.reset_id = reset.new_reset_id
        if not reset.preserve_data:
            m.hdr[ext.hdr_offset : ext.hdr_offset + ext.hdr_size] = bytes(ext.hdr_size)
            if ext.record_size:
                for rec in m.records:
                    rec[ext.record_offset : ext.record_offset + ext.record_size] = bytes(
                        ext.record_size
                    )
        m.write_ext_header(ext)

    def _current_ext(self, missing_intro: str) -> _Ext | None:
        """The extension the last intro selected; None when its updates are to be ignored."""
        if self.cur_ext == NO_EXT:
            raise _Corrupted(missing_intro)
        if self.cur_ignore:
            return None
        return self.map.exts[self.cur_ext]

    def _ext_hdr_update(self, record: L.LogRecord) -> None:
        ext = self._current_ext("Extension header update without intro prefix")
        if ext is None:
            return
        m = self.map
        for u in record.items:
            if u.offset + u.size > ext.hdr_size:
                raise _Corrupted("Extension header update points outside header size")
            start = ext.hdr_offset + u.offset
            m.hdr[start : start + u.size] = u.data
            if ext.name == "modseq" and not self.modseq_on:
                self.modseq_on = True
                self._modseq_init(*self._position())

    def _ext_rec_update(self, record: L.LogRecord) -> None:
        ext = self._current_ext("Extension record updated without intro prefix")
        if ext is None:
            return
        m = self.map
        size = min(self.cur_rec_size, ext.record_size)
        for u in record.items:
            if u.uid == 0 or u.uid >= m.get("next_uid"):
                raise _Corrupted(f"Extension record update for invalid uid={u.uid}")
            seq = m.seq_of(u.uid)
            if seq is None:
                continue
            rec = m.records[seq]
            start = ext.record_offset
            rec[start : start + size] = u.data[:size].ljust(size, b"\0")
            if size < ext.record_size:
                rec[start + size : start + ext.record_size] = bytes(ext.record_size - size)

    def _ext_atomic_inc(self, record: L.LogRecord) -> None:
        ext = self._current_ext("Extension record updated without intro prefix")
        if ext is None:
            return
        m = self.map
        size = self.cur_rec_size
        codes = {1: "B", 2: "H", 4: "I", 8: "Q"}
        for u in record.items:
            if u.uid == 0 or u.uid >= m.get("next_uid"):
                raise _Corrupted(f"Extension record inc for invalid uid={u.uid}")
            seq = m.seq_of(u.uid)
            if seq is None:
                continue
            if size not in codes:
                raise _Corrupted(f"Extension record inc with invalid size={size}")
            max_value = (1 << (8 * size)) - 1
            if u.diff > 0 and u.diff > max_value:
                raise _Corrupted(
                    f"Extension record inc diff={u.diff} larger than max value={max_value} "
                    f"(uid={u.uid})"
                )
            st = layout(m.bo, codes[size])
            (orig,) = st.unpack_from(m.records[seq], ext.record_offset)
            new = orig + u.diff
            if new < 0:
                raise _Corrupted(
                    f"Extension record inc drops number below zero "
                    f"(uid={u.uid}, diff={u.diff}, orig={orig})"
                )
            if new > max_value:
                raise _Corrupted(
                    "Extension record inc overflows number "
                    f"(uid={u.uid}, diff={u.diff}, orig={orig})"
                )
            st.pack_into(m.records[seq], ext.record_offset, new)

    # keywords ----------------------------------------------------------
    def _keyword_update(self, record: L.LogRecord) -> None:
        (u,) = record.items
        m = self.map
        names = m.keywords()
        kw = names.index(u.name) if u.name in names else self._keyword_add(u.name)
        idx = m.ext_index("keywords")
        ext = m.exts[idx]
        if kw // 8 >= ext.record_size:
            if u.modify_type == 1:
                return
            self._keywords_register(idx, ext.reset_id, ext.hdr_size, len(m.keywords()))
            ext = m.exts[m.ext_index("keywords")]
        byte, bit = ext.record_offset + kw // 8, 1 << (kw % 8)
        for r in u.ranges:
            found = m.seq_range(r.uid1, r.uid2)
            if not found:
                continue
            self._modseq_touch(*found)
            for seq in range(found[0], found[1] + 1):
                if u.modify_type == 0:
                    m.records[seq][byte] |= bit
                else:
                    m.records[seq][byte] &= ~bit & 0xFF

    def _keyword_add(self, name: str) -> int:
        m = self.map
        self._modseq_map_replaced()
        idx = m.ext_index("keywords")
        ext = m.exts[idx] if idx is not None else None
        u32 = layout(m.bo, "I")
        old = m.keywords() if ext is not None else []
        encoded = name.encode("utf-8") + b"\0"
        if ext is not None and old:
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
        count = len(old) + 1
        layout(m.bo, "II").pack_into(buf, 4 + 8 * (count - 1), 0, name_offset)
        buf += encoded
        buf += bytes(align(len(buf), 4) - len(buf))
        if ext is None or len(buf) > ext.hdr_size or ext.record_size * 8 < count:
            buf += bytes(128)
            self._keywords_register(
                idx if idx is not None else 0xFFFFFFFF,
                ext.reset_id if ext else 0,
                len(buf),
                count,
            )
            ext = m.exts[m.ext_index("keywords")]
        m.hdr[ext.hdr_offset : ext.hdr_offset + len(buf)] = buf
        return count - 1

    def _keywords_register(self, ext_id: int, reset_id: int, hdr_size: int, count: int) -> None:
        record_size = (count + 7) // 8
        if record_size % 4:
            record_size += 1
        intro = L.ExtIntro(ext_id, reset_id, hdr_size, record_size, 1, 0, 8, "keywords")
        saved = (self.cur_ext, self.cur_ignore, self.cur_rec_size)
        self.internal = True
        try:
            self._one_intro(intro)
        finally:
            self.internal = False
        self.cur_ext, self.cur_ignore, self.cur_rec_size = saved

    def _keyword_reset(self, record: L.LogRecord) -> None:
        m = self.map
        idx = m.ext_index("keywords")
        if idx is None:
            return
        ext = m.exts[idx]
        for r in record.items:
            found = m.seq_range(r.uid1, r.uid2)
            if not found:
                continue
            self._modseq_touch(*found)
            for seq in range(found[0], found[1] + 1):
                m.records[seq][ext.record_offset : ext.record_offset + ext.record_size] = bytes(
                    ext.record_size
                )

    # modseqs -----------------------------------------------------------
    def _modseq_update(self, record: L.LogRecord) -> None:
        m = self.map
        for u in record.items:
            if u.uid == 0:
                continue
            seq = m.seq_of(u.uid)
            if seq is None:
                continue
            idx = m.ext_index("modseq")
            if not self.modseq_on or idx is None:
                raise _Corrupted("modseqs updated before they were enabled")
            off = m.exts[idx].record_offset
            st = layout(m.bo, "Q")
            if st.unpack_from(m.records[seq], off)[0] <= u.modseq:
                st.pack_into(m.records[seq], off, u.modseq)

    def _modseq_map_replaced(self) -> None:
        """Dovecot re-checks for the modseq extension whenever it copies the map."""
        if not self.modseq_on and self.map.ext_index("modseq") is not None:
            self.modseq_on = True

    def _modseq_touch(self, first: int, last: int) -> None:
        """Raise the records' modseqs to the current log modseq (``update_to_highest``)."""
        if not self.modseq_on or self.current is None:
            return
        idx = self.map.ext_index("modseq")
        if idx is None:
            return
        off = self.map.exts[idx].record_offset
        st = layout(self.map.bo, "Q")
        value = self.current.modseq
        for seq in range(first, last + 1):
            rec = self.map.records[seq]
            if st.unpack_from(rec, off)[0] < value:
                st.pack_into(rec, off, value)

    def _modseq_header(self) -> tuple[int, int, int] | None:
        idx = self.map.ext_index("modseq")
        if idx is None or self.map.exts[idx].hdr_size != 16:
            return None
        ext = self.map.exts[idx]
        return layout(self.map.bo, "QII").unpack_from(self.map.hdr, ext.hdr_offset)

    def _modseq_init(self, seq: int, offset: int) -> None:
        """Give records without a modseq the header's highest modseq (sync init)."""
        hdr = self._modseq_header()
        if hdr is None:
            return
        highest, log_seq, log_offset = hdr
        if (seq, offset) <= (log_seq, log_offset):
            return
        off = self.map.exts[self.map.ext_index("modseq")].record_offset
        st = layout(self.map.bo, "Q")
        for rec in self.map.records:
            if st.unpack_from(rec, off)[0] == 0:
                st.pack_into(rec, off, highest)

    def _modseq_header_update(self, seq: int, offset: int, modseq: int) -> None:
        hdr = self._modseq_header()
        if hdr is None:
            return
        _, log_seq, log_offset = hdr
        if (log_seq, log_offset) < (seq, offset):
            ext = self.map.exts[self.map.ext_index("modseq")]
            layout(self.map.bo, "QII").pack_into(self.map.hdr, ext.hdr_offset, modseq, seq, offset)

    def _position(self) -> tuple[int, int]:
        if self.current is None or self.current_file is None:
            return self.start
        return (self.current_file.header.file_seq, self.current.offset)

    # header counters ---------------------------------------------------
    def _counts(self, uid: int, old: int, new: int, check_next_uid: bool = True) -> None:
        m = self.map
        next_uid = m.get("next_uid")
        if uid >= next_uid:
            if check_next_uid:
                raise _Corrupted(f"uid {uid} >= next_uid {next_uid}")
            return
        changed = old ^ new
        if changed & MAIL_SEEN:
            seen = m.get("seen_messages_count")
            if old & MAIL_SEEN:
                if seen == 0:
                    raise _Corrupted("Seen counter wrong")
                m.set("seen_messages_count", seen - 1)
            else:
                if seen >= m.get("messages_count"):
                    raise _Corrupted("Seen counter wrong")
                m.set("seen_messages_count", seen + 1)
                if seen + 1 == m.get("messages_count"):
                    m.set("first_unseen_uid_lowwater", next_uid)
        if changed & MAIL_DELETED:
            deleted = m.get("deleted_messages_count")
            if not old & MAIL_DELETED:
                m.set("deleted_messages_count", deleted + 1)
                if deleted + 1 > m.get("messages_count"):
                    raise _Corrupted("Deleted counter wrong")
            else:
                if deleted == 0 or deleted > m.get("messages_count"):
                    raise _Corrupted("Deleted counter wrong")
                m.set("deleted_messages_count", deleted - 1)
                if deleted - 1 == 0:
                    m.set("first_deleted_uid_lowwater", next_uid)

    def _lowwaters(self, uid: int, flags: int) -> None:
        m = self.map
        if not flags & MAIL_SEEN and uid < m.get("first_unseen_uid_lowwater"):
            m.set("first_unseen_uid_lowwater", uid)
        if flags & MAIL_DELETED and uid < m.get("first_deleted_uid_lowwater"):
            m.set("first_deleted_uid_lowwater", uid)

    def _ignore(self, record: L.LogRecord) -> None:
        return None


def _tail_tracking(head: L.LogFile) -> int:
    """The head log's ``max_tail_offset`` as Dovecot's log reader tracks it.

    Dovecot reads the head log from its start when it opens it, before the index
    is mapped. External transactions need no mailbox sync, so the tail moves over
    them while it is flush with the read position; external header updates of
    ``log_file_tail_offset`` move it explicitly (never backwards).
    """
    last_read = max_tail = 0
    tail_pos, tail_size = HEADER_OFFSETS["log_file_tail_offset"]
    u32 = layout(head.byteorder, "I")
    for rec in head.records:
        if not rec.external or rec.error is not None:
            continue
        if rec.base_code == L.HEADER_UPDATE and rec.items:
            u = rec.items[0]
            if u.offset <= tail_pos and u.offset + u.size >= tail_pos + tail_size:
                (value,) = u32.unpack_from(u.data, tail_pos - u.offset)
                if last_read <= value <= rec.offset + rec.size:
                    last_read = value
                    max_tail = max(max_tail, value)
                continue
        if max_tail == rec.offset:
            max_tail += rec.size
    return max_tail


_HANDLERS = {
    L.APPEND: _Engine._append,
    L.EXPUNGE: _Engine._expunge,
    L.EXPUNGE_GUID: _Engine._expunge,
    L.FLAG_UPDATE: _Engine._flag_update,
    L.HEADER_UPDATE: _Engine._header_update,
    L.EXT_INTRO: _Engine._ext_intro,
    L.EXT_RESET: _Engine._ext_reset,
    L.EXT_HDR_UPDATE: _Engine._ext_hdr_update,
    L.EXT_HDR_UPDATE32: _Engine._ext_hdr_update,
    L.EXT_REC_UPDATE: _Engine._ext_rec_update,
    L.EXT_ATOMIC_INC: _Engine._ext_atomic_inc,
    L.KEYWORD_UPDATE: _Engine._keyword_update,
    L.KEYWORD_RESET: _Engine._keyword_reset,
    L.MODSEQ_UPDATE: _Engine._modseq_update,
    L.INDEX_DELETED: _Engine._ignore,
    L.INDEX_UNDELETED: _Engine._ignore,
    L.BOUNDARY: _Engine._ignore,
    L.ATTRIBUTE_UPDATE: _Engine._ignore,
}
