"""The fixed binary layouts of Dovecot's files, declared once.

Each layout is a struct format without byte-order prefix, named after what it
holds. :func:`for_order` compiles all of them for one byte order, once, so call
sites read ``for_order(bo).ext_header.unpack_from(data, offset)``. Every format is
read unaligned, as Dovecot's packed C structs are.
"""

from __future__ import annotations

import struct
from functools import cache

from dovecot_index_tool.format.binary import align, layout

# ``struct mail_index_header``: (field name, struct code) in file order; "" is padding.
INDEX_HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("major_version", "B"),
    ("minor_version", "B"),
    ("base_header_size", "H"),
    ("header_size", "I"),
    ("record_size", "I"),
    ("compat_flags", "B"),
    ("", "3x"),
    ("indexid", "I"),
    ("flags", "I"),
    ("uid_validity", "I"),
    ("next_uid", "I"),
    ("messages_count", "I"),
    ("unused_old_recent_messages_count", "I"),
    ("seen_messages_count", "I"),
    ("deleted_messages_count", "I"),
    ("first_recent_uid", "I"),
    ("first_unseen_uid_lowwater", "I"),
    ("first_deleted_uid_lowwater", "I"),
    ("log_file_seq", "I"),
    ("log_file_tail_offset", "I"),
    ("log_file_head_offset", "I"),
    ("unused_old_sync_size_part1", "I"),
    ("log2_rotate_time", "I"),
    ("last_temp_file_scan", "I"),
    ("day_stamp", "I"),
    ("day_first_uid", "8I"),
)

# ``struct mail_transaction_log_header``: (field name, struct code) in file order.
LOG_HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("major_version", "B"),
    ("minor_version", "B"),
    ("hdr_size", "H"),
    ("indexid", "I"),
    ("file_seq", "I"),
    ("prev_file_seq", "I"),
    ("prev_file_offset", "I"),
    ("create_stamp", "I"),
    ("initial_modseq", "Q"),
    ("compat_flags", "B"),
    ("", "3x"),
    ("unused2", "I"),
)

FORMATS: dict[str, str] = {
    # plain numbers
    "u8": "B",
    "u16": "H",
    "u32": "I",
    "u64": "Q",
    # dovecot.index
    "index_header": "".join(code for _, code in INDEX_HEADER_FIELDS),
    "ext_header": "IIHHHH",  # hdr_size, reset_id, record_offset, record_size, align, name_size
    "ext_header_head": "IIHHH",  # ext_header without name_size, rewritten when the layout moves
    "record_head": "IB",  # uid, flags
    "keyword_entry": "II",  # unused, name_offset (after the u32 keywords_count)
    "modseq_header": "QII",  # highest_modseq, log_seq, log_offset
    # dovecot.index.log
    "log_header": "".join(code for _, code in LOG_HEADER_FIELDS),
    "uid_range": "II",
    "append": "IB3x",  # uid, flags
    "expunge_guid": "I16s",
    "flag_update": "IIBBBx",  # uid1, uid2, add_flags, remove_flags, modseq_inc_flag
    "header_update": "HH",  # offset, size
    "header_update32": "II",  # offset, size (ext-hdr32)
    "ext_intro": "IIIHHHH",  # ext_id, reset_id, hdr_size, record_size, align, flags, name_size
    "ext_reset": "I",  # new_reset_id; an optional preserve_data byte follows
    "atomic_inc": "Ii",  # uid, diff
    "keyword_update": "BxH",  # modify_type, name_size
    "modseq_update": "III",  # uid, modseq low 32 bits, high 32 bits
    "boundary": "I",  # transaction size
    # dovecot.index.cache
    "cache_header": "BBBxIIIIII4s",
    "cache_ids": "II",  # indexid, file_seq: the cache header from offset 4
    "cache_field_header": "4sII",  # packed next_offset, size, fields_count
    "cache_record_header": "II",  # prev_offset, size
    "sent_date": "Ii",  # struct mail_sent_date: time, timezone in minutes
    # the mime.parts cache field
    "mime_part_sizes": "QQQQ",  # header physical/virtual, body physical/virtual
}

UNSIGNED = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}  # by size in bytes


class Layouts:
    """Every layout of :data:`FORMATS` compiled for one byte order, under the same name."""

    byteorder: str
    u8: struct.Struct
    u16: struct.Struct
    u32: struct.Struct
    u64: struct.Struct
    index_header: struct.Struct
    ext_header: struct.Struct
    ext_header_head: struct.Struct
    record_head: struct.Struct
    keyword_entry: struct.Struct
    modseq_header: struct.Struct
    log_header: struct.Struct
    uid_range: struct.Struct
    append: struct.Struct
    expunge_guid: struct.Struct
    flag_update: struct.Struct
    header_update: struct.Struct
    header_update32: struct.Struct
    ext_intro: struct.Struct
    ext_reset: struct.Struct
    atomic_inc: struct.Struct
    keyword_update: struct.Struct
    modseq_update: struct.Struct
    boundary: struct.Struct
    cache_header: struct.Struct
    cache_ids: struct.Struct
    cache_field_header: struct.Struct
    cache_record_header: struct.Struct
    sent_date: struct.Struct
    mime_part_sizes: struct.Struct

    def __init__(self, byteorder: str) -> None:
        self.byteorder = byteorder
        for name, fmt in FORMATS.items():
            setattr(self, name, layout(byteorder, fmt))
        self._ext_rec_updates: dict[int, struct.Struct] = {}
        # each base index header field: its offset and its compiled number, looked up
        # by name for every header read and write of a replay
        self.index_fields: dict[str, tuple[int, struct.Struct, int]] = {
            name: (offset, self.unsigned(size), (1 << (8 * size)) - 1)
            for name, (offset, size) in INDEX_HEADER_OFFSETS.items() if size in UNSIGNED
        }

    def unsigned(self, size: int) -> struct.Struct:
        """The unsigned number of ``size`` bytes (1, 2, 4 or 8; KeyError otherwise)."""
        return getattr(self, UNSIGNED[size])

    def u32_array(self, count: int) -> struct.Struct:
        """``count`` consecutive u32s, as in the cache field header's columns."""
        return layout(self.byteorder, f"{count}I")

    def record_heads(self, record_size: int) -> struct.Struct:
        """One index record read as uid and flags, the rest skipped."""
        return layout(self.byteorder, f"IB{record_size - 5}x")

    def ext_rec_update(self, record_size: int) -> struct.Struct:
        """An ext-rec update: uid, the record's bytes, padding to 4 bytes."""
        found = self._ext_rec_updates.get(record_size)
        if found is None:
            step = align(4 + record_size, 4)
            found = layout(self.byteorder, f"I{record_size}s{step - 4 - record_size}x")
            self._ext_rec_updates[record_size] = found
        return found


@cache
def for_order(byteorder: str) -> Layouts:
    """The layouts for ``"<"`` or ``">"``, compiled on first use."""
    return Layouts(byteorder)


def _field_offsets(header_fields: tuple[tuple[str, str], ...]) -> dict[str, tuple[int, int]]:
    offsets = {}
    pos = 0
    for name, code in header_fields:
        size = struct.calcsize("<" + code)
        if name:
            offsets[name] = (pos, size)
        pos += size
    return offsets


# (offset, size) of each base header field, for log header updates and the replay map.
INDEX_HEADER_OFFSETS: dict[str, tuple[int, int]] = _field_offsets(INDEX_HEADER_FIELDS)
LOG_HEADER_OFFSETS: dict[str, tuple[int, int]] = _field_offsets(LOG_HEADER_FIELDS)
