"""Rewrite a real Dovecot file in the other byte order, as a Dovecot on the other CPU would.

Dovecot writes every multi-byte integer in its host's byte order and marks the
order only in ``compat_flags`` (bit 0x01 = little-endian) of ``dovecot.index``
and of the transaction log; the cache carries no mark and follows its index.
The committed fixtures all come from little-endian (x86) machines, so the tests
make big-endian files from them with this helper: every number is byte-swapped
where it lies, nothing moves, and strings, GUIDs, flag bytes, keyword bitmasks
and padding stay as they are. Each function works in both directions (it reads
the numbers in the input's own order), so ``swap_x(swap_x(data)) == data``.

The package's parsers only *locate* structures (extension headers, records,
cache field tables); which bytes are numbers is decided here, from the format
(``/work/shared/dovecot-format.md`` §2-§4) and the layouts of
:mod:`dovecot_index_tool.format.extensions`. Whatever cannot be located or has no
known layout (unknown extensions, truncated or corrupt areas) is left as it is.

The cache field ``mime.parts`` (a serialized MIME tree, message-part-serialize.c)
holds host-endian numbers too and is swapped part by part; ``binary.parts`` is
numpack-encoded, which has no byte order.

Checked against the real thing: ``doveadm dump`` of the Debian s390x (big-endian)
build, run under qemu-user on the twins of all fixtures, prints the same
decoded values as the x86 build on the originals.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping, Sequence

from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import align, decode_packed_offset
from dovecot_index_tool.format.cache import (
    FIELD_BITMASK,
    FIELD_FIXED_SIZE,
    FIELD_HEADER,
    FIELD_VARIABLE_SIZE,
    CacheFile,
    parse_cache,
    read_chain,
    read_record,
)
from dovecot_index_tool.format.cache import HEADER_SIZE as CACHE_HEADER_SIZE
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.format.extensions import HEADER_LAYOUTS, RECORD_LAYOUTS
from dovecot_index_tool.format.index import (
    EXT_HEADER_FORMAT,
    HEADER_FORMAT,
    IndexFile,
    parse_index,
)

NO_EXT_ID = 0xFFFFFFFF
INDEX_COMPAT_OFFSET = 12
LOG_COMPAT_OFFSET = 32
LITTLE_ENDIAN_FLAG = 0x01

_CODE = re.compile(r"(\d*)([xcbB?hHiIlLqQefdsp])")


def number_spans(fmt: str) -> list[tuple[int, int]]:
    """``(offset, size)`` of every multi-byte number in a struct format without prefix.

    Formats are read unaligned (as ``"<"`` would), like every layout in the package.
    """
    spans = []
    pos = 0
    for count, code in _CODE.findall(fmt):
        n = int(count) if count else 1
        if code in "xsp":
            pos += n
            continue
        size = struct.calcsize("<" + code)
        for _ in range(n):
            if size > 1:
                spans.append((pos, size))
            pos += size
    return spans


INDEX_HEADER_SPANS = number_spans(HEADER_FORMAT)
EXT_HEADER_SPANS = number_spans(EXT_HEADER_FORMAT)
LOG_HEADER_SPANS = number_spans(L.HEADER_FORMAT)
INTRO_FORMAT = "IIIHHHH"
INTRO_SIZE = struct.calcsize("<" + INTRO_FORMAT)
INTRO_SPANS = number_spans(INTRO_FORMAT)
CACHE_HEADER_SPANS = number_spans("BBBxIIIIII4s")  # the packed offset is order-free
# Cache fields whose fixed 8 bytes are not one u64 (struct mail_sent_date).
CACHE_FIXED_LAYOUTS = {"date.sent": "Ii"}


class _Swapper:
    """The output bytes, plus reads of the input in its own byte order."""

    def __init__(self, data: bytes, byteorder: str) -> None:
        self.src = bytes(data)
        self.out = bytearray(data)
        self.bo = byteorder

    def swap(self, offset: int, size: int) -> None:
        """Reverse one number's bytes, if it lies wholly inside the file."""
        if size > 1 and offset >= 0 and offset + size <= len(self.out):
            self.out[offset : offset + size] = self.src[offset : offset + size][::-1]

    def spans(self, base: int, spans: Iterable[tuple[int, int]], limit: int | None = None) -> None:
        """Swap numbers at ``base + offset``; with ``limit``, only those ending by it."""
        for offset, size in spans:
            if limit is None or offset + size <= limit:
                self.swap(base + offset, size)

    def read(self, fmt: str, offset: int) -> tuple:
        return struct.unpack_from(self.bo + fmt, self.src, offset)

    def fits(self, offset: int, size: int) -> bool:
        return offset >= 0 and offset + size <= len(self.src)

    def flip(self, offset: int, bit: int) -> None:
        if offset < len(self.out):
            self.out[offset] ^= bit

    def result(self) -> bytes:
        return bytes(self.out)


