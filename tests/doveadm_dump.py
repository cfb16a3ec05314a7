"""Parse the text printed by ``doveadm dump`` (Dovecot 2.3.19.1) into plain data.

Why this exists: our tests check the project's parser of Dovecot's binary
index, transaction-log and dbox files against Dovecot's own reading of the
same files.  ``doveadm dump`` is the only reader Dovecot ships, and it prints
text, so this module turns that text back into dicts and lists that can be
compared with our JSON.

Every line shape follows a printf in ``src/doveadm/doveadm-dump-index.c``,
``doveadm-dump-log.c`` and ``doveadm-dump-dbox.c`` of 2.3.19.1.  The parsers
are strict on purpose: a line they do not recognise raises ``ValueError``
naming it, so a test notices output it does not understand instead of
silently comparing less than it thinks.

Values printed only as a decoration of another printed value (the date after
a UNIX time, the flag names after ``flags=0x..``, the ``(dec=N)`` after a
4-byte hex dump) are checked or dropped; everything else is kept.  Dates
printed *instead of* a number (maildir header times, cache "Last used",
attribute timestamps) stay strings: ``unixdate2str()`` formats them in the
dumping process's local time zone and the cache table cuts them to minutes,
so they cannot be turned back into one UNIX time without outside knowledge.
``unixdate2str`` and ``unixdate_range`` below let a test compare them anyway.

Input may be ``str`` or ``bytes``.  Bytes are decoded as UTF-8 with
``surrogateescape`` because cached headers are raw and may be 8-bit.  Lines
are split on ``\\n`` only: cached values may contain ``\\r`` or other
characters that ``str.splitlines`` would treat as line ends.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

_DATE = r"-?\d{4,}-\d\d-\d\d \d\d:\d\d:\d\d"
_DATE_RE = re.compile(_DATE)
_NUM_DATE_RE = re.compile(rf"(\d+) \({_DATE}\)")
_INT_RE = re.compile(r"-?\d+")


# ---------------------------------------------------------------------------
# Shared helpers


class _Lines:
    """Cursor over the dump's lines, so every error can name the bad line."""

    def __init__(self, text: str | bytes) -> None:
        """Split on "\\n" only and remember whether the last line was cut."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
        # doveadm ends every line with "\n"; a missing final newline means
        # the process died (i_fatal) in the middle of printing a line.
        self.truncated = bool(text) and not text.endswith("\n")
        self.lines = text.split("\n")
        if not self.truncated:
            self.lines.pop()
        self.pos = 0

    def at_end(self) -> bool:
        """Tell whether every line has been consumed."""
        return self.pos >= len(self.lines)

    def peek(self) -> str | None:
        """Return the next line without consuming it (None at the end)."""
        return None if self.at_end() else self.lines[self.pos]

    def next(self) -> str:
        """Consume and return the next line; running out is an error."""
        if self.at_end():
            raise ValueError("doveadm dump output ended unexpectedly")
        self.pos += 1
        return self.lines[self.pos - 1]

    def error(self, what: str = "unrecognised line") -> ValueError:
        """Build the error for the line just consumed."""
        return ValueError(f"{what} (line {self.pos}): {self.lines[self.pos - 1]!r}")

    def match(self, pattern: str | re.Pattern[str]) -> re.Match[str]:
        """Consume the next line, which must match ``pattern`` entirely."""
        line = self.next()
        m = re.fullmatch(pattern, line)
        if m is None:
            raise self.error()
        return m

    def take_prefix(self, prefix: str) -> str:
        """Consume the next line, which must start with ``prefix``."""
        line = self.next()
        if not line.startswith(prefix):
            raise self.error(f"expected {prefix!r}")
        return line[len(prefix) :]


def _bad(line: str, what: str = "unrecognised line") -> ValueError:
    """Build an error naming a line that is not at the cursor."""
    return ValueError(f"{what}: {line!r}")


def _labelled(line: str) -> tuple[str, str]:
    """Split ``label ...... = value``; dump pads labels with dots and spaces."""
    label, sep, value = line.partition(" = ")
    if not sep:
        raise _bad(line)
    return label.rstrip(" ."), value


def _int_with_date(value: str, line: str) -> int:
    """Read ``N (YYYY-MM-DD HH:MM:SS)``; the date is unixdate2str(N)."""
    m = _NUM_DATE_RE.fullmatch(value)
    if m is None:
        raise _bad(line)
    return int(m.group(1))


def _plain_int(value: str, line: str) -> int:
    """Read a decimal printed with %u / %d / PRIu64."""
    if _INT_RE.fullmatch(value) is None:
        raise _bad(line)
    return int(value)


def _store(target: dict[str, Any], key: str, value: Any, line: str) -> None:
    """Set a key once: a repeated key would lose a printed value."""
    if key in target:
        raise _bad(line, "repeated field")
    target[key] = value


def unixdate2str(timestamp: int, tz: tzinfo | None = None) -> str:
    """Format like doveadm's unixdate2str(), for comparing printed dates.

    doveadm uses ``strftime("%Y-%m-%d %H:%M:%S")`` on localtime(); pass the
    zone the dump ran in (None = this process's local zone).  The cache field
    table prints only the first 16 characters (``%.16s``).
    """
    if tz is None:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
    return datetime.fromtimestamp(timestamp, tz).strftime("%Y-%m-%d %H:%M:%S")


def unixdate_range(text: str, tz: tzinfo = UTC) -> tuple[int, int]:
    """Return the first and last UNIX time that doveadm prints as ``text``.

    Why a range: the cache table's "Last used" is cut to minutes, so up to 60
    timestamps print the same.  A full ``YYYY-MM-DD HH:MM:SS`` gives a
    one-second range.  The zone must be the dumping process's zone.
    """
    fmt = "%Y-%m-%d %H:%M:%S" if len(text) == 19 else "%Y-%m-%d %H:%M"
    start = datetime.strptime(text, fmt).replace(tzinfo=tz)
    width = timedelta(seconds=1 if len(text) == 19 else 60)
    first = int(start.timestamp())
    return first, int((start + width).timestamp()) - 1


# ---------------------------------------------------------------------------
# Index dump: base header

_INDEX_HDR = {
    # label printed by dump_hdr() -> (struct field, value followed by a date)
    "base header size": ("base_header_size", False),
    "header size": ("header_size", False),
    "record size": ("record_size", False),
    "compat flags": ("compat_flags", False),
    "index id": ("indexid", True),
    "flags": ("flags", False),
    "uid validity": ("uid_validity", True),
    "next uid": ("next_uid", False),
    "messages count": ("messages_count", False),
    "seen messages count": ("seen_messages_count", False),
    "deleted messages count": ("deleted_messages_count", False),
    "first recent uid": ("first_recent_uid", False),
    "first unseen uid lowwater": ("first_unseen_uid_lowwater", False),
    "first deleted uid lowwater": ("first_deleted_uid_lowwater", False),
    "log file seq": ("log_file_seq", False),
    "log file tail offset": ("log_file_tail_offset", False),
    "log file head offset": ("log_file_head_offset", False),
    # minor_version 0 names the same two fields differently
    "log file int offset": ("log_file_tail_offset", False),
    "log file ext offset": ("log_file_head_offset", False),
    # only printed for minor_version >= 3
    "log2 rotate time": ("log2_rotate_time", True),
    "last temp file scan": ("last_temp_file_scan", True),
    "day stamp": ("day_stamp", True),
}
_DAY_FIRST_UID_RE = re.compile(r"day first uid\[(\d+)\]")


def _index_hdr_line(header: dict[str, Any], line: str) -> None:
    """Store one ``label .... = value`` line of the index base header."""
    label, value = _labelled(line)
    if label == "version":
        m = re.fullmatch(r"(\d+)\.(\d+)", value)
        if m is None:
            raise _bad(line)
        _store(header, "major_version", int(m.group(1)), line)
        header["minor_version"] = int(m.group(2))
        return
    day = _DAY_FIRST_UID_RE.fullmatch(label)
    if day is not None:
        uids = header.setdefault("day_first_uid", [])
        if int(day.group(1)) != len(uids):
            raise _bad(line, "day_first_uid out of order")
        uids.append(_plain_int(value, line))
        return
    if label not in _INDEX_HDR:
        raise _bad(line)
    key, dated = _INDEX_HDR[label]
    number = _int_with_date(value, line) if dated else _plain_int(value, line)
    _store(header, key, number, line)


def _parse_index_header(lines: _Lines) -> dict[str, Any]:
    """Read dump_hdr(): everything up to the first extension."""
    header: dict[str, Any] = {}
    while (line := lines.peek()) is not None:
        if line.startswith("-- Extension ") or line == "no extensions":
            break
        _index_hdr_line(header, lines.next())
    _check_index_header_complete(header)
    return header


def _check_index_header_complete(header: dict[str, Any]) -> None:
    """Refuse a header with missing lines: dump_hdr() always prints them all.

    Only the two v7.3 fields are left out, and only for minor_version < 3.
    """
    if "major_version" not in header:
        raise ValueError("index dump has no 'version' line")
    wanted = {key for key, _dated in _INDEX_HDR.values()} | {"major_version", "minor_version"}
    if header["minor_version"] < 3:
        wanted -= {"log2_rotate_time", "last_temp_file_scan"}
    missing = sorted(wanted - header.keys())
    if missing or len(header.get("day_first_uid", ())) != 8:
        raise ValueError(f"index header lines missing: {missing or ['day first uid']}")


# ---------------------------------------------------------------------------
# Index dump: extensions

_EXT_FIELDS = (
    ("hdr_size", "hdr_size .... = "),
    ("reset_id", "reset_id .... = "),
    ("record_offset", "record_offset = "),
    ("record_size", "record_size . = "),
    ("record_align", "record_align  = "),
)
_HEX_HEADER = "header ........ = "
# keys of decoded extension headers that are GUID strings, not numbers
_GUID_KEYS = frozenset({"mailbox_guid", "guid", "oid"})


def _ext_section_end(line: str | None) -> bool:
    """Tell whether a line starts the next extension or the keyword list."""
    return line is None or line.startswith("-- Extension ") or line == "-- Keywords --"


def _decoded_value(key: str, value: str, line: str) -> int | str:
    """Convert one decoded header value the way dump printed it."""
    if key in _GUID_KEYS:
        if re.fullmatch(r"[0-9a-f]{32}", value) is None:
            raise _bad(line)
        return value
    if key == "flags":
        if re.fullmatch(r"0x[0-9a-f]+", value) is None:
            raise _bad(line)
        return int(value, 16)
    if _INT_RE.fullmatch(value):
        return int(value)
    if _DATE_RE.fullmatch(value):
        return value  # maildir/mbox times: printed only as a local date
    raise _bad(line)


def _parse_decoded_header(lines: _Lines) -> dict[str, Any]:
    """Read ``header`` + `` - key .... = value`` lines (+ virtual mailboxes)."""
    header: dict[str, Any] = {}
    target = header
    while not _ext_section_end(lines.peek()):
        line = lines.next()
        box = re.fullmatch(r"mailbox (.*):", line)
        if box is not None:
            target = {"name": box.group(1)}
            header.setdefault("mailboxes", []).append(target)
            continue
        m = re.fullmatch(r" - (.+?) = (.*)", line)
        if m is None:
            raise lines.error()
        key = m.group(1).rstrip(" .").replace(" ", "_")
        _store(target, key, _decoded_value(key, m.group(2), line), line)
    return header


def _parse_list_names(lines: _Lines) -> dict[str, Any]:
    """Read dump_list_header(): refresh flag and the name-id table."""
    table: dict[str, Any] = {"names": {}, "corrupted": False}
    table["refresh_flag"] = int(lines.match(r" - refresh_flag = (-?\d+)").group(1))
    while not _ext_section_end(lines.peek()):
        line = lines.next()
        if line == " - corrupted":
            table["corrupted"] = True
            continue
        m = re.fullmatch(r" - (-?\d+) : (.*)", line)
        if m is None:
            raise lines.error()
        if int(m.group(1)) in table["names"]:
            raise lines.error("repeated list name id")
        table["names"][int(m.group(1))] = m.group(2)
    return table


def _parse_box_name(lines: _Lines) -> list[str]:
    """Read dump_box_name_header(): NUL-separated parts, one per line."""
    parts = []
    while not _ext_section_end(lines.peek()):
        line = lines.next()
        if not line.startswith(" "):
            raise lines.error()
        parts.append(line[1:])
    return parts


def _parse_ext_header(lines: _Lines, ext: dict[str, Any]) -> None:
    """Read what dump_extension_header() printed for one extension."""
    line = lines.peek()
    if line is not None and line.startswith(_HEX_HEADER):
        hex_data = lines.take_prefix(_HEX_HEADER)
        if re.fullmatch(r"[0-9a-f]*", hex_data) is None:
            raise lines.error()
        ext["header"] = {"hex": hex_data}
        if ext["name"] == "list":
            ext["list"] = _parse_list_names(lines)
        elif ext["name"] == "box-name":
            ext["box_name"] = _parse_box_name(lines)
    elif line == "header":
        lines.next()
        ext["header"] = _parse_decoded_header(lines)
    if not _ext_section_end(lines.peek()):
        lines.next()
        raise lines.error()


def _parse_extension(lines: _Lines, number: int) -> dict[str, Any]:
    """Read one ``-- Extension N --`` block."""
    if int(lines.match(r"-- Extension (\d+) --").group(1)) != number:
        raise lines.error("extension out of order")
    ext: dict[str, Any] = {"name": lines.take_prefix("name ........ = ")}
    for key, prefix in _EXT_FIELDS:
        value = lines.take_prefix(prefix)
        ext[key] = _plain_int(value, prefix + value)
    ext["header"] = None
    _parse_ext_header(lines, ext)
    return ext


def _parse_extensions(lines: _Lines) -> list[dict[str, Any]]:
    """Read dump_extensions(): ``no extensions`` or the extension blocks."""
    if lines.peek() == "no extensions":
        lines.next()
        return []
    extensions: list[dict[str, Any]] = []
    while (line := lines.peek()) is not None and line.startswith("-- Extension "):
        extensions.append(_parse_extension(lines, len(extensions)))
    return extensions


def _parse_keywords(lines: _Lines) -> list[str]:
    """Read dump_keywords(): ``%3u = name`` lines after ``-- Keywords --``."""
    lines.match("-- Keywords --")
    keywords: list[str] = []
    while lines.peek():
        m = lines.match(r" *(\d+) = (.*)")
        if f"{len(keywords):3d} = {m.group(2)}" != m.group(0):
            raise lines.error("keyword out of order")
        keywords.append(m.group(2))
    return keywords


# ---------------------------------------------------------------------------
# Index dump: cache header and field table

_CACHE_HDR = {
    "major version": "major_version",
    "minor version": "minor_version",
    "indexid": "indexid",
    "file_seq": "file_seq",
    "continued_record_count": "continued_record_count",
    "record_count": "record_count",
    "used_file_size (old)": "used_file_size_old",
    "deleted_record_count": "deleted_record_count",
    "field_header_offset": "field_header_offset",
}
_FIELD_TITLE = " #  Name                                         Type Size Dec  Last used"
_FIELD_RE = re.compile(r" ?(\d+): (\S+) +(\S+) +(\d+|-) (\S+) +(.*)")


def _cache_hdr_line(header: dict[str, Any], line: str) -> None:
    """Store one line of dump_cache_hdr()'s header part."""
    label, value = _labelled(line)
    key = _CACHE_HDR.get(label)
    if key is None:
        raise _bad(line)
    if key == "indexid":
        _store(header, key, _int_with_date(value, line), line)
    elif key == "file_seq":
        m = re.fullmatch(rf"(\d+) \({_DATE}\) \((-?\d+) purges\)", value)
        if m is None:
            raise _bad(line)
        _store(header, key, int(m.group(1)), line)
        header["purges"] = int(m.group(2))
    elif key == "field_header_offset":
        m = re.fullmatch(r"(\d+) \(0x([0-9a-f]{8,}) nontranslated\)", value)
        if m is None:
            raise _bad(line)
        _store(header, key, int(m.group(1)), line)
        header["field_header_offset_raw"] = int(m.group(2), 16)
    else:
        _store(header, key, _plain_int(value, line), line)


def _cache_field(lines: _Lines) -> dict[str, Any]:
    """Read one ``%2u: %-44s %-4s %4u %-4s %.16s`` field-table line."""
    m = lines.match(_FIELD_RE)
    index, name, ftype, size, decision, last_used = m.groups()
    size_text = "   - " if size == "-" else f"{int(size):4d} "
    expect = f"{int(index):2d}: {name:<44} {ftype:<4} {size_text}{decision:<4} {last_used}"
    if expect != m.group(0):
        raise lines.error("cache field line not in doveadm's layout")
    return {
        "index": int(index),
        "name": name,
        "type": ftype,
        "size": None if size == "-" else int(size),
        "decision": decision,
        "last_used": last_used,
    }


def _parse_cache(lines: _Lines) -> str | dict[str, Any]:
    """Read dump_cache_hdr(): ``cache is unusable`` or header + field table."""
    if lines.peek() == "cache is unusable":
        lines.next()
        return "unusable"
    header: dict[str, Any] = {}
    while lines.peek() not in (None, "-- Cache fields --"):
        _cache_hdr_line(header, lines.next())
    missing = sorted(set(_CACHE_HDR.values()) - header.keys())
    if missing:
        raise ValueError(f"cache header lines missing: {missing}")
    lines.match("-- Cache fields --")
    lines.match(re.escape(_FIELD_TITLE))
    fields = []
    while lines.peek():
        fields.append(_cache_field(lines))
        if fields[-1]["index"] != len(fields) - 1:
            raise lines.error("cache field out of order")
    return {"header": header, "fields": fields}


# ---------------------------------------------------------------------------
# Index dump: records

_RECORD_RE = re.compile(r"RECORD: seq=(\d+), uid=(\d+), flags=0x([0-9a-f]{2,}) (.*)")
_EXT_LINE_RE = re.compile(r" - ext (\d+) (.+?): ( *\d*) \(([0-9a-f]*)\)")
_EXT_SUB_RE = re.compile(r" {19}: (\w+) *= (.*)")
_CACHE_REC_RE = re.compile(r" - cache offset=(\d+) size=(\d+), prev_offset = (\d+)")
_BROKEN_CACHE = " - broken cache"
_FLAG_NAMES = (
    (0x08, "Seen"),
    (0x01, "Answered"),
    (0x02, "Flagged"),
    (0x04, "Deleted"),
    (0x10, "Draft"),
)
_HDR_BROKEN = "\n - BROKEN: header field doesn't end with 0 line"


def _flags2str(flags: int) -> str:
    """Mirror flags2str(): the names doveadm prints after ``flags=0x..``."""
    names = [name for bit, name in _FLAG_NAMES if flags & bit]
    return f"({' '.join(names)})" if names else ""


def _split_records(rest: list[str]) -> list[list[str]]:
    """Cut the record area into per-record blocks.

    A block starts at ``RECORD: seq=N`` (N counting from 1) at the very start
    or right after an empty line, and ends with the empty line that
    cmd_dump_index() prints after each record.  Cached header values can
    contain empty lines themselves, so "empty line" alone is no separator.
    """
    starts = []
    for i, line in enumerate(rest):
        m = _RECORD_RE.fullmatch(line)
        if m and int(m.group(1)) == len(starts) + 1 and (i == 0 or rest[i - 1] == ""):
            starts.append(i)
    if rest and (not starts or starts[0] != 0):
        raise _bad(rest[0])
    bounds = [*starts, len(rest)]
    blocks = [rest[a:b] for a, b in itertools.pairwise(bounds)]
    for block in blocks:
        if len(block) < 2 or block[-1] != "":
            raise _bad(block[0], "record does not end with an empty line")
    return [block[:-1] for block in blocks]


def _ext_name(field: str, names: list[str], line: str) -> str:
    """Undo ``%-10s`` using the extension names the header listed."""
    for name in names:
        if f"{name:<10}" == field:
            return name
    raise _bad(line, "record extension not in the extension list")


def _ext_value(text: str, line: str) -> int | None:
    """Read ``%10u`` (a number in host byte order) or ten spaces."""
    if text == " " * 10:
        return None
    digits = text.lstrip(" ")
    if not digits or f"{int(digits):10d}" != text:
        raise _bad(line)
    return int(digits)


def _ext_sub_value(key: str, value: str, line: str) -> int | str:
    """Convert a ``                   : key = value`` line's value."""
    if key in _GUID_KEYS:
        if re.fullmatch(r"[0-9a-f]*", value) is None:
            raise _bad(line)
        return value
    if key == "save_date":
        return _int_with_date(value, line)
    return _plain_int(value, line)


def _parse_record_exts(block: list[str], names: list[str]) -> tuple[dict[str, Any], int]:
    """Read the `` - ext`` lines and their decoded sub-lines of one record."""
    exts: dict[str, Any] = {}
    current: dict[str, Any] | None = None
    pos = 1
    for line in block[1:]:
        m = _EXT_LINE_RE.fullmatch(line)
        sub = _EXT_SUB_RE.fullmatch(line)
        if m is not None:
            name = _ext_name(m.group(2), names, line)
            current = {
                "ext_index": int(m.group(1)),
                "value": _ext_value(m.group(3), line),
                "hex": m.group(4),
            }
            _store(exts, name, current, line)
        elif sub is not None and current is not None:
            _store(current, sub.group(1), _ext_sub_value(sub.group(1), sub.group(2), line), line)
        else:
            break
        pos += 1
    return exts, pos


def _start_cache_field(line: str, types: dict[str, str]) -> dict[str, Any] | None:
    """Recognise ``    - name: text`` for a field named in the cache table."""
    if not line.startswith("    - "):
        return None
    name, sep, text = line[6:].partition(": ")
    if not sep or name not in types:
        return None
    return {"name": name, "text": text}


def _is_next_cache_record(m: re.Match[str] | None, chain: list[dict[str, Any]]) -> bool:
    """Accept a cache-record line only where the chain says one must follow."""
    return m is not None and (not chain or int(m.group(1)) == chain[-1]["prev_offset"])


def _parse_cache_chain(lines: list[str], types: dict[str, str]) -> dict[str, Any]:
    """Read dump_cache(): chain records, field lines and continuation lines.

    A value may span several lines (raw header lines, literals in strings):
    a line belongs to the previous field unless it is the next cache record
    of the chain or a ``    - name: `` line for a known cache field.
    """
    broken = bool(lines) and lines[-1] == _BROKEN_CACHE
    chain: list[dict[str, Any]] = []
    field: dict[str, Any] | None = None
    for line in lines[:-1] if broken else lines:
        m = _CACHE_REC_RE.fullmatch(line)
        started = _start_cache_field(line, types)
        if _is_next_cache_record(m, chain):
            offset, size, prev = (int(g) for g in m.groups())
            chain.append({"offset": offset, "size": size, "prev_offset": prev, "fields": []})
            field = None
        elif started is not None and chain:
            field = started
            chain[-1]["fields"].append(field)
        elif field is not None:
            field["text"] += "\n" + line
        else:
            raise _bad(line)
    for record in chain:
        for cached in record["fields"]:
            cached.update(_decode_cache_text(cached["name"], types[cached["name"]], cached["text"]))
    return {"chain": chain, "broken": broken}


def _decode_fixed(name: str, text: str) -> dict[str, Any]:
    """Read ``N (hex)`` (4 bytes), ``N(hex)`` (8 bytes) or ``(hex)``."""
    m = re.fullmatch(r"(?:(\d+)( ?))?\(([0-9a-f]*)\)(.*)", text, re.DOTALL)
    if m is None:
        raise _bad(text, f"cache field {name}")
    number, space, hex_data, rest = m.groups()
    layout = {8: (True, " "), 16: (True, "")}.get(len(hex_data), (False, None))
    if (number is not None) != layout[0] or (number is not None and space != layout[1]):
        raise _bad(text, f"cache field {name}")
    decoded = _decode_hex_rest(name, rest, text)
    return {"value": None if number is None else int(number), "hex": hex_data, **decoded}


def _decode_hex_rest(name: str, rest: str, text: str) -> dict[str, Any]:
    """Read what follows the hex: mime.parts tree or body.snippet text."""
    if name == "mime.parts":
        if not rest.startswith(" "):
            raise _bad(text, "cache field mime.parts")
        return {"decoded": rest[1:]}
    if name == "body.snippet" and rest:
        m = re.fullmatch(r" \(version=(\d+): (.*)\)", rest, re.DOTALL)
        if m is None:
            raise _bad(text, "cache field body.snippet")
        return {"snippet_version": int(m.group(1)), "snippet": m.group(2)}
    if rest:
        raise _bad(text, f"cache field {name}")
    return {}


def _decode_variable(name: str, text: str) -> dict[str, Any]:
    """Read ``(hex)`` of a variable-size or bitmask field."""
    m = re.fullmatch(r"\(([0-9a-f]*)\)(.*)", text, re.DOTALL)
    if m is None:
        raise _bad(text, f"cache field {name}")
    return {"hex": m.group(1), **_decode_hex_rest(name, m.group(2), text)}


def _decode_header_field(name: str, text: str) -> dict[str, Any]:
    """Read ``L1, L2: raw header lines``; empty text = header not present."""
    m = re.fullmatch(
        r"((?:\d+(?:, \d+)*)?)(?:(" + re.escape(_HDR_BROKEN) + r")|: (.*))?", text, re.DOTALL
    )
    if m is None:
        raise _bad(text, f"cache field {name}")
    numbers = [int(n) for n in m.group(1).split(", ")] if m.group(1) else []
    return {"lines": numbers, "value": m.group(3), "broken": m.group(2) is not None}


def _decode_cache_text(name: str, ftype: str, text: str) -> dict[str, Any]:
    """Decode a cache field's printed text according to its table type."""
    if ftype == "fix":
        return _decode_fixed(name, text)
    if ftype in ("var", "bit"):
        return _decode_variable(name, text)
    if ftype == "hdr":
        return _decode_header_field(name, text)
    return {}  # "str" prints the string itself; unknown types print nothing


def _parse_record(block: list[str], names: list[str], types: dict[str, str]) -> dict[str, Any]:
    """Read one record: RECORD line, extension values, cache chain."""
    m = _RECORD_RE.fullmatch(block[0])
    flags = int(m.group(3), 16)
    if m.group(4) != _flags2str(flags):
        raise _bad(block[0], "flag names do not match flags")
    exts, pos = _parse_record_exts(block, names)
    return {
        "seq": int(m.group(1)),
        "uid": int(m.group(2)),
        "flags": flags,
        "ext": exts,
        "cache": _parse_cache_chain(block[pos:], types),
    }


def parse_index_dump(text: str | bytes) -> dict[str, Any]:
    """Parse ``doveadm dump -t index PATH`` (without a UID argument).

    Returns ``{"path", "header", "extensions", "keywords", "cache_path",
    "cache", "records"}``; see the module docstring for the conventions.
    """
    lines = _Lines(text)
    result: dict[str, Any] = {"path": lines.take_prefix("-- INDEX: ")}
    result["header"] = _parse_index_header(lines)
    result["extensions"] = _parse_extensions(lines)
    result["keywords"] = _parse_keywords(lines)
    lines.match("")
    result["cache_path"] = lines.take_prefix("-- CACHE: ")
    result["cache"] = _parse_cache(lines)
    lines.match("")
    count = int(lines.match(r"-- RECORDS: (\d+)").group(1))
    names = [ext["name"] for ext in result["extensions"]]
    cache = result["cache"]
    types = {f["name"]: f["type"] for f in cache["fields"]} if isinstance(cache, dict) else {}
    blocks = _split_records(lines.lines[lines.pos :])
    result["records"] = [_parse_record(block, names, types) for block in blocks]
    if len(result["records"]) != count or lines.truncated:
        raise ValueError(
            f"expected {count} records, found {len(result['records'])} (or output cut)"
        )
    return result


# ---------------------------------------------------------------------------
# Transaction log dump

_LOG_TYPES = frozenset(
    {
        "expunge",
        "expunge-guid",
        "append",
        "flag-update",
        "header-update",
        "ext-intro",
        "ext-reset",
        "ext-hdr",
        "ext-hdr32",
        "ext-rec",
        "keyword-update",
        "keyword-reset",
        "ext-atomic-inc",
        "modseq-update",
        "index-deleted",
        "index-undeleted",
        "boundary",
        "attribute-update",
    }
)
_LOG_RECORD_RE = re.compile(
    r"record: offset=(\d+), type=(.*?), size=(?:(\d+)(?:, modseq=(\d+))?|broken \(([0-9a-f]+)\))"
)
# header_fields[] of doveadm-dump-log.c: name -> (offset, size) in the header
_HDR_FIELDS = {
    "minor_version": (1, 1),
    "base_header_size": (2, 2),
    "header_size": (4, 4),
    "record_size": (8, 4),
    "compat_flags": (12, 1),
    "indexid": (16, 4),
    "flags": (20, 4),
    "uid_validity": (24, 4),
    "next_uid": (28, 4),
    "messages_count": (32, 4),
    "unused_old_recent_messages_count": (36, 4),
    "seen_messages_count": (40, 4),
    "deleted_messages_count": (44, 4),
    "first_recent_uid": (48, 4),
    "first_unseen_uid_lowwater": (52, 4),
    "first_deleted_uid_lowwater": (56, 4),
    "log_file_seq": (60, 4),
    "log_file_tail_offset": (64, 4),
    "log_file_head_offset": (68, 4),
    "day_stamp": (84, 4),
}
_DATA_RE = r"([0-9a-f]*)(?: \(dec=(\d+)\))?"  # print_data()
_EXT_INTRO_KEYS = (
    "ext_id",
    "reset_id",
    "hdr_size",
    "record_size",
    "record_align",
    "flags",
    "name_size",
)


def _parse_log_header(lines: _Lines) -> dict[str, Any]:
    """Read dump_hdr() of the log: eight fixed ``name = value`` lines."""
    version = lines.match(r"version = (\d+)\.(\d+)")
    header = {"major_version": int(version.group(1)), "minor_version": int(version.group(2))}
    header["hdr_size"] = int(lines.match(r"hdr size = (\d+)").group(1))
    header["indexid"] = int(lines.match(r"index id = (\d+)").group(1))
    header["file_seq"] = int(lines.match(r"file seq = (\d+)").group(1))
    prev = lines.match(r"prev file = (\d+)/(\d+)")
    header["prev_file_seq"], header["prev_file_offset"] = int(prev.group(1)), int(prev.group(2))
    header["create_stamp"] = int(lines.match(r"create stamp = (\d+)").group(1))
    header["initial_modseq"] = int(lines.match(r"initial modseq = (\d+)").group(1))
    header["compat_flags"] = int(lines.match(r"compat flags = ([0-9a-f]+)").group(1), 16)
    return header


def _split_type(printed: str, line: str) -> tuple[str, bool, bool]:
    """Undo log_record_type(): name + `` (ext)`` + `` (sync)`` suffixes."""
    sync = printed.endswith(" (sync)")
    printed = printed.removesuffix(" (sync)")
    external = printed.endswith(" (ext)")
    printed = printed.removesuffix(" (ext)")
    if printed not in _LOG_TYPES and re.fullmatch(r"unknown: [0-9a-f]+", printed) is None:
        raise _bad(line, "unknown log record type")
    return printed, external, sync


def _one(payload: list[str], what: str) -> str:
    """Return the single payload line a record type always prints."""
    if len(payload) != 1:
        raise ValueError(f"{what}: expected one payload line, got {payload!r}")
    return payload[0]


def _full(pattern: str, line: str) -> re.Match[str]:
    """Match a payload line entirely or raise naming it."""
    m = re.fullmatch(pattern, line)
    if m is None:
        raise _bad(line)
    return m


def _ranges(text: str, sep: str) -> list[list[int]]:
    """Read ``a-b`` ranges, each followed by ``sep``."""
    return [[int(a), int(b)] for a, b in re.findall(r"(\d+)-(\d+)" + re.escape(sep), text)]


def _log_append(payload: list[str]) -> dict[str, Any]:
    """`` - uids=1 (flags=a),2,``: flags are printed only when non-zero."""
    m = _full(r" - uids=((?:\d+(?: \(flags=[0-9a-f]+\))?,)*)", _one(payload, "append"))
    items = re.findall(r"(\d+)(?: \(flags=([0-9a-f]+)\))?,", m.group(1))
    return {"uids": [{"uid": int(uid), "flags": int(flags or "0", 16)} for uid, flags in items]}


def _log_expunge(payload: list[str]) -> dict[str, Any]:
    """`` - uids=1-3,7-7,``."""
    m = _full(r" - uids=((?:\d+-\d+,)*)", _one(payload, "expunge"))
    return {"ranges": _ranges(m.group(1), ",")}


def _log_keyword_reset(payload: list[str]) -> dict[str, Any]:
    """`` - uids=2-4, 9-9, ``: note ", " here, not "," as for expunge."""
    m = _full(r" - uids=((?:\d+-\d+, )*)", _one(payload, "keyword-reset"))
    return {"ranges": _ranges(m.group(1), ", ")}


def _log_expunge_guid(payload: list[str]) -> dict[str, Any]:
    """`` - uid=N (guid HEX)`` per expunged message."""
    items = [_full(r" - uid=(\d+) \(guid ([0-9a-f]*)\)", line).groups() for line in payload]
    return {"items": [{"uid": int(uid), "guid": guid} for uid, guid in items]}


def _log_flag_update(payload: list[str]) -> dict[str, Any]:
    """`` - uids=A-B (flags +ADD-REMOVE, modseq_inc_flag=N)`` (hex flags)."""
    pattern = r" - uids=(\d+)-(\d+) \(flags \+([0-9a-f]+)-([0-9a-f]+), modseq_inc_flag=(-?\d+)\)"
    items = []
    for line in payload:
        uid1, uid2, add, remove, inc = _full(pattern, line).groups()
        items.append(
            {
                "uid1": int(uid1),
                "uid2": int(uid2),
                "add": int(add, 16),
                "remove": int(remove, 16),
                "modseq_inc_flag": int(inc),
            }
        )
    return {"items": items}


def _header_update_field(line: str) -> dict[str, Any]:
    """One line of log_header_update(): a named field or raw bytes."""
    field = {
        "name": None,
        "offset": None,
        "size": None,
        "value": None,
        "hex": None,
        "too_large": False,
    }
    named = re.fullmatch(r" - (\w+) = (\d+)", line)
    if named is not None and named.group(1) in _HDR_FIELDS:
        field["name"], field["value"] = named.group(1), int(named.group(2))
        field["offset"], field["size"] = _HDR_FIELDS[named.group(1)]
        return field
    m = _full(r" - offset = (\d+), size = (\d+)(?:: " + _DATA_RE + r"| \(too large\))", line)
    field["offset"], field["size"] = int(m.group(1)), int(m.group(2))
    field["too_large"] = m.group(3) is None
    field["hex"] = m.group(3)
    field["value"] = None if m.group(4) is None else int(m.group(4))
    return field


def _log_header_update(payload: list[str]) -> dict[str, Any]:
    """Named base-header fields, then possibly one raw ``offset/size`` line."""
    return {"fields": [_header_update_field(line) for line in payload]}


def _log_ext_intro(payload: list[str]) -> dict[str, Any]:
    """Seven `` - key = N`` lines plus `` - name = '...'`` if name_size > 0."""
    if len(payload) not in (7, 8):
        raise ValueError(f"ext-intro: unexpected payload {payload!r}")
    intro: dict[str, Any] = {}
    for key, line in zip(_EXT_INTRO_KEYS, payload, strict=False):
        intro[key] = int(_full(rf" - {key} = (\d+)", line).group(1))
    intro["name"] = _full(r" - name = '(.*)'", payload[7]).group(1) if len(payload) == 8 else None
    return intro


def _log_ext_reset(payload: list[str]) -> dict[str, Any]:
    """`` - new_reset_id = N`` and `` - preserve_data = N``."""
    if len(payload) != 2:
        raise ValueError(f"ext-reset: unexpected payload {payload!r}")
    return {
        "new_reset_id": int(_full(r" - new_reset_id = (\d+)", payload[0]).group(1)),
        "preserve_data": int(_full(r" - preserve_data = (\d+)", payload[1]).group(1)),
    }


def _log_ext_hdr(payload: list[str]) -> dict[str, Any]:
    """`` - offset = O, size = S: HEX`` or `` ... (too large)``."""
    m = _full(
        r" - offset = (\d+), size = (\d+)(?:: " + _DATA_RE + r"| \(too large\))",
        _one(payload, "ext-hdr"),
    )
    return {
        "offset": int(m.group(1)),
        "size": int(m.group(2)),
        "hex": m.group(3),
        "value": None if m.group(4) is None else int(m.group(4)),
        "too_large": m.group(3) is None,
    }


def _log_ext_rec(payload: list[str]) -> dict[str, Any]:
    """`` - uid=N: HEX`` (size from the previous ext-intro) per record."""
    items = []
    for line in payload:
        m = _full(r" - uid=(\d+): (?:" + _DATA_RE + r"|\(record_size too large\))", line)
        items.append(
            {
                "uid": int(m.group(1)),
                "hex": m.group(2),
                "value": None if m.group(3) is None else int(m.group(3)),
                "too_large": m.group(2) is None,
            }
        )
    return {"items": items}


def _log_atomic_inc(payload: list[str]) -> dict[str, Any]:
    """`` - uid=N: +D`` / ``-D`` / ``0``."""
    items = [_full(r" - uid=(\d+): ([+-]?\d+)", line).groups() for line in payload]
    return {"items": [{"uid": int(uid), "diff": int(diff)} for uid, diff in items]}


def _log_keyword_update(payload: list[str]) -> dict[str, Any]:
    """`` - modify=M, name=NAME, uids=a-b,``; modify 0 = add, 1 = remove."""
    m = _full(
        r" - modify=(-?\d+), name=(.*), uids=((?:\d+-\d+,)*)", _one(payload, "keyword-update")
    )
    return {"modify": int(m.group(1)), "name": m.group(2), "ranges": _ranges(m.group(3), ",")}


def _log_modseq_update(payload: list[str]) -> dict[str, Any]:
    """`` - uid=N modseq=M`` per message."""
    items = [_full(r" - uid=(\d+) modseq=(\d+)", line).groups() for line in payload]
    return {"items": [{"uid": int(uid), "modseq": int(modseq)} for uid, modseq in items]}


def _log_boundary(payload: list[str]) -> dict[str, Any]:
    """`` - size=N``: bytes of the transaction this boundary starts."""
    return {"size": int(_full(r" - size=(\d+)", _one(payload, "boundary")).group(1))}


def _log_attribute(payload: list[str]) -> dict[str, Any]:
    """`` - broken entry`` or `` - add: private/KEY : timestamp=DATE value_len=N``."""
    if payload == [" - broken entry"]:
        return {"broken": True, "entries": []}
    pattern = (
        r" - (add|remove|\?): (private|shared|\?error\?)/(.*)"
        rf" : timestamp=({_DATE})(?: value_len=(\d+))?"
    )
    entries = []
    for line in payload:
        op, scope, key, stamp, length = _full(pattern, line).groups()
        entries.append(
            {
                "op": op,
                "scope": scope,
                "key": key,
                "timestamp": stamp,
                "value_len": None if length is None else int(length),
            }
        )
    return {"broken": False, "entries": entries}


def _log_nothing(payload: list[str]) -> None:
    """index-deleted/undeleted and unknown types print no payload."""
    if payload:
        raise _bad(payload[0])


_LOG_PAYLOAD = {
    "append": _log_append,
    "expunge": _log_expunge,
    "expunge-guid": _log_expunge_guid,
    "flag-update": _log_flag_update,
    "header-update": _log_header_update,
    "ext-intro": _log_ext_intro,
    "ext-reset": _log_ext_reset,
    "ext-hdr": _log_ext_hdr,
    "ext-hdr32": _log_ext_hdr,
    "ext-rec": _log_ext_rec,
    "ext-atomic-inc": _log_atomic_inc,
    "keyword-update": _log_keyword_update,
    "keyword-reset": _log_keyword_reset,
    "modseq-update": _log_modseq_update,
    "boundary": _log_boundary,
    "attribute-update": _log_attribute,
}


def _parse_log_record(lines: _Lines) -> dict[str, Any]:
    """Read one ``record: ...`` line and the payload lines after it."""
    m = lines.match(_LOG_RECORD_RE)
    rtype, external, sync = _split_type(m.group(2), m.group(0))
    payload = []
    while (line := lines.peek()) is not None and line.startswith(" - "):
        payload.append(lines.next())
    record: dict[str, Any] = {
        "offset": int(m.group(1)),
        "type": rtype,
        "external": external,
        "sync": sync,
        "size": None if m.group(3) is None else int(m.group(3)),
        "raw_size": None if m.group(5) is None else int(m.group(5), 16),
        "modseq": None if m.group(4) is None else int(m.group(4)),
        "payload": None,
    }
    if record["size"] is None or (lines.at_end() and lines.truncated and not payload):
        _log_nothing(payload)  # broken size, or doveadm died reading the data
        return record
    record["payload"] = _LOG_PAYLOAD.get(rtype, _log_nothing)(payload)
    return record


def parse_log_dump(text: str | bytes) -> dict[str, Any]:
    """Parse ``doveadm dump -t log FILE``.

    Returns ``{"header", "records", "truncated"}``.  ``truncated`` is True
    when the output's last line has no newline: doveadm printed a record line
    and then died (``rec data read()``) because the file ends inside it.
    """
    lines = _Lines(text)
    header = _parse_log_header(lines)
    records = []
    while not lines.at_end():
        records.append(_parse_log_record(lines))
        if records[-1]["size"] is None and not lines.at_end():
            lines.next()
            raise lines.error("output continues after a broken record")
    return {"header": header, "records": records, "truncated": lines.truncated}


# ---------------------------------------------------------------------------
# dbox file dump

_DBOX_INT_KEYS = frozenset({"msg_header_size", "size", "physical-size", "virtual-size"})
_DBOX_DATE_KEYS = frozenset({"create_stamp", "received"})
_DBOX_MSG_KEYS = frozenset(
    {
        "guid",
        "pop3-uidl",
        "pop3-order",
        "received",
        "physical-size",
        "virtual-size",
        "ext-ref",
        "orig-mailbox",
    }
)


def _dbox_value(key: str, value: str, line: str) -> int | str:
    """Convert a dbox dump value: sizes, ``%ld (date)`` times, else text."""
    if key in _DBOX_INT_KEYS:
        return _plain_int(value, line)
    if key in _DBOX_DATE_KEYS:
        m = re.fullmatch(rf"(-?\d+) \({_DATE}\)", value)
        if m is None:
            raise _bad(line)
        return int(m.group(1))
    return value


def _dbox_file_header(lines: _Lines) -> dict[str, Any]:
    """Read dump_file_hdr(): ``file.KEY = value`` lines up to the blank line."""
    header: dict[str, Any] = {}
    while lines.peek():
        line = lines.next()
        m = re.fullmatch(r"file\.(msg_header_size|create_stamp|unknown-.) = (.*)", line, re.DOTALL)
        if m is None:
            raise lines.error()
        _store(header, m.group(1), _dbox_value(m.group(1), m.group(2), line), line)
    return header


def _dbox_message(lines: _Lines) -> dict[str, Any]:
    """Read ``offset N:``, ``msg.size = N`` and the metadata lines."""
    message: dict[str, Any] = {"offset": int(lines.match(r"offset (\d+):").group(1))}
    message["size"] = int(lines.match(r"msg\.size = (\d+)").group(1))
    while lines.peek():
        line = lines.next()
        m = re.fullmatch(r"msg\.(obsolete-.|[a-z0-9-]+) = (.*)", line, re.DOTALL)
        key = None if m is None else m.group(1)
        if key is None or not (key in _DBOX_MSG_KEYS or key.startswith("obsolete-")):
            raise lines.error()
        _store(message, key, _dbox_value(key, m.group(2), line), line)
    return message


def parse_dbox_dump(text: str | bytes) -> dict[str, Any]:
    """Parse ``doveadm dump -t dbox FILE`` (sdbox ``u.N`` or mdbox ``m.N``).

    Returns ``{"header": {...}, "messages": [{"offset", "size", ...}]}``:
    keys are printed names without the ``file.``/``msg.`` prefix.  doveadm
    silently skips metadata keys it does not know, so they never show up.
    """
    lines = _Lines(text)
    header = _dbox_file_header(lines)
    messages = []
    lines.match("")
    while not lines.at_end():
        messages.append(_dbox_message(lines))
        lines.match("")
    if lines.truncated:
        raise ValueError("dbox dump output is cut off")
    return {"header": header, "messages": messages}
