"""Checks of ``dovecot.index`` (and list/map indexes): what Dovecot verifies when it
maps the file, and the counters it trusts without verifying."""

from __future__ import annotations

import sys
from collections import Counter

from dovecot_index_tool.check.data import IndexState
from dovecot_index_tool.check.findings import Finding, from_error, from_file_error
from dovecot_index_tool.check.header_rules import HeaderFacts, HeaderRule, apply_rules, fixed
from dovecot_index_tool.check.keyword_names import keyword_name_problem
from dovecot_index_tool.files import IndexSet
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import BIG, LITTLE, layout
from dovecot_index_tool.format.errors import ErrorKind
from dovecot_index_tool.format.index import (
    BASE_HEADER_SIZE,
    EXT_HEADER_SIZE,
    HDR_FLAG_CORRUPTED,
    HDR_FLAG_FSCKD,
    HDR_FLAG_HAVE_DIRTY,
    HEADER_OFFSETS,
    MAIL_DELETED,
    MAIL_DIRTY,
    MAIL_SEEN,
    RECORD_MIN_SIZE,
    IndexFile,
    IndexHeader,
    extension_problem,
)
from dovecot_index_tool.format.replay import replay

HOST_ORDER = LITTLE if sys.byteorder == "little" else BIG
KNOWN_EXTENSIONS = {
    "cache",
    "keywords",
    "modseq",
    "maildir",
    "dbox-hdr",
    "mdbox-hdr",
    "mdbox",
    "guid",
    "map",
    "ref",
    "hdr-vsize",
    "vsize",
    "box-name",
    "list",
    "msgs",
    "hmodseq",
    "1saved",
    "index sync",
    "subs",
    "mbox",
    "header-md5",
    "fts",
    "hdr-pop3-uidl",
    "last-rename-stamp",
    "virtual",
    "virtual2",
    "virtual-guid",
    "deleted",
    "pop3-uidl",
    "obox",
    "mobox",
    "mobox-hdr",
    "mobox-map",
    "mailbox-guid",
}
# The parser's problems that are findings of their own here; the others are reported
# from the header fields they concern.
PARSER_PROBLEMS = {
    ErrorKind.EXTENSION_OUTSIDE_HEADER: "index.extension-outside-header",
    ErrorKind.KEYWORDS_HEADER: "index.keywords-header-invalid",
}


def compat_for(order: str) -> int:
    """The compat_flags byte Dovecot writes, and demands, on a CPU of this byte order."""
    return 1 if order == LITTLE else 0


def _at_most(name: str, limit: str, check: str) -> HeaderRule:
    """``name`` must not exceed ``limit``, another field of the same header."""
    return HeaderRule(
        name,
        lambda h: getattr(h, name) > getattr(h, limit),
        check,
        lambda h: f"{name} {getattr(h, name)} > {limit} {getattr(h, limit)}",
        lambda h: f"<= {getattr(h, limit)}",
    )


def _count_matches(name: str, what: str, check: str | None = None,
                   wrong=lambda stored, counted, messages: stored != counted) -> HeaderRule:
    """The stored count of ``what`` messages against the records, when ``wrong``. A
    count already too large on disk is reported as that (Dovecot fscks it) and not
    again as wrong."""

    def broken(h: HeaderFacts) -> bool:
        stored = getattr(h, name)
        on_disk = getattr(h.disk, name) <= h.disk.messages_count
        return stored <= h.messages_count and on_disk and wrong(
            stored, getattr(h, what), h.messages_count)

    return HeaderRule(
        name,
        broken,
        check or f"index.{what}-count-wrong",
        lambda h: f"header says {getattr(h, name)} {what}, records have {getattr(h, what)}",
        lambda h: getattr(h, what),
    )


def _lowwater(name: str, what: str, label: str, first: str) -> HeaderRule:
    """No message that is ``label`` may have a UID below the low-water mark ``name``."""
    return HeaderRule(
        name,
        lambda h: getattr(h, first) is not None and getattr(h, first) < getattr(h, name),
        f"index.{what}-lowwater-too-high",
        lambda h: (
            f"uid {getattr(h, first)} is {label} but the low-water mark is {getattr(h, name)}"
        ),
        lambda h: f"<= {getattr(h, first)}",
    )


