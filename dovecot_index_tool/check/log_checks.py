"""Checks of the transaction logs, and of how index, logs and cache fit together."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dovecot_index_tool.check.cache_checks import cache_in_order
from dovecot_index_tool.check.data import IndexState
from dovecot_index_tool.check.findings import Finding, from_error, from_file_error
from dovecot_index_tool.check.header_rules import HeaderFacts, HeaderRule, apply_rules, fixed
from dovecot_index_tool.check.index_checks import compat_for, log_is_usable, mailbox_byteorder
from dovecot_index_tool.check.keyword_names import keyword_name_problem
from dovecot_index_tool.check.next_uid_witness import raised_next_uid
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import layout
from dovecot_index_tool.format.index import HEADER_OFFSETS

RANGE_TYPES = (L.EXPUNGE, L.FLAG_UPDATE, L.KEYWORD_RESET)


def check_logs(index: IndexState) -> list[Finding]:
    files = index.files
    out = [
        from_file_error(err, "log.file-too-small")
        for err in files.errors
        if err.file and ".log" in err.file.rsplit("/", 1)[-1]
    ]
    for log in files.logs:
        out += _one_log(log, index)
    out += _pair(index)
    if files.hardlinked:
        out.append(
            Finding("log.hardlinked", f"{files.prefix}.log.2", ".log and .log.2 are the same file")
        )
    return out


# fmt: off
# Facts beside the header: size (of the file), order (the byte order most of the
# index's files share, see mailbox_byteorder), byteorder (the log's own), reset (a
# second log that starts a new index).
UNREADABLE = (
    HeaderRule(
        "major_version", lambda h: h.major_version != 1, "log.major-version",
        fixed("log major version is not 1"), fixed(1),
    ),
    HeaderRule(
        "hdr_size", lambda h: h.hdr_size < L.HEADER_MIN_SIZE or h.hdr_size > h.size,
        "log.header-size-invalid", lambda h: f"hdr_size {h.hdr_size} is invalid",
        lambda h: f"{L.HEADER_MIN_SIZE}..{h.size}",
    ),
)
HEADER_RULES = (
    HeaderRule(
        "indexid", lambda h: h.indexid == 0, "log.marked-corrupted",
        fixed("indexid 0: marked corrupted by Dovecot"), fixed("non-zero"),
    ),
    HeaderRule(
        "file_seq", lambda h: h.file_seq == 0xFFFFFFFF, "log.file-seq-reserved",
        fixed("file_seq 0xffffffff: Dovecot aborts on it"), fixed("below 0xffffffff"),
    ),
    # Against the order most files share, not the index alone: an index from the
    # other CPU must not make its healthy logs look foreign too.
    HeaderRule(
        "compat_flags",
        lambda h: h.version >= 0x0102 and h.hdr_size > 32 and h.compat_flags != compat_for(h.order),
        "log.byte-order",
        lambda h: ("the log differs in byte order from the other files of its index"
                   if h.byteorder != h.order else f"compat_flags {h.compat_flags} is not "
                   f"{compat_for(h.order)}: 'CPU architecture changed'"),
        lambda h: compat_for(h.order),
    ),
    # Dovecot starts every log it writes at modseq 1 or later.
    HeaderRule(
        "initial_modseq", lambda h: h.hdr_size >= 32 and h.initial_modseq == 0,
        "log.initial-modseq-wrong", fixed("initial_modseq 0: Dovecot starts every log at 1 "
                                          "or later"), fixed(">= 1"),
    ),
    HeaderRule(
        "prev_file_seq", lambda h: h.reset, "log.reset",
        lambda h: f"log seq {h.file_seq} starts a new index; .log.2 is from before",
    ),
)
# fmt: on


def _one_log(log: L.LogFile, index: IndexState) -> list[Finding]:
    logs = index.files.logs
    facts = HeaderFacts(
        log.header,
        size=log.size,
        order=mailbox_byteorder(index.files),
        byteorder=log.byteorder,
        reset=log.header.prev_file_seq == 0 and len(logs) == 2 and log is logs[1],
    )
    unreadable = apply_rules(UNREADABLE, facts, log.path, L.HEADER_OFFSETS)
    if unreadable:
        return unreadable[:1]
    out = apply_rules(HEADER_RULES, facts, log.path, L.HEADER_OFFSETS)
    out += _framing(log, index)
    out += _records(log)
    return out


def _framing(log: L.LogFile, index: IndexState) -> list[Finding]:
    out = [from_error("log.record-size-invalid", problem) for problem in log.problems]
    if log.end_reason in (L.END_UNFINISHED, L.END_PARTIAL_TRANSACTION) and log.trailing:
        out.append(_partial_tail(log, index))
    return out


def _partial_tail(log: L.LogFile, index: IndexState) -> Finding:
    """Partial bytes at the end of a log: a write in progress while a writer holds
    Dovecot's lock on the head log; garbage when none does (Dovecot, once it locks,
    answers 'Unexpected garbage at EOF' and the mailbox cannot be opened)."""
    head = log.path is not None and log.path == f"{index.files.prefix}.log"
    garbage = head and index.files.head_log_locked is False
    return Finding(
        "log.garbage-at-eof" if garbage else "log.unfinished-write",
        log.path,
        f"{log.trailing} bytes after the last complete record "
        + ("and no writer holds the lock: not a write in progress" if garbage
           else f"({log.end_reason})"),
        offset=log.valid_end,
        field="records",
        found=log.trailing,
    )


def _tail_updates(log: L.LogFile) -> list[Finding]:
    """External updates of the tail offset that point past their own record: Dovecot's
    log reader meets them whenever it reads the log, wherever the index stands, and
    marks the log corrupted ("log_file_tail_offset ... goes past sync offset")."""
    last_read = 0
    wanted, mask = L.EXTERNAL | L.HEADER_UPDATE, L.EXTERNAL | L.TYPE_MASK
    for rec in log.records:
        if rec.type & mask != wanted:
            continue  # the type bits first: this runs for every record
        value = L.tail_offset_update(rec, log.byteorder)
        if value is None or value < last_read:
            continue
        if value > rec.offset + rec.size:
            return [Finding("log.tail-update-invalid", log.path,
                            f"log_file_tail_offset {value} goes past sync offset "
                            f"{rec.offset + rec.size}", offset=rec.offset,
                            field=f"record@{rec.offset}.header_update",
                            expected=f"<= {rec.offset + rec.size}", found=value)]
        last_read = value
    return []


# Record types whose payload these checks look into (names, UID ranges); the loop
# passes over the others with one set lookup.
_LOOKED_INTO = frozenset({*RANGE_TYPES, L.KEYWORD_UPDATE, L.EXPUNGE_GUID})


def _records(log: L.LogFile) -> list[Finding]:
    out = _tail_updates(log)
    known, looked_into = L.TYPE_NAMES, _LOOKED_INTO
    for rec in log.records:
        if rec.error is not None:
            message = f"{rec.name} record: {rec.error.reason}"
            out.append(from_error("log.record-invalid", rec.error, message))
            break  # Dovecot stops reading the log here
        if rec.code not in known:
            out.append(
                Finding(
                    "log.unknown-record-type",
                    log.path,
                    f"Unknown transaction record type 0x{rec.code:x}",
                    offset=rec.offset,
                    field=f"record@{rec.offset}.type",
                    found=hex(rec.type),
                )
            )
            continue
        if rec.base_code not in looked_into:
            continue
        where = f"record@{rec.offset}"
        if rec.base_code == L.KEYWORD_UPDATE and rec.items and (
                named := keyword_name_problem(rec.items[0].name)):
            out.append(Finding("log.keyword-name-invalid", log.path, f"{rec.name}: {named}",
                               offset=rec.offset + L.RECORD_HEADER_SIZE + 4,
                               field=f"{where}.name", found=rec.items[0].name))
        problem = _range_problem(rec)
        if problem:
            out.append(
                Finding(
                    "log.uid-range-invalid",
                    log.path,
                    f"{rec.name}: {problem}",
                    offset=rec.offset,
                    field=f"{where}.uids",
                    found=problem,
                )
            )
            break
    return out


def _range_problem(rec: L.LogRecord) -> str | None:
    code = rec.base_code
    if code in RANGE_TYPES:
        ranges = [(i.uid1, i.uid2) for i in rec.items]
    elif code == L.KEYWORD_UPDATE and rec.items:
        ranges = [(r.uid1, r.uid2) for r in rec.items[0].ranges]
    elif code == L.EXPUNGE_GUID:
        return "Expunge guid record with uid=0" if any(i.uid == 0 for i in rec.items) else None
    else:
        return None
    if not ranges:
        return f"No UID ranges (type=0x{rec.code:x})"
    prev = 0
    for uid1, uid2 in ranges:
        if uid1 == 0 or uid1 > uid2:
            return f"Invalid UID range ({uid1} .. {uid2}, type=0x{rec.code:x})"
        if uid1 <= prev:
            return f"Non-sorted UID ranges (type=0x{rec.code:x})"
        prev = uid2
    return None


def _pair(index: IndexState) -> list[Finding]:
    """``.log.2`` against ``.log``: sequence, chaining and size at rotation."""
    logs = index.files.logs
    if len(logs) != 2:
        return []
    old, new = logs
    if old.header.file_seq == new.header.file_seq:
        return [_duplicate_sequence(index, old, new)]
    if not old.path.endswith(".log.2"):
        return [
            Finding(
                "log.rotated-sequence",
                old.path,
                ".log.2 has a newer file_seq than .log",
                offset=8,
                field="header.file_seq",
                expected=f"< {new.header.file_seq}",
                found=old.header.file_seq,
            )
        ]
    h = new.header
    if h.prev_file_seq == 0:
        return []
    if h.prev_file_seq != old.header.file_seq and old.header.file_seq + 1 == h.file_seq:
        # .log.2 is .log's predecessor by number: .log's own link to it was changed
        out = [Finding(
            "log.prev-seq-wrong",
            new.path,
            f".log says it follows seq {h.prev_file_seq}, but it is seq {h.file_seq} and "
            f".log.2 is seq {old.header.file_seq}",
            offset=12,
            field="header.prev_file_seq",
            expected=old.header.file_seq,
            found=h.prev_file_seq,
        )]
        if old.trailing == 0 and h.initial_modseq != old.end_modseq:
            out.append(_initial_modseq(new, old))
        return out
    if h.prev_file_seq != old.header.file_seq:
        return [
            Finding(
                "log.rotated-sequence",
                old.path,
                f".log continues seq {h.prev_file_seq}, .log.2 is seq {old.header.file_seq}",
                offset=8,
                field="header.file_seq",
                expected=h.prev_file_seq,
                found=old.header.file_seq,
            )
        ]
    if h.prev_file_offset != old.valid_end:
        return [
            Finding(
                "log.rotated-size-mismatch",
                old.path,
                f"Invalid transaction log size ({old.valid_end} vs {h.prev_file_offset})",
                offset=old.valid_end,
                field="records",
                expected=h.prev_file_offset,
                found=old.valid_end,
            )
        ]
    if old.trailing == 0 and h.initial_modseq != old.end_modseq:
        return [_initial_modseq(new, old)]
    return []


def _initial_modseq(new: L.LogFile, old: L.LogFile) -> Finding:
    """A rotated log starts at the modseq its predecessor ended with; Dovecot counts
    HIGHESTMODSEQ from it, so a wrong start shows clients another HIGHESTMODSEQ (a lower
    one makes CONDSTORE/QRESYNC clients miss changes)."""
    return Finding(
        "log.initial-modseq-wrong",
        new.path,
        f"initial_modseq {new.header.initial_modseq}, but .log.2 ends at modseq "
        f"{old.end_modseq}",
        offset=24,
        field="header.initial_modseq",
        expected=old.end_modseq,
        found=new.header.initial_modseq,
    )


def check_consistency(index: IndexState) -> list[Finding]:
    """indexid across files, the index's log position, and the replay."""
    out = _indexids(index)
    out += _positions(index)
    out += _missing_log(index)
    replay = index.replay
    if replay is not None:
        head_reported = any(f.field == "header.log_file_head_offset"
                            or f.check == "log.shorter-than-index" for f in out)
        if replay.lost and index.files.index is not None and not head_reported:
            # A head offset already reported as beyond the log is the reason the view
            # is lost ("Invalid offset"): one finding for one fact.
            out += _lost_log(index, replay.lost)
        reported = _records_reported(index)
        for issue in replay.issues:
            if (issue.file, issue.offset) in reported:
                continue  # already log.record-invalid / log.unknown-record-type
            if (raised := raised_next_uid(index, issue)) is not None:
                out.append(raised)
                continue
            out.append(
                Finding(
                    "log.replay-error",
                    issue.file,
                    issue.reason,
                    offset=issue.offset,
                    field=f"record@{issue.offset}",
                )
            )
    return out


