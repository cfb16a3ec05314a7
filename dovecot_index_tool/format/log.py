"""``dovecot.index.log`` and ``.log.2``: the transaction log (version 1.x).

A 40-byte header, then records ``{packed size, type}`` + payload, contiguous up to
the end of valid data. A size that does not decode, or a record or transaction
that runs past the end of the file, ends the valid data: Dovecot treats what
follows as a write still in progress.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from dovecot_index_tool.format.binary import BIG, LITTLE, align, unpack
from dovecot_index_tool.format.errors import FormatError, naming_file
from dovecot_index_tool.format.layouts import (
    FORMATS,
    INDEX_HEADER_OFFSETS,
    LOG_HEADER_FIELDS,
    LOG_HEADER_OFFSETS,
    for_order,
)

HEADER_MIN_SIZE = 24
HEADER_SIZE = 40
RECORD_HEADER_SIZE = 8

TYPE_MASK = 0x0FFFFFFF
EXTERNAL = 0x10000000
SYNC = 0x20000000
EXPUNGE_PROT = 0x0000CD90

EXPUNGE = 0x00000001
APPEND = 0x00000002
FLAG_UPDATE = 0x00000004
HEADER_UPDATE = 0x00000020
EXT_INTRO = 0x00000040
EXT_RESET = 0x00000080
EXT_HDR_UPDATE = 0x00000100
EXT_REC_UPDATE = 0x00000200
KEYWORD_UPDATE = 0x00000400
KEYWORD_RESET = 0x00000800
EXT_ATOMIC_INC = 0x00001000
EXPUNGE_GUID = 0x00002000
MODSEQ_UPDATE = 0x00008000
EXT_HDR_UPDATE32 = 0x00010000
INDEX_DELETED = 0x00020000
INDEX_UNDELETED = 0x00040000
BOUNDARY = 0x00080000
ATTRIBUTE_UPDATE = 0x00100000

INTRO_FLAG_NO_SHRINK = 0x01
FLAGS_MASK = 0x1F  # the five IMAP system flags

# Names as ``doveadm dump`` prints them, by the type code without flag bits.
TYPE_NAMES: dict[int, str] = {
    EXPUNGE | EXPUNGE_PROT: "expunge",
    EXPUNGE_GUID | EXPUNGE_PROT: "expunge-guid",
    APPEND: "append",
    FLAG_UPDATE: "flag-update",
    HEADER_UPDATE: "header-update",
    EXT_INTRO: "ext-intro",
    EXT_RESET: "ext-reset",
    EXT_HDR_UPDATE: "ext-hdr",
    EXT_HDR_UPDATE32: "ext-hdr32",
    EXT_REC_UPDATE: "ext-rec",
    KEYWORD_UPDATE: "keyword-update",
    KEYWORD_RESET: "keyword-reset",
    EXT_ATOMIC_INC: "ext-atomic-inc",
    MODSEQ_UPDATE: "modseq-update",
    INDEX_DELETED: "index-deleted",
    INDEX_UNDELETED: "index-undeleted",
    BOUNDARY: "boundary",
    ATTRIBUTE_UPDATE: "attribute-update",
}

HEADER_FORMAT = FORMATS["log_header"]
HEADER_NAMES = tuple(name for name, _ in LOG_HEADER_FIELDS if name)
HEADER_OFFSETS = LOG_HEADER_OFFSETS

# End-of-data reasons.
END_EOF = "eof"  # every byte belongs to a complete record
END_UNFINISHED = "unfinished"  # size not written yet (decodes to 0), or record past EOF
END_PARTIAL_TRANSACTION = "partial-transaction"  # boundary size runs past EOF
END_BROKEN_SIZE = "broken-size"  # size 1..7: corruption, not a write in progress


@dataclass(frozen=True)
class LogHeader:
    """``struct mail_transaction_log_header``; fields beyond ``hdr_size`` read as 0."""

    major_version: int
    minor_version: int
    hdr_size: int
    indexid: int
    file_seq: int
    prev_file_seq: int
    prev_file_offset: int
    create_stamp: int
    initial_modseq: int
    compat_flags: int
    unused2: int

    @property
    def version(self) -> int:
        return (self.major_version << 8) | self.minor_version

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in HEADER_NAMES if name != "unused2"}


class Range(NamedTuple):
    uid1: int
    uid2: int


class Append(NamedTuple):
    uid: int
    flags: int


class ExpungeGuid(NamedTuple):
    uid: int
    guid: str


class FlagUpdate(NamedTuple):
    uid1: int
    uid2: int
    add_flags: int
    remove_flags: int
    modseq_inc_flag: int

    @property
    def internal(self) -> bool:
        """Changes only backend/dirty bits: not counted as a modseq change (log >= 1.3)."""
        return ((self.add_flags | self.remove_flags) & FLAGS_MASK) == 0 and not self.modseq_inc_flag


class HeaderUpdate(NamedTuple):
    offset: int
    size: int
    data: bytes


class ExtIntro(NamedTuple):
    ext_id: int
    reset_id: int
    hdr_size: int
    record_size: int
    record_align: int
    flags: int
    name_size: int
    name: str


class ExtReset(NamedTuple):
    new_reset_id: int
    preserve_data: int


class ExtRecUpdate(NamedTuple):
    uid: int
    data: bytes


class AtomicInc(NamedTuple):
    uid: int
    diff: int


class KeywordUpdate(NamedTuple):
    modify_type: int
    name: str
    ranges: tuple[Range, ...]


class ModseqUpdate(NamedTuple):
    uid: int
    modseq: int


class Boundary(NamedTuple):
    size: int


class AttributeChange(NamedTuple):
    operation: str  # "+" add, "-" remove
    scope: str  # "p" private, "s" shared
    key: str
    timestamp: int
    value_len: int | None


Payload = tuple[object, ...]


_PROTECTED = (EXPUNGE | EXPUNGE_PROT, EXPUNGE_GUID | EXPUNGE_PROT)


class LogRecord(NamedTuple):
    """One record: where it is, its type bits, its decoded payload, and the modseq
    counter after it (as ``doveadm dump`` computes it; 0 while not tracked).

    A named tuple, not a dataclass: a scan builds one per record of every log, and
    this is the cheapest immutable object Python makes. ``code`` (the type without
    flag bits) and ``base_code`` (also without the expunge protection bits) are asked
    of every record by several checks and the replay, so the parser computes them once
    (``_Scanner._record``)."""

    offset: int
    size: int
    type: int
    data: bytes
    items: Payload
    modseq: int
    code: int
    base_code: int
    error: FormatError | None = None

    @property
    def external(self) -> bool:
        return bool(self.type & EXTERNAL)

    @property
    def sync(self) -> bool:
        return bool(self.type & SYNC)

    @property
    def known(self) -> bool:
        """Whether Dovecot knows this record type."""
        return self.code in TYPE_NAMES

    @property
    def name(self) -> str:
        return TYPE_NAMES.get(self.code, f"unknown: {self.type:x}")


@dataclass(frozen=True)
class LogFile:
    """A parsed log file. ``valid_end`` is where complete data ends (Dovecot's
    sync offset); ``end_reason`` says why it stopped there."""

    path: str | None
    size: int
    byteorder: str
    header: LogHeader
    records: tuple[LogRecord, ...]
    valid_end: int
    end_reason: str
    end_modseq: int
    problems: tuple[FormatError, ...] = field(default=())

    @property
    def trailing(self) -> int:
        """Bytes after the last complete record."""
        return self.size - self.valid_end


def byteorder_of(compat_flags: int, major: int, minor: int) -> str:
    """Only logs of version 1.2 and newer record the writer's byte order."""
    if ((major << 8) | minor) >= 0x0102:
        return LITTLE if compat_flags & 0x01 else BIG
    return LITTLE