# fmt: off
# Facts beside the header: file_size, byteorder, order (the one the index should
# have), records (how many the file holds), problems (kinds the parser met).
WRONG_VERSION = HeaderRule(
    "major_version", lambda h: h.major_version != 7, "index.major-version",
    fixed("major version is not 7"), fixed(7),
)
# Damage that makes Dovecot throw the file away.
UNUSABLE = (
    HeaderRule(
        "flags", lambda h: h.flags & HDR_FLAG_CORRUPTED, "index.corrupted-flag",
        fixed("the CORRUPTED flag is set"),
    ),
    # Dovecot compares the whole byte: any other bit is "CPU architecture changed" too.
    HeaderRule(
        "compat_flags", lambda h: h.compat_flags != compat_for(h.order), "index.byte-order",
        lambda h: ("written in the other byte order" if h.byteorder != h.order else
                   f"compat_flags {h.compat_flags} is not {compat_for(h.order)}: "
                   "'CPU architecture changed'"),
        lambda h: compat_for(h.order),
    ),
    HeaderRule(
        "base_header_size",
        lambda h: h.base_header_size < BASE_HEADER_SIZE or h.header_size < h.base_header_size,
        "index.header-sizes",
        lambda h: f"Corrupted header sizes (base {h.base_header_size}, full {h.header_size})",
        fixed(f">= {BASE_HEADER_SIZE}"),
    ),
    HeaderRule(
        "header_size", lambda h: h.header_size > h.file_size, "index.header-outside-file",
        fixed("header_size is larger than the file"), lambda h: f"<= {h.file_size}",
    ),
    HeaderRule(
        "record_size", lambda h: h.record_size < RECORD_MIN_SIZE, "index.record-size-too-small",
        fixed("record_size is below 8"), fixed(f">= {RECORD_MIN_SIZE}"),
    ),
)
# ``mail_index_map_check_header``: failures make Dovecot fsck the index.
FSCK = (
    HeaderRule(
        "messages_count", lambda h: ErrorKind.MESSAGES_BEYOND_FILE in h.problems,
        "index.records-truncated", fixed("messages_count is higher than the records in the file"),
        lambda h: f"<= {h.records}",
    ),
    HeaderRule(
        "uid_validity", lambda h: h.uid_validity == 0 and h.next_uid != 1,
        "index.uidvalidity-zero", lambda h: f"uidvalidity=0, but next_uid={h.next_uid}",
        fixed("non-zero"),
    ),
    HeaderRule(
        "next_uid", lambda h: h.next_uid == 0, "index.next-uid-zero",
        fixed("next_uid=0"), fixed(">= 1"),
    ),
    _at_most("seen_messages_count", "messages_count", "index.seen-count-too-large"),
    _at_most("deleted_messages_count", "messages_count", "index.deleted-count-too-large"),
    HeaderRule(
        "first_recent_uid", lambda h: h.first_recent_uid == 0 or h.first_recent_uid > h.next_uid,
        "index.first-recent-uid-invalid",
        lambda h: f"first_recent_uid {h.first_recent_uid} is outside 1..{h.next_uid}",
        lambda h: f"1..{h.next_uid}",
    ),
    _at_most("first_unseen_uid_lowwater", "next_uid", "index.lowwater-beyond-next-uid"),
    _at_most("first_deleted_uid_lowwater", "next_uid", "index.lowwater-beyond-next-uid"),
)
# Counters and low-water marks against the records, on the replayed state. Facts: disk
# (the header as stored), seen, deleted (counted), first_unseen, first_deleted, dirty
# (the first such UID, or None).
COUNTERS = (
    _count_matches("seen_messages_count", "seen"),
    # Dovecot's searches trust the count only at its ends: 0 means no \Deleted message
    # (DELETED and EXPUNGE find none), all means no other (UNDELETED finds none). Any
    # other wrong value only makes Dovecot look, and find the real ones.
    _count_matches("deleted_messages_count", "deleted",
                   wrong=lambda stored, counted, messages: stored != counted
                   and stored in (0, messages)),
    _count_matches("deleted_messages_count", "deleted", "index.deleted-count-high",
                   wrong=lambda stored, counted, messages: stored != counted
                   and stored not in (0, messages)),
    _lowwater("first_unseen_uid_lowwater", "unseen", "unseen", "first_unseen"),
    _lowwater("first_deleted_uid_lowwater", "deleted", "\\Deleted", "first_deleted"),
    HeaderRule(
        "flags", lambda h: h.dirty is not None and not h.flags & HDR_FLAG_HAVE_DIRTY,
        "index.dirty-flag-unmarked",
        lambda h: f"uid {h.dirty} has a flag change not written to the mail file, but "
        "the header does not say so",
        fixed("HAVE_DIRTY (0x02)"),
    ),
)
FSCKD = HeaderRule(
    "flags", lambda h: h.flags & HDR_FLAG_FSCKD, "index.fsckd",
    fixed("Dovecot repaired this index before"),
)
# fmt: on