def _lost_log(index: IndexState, reason: str) -> list[Finding]:
    """The index's log position is in no log on disk. The log is the odd one out when
    ``.log`` is missing, is no newer than ``.log.2`` (a copy, an older log), or its own
    header says it cannot be the log the index was written against; else the index's
    own position is wrong."""
    files, idx = index.files, index.files.index
    head = next((log for log in files.logs if log.path == f"{files.prefix}.log"), None)
    old = next((log for log in files.logs if log.path == f"{files.prefix}.log.2"), None)
    why_log = _why_the_log_is_wrong(head, old, idx.header.log_file_seq)
    if why_log is not None:
        return [Finding(
            "index.log-lost",
            f"{files.prefix}.log",
            f"Lost log: {reason}; dovecot.index was written against log seq "
            f"{idx.header.log_file_seq}, and .log {why_log}",
            offset=8 if head is not None else None,
            field="header.file_seq" if head is not None else "file",
            expected=idx.header.log_file_seq,
            found=head.header.file_seq if head is not None else "missing",
        )]
    lost = Finding(
        "index.log-lost",
        index.path,
        f"Lost log: {reason}",
        offset=HEADER_OFFSETS["log_file_seq"][0],
        field="header.log_file_seq",
        found=idx.header.log_file_seq,
    )
    if old is not None or head is None or head.header.file_seq == idx.header.log_file_seq:
        return [lost]
    # Only the index and one log, and they disagree on the sequence: no third file
    # decides which number was changed, so the log is named too.
    return [lost, Finding(
        "log.sequence-disputed",
        head.path,
        f"the index was written against log seq {idx.header.log_file_seq}, this log says "
        f"{head.header.file_seq}, and no .log.2 decides which of the two was changed",
        offset=8,
        field="header.file_seq",
        expected=idx.header.log_file_seq,
        found=head.header.file_seq,
    )]


