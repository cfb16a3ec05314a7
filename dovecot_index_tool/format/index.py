"""``dovecot.index`` and the same container in list, map, pvt and backup indexes.

Layout: a base header (normally 120 bytes), extension headers from the next
8-byte boundary up to ``header_size``, then ``messages_count`` fixed-size
records. Integers are in the writer's byte order, named by ``compat_flags``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from dovecot_index_tool.format.binary import BIG, LITTLE, align, unpack
from dovecot_index_tool.format.errors import ErrorKind, FormatError, naming_file
from dovecot_index_tool.format.layouts import (
    FORMATS,
    INDEX_HEADER_FIELDS,
    INDEX_HEADER_OFFSETS,
    for_order,
)

BASE_HEADER_SIZE = 120
RECORD_MIN_SIZE = 8
COMPAT_LITTLE_ENDIAN = 0x01

HDR_FLAG_CORRUPTED = 0x01
HDR_FLAG_HAVE_DIRTY = 0x02
HDR_FLAG_FSCKD = 0x04

MAIL_ANSWERED = 0x01
MAIL_FLAGGED = 0x02
MAIL_DELETED = 0x04
MAIL_SEEN = 0x08
MAIL_DRAFT = 0x10
MAIL_RECENT_OLD = 0x20
MAIL_BACKEND = 0x40
MAIL_DIRTY = 0x80

HEADER_FIELDS = INDEX_HEADER_FIELDS
HEADER_FORMAT = FORMATS["index_header"]
HEADER_NAMES = tuple(name for name, code in HEADER_FIELDS if name)
HEADER_OFFSETS = INDEX_HEADER_OFFSETS

EXT_HEADER_FORMAT = FORMATS["ext_header"]
EXT_HEADER_SIZE = 16


@dataclass(frozen=True)
class IndexHeader:
    """The base header (``struct mail_index_header``), every field by its C name."""

    major_version: int
    minor_version: int
    base_header_size: int
    header_size: int
    record_size: int
    compat_flags: int
    indexid: int
    flags: int
    uid_validity: int
    next_uid: int
    messages_count: int
    unused_old_recent_messages_count: int
    seen_messages_count: int
    deleted_messages_count: int
    first_recent_uid: int
    first_unseen_uid_lowwater: int
    first_deleted_uid_lowwater: int
    log_file_seq: int
    log_file_tail_offset: int
    log_file_head_offset: int
    unused_old_sync_size_part1: int
    log2_rotate_time: int
    last_temp_file_scan: int
    day_stamp: int
    day_first_uid: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in HEADER_NAMES} | {
            "day_first_uid": list(self.day_first_uid)
        }


@dataclass(frozen=True)
class Extension:
    """One extension header: where it sits, its layout, and its header data."""

    number: int
    offset: int
    name: str
    hdr_size: int
    reset_id: int
    record_offset: int
    record_size: int
    record_align: int
    name_size: int
    data_offset: int
    data: bytes

    def record_value(self, record: bytes) -> bytes | None:
        """This extension's bytes inside one record, or None when it has none."""
        if self.record_size == 0 or self.record_offset == 0:
            return None
        return record[self.record_offset : self.record_offset + self.record_size]


class IndexRecord(NamedTuple):
    """One message (or mailbox, or map entry): UID, flags byte, and its raw bytes."""

    seq: int
    offset: int
    uid: int
    flags: int
    data: bytes


