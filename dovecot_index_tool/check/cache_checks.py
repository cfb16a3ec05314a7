"""Checks of ``dovecot.index.cache``: header, field table, and every message's chain."""

from __future__ import annotations

from dovecot_index_tool.check.cache_pointers import (
    MAX_CACHE_SIZE,
    pointer_holder,
    pointer_is_the_damage,
)
from dovecot_index_tool.check.data import IndexState
from dovecot_index_tool.check.findings import Finding, from_error, from_file_error, in_all
from dovecot_index_tool.check.index_checks import (
    effective_state,
    logs_read_whole,
    mailbox_byteorder,
)
from dovecot_index_tool.files import IndexSet
from dovecot_index_tool.format.binary import layout
from dovecot_index_tool.format.cache import DECISION_FORCED, CacheFile, parse_cache
from dovecot_index_tool.format.errors import ErrorKind
from dovecot_index_tool.format.mime_parts import deserialize_problem

MAX_TYPE = 4
SAME_KIND_REPORTED = 1  # Dovecot drops the whole file: the first place and a count suffice


def check_cache(index: IndexState) -> list[Finding]:
    files = index.files
    out = [
        from_file_error(err, "cache.file-too-small")
        for err in files.errors
        if err.file and err.file.endswith(".cache")
    ]
    cache = cache_in_order(files)
    if cache is None:
        return out
    header = _header(cache, _mailbox_indexid(files))
    if header is None:
        return out  # another index's cache: Dovecot unlinks it silently (indexid check)
    if header:
        return out + header
    out += _fields(cache)
    state = effective_state(index)
    ext = state.extension("cache") if state is not None else None
    if ext is None:
        return out
    if ext.reset_id != cache.header.file_seq:
        if not logs_read_whole(index):
            return out  # the reset may be in the log that could not be read: its damage
        return [
            *out,
            Finding(
                "cache.stale",
                cache.path,
                "the index points into an older cache file",
                offset=8,
                field="header.file_seq",
                expected=ext.reset_id,
                found=cache.header.file_seq,
            ),
        ]
    if any(f.check == "cache.field-header-invalid" for f in out):
        return out
    return out + _chains(cache, state, ext, files)


def cache_in_order(files: IndexSet) -> CacheFile | None:
    """The cache read in the byte order of its index's files.

    The cache has no byte-order mark; the loader reads it in the order of
    ``dovecot.index``. When that index alone comes from the other CPU (reported as
    index.byte-order), Dovecot throws the index away and reads the cache in its own
    order, which is the one the logs share: read it like that, or a healthy cache is
    reported as broken. The bytes are already loaded: this only parses them again.
    """
    cache = files.cache
    order = mailbox_byteorder(files)
    if cache is None or cache.byteorder == order:
        return cache
    idx = files.index
    indexid = idx.header.indexid if idx is not None and idx.byteorder == order else None
    return parse_cache(cache.data, cache.path, byteorder=order, indexid=indexid)


def _mailbox_indexid(files: IndexSet) -> int | None:
    """The indexid Dovecot compares the cache's with: the index's, else the head log's."""
    if files.index is not None:
        return files.index.header.indexid
    return files.logs[-1].header.indexid if files.logs else None


def _header(cache: CacheFile, indexid: int | None) -> list[Finding] | None:
    """Dovecot's header checks in its order; None when the cache belongs to another
    index, which Dovecot deletes without a word (cache.indexid-mismatch says so)."""
    h = cache.header
    if h.major_version != 1 or h.compat_sizeof_uoff_t != 8:
        return [
            Finding(
                "cache.version",
                cache.path,
                f"Unsupported major version ({h.major_version}) or uoff_t size "
                f"({h.compat_sizeof_uoff_t})",
                offset=0,
                field="header.major_version",
                expected="1 / 8",
                found=f"{h.major_version} / {h.compat_sizeof_uoff_t}",
            )
        ]
    if indexid is not None and h.indexid != indexid:
        return None
    if h.file_seq == 0:
        return [
            Finding(
                "cache.file-seq-zero",
                cache.path,
                "file_seq is 0",
                offset=8,
                field="header.file_seq",
                expected="non-zero",
                found=0,
            )
        ]
    return []