# extension data shared by the index and the log ------------------------
def ext_header_spans(name: str | None, data: bytes, offset: int, bo: str) -> list[tuple[int, int]]:
    """Numbers inside ``data``, a piece of an extension's header data starting at
    ``offset`` of it; positions relative to ``data``. Only whole fields count."""
    end = offset + len(data)
    if name == "keywords":
        if offset != 0 or len(data) < 4:
            return []
        (count,) = struct.unpack_from(bo + "I", data, 0)
        spans = [(0, 4)]
        for i in range(count):
            pair = 4 + 8 * i
            if pair + 8 > len(data):
                break
            spans += [(pair, 4), (pair + 4, 4)]
        return spans
    if name == "list":
        return list_name_spans(data, bo) if offset == 0 else []
    layout = HEADER_LAYOUTS.get(name or "")
    if layout is None:
        return []
    return [(o - offset, s) for o, s in number_spans(layout[0]) if offset <= o and o + s <= end]


def list_name_spans(data: bytes, bo: str) -> list[tuple[int, int]]:
    """The ``list`` header: refresh byte, then ``{u32 id; name NUL}`` up to id 0."""
    spans = []
    pos = 1
    while pos + 4 <= len(data):
        (name_id,) = struct.unpack_from(bo + "I", data, pos)
        spans.append((pos, 4))
        pos += 4
        if name_id == 0:
            break
        nul = data.find(b"\0", pos)
        if nul < 0:
            break
        pos = nul + 1
    return spans


def ext_record_spans(name: str | None, size: int, record_align: int) -> list[tuple[int, int]]:
    """Numbers inside one extension record field, the way the package decodes it."""
    if name == "keywords" or (name == "guid" and size == 16):
        return []
    layout = RECORD_LAYOUTS.get((name or "", size))
    if layout is not None:
        return number_spans(layout[0])
    if size in (2, 4, 8) and record_align == size:
        return [(0, size)]
    return []


# dovecot.index ----------------------------------------------------------
def swap_index(data: bytes) -> bytes:
    """``dovecot.index`` (or a list, map, pvt or backup index) in the other byte order."""
    index = parse_index(data)
    sw = _Swapper(data, index.byteorder)
    sw.spans(0, INDEX_HEADER_SPANS)
    sw.flip(INDEX_COMPAT_OFFSET, LITTLE_ENDIAN_FLAG)
    for ext in index.extensions:
        sw.spans(ext.offset, EXT_HEADER_SPANS)
        sw.spans(ext.data_offset, ext_header_spans(ext.name, ext.data, 0, index.byteorder))
    fields = [
        (ext.record_offset, ext_record_spans(ext.name, ext.record_size, ext.record_align))
        for ext in index.extensions
        if ext.record_size
        and ext.record_offset
        and ext.record_offset + ext.record_size <= index.header.record_size
    ]
    for rec in index.records:
        sw.swap(rec.offset, 4)  # uid; the flags byte follows
        for record_offset, spans in fields:
            sw.spans(rec.offset + record_offset, spans)
    return sw.result()


# dovecot.index.log ------------------------------------------------------
def swap_log(data: bytes, ext_names: Sequence[str] = ()) -> bytes:
    """A transaction log in the other byte order.

    ``ext_names`` are the index's extensions by ext_id when the log begins (the
    extension list of ``dovecot.index``, or :func:`log_ext_names` of the previous
    log): intros that refer to an extension by id carry no name, and the data of
    its header and record updates can only be swapped when its layout is known.
    Without them, record updates of a 2/4/8-byte field aligned to its size are
    still swapped as one number. A reset log (``prev_file_seq`` 0) always starts
    with no extensions.
    """
    walk = _LogWalk(data, ext_names)
    walk.run()
    return walk.sw.result()


def log_ext_names(data: bytes, ext_names: Sequence[str] = ()) -> list[str]:
    """The index's extensions by ext_id after the log, for the log that follows it."""
    walk = _LogWalk(data, ext_names)
    walk.run()
    return walk.names