def _apply(rules: tuple[HeaderRule, ...], facts: HeaderFacts, path: str) -> list[Finding]:
    return apply_rules(rules, facts, path, HEADER_OFFSETS)


def _facts(idx: IndexFile, order: str) -> HeaderFacts:
    return HeaderFacts(
        idx.header,
        file_size=idx.size,
        byteorder=idx.byteorder,
        order=order,
        records=len(idx.records),
        problems={p.kind for p in idx.problems},
    )


def _header_finding(
    check: str, path: str, header, name: str, message: str, expected: object = None
) -> Finding:
    """A finding about one base-header field: its offset, path and value filled in."""
    return Finding(
        check,
        path,
        message,
        offset=HEADER_OFFSETS[name][0],
        field=f"header.{name}",
        expected=expected,
        found=getattr(header, name),
    )


def mailbox_byteorder(files: IndexSet) -> str:
    """The byte order the files of one index prefix should share.

    The index and each log (from version 1.2, with a header long enough to hold
    ``compat_flags``) name their writer's order; the majority wins and a tie goes to
    this host's order. So when one file alone comes from a CPU of the other order, it
    is that file, not its healthy neighbours, that is reported. Without a log there is
    nothing to outvote the index with: the host decides, as Dovecot's own check does.
    """
    logs = [log for log in files.logs if _log_names_order(log)]
    if not logs:
        return HOST_ORDER
    orders = [log.byteorder for log in logs]
    if files.index is not None and files.index.header.major_version == 7:
        orders.append(files.index.byteorder)
    if len(set(orders)) == 1:
        return orders[0]  # every file agrees (a scan asks this many times per mailbox)
    ranked = Counter(orders).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return HOST_ORDER
    return ranked[0][0]


def _log_names_order(log: L.LogFile) -> bool:
    h = log.header
    return h.major_version == 1 and h.version >= 0x0102 and h.hdr_size > 32


def log_is_usable(log: L.LogFile, order: str) -> bool:
    """False for a log Dovecot deletes and recreates at open (its records are lost)."""
    h = log.header
    return (
        h.major_version == 1
        and L.HEADER_MIN_SIZE <= h.hdr_size <= log.size
        and h.indexid != 0
        and (not _log_names_order(log) or h.compat_flags == compat_for(order))
    )


def index_is_usable(index: IndexState) -> bool:
    """False when Dovecot deletes dovecot.index at open (a fatal finding of this module)."""
    idx = index.files.index
    if idx is None:
        return True
    return not _unusable(idx, index.path, _facts(idx, mailbox_byteorder(index.files)))


def effective_state(index: IndexState) -> IndexFile | None:
    """The mailbox state to compare the cache and the mail storage with.

    ``IndexState.state`` replays every log over ``dovecot.index`` as it is. When the
    index or a log is one Dovecot throws away at open (wrong version, byte order,
    sizes, a log marked corrupted), that replay reads garbage as state, and every
    comparison built on it reports healthy neighbours (the cache, the mail files, the
    mdbox map) as damaged. Dovecot starts again from what it can use: the usable logs,
    replayed without the unusable index; the backend resync then refills the rest. So
    this returns that replay, or None when nothing usable describes the mailbox (then
    there is nothing to compare: the fatal finding says it all). Computed once per
    ``IndexState``: a mailbox's checks ask for it several times.
    """
    if "effective" not in index.derived:
        index.derived["effective"] = _effective_state(index)
    return index.derived["effective"]


def _effective_state(index: IndexState) -> IndexFile | None:
    files = index.files
    order = mailbox_byteorder(files)
    idx_ok = index_is_usable(index)
    logs = [log for log in files.logs if log_is_usable(log, order)]
    if idx_ok and len(logs) == len(files.logs):
        return index.state
    idx = files.index if idx_ok else None
    if not logs:
        return idx
    result = replay(idx, logs, files.prefix)
    if idx is None and result.lost:
        return None
    return result.index