def _why_the_log_is_wrong(head: L.LogFile | None, old: L.LogFile | None, index_seq: int
                          ) -> str | None:
    """Why ``.log`` rather than the index's position is the file that does not fit."""
    if head is None:
        return "is missing"
    h = head.header
    if old is not None and h.file_seq <= old.header.file_seq:
        return f"is seq {h.file_seq}, no newer than .log.2 (seq {old.header.file_seq})"
    if _log_contradicts_itself(head):
        return f"says seq {h.file_seq} after seq {h.prev_file_seq}, which Dovecot never writes"
    if _seq_contradicts_chain(head, index_seq):
        return (f"is seq {h.file_seq}, which neither .log.2 nor its own prev_file_seq "
                f"({h.prev_file_seq}) leads to")
    if old is None and _follows_a_missing_log(head, index_seq):
        return (f"is seq {h.file_seq}, following seq {h.prev_file_seq} (the index's), but "
                f"there is no .log.2: the log is not this mailbox's, or its predecessor "
                f"was removed")
    return None


def _log_contradicts_itself(head: L.LogFile) -> bool:
    """Dovecot numbers logs from 1, and a rotated log follows a lower sequence."""
    h = head.header
    return h.file_seq == 0 or (h.prev_file_seq != 0 and h.prev_file_seq >= h.file_seq)