def parse_log_header(data: bytes) -> LogHeader:
    """Decode the header; fields past ``hdr_size`` are zero, as Dovecot reads them."""
    if len(data) < HEADER_MIN_SIZE:
        raise FormatError(
            "unexpected end of file while reading header",
            offset=0,
            field="header",
            expected=f">= {HEADER_MIN_SIZE} bytes",
            found=f"{len(data)} bytes",
        )
    raw = bytearray(data[:HEADER_SIZE].ljust(HEADER_SIZE, b"\0"))
    bo = byteorder_of(raw[32], raw[0], raw[1])
    (hdr_size,) = for_order(bo).u16.unpack_from(raw, 2)
    if hdr_size < HEADER_SIZE:
        raw[max(hdr_size, 4) :] = bytes(HEADER_SIZE - max(hdr_size, 4))
    if hdr_size <= 32:
        bo = LITTLE  # compat_flags was not written: nothing tells the order
    return LogHeader(*unpack(for_order(bo).log_header, bytes(raw), 0, "header"))


@naming_file
def parse_log(data: bytes, path: str | None) -> LogFile:
    """Parse a log file; raises FormatError only when the header is unreadable."""
    header = parse_log_header(data)
    bo = byteorder_of(header.compat_flags, header.major_version, header.minor_version)
    if header.hdr_size < HEADER_MIN_SIZE:
        err = FormatError(
            "header size too small",
            file=path,
            offset=2,
            field="header.hdr_size",
            expected=f">= {HEADER_MIN_SIZE}",
            found=header.hdr_size,
        )
        return LogFile(path, len(data), bo, header, (), len(data), END_BROKEN_SIZE, 0, (err,))
    scan = _Scanner(data, bo, header, path)
    scan.run()
    return LogFile(
        path,
        len(data),
        bo,
        header,
        tuple(scan.records),
        scan.pos,
        scan.end_reason,
        scan.modseq,
        tuple(scan.problems),
    )