def check_index(index: IndexState, expected_order: str | None = None) -> list[Finding]:
    """All checks of one index prefix's ``dovecot.index`` file and its replayed state."""
    files = index.files
    path = files.prefix
    findings = [_parse_failure(err) for err in files.errors if err.file == path]
    idx = files.index
    if idx is None:
        if files.logs and not any(err.file == path for err in files.errors):
            findings.append(Finding("index.missing", path, "no dovecot.index: state is in the log"))
        return findings
    facts = _facts(idx, expected_order or mailbox_byteorder(files))
    fatal = _unusable(idx, path, facts)
    findings += fatal
    if fatal:
        return findings
    findings += _apply(FSCK, facts, path)
    findings += _records(idx, path)
    findings += _records_beyond_count(idx, path)
    findings += _extensions(idx, path)
    state = effective_state(index) or idx
    findings += _apply(COUNTERS, _counter_facts(state, idx.header), path)
    findings += _apply((FSCKD,), facts, path)
    return findings


def _records_beyond_count(idx: IndexFile, path: str) -> list[Finding]:
    """Dovecot writes exactly ``messages_count`` records; plausible records after them
    (UIDs above the last counted one, below next_uid, in order) mean the header counts
    too few: the messages are there, Dovecot just stops reading before them."""
    if idx.beyond is None:
        return []
    last = idx.records[-1].uid if len(idx.records) else 0
    found = []
    for record in idx.beyond:
        if not last < record.uid < idx.header.next_uid:
            break
        found.append(record.uid)
        last = record.uid
    if not found:
        return []
    count = idx.header.messages_count
    return [Finding(
        "index.messages-count-low",
        idx.path or path,
        f"{len(found)} record(s) after the {count} that messages_count covers, "
        f"UIDs {found[0]}..{found[-1]}",
        offset=HEADER_OFFSETS["messages_count"][0],
        field="header.messages_count",
        expected=count + len(found),
        found=count,
    )]


def _parse_failure(err) -> Finding:
    return from_file_error(err, "index.file-too-small")


def _unusable(idx: IndexFile, path: str, facts: HeaderFacts) -> list[Finding]:
    """Damage that makes Dovecot throw the file away."""
    wrong_version = _apply((WRONG_VERSION,), facts, path)
    if wrong_version:
        return wrong_version
    out = _apply(UNUSABLE, facts, path)
    if len(idx.records) and idx.records[-1].uid == 0:
        rec = idx.records[-1]
        out.append(
            Finding(
                "index.last-uid-zero",
                path,
                "the last message has uid=0",
                offset=rec.offset,
                field=f"records[{rec.seq}].uid",
                found=0,
            )
        )
    return out


def _records(idx: IndexFile, path: str) -> list[Finding]:
    out = []
    prev = 0
    last = None
    for rec in idx.records:
        if rec.uid == 0 or rec.uid <= prev:
            out.append(
                Finding(
                    "index.uids-unordered",
                    path,
                    f"record {rec.seq} has uid {rec.uid} after uid {prev}",
                    offset=rec.offset,
                    field=f"records[{rec.seq}].uid",
                    expected=f"> {prev}",
                    found=rec.uid,
                )
            )
            break
        prev = rec.uid
        last = rec
    if last is not None and idx.header.next_uid and last.uid >= idx.header.next_uid:
        out.append(
            _header_finding(
                "index.next-uid-below-record",
                path,
                idx.header,
                "next_uid",
                f"last message uid {last.uid} >= next_uid {idx.header.next_uid}",
                expected=f"> {last.uid}",
            )
        )
    return out