class _LogWalk:
    """Walks the records once, swapping numbers and following the extension table."""

    def __init__(self, data: bytes, ext_names: Sequence[str]) -> None:
        self.header = L.parse_log_header(data)
        h = self.header
        self.sw = _Swapper(data, L.byteorder_of(h.compat_flags, h.major_version, h.minor_version))
        self.names = [] if h.prev_file_seq == 0 else list(ext_names)
        self.cur_name: str | None = None
        self.cur_record_size = 0
        self.cur_record_align = 0

    def run(self) -> None:
        sw, hdr_size = self.sw, self.header.hdr_size
        sw.spans(0, LOG_HEADER_SPANS, limit=min(hdr_size, len(sw.src)))
        if hdr_size > LOG_COMPAT_OFFSET:
            sw.flip(LOG_COMPAT_OFFSET, LITTLE_ENDIAN_FLAG)
        pos = hdr_size
        while pos + L.RECORD_HEADER_SIZE <= len(sw.src):
            size = decode_packed_offset(sw.src[pos : pos + 4])  # order-free: left alone
            if size < L.RECORD_HEADER_SIZE or pos + size > len(sw.src):
                break
            (rtype,) = sw.read("I", pos + 4)
            sw.swap(pos + 4, 4)
            self._payload(rtype & L.TYPE_MASK, pos + L.RECORD_HEADER_SIZE, size - 8)
            pos += size

    def _payload(self, code: int, start: int, size: int) -> None:
        sw = self.sw
        if code in (L.EXPUNGE | L.EXPUNGE_PROT, L.KEYWORD_RESET, L.EXT_ATOMIC_INC, L.BOUNDARY):
            self._every(start, size, 4, [(0, 4)])  # u32 ranges, {uid; i32 diff}, {size}
        elif code in (L.APPEND, L.EXPUNGE_GUID | L.EXPUNGE_PROT):
            self._every(start, size, 8 if code == L.APPEND else 20, [(0, 4)])
        elif code == L.FLAG_UPDATE:
            self._every(start, size, 12, [(0, 4), (4, 4)])
        elif code == L.MODSEQ_UPDATE:
            self._every(start, size, 12, [(0, 4), (4, 4), (8, 4)])
        elif code == L.EXT_RESET:
            sw.spans(start, [(0, 4)], limit=size)  # then u8 preserve_data and padding
        elif code == L.HEADER_UPDATE:
            self._updates(start, size, wide=False, base=True)
        elif code in (L.EXT_HDR_UPDATE, L.EXT_HDR_UPDATE32):
            self._updates(start, size, wide=code == L.EXT_HDR_UPDATE32, base=False)
        elif code == L.EXT_INTRO:
            self._intros(start, size)
        elif code == L.EXT_REC_UPDATE:
            self._rec_updates(start, size)
        elif code == L.KEYWORD_UPDATE:
            self._keyword_update(start, size)
        elif code == L.ATTRIBUTE_UPDATE:
            self._attribute_update(start, size)
        # INDEX_DELETED/UNDELETED (4 zero bytes) and unknown types: nothing to swap

    def _every(self, start: int, size: int, step: int, spans: list[tuple[int, int]]) -> None:
        for pos in range(0, size - step + 1, step):
            self.sw.spans(start + pos, spans)

    def _updates(self, start: int, size: int, wide: bool, base: bool) -> None:
        """``{u16|u32 offset; u16|u32 size; data; pad4}`` items: base or extension header."""
        sw = self.sw
        fmt = "II" if wide else "HH"
        head = struct.calcsize("<" + fmt)
        pos = 0
        while pos + head <= size:
            offset, length = sw.read(fmt, start + pos)
            sw.spans(start + pos, number_spans(fmt))
            data_at = start + pos + head
            if pos + head + length > size:
                return
            data = sw.src[data_at : data_at + length]
            if base:
                spans = [
                    (o - offset, s)
                    for o, s in INDEX_HEADER_SPANS
                    if offset <= o and o + s <= offset + length
                ]
            else:
                spans = ext_header_spans(self.cur_name, data, offset, sw.bo)
            sw.spans(data_at, spans)
            pos = align(pos + head + length, 4)

    def _intros(self, start: int, size: int) -> None:
        sw = self.sw
        pos = 0
        while pos + INTRO_SIZE <= size:
            ext_id, _, _, rec_size, rec_align, _, name_size = sw.read(INTRO_FORMAT, start + pos)
            sw.spans(start + pos, INTRO_SPANS)
            if pos + INTRO_SIZE + name_size > size:
                return
            name_at = start + pos + INTRO_SIZE
            name = sw.src[name_at : name_at + name_size].decode("ascii", "replace")
            if ext_id != NO_EXT_ID:
                self.cur_name = self.names[ext_id] if ext_id < len(self.names) else None
            else:
                self.cur_name = name or None
                if name and name not in self.names:
                    self.names.append(name)
            self.cur_record_size, self.cur_record_align = rec_size, rec_align
            pos = align(pos + INTRO_SIZE + name_size, 4)

    def _rec_updates(self, start: int, size: int) -> None:
        step = align(4 + self.cur_record_size, 4)
        if size % step:
            return  # the parser rejects it too: nothing can be located
        spans = [(0, 4)] + [
            (4 + o, s)
            for o, s in ext_record_spans(self.cur_name, self.cur_record_size, self.cur_record_align)
        ]
        self._every(start, size, step, spans)

    def _keyword_update(self, start: int, size: int) -> None:
        """``{u8 modify_type; u8 pad; u16 name_size; name; pad4; {u32 uid1; u32 uid2}...}``."""
        if size < 4:
            return
        (name_size,) = self.sw.read("H", start + 2)
        self.sw.swap(start + 2, 2)
        ranges = align(4 + name_size, 4)
        self._every(start + ranges, size - ranges, 4, [(0, 4)])
        if "keywords" not in self.names:
            self.names.append("keywords")  # the sync registers the extension itself

    def _attribute_update(self, start: int, size: int) -> None:
        """``("+"|"-")("p"|"s")key NUL`` entries, a NUL, pad4, then u32s
        (mail_index_transaction_export: timestamps and value lengths)."""
        payload = self.sw.src[start : start + size]
        pos = 0
        while pos < size and payload[pos] != 0:
            nul = payload.find(b"\0", pos)
            if nul < 0:
                return
            pos = nul + 1
        self._every(start + align(pos + 1, 4), size - align(pos + 1, 4), 4, [(0, 4)])


