"""Dovecot's in-memory map of an index: header buffer, extensions and records.

Replay edits these bytes, not parsed values, so that what it produces is the
``dovecot.index`` Dovecot would write.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from dovecot_index_tool.format.binary import LITTLE
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.format.index import (
    BASE_HEADER_SIZE,
    HDR_FLAG_FSCKD,
    IndexFile,
    extension_problem,
    parse_keywords_header,
)
from dovecot_index_tool.format.layouts import for_order


@dataclass
class MapExt:
    """One extension as the map lays it out; offsets move as extensions change."""

    name: str
    ext_offset: int
    hdr_offset: int
    hdr_size: int
    reset_id: int
    record_offset: int
    record_size: int
    record_align: int


class RecordMap:
    """Header buffer, extensions and records, with the UIDs kept sorted for lookups."""

    def __init__(self, bo: str, header: bytearray, exts: list[MapExt], records: list[bytearray]):
        self.bo = bo
        self.lay = for_order(bo)
        self.fields = self.lay.index_fields
        self.hdr = header
        self.exts = exts
        self.records = records
        self.uids = [self.lay.u32.unpack_from(r, 0)[0] for r in records]

    @classmethod
    def from_index(cls, index: IndexFile) -> RecordMap:
        """The index as Dovecot maps it: header as stored, with the record count that fits."""
        header = bytearray(index.header_data)
        for_order(index.byteorder).u32.pack_into(header, 32, len(index.records))
        exts = [_map_ext(e, index.header.record_size) for e in index.extensions]
        records = [bytearray(r.data) for r in index.records]
        return cls(index.byteorder, header, exts, records)

    @classmethod
    def empty(cls, bo: str, indexid: int, fsckd: bool = False) -> RecordMap:
        """``mail_index_header_init``: what Dovecot starts from without ``dovecot.index``."""
        m = cls(bo, bytearray(BASE_HEADER_SIZE), [], [])
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

    # base header fields -------------------------------------------------
    def get(self, name: str) -> int:
        offset, number, _ = self.fields[name]
        return number.unpack_from(self.hdr, offset)[0]

    def set(self, name: str, value: int) -> None:
        offset, number, mask = self.fields[name]
        number.pack_into(self.hdr, offset, value & mask)

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
        uids = self.uids
        i = bisect.bisect_left(uids, uid)
        return i if i < len(uids) and uids[i] == uid else None

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

    # output -------------------------------------------------------------
    def write_ext_header(self, ext: MapExt) -> None:
        self.lay.ext_header_head.pack_into(
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


def _map_ext(e, record_size: int) -> MapExt:
    """An extension as the map holds it. One whose header is broken keeps its place (the
    logs name extensions by their number) but no record field: Dovecot's fsck drops it
    ("Dropped broken extension"), so none of its record bytes are ever read."""
    broken = extension_problem(e, record_size) is not None
    return MapExt(e.name, e.offset, e.data_offset, e.hdr_size, e.reset_id,
                  0 if broken else e.record_offset, 0 if broken else e.record_size,
                  e.record_align)
