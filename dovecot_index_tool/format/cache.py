"""``dovecot.index.cache``: cached message fields, version 1.1.

A 32-byte header; a chain of field-name tables (the last one is authoritative);
and records ``{prev_offset, size, fields...}`` that each message's index record
points to, newest first, chained through ``prev_offset``. The file carries no
byte-order mark: the order comes from the index that points into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from dovecot_index_tool.format.binary import BIG, LITTLE, decode_packed_offset
from dovecot_index_tool.format.errors import ErrorKind, FormatError
from dovecot_index_tool.format.layouts import FORMATS, for_order

HEADER_SIZE = 32
HEADER_FORMAT = FORMATS["cache_header"]
FIELD_HEADER_SIZE = 12
RECORD_HEADER_SIZE = 8

FIELD_FIXED_SIZE = 0
FIELD_VARIABLE_SIZE = 1
FIELD_STRING = 2
FIELD_BITMASK = 3
FIELD_HEADER = 4
FIELD_TYPE_NAMES = {0: "fix", 1: "var", 2: "str", 3: "bit", 4: "hdr"}
FIXED_TYPES = (FIELD_FIXED_SIZE, FIELD_BITMASK)

DECISION_NO = 0
DECISION_TEMP = 1
DECISION_YES = 2
DECISION_FORCED = 0x80
DECISION_NAMES = {0: "no", 1: "tmp", 2: "yes"}


@dataclass(frozen=True)
class CacheHeader:
    """``struct mail_cache_header``; ``field_header_offset`` decoded from its packed form."""

    major_version: int
    compat_sizeof_uoff_t: int
    minor_version: int
    indexid: int
    file_seq: int
    continued_record_count: int
    record_count: int
    backwards_compat_used_file_size: int
    deleted_record_count: int
    field_header_offset: int
    field_header_offset_raw: bytes

    def to_dict(self) -> dict[str, object]:
        values = {k: getattr(self, k) for k in self.__dataclass_fields__}
        values["field_header_offset_raw"] = self.field_header_offset_raw.hex()
        return values


@dataclass(frozen=True)
class CacheField:
    """One cached field as the latest field header names it."""

    index: int
    name: str
    type: int
    size: int
    decision: int
    last_used: int

    @property
    def type_name(self) -> str:
        return FIELD_TYPE_NAMES.get(self.type, f"0x{self.type:x}")

    @property
    def decision_name(self) -> str:
        base = DECISION_NAMES.get(self.decision & ~DECISION_FORCED, f"0x{self.decision:x}")
        return base + ("!" if self.decision & DECISION_FORCED else "")

    @property
    def fixed(self) -> bool:
        return self.type in FIXED_TYPES


@dataclass(frozen=True)
class FieldHeader:
    """One link of the field-header chain."""

    offset: int
    next_offset: int
    size: int
    fields: tuple[CacheField, ...]


class CacheValue(NamedTuple):
    """One field occurrence inside a record."""

    field_index: int
    offset: int
    data: bytes


@dataclass(frozen=True)
class CacheRecord:
    offset: int
    prev_offset: int
    size: int
    values: tuple[CacheValue, ...]
    past_eof: int = 0  # bytes of the record beyond the end of the file, read as zeros


@dataclass(frozen=True)
class CacheChain:
    """A message's records, newest first; ``error`` is where following the chain broke."""

    records: tuple[CacheRecord, ...]
    error: FormatError | None = None


@dataclass(frozen=True)
class CacheFile:
    path: str | None
    size: int
    byteorder: str
    header: CacheHeader
    field_headers: tuple[FieldHeader, ...]
    fields: tuple[CacheField, ...]
    data: bytes = field(repr=False)
    problems: tuple[FormatError, ...] = ()

    def chain(self, offset: int) -> CacheChain:
        """Follow one message's records from ``offset`` (the index's cache value)."""
        return read_chain(self, offset)


