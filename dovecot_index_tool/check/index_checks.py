"""Checks of ``dovecot.index`` (and list/map indexes): what Dovecot verifies when it
maps the file, and the counters it trusts without verifying."""

from __future__ import annotations

import sys
from collections import Counter

from dovecot_index_tool.check.data import IndexState
from dovecot_index_tool.check.findings import Finding, from_file_error
from dovecot_index_tool.files import IndexSet
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import BIG, LITTLE, layout
from dovecot_index_tool.format.index import (
    BASE_HEADER_SIZE,
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
    ext_header_problem,
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


def _at(name: str) -> int:
    return HEADER_OFFSETS[name][0]


def _header_finding(
    check: str, path: str, header, name: str, message: str, expected: object = None
) -> Finding:
    """A finding about one base-header field: its offset, path and value filled in."""
    return Finding(
        check,
        path,
        message,
        offset=_at(name),
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
    votes = Counter(log.byteorder for log in logs)
    if files.index is not None and files.index.header.major_version == 7:
        votes[files.index.byteorder] += 1
    ranked = votes.most_common()
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
        and (not _log_names_order(log) or log.byteorder == order)
    )


def index_is_usable(index: IndexState) -> bool:
    """False when Dovecot deletes dovecot.index at open (a fatal finding of this module)."""
    idx = index.files.index
    return idx is None or not _unusable(idx, index.path, mailbox_byteorder(index.files))


def effective_state(index: IndexState) -> IndexFile | None:
    """The mailbox state to compare the cache and the mail storage with.

    ``IndexState.state`` replays every log over ``dovecot.index`` as it is. When the
    index or a log is one Dovecot throws away at open (wrong version, byte order,
    sizes, a log marked corrupted), that replay reads garbage as state, and every
    comparison built on it reports healthy neighbours (the cache, the mail files, the
    mdbox map) as damaged. Dovecot starts again from what it can use: the usable logs,
    replayed without the unusable index; the backend resync then refills the rest. So
    this returns that replay, or None when nothing usable describes the mailbox (then
    there is nothing to compare: the fatal finding says it all).
    """
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
    order = expected_order or mailbox_byteorder(files)
    fatal = _unusable(idx, path, order)
    findings += fatal
    if fatal:
        return findings
    findings += _header(idx, path)
    findings += _records(idx, path)
    findings += _extensions(idx, path)
    state = effective_state(index) or idx
    findings += _counters(state, path, idx.header)
    if idx.header.flags & HDR_FLAG_FSCKD:
        findings.append(
            _header_finding(
                "index.fsckd",
                path,
                idx.header,
                "flags",
                "Dovecot repaired this index before",
            )
        )
    return findings


def _parse_failure(err) -> Finding:
    return from_file_error(err, "index.file-too-small")


def _unusable(idx: IndexFile, path: str, order: str) -> list[Finding]:
    """Damage that makes Dovecot throw the file away."""
    h = idx.header
    out = []
    if h.major_version != 7:
        out.append(
            Finding(
                "index.major-version",
                path,
                "major version is not 7",
                offset=0,
                field="header.major_version",
                expected=7,
                found=h.major_version,
            )
        )
        return out
    if h.flags & HDR_FLAG_CORRUPTED:
        out.append(
            _header_finding(
                "index.corrupted-flag",
                path,
                h,
                "flags",
                "the CORRUPTED flag is set",
            )
        )
    if idx.byteorder != order:
        out.append(
            Finding(
                "index.byte-order",
                path,
                "written in the other byte order",
                offset=12,
                field="header.compat_flags",
                expected=1 if order == LITTLE else 0,
                found=h.compat_flags,
            )
        )
    if h.base_header_size < BASE_HEADER_SIZE or h.header_size < h.base_header_size:
        out.append(
            Finding(
                "index.header-sizes",
                path,
                f"Corrupted header sizes (base {h.base_header_size}, full {h.header_size})",
                offset=2,
                field="header.base_header_size",
                expected=f">= {BASE_HEADER_SIZE}",
                found=h.base_header_size,
            )
        )
    if h.header_size > idx.size:
        out.append(
            Finding(
                "index.header-outside-file",
                path,
                "header_size is larger than the file",
                offset=4,
                field="header.header_size",
                expected=f"<= {idx.size}",
                found=h.header_size,
            )
        )
    if h.record_size < RECORD_MIN_SIZE:
        out.append(
            Finding(
                "index.record-size-too-small",
                path,
                "record_size is below 8",
                offset=8,
                field="header.record_size",
                expected=">= 8",
                found=h.record_size,
            )
        )
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


def _header(idx: IndexFile, path: str) -> list[Finding]:
    """``mail_index_map_check_header``: failures make Dovecot fsck the index."""
    h = idx.header
    out = []
    if any(p.field == "header.messages_count" for p in idx.problems):
        out.append(
            _header_finding(
                "index.records-truncated",
                path,
                h,
                "messages_count",
                "messages_count is higher than the records in the file",
                expected=f"<= {len(idx.records)}",
            )
        )
    if h.uid_validity == 0 and h.next_uid != 1:
        out.append(
            _header_finding(
                "index.uidvalidity-zero",
                path,
                h,
                "uid_validity",
                f"uidvalidity=0, but next_uid={h.next_uid}",
                expected="non-zero",
            )
        )
    if h.next_uid == 0:
        out.append(
            _header_finding(
                "index.next-uid-zero",
                path,
                h,
                "next_uid",
                "next_uid=0",
                expected=">= 1",
            )
        )
    for name, text in (("seen_messages_count", "seen"), ("deleted_messages_count", "deleted")):
        value = getattr(h, name)
        if value > h.messages_count:
            out.append(
                _header_finding(
                    f"index.{text}-count-too-large",
                    path,
                    h,
                    name,
                    f"{name} {value} > messages_count {h.messages_count}",
                    expected=f"<= {h.messages_count}",
                )
            )
    if h.first_recent_uid == 0 or h.first_recent_uid > h.next_uid:
        out.append(
            _header_finding(
                "index.first-recent-uid-invalid",
                path,
                h,
                "first_recent_uid",
                f"first_recent_uid {h.first_recent_uid} is outside 1..{h.next_uid}",
                expected=f"1..{h.next_uid}",
            )
        )
    for name in ("first_unseen_uid_lowwater", "first_deleted_uid_lowwater"):
        value = getattr(h, name)
        if value > h.next_uid:
            out.append(
                _header_finding(
                    "index.lowwater-beyond-next-uid",
                    path,
                    h,
                    name,
                    f"{name} {value} > next_uid {h.next_uid}",
                    expected=f"<= {h.next_uid}",
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
    out = []
    for problem in idx.problems:
        if "goes outside header" in problem.reason:
            out.append(
                Finding(
                    "index.extension-outside-header",
                    path,
                    problem.reason,
                    offset=problem.offset,
                    field=problem.field,
                    expected=problem.expected,
                    found=problem.found,
                )
            )
        elif problem.field and problem.field.startswith("keywords"):
            out.append(
                Finding(
                    "index.keywords-header-invalid",
                    path,
                    problem.reason,
                    offset=problem.offset,
                    field=problem.field,
                    expected=problem.expected,
                    found=problem.found,
                )
            )
    names = Counter(e.name for e in idx.extensions)
    for ext in idx.extensions:
        where = f"extensions[{ext.number}]"
        reason = ext_header_problem(
            idx.header.record_size,
            ext.name,
            ext.hdr_size,
            ext.record_offset,
            ext.record_size,
            ext.record_align,
        )
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
        if ext.name not in KNOWN_EXTENSIONS and not reason:
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
        expected += len(name.encode("utf-8")) + 1
    return out


def _counters(state: IndexFile, path: str, disk: IndexHeader) -> list[Finding]:
    """Counters and low-water marks against the records (on the replayed state).

    A counter that already exceeds messages_count on disk is reported as too large
    (Dovecot fscks it) and not again as wrong, even when the log's appends have since
    raised messages_count above it.
    """
    h = state.header
    pairs = state.records.uids_and_flags()
    seen = sum(1 for _, f in pairs if f & MAIL_SEEN)
    deleted = sum(1 for _, f in pairs if f & MAIL_DELETED)
    out = []
    for name, what, count in (
        ("seen_messages_count", "seen", seen),
        ("deleted_messages_count", "deleted", deleted),
    ):
        stored = getattr(h, name)
        if (
            stored <= h.messages_count
            and getattr(disk, name) <= disk.messages_count
            and count != stored
        ):
            out.append(
                _header_finding(
                    f"index.{what}-count-wrong",
                    path,
                    h,
                    name,
                    f"header says {stored} {what}, records have {count}",
                    expected=count,
                )
            )
    for name, what, label, first in (
        (
            "first_unseen_uid_lowwater",
            "unseen",
            "unseen",
            next((u for u, f in pairs if not f & MAIL_SEEN), None),
        ),
        (
            "first_deleted_uid_lowwater",
            "deleted",
            "\\Deleted",
            next((u for u, f in pairs if f & MAIL_DELETED), None),
        ),
    ):
        mark = getattr(h, name)
        if first is not None and first < mark:
            out.append(
                _header_finding(
                    f"index.{what}-lowwater-too-high",
                    path,
                    h,
                    name,
                    f"uid {first} is {label} but the low-water mark is {mark}",
                    expected=f"<= {first}",
                )
            )
    dirty = next((u for u, f in pairs if f & MAIL_DIRTY), None)
    if dirty is not None and not h.flags & HDR_FLAG_HAVE_DIRTY:
        out.append(
            _header_finding(
                "index.dirty-flag-unmarked",
                path,
                h,
                "flags",
                f"uid {dirty} has a flag change not written to the mail file, but "
                "the header does not say so",
                expected="HAVE_DIRTY (0x02)",
            )
        )
    return out