class _Scanner:
    """Walks the records once, tracking framing, the last intro and the modseq."""

    def __init__(self, data: bytes, bo: str, header: LogHeader, path: str | None) -> None:
        self.data = data
        self.bo = bo
        self.header = header
        self.path = path
        self.pos = header.hdr_size
        self.records: list[LogRecord] = []
        self.problems: list[FormatError] = []
        self.end_reason = END_EOF
        self.modseq = header.initial_modseq
        self.intro_record_size = 0

    def run(self) -> None:
        """The record loop, kept flat: it runs for every record of every log a scan
        reads, so the framing tests, the decoding dispatch and the modseq counting
        are inline rather than one call each (``_record`` is the same, unrolled)."""
        data = self.data
        end = len(data)
        if self.pos > end:
            self.pos = end
            self.end_reason = END_UNFINISHED
            return
        head = _RECORD_HEAD[self.bo]
        boundary = for_order(self.bo).boundary
        bo = self.bo
        version = self.header.version
        records = self.records
        new = tuple.__new__
        decoders = _DECODERS
        protected = _PROTECTED
        counted = _MODSEQ_CODES
        repeated, seen = _REPEATED_CODES, {}
        modseq = self.modseq
        intro_size = 0
        pos = self.pos
        while pos + RECORD_HEADER_SIZE <= end:
            a, b, c, d, rtype = head.unpack_from(data, pos)
            if not a & b & c & d & 0x80:  # a size not written yet (packed offset 0)
                self.pos, self.end_reason = pos, END_UNFINISHED
                break
            size = (((a & 0x7F) << 21) | ((b & 0x7F) << 14) | ((c & 0x7F) << 7)
                    | (d & 0x7F)) << 2
            if size < RECORD_HEADER_SIZE:
                self.pos, self.end_reason = pos, END_BROKEN_SIZE
                self.problems.append(self._error("hdr.size too small", "size", ">= 8", size))
                break
            if pos + size > end:
                self.pos, self.end_reason = pos, END_UNFINISHED
                break
            code = rtype & TYPE_MASK
            if (code == BOUNDARY and rtype & EXTERNAL and size >= 12
                    and pos + boundary.unpack_from(data, pos + 8)[0] > end):
                self.pos, self.end_reason = pos, END_PARTIAL_TRANSACTION
                break
            payload = data[pos + RECORD_HEADER_SIZE : pos + size]
            error = None
            try:
                if rtype & (EXPUNGE | EXPUNGE_GUID) or not payload:
                    items = decode_payload(rtype, payload, bo, intro_size)
                elif code in repeated:
                    items = seen.get((code, payload))
                    if items is None:
                        items = seen[code, payload] = decoders[code](payload, bo, intro_size)
                else:
                    decoder = decoders.get(code)
                    items = decoder(payload, bo, intro_size) if decoder is not None else ()
            except FormatError as err:
                items = ()
                self.pos = pos
                error = self._error(err.reason, err.field or "payload", err.expected, err.found)
            if code == EXT_INTRO and items:
                intro_size = items[-1].record_size
            if code in counted:
                modseq = next_modseq(modseq, rtype, items, version)
            records.append(new(LogRecord, (pos, size, rtype, payload, items, modseq, code,
                                           code & ~EXPUNGE_PROT if code in protected else code,
                                           error)))
            pos += size
        else:
            self.pos = pos
            if pos < end:
                self.end_reason = END_UNFINISHED
        self.modseq = modseq
        self.intro_record_size = intro_size

    def _error(self, reason: str, field_name: str, expected: object, found: object) -> FormatError:
        return FormatError(
            reason,
            file=self.path,
            offset=self.pos,
            field=f"record@{self.pos}.{field_name}",
            expected=expected,
            found=found,
        )