def _extensions(idx: IndexFile, path: str) -> list[Finding]:
    out = [
        from_error(PARSER_PROBLEMS[problem.kind], problem)
        for problem in idx.problems
        if problem.kind in PARSER_PROBLEMS
    ]
    names = Counter(e.name for e in idx.extensions)
    for ext in idx.extensions:
        where = f"extensions[{ext.number}]"
        reason = extension_problem(ext, idx.header.record_size)
        if not reason and ext.record_size == 0 and ext.record_offset > idx.header.record_size:
            # accepted at open, but copying the map asserts record_offset + record_size
            # <= the record size: Dovecot aborts (at the next sync that clones the map)
            reason = ("Record field points outside record size (record_size 0, "
                      f"record_offset {ext.record_offset}): Dovecot aborts copying the index")
        if reason:
            out.append(
                Finding(
                    "index.extension-invalid",
                    path,
                    f"Broken extension #{ext.number} ({ext.name}): {reason}",
                    offset=ext.offset,
                    field=where,
                    found=reason,
                )
            )
        if names[ext.name] > 1 and ext is not _first(idx, ext.name):
            out.append(
                Finding(
                    "index.extension-duplicate",
                    path,
                    f"Duplicate header extension {ext.name}",
                    offset=ext.offset,
                    field=f"{where}.name",
                    found=ext.name,
                )
            )
        renamed = _renamed_from(idx, ext.name) if not reason else None
        if renamed is not None:
            out.append(
                Finding(
                    "index.extension-renamed",
                    path,
                    f"extension {ext.name!r} is one byte off {renamed!r}, which the index "
                    f"lacks: Dovecot no longer finds what {renamed!r} held",
                    offset=ext.offset + EXT_HEADER_SIZE,
                    field=f"{where}.name",
                    expected=renamed,
                    found=ext.name,
                )
            )
        elif ext.name not in KNOWN_EXTENSIONS and not reason:
            out.append(
                Finding(
                    "index.unknown-extension",
                    path,
                    f"extension {ext.name!r} is not decoded by this tool",
                    offset=ext.offset,
                    field=f"{where}.name",
                    found=ext.name,
                )
            )
    out += _keyword_names(idx, path)
    return out


def _renamed_from(idx: IndexFile, name: str) -> str | None:
    """The known extension this unknown name is one changed byte away from, when the
    index lacks that one (a flipped bit or a stray byte in the name)."""
    if name in KNOWN_EXTENSIONS:
        return None
    present = {e.name for e in idx.extensions}
    for known in KNOWN_EXTENSIONS - present:
        if len(known) == len(name) and sum(a != b for a, b in zip(known, name, strict=True)) == 1:
            return known
    return None


def _first(idx: IndexFile, name: str):
    return next(e for e in idx.extensions if e.name == name)


def _keyword_names(idx: IndexFile, path: str) -> list[Finding]:
    ext = idx.extension("keywords")
    if ext is None or not idx.keywords:
        return []
    out = []
    if any(not kw for kw in idx.keywords):
        out.append(
            Finding(
                "index.keywords-header-invalid",
                path,
                "Empty keyword name in header",
                offset=ext.data_offset,
                field="keywords.names",
            )
        )
    out += [
        Finding(
            "index.keyword-name-invalid",
            path,
            f"keyword {i}: {problem}",
            offset=ext.data_offset,
            field=f"keywords[{i}].name",
            found=name,
        )
        for i, name in enumerate(idx.keywords)
        if (problem := keyword_name_problem(name))
    ][:1]
    u32 = layout(idx.byteorder, "I")
    expected = 0
    for i, name in enumerate(idx.keywords):
        (found,) = u32.unpack_from(ext.data, 4 + 8 * i + 4)
        if found != expected:
            out.append(
                Finding(
                    "index.keyword-name-offset",
                    path,
                    f"keyword {i} name_offset does not follow the previous names",
                    offset=ext.data_offset + 8 + 8 * i,
                    field=f"keywords[{i}].name_offset",
                    expected=expected,
                    found=found,
                )
            )
            break
        expected += len(name.encode("latin-1")) + 1
    return out


def _counter_facts(state: IndexFile, disk: IndexHeader) -> HeaderFacts:
    """What the COUNTERS rules compare the replayed header with: its own records."""
    pairs = state.records.uids_and_flags()
    return HeaderFacts(
        state.header,
        disk=disk,
        seen=sum(1 for _, f in pairs if f & MAIL_SEEN),
        deleted=sum(1 for _, f in pairs if f & MAIL_DELETED),
        first_unseen=next((u for u, f in pairs if not f & MAIL_SEEN), None),
        first_deleted=next((u for u, f in pairs if f & MAIL_DELETED), None),
        dirty=next((u for u, f in pairs if f & MAIL_DIRTY), None),
    )


def logs_read_whole(index: IndexState) -> bool:
    """The replay read every log to its end: the replayed state is final, so what it
    says of the cache or of the mail files can be held against them."""
    files = index.files
    log_errors = any(err.file and ".log" in err.file.rsplit("/", 1)[-1] for err in files.errors)
    order = mailbox_byteorder(files)
    return (bool(files.logs) and not log_errors and index.replay is not None
            and index.replay.lost is None
            and all(log_is_usable(log, order) for log in files.logs))