# dovecot.index.cache ----------------------------------------------------
def swap_cache(
    data: bytes,
    index: IndexFile | None = None,
    byteorder: str | None = None,
    offsets: Iterable[int] = (),
) -> bytes:
    """A cache file in the other byte order.

    The cache has no byte-order mark: its order is ``byteorder``, else that of
    ``index`` (the index it belongs to), else the package's guess. Records are
    found by walking the file from the end of its header (records and field
    headers follow each other without gaps), plus the chains from the ``cache``
    extension of ``index`` and any ``offsets`` given.
    """
    bo = byteorder or (index.byteorder if index is not None else None)
    indexid = index.header.indexid if index is not None else None
    cache = parse_cache(data, byteorder=bo, indexid=indexid)
    sw = _Swapper(data, cache.byteorder)
    sw.spans(0, CACHE_HEADER_SPANS)
    for fh in cache.field_headers:
        _swap_field_header(sw, fh.offset)
    for offset in sorted(cache_record_offsets(cache, index, offsets)):
        rec = read_record(cache, offset)
        if isinstance(rec, FormatError):
            continue
        sw.spans(offset, [(0, 4), (4, 4)])  # prev_offset, size: plain numbers
        for value in rec.values:
            field = cache.fields[value.field_index]
            if field.fixed:
                sw.swap(value.offset - 4, 4)  # field index
            else:
                sw.spans(value.offset - 8, [(0, 4), (4, 4)])  # field index, data size
            sw.spans(value.offset, _cache_value_spans(field.name, field.type, value.data, sw.bo))
    return sw.result()


def _swap_field_header(sw: _Swapper, offset: int) -> None:
    """``{packed next_offset; u32 size; u32 count; u32 last_used[n]; u32 sizes[n]; ...}``."""
    if not sw.fits(offset, 12):
        return
    size, count = sw.read("II", offset + 4)
    sw.spans(offset, [(4, 4), (8, 4)])
    arrays = [(12 + 4 * i, 4) for i in range(2 * count)]
    sw.spans(offset, arrays, limit=size)


def _cache_value_spans(name: str, type_: int, data: bytes, bo: str) -> list[tuple[int, int]]:
    if type_ == FIELD_FIXED_SIZE:
        layout = CACHE_FIXED_LAYOUTS.get(name)
        if layout is not None and struct.calcsize("<" + layout) == len(data):
            return number_spans(layout)
        return [(0, len(data))] if len(data) in (2, 4, 8) else []
    if type_ == FIELD_BITMASK:
        return [(0, 4)] if name == "flags" and len(data) == 4 else []
    if type_ == FIELD_HEADER:
        spans = []
        for pos in range(0, len(data) - 3, 4):
            spans.append((pos, 4))
            if struct.unpack_from(bo + "I", data, pos)[0] == 0:
                break
        return spans
    if type_ == FIELD_VARIABLE_SIZE and name == "mime.parts":
        return mime_parts_spans(data, bo)
    return []  # strings, binary.parts (numpack) and unknown variable-size fields