# A record's head in one unpack: the packed size is four bytes in file order (each
# with its high bit set once written), the type a u32 in the log's byte order.
_RECORD_HEAD = {LITTLE: struct.Struct("<4BI"), BIG: struct.Struct(">4BI")}


# Record types whose payloads a log repeats (every transaction introduces the
# extensions it writes and ends in a boundary): decoded once per log and payload, the
# items being immutable. Their decoding depends on nothing but the payload.
_REPEATED_CODES = frozenset({EXT_INTRO, BOUNDARY, EXT_HDR_UPDATE})


# Record types after which the modseq counter may differ (next_modseq): the others
# leave it as it is, so the loop does not ask.
_MODSEQ_CODES = frozenset({
    EXPUNGE | EXPUNGE_PROT, EXPUNGE_GUID | EXPUNGE_PROT, APPEND, KEYWORD_UPDATE,
    KEYWORD_RESET, ATTRIBUTE_UPDATE, FLAG_UPDATE, MODSEQ_UPDATE, EXT_INTRO,
})


def next_modseq(current: int, rtype: int, items: Payload, version: int) -> int:
    """The modseq counter after one record, as Dovecot's log reader counts it."""
    code = rtype & TYPE_MASK
    if current == 0:
        if code == EXT_INTRO and any(
            isinstance(i, ExtIntro) and i.name == "modseq" for i in items[:1]
        ):
            return 1
        return 0
    if code in (EXPUNGE | EXPUNGE_PROT, EXPUNGE_GUID | EXPUNGE_PROT):
        return current + 1 if rtype & EXTERNAL else current
    if code in (APPEND, KEYWORD_UPDATE, KEYWORD_RESET, ATTRIBUTE_UPDATE):
        return current + 1
    if code == FLAG_UPDATE:
        if version < 0x0103 or any(not u.internal for u in items):
            return current + 1
        return current
    if code == MODSEQ_UPDATE:
        return max([current] + [u.modseq for u in items])
    return current


def decode_payload(rtype: int, payload: bytes, bo: str, intro_record_size: int = 0) -> Payload:
    """Decode one record's payload into its items; FormatError when sizes don't fit."""
    code = rtype & TYPE_MASK
    if rtype & EXPUNGE and code != EXPUNGE | EXPUNGE_PROT:
        raise FormatError("expunge record missing protection mask", field="type", found=hex(rtype))
    if rtype & EXPUNGE_GUID and code != EXPUNGE_GUID | EXPUNGE_PROT:
        raise FormatError(
            "expunge guid record missing protection mask", field="type", found=hex(rtype)
        )
    if not payload:
        raise FormatError("Empty record contents", field="payload", expected="> 0 bytes", found=0)
    decoder = _DECODERS.get(code)
    if decoder is None:
        return ()
    return decoder(payload, bo, intro_record_size)


def _fixed(payload: bytes, st: struct.Struct, what: str):
    if len(payload) % st.size:
        raise FormatError(
            f"Invalid {what} record size",
            field="payload",
            expected=f"multiple of {st.size}",
            found=len(payload),
        )
    return st.iter_unpack(payload)


# ``cls._make`` without its Python frame: each tuple made straight from the unpacked
# fields (``struct`` gives exactly as many as the named tuple has).
_RANGE, _APPEND, _FLAG_UPDATE, _ATOMIC_INC, _EXT_REC_UPDATE = (
    partial(tuple.__new__, cls) for cls in (Range, Append, FlagUpdate, AtomicInc, ExtRecUpdate)
)


