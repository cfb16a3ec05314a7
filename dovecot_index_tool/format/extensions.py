"""Decoding of the extension headers and record fields Dovecot is known to write.

Layouts are declared as data: ``name -> (struct format, field names)``. Unknown
extensions are left as raw bytes by the callers; nothing here guesses.
"""

from __future__ import annotations

from dovecot_index_tool.format.binary import layout
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.format.layouts import FORMATS, UNSIGNED, for_order
from dovecot_index_tool.format.mime_parts import decode_mime_parts

# Extension header layouts, by extension name.
HEADER_LAYOUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "hdr-vsize": ("QII", ("vsize", "highest_uid", "message_count")),
    "maildir": (
        "9I",
        (
            "new_check_time",
            "new_mtime",
            "new_mtime_nsecs",
            "cur_check_time",
            "cur_mtime",
            "cur_mtime_nsecs",
            "uidlist_mtime",
            "uidlist_mtime_nsecs",
            "uidlist_size",
        ),
    ),
    "mbox": ("QIB3x16s", ("sync_size", "sync_mtime", "dirty_flag", "mailbox_guid")),
    "mdbox-hdr": ("I16sB3x", ("map_uid_validity", "mailbox_guid", "flags")),
    "dbox-hdr": ("I16sB3x", ("rebuild_count", "mailbox_guid", "flags")),
    "modseq": (FORMATS["modseq_header"], ("highest_modseq", "log_seq", "log_offset")),
    "fts": ("III", ("last_indexed_uid", "settings_checksum", "unused")),
    "hdr-pop3-uidl": ("I", ("max_uid_with_pop3_uidl",)),
    "map": ("II", ("highest_file_id", "rebuild_count")),
    "last-rename-stamp": ("I", ("last_rename_stamp",)),
    "subs": ("I", ("subscriptions_changed",)),
}

# Record field layouts, by extension name and record size (names differ by file).
RECORD_LAYOUTS: dict[tuple[str, int], tuple[str, tuple[str, ...]]] = {
    ("mdbox", 8): ("II", ("map_uid", "save_date")),
    ("map", 12): ("III", ("file_id", "offset", "size")),
    ("list", 28): ("II16sI", ("name_id", "parent_uid", "guid", "uid_validity")),
    ("msgs", 16): ("IIII", ("messages", "unseen", "recent", "uidnext")),
    ("vsize", 16): ("QII", ("vsize", "highest_uid", "message_count")),
    ("1saved", 8): ("II", ("uid", "timestamp")),
    ("index sync", 8): ("II", ("size", "mtime")),
    ("maildir", 8): ("II", ("new_mtime", "cur_mtime")),
    ("mbox", 8): ("Q", ("offset",)),
    ("virtual", 8): ("II", ("mailbox_id", "real_uid")),
}

GUID_FIELDS = {"mailbox_guid", "guid"}


def _named(fmt: str, names: tuple[str, ...], data: bytes, bo: str) -> dict[str, object]:
    st = layout(bo, fmt)
    raw = data[: st.size].ljust(st.size, b"\0")
    values = st.unpack_from(raw, 0)
    return {
        name: (value.hex() if name in GUID_FIELDS else value)
        for name, value in zip(names, values, strict=True)
    }


def decode_ext_header(name: str, data: bytes, bo: str) -> dict[str, object] | None:
    """Known extension headers as named fields (short data reads as zero-padded, as
    ``doveadm dump`` does); None for extensions without a known layout."""
    if name == "list":
        return decode_list_header(data, bo)
    if name == "box-name":
        parts = [p.decode("utf-8", "replace") for p in data.rstrip(b"\0").split(b"\0")]
        return {"name_parts": parts}
    spec = HEADER_LAYOUTS.get(name)
    if spec is None:
        return None
    return _named(spec[0], spec[1], data, bo)


def decode_list_header(data: bytes, bo: str) -> dict[str, object]:
    """``list`` header: refresh flag, then ``{u32 id; name NUL}`` entries up to id 0."""
    names: dict[int, str] = {}
    refresh = data[0] if data else 0
    pos = 1
    u32 = for_order(bo).u32
    broken = False
    while pos < len(data):
        if pos + 4 > len(data):
            broken = True
            break
        (name_id,) = u32.unpack_from(data, pos)
        pos += 4
        if name_id == 0:
            break
        nul = data.find(b"\0", pos)
        if nul < 0:
            broken = True
            break
        if name_id in names:
            broken = True  # ids must be unique and increasing
        names[name_id] = data[pos:nul].decode("utf-8", "replace")
        pos = nul + 1
    return {"refresh_flag": refresh, "names": names, "broken": broken}


def decode_ext_record(
    name: str, data: bytes, bo: str, record_align: int, keywords: tuple[str, ...] = ()
) -> object:
    """One record's field of a known extension, decoded; raw hex when unknown."""
    size = len(data)
    if name == "keywords":
        bits = [i for i in range(size * 8) if data[i // 8] >> (i % 8) & 1]
        return [keywords[i] if i < len(keywords) else f"#{i}" for i in bits]
    if name == "guid" and size == 16:
        return data.hex()
    spec = RECORD_LAYOUTS.get((name, size))
    if spec is not None:
        return _named(spec[0], spec[1], data, bo)
    if size in UNSIGNED and record_align == size:
        return for_order(bo).unsigned(size).unpack(data)[0]
    return data.hex()


def decode_cache_value(name: str, type_: int, data: bytes, bo: str) -> object:
    """A cached field's value: numbers for fixed 4/8-byte fields, text for strings
    and headers (``{"lines": [...], "text": ...}``), hex otherwise."""
    if name == "mime.parts" and type_ == 1:
        return decode_mime_parts(data, bo)
    if name == "date.sent" and len(data) == 8:
        time_, tz_minutes = for_order(bo).sent_date.unpack(data)
        return {"time": time_, "tz_minutes": tz_minutes}
    if type_ in (0, 3) and len(data) in UNSIGNED:
        return for_order(bo).unsigned(len(data)).unpack(data)[0]
    if type_ == 2:
        return (
            data[:-1].decode("utf-8", "replace")
            if data.endswith(b"\0")
            else data.decode("utf-8", "replace")
        )
    if type_ == 4:
        return decode_cache_header_value(data, bo)
    return data.hex()


def decode_cache_header_value(data: bytes, bo: str) -> dict[str, object]:
    """A HEADER field: u32 line numbers ending with 0, then the raw header lines."""
    u32 = for_order(bo).u32
    lines = []
    pos = 0
    while True:
        if pos + 4 > len(data):
            if not data:
                return {"lines": [], "text": None}
            raise FormatError("header field doesn't end with 0 line", field="lines", offset=pos)
        (line,) = u32.unpack_from(data, pos)
        pos += 4
        if line == 0:
            break
        lines.append(line)
    return {"lines": lines, "text": data[pos:].decode("utf-8", "replace")}
