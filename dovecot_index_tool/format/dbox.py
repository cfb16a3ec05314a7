"""dbox files (``u.N`` for sdbox, ``m.N`` for mdbox): enough to list the messages.

A text header line ``2 M<hex msg header size> C<hex create time>``, then per
message a fixed header with ``\\x01\\x02`` magic and the hex body size, the body,
and a metadata block that starts with ``\\n\\x01\\x03\\n`` and ends with an empty
line. The parser accepts any bytes-like object, so callers can pass an ``mmap``
and large files are never read whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dovecot_index_tool.format.errors import FormatError

MAGIC_PRE = b"\x01\x02"
MAGIC_POST = b"\n\x01\x03\n"
MESSAGE_HEADER_MIN_SIZE = 30
MAX_HEADER_LINE = 4096
MAX_METADATA = 1 << 20

METADATA_NAMES = {
    "G": "guid",
    "P": "pop3_uidl",
    "O": "pop3_order",
    "R": "received",
    "Z": "physical_size",
    "V": "virtual_size",
    "X": "ext_ref",
    "B": "orig_mailbox",
}


@dataclass(frozen=True)
class DboxMessage:
    offset: int
    type: str
    size: int
    body_offset: int
    metadata: tuple[tuple[str, str], ...]

    @property
    def guid(self) -> str | None:
        return dict(self.metadata).get("G")

    @property
    def end(self) -> int:
        return self.body_offset + self.size


@dataclass(frozen=True)
class DboxFile:
    path: str | None
    size: int
    version: int
    msg_header_size: int
    create_stamp: int
    header_fields: tuple[tuple[str, str], ...]
    messages: tuple[DboxMessage, ...]
    problems: tuple[FormatError, ...] = field(default=())


def check_file_head(head: bytes, path: str | None = None) -> FormatError | None:
    """Why the first bytes of a dbox file are not a valid file header, or None."""
    end = head.find(b"\n")
    if end < 0:
        return FormatError(
            "missing file header line", file=path, offset=0, field="header", found=head[:16].hex()
        )
    try:
        parse_file_header(head[:end], path)
    except FormatError as err:
        return err
    return None


def parse_dbox(data, path: str | None = None) -> DboxFile:
    """List the messages; raises FormatError when the file header is unusable."""
    end = data.find(b"\n", 0, MAX_HEADER_LINE) if hasattr(data, "find") else -1
    if end < 0:
        raise FormatError("missing file header line", file=path, offset=0, field="header")
    version, hdr_size, stamp, fields = parse_file_header(bytes(data[:end]), path)
    messages: list[DboxMessage] = []
    problems: list[FormatError] = []
    offset = end + 1
    while offset < len(data):
        msg = _message(data, offset, hdr_size, path)
        if isinstance(msg, FormatError):
            problems.append(msg)
            break
        messages.append(msg[0])
        offset = msg[1]
    return DboxFile(
        path, len(data), version, hdr_size, stamp, fields, tuple(messages), tuple(problems)
    )


def parse_file_header(line: bytes, path: str | None = None):
    """The header line ``2 M<hex> C<hex>``: (version, msg header size, create stamp, fields)."""
    parts = line.decode("ascii", "replace").split(" ")
    if not parts[0].isdigit():
        raise FormatError("not a dbox file", file=path, offset=0, field="header.version")
    version = int(parts[0])
    if version != 2:
        raise FormatError(
            "Invalid dbox version",
            file=path,
            offset=0,
            field="header.version",
            expected=2,
            found=version,
        )
    fields = tuple((p[0], p[1:]) for p in parts[1:] if p)
    values = dict(fields)
    hdr_size = _hex(values.get("M", ""))
    if hdr_size is None or hdr_size < MESSAGE_HEADER_MIN_SIZE:
        raise FormatError(
            "Invalid message header size",
            file=path,
            offset=0,
            field="header.M",
            expected=f">= {MESSAGE_HEADER_MIN_SIZE}",
            found=values.get("M"),
        )
    stamp = _hex(values.get("C", "0"))
    return version, hdr_size, stamp or 0, fields


def _hex(text: str) -> int | None:
    try:
        return int(text, 16) if text else None
    except ValueError:
        return None


def _message(data, offset: int, hdr_size: int, path: str | None):
    if offset + hdr_size > len(data):
        return FormatError(
            "partial message header",
            file=path,
            offset=offset,
            field="message.header",
            expected=f"{hdr_size} bytes",
            found=f"{len(data) - offset} bytes",
        )
    head = bytes(data[offset : offset + hdr_size])
    if head[:2] != MAGIC_PRE:
        return FormatError(
            "dbox wrong pre-magic",
            file=path,
            offset=offset,
            field="message.magic",
            expected=MAGIC_PRE.hex(),
            found=head[:2].hex(),
        )
    size = _hex(head[13:29].decode("ascii", "replace"))
    if size is None:
        return FormatError(
            "invalid message size",
            file=path,
            offset=offset + 13,
            field="message.size",
            found=head[13:29].decode("ascii", "replace"),
        )
    body = offset + hdr_size
    meta_at = body + size
    if bytes(data[meta_at : meta_at + 4]) != MAGIC_POST:
        return FormatError(
            "dbox wrong post-magic",
            file=path,
            offset=meta_at,
            field="message.metadata",
            expected=MAGIC_POST.hex(),
            found=bytes(data[meta_at : meta_at + 4]).hex(),
        )
    metadata, next_offset = _metadata(data, meta_at + 4, path)
    if isinstance(metadata, FormatError):
        return metadata
    return DboxMessage(offset, chr(head[2]), size, body, metadata), next_offset


def _metadata(data, start: int, path: str | None):
    limit = min(len(data), start + MAX_METADATA)
    block = bytes(data[start:limit])
    end = block.find(b"\n\n") if not block.startswith(b"\n") else -1
    if block.startswith(b"\n"):
        return (), start + 1
    if end < 0:
        return FormatError(
            "dbox metadata ended unexpectedly", file=path, offset=start, field="message.metadata"
        ), None
    lines = block[:end].decode("utf-8", "replace").split("\n")
    return tuple((ln[0], ln[1:]) for ln in lines if ln), start + end + 2