def _ranges(payload: bytes, bo: str, _intro: int = 0) -> Payload:
    return tuple(map(_RANGE, _fixed(payload, for_order(bo).uid_range, "uid range")))


def _appends(payload: bytes, bo: str, _intro: int) -> Payload:
    return tuple(map(_APPEND, _fixed(payload, for_order(bo).append, "append")))


def _expunge_guids(payload: bytes, bo: str, _intro: int) -> Payload:
    items = _fixed(payload, for_order(bo).expunge_guid, "expunge guid")
    return tuple(ExpungeGuid(u, g.hex()) for u, g in items)


def _flag_updates(payload: bytes, bo: str, _intro: int) -> Payload:
    return tuple(map(_FLAG_UPDATE, _fixed(payload, for_order(bo).flag_update, "flag update")))


def _modseq_updates(payload: bytes, bo: str, _intro: int) -> Payload:
    items = _fixed(payload, for_order(bo).modseq_update, "modseq")
    return tuple(ModseqUpdate(u, (hi << 32) | lo) for u, lo, hi in items)


def _atomic_incs(payload: bytes, bo: str, _intro: int) -> Payload:
    return tuple(map(_ATOMIC_INC, _fixed(payload, for_order(bo).atomic_inc, "atomic inc")))


def _header_updates(payload: bytes, bo: str, _intro: int, wide: bool = False) -> Payload:
    lay = for_order(bo)
    head = lay.header_update32 if wide else lay.header_update
    items = []
    pos = 0
    end = len(payload)
    while pos < end:
        if pos + head.size > end:
            unpack(head, payload, pos, f"update@{pos}")  # raises, naming the update
        offset, size = head.unpack_from(payload, pos)
        start = pos + head.size
        if start + size > end:
            raise FormatError(
                "header update extends beyond record size",
                field=f"update@{pos}.size",
                expected=f"<= {len(payload) - start}",
                found=size,
            )
        items.append(HeaderUpdate(offset, size, payload[start : start + size]))
        pos = (start + size + 3) & ~3  # align(..., 4), inline: once per update
    return tuple(items)


def _ext_hdr_updates32(payload: bytes, bo: str, intro: int) -> Payload:
    return _header_updates(payload, bo, intro, wide=True)


def _ext_intros(payload: bytes, bo: str, _intro: int) -> Payload:
    st = for_order(bo).ext_intro
    items = []
    pos = 0
    while pos + st.size <= len(payload):
        ext_id, reset_id, hdr_size, rec_size, rec_align, flags, name_size = st.unpack_from(
            payload, pos
        )
        if pos + st.size + name_size > len(payload):
            raise FormatError(
                "ext intro: name_size too large",
                field=f"intro@{pos}.name_size",
                expected=f"<= {len(payload) - pos - st.size}",
                found=name_size,
            )
        name = payload[pos + st.size : pos + st.size + name_size].decode("latin-1")
        items.append(
            ExtIntro(ext_id, reset_id, hdr_size, rec_size, rec_align, flags, name_size, name)
        )
        pos = align(pos + st.size + name_size, 4)
    return tuple(items)


def _ext_reset(payload: bytes, bo: str, _intro: int) -> Payload:
    if len(payload) < 4:
        raise FormatError(
            "ext reset: invalid record size", field="payload", expected=">= 4", found=len(payload)
        )
    (reset_id,) = for_order(bo).ext_reset.unpack_from(payload, 0)
    preserve = payload[4] if len(payload) > 4 else 0
    return (ExtReset(reset_id, preserve),)


def _ext_rec_updates(payload: bytes, bo: str, intro_record_size: int) -> Payload:
    step = align(4 + intro_record_size, 4)
    if len(payload) % step:
        raise FormatError(
            "ext rec update: invalid record size",
            field="payload",
            expected=f"multiple of {step}",
            found=len(payload),
        )
    st = for_order(bo).ext_rec_update(intro_record_size)
    return tuple(map(_EXT_REC_UPDATE, st.iter_unpack(payload)))