def guess_byteorder(data: bytes, indexid: int | None = None) -> str:
    """The order in which the header's indexid matches the index's; without the index,
    the order in which file_seq is near indexid and the field table's sizes fit the file."""
    if len(data) < 12:
        return LITTLE
    if indexid is not None:
        for bo in (LITTLE, BIG):
            if for_order(bo).u32.unpack_from(data, 4)[0] == indexid:
                return bo

    def plausible(bo: str) -> int:
        idx, seq = for_order(bo).cache_ids.unpack_from(data, 4)
        score = int(0 <= seq - idx < 1 << 20)
        fh = decode_packed_offset(data[28:32]) if len(data) >= 32 else 0
        if fh and fh + 12 <= len(data):
            _, size, count = for_order(bo).cache_field_header.unpack_from(data, fh)
            score += int(12 + 10 * count <= size <= len(data) - fh)
        return score

    return max((LITTLE, BIG), key=plausible)


def parse_cache(
    data: bytes, path: str | None = None, byteorder: str | None = None, indexid: int | None = None
) -> CacheFile:
    """Parse the header and field headers; records are read on demand by :meth:`chain`."""
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise FormatError(
            "File too small",
            file=path,
            offset=0,
            field="header",
            expected=f">= {HEADER_SIZE} bytes",
            found=f"{len(data)} bytes",
        )
    bo = byteorder or guess_byteorder(data, indexid)
    values = for_order(bo).cache_header.unpack_from(data, 0)
    raw_offset = values[-1]
    header = CacheHeader(*values[:-1], decode_packed_offset(raw_offset), raw_offset)
    problems: list[FormatError] = []
    chain = _field_header_chain(data, header, bo, path, problems)
    fields = chain[-1].fields if chain else ()
    return CacheFile(path, len(data), bo, header, tuple(chain), fields, data, tuple(problems))


def _field_header_chain(
    data: bytes, header: CacheHeader, bo: str, path: str | None, problems: list[FormatError]
) -> list[FieldHeader]:
    chain: list[FieldHeader] = []
    offset = 0
    next_offset = header.field_header_offset
    where = 28
    while next_offset:
        reason = None
        if next_offset == offset:
            reason = "next_offset in field header loops"
        elif next_offset < offset and header.minor_version != 0:
            reason = "next_offset in field header decreases"
        elif next_offset + FIELD_HEADER_SIZE > len(data):
            reason = "header field next_offset points outside file"
        if reason:
            problems.append(_err(reason, path, where, "field_header.next_offset", next_offset))
            return chain
        offset = next_offset
        next_raw, size, _count = for_order(bo).cache_field_header.unpack_from(data, offset)
        next_offset = decode_packed_offset(next_raw)
        parsed = _field_header(data, offset, bo, path)
        if isinstance(parsed, FormatError):
            if next_offset:
                # Dovecot reads only the newest header whole (it lists every field);
                # of an older one it follows just next_offset.
                chain.append(FieldHeader(offset, next_offset, size, ()))
                where = offset
                continue
            problems.append(parsed)
            return chain
        chain.append(parsed)
        where = offset
    if not chain:
        problems.append(_err("missing header fields", path, 28, "field_header_offset", 0))
    return chain


def _err(reason: str, path: str | None, offset: int, field_path: str, found: object) -> FormatError:
    return FormatError(reason, file=path, offset=offset, field=field_path, found=found)


def _field_header(data: bytes, offset: int, bo: str, path: str | None) -> FieldHeader | FormatError:
    lay = for_order(bo)
    next_raw, size, count = lay.cache_field_header.unpack_from(data, offset)
    names_at = FIELD_HEADER_SIZE + 10 * count
    if size < names_at:
        return _err("invalid field header size", path, offset + 4, "field_header.size", size)
    if offset + size > len(data):
        return _err("header field size outside file", path, offset + 4, "field_header.size", size)
    block = data[offset : offset + size]
    column = lay.u32_array(count)
    last_used = column.unpack_from(block, 12)
    sizes = column.unpack_from(block, 12 + 4 * count)
    types = block[12 + 8 * count : 12 + 9 * count]
    decisions = block[12 + 9 * count : 12 + 10 * count]
    fields = []
    pos = names_at
    for i in range(count):
        nul = block.find(b"\0", pos)
        if nul < 0 or nul == pos:
            return _err(
                "field header names corrupted", path, offset + pos, f"fields[{i}].name", None
            )
        name = block[pos:nul].decode("utf-8", "replace")
        fields.append(CacheField(i, name, types[i], sizes[i], decisions[i], last_used[i]))
        pos = nul + 1
    return FieldHeader(offset, decode_packed_offset(next_raw), size, tuple(fields))