@dataclass(frozen=True)
class RecordTable:
    """The record area, decoded on demand so memory follows the file, not the count."""

    data: bytes
    base: int
    record_size: int
    count: int
    byteorder: str

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> IndexRecord:
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(index)
        start = index * self.record_size
        raw = self.data[start : start + self.record_size]
        uid, flags = for_order(self.byteorder).record_head.unpack_from(raw, 0)
        return IndexRecord(index + 1, self.base + start, uid, flags, raw)

    def __iter__(self) -> Iterator[IndexRecord]:
        size, data, base = self.record_size, self.data, self.base
        head = for_order(self.byteorder).record_head.unpack_from
        for start in range(0, self.count * size, size):
            uid, flags = head(data, start)
            raw = data[start : start + size]
            yield IndexRecord(start // size + 1, base + start, uid, flags, raw)

    def uids_and_flags(self) -> list[tuple[int, int]]:
        """All (uid, flags) pairs in one pass of ``struct.iter_unpack``."""
        if self.count == 0:
            return []
        st = for_order(self.byteorder).record_heads(self.record_size)
        return list(st.iter_unpack(self.data[: self.count * self.record_size]))


@dataclass(frozen=True)
class IndexFile:
    """A parsed index file. ``problems`` lists damage that parsing could step over."""

    path: str | None
    size: int
    byteorder: str
    header: IndexHeader
    base_header_extra: bytes
    extensions: tuple[Extension, ...]
    keywords: tuple[str, ...]
    records: RecordTable
    problems: tuple[FormatError, ...] = field(default=())
    header_data: bytes = field(default=b"", repr=False)
    # whole records the file holds after messages_count (Dovecot writes none)
    beyond: RecordTable | None = field(default=None, repr=False)

    def extension(self, name: str) -> Extension | None:
        for ext in self.extensions:
            if ext.name == name:
                return ext
        return None


def byteorder_of(compat_flags: int) -> str:
    """Dovecot marks little-endian writers with bit 0x01; anything else is big-endian."""
    return LITTLE if compat_flags & COMPAT_LITTLE_ENDIAN else BIG


def parse_header(data: bytes, byteorder: str | None = None) -> IndexHeader:
    """Decode the 120-byte base header (raises FormatError when shorter)."""
    if len(data) < BASE_HEADER_SIZE:
        raise FormatError(
            "file too small for the index header",
            offset=0,
            field="header",
            expected=f">= {BASE_HEADER_SIZE} bytes",
            found=f"{len(data)} bytes",
        )
    bo = byteorder or byteorder_of(data[12])
    values = list(unpack(for_order(bo).index_header, data, 0, "header"))
    day_first = tuple(values[-8:])
    return IndexHeader(*values[:-8], day_first_uid=day_first)


@naming_file
def parse_index(data: bytes, path: str | None) -> IndexFile:
    """Parse a whole index file; raises FormatError only when the header is unreadable."""
    header = parse_header(data)
    bo = byteorder_of(header.compat_flags)
    problems: list[FormatError] = []
    extra = data[BASE_HEADER_SIZE : min(header.base_header_size, len(data))]
    header_end = min(header.header_size, len(data))
    if header.header_size > len(data):
        problems.append(
            FormatError(
                "header size is larger than the file",
                file=path,
                offset=4,
                field="header.header_size",
                expected=f"<= {len(data)}",
                found=header.header_size,
            )
        )
    extensions = _parse_extensions(data, header, header_end, bo, path, problems)
    keywords = _parse_keywords_of(extensions, bo, path, problems)
    records = _record_table(data, header, bo, path, problems)
    header_data = data[: max(BASE_HEADER_SIZE, header_end)]
    return IndexFile(
        path,
        len(data),
        bo,
        header,
        extra,
        tuple(extensions),
        keywords,
        records,
        tuple(problems),
        header_data,
        _beyond(data, records),
    )


def _beyond(data: bytes, records: RecordTable) -> RecordTable | None:
    """The whole records after the ones ``messages_count`` covers, bounded by the file."""
    start = records.base + records.count * records.record_size
    if records.record_size < RECORD_MIN_SIZE or start >= len(data):
        return None
    count = (len(data) - start) // records.record_size
    if not count:
        return None
    chunk = data[start : start + count * records.record_size]
    return RecordTable(chunk, start, records.record_size, count, records.byteorder)


def _parse_extensions(
    data: bytes,
    header: IndexHeader,
    header_end: int,
    bo: str,
    path: str | None,
    problems: list[FormatError],
) -> list[Extension]:
    """Walk the extension headers the way Dovecot does; stop at the first that overflows."""
    extensions: list[Extension] = []
    offset = align(max(header.base_header_size, BASE_HEADER_SIZE), 8)
    number = 0
    while offset < header_end:
        ext = _parse_one_extension(data, offset, number, header_end, bo, path)
        if isinstance(ext, FormatError):
            problems.append(ext)
            break
        extensions.append(ext)
        offset = ext.data_offset + align(ext.hdr_size, 8)
        number += 1
    return extensions


def _parse_one_extension(
    data: bytes, offset: int, number: int, header_end: int, bo: str, path: str | None
) -> Extension | FormatError:
    where = f"extensions[{number}]"
    if offset + EXT_HEADER_SIZE >= header_end:
        return _outside(path, offset, where, "", offset + EXT_HEADER_SIZE, header_end)
    hdr_size, reset_id, rec_off, rec_size, rec_align, name_size = unpack(
        for_order(bo).ext_header, data, offset, where
    )
    data_offset = offset + align(EXT_HEADER_SIZE + name_size, 8)
    name = data[offset + EXT_HEADER_SIZE : min(offset + EXT_HEADER_SIZE + name_size, header_end)]
    text = name.decode("latin-1")  # one character per byte: the name as Dovecot compares it
    if data_offset > header_end:
        return _outside(path, offset, where + ".name_size", text, data_offset, header_end)
    end = data_offset + align(hdr_size, 8)
    if end > header_end:
        return _outside(path, offset, where + ".hdr_size", text, end, header_end)
    return Extension(
        number,
        offset,
        text,
        hdr_size,
        reset_id,
        rec_off,
        rec_size,
        rec_align,
        name_size,
        data_offset,
        data[data_offset : data_offset + hdr_size],
    )


def _outside(
    path: str | None, offset: int, field_path: str, name: str, end: int, header_end: int
) -> FormatError:
    return FormatError(
        f"header extension ({name}) goes outside header",
        kind=ErrorKind.EXTENSION_OUTSIDE_HEADER,
        file=path,
        offset=offset,
        field=field_path,
        expected=f"end <= {header_end}",
        found=end,
    )


def parse_keywords_header(data: bytes, bo: str) -> tuple[str, ...]:
    """Keyword names from the ``keywords`` extension header data, in index order."""
    (count,) = unpack(for_order(bo).u32, data, 0, "keywords.keywords_count")
    names_start = 4 + 8 * count
    if names_start > len(data):
        raise FormatError(
            "keywords_count larger than header size",
            offset=0,
            field="keywords.keywords_count",
            expected=f"<= {(len(data) - 4) // 8}",
            found=count,
        )
    area = data[names_start:]
    if not area or area[-1] != 0:
        raise FormatError(
            "keyword header doesn't end with NUL",
            offset=len(data) - 1,
            field="keywords.names",
            expected="NUL",
            found=area[-1:].hex() or "nothing",
        )
    names = []
    for i in range(count):
        entry = for_order(bo).keyword_entry
        (_, name_offset) = unpack(entry, data, 4 + 8 * i, f"keywords[{i}]")
        if name_offset > len(area):
            raise FormatError(
                "name_offset points outside allocated header",
                offset=4 + 8 * i + 4,
                field=f"keywords[{i}].name_offset",
                expected=f"<= {len(area)}",
                found=name_offset,
            )
        end = area.index(b"\0", name_offset) if name_offset < len(area) else name_offset
        names.append(area[name_offset:end].decode("latin-1"))  # one character per byte
    return tuple(names)


def _parse_keywords_of(
    extensions: list[Extension], bo: str, path: str | None, problems: list[FormatError]
) -> tuple[str, ...]:
    ext = next((e for e in extensions if e.name == "keywords"), None)
    if ext is None or ext.hdr_size == 0:
        return ()
    try:
        return parse_keywords_header(ext.data, bo)
    except FormatError as err:
        problems.append(
            FormatError(
                err.reason,
                kind=ErrorKind.KEYWORDS_HEADER,
                file=path,
                offset=ext.data_offset + (err.offset or 0),
                field=err.field,
                expected=err.expected,
                found=err.found,
            )
        )
        return ()


def _record_table(
    data: bytes, header: IndexHeader, bo: str, path: str | None, problems: list[FormatError]
) -> RecordTable:
    base = header.header_size
    size = header.record_size
    if size < RECORD_MIN_SIZE or base > len(data):
        if header.messages_count:
            problems.append(
                FormatError(
                    "records cannot be located",
                    file=path,
                    offset=8 if size < RECORD_MIN_SIZE else 4,
                    field="header.record_size" if size < RECORD_MIN_SIZE else "header.header_size",
                    expected=f">= {RECORD_MIN_SIZE}"
                    if size < RECORD_MIN_SIZE
                    else f"<= {len(data)}",
                    found=size if size < RECORD_MIN_SIZE else base,
                )
            )
        return RecordTable(b"", base, max(size, RECORD_MIN_SIZE), 0, bo)
    fit = (len(data) - base) // size
    count = header.messages_count
    if count > fit:
        problems.append(
            FormatError(
                "messages_count too large for the file",
                kind=ErrorKind.MESSAGES_BEYOND_FILE,
                file=path,
                offset=32,
                field="header.messages_count",
                expected=f"<= {fit}",
                found=count,
            )
        )
        count = fit
    return RecordTable(data[base : base + count * size], base, size, count, bo)


EXT_NAME_MAX_LENGTH = 64
EXT_HEADER_MAX_SIZE = 1024 * 1024 * 16 - 1


# Bytes of 0x80 and above pass too (Dovecot 2.3.19 accepts them, seen on real files);
# names are decoded as Latin-1, one character per byte.
_EXT_NAME = re.compile("[A-Za-z0-9_ \x80-\xff-]*")


@lru_cache(maxsize=1024)
def ext_name_is_valid(name: str) -> bool:
    """Names Dovecot accepts: ASCII letters, digits, ``-``, ``_``, space and any byte
    above 0x7f, under 64 (asked of every extension intro of every log, so one regular
    expression)."""
    name = name.partition("\0")[0]  # Dovecot copies it as a C string
    return len(name) < EXT_NAME_MAX_LENGTH and _EXT_NAME.fullmatch(name) is not None


def extension_problem(ext: Extension, record_size: int) -> str | None:
    """Why Dovecot calls this extension of an index with ``record_size``-byte records
    broken (``ext_header_problem`` over its own fields), or None."""
    return ext_header_problem(record_size, ext.name, ext.hdr_size, ext.record_offset,
                              ext.record_size, ext.record_align)


@lru_cache(maxsize=4096)  # asked of every intro with the same few values
def ext_header_problem(
    index_record_size: int,
    name: str,
    hdr_size: int,
    record_offset: int,
    record_size: int,
    record_align: int,
) -> str | None:
    """Dovecot's reason for rejecting an extension header, or None when it is sound."""
    if record_size == 0 and hdr_size == 0:
        return "Invalid field values"
    if not ext_name_is_valid(name):
        return "Invalid name"
    if record_size != 0:
        problem = _ext_record_problem(index_record_size, record_offset, record_size, record_align)
        if problem:
            return problem
    if hdr_size > EXT_HEADER_MAX_SIZE:
        return f"Headersize too large ({hdr_size})"
    return None


def _ext_record_problem(
    index_record_size: int, record_offset: int, record_size: int, record_align: int
) -> str | None:
    if record_align == 0:
        return "Record field alignment is zero"
    if record_align > 8:
        return "Record alignment is too large"
    if record_size >= 32768:
        return "Record size is too large"
    if record_offset == 0:
        return None
    if record_offset + record_size > index_record_size:
        return (
            "Record field points outside record size "
            f"({record_offset}+{record_size} > {index_record_size})"
        )
    if record_offset % record_align:
        return f"Record field alignment {record_align} not used"
    if index_record_size % record_align:
        return f"Record size not aligned by {record_align} as required by extension"
    return None
