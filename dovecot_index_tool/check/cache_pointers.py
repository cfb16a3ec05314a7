"""Which file holds a cache offset that points nowhere: the index or a log.

Why: a message's first cache offset lives in the index record's ``cache`` extension,
or in the log record that last updated it. When that one offset points past the end
of a cache whose own data reaches its end, or is not 4-aligned (the cache never
writes such an offset), the cache is whole and the pointer is the damaged value:
Dovecot still deletes the cache ("record points outside file"), but the bytes that
are wrong are the index's or the log's, and the finding names them.
"""

from __future__ import annotations

from dataclasses import dataclass

from dovecot_index_tool.files import IndexSet
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import layout
from dovecot_index_tool.format.cache import CacheFile, read_record
from dovecot_index_tool.format.errors import FormatError


@dataclass(frozen=True)
class PointerHolder:
    """Where the offset is written: file, byte offset and field."""

    file: str | None
    offset: int | None
    field: str


MAX_CACHE_SIZE = 1 << 30  # mail_cache_max_size can't be over 1 GB; nothing is written past it


def pointer_is_the_damage(cache: CacheFile, offset: int, data_end: int,
                          reached: list[tuple[int, int]]) -> bool:
    """The one offset whose first record cannot be read is not 4-aligned, is one Dovecot
    can never write (at or past 1 GiB), falls inside another message's record (records
    never overlap), or lies past the end of a cache whose records run whole to its end:
    the cache was not cut. (The caller asks only when one message's offset fails.)"""
    size = len(cache.data)
    return (offset % 4 != 0 or offset >= MAX_CACHE_SIZE
            or any(start < offset < end for start, end in reached)
            or (offset >= size and _records_reach_the_end(cache, data_end)))


def _records_reach_the_end(cache: CacheFile, start: int) -> bool:
    """Whole records follow one another from ``start`` to the end of the file (the
    record a flipped offset no longer reaches is still there): the file was not cut."""
    size, at = len(cache.data), start
    while at < size:
        record = read_record(cache, at)
        if isinstance(record, FormatError) or record.past_eof:
            return False
        at += record.size
    return at == size


def pointer_holder(files: IndexSet, uid: int, offset: int, byteorder: str) -> PointerHolder:
    """The index record whose cache value is ``offset``, else the newest log record that
    wrote it."""
    u32 = layout(byteorder, "I")
    idx = files.index
    ext = idx.extension("cache") if idx is not None else None
    if idx is not None and ext is not None:
        for rec in idx.records:
            if rec.uid != uid:
                continue
            raw = ext.record_value(rec.data)
            if raw is not None and len(raw) >= 4 and u32.unpack_from(raw, 0)[0] == offset:
                return PointerHolder(idx.path, rec.offset + ext.record_offset,
                                     f"records[uid {uid}].cache")
            break
    wanted = u32.pack(uid) + u32.pack(offset)
    for log in reversed(files.logs):
        for record in reversed(log.records):
            if record.code == L.EXT_REC_UPDATE and (at := record.data.find(wanted)) >= 0:
                return PointerHolder(log.path, record.offset + L.RECORD_HEADER_SIZE + at + 4,
                                     f"record@{record.offset}.ext-rec[uid {uid}]")
    head = files.logs[-1].path if files.logs else None
    return PointerHolder(head or (idx.path if idx else None), None, f"uid {uid} cache offset")
