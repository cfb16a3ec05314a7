"""The cache field ``mime.parts``: a message's MIME tree, serialized depth first.

Each part is ``u32 flags``, then (except for the root) ``u64 physical_pos``, then the
header's and the body's physical and virtual sizes (four ``u64``), ``u32 body_lines``
for text and message/rfc822 parts, and for multipart and message/rfc822 parts a
``u32`` count of children, which follow. Numbers are in the writer's byte order.
Every part takes at least 36 bytes, so a count cannot make the walk outlast the data.
"""

from __future__ import annotations

import struct

from dovecot_index_tool.format.binary import unpack
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.format.layouts import for_order

MULTIPART = 0x01
MESSAGE_RFC822 = 0x04
TEXT = 0x08
MIN_PART_SIZE = 4 + 4 * 8
MAX_DEPTH = 100  # Dovecot's own parser stops nesting well before this


def decode_mime_parts(data: bytes, bo: str) -> dict[str, object]:
    """The root part with its children; FormatError names the offset of any damage."""
    walk = _Walk(bytes(data), bo)
    (root,) = walk.parts(1, root=True, depth=0)
    if walk.pos != len(walk.data):
        raise FormatError(
            "bytes after the last part", offset=walk.pos, field="mime.parts",
            expected=f"{walk.pos} bytes", found=f"{len(walk.data)} bytes",
        )
    return root


class _Walk:
    def __init__(self, data: bytes, bo: str) -> None:
        self.data, self.lay, self.pos = data, for_order(bo), 0

    def take(self, st: struct.Struct, field: str) -> tuple:
        values = unpack(st, self.data, self.pos, f"mime.parts.{field}")
        self.pos += st.size
        return values

    def parts(self, count: int, root: bool, depth: int) -> list[dict[str, object]]:
        if depth > MAX_DEPTH:
            raise FormatError("parts nested too deep", offset=self.pos, field="mime.parts",
                              expected=f"<= {MAX_DEPTH}", found=depth)
        if count * MIN_PART_SIZE > len(self.data) - self.pos:
            raise FormatError("more children than the data can hold", offset=self.pos,
                              field="mime.parts.children_count", found=count)
        return [self.part(root and i == 0, depth) for i in range(count)]

    def part(self, root: bool, depth: int) -> dict[str, object]:
        (flags,) = self.take(self.lay.u32, "flags")
        (pos,) = (0,) if root else self.take(self.lay.u64, "physical_pos")
        hdr_p, hdr_v, body_p, body_v = self.take(self.lay.mime_part_sizes, "sizes")
        part: dict[str, object] = {
            "flags": flags,
            "pos": pos,
            "hdr_physical": hdr_p,
            "hdr_virtual": hdr_v,
            "body_physical": body_p,
            "body_virtual": body_v,
        }
        if flags & (TEXT | MESSAGE_RFC822):
            (part["body_lines"],) = self.take(self.lay.u32, "body_lines")
        children: list[dict[str, object]] = []
        if flags & (MULTIPART | MESSAGE_RFC822):
            (count,) = self.take(self.lay.u32, "children_count")
            children = self.parts(count, False, depth + 1)
        part["children"] = children
        return part


def deserialize_problem(data: bytes, bo: str) -> str | None:
    """What Dovecot's own reader (``message_part_deserialize``) says of these bytes, or
    None when it takes them. It checks the tree against itself only: positions that go
    back, virtual sizes below physical ones, a message/rfc822 part without exactly one
    child, children beyond their parent's body, and bytes short or left over."""
    if len(data) in _LEAF:  # most messages: one part, no children (one unpack)
        flags, hdr_p, hdr_v, body_p, body_v = _LEAF[len(data)][bo].unpack_from(data)[:5]
        if not flags & (MULTIPART | MESSAGE_RFC822) and (
                len(data) == _LEAF_TEXT) == bool(flags & TEXT):
            if hdr_v < hdr_p:
                return "header_size.virtual_size too small"
            return "body_size.virtual_size too small" if body_v < body_p else None
    reader = _Deserializer(bytes(data), for_order(bo))
    try:
        reader.parts(None, 1, 0)
    except _Refused as err:
        return str(err)
    return None if reader.at == len(reader.data) else "Too much data"


_LEAF_TEXT = 40  # flags, four sizes, body_lines
_LEAF = {size: {bo: struct.Struct(bo + "I4Q" + ("I" if size == _LEAF_TEXT else ""))
                for bo in ("<", ">")} for size in (36, _LEAF_TEXT)}


class _Refused(Exception):
    pass


class _Deserializer:
    """Dovecot's walk, step by step, over positions it keeps in ``pos``."""

    def __init__(self, data: bytes, lay) -> None:
        self.data, self.lay, self.at, self.pos = data, lay, 0, 0

    def read(self, st: struct.Struct) -> int:
        if self.at + st.size > len(self.data):
            raise _Refused("Not enough data")
        (value,) = st.unpack_from(self.data, self.at)
        self.at += st.size
        return value

    def parts(self, parent_pos: int | None, siblings: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _Refused("parts nested too deep")
        for _ in range(siblings):
            flags = self.read(self.lay.u32)
            physical_pos = 0 if parent_pos is None and depth == 0 else self.read(self.lay.u64)
            if physical_pos < self.pos:
                raise _Refused("physical_pos less than expected")
            hdr_p, hdr_v = self.read(self.lay.u64), self.read(self.lay.u64)
            if hdr_v < hdr_p:
                raise _Refused("header_size.virtual_size too small")
            body_p, body_v = self.read(self.lay.u64), self.read(self.lay.u64)
            if flags & (TEXT | MESSAGE_RFC822):
                self.read(self.lay.u32)
            if body_v < body_p:
                raise _Refused("body_size.virtual_size too small")
            children = self.read(self.lay.u32) if flags & (MULTIPART | MESSAGE_RFC822) else 0
            if flags & MESSAGE_RFC822 and children != 1:
                raise _Refused("message/rfc822 part has "
                               + ("no children" if children == 0 else "multiple children"))
            if children:
                if children * MIN_PART_SIZE > len(self.data) - self.at:
                    raise _Refused("Not enough data")
                self.pos = physical_pos + hdr_p
                end = self.pos + body_p
                self.parts(physical_pos, children, depth + 1)
                if self.pos > end:
                    raise _Refused("child part location exceeds our size")
                self.pos = end