# The fields every mailbox registers when it opens (Dovecot's global cache fields), with
# the type and, for fixed-size types, the size it registers them with; ``hdr.*`` fields
# are headers. A field of the file that differs is "registered field ... type/size
# changed": Dovecot deletes the cache as corrupted.
FIX, VAR, STR, BIT, HDR = range(5)
REGISTERED = {
    "flags": (BIT, 4), "date.sent": (FIX, 8), "date.received": (FIX, 4),
    "date.save": (FIX, 4), "size.virtual": (FIX, 8), "size.physical": (FIX, 8),
    "imap.body": (STR, None), "imap.bodystructure": (STR, None),
    "imap.envelope": (STR, None), "pop3.uidl": (STR, None), "pop3.order": (FIX, 4),
    "guid": (STR, None), "mime.parts": (VAR, None), "binary.parts": (VAR, None),
    "body.snippet": (VAR, None),
}  # fmt: skip


def _fields(cache: CacheFile) -> list[Finding]:
    out = [from_error("cache.field-header-invalid", p) for p in cache.problems]
    at = cache.field_headers[-1].offset if cache.field_headers else None
    seen: set[str] = set()
    for f in cache.fields:
        where = f"fields[{f.index}]"
        for message, part, expected, found in _field_problems(f, seen):
            out.append(Finding("cache.field-header-invalid", cache.path, message, offset=at,
                               field=f"{where}.{part}", expected=expected, found=found))
        seen.add(f.name)
    return out


def _field_problems(f, seen: set[str]) -> list[tuple[str, str, object, object]]:
    """(message, part, expected, found) for each way Dovecot finds the field corrupted."""
    out: list[tuple[str, str, object, object]] = []
    if f.type > MAX_TYPE:
        out.append(("field type corrupted", "type", f"<= {MAX_TYPE}", f.type))
    if f.decision & ~DECISION_FORCED > 2:
        out.append(("field decision type corrupted", "decision", "0..2 (+0x80)", f.decision))
    if f.name in seen:
        out.append((f"Duplicated field in header: {f.name}", "name", None, f.name))
    kind, size = REGISTERED.get(f.name, (HDR if f.name.startswith("hdr.") else None, None))
    if kind is not None and f.type != kind:
        out.append((f"registered field {f.name} type changed", "type", kind, f.type))
    elif size is not None and f.size != size:
        out.append((f"registered field {f.name} size changed", "size", size, f.size))
    return out


def _chains(cache: CacheFile, state, ext, files: IndexSet) -> list[Finding]:
    """Walk every message's records; report the first few of each kind, then a count."""
    u32 = layout(state.byteorder, "I")
    found: dict[str, list[tuple[int, object]]] = {}
    pointers: list[tuple[int, int, object]] = []  # first offsets that reach no record
    cut: list[tuple[int, object]] = []  # records that run past the end of the file
    reached: list[tuple[int, int]] = []  # where the records read lie
    owners: dict[int, int] = {}  # record offset -> the message whose chain reached it
    shared: list[tuple[int, int, int]] = []  # (uid, its first offset, the other uid)
    parts: list[tuple[int, object, str]] = []  # mime.parts values Dovecot refuses
    mime = next((f.index for f in cache.fields if f.name == "mime.parts"), None)
    order = state.byteorder
    data_end = cache.field_headers[-1].offset + cache.field_headers[-1].size \
        if cache.field_headers else 0
    for rec in state.records:
        raw = ext.record_value(rec.data)
        if raw is None or len(raw) < 4:
            continue
        (offset,) = u32.unpack_from(raw, 0)
        if not offset:
            continue
        chain = cache.chain(offset)
        for r in chain.records:  # one pass: this runs for every cached message
            end = r.offset + r.size
            data_end = max(data_end, end)
            reached.append((r.offset, end))
            if r.past_eof:
                cut.append((rec.uid, r))
        shared += _claim(owners, rec.uid, offset, chain)
        if mime is not None:
            parts += [(rec.uid, v, why) for v, why in _broken_mime_parts(mime, chain, order)]
        if chain.error is None:
            continue
        if not chain.records and chain.error.kind is not ErrorKind.CACHE_CHAIN_LOOP:
            pointers.append((rec.uid, offset, chain.error))  # the first record failed
            continue
        check = (
            "cache.record-chain-loop"
            if chain.error.kind is ErrorKind.CACHE_CHAIN_LOOP
            else "cache.record-invalid"
        )
        found.setdefault(check, []).append((rec.uid, chain.error))
    out = _pointer_findings(cache, pointers, data_end, reached, files, state.byteorder, found)
    out += _cut_records(cache, cut)
    out += _mime_parts_findings(cache, parts)
    out += _shared_findings(shared, files, state.byteorder)
    for check, places in found.items():
        for uid, err in places[:SAME_KIND_REPORTED]:
            more = in_all(places)
            out.append(from_error(check, err, f"uid {uid}: {err.reason}{more}"))
    return out