def read_chain(cache: CacheFile, offset: int) -> CacheChain:
    """Walk ``prev_offset`` links from ``offset``, validating as Dovecot's lookup does."""
    records: list[CacheRecord] = []
    seen_sum = 0
    low = high = offset
    while offset:
        rec = read_record(cache, offset)
        if isinstance(rec, FormatError):
            return CacheChain(tuple(records), rec)
        low, high = min(low, offset), max(high, offset + rec.size)
        seen_sum += rec.size
        if seen_sum > high - low:
            return CacheChain(
                tuple(records),
                FormatError(
                    "record list is circular",
                    kind=ErrorKind.CACHE_CHAIN_LOOP,
                    file=cache.path,
                    offset=offset,
                    field="record.prev_offset",
                    found=offset,
                ),
            )
        records.append(rec)
        if isinstance(rec.values, FormatError):
            break
        offset = rec.prev_offset
    return CacheChain(tuple(records))


PREFETCH = 8192  # Dovecot's first guess at a record's size (IO_BLOCK_SIZE)
PAGE = 4096  # the mapping's granularity: bytes past the end up to it read as zeros


def read_record(cache: CacheFile, offset: int) -> CacheRecord | FormatError:
    """Decode one record at ``offset``, or say why it cannot be."""
    path, data = cache.path, cache.data
    if offset % 4:
        return _err("invalid record offset", path, offset, "record", offset)
    if offset + RECORD_HEADER_SIZE > len(data):
        return _err("record points outside file", path, offset, "record", offset)
    prev, size = for_order(cache.byteorder).cache_record_header.unpack_from(data, offset)
    if size < RECORD_HEADER_SIZE:
        return _err("invalid record size", path, offset + 4, "record.size", size)
    past_eof = max(0, offset + size - len(data))
    if past_eof and (size > PREFETCH or offset + size > -(-len(data) // PAGE) * PAGE):
        return _err("record points outside file", path, offset + 4, "record.size", size)
    # Dovecot maps PREFETCH bytes and checks the size against the file only for records
    # larger than that; the rest of the file's last mapped page reads as zeros (beyond
    # that page the read faults).
    body = data[offset : offset + size] + bytes(past_eof)
    values = _record_values(cache, offset, body)
    if isinstance(values, FormatError):
        return values
    return CacheRecord(offset, prev, size, values, past_eof)


def _record_values(
    cache: CacheFile, offset: int, rec: bytes
) -> tuple[CacheValue, ...] | FormatError:
    u32 = for_order(cache.byteorder).u32
    values = []
    pos = RECORD_HEADER_SIZE
    fields = cache.fields
    count = len(fields)
    end = len(rec)
    while pos + 4 <= end:
        (idx,) = u32.unpack_from(rec, pos)
        if idx >= count:
            return FormatError(
                f"field index too large ({idx} >= {count})",
                file=cache.path,
                offset=offset + pos,
                field="record.field",
                expected=f"< {count}",
                found=idx,
            )
        pos += 4
        fld = fields[idx]
        size = fld.size
        if fld.type not in FIXED_TYPES and pos + 4 <= end:
            (size,) = u32.unpack_from(rec, pos)
            pos += 4
        if end - pos < size:
            return FormatError(
                "record continues outside its allocated size",
                file=cache.path,
                offset=offset + pos,
                field=f"record.{fld.name}",
                expected=f"<= {len(rec) - pos}",
                found=size,
            )
        values.append(CacheValue(idx, offset + pos, rec[pos : pos + size]))
        pos += (size + 3) & ~3  # align(size, 4), inline: once per cached value
    if pos != end:
        return _err("record has invalid size", cache.path, offset + 4, "record.size", len(rec))
    return tuple(values)
