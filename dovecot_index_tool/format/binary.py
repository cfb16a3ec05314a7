"""Bounds-checked struct reading and the encodings shared by several files."""

from __future__ import annotations

import struct
from functools import lru_cache

from dovecot_index_tool.format.errors import FormatError

LITTLE = "<"
BIG = ">"


@lru_cache(maxsize=256)
def layout(byteorder: str, fmt: str) -> struct.Struct:
    """A compiled struct for one byte order; layouts are declared without prefix."""
    return struct.Struct(byteorder + fmt)


def unpack(st: struct.Struct, data: bytes | memoryview, offset: int, field: str) -> tuple:
    """Unpack ``st`` at ``offset`` or raise a FormatError naming ``field``."""
    if offset < 0 or offset + st.size > len(data):
        raise FormatError(
            "truncated",
            offset=offset,
            field=field,
            expected=f"{st.size} bytes",
            found=f"{max(0, len(data) - offset)} bytes",
        )
    return st.unpack_from(data, offset)


def take(data: bytes | memoryview, offset: int, size: int, field: str) -> bytes:
    """Return ``size`` bytes at ``offset`` or raise a FormatError naming ``field``."""
    if size < 0 or offset < 0 or offset + size > len(data):
        raise FormatError(
            "truncated",
            offset=offset,
            field=field,
            expected=f"{size} bytes",
            found=f"{max(0, len(data) - offset)} bytes",
        )
    return bytes(data[offset : offset + size])


def align(value: int, to: int) -> int:
    """Round ``value`` up to a multiple of ``to``."""
    return (value + to - 1) // to * to


def decode_packed_offset(raw: bytes) -> int:
    """Decode Dovecot's byte-order-free 4-byte offset (7 bits a byte, MSB first).

    Any byte without its high bit means "not written yet" and decodes to 0, as
    Dovecot does.
    """
    if len(raw) != 4:
        return 0
    a, b, c, d = raw
    if not a & b & c & d & 0x80:
        return 0
    return (((a & 0x7F) << 21) | ((b & 0x7F) << 14) | ((c & 0x7F) << 7) | (d & 0x7F)) << 2


def encode_packed_offset(value: int) -> bytes:
    """Inverse of :func:`decode_packed_offset` for multiples of 4 below 1 GiB."""
    if value % 4 or not 0 <= value < 0x40000000:
        raise ValueError(f"cannot pack offset {value}")
    v = value >> 2
    return bytes(0x80 | ((v >> shift) & 0x7F) for shift in (21, 14, 7, 0))


def guid_hex(raw: bytes) -> str:
    """GUIDs print as 32 lowercase hex digits, as doveadm does."""
    return raw.hex()


def cstring(data: bytes, start: int, end: int) -> tuple[bytes, int] | None:
    """The NUL-terminated bytes at ``start`` before ``end``, and the index after the NUL."""
    nul = data.find(b"\0", start, end)
    if nul < 0:
        return None
    return data[start:nul], nul + 1