def _follows_a_missing_log(head: L.LogFile, index_seq: int) -> bool:
    """``.log`` says it continues the very sequence the index was written against, yet
    no ``.log.2`` is there. Dovecot drops ``.log.2`` only after writing the index
    against the newer log, so the index's position is confirmed by the log's own
    header, and the log (a copy from elsewhere, or one whose predecessor is gone) is
    what does not fit."""
    return head.header.prev_file_seq == index_seq != head.header.file_seq


def _seq_contradicts_chain(head: L.LogFile, index_seq: int) -> bool:
    """A rotated log follows the log it names as previous: when the index names that
    next sequence and the log says another, the log's own file_seq is the odd one."""
    prev = head.header.prev_file_seq
    return prev != 0 and prev + 1 == index_seq != head.header.file_seq


def _records_reported(index: IndexState) -> set[tuple[str | None, int]]:
    """Records that check_logs reports itself; the replay meets them too."""
    out = set()
    known = L.TYPE_NAMES
    for log in index.files.logs:
        for rec in log.records:
            if rec.error is not None or rec.code not in known:
                out.add((log.path, rec.offset))
    return out


def _indexids(index: IndexState) -> list[Finding]:
    """The indexid every file should share; the odd one out is wrong, decided by majority."""
    files = index.files
    voters: list[tuple[str, str, int]] = []
    if files.index is not None and files.index.header.major_version == 7:
        voters.append(("index", files.prefix, files.index.header.indexid))
    chained = len(files.logs) == 2 and files.logs[1].header.prev_file_seq != 0
    for log in files.logs:
        is_old = len(files.logs) == 2 and log is files.logs[0]
        if log.header.indexid and log.header.major_version == 1 and (chained or not is_old):
            voters.append(("log", log.path, log.header.indexid))
    cache = cache_in_order(files)
    if cache is not None:
        voters.append(("cache", cache.path, cache.header.indexid))
    votes = Counter(v for _, _, v in voters)
    if len(votes) < 2:
        return []
    ranked = votes.most_common()
    decided = ranked[0][1] > ranked[1][1]
    majority = ranked[0][0]
    out = []
    for kind, path, value in voters:
        if decided and value == majority:
            continue
        note = "" if decided else " (nothing decides which file is wrong)"
        out.append(
            Finding(
                f"{kind}.indexid-mismatch",
                path,
                f"indexid {value} differs from the other files'{note}",
                offset=16 if kind == "index" else 4,
                field="header.indexid",
                expected=majority if decided else None,
                found=value,
            )
        )
    return out