def _keyword_update(payload: bytes, bo: str, _intro: int) -> Payload:
    modify_type, name_size = unpack(for_order(bo).keyword_update, payload, 0, "keyword")
    if name_size == 0:
        raise FormatError(
            "Trying to use empty keyword", field="name_size", expected=">= 1", found=0
        )
    seqset = align(4 + name_size, 4)
    if seqset > len(payload):
        raise FormatError(
            "Invalid keyword update record size",
            field="name_size",
            expected=f"<= {len(payload) - 4}",
            found=name_size,
        )
    name = payload[4 : 4 + name_size].decode("latin-1")  # one character per byte
    ranges = _ranges(payload[seqset:], bo)
    return (KeywordUpdate(modify_type, name, ranges),)


def _boundary(payload: bytes, bo: str, _intro: int) -> Payload:
    (size,) = unpack(for_order(bo).boundary, payload, 0, "boundary.size")
    return (Boundary(size),)


def _attribute_update(payload: bytes, bo: str, _intro: int) -> Payload:
    keys: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(payload) and payload[pos] != 0:
        end = payload.find(b"\0", pos)
        if end < 0:
            raise FormatError("attribute update doesn't end with NUL", field=f"key@{pos}")
        entry = payload[pos:end]
        if entry[:1] not in (b"+", b"-"):
            raise FormatError(
                "attribute update: Invalid prefix", field=f"key@{pos}", found=entry[:1].hex()
            )
        if entry[1:2] not in (b"p", b"s"):
            raise FormatError(
                "attribute update: Invalid type", field=f"key@{pos}", found=entry[1:2].hex()
            )
        if len(entry) < 3:
            raise FormatError("attribute update: Empty key", field=f"key@{pos}")
        keys.append((chr(entry[0]), chr(entry[1]), entry[2:].decode("utf-8", "replace")))
        pos = end + 1
    pos = align(pos + 1, 4)  # after the terminating NUL (doveadm dump misreads this)
    extras = [v for (v,) in _fixed(payload[pos:], for_order(bo).u32, "attribute update")]
    wanted = sum(2 if op == "+" else 1 for op, _, _ in keys)
    if len(extras) != wanted:
        raise FormatError(
            "attribute update: broken entry", field="values", expected=wanted, found=len(extras)
        )
    changes = []
    it = iter(extras)
    for op, scope, key in keys:
        stamp = next(it)
        changes.append(AttributeChange(op, scope, key, stamp, next(it) if op == "+" else None))
    return tuple(changes)


def _nothing(payload: bytes, bo: str, _intro: int) -> Payload:
    return ()


_DECODERS = {
    EXPUNGE | EXPUNGE_PROT: _ranges,
    APPEND: _appends,
    FLAG_UPDATE: _flag_updates,
    HEADER_UPDATE: _header_updates,
    EXT_INTRO: _ext_intros,
    EXT_RESET: _ext_reset,
    EXT_HDR_UPDATE: _header_updates,
    EXT_HDR_UPDATE32: _ext_hdr_updates32,
    EXT_REC_UPDATE: _ext_rec_updates,
    KEYWORD_UPDATE: _keyword_update,
    KEYWORD_RESET: _ranges,
    EXT_ATOMIC_INC: _atomic_incs,
    EXPUNGE_GUID | EXPUNGE_PROT: _expunge_guids,
    MODSEQ_UPDATE: _modseq_updates,
    INDEX_DELETED: _nothing,
    INDEX_UNDELETED: _nothing,
    BOUNDARY: _boundary,
    ATTRIBUTE_UPDATE: _attribute_update,
}


def header_u32_written(u: HeaderUpdate, name: str, byteorder: str) -> int | None:
    """The u32 index header field ``name`` that header update ``u`` writes, or None when
    it does not cover the whole field."""
    pos, size = INDEX_HEADER_OFFSETS[name]
    if not (u.offset <= pos and u.offset + u.size >= pos + size):
        return None
    return for_order(byteorder).u32.unpack_from(u.data, pos - u.offset)[0]


def tail_offset_update(rec: LogRecord, byteorder: str) -> int | None:
    """The ``log_file_tail_offset`` an external header update writes, or None.

    Dovecot's log reader follows these while it reads a log (to skip what the mailbox
    already synced) and takes only the record's first update into account.
    """
    if rec.type & (EXTERNAL | TYPE_MASK) != EXTERNAL | HEADER_UPDATE:
        return None  # checked on the type bits first: this runs for every record
    if rec.error is not None or not rec.items:
        return None
    return header_u32_written(rec.items[0], "log_file_tail_offset", byteorder)