# message_part flags (message-parser.h) deciding which fields a part has
PART_MULTIPART = 0x01
PART_MESSAGE_RFC822 = 0x04
PART_TEXT = 0x08


def mime_parts_spans(data: bytes, bo: str) -> list[tuple[int, int]]:
    """Numbers of a serialized MIME tree; none when it does not parse exactly.

    Each part: ``unsigned flags``, ``uoff_t physical_pos`` (not for the root),
    ``uoff_t`` header physical/virtual and body physical/virtual sizes,
    ``unsigned body_lines`` for text and message/rfc822 parts, ``unsigned
    children_count`` for multipart and message/rfc822 parts, then the children.
    """
    spans: list[tuple[int, int]] = []
    pos = 0

    def take(size: int) -> int:
        nonlocal pos
        if pos + size > len(data):
            raise ValueError("truncated")
        spans.append((pos, size))
        value = int.from_bytes(data[pos : pos + size], "little" if bo == "<" else "big")
        pos += size
        return value

    def parts(count: int, root: bool) -> None:
        for _ in range(count):
            flags = take(4)
            for _ in range(4 if root else 5):
                take(8)
            root = False
            if flags & (PART_TEXT | PART_MESSAGE_RFC822):
                take(4)
            if flags & (PART_MULTIPART | PART_MESSAGE_RFC822):
                parts(take(4), False)

    try:
        parts(1, True)
    except (ValueError, RecursionError):
        return []
    return spans if pos == len(data) else []


def cache_record_offsets(
    cache: CacheFile, index: IndexFile | None = None, offsets: Iterable[int] = ()
) -> set[int]:
    """Every record offset found by the sequential walk and by following chains."""
    found, _ = sequential_walk(cache)
    starts = list(offsets)
    ext = index.extension("cache") if index is not None else None
    if ext is not None and ext.reset_id == cache.header.file_seq and ext.record_size == 4:
        for rec in index.records:
            value = ext.record_value(rec.data)
            if value:
                starts.append(struct.unpack(index.byteorder + "I", value)[0])
    for start in starts:
        if start:
            found.update(r.offset for r in read_chain(cache, start).records)
    return found


def sequential_walk(cache: CacheFile) -> tuple[set[int], int]:
    """Records met walking from the end of the header over records and field
    headers, and the offset where the walk stopped (the file size when complete)."""
    found = set()
    headers = {fh.offset: align(fh.size, 4) for fh in cache.field_headers}
    pos = CACHE_HEADER_SIZE
    while pos + 8 <= cache.size:
        if pos in headers:
            pos += headers[pos]
            continue
        rec = read_record(cache, pos)
        if isinstance(rec, FormatError):
            break
        found.add(pos)
        pos += rec.size
    return found, pos


# a whole index prefix ---------------------------------------------------
INDEX_SUFFIXES = ("", ".backup")
LOG_SUFFIXES = (".log.2", ".log")
CACHE_SUFFIX = ".cache"


def swap_index_files(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The files of one index prefix ``P``, keyed by suffix (``""`` for ``P``,
    ``".backup"``, ``".log"``, ``".log.2"``, ``".cache"``), in the other byte order.

    Logs are swapped oldest first, each starting from the extension table the
    previous log left (or the index's, when the previous log is not there); the
    cache follows ``P`` (else the newest log) and its chains start from ``P``.
    """
    out: dict[str, bytes] = {}
    index = parse_index(files[""]) if "" in files else None
    for suffix in INDEX_SUFFIXES:
        if suffix in files:
            out[suffix] = swap_index(files[suffix])
    index_names = [e.name for e in index.extensions] if index is not None else []
    logs = sorted((L.parse_log_header(files[s]).file_seq, s) for s in LOG_SUFFIXES if s in files)
    names: list[str] = index_names
    prev_seq = None
    newest_order = None
    for file_seq, suffix in logs:
        header = L.parse_log_header(files[suffix])
        start = names if prev_seq is not None and header.prev_file_seq == prev_seq else index_names
        out[suffix] = swap_log(files[suffix], start)
        names, prev_seq = log_ext_names(files[suffix], start), file_seq
        newest_order = L.byteorder_of(
            header.compat_flags, header.major_version, header.minor_version
        )
    if CACHE_SUFFIX in files:
        order = index.byteorder if index is not None else newest_order
        out[CACHE_SUFFIX] = swap_cache(files[CACHE_SUFFIX], index, byteorder=order)
    return out