def _duplicate_sequence(index: IndexState, old: L.LogFile, new: L.LogFile) -> Finding:
    """Both logs carry one sequence number: the index says which is the odd one. When it
    was written against a later sequence, ``.log`` is not the log it belongs to (a copy
    of another mailbox's, or an older one); otherwise ``.log.2`` is."""
    idx = index.files.index
    seq = new.header.file_seq
    wrong = new if idx is not None and idx.header.log_file_seq > seq else old
    return Finding(
        "log.duplicate-sequence",
        wrong.path,
        f"both logs have file_seq {seq}"
        + (f"; dovecot.index was written against seq {idx.header.log_file_seq}"
           if wrong is new else ""),
        offset=8,
        field="header.file_seq",
        expected=idx.header.log_file_seq if wrong is new else None,
        found=seq,
    )


def _missing_log(index: IndexState) -> list[Finding]:
    """An index written against a log, with no log left at all: Dovecot silently starts
    a new one, and whatever the log held after the index was written is gone."""
    idx = index.files.index
    if idx is None or index.files.logs or index.files.errors or not idx.header.log_file_seq:
        return []
    h = idx.header
    return [
        Finding(
            "index.log-missing",
            f"{index.files.prefix}.log",
            f"no transaction log, though {Path(idx.path or index.path).name} was written "
            f"at log seq {h.log_file_seq} offset {h.log_file_head_offset}",
            field="file",
            expected="present",
            found="missing",
        )
    ]