def _claim(owners: dict[int, int], uid: int, first: int, chain) -> list[tuple[int, int, int]]:
    """Mark the records of ``uid``'s chain as its own. Dovecot never shares a record
    between messages (each new record points back to the same message's older one), so
    a first offset that lands on another message's record is a changed pointer."""
    out = []
    for record in chain.records:
        other = owners.setdefault(record.offset, uid)
        if other != uid and record.offset == first:
            out.append((uid, first, other))
            break
    return out


def _shared_findings(shared, files: IndexSet, order: str) -> list[Finding]:
    if not shared:
        return []
    uid, offset, other = shared[0]
    holder = pointer_holder(files, uid, offset, order)
    more = in_all(shared)
    return [Finding(
        "cache.record-shared",
        holder.file,
        f"uid {uid}: cache offset {offset} is a record of uid {other}'s chain: Dovecot "
        f"shows uid {other}'s cached fields for it{more}",
        offset=holder.offset,
        field=holder.field,
        found=offset,
    )]


def _broken_mime_parts(mime: int, chain, order: str) -> list[tuple[object, str]]:
    """The mime.parts values (field ``mime``) of a chain that Dovecot's deserializer
    refuses."""
    out = []
    for record in chain.records:
        for value in record.values if isinstance(record.values, tuple) else ():
            if value.field_index == mime and (why := deserialize_problem(value.data, order)):
                out.append((value, why))
    return out


def _mime_parts_findings(cache: CacheFile, parts: list) -> list[Finding]:
    """Dovecot deletes such a record when it reads the message's structure ('Corrupted
    cached mime.parts data') and parses the message again."""
    if not parts:
        return []
    uid, value, why = parts[0]
    more = in_all(parts)
    return [Finding(
        "cache.mime-parts-invalid",
        cache.path,
        f"uid {uid}: Corrupted cached mime.parts data: {why}{more}",
        offset=value.offset,
        field="mime.parts",
        found=why,
    )]


def _why_pointer(cache: CacheFile, offset: int, reached) -> str:
    if offset % 4:
        return "is not 4-aligned, which no cache record is"
    if offset >= MAX_CACHE_SIZE:
        return "is past 1 GiB, where Dovecot never writes a cache"
    inside = next((start for start, end in reached if start < offset < end), None)
    if inside is not None:
        return f"falls inside another message's record (at {inside})"
    return f"points past the end of the {len(cache.data)}-byte cache, whose own data is whole"


def _cut_records(cache: CacheFile, cut: list) -> list[Finding]:
    """Records that end past the end of the file, within its last page: Dovecot reads
    the missing bytes as zeros and says nothing, so the cached values there are wrong
    but no lookup fails."""
    if not cut:
        return []
    uid, rec = cut[0]
    more = in_all(cut, "records")
    return [Finding(
        "cache.record-past-eof",
        cache.path,
        f"uid {uid}: the record at {rec.offset} ({rec.size} bytes) ends {rec.past_eof} bytes "
        f"past the end of the file; Dovecot reads them as zeros{more}",
        offset=rec.offset + 4,
        field="record.size",
        expected=f"<= {len(cache.data) - rec.offset}",
        found=rec.size,
    )]


def _pointer_findings(cache: CacheFile, pointers, data_end: int, reached, files: IndexSet,
                      order: str, found: dict) -> list[Finding]:
    """A lone offset that points nowhere into a whole cache is the index's or the log's
    damage (see cache_pointers); otherwise the cache's own, like any broken record."""
    if len(pointers) == 1 and pointer_is_the_damage(cache, pointers[0][1], data_end, reached):
        uid, offset, err = pointers[0]
        holder = pointer_holder(files, uid, offset, order)
        return [Finding(
            "cache.record-invalid",
            holder.file,
            f"uid {uid}: cache offset {offset} {_why_pointer(cache, offset, reached)}: "
            f"{err.reason}",
            offset=holder.offset,
            field=holder.field,
            expected=f"a record start below {len(cache.data)}",
            found=offset,
        )]
    for uid, _offset, err in pointers:
        found.setdefault("cache.record-invalid", []).append((uid, err))
    return []
