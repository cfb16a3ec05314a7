"""Where extensions sit in the map: adding one, resizing one, laying records out again."""

from __future__ import annotations

from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import align
from dovecot_index_tool.format.index import EXT_HEADER_SIZE
from dovecot_index_tool.format.replay.record_map import MapExt, RecordMap


def add_extension(m: RecordMap, name: str, u: L.ExtIntro) -> int:
    """Append a new extension header (and its zeroed data) to the header buffer."""
    m.hdr.extend(bytes(align(len(m.hdr), 8) - len(m.hdr)))
    encoded = name.encode("latin-1")  # names are read one character per byte
    ext_offset = len(m.hdr)
    hdr_offset = ext_offset + align(EXT_HEADER_SIZE + len(encoded), 8)
    ext = MapExt(
        name, ext_offset, hdr_offset, u.hdr_size, u.reset_id, 0, u.record_size, u.record_align
    )
    m.hdr.extend(
        m.lay.ext_header.pack(
            u.hdr_size, u.reset_id, 0, u.record_size, u.record_align, len(encoded)
        )
    )
    m.hdr.extend(encoded)
    m.hdr.extend(bytes(hdr_offset - len(m.hdr) + align(u.hdr_size, 8)))
    m.exts.append(ext)
    m.set("header_size", len(m.hdr))
    reorder_fields(m, len(m.exts) - 1, 0)
    return len(m.exts) - 1


def resize_extension(m: RecordMap, idx: int, u: L.ExtIntro, no_shrink: bool) -> None:
    """An intro of a known extension with other sizes: grow (or shrink) it in place."""
    ext = m.exts[idx]
    old_pad, new_pad = align(ext.hdr_size, 8), align(u.hdr_size, 8)
    if ext.record_align == u.record_align and ext.record_size == u.record_size:
        if new_pad < old_pad and no_shrink:
            return
        if new_pad >= old_pad and ext.hdr_size == u.hdr_size:
            return
    new_pad = _resize_header(m, ext, u.hdr_size, old_pad, new_pad, no_shrink)
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
        reorder_fields(m, idx, old_record_size)


def _resize_header(
    m: RecordMap, ext: MapExt, hdr_size: int, old_pad: int, new_pad: int, no_shrink: bool
) -> int:
    """Cut or insert header bytes; the padded size the header ends up with."""
    if new_pad < old_pad:
        if no_shrink:
            return old_pad
        del m.hdr[ext.hdr_offset + new_pad : ext.hdr_offset + old_pad]
    elif new_pad > old_pad:
        at = ext.hdr_offset + old_pad
        m.hdr[at:at] = bytes(new_pad - old_pad)
    ext.hdr_size = hdr_size
    return new_pad


def reorder_fields(m: RecordMap, idx: int, old_ext_size: int) -> None:
    """``sync_ext_reorder``: lay the record fields out again, widest alignment first."""
    old_offsets = [e.record_offset for e in m.exts]
    copy_sizes = [e.record_size for e in m.exts]
    copy_sizes[idx] = min(copy_sizes[idx], old_ext_size)
    new_size = _place_fields(m.exts)
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


def _place_fields(exts: list[MapExt]) -> int:
    """Give every extension with record data an offset; the new record size."""
    for e in exts:
        if e.record_size >= 32768:
            e.record_size = 0
    shape = tuple((e.record_size, e.record_align) for e in exts)
    placed = _PLACED.get(shape)
    if placed is None:
        if len(_PLACED) >= PLACED_KEPT:
            _PLACED.clear()
        placed = _PLACED[shape] = _placement(shape)
    offsets, size = placed
    for e, offset in zip(exts, offsets, strict=True):
        e.record_offset = offset
    return size


# Placements by the extensions' (record size, alignment): a pure function of them, and
# every mailbox of a store introduces the same few extensions in the same order.
_PLACED: dict[tuple[tuple[int, int], ...], tuple[tuple[int, ...], int]] = {}
PLACED_KEPT = 256


def _placement(shape: tuple[tuple[int, int], ...]) -> tuple[tuple[int, ...], int]:
    """The record offset of each extension of ``shape`` (0: no record data) and the
    record size, widest alignment first as Dovecot places them."""
    offsets = [0] * len(shape)
    # damaged values must neither divide by zero nor blow records up: Dovecot's own limits
    aligns = [min(8, max(1, a)) for _, a in shape]
    ordered = sorted(range(len(shape)), key=lambda i: -shape[i][1])
    offset, max_align = 5, 4
    while True:
        min_align = None
        chosen = None
        for i in ordered:
            max_align = max(max_align, aligns[i])
            if offsets[i] == 0 and shape[i][0] > 0:
                if offset % aligns[i] == 0:
                    chosen = i
                    break
                min_align = aligns[i] if min_align is None else min(min_align, aligns[i])
        if chosen is None:
            if min_align is None:
                break
            offset += min_align - offset % min_align
        else:
            offsets[chosen] = offset
            offset += shape[chosen][0]
    return tuple(offsets), align(offset, max_align)


def clear_extension(m: RecordMap, ext: MapExt) -> None:
    """An ext-reset without preserve_data: the header and every record field read zero."""
    m.hdr[ext.hdr_offset : ext.hdr_offset + ext.hdr_size] = bytes(ext.hdr_size)
    if ext.record_size:
        for rec in m.records:
            rec[ext.record_offset : ext.record_offset + ext.record_size] = bytes(ext.record_size)
