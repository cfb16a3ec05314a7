"""Maildir control files: ``dovecot-uidlist`` (versions 1 and 3) and ``dovecot-keywords``.

The uidlist maps maildir base file names to IMAP UIDs and holds the mailbox's
UIDVALIDITY, next UID and GUID. It is text; every line is kept with its byte
offset so a finding can point at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dovecot_index_tool.format.errors import FormatError

MAX_UID = 0xFFFFFFFF


@dataclass(frozen=True)
class UidlistRecord:
    uid: int
    filename: str
    extensions: tuple[tuple[str, str], ...]
    line: int
    offset: int

    @property
    def guid(self) -> str | None:
        return dict(self.extensions).get("G")


@dataclass(frozen=True)
class Uidlist:
    """A parsed uidlist; ``problems`` are lines Dovecot would reject or rewrite."""

    path: str | None
    version: int
    uid_validity: int
    next_uid: int
    guid: str | None
    header_extensions: tuple[tuple[str, str], ...]
    records: tuple[UidlistRecord, ...]
    problems: tuple[FormatError, ...] = field(default=())

    def uids(self) -> dict[str, int]:
        return {r.filename: r.uid for r in self.records}


@dataclass(frozen=True)
class MaildirKeywords:
    """``dovecot-keywords``: filename letters ``a``..``z`` by index, to keyword names."""

    path: str | None
    names: tuple[tuple[int, str], ...]
    problems: tuple[FormatError, ...] = field(default=())


def parse_uidlist(data: bytes, path: str | None = None) -> Uidlist:
    """Parse a uidlist; raises FormatError when its header line is unusable."""
    lines = _lines(data)
    if not lines or not lines[0][1]:
        raise FormatError("empty file", file=path, offset=0, field="header", found="nothing")
    header_offset, header_line = lines[0]
    version, validity, next_uid, guid, exts = _header(header_line, path, header_offset)
    problems: list[FormatError] = []
    records: list[UidlistRecord] = []
    for number, (offset, text) in enumerate(lines[1:], start=2):
        if not text:
            continue
        rec, removed = _record(text, version, number, offset, path)
        problems += removed
        if isinstance(rec, FormatError):
            problems.append(rec)
            continue
        if records and rec.uid <= records[-1].uid:
            problems.append(
                _err(f"UIDs not ordered ({records[-1].uid} >= {rec.uid})", path, offset, number)
            )
            continue
        records.append(rec)
    return Uidlist(path, version, validity, next_uid, guid, exts, tuple(records), tuple(problems))


def _lines(data: bytes) -> list[tuple[int, str]]:
    out = []
    offset = 0
    for raw in data.split(b"\n"):
        out.append((offset, raw.decode("utf-8", "surrogateescape")))
        offset += len(raw) + 1
    if out and out[-1][1] == "":
        out.pop()
    return out


GUID_128 = re.compile(r"[0-9a-fA-F]{32}")  # what guid_128_from_string accepts


def _err(
    reason: str, path: str | None, offset: int, line: int, found: object = None
) -> FormatError:
    return FormatError(reason, file=path, offset=offset, field=f"line {line}", found=found)


def _header(line: str, path: str | None, offset: int):
    parts = line.split(" ")
    if len(line) < 2 or not line[0].isdigit() or line[1] != " ":
        raise _err("Corrupted header (invalid version number)", path, offset, 1, line[:40])
    version = int(parts[0]) if parts[0].isdigit() else -1
    if version == 1:
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise _err("Corrupted header (version 1)", path, offset, 1, line[:80])
        return 1, int(parts[1]), int(parts[2]), None, ()
    if version != 3:
        raise _err(f"Unsupported version {parts[0]}", path, offset, 1, parts[0])
    values: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for item in parts[1:]:
        if not item:
            continue
        values.setdefault(item[0], item[1:])
        extra.append((item[0], item[1:]))
    validity = _number(values.get("V"), "Invalid mailbox UID_VALIDITY", path, offset)
    next_uid = _number(values.get("N"), "Invalid mailbox NEXT_UID", path, offset)
    guid = values.get("G")
    if guid is not None and not GUID_128.fullmatch(guid):
        raise _err(f"Invalid mailbox GUID: {guid}", path, offset, 1, guid)
    return 3, validity, next_uid, guid, tuple(extra)


def _number(value: str | None, reason: str, path: str | None, offset: int) -> int:
    if value is None or not value.isdigit() or int(value) == 0 or int(value) > MAX_UID:
        raise _err(f"{reason}: {value}", path, offset, 1, value)
    return int(value)


def _record(text: str, version: int, number: int, offset: int, path: str | None):
    """One record line, read as Dovecot reads it: the UID, then space-separated
    extension fields up to the first field that starts with ``:``, the file name.
    Returns the record (or the error that makes Dovecot reject the line) and the
    extension fields Dovecot removes (their key is not A-Z)."""
    uid_text, _, rest = text.partition(" ")
    if not uid_text.isdigit():
        return _err(f"Invalid data: {text[:80]}", path, offset, number, text[:80]), []
    uid = int(uid_text)
    if uid == 0 or uid >= MAX_UID:
        error = f"UID too high ({uid})" if uid else "Invalid data: uid 0"
        return _err(error, path, offset, number), []
    removed: list[FormatError] = []
    if version == 1:
        name = rest.strip()
        exts: tuple[tuple[str, str], ...] = ()
    else:
        fields, name = _extension_fields(rest)
        if not name:
            return _err(f"Invalid data: {text[:80]}", path, offset, number, text[:80]), []
        exts = tuple((item[0], item[1:]) for item in fields if "A" <= item[0] <= "Z")
        removed = [_err(f"Invalid extension record, removing: {item[:80]}", path, offset,
                        number, item[:80]) for item in fields if not "A" <= item[0] <= "Z"]
    if not name or "/" in name:
        return _err(f"Broken filename: {name[:80]}", path, offset, number, name[:80]), []
    return UidlistRecord(uid, name, exts, number, offset), removed


def _extension_fields(rest: str) -> tuple[list[str], str]:
    """The extension fields and the file name of a version 3 record's rest."""
    fields = []
    rest = rest.lstrip(" ")
    while rest and not rest.startswith(":"):
        field, _, rest = rest.partition(" ")
        fields.append(field)
        rest = rest.lstrip(" ")
    return fields, rest[1:]


def parse_maildir_keywords(data: bytes, path: str | None = None) -> MaildirKeywords:
    """``<n> <name>`` lines; n must be 0..25 (letters a..z)."""
    names: list[tuple[int, str]] = []
    problems: list[FormatError] = []
    for number, (offset, text) in enumerate(_lines(data), start=1):
        if not text:
            continue
        idx, _, name = text.partition(" ")
        if not idx.isdigit() or not 0 <= int(idx) < 26 or not name:
            problems.append(_err(f"Invalid keyword line: {text[:80]}", path, offset, number))
            continue
        names.append((int(idx), name))
    return MaildirKeywords(path, tuple(names), tuple(problems))


def maildir_flags(filename: str) -> tuple[str, str] | None:
    """Split ``base:2,FLAGS`` into (base, flag letters); None when there is no info part."""
    base, sep, info = filename.partition(":2,")
    if not sep:
        return None
    return base, info