def _positions(index: IndexState) -> list[Finding]:
    """The index's head/tail offsets must lie on record boundaries of its log."""
    idx = index.files.index
    if idx is None or idx.header.major_version != 7:
        return []
    h = idx.header
    if h.log_file_seq == 0 and index.files.logs and _whole_history(index.files.logs):
        return [Finding(
            "index.log-position-odd",
            index.path,
            "log_file_seq 0, but the head log starts the index: Dovecot replays it from "
            "the start (the same data)",
            offset=HEADER_OFFSETS["log_file_seq"][0],
            field="header.log_file_seq",
            expected=f"a log sequence ({index.files.logs[-1].header.file_seq})",
            found=0,
        )]
    if h.log_file_seq == 0 and index.files.logs:
        return [Finding(
            "index.log-seq-zero",
            index.path,
            "log_file_seq 0: no log continues the index, so Dovecot fscks it",
            offset=HEADER_OFFSETS["log_file_seq"][0],
            field="header.log_file_seq",
            expected=f"a log sequence ({index.files.logs[-1].header.file_seq})",
            found=0,
        )]
    # the head log first: when both logs carry the index's sequence, Dovecot reads .log
    log = next((f for f in reversed(index.files.logs) if f.header.file_seq == h.log_file_seq),
               None)
    if log is None or not log_is_usable(log, mailbox_byteorder(index.files)):
        return []  # a log Dovecot recreates: its offsets no longer mean anything
    out = []
    boundaries = {r.offset for r in log.records} | {log.valid_end, log.header.hdr_size}
    head, tail = h.log_file_head_offset, h.log_file_tail_offset
    if head > log.size and tail > log.size and log.trailing == 0:
        # Both positions past the end: one damaged field would move only one of them,
        # so it is the log that lost its end.
        out.append(
            Finding(
                "log.shorter-than-index",
                log.path,
                f"the log ends at {log.size}, before the position the index was written "
                f"at (tail {tail}, head {head}): it lost its end",
                offset=log.size,
                field="records",
                expected=f">= {head} bytes",
                found=log.size,
            )
        )
    elif head > log.valid_end:
        check = "index.head-beyond-log-end" if head <= log.size else "index.log-offset-invalid"
        out.append(
            Finding(
                check,
                index.path,
                f"log_file_head_offset {head} is past the log's complete data ({log.valid_end})",
                offset=HEADER_OFFSETS["log_file_head_offset"][0],
                field="header.log_file_head_offset",
                expected=f"<= {log.valid_end}",
                found=head,
            )
        )
    elif head and head not in boundaries:
        out.append(_offset_finding(index.path, "log_file_head_offset", head))
    elif not head:
        out.append(_offset_finding(index.path, "log_file_head_offset", head,
                                   "index.log-position-odd"))
    elif tail > head or (tail and tail not in boundaries):
        out.append(_offset_finding(index.path, "log_file_tail_offset", tail,
                                   "index.log-position-odd"))
    out += _modseq_position(index, log)
    return out


def _whole_history(logs: list[L.LogFile]) -> bool:
    """The head log starts the index itself (prev_file_seq 0): Dovecot replays it from
    its start without a word. (With a .log.2 before it, Dovecot fscks instead.)"""
    return logs[-1].header.prev_file_seq == 0


def _offset_finding(path: str, name: str, value: int,
                    check: str = "index.log-offset-invalid") -> Finding:
    return Finding(
        check,
        path,
        f"{name} {value} is not a log record boundary" if value else f"{name} is 0",
        offset=HEADER_OFFSETS[name][0],
        field=f"header.{name}",
        found=value,
    )


def _modseq_position(index: IndexState, log: L.LogFile) -> list[Finding]:
    idx = index.files.index
    ext = idx.extension("modseq") if idx else None
    if ext is None or ext.hdr_size != 16:
        return []
    _, log_seq, log_offset = layout(idx.byteorder, "QII").unpack_from(ext.data, 0)
    head = index.files.logs[-1]
    if (log_seq, log_offset) > (head.header.file_seq, head.valid_end):
        return [
            Finding(
                "index.modseq-position-ahead",
                index.path,
                f"modseq header points at seq {log_seq} offset {log_offset}, past the log",
                offset=ext.data_offset + 8,
                field="modseq.log_seq/log_offset",
                expected=f"<= ({head.header.file_seq}, {head.valid_end})",
                found=f"({log_seq}, {log_offset})",
            )
        ]
    return []
