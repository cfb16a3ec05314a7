"""Every check, proven on real damage: a copy of a Dovecot-made store, one file damaged.

Why: a check that never fires on real damage, fires on the wrong file, or drags a
dozen unrelated findings along is worse than none. Each case below copies one store
of ``tests/fixtures``, changes bytes of one real file at a place found through the
package's own parsers (``tests/damage.py``), runs ``check_path`` on the user's home
(with INDEX=/CONTROL= roots for the split stores) and asserts that

(a) the expected check ID is reported,
(b) on the damaged file (or, for a mailbox-level finding, on the mailbox's index), and
(c) nothing else above ``info`` is reported, except the IDs the same damage
    legitimately implies; each case keeps that allow-list short, with the reason.

A handful of cases also run the real Dovecot on a damaged copy and assert what it
logs, so that the severities in the catalogue stay honest.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from byteswap import swap_index, swap_log
from conftest import FIXTURES, ROOT, need_doveadm
from damage import (
    L,
    Store,
    add_u32,
    append,
    cache_file,
    cache_offset_of,
    cache_record,
    copy_store,
    delete,
    ext_record_offset,
    extension,
    first_record,
    header_offset,
    index_file,
    keyword_name_offset_at,
    log_file,
    log_records,
    maildir_file,
    packed_size,
    patch_bytes,
    patch_u8,
    patch_u16,
    patch_u32,
    read_u16,
    read_u32,
    record_offset,
    replace_text,
    truncate,
    uidlist,
    uidlist_line,
    uids,
)
from dovecot_index_tool.check.catalogue import RULES, Severity
from dovecot_index_tool.check.findings import Finding
from dovecot_index_tool.format.index import parse_index
from mail_sandbox import CONFIG

STORES = ("maildir", "maildir-fs", "sdbox", "mdbox", "maildir-split", "mdbox-split")

# IDs that no damage to files makes check_path report (the reply of the change that
# added this file lists them for a decision).
NOT_PRODUCIBLE = {
    "index.modseq-position-ahead": "no fixture index has the modseq extension (CONDSTORE "
    "was never enabled by scripts/make-fixtures)",
    "scanner.unstable": "only the scan worker emits it, for a file that keeps changing "
    "between its re-reads; check_path reports an unstable file as scanner.unreadable "
    "(tests/test_scan.py covers the scan side)",
    "scanner.timeout": "only the scan worker emits it (tests/test_scan.py)",
    "scanner.error": "an exception in a check: a bug, not a state of the files "
    "(tests/test_scan.py injects one)",
    "log.unfinished-write": "needs a writer holding Dovecot's lock while the check runs "
    "(tests/test_cli_check.py holds one)",
    "log.rotated-size-mismatch": "reported only while the index still needs .log.2; every "
    "fixture index was written against .log (damage there is log.old-log-damaged)",
    "log.duplicate-sequence": "as log.rotated-size-mismatch when .log.2 is the odd one; "
    "tests/test_cli_check.py has the .log that is (another mailbox's log copied in)",
}


# -- damage, one function per case: change files of the store (of the mailbox ``box``)
# and return the file the finding must name
# dovecot.index: unusable files
def index_truncated(s: Store, box: str) -> Path:
    """A crash or a full disk left dovecot.index shorter than its header."""
    truncate(s.index(box), 100)
    return s.index(box)


def index_major_version(s: Store, box: str) -> Path:
    patch_u8(s.index(box), header_offset("major_version"), 8)
    return s.index(box)


def index_corrupted_flag(s: Store, box: str) -> Path:
    path = s.index(box)
    patch_u32(path, header_offset("flags"), read_u32(path, header_offset("flags")) | 0x01)
    return path


def index_other_byte_order(s: Store, box: str) -> Path:
    """dovecot.index copied from a big-endian host; its logs stayed little-endian."""
    path = s.index(box)
    path.write_bytes(swap_index(path.read_bytes()))
    return path


def index_base_header_size(s: Store, box: str) -> Path:
    patch_u16(s.index(box), header_offset("base_header_size"), 100)
    return s.index(box)


def index_header_past_eof(s: Store, box: str) -> Path:
    path = s.index(box)
    patch_u32(path, header_offset("header_size"), path.stat().st_size + 8)
    return path


def index_record_size_4(s: Store, box: str) -> Path:
    patch_u32(s.index(box), header_offset("record_size"), 4)
    return s.index(box)


def index_last_uid_zero(s: Store, box: str) -> Path:
    path = s.index(box)
    patch_u32(path, record_offset(path, uids(path)[-1]), 0)
    return path


# dovecot.index: damage Dovecot fscks
def index_last_record_cut(s: Store, box: str) -> Path:
    """The file ends in the middle of its records: the last message is cut off."""
    path = s.index(box)
    truncate(path, path.stat().st_size - index_file(path).header.record_size)
    return path


def index_uidvalidity_zero(s: Store, box: str) -> Path:
    patch_u32(s.index(box), header_offset("uid_validity"), 0)
    return s.index(box)


def index_next_uid_zero(s: Store, box: str) -> Path:
    patch_u32(s.index(box), header_offset("next_uid"), 0)
    return s.index(box)


def index_next_uid_lowered(s: Store, box: str) -> Path:
    path = s.index(box)
    patch_u32(path, header_offset("next_uid"), uids(path)[-1])
    return path


def index_next_uid_raised(s: Store, box: str) -> Path:
    """next_uid raised by one flipped bit (bit 13) while the log still appends after the
    index's tail."""
    path = s.index(box)
    patch_u32(path, header_offset("next_uid"), index_file(path).header.next_uid | 1 << 13)
    return path


def index_uids_unordered(s: Store, box: str) -> Path:
    """The third record repeats the second one's UID."""
    path = s.index(box)
    second, third = uids(path)[1:3]
    patch_u32(path, record_offset(path, third), second)
    return path


def index_seen_count_too_large(s: Store, box: str) -> Path:
    path = s.index(box)
    count = index_file(path).header.messages_count
    patch_u32(path, header_offset("seen_messages_count"), count + 1)
    return path


def index_deleted_count_too_large(s: Store, box: str) -> Path:
    path = s.index(box)
    count = index_file(path).header.messages_count
    patch_u32(path, header_offset("deleted_messages_count"), count + 1)
    return path


def index_first_recent_uid_zero(s: Store, box: str) -> Path:
    patch_u32(s.index(box), header_offset("first_recent_uid"), 0)
    return s.index(box)


def index_lowwater_past_next_uid(s: Store, box: str) -> Path:
    path = s.index(box)
    next_uid = index_file(path).header.next_uid
    patch_u32(path, header_offset("first_unseen_uid_lowwater"), next_uid + 1)
    return path


def index_seen_count_off_by_one(s: Store, box: str) -> Path:
    """Dovecot trusts the counter: clients see one unseen message too many."""
    path = s.index(box)
    add_u32(path, header_offset("seen_messages_count"), -1)
    return path


def index_deleted_count_off_by_one(s: Store, box: str) -> Path:
    path = s.index(box)
    add_u32(path, header_offset("deleted_messages_count"), 1)
    return path


def index_deleted_count_none(s: Store, box: str) -> Path:
    """The fixture's INBOX has two \\Deleted messages; the header now counts none, so
    Dovecot's searches for \\Deleted find nothing."""
    path = s.index(box)
    patch_u32(path, header_offset("deleted_messages_count"), 0)
    return path


def index_unseen_lowwater_high(s: Store, box: str) -> Path:
    path = s.index(box)
    patch_u32(path, header_offset("first_unseen_uid_lowwater"), index_file(path).header.next_uid)
    return path


def index_deleted_lowwater_high(s: Store, box: str) -> Path:
    path = s.index(box)
    patch_u32(path, header_offset("first_deleted_uid_lowwater"), index_file(path).header.next_uid)
    return path


def index_extension_past_header(s: Store, box: str) -> Path:
    """The last extension's hdr_size runs past header_size."""
    path = s.index(box)
    last = index_file(path).extensions[-1]
    patch_u32(path, last.offset, 4096)
    return path


def index_extension_align_zero(s: Store, box: str) -> Path:
    """'Record field alignment is zero' for the vsize extension."""
    path = s.index(box)
    patch_u16(path, extension(path, "vsize").offset + 12, 0)
    return path


def index_extension_duplicate(s: Store, box: str) -> Path:
    """hdr-vsize renamed to mdbox-hdr (same length): two extensions named mdbox-hdr."""
    path = s.index(box)
    ext = extension(path, "hdr-vsize")
    patch_bytes(path, ext.offset + 16, b"mdbox-hdr")
    return path


def index_keywords_count(s: Store, box: str) -> Path:
    """keywords_count larger than the keywords header can hold."""
    path = s.index(box)
    patch_u32(path, extension(path, "keywords").data_offset, 1000)
    return path


def index_keyword_name_offset(s: Store, box: str) -> Path:
    path = s.index(box)
    at = keyword_name_offset_at(path, 1)
    patch_u32(path, at, read_u32(path, at) + 1)
    return path


def index_dirty_flag(s: Store, box: str) -> Path:
    """A record carries DIRTY (0x80) but the header lacks HAVE_DIRTY."""
    path = s.index(box)
    at = record_offset(path, uids(path)[0]) + 4
    patch_u8(path, at, path.read_bytes()[at] | 0x80)
    return path


def index_fsckd_flag(s: Store, box: str) -> Path:
    path = s.index(box)
    patch_u32(path, header_offset("flags"), read_u32(path, header_offset("flags")) | 0x04)
    return path


def index_deleted(s: Store, box: str) -> Path:
    delete(s.index(box))
    return s.index(box)


def logs_deleted(s: Store, box: str) -> Path:
    for log in (s.log(box), s.log2(box)):
        if log.exists():
            delete(log)
    return s.log(box)


def index_counts_too_few(s: Store, box: str) -> Path:
    """The header counts two messages fewer than the records the file holds."""
    path = s.index(box)
    add_u32(path, header_offset("messages_count"), -2)
    return path


def log_initial_modseq_moved(s: Store, box: str) -> Path:
    path = s.log(box)
    add_u32(path, 24, 5)  # header.initial_modseq (low half)
    return path


def uidlist_deleted(s: Store, box: str) -> Path:
    delete(s.uidlist(box))
    return s.uidlist(box)


def state_files_elsewhere(s: Store, box: str) -> Path:
    """The mailbox's index and control files are not where it is looked at (INDEX= and
    CONTROL= trees the caller did not give)."""
    for path in s.index_dir(box).glob("dovecot.index*"):
        delete(path)
    delete(s.uidlist(box))
    return s.index_dir(box)


def index_keyword_name_paren(s: Store, box: str) -> Path:
    """The second character of the first keyword name becomes '(': no IMAP atom."""
    path = s.index(box)
    at = extension(path, "keywords").data_offset + 4 + 8 * len(index_file(path).keywords)
    patch_bytes(path, at + 1, b"(")
    return path


def uidlist_guid_changed(s: Store, box: str) -> Path:
    """One hex digit of the mailbox GUID in the uidlist header changes."""
    path = s.uidlist(box)
    guid = uidlist(path).guid
    changed = ("1" if guid[0] != "1" else "2") + guid[1:]
    replace_text(path, f"G{guid}".encode(), f"G{changed}".encode())
    return path


def index_record_flag_flipped(s: Store, box: str) -> Path:
    """\\Flagged toggled in the first record; its file in cur/ keeps its name."""
    path = s.index(box)
    at = index_file(path).records[0].offset + 4
    patch_bytes(path, at, bytes([path.read_bytes()[at] ^ 0x02]))
    return path


def index_extension_unknown(s: Store, box: str) -> Path:
    """A name nothing knows, several bytes away from every known one."""
    path = s.index(box)
    patch_bytes(path, extension(path, "hdr-vsize").offset + 16, b"hdr-xyzzy")
    return path


def index_extension_renamed(s: Store, box: str) -> Path:
    """One flipped bit in the mdbox header extension's name: mdbox-hdr -> edbox-hdr."""
    path = s.index(box)
    at = extension(path, "mdbox-hdr").offset + 16
    patch_bytes(path, at, bytes([path.read_bytes()[at] ^ 0x08]))
    return path


# transaction log
def log_cut_before_index(s: Store, box: str) -> Path:
    """The log cut at a record boundary before the position the index was written at."""
    path = s.log(box)
    tail = index_file(s.index(box)).header.log_file_tail_offset
    truncate(path, max(r.offset for r in log_records(path) if r.offset < tail))
    return path


def log_append_uid_changed(s: Store, box: str) -> Path:
    """The UID of the log's last append gets bit 6: u.N stays on disk, unlisted."""
    path = s.log(box)
    rec = log_records(path, L.APPEND)[-1]
    at = rec.offset + L.RECORD_HEADER_SIZE
    patch_bytes(path, at, bytes([path.read_bytes()[at] ^ 0x40]))
    return path


def log_cut_before_last_append(s: Store, box: str) -> Path:
    """The log cut before the transaction of its last append: u.N stays, unlogged."""
    path = s.log(box)
    records = log_records(path)
    last = max(i for i, r in enumerate(records) if r.base_code == L.APPEND)
    start = last - 1 if last and records[last - 1].name == "boundary" else last
    truncate(path, records[start].offset)
    return path


def log_prev_seq_changed(s: Store, box: str) -> Path:
    """.log's prev_file_seq no longer names .log.2 (its predecessor by number)."""
    path = s.log(box)
    patch_u32(path, 12, 77)
    return path


def log_seq_lowered(s: Store, box: str) -> Path:
    """The only log's file_seq set to 1 (first log, prev 0); the index says another."""
    path = s.log(box)
    patch_u32(path, 8, 1)
    return path


def log_keyword_name_control(s: Store, box: str) -> Path:
    """A keyword update's name gets a control character in the middle."""
    path = s.log(box)
    rec = next(r for r in log_records(path, L.KEYWORD_UPDATE))
    patch_bytes(path, rec.offset + L.RECORD_HEADER_SIZE + 4 + 2, b"\x01")
    return path


def log_truncated(s: Store, box: str) -> Path:
    truncate(s.log(box), 20)
    return s.log(box)


def log_major_version(s: Store, box: str) -> Path:
    patch_u8(s.log(box), 0, 2)
    return s.log(box)


def log_header_size_small(s: Store, box: str) -> Path:
    patch_u16(s.log(box), 2, 20)
    return s.log(box)


def log_marked_corrupted(s: Store, box: str) -> Path:
    """What Dovecot itself writes when it finds a log corrupted: indexid 0."""
    patch_u32(s.log(box), 4, 0)
    return s.log(box)


def log_file_seq_reserved(s: Store, box: str) -> Path:
    """The one sequence number Dovecot's log view cannot hold: it aborts."""
    patch_u32(s.log(box), 8, 0xFFFFFFFF)
    return s.log(box)


def log_other_byte_order(s: Store, box: str) -> Path:
    """The log from a big-endian host beside a little-endian index and cache (a log
    that starts a new index needs no extension names to be swapped)."""
    path = s.log(box)
    assert log_file(path).header.prev_file_seq == 0
    path.write_bytes(swap_log(path.read_bytes()))
    return path


def log_record_size_4(s: Store, box: str) -> Path:
    """The last record's size field says 4 bytes: 'hdr.size too small'."""
    path = s.log(box)
    patch_bytes(path, log_records(path)[-1].offset, packed_size(4))
    return path


def log_expunge_unprotected(s: Store, box: str) -> Path:
    """An expunge-guid record lost its protection bits (0xCD90)."""
    path = s.log(box)
    rec = first_record(path, L.EXPUNGE_GUID)
    patch_u32(path, rec.offset + 4, rec.type & ~L.EXPUNGE_PROT)
    return path


def log_uid_range_reversed(s: Store, box: str) -> Path:
    """A flag update whose range runs backwards (uid1 > uid2)."""
    path = s.log(box)
    rec = first_record(path, L.FLAG_UPDATE)
    uid2 = read_u32(path, rec.offset + 12)
    patch_u32(path, rec.offset + 8, uid2 + 1)
    return path


def log_unknown_type(s: Store, box: str) -> Path:
    path = s.log(box)
    rec = log_records(path)[-1]
    patch_u32(path, rec.offset + 4, L.EXTERNAL | 0x00400000)
    return path


def log_applied_record_unknown_type(s: Store, box: str) -> Path:
    """The type of a record the index has already applied (before its head offset)."""
    path = s.log(box)
    head = parse_index(s.index(box).read_bytes()).header.log_file_head_offset
    rec = [r for r in log_records(path) if r.offset + r.size <= head][-1]
    patch_u32(path, rec.offset + 4, L.EXTERNAL | 0x00400000)
    return path


def log_tail_update_past_record(s: Store, box: str) -> Path:
    """The first external update of the tail offset now points 64 KiB further."""
    from dovecot_index_tool.format.log import parse_log, tail_offset_update

    path = s.log(box)
    log = parse_log(path.read_bytes(), str(path))
    rec = next(r for r in log.records if tail_offset_update(r, log.byteorder) is not None)
    value = tail_offset_update(rec, log.byteorder)
    patch_u32(path, rec.offset + 12, value + 0x10000)
    return path


def log_ext_rec_bad_uid(s: Store, box: str) -> Path:
    """An extension record update for a UID far beyond next_uid."""
    path = s.log(box)
    rec = first_record(path, L.EXT_REC_UPDATE)
    patch_u32(path, rec.offset + 8, 0xFFFFFF00)
    return path


def log_partial_write(s: Store, box: str) -> Path:
    """A write cut short: the start of a copy of the last record at the end of the log."""
    path = s.log(box)
    last = log_records(path)[-1]
    append(path, path.read_bytes()[last.offset : last.offset + last.size - 4])
    return path


def log_reset_after_log2(s: Store, box: str) -> Path:
    """.log says it started a new index generation (prev_file_seq 0) after .log.2."""
    path = s.log(box)
    patch_u32(path, 12, 0)
    patch_u32(path, 16, 0)
    return path


def log_hardlinked(s: Store, box: str) -> Path:
    delete(s.log2(box))
    os.link(s.log(box), s.log2(box))
    return s.log2(box)


def log2_cut(s: Store, box: str) -> Path:
    """.log.2 lost its last record after the rotation: its size no longer matches."""
    path = s.log2(box)
    truncate(path, log_records(path)[-1].offset)
    return path


def log2_wrong_sequence(s: Store, box: str) -> Path:
    path = s.log2(box)
    add_u32(path, 8, -1)
    return path


def log2_duplicate_sequence(s: Store, box: str) -> Path:
    path = s.log2(box)
    patch_u32(path, 8, log_file(s.log(box)).header.file_seq)
    return path


# how the files relate
def index_indexid_changed(s: Store, box: str) -> Path:
    """The index alone has another indexid: the two logs and the cache outvote it."""
    add_u32(s.index(box), header_offset("indexid"), 1)
    return s.index(box)


def log_indexid_changed(s: Store, box: str) -> Path:
    """The log alone has another indexid: index and cache outvote it."""
    add_u32(s.log(box), 4, 1)
    return s.log(box)


def cache_indexid_changed(s: Store, box: str) -> Path:
    add_u32(s.cache(box), 4, 1)
    return s.cache(box)


def index_log_seq_ahead(s: Store, box: str) -> Path:
    """The index claims a log sequence that does not exist."""
    add_u32(s.index(box), header_offset("log_file_seq"), 3)
    return s.index(box)


def index_tail_off_boundary(s: Store, box: str) -> Path:
    path = s.index(box)
    head = index_file(path).header.log_file_head_offset
    patch_u32(path, header_offset("log_file_tail_offset"), head - 4)
    return path


def index_uidvalidity_changed(s: Store, box: str) -> Path:
    path = s.index(box)
    value = index_file(path).header.uid_validity
    patch_u32(path, header_offset("uid_validity"), value + 1)
    return path


def index_log_seq_zeroed(s: Store, box: str) -> Path:
    path = s.index(box)
    patch_u32(path, header_offset("log_file_seq"), 0)
    return path


def index_head_off_boundary(s: Store, box: str) -> Path:
    path = s.index(box)
    head = index_file(path).header.log_file_head_offset
    patch_u32(path, header_offset("log_file_head_offset"), head - 4)
    return path


def log_write_lost_before_head(s: Store, box: str) -> Path:
    """A record the index has already applied was never completely written."""
    path = s.log(box)
    head = index_file(s.index(box)).header.log_file_head_offset
    before = [r for r in log_records(path) if r.offset < head][-1]
    patch_bytes(path, before.offset, bytes(4))
    return s.index(box)


# cache
def cache_truncated(s: Store, box: str) -> Path:
    truncate(s.cache(box), 16)
    return s.cache(box)


def cache_major_version(s: Store, box: str) -> Path:
    patch_u8(s.cache(box), 0, 2)
    return s.cache(box)


def cache_file_seq_zero(s: Store, box: str) -> Path:
    patch_u32(s.cache(box), 8, 0)
    return s.cache(box)


def cache_field_header_loop(s: Store, box: str) -> Path:
    """The first field header's next_offset points to itself."""
    path = s.cache(box)
    first = cache_file(path, s.index(box)).field_headers[0].offset
    patch_bytes(path, first, packed_size(first))
    return path


def cache_record_size_4(s: Store, box: str) -> Path:
    path = s.cache(box)
    offset = cache_offset_of(s.index(box), 1)
    patch_u32(path, offset + 4, 4)
    return path


def cache_mime_parts_virtual_too_small(s: Store, box: str) -> Path:
    """uid 1's cached MIME tree says its header is 0 bytes once CRLFs are counted."""
    path = s.cache(box)
    cache = cache_file(path, s.index(box))
    names = {f.index: f.name for f in cache.fields}
    record = cache.chain(cache_offset_of(s.index(box), 1)).records
    value = next(v for r in record for v in r.values if names[v.field_index] == "mime.parts")
    patch_bytes(path, value.offset + 12, bytes(8))  # root: flags, hdr physical, hdr virtual
    return path


def cache_offset_of_another_message(s: Store, box: str) -> Path:
    """A message's cache offset in dovecot.index set to another message's first record."""
    from dovecot_index_tool.format.binary import layout
    from dovecot_index_tool.format.index import parse_index

    path = s.index(box)
    parsed = parse_index(path.read_bytes(), str(path))
    ext, u32 = parsed.extension("cache"), layout(parsed.byteorder, "I")
    own = [(rec, u32.unpack(ext.record_value(rec.data))[0]) for rec in parsed.records]
    own = [(rec, value) for rec, value in own if value and value == cache_offset_of(path, rec.uid)]
    (_, first), (second, _) = own[0], own[1]
    patch_u32(path, second.offset + ext.record_offset, first)
    return path


def cache_cut_in_last_record(s: Store, box: str) -> Path:
    """The cache cut 12 bytes short: its last record now runs past the end."""
    path = s.cache(box)
    truncate(path, path.stat().st_size - 12)
    return path


def cache_record_loop(s: Store, box: str) -> Path:
    """A message's newest cache record names itself as the older one."""
    path = s.cache(box)
    offset = cache_offset_of(s.index(box), 1)
    assert cache_record(path, offset).prev_offset, "uid 1 should have a chain of records"
    patch_u32(path, offset, offset)
    return path


def cache_file_seq_bumped(s: Store, box: str) -> Path:
    add_u32(s.cache(box), 8, 1)
    return s.cache(box)


# maildir
def uidlist_bad_version(s: Store, box: str) -> Path:
    replace_text(s.uidlist(box), b"3 V", b"x V")
    return s.uidlist(box)


def uidlist_uids_unordered(s: Store, box: str) -> Path:
    """The line of an expunged message (uid 4) now says uid 3, after uid 3's line."""
    path = s.uidlist(box)
    line = uidlist_line(path, 4)
    replace_text(path, line, b"3" + line[1:])
    return path


def uidlist_file_twice(s: Store, box: str) -> Path:
    """uid 1's file listed again under a new UID."""
    path = s.uidlist(box)
    line = uidlist_line(path, 1)
    append(path, str(uidlist(path).next_uid).encode() + line[1:])
    return path


def uidlist_uidvalidity_changed(s: Store, box: str) -> Path:
    path = s.uidlist(box)
    old = uidlist(path).uid_validity
    replace_text(path, f"V{old} ".encode(), f"V{old + 1} ".encode())
    return path


def uidlist_filename_damaged(s: Store, box: str) -> Path:
    """Two characters of uid 5's file name overwritten, as a bad sector would."""
    path = s.uidlist(box)
    name = next(r.filename for r in uidlist(path).records if r.uid == 5).encode()
    replace_text(path, name, name[:3] + b"~~" + name[5:])
    return path


def uidlist_line_lost(s: Store, box: str) -> Path:
    path = s.uidlist(box)
    replace_text(path, uidlist_line(path, 5), b"")
    return path


def maildir_expunged_file_back(s: Store, box: str) -> Path:
    """The file of expunged uid 4 (still in dovecot-uidlist) is back in cur/."""
    ul = uidlist(s.uidlist(box))
    gone = next(r for r in ul.records if r.uid == 4)
    source = maildir_file(s, box, next(r for r in ul.records if r.uid == 5).filename)
    shutil.copy(source, source.parent.parent / "cur" / f"{gone.filename}:2,S")
    return s.index(box)


def maildir_file_deleted(s: Store, box: str) -> Path:
    ul = uidlist(s.uidlist(box))
    delete(maildir_file(s, box, next(r for r in ul.records if r.uid == 1).filename))
    return s.mail_dir(box)


def uidlist_names_missing_file(s: Store, box: str) -> Path:
    """A uidlist line for a file that is not on disk (and not in the index)."""
    path = s.uidlist(box)
    line = uidlist_line(path, 1)
    append(path, b"7" + line[1:].replace(b":", b":gone.", 1))
    return path


def keywords_file_broken(s: Store, box: str) -> Path:
    path = s.control_dir(box) / "dovecot-keywords"
    append(path, b"x broken\n")
    return path


# dbox
def sdbox_file_deleted(s: Store, box: str) -> Path:
    delete(s.mail_dir(box) / "u.5")
    return s.mail_dir(box) / "u.5"


def sdbox_file_unknown(s: Store, box: str) -> Path:
    """A u.N file the index does not know (a copy of a real one)."""
    shutil.copy(s.mail_dir(box) / "u.1", s.mail_dir(box) / "u.7")
    return s.mail_dir(box) / "u.7"


def sdbox_guid_zeroed(s: Store, box: str) -> Path:
    path = s.index(box)
    patch_bytes(path, extension(path, "dbox-hdr").data_offset + 4, bytes(16))
    return path


def sdbox_file_header_broken(s: Store, box: str) -> Path:
    """A u.N file whose header line was overwritten (a dbox version that does not exist)."""
    path = s.mail_dir(box) / "u.1"
    patch_bytes(path, 0, b"9")
    return path


def mdbox_file_header_broken(s: Store, box: str | None) -> Path:
    path = sorted(s.storage_dir.glob("m.*"))[0]
    patch_bytes(path, 0, b"\0\0\0\0")
    return path


def mailbox_dir_unlisted(s: Store, box: str | None) -> Path:
    """A mailbox directory restored from a backup that the list index no longer knows."""
    shutil.copytree(s.root / ".One", s.root / ".Restored")
    return s.root / "dovecot.list.index"


def mdbox_map_deleted(s: Store, box: str | None) -> Path:
    for name in ("dovecot.map.index", "dovecot.map.index.log", "dovecot.map.index.log.2"):
        path = s.map_index().parent / name
        if path.exists():
            delete(path)
    return s.map_index()


def mdbox_map_uid_unknown(s: Store, box: str) -> Path:
    path = s.index(box)
    patch_u32(path, ext_record_offset(path, uids(path)[0], "mdbox"), 99999)
    return path


def mdbox_map_uidvalidity_changed(s: Store, box: str) -> Path:
    path = s.index(box)
    add_u32(path, extension(path, "mdbox-hdr").data_offset, 1)
    return path


def mdbox_refcount_lowered(s: Store, box: str | None) -> Path:
    path = s.map_index()
    at = ext_record_offset(path, uids(path)[0], "ref")
    patch_u16(path, at, read_u16(path, at) - 1)
    return path


def mdbox_refcount_raised(s: Store, box: str | None) -> Path:
    path = s.map_index()
    at = ext_record_offset(path, uids(path)[1], "ref")
    patch_u16(path, at, read_u16(path, at) + 1)
    return path


def mdbox_storage_file_deleted(s: Store, box: str | None) -> Path:
    delete(sorted(s.storage_dir.glob("m.*"))[-1])
    return s.map_index()


def mdbox_storage_file_cut(s: Store, box: str | None) -> Path:
    path = s.storage_dir / "m.5"
    truncate(path, path.stat().st_size // 2)
    return path


def mdbox_map_file_id_zero(s: Store, box: str | None) -> Path:
    path = s.map_index()
    patch_u32(path, ext_record_offset(path, uids(path)[0], "map"), 0)
    return path


# list index
def list_names_unordered(s: Store, box: str | None) -> Path:
    """The first name of the list header gets an id above the next one's."""
    path = s.list_index()
    ext = extension(path, "list")
    second = ext.data.index(b"\0", 5) + 1
    patch_u32(path, ext.data_offset + 1, read_u32(path, ext.data_offset + second) + 1)
    return path


def list_parent_missing(s: Store, box: str | None) -> Path:
    path = s.list_index()
    at = ext_record_offset(path, uids(path)[2], "list") + 4
    patch_u32(path, at, 999)
    return path


# the scanner
def cache_not_a_file(s: Store, box: str) -> Path:
    """The cache cannot be read: it is a directory (root reads through permissions)."""
    path = s.cache(box)
    delete(path)
    path.mkdir()
    return path


# -- the table -------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    check: str
    store: str  # a store of tests/fixtures/stores.json
    mailbox: str | None  # None: a file of the user (mdbox map and m.N, list index)
    damage: Callable[[Store, str | None], Path]  # returns the file the finding must name
    allowed: tuple[str, ...] = ()  # other IDs above info the same damage implies (see why)
    why: str = ""


CASES = (
    # dovecot.index, unusable
    Case("index.file-too-small", "maildir", "INBOX", index_truncated),
    Case("index.major-version", "sdbox", "INBOX", index_major_version),
    Case("index.corrupted-flag", "mdbox", "INBOX", index_corrupted_flag),
    Case("index.byte-order", "maildir", "One", index_other_byte_order),
    Case("index.header-sizes", "sdbox", "INBOX", index_base_header_size),
    Case("index.header-outside-file", "mdbox", "One", index_header_past_eof),
    Case("index.record-size-too-small", "maildir-fs", "One", index_record_size_4),
    Case("index.last-uid-zero", "mdbox-split", "INBOX", index_last_uid_zero),
    # dovecot.index, fsck-able
    Case("index.records-truncated", "sdbox", "INBOX", index_last_record_cut),
    Case("index.uidvalidity-zero", "sdbox", "One", index_uidvalidity_zero),
    Case(
        "index.next-uid-zero",
        "mdbox",
        "One",
        index_next_uid_zero,
        ("index.first-recent-uid-invalid", "index.lowwater-beyond-next-uid", "log.replay-error"),
        "first_recent_uid and the low-water mark now exceed next_uid too; the log's updates "
        "of uid 1 are replayed over next_uid 0 (Dovecot fscks next_uid first)",
    ),
    Case("index.next-uid-below-record", "mdbox", "INBOX", index_next_uid_lowered),
    Case(
        "index.next-uid-ahead",
        "sdbox",
        "INBOX",
        index_next_uid_raised,
        ("sdbox.mail-file-not-in-index",),
        "the refused append leaves the newest mail file out of the state, as Dovecot does",
    ),
    Case("index.uids-unordered", "mdbox", "INBOX", index_uids_unordered),
    Case("index.seen-count-too-large", "maildir", "INBOX", index_seen_count_too_large),
    Case("index.deleted-count-too-large", "sdbox", "INBOX", index_deleted_count_too_large),
    Case("index.first-recent-uid-invalid", "maildir", "One", index_first_recent_uid_zero),
    Case("index.lowwater-beyond-next-uid", "mdbox", "One", index_lowwater_past_next_uid),
    Case("index.seen-count-wrong", "mdbox", "INBOX", index_seen_count_off_by_one),
    Case("index.deleted-count-wrong", "maildir", "INBOX", index_deleted_count_none),
    Case("index.deleted-count-high", "maildir", "INBOX", index_deleted_count_off_by_one),
    Case("index.unseen-lowwater-too-high", "sdbox", "INBOX", index_unseen_lowwater_high),
    Case("index.deleted-lowwater-too-high", "maildir-split", "INBOX", index_deleted_lowwater_high),
    Case("index.extension-outside-header", "maildir", "INBOX", index_extension_past_header),
    Case("index.extension-invalid", "sdbox", "INBOX", index_extension_align_zero),
    Case("index.extension-duplicate", "mdbox", "INBOX", index_extension_duplicate),
    Case("index.keywords-header-invalid", "maildir", "INBOX", index_keywords_count),
    Case("index.keyword-name-offset", "sdbox", "INBOX", index_keyword_name_offset),
    Case("index.dirty-flag-unmarked", "maildir", "One", index_dirty_flag),
    Case("index.fsckd", "sdbox", "One", index_fsckd_flag),
    Case("index.missing", "maildir", "One", index_deleted),
    Case("index.unknown-extension", "mdbox", "One", index_extension_unknown),
    Case("index.extension-renamed", "mdbox", "INBOX", index_extension_renamed),
    Case("index.keyword-name-invalid", "sdbox", "INBOX", index_keyword_name_paren),
    Case("maildir.flags-differ", "maildir", "INBOX", index_record_flag_flipped),
    Case("list.mailbox-guid-differs", "maildir", "One", uidlist_guid_changed),
    # transaction log
    Case("log.file-too-small", "maildir", "One", log_truncated),
    Case("log.major-version", "sdbox", "One", log_major_version),
    Case("log.header-size-invalid", "mdbox", "One", log_header_size_small),
    Case("log.marked-corrupted", "maildir", "INBOX", log_marked_corrupted),
    Case("log.byte-order", "sdbox", "One", log_other_byte_order),
    Case("log.file-seq-reserved", "mdbox", "One", log_file_seq_reserved),
    Case("log.record-size-invalid", "mdbox", "Lists/dovecot", log_record_size_4),
    Case(
        "log.record-invalid",
        "maildir",
        "Lists/dovecot",
        log_expunge_unprotected,
        ("maildir.index-uid-not-in-uidlist",),
        "the rest of the log is lost with the bad record, and with it the expunge of uid 3: "
        "the next sync expunges it again",
    ),
    Case("log.uid-range-invalid", "sdbox", "INBOX", log_uid_range_reversed),
    Case("log.unknown-record-type", "mdbox", "One", log_unknown_type),
    Case("log.applied-record-damaged", "maildir", "INBOX", log_applied_record_unknown_type),
    Case("log.tail-update-invalid", "maildir", "INBOX", log_tail_update_past_record),
    Case("log.replay-error", "sdbox", "Lists/dovecot", log_ext_rec_bad_uid),
    Case("log.keyword-name-invalid", "mdbox", "One", log_keyword_name_control),
    Case("log.shorter-than-index", "maildir", "INBOX", log_cut_before_index),
    Case("log.append-uid-wrong", "sdbox", "INBOX", log_append_uid_changed),
    Case("log.prev-seq-wrong", "sdbox", "INBOX", log_prev_seq_changed),
    Case("log.append-missing", "sdbox", "INBOX", log_cut_before_last_append,
         ("sdbox.mail-file-not-in-index",), "the file the log no longer appends"),
    Case("log.sequence-disputed", "mdbox", "One", log_seq_lowered, ("index.log-lost",),
         "the index's finding: Dovecot loses the log"),
    Case("log.garbage-at-eof", "maildir", "Empty", log_partial_write),
    Case("log.reset", "maildir", "INBOX", log_reset_after_log2),
    Case("log.hardlinked", "sdbox", "INBOX", log_hardlinked),
    Case("log.old-log-damaged", "mdbox", "INBOX", log2_cut),
    Case("log.rotated-sequence", "maildir", "INBOX", log2_wrong_sequence),

    # how the files relate
    Case("index.indexid-mismatch", "maildir", "INBOX", index_indexid_changed),
    Case("log.indexid-mismatch", "sdbox", "One", log_indexid_changed),
    Case("cache.indexid-mismatch", "mdbox", "INBOX", cache_indexid_changed),
    Case("index.log-lost", "mdbox", "One", index_log_seq_ahead, ("log.sequence-disputed",),
         "One has only .log: nothing but the index and the log holds the sequence"),
    Case(
        "index.log-missing",
        "sdbox",
        "INBOX",
        logs_deleted,
        ("sdbox.mail-file-not-in-index",),
        "uid 21 came after the index was written: only the deleted log recorded it",
    ),
    Case("index.log-offset-invalid", "sdbox", "One", index_head_off_boundary),
    Case("index.log-position-odd", "sdbox", "One", index_tail_off_boundary),
    Case("index.log-seq-zero", "mdbox", "INBOX", index_log_seq_zeroed),
    Case("index.uidvalidity-mismatch", "mdbox", "INBOX", index_uidvalidity_changed),
    Case("index.messages-count-low", "sdbox", "INBOX", index_counts_too_few),
    Case(
        "index.head-beyond-log-end",
        "maildir",
        "One",
        log_write_lost_before_head,
        ("log.garbage-at-eof",),
        "the zeroed size ends the log's readable records there; no writer holds the lock, "
        "so what follows is garbage in the log, as Dovecot finds once it locks",
    ),
    # cache
    Case("cache.file-too-small", "maildir", "INBOX", cache_truncated),
    Case("cache.version", "sdbox", "INBOX", cache_major_version),
    Case("cache.file-seq-zero", "mdbox", "INBOX", cache_file_seq_zero),
    Case("cache.field-header-invalid", "maildir", "INBOX", cache_field_header_loop),
    Case("cache.record-invalid", "sdbox", "INBOX", cache_record_size_4),
    Case("cache.record-past-eof", "sdbox", "INBOX", cache_cut_in_last_record),
    Case("cache.record-shared", "maildir", "INBOX", cache_offset_of_another_message),
    Case("cache.mime-parts-invalid", "maildir", "INBOX", cache_mime_parts_virtual_too_small),
    Case("cache.record-chain-loop", "mdbox", "INBOX", cache_record_loop),
    Case("cache.stale", "maildir", "One", cache_file_seq_bumped),
    # maildir
    Case("uidlist.unusable", "maildir", "INBOX", uidlist_bad_version),
    Case("uidlist.record-invalid", "maildir-fs", "INBOX", uidlist_uids_unordered),
    Case("uidlist.duplicate-file", "maildir-split", "INBOX", uidlist_file_twice),
    Case("maildir.uidvalidity-mismatch", "maildir", "INBOX", uidlist_uidvalidity_changed),
    Case("maildir.index-uid-not-in-uidlist", "maildir-fs", "INBOX", uidlist_line_lost),
    Case("maildir.message-lost-from-index", "maildir", "INBOX", maildir_expunged_file_back),
    Case("maildir.mail-file-missing", "maildir-split", "INBOX", maildir_file_deleted),
    Case("uidlist.filename-wrong", "maildir", "INBOX", uidlist_filename_damaged),
    Case("maildir.uidlist-file-missing", "maildir", "One", uidlist_names_missing_file),
    Case("maildir.keywords-invalid", "maildir-split", "INBOX", keywords_file_broken),
    # dbox
    Case("sdbox.mail-file-missing", "sdbox", "INBOX", sdbox_file_deleted),
    Case("sdbox.mail-file-not-in-index", "sdbox", "One", sdbox_file_unknown,
         ("log.append-missing",), "a UID above next_uid: what a save that stopped before "
         "its append leaves too"),
    Case("dbox.file-invalid", "sdbox", "INBOX", sdbox_file_header_broken),
    Case("list.mailbox-missing", "maildir", None, mailbox_dir_unlisted),
    Case("sdbox.mailbox-guid-missing", "sdbox", "INBOX", sdbox_guid_zeroed),
    Case("mdbox.map-missing", "mdbox", None, mdbox_map_deleted),
    Case(
        "mdbox.map-uid-lost",
        "mdbox-split",
        "INBOX",
        mdbox_map_uid_unknown,
        ("mdbox.refcount-too-high",),
        "the map entry the record pointed to lost its only reference",
    ),
    Case("mdbox.map-uidvalidity-mismatch", "mdbox", "INBOX", mdbox_map_uidvalidity_changed),
    Case("mdbox.refcount-too-low", "mdbox-split", None, mdbox_refcount_lowered),
    Case("mdbox.refcount-too-high", "mdbox-split", None, mdbox_refcount_raised),
    Case("mdbox.map-file-missing", "mdbox-split", None, mdbox_storage_file_deleted),
    Case("mdbox.map-offset-invalid", "mdbox", None, mdbox_storage_file_cut),
    Case("mdbox.map-invalid", "mdbox-split", None, mdbox_map_file_id_zero),
    # list index
    Case("list.header-invalid", "sdbox", None, list_names_unordered),
    Case("list.record-invalid", "sdbox", None, list_parent_missing),
    # the scanner
    Case("scanner.unreadable", "maildir", "INBOX", cache_not_a_file),
    Case("scanner.state-elsewhere", "maildir", "INBOX", state_files_elsewhere),
    Case("maildir.uidlist-missing", "maildir", "INBOX", uidlist_deleted),
    Case("log.initial-modseq-wrong", "maildir", "INBOX", log_initial_modseq_moved),
)


def _same(a: str | os.PathLike[str] | None, b: Path) -> bool:
    return a is not None and os.path.realpath(a) == os.path.realpath(b)


def _show(findings: list[Finding]) -> str:
    return "\n".join(
        f"  {f.check} [{f.severity}] {f.file} @{f.offset} {f.field}: {f.message}" for f in findings
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.check)
def test_damage_is_reported(case: Case, tmp_path: Path) -> None:
    store = copy_store(FIXTURES, case.store, tmp_path)
    damaged = case.damage(store, case.mailbox)
    findings = store.findings()
    hits = [f for f in findings if f.check == case.check]
    assert hits, f"{case.check} not reported; found:\n{_show(findings)}"
    assert any(_same(f.file, damaged) for f in hits), (
        f"{case.check} is not on {damaged}:\n{_show(hits)}"
    )
    elsewhere = [f for f in hits if f.severity != Severity.INFO and not _same(f.file, damaged)]
    assert not elsewhere, f"{case.check} also blames healthy files:\n{_show(elsewhere)}"
    above_info = {f.check for f in findings if f.severity != Severity.INFO} - {case.check}
    assert above_info <= set(case.allowed), f"unexpected findings:\n{_show(findings)}"
    assert set(case.allowed) <= above_info, f"allow-list too wide: {case.allowed}"


def test_cases_cover_the_catalogue() -> None:
    covered = {case.check for case in CASES}
    assert len(covered) == len(CASES), "one case per check ID"
    assert covered.isdisjoint(NOT_PRODUCIBLE)
    assert covered | set(NOT_PRODUCIBLE) == set(RULES)


@pytest.mark.parametrize("store", STORES)
def test_healthy_store_reports_nothing_above_info(store: str, tmp_path: Path) -> None:
    findings = copy_store(FIXTURES, store, tmp_path).findings()
    assert [f for f in findings if f.severity != Severity.INFO] == [], _show(findings)


# -- the real Dovecot on the same damage ------------------------------------------------
MAIL_USER = "dovecot-fixtures"  # scripts/make-fixtures' mail user; a bare uid works as well
MAIL_UID = 5000
STATUS = ("mailbox", "status", "messages", "INBOX")
FETCH = ("fetch", "date.received", "mailbox", "INBOX", "all")
FETCH_BODY = ("fetch", "uid body", "mailbox", "INBOX", "all")


@dataclass(frozen=True)
class DovecotCase:
    """What Dovecot does when a doveadm command opens the damaged copy of a case.

    ``logs`` must all appear on stderr ({file} is the damaged file); none means that
    Dovecot repairs silently. For a fatal check Dovecot must also throw the damaged
    file away or rewrite it, which is what "fatal" promises.
    """

    check: str  # the case of CASES whose damaged copy Dovecot opens
    command: tuple[str, ...]  # a doveadm mail command that reads the damaged file
    logs: tuple[str, ...]


DOVECOT_CASES = (
    DovecotCase("index.file-too-small", STATUS, ("Corrupted index file {file}: File too small",)),
    DovecotCase(
        "index.extension-invalid",
        STATUS,
        (
            "Corrupted index file {file}: Broken extension #5 (vsize): "
            "Record field alignment is zero",
            "Warning: fscking index file {file}",
        ),
    ),
    DovecotCase(
        "log.record-invalid",
        ("mailbox", "status", "messages", "Lists/dovecot"),
        ("Corrupted transaction log file {file} seq ", "expunge guid record missing protection"),
    ),
    DovecotCase(
        "log.uid-range-invalid",
        STATUS,
        ("Corrupted transaction log file {file} seq ", "Invalid UID range (3 .. 2, type=0x4)"),
    ),
    DovecotCase(
        "log.replay-error",
        ("mailbox", "status", "messages", "Lists/dovecot"),
        ("Log synchronization error at seq=", "Extension record update for invalid uid="),
    ),
    DovecotCase(
        "cache.field-header-invalid",
        FETCH,
        ("Deleting corrupted cache: next_offset in field header loops",),
    ),
    DovecotCase("cache.record-invalid", FETCH, ("Deleting corrupted cache: invalid record size",)),
    DovecotCase(
        "cache.mime-parts-invalid",
        ("fetch", "body", "mailbox", "INBOX", "uid", "1"),
        ("Deleting corrupted cache record uid=1", "Corrupted cached mime.parts data: "
         "header_size.virtual_size too small"),
    ),
    DovecotCase("cache.indexid-mismatch", FETCH, ()),  # deleted (and made again) silently
    DovecotCase(
        "uidlist.unusable",
        STATUS,
        ("Broken file {file} line 1: Corrupted header (invalid version number)",),
    ),
    DovecotCase(
        "uidlist.record-invalid", STATUS, ("Broken file {file} line 5: UIDs not ordered (3 >= 3)",)
    ),
    DovecotCase(
        "mdbox.map-uid-lost",
        FETCH_BODY,
        ("corrupted: Unexpectedly lost INBOX uid=1 map_uid=99999", "rebuilding indexes"),
    ),
)


@pytest.fixture
def dovecot_work() -> Iterator[Path]:
    """A work dir the mail user can reach (pytest's tmp_path is private to root)."""
    need_doveadm()
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("the Dovecot damage tests need root (Dovecot switches to a mail user)")
        pytest.skip("the Dovecot damage tests need root (Dovecot switches to a mail user)")
    work = Path(tempfile.mkdtemp(prefix="dit-damage-"))
    work.chmod(0o755)
    yield work
    shutil.rmtree(work, ignore_errors=True)


def _mail_uid() -> int:
    try:
        return pwd.getpwnam(MAIL_USER).pw_uid
    except KeyError:
        return MAIL_UID


def doveadm(store: Store, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a doveadm mail command as the store's user on the copy, without any daemon."""
    uid = _mail_uid()
    config = work / "dovecot.conf"
    if not config.exists():
        for sub in ("run", "state"):
            (work / sub).mkdir()
        config.write_text(CONFIG.format(tmp=work, uid=uid, gid=uid))
    for top, dirs, files in os.walk(store.base):
        for name in (top, *(os.path.join(top, f) for f in dirs + files)):
            os.lchown(name, uid, uid)
    info = store.info
    location = f"{info['format']}:{store.root}"
    if info["format"] == "maildir" and info["layout"] == "fs":
        location += ":LAYOUT=fs"
    if store.index_root is not None:
        location += f":INDEX={store.index_root}"
    if store.control_root is not None:
        location += f":CONTROL={store.control_root}"
    argv = [need_doveadm(), "-c", str(config), "-o", f"mail_location={location}", *args]
    env = {"USER": info["user"], "HOME": str(store.home), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode >= 0, f"doveadm killed by signal {-proc.returncode}:\n{proc.stderr}"
    return proc


@pytest.mark.dovecot
@pytest.mark.parametrize("dcase", DOVECOT_CASES, ids=lambda c: c.check)
def test_dovecot_meets_the_same_damage(dcase: DovecotCase, dovecot_work: Path) -> None:
    case = next(c for c in CASES if c.check == dcase.check)
    store = copy_store(FIXTURES, case.store, dovecot_work / "stores")
    damaged = case.damage(store, case.mailbox)
    assert any(f.check == case.check and _same(f.file, damaged) for f in store.findings())
    before = damaged.read_bytes()

    proc = doveadm(store, dovecot_work, *dcase.command)

    for text in dcase.logs:
        assert text.format(file=damaged) in proc.stderr, proc.stderr
    if not dcase.logs:
        assert "Error:" not in proc.stderr, proc.stderr
    if RULES[case.check].severity == Severity.FATAL:
        assert not damaged.exists() or damaged.read_bytes() != before, (
            "fatal, yet Dovecot kept the damaged file as it was"
        )


@pytest.mark.dovecot
def test_dovecot_trusts_a_wrong_seen_counter(dovecot_work: Path) -> None:
    """index.seen-count-wrong is an error though Dovecot logs nothing: it shows the
    header's count, so the client sees one unseen message too many."""
    store = copy_store(FIXTURES, "mdbox", dovecot_work / "stores")
    damaged = index_seen_count_off_by_one(store, "INBOX")
    report = next(r for r in store.reports() if r.name == "INBOX")
    finding = next(f for f in report.findings if f.check == "index.seen-count-wrong")
    assert _same(finding.file, damaged) and finding.severity == Severity.ERROR
    told_unseen = report.messages - finding.found  # what the header makes Dovecot say

    proc = doveadm(store, dovecot_work, "mailbox", "status", "messages unseen", "INBOX")

    assert proc.stdout.split() == ["INBOX", f"messages={report.messages}", f"unseen={told_unseen}"]
    assert told_unseen == report.messages - finding.expected + 1
    assert not any(word in proc.stderr for word in ("Error:", "Warning:", "fscking")), proc.stderr


@pytest.mark.dovecot
def test_dovecot_purge_loses_a_message_whose_refcount_is_too_low(dovecot_work: Path) -> None:
    """mdbox.refcount-too-low: the next doveadm purge deletes a message still in a mailbox."""
    store = copy_store(FIXTURES, "mdbox-split", dovecot_work / "stores")
    mdbox_refcount_lowered(store, None)
    finding = next(f for f in store.findings() if f.check == "mdbox.refcount-too-low")
    assert finding.found == 0  # nothing else tells Dovecot the message is still in use
    everything = ("fetch", "uid body", "mailbox", "*", "all")
    assert "Error:" not in doveadm(store, dovecot_work, *everything).stderr

    doveadm(store, dovecot_work, "purge")
    proc = doveadm(store, dovecot_work, *everything)

    assert "corrupted: Unexpectedly lost" in proc.stderr, proc.stderr
    assert "fetch(body) failed" in proc.stderr


def test_broken_mdbox_storage_file_header_is_reported(tmp_path: Path) -> None:
    """The m.N files are checked too, not only sdbox's u.N (one case per ID above)."""
    store = copy_store(FIXTURES, "mdbox", tmp_path)
    damaged = mdbox_file_header_broken(store, None)
    findings = store.findings()
    assert [f.file for f in findings if f.check == "dbox.file-invalid"] == [str(damaged)]
    assert {f.check for f in findings if f.severity != Severity.INFO} == {"dbox.file-invalid"}


@pytest.mark.dovecot
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.check)
def test_damage_is_reported_on_a_store_the_tests_never_saw(
    case: Case, fresh_store: Path, tmp_path: Path
) -> None:
    """The same damage on a store made now by Dovecot: different ids, stamps, GUIDs."""
    store = copy_store(fresh_store, case.store, tmp_path)
    damaged = case.damage(store, case.mailbox)
    findings = store.findings()
    hits = [f for f in findings if f.check == case.check]
    assert any(_same(f.file, damaged) for f in hits), _show(findings)
    above_info = {f.check for f in findings if f.severity != Severity.INFO} - {case.check}
    assert above_info <= set(case.allowed), _show(findings)


def test_the_oracle_harness_judges_damage_by_what_dovecot_does(tmp_path) -> None:
    """scripts/oracle-damage at a small N with a fixed seed: every trial gets a verdict
    from both judges, damage Dovecot reacts to is found on the damaged file, and
    nothing Dovecot takes in silence is called an error."""
    import subprocess
    import sys

    from mail_sandbox import mail_user

    mail_user()
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "oracle-damage"), "-n", "60", "--seed", "3",
         "--json"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    trials = json.loads(done.stdout)["trials"]
    verdicts = {t["verdict"] for t in trials}
    assert trials and verdicts <= {"hit", "hit, other file", "miss", "out of reach",
                                   "false alarm", "silent"}
    assert all(t["out_of_reach"] for t in trials if t["verdict"] == "out of reach")
    wrong = [t for t in trials if t["verdict"] in ("miss", "false alarm", "hit, other file")]
    assert not wrong, wrong
    assert any(t["verdict"] == "hit" for t in trials)


def test_uidlist_fields_are_read_as_dovecot_reads_them(tmp_path: Path) -> None:
    """A ':' inside an extension field does not start the file name (Dovecot looks for it
    only at the start of a field); a field whose key is not A-Z is damage Dovecot removes."""
    from dovecot_index_tool.format.uidlist import parse_uidlist

    store = copy_store(FIXTURES, "maildir", tmp_path)
    path = store.uidlist("One")
    first = next(r for r in uidlist(path).records if r.uid == 1)
    line = uidlist_line(path, 1)
    guid = next(value for key, value in first.extensions if key == "G")
    replace_text(path, line, line.replace(f"G{guid}".encode(), b"G17:0\xa9`*Tg"))
    again = next(r for r in uidlist(path).records if r.uid == 1)
    assert again.filename == first.filename
    assert not uidlist(path).problems
    replace_text(path, b"G17:0", b"g17:0")
    parsed = parse_uidlist(path.read_bytes(), str(path))
    assert next(r for r in parsed.records if r.uid == 1).filename == first.filename
    assert len(parsed.problems) == 1
    assert parsed.problems[0].reason.startswith("Invalid extension record, removing: g17:0")
    assert "uidlist.record-invalid" in {f.check for f in store.findings()}


def test_any_other_compat_bit_is_cpu_architecture_changed(tmp_path: Path) -> None:
    """Dovecot compares the whole compat_flags byte of the index and of the log."""
    store = copy_store(FIXTURES, "mdbox", tmp_path)
    index, log = store.index("One"), store.log("One")
    for path, offset in ((index, 12), (log, 32)):
        data = bytearray(path.read_bytes())
        data[offset] |= 0x04
        path.write_bytes(bytes(data))
    found = {(f.check, Path(f.file).name) for f in store.findings()}
    assert ("index.byte-order", "dovecot.index") in found
    assert ("log.byte-order", "dovecot.index.log") in found


def test_a_log_starting_at_modseq_0_is_one_dovecot_never_wrote(tmp_path: Path) -> None:
    """Without .log.2 or an index modseq header nothing else says where the log started,
    but 0 is impossible: Dovecot starts every log at 1 or later (HIGHESTMODSEQ moves)."""
    store = copy_store(FIXTURES, "mdbox", tmp_path)
    patch_u32(store.log("One"), 24, 0)
    found = {(f.check, Path(f.file).name) for f in store.findings()}
    assert ("log.initial-modseq-wrong", "dovecot.index.log") in found


def test_a_registered_cache_field_of_another_size_is_corrupted(tmp_path: Path) -> None:
    """Dovecot registers date.received as 4 bytes when it opens the mailbox; a field
    header saying otherwise makes it delete the cache ("registered field ... size
    changed")."""
    from dovecot_index_tool.format.cache import parse_cache

    store = copy_store(FIXTURES, "maildir", tmp_path)
    path = store.cache("INBOX")
    cache = parse_cache(path.read_bytes(), str(path))
    field = next(f for f in cache.fields if f.name == "date.received")
    header = cache.field_headers[-1]
    count = len(header.fields)
    patch_u32(path, header.offset + 12 + 4 * count + 4 * field.index, 5)
    assert any(f.check == "cache.field-header-invalid" and "date.received size" in f.message
               for f in store.findings())


def test_a_log2_numbered_above_the_head_is_not_read_as_the_head(tmp_path: Path) -> None:
    """Dovecot's head is the file named .log; a .log.2 whose sequence is not below it is
    never read, so it changes nothing the mailbox shows (no error, no missing mail)."""
    store = copy_store(FIXTURES, "maildir", tmp_path)
    patch_u32(store.log2("INBOX"), 8, 0xFFFFFFFF)
    serious = [f for f in store.findings() if f.severity in (Severity.ERROR, Severity.FATAL)]
    assert not serious, _show(serious)


def test_a_rotated_log_whose_sequence_breaks_its_own_chain_is_named(tmp_path: Path) -> None:
    """.log says it follows seq N-1 and the index was written against N: a .log that
    claims another sequence is the file that is wrong, not the index."""
    store = copy_store(FIXTURES, "maildir", tmp_path)
    delete(store.log2("INBOX"))
    patch_u32(store.log("INBOX"), 8, 9)
    lost = [f for f in store.findings() if f.check == "index.log-lost"]
    assert lost and all(Path(f.file).name == "dovecot.index.log" for f in lost), _show(lost)


@pytest.mark.parametrize("name", ["maildir", "sdbox", "mdbox"])
def test_a_log_from_another_mailbox_is_named_not_the_index_it_does_not_fit(
    tmp_path: Path, name: str
) -> None:
    """INBOX's rotated log copied over One's only log (both share an indexid when made
    in the same second): the log says it follows the very sequence One's index was
    written against, and no .log.2 is there. Dovecot drops .log.2 only after writing
    the index against the newer log, so the log is what does not fit."""
    store = copy_store(FIXTURES, name, tmp_path)
    assert not store.log2("One").exists()
    shutil.copyfile(store.log("INBOX"), store.log("One"))
    lost = [f for f in store.findings() if f.check == "index.log-lost"]
    assert lost and all(f.file == str(store.log("One")) for f in lost), _show(lost)


def test_a_log_numbered_zero_is_named_when_the_index_cannot_find_its_log(
    tmp_path: Path,
) -> None:
    """Dovecot numbers logs from 1: a head log with file_seq 0 is its own damage."""
    store = copy_store(FIXTURES, "maildir", tmp_path)
    patch_u32(store.log("One"), 8, 0)
    lost = [f for f in store.findings() if f.check == "index.log-lost"]
    assert lost and all(f.file == str(store.log("One")) for f in lost), _show(lost)


def _index_cache_pointer(index: Path) -> tuple[int, int, int]:
    """(uid, file offset of its cache value in dovecot.index, value) of the first message
    whose cache offset the log does not move."""
    from dovecot_index_tool.format.binary import layout
    from dovecot_index_tool.format.index import parse_index

    parsed = parse_index(index.read_bytes(), str(index))
    ext = parsed.extension("cache")
    u32 = layout(parsed.byteorder, "I")
    for rec in parsed.records:
        (value,) = u32.unpack(ext.record_value(rec.data))
        if value and value == cache_offset_of(index, rec.uid):
            return rec.uid, rec.offset + ext.record_offset, value
    raise LookupError(index)


@pytest.mark.parametrize("change", [1 << 20, 2, -64])
def test_a_cache_offset_pointing_off_a_whole_cache_is_the_index_records_damage(
    tmp_path: Path, change: int
) -> None:
    """One index record's cache offset moved past the end of the cache, off its 4-byte
    alignment, or into the middle of the record before: the cache's own records are
    whole, so the finding names the index record that holds the offset, though Dovecot
    still deletes the cache."""
    store = copy_store(FIXTURES, "maildir", tmp_path)
    index = store.index("INBOX")
    _uid, at, value = _index_cache_pointer(index)
    patch_u32(index, at, value + change)
    bad = [f for f in store.findings() if f.check == "cache.record-invalid"]
    assert bad and all(f.file == str(index) and f.offset == at for f in bad), _show(bad)


def test_an_older_field_header_is_not_judged_as_dovecot_reads_only_the_newest(
    tmp_path: Path,
) -> None:
    """The cache's field headers form a chain and each lists every field; Dovecot
    follows the older links' next_offset only and parses the newest. Names destroyed in
    an older link change nothing Dovecot shows, so they are not reported; the same
    damage in the newest link is."""
    store = copy_store(FIXTURES, "sdbox", tmp_path)
    path = store.cache("INBOX")
    links = cache_file(path, store.index("INBOX")).field_headers
    assert len(links) >= 2
    older, newest = links[0], links[-1]
    names = 12 + 10 * len(older.fields)
    patch_bytes(path, older.offset + names, b"\0" * 8)
    assert not [f for f in store.findings() if f.check == "cache.field-header-invalid"]
    patch_bytes(path, newest.offset + 12 + 10 * len(newest.fields), b"\0" * 8)
    assert [f for f in store.findings() if f.check == "cache.field-header-invalid"]


def test_a_cache_of_another_index_is_only_the_indexid_warning(tmp_path: Path) -> None:
    """Dovecot deletes a cache whose indexid is not the index's without a word, before
    it looks at anything else in it: the rest of its damage is not reported."""
    store = copy_store(FIXTURES, "maildir", tmp_path)
    path = store.cache("One")
    patch_u32(path, 4, index_file(store.index("One")).header.indexid ^ 0x5A5A)
    patch_u32(path, 28, 0)  # and no field header at all
    found = {f.check: f.severity for f in store.findings() if f.severity != Severity.INFO}
    assert found == {"cache.indexid-mismatch": Severity.WARNING}, found


def test_a_cache_offset_no_cache_can_hold_is_the_log_records_damage(tmp_path: Path) -> None:
    """The log's last cache-offset update of a message now says 2 GiB: Dovecot never
    writes a cache past 1 GiB, so whatever the cache holds, the log record is named."""
    store = copy_store(FIXTURES, "mdbox", tmp_path)
    log, index = store.log("One"), store.index("One")
    wanted = cache_offset_of(index, 1)
    record = [r for r in log_records(log, L.EXT_REC_UPDATE)
              if any(u.uid == 1 and int.from_bytes(u.data[:4], "little") == wanted
                     for u in r.items)][-1]
    at = record.offset + L.RECORD_HEADER_SIZE + record.data.find(
        (1).to_bytes(4, "little") + wanted.to_bytes(4, "little")) + 4
    patch_u32(log, at, 1 << 31)
    bad = [f for f in store.findings() if f.check == "cache.record-invalid"]
    assert bad and all(f.file == str(log) and f.offset == at for f in bad), _show(bad)


def test_a_cache_cut_short_is_still_the_caches_damage(tmp_path: Path) -> None:
    """Cut a few records short, the cache is what is wrong, though the offsets of the
    messages whose records are gone now point past its end."""
    store = copy_store(FIXTURES, "maildir", tmp_path)
    path = store.cache("INBOX")
    truncate(path, path.stat().st_size - 1000)
    bad = [f for f in store.findings() if f.check == "cache.record-invalid"]
    assert bad and all(f.file == str(path) for f in bad), _show(bad)


def test_a_log2_too_short_to_parse_is_a_note_when_the_index_does_not_need_it(
    tmp_path: Path,
) -> None:
    store = copy_store(FIXTURES, "mdbox", tmp_path)
    truncate(store.log2("INBOX"), 8)
    found = store.findings()
    assert any(f.check == "log.old-log-damaged" for f in found)
    assert not [f for f in found if f.severity in (Severity.ERROR, Severity.FATAL)]


def _oracle_module():
    """scripts/oracle-damage as a module (it has no .py name)."""
    import importlib.machinery
    import importlib.util
    import sys

    loader = importlib.machinery.SourceFileLoader("oracle_damage",
                                                  str(ROOT / "scripts" / "oracle-damage"))
    spec = importlib.util.spec_from_loader("oracle_damage", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["oracle_damage"] = module  # its dataclasses look their module up
    loader.exec_module(module)
    return module


@pytest.mark.dovecot
def test_the_oracle_sees_an_imap_client_refused_where_doveadm_may_say_less() -> None:
    """Partial bytes no writer holds at the end of a log: IMAP SELECT answers NO, and
    the harness's IMAP judge counts that as Dovecot reacting; the same session on the
    undamaged copy is silent."""
    from mail_sandbox import Sandbox

    oracle = _oracle_module()
    if not os.access(oracle.IMAP, os.X_OK):
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(
            f"{oracle.IMAP} is missing (apt-get install dovecot-imapd)")
    box = Sandbox.create("fresh")
    try:
        clean = oracle._store(box, box.base / "clean", "maildir")
        damaged = oracle._store(box, box.base / "damaged", "maildir")
        log_partial_write(damaged, "Empty")
        quiet = oracle._imap(box, clean, "Empty")
        refused = oracle._imap(box, damaged, "Empty")
    finally:
        box.remove()
    assert quiet[2] is False and quiet[0] == 0, quiet
    assert refused[2] is True, refused
    assert any("NO" in why or "Error" in why for why in refused[3]), refused


@pytest.mark.dovecot
@pytest.mark.parametrize(("byte", "broken"), [(0xE5, False), (0x80, False), (0x21, True)])
def test_an_extension_name_is_judged_by_the_bytes_dovecot_accepts(
    byte: int, broken: bool
) -> None:
    """Dovecot 2.3 takes any byte above 0x7f in an extension name as valid (the index
    opens without a word); a '!' makes it 'Broken extension ... Invalid name' and an
    fsck. check agrees with both."""
    from dovecot_index_tool.format.index import parse_index
    from mail_sandbox import Sandbox

    box = Sandbox.create("fresh")
    try:
        store = box.store("maildir")
        index = store.index("One")
        ext = parse_index(index.read_bytes(), str(index)).extension("vsize")
        patch_bytes(index, ext.offset + 16 + ext.name_size - 1, bytes([byte]))  # its last
        found = {f.check for f in store.findings()}
        said = box.doveadm(box.throwaway(store), "mailbox", "status", "messages", "One",
                           check=False).stderr
    finally:
        box.remove()
    assert ("Broken extension" in said) is broken, said
    assert ("index.extension-invalid" in found) is broken, found


def test_the_oracle_calls_out_of_reach_only_a_lone_value_dovecot_merely_shows(
    tmp_path: Path,
) -> None:
    """A changed cached value or dbox record flag that Dovecot only shows differently is
    out of reach; the same bytes with an error from Dovecot, or bytes that are structure
    (a record's uid, a cache record's size), stay misses."""
    from types import SimpleNamespace

    from out_of_reach import OTHER_DATA, out_of_reach

    from dovecot_index_tool.format.index import parse_index

    sdbox = copy_store(FIXTURES, "sdbox", tmp_path).index_dir("INBOX")
    cache = sdbox / "dovecot.index.cache"
    record = cache_file(cache, sdbox / "dovecot.index").chain(
        cache_offset_of(sdbox / "dovecot.index", 1)).records[0]
    value = record.values[0]
    records = parse_index((sdbox / "dovecot.index").read_bytes()).records
    flags, uid = records.base + 4, records.base

    def trial(file: str, span: tuple[int, int], dovecot: str = f"imap: {OTHER_DATA}"):
        return SimpleNamespace(store="sdbox", file=file, span=span, dovecot=dovecot)

    def flipped(path: Path, at: int) -> bytes:
        data = bytearray(path.read_bytes())
        data[at] ^= 0x10
        return bytes(data)

    inside, header = value.offset, record.offset + 4  # a value's byte; the record's size
    hit = out_of_reach(trial("dovecot.index.cache", (inside, inside + 1)), cache,
                       flipped(cache, inside))
    assert hit.startswith("cached value"), hit
    assert not out_of_reach(trial("dovecot.index.cache", (inside, inside + 1), "imap: Error: x"),
                            cache, flipped(cache, inside))
    assert not out_of_reach(trial("dovecot.index.cache", (header, header + 1)), cache,
                            flipped(cache, header))
    index = sdbox / "dovecot.index"
    assert out_of_reach(trial("dovecot.index", (flags, flags + 1)), index, flipped(index, flags))
    assert not out_of_reach(trial("dovecot.index", (uid, uid + 1)), index, flipped(index, uid))


def test_an_extension_record_too_large_is_dropped_as_dovecots_fsck_drops_it(
    tmp_path: Path,
) -> None:
    """vsize's record_size with its top bit set runs far past the record: Dovecot drops
    the extension ('Dropped broken extension') and goes on; so does the replay, and the
    check names the extension instead of failing on the mailbox."""
    store = copy_store(FIXTURES, "sdbox", tmp_path)
    index = store.index("One")
    ext = extension(index, "vsize")
    at = ext.offset + 10  # hdr_size u32, reset_id u32, record_offset u16, record_size u16
    patch_bytes(index, at + 1, bytes([index.read_bytes()[at + 1] | 0x80]))
    found = {f.check: f.file for f in store.findings() if f.severity != Severity.INFO}
    assert found == {"index.extension-invalid": str(index)}, found


@pytest.mark.dovecot
def test_a_deleted_count_that_is_neither_zero_nor_all_is_only_a_warning() -> None:
    """Dovecot's searches trust deleted_messages_count only at 0 and at all messages:
    one where two are \\Deleted still finds both, so check says warning, not error."""
    from mail_sandbox import Sandbox

    box = Sandbox.create("fresh")
    try:
        store = box.store("maildir")
        patch_u32(store.index("INBOX"), header_offset("deleted_messages_count"), 1)
        found = {f.check: f.severity for f in store.findings() if f.severity != Severity.INFO}
        hits = box.doveadm(box.throwaway(store), "search", "mailbox", "INBOX", "deleted")
    finally:
        box.remove()
    assert found == {"index.deleted-count-high": Severity.WARNING}, found
    assert len(hits.stdout.splitlines()) == 2, hits.stdout


def test_a_recordless_extension_placed_past_the_record_is_invalid(tmp_path: Path) -> None:
    """hdr-pop3-uidl has no record field, yet its record_offset now lies past the
    record: Dovecot opens the index, then aborts on an assertion when it copies the map
    (force-resync), so check reports the extension."""
    store = copy_store(FIXTURES, "sdbox", tmp_path)
    index = store.index("INBOX")
    ext = extension(index, "hdr-pop3-uidl")
    patch_bytes(index, ext.offset + 9, bytes([index.read_bytes()[ext.offset + 9] | 0x10]))
    bad = [f for f in store.findings() if f.check == "index.extension-invalid"]
    assert bad and bad[0].file == str(index), _show(store.findings())


def test_a_listed_name_one_byte_off_a_file_in_new_blames_the_uidlist(tmp_path: Path) -> None:
    """The newest message is still in new/; its uidlist line gets one non-UTF-8 byte.
    The uidlist is the file that is wrong, and `check --json` still prints valid UTF-8
    JSON (the name is escaped)."""
    import subprocess
    import sys

    store = copy_store(FIXTURES, "maildir", tmp_path)
    path = store.uidlist("INBOX")
    newest = uidlist(path).records[-1]
    assert (store.mail_dir("INBOX") / "new" / newest.filename).exists()
    at = newest.filename.index("S=") + 2
    line = uidlist_line(path, newest.uid)
    broken = newest.filename[:at].encode() + b"\xb3" + newest.filename[at + 1:].encode()
    replace_text(path, line, line.replace(newest.filename.encode(), broken))
    wrong = [f for f in store.findings() if f.check == "uidlist.filename-wrong"]
    assert wrong and wrong[0].file == str(path), _show(store.findings())
    done = subprocess.run([sys.executable, "-m", "dovecot_index_tool", "check", "--json",
                           str(store.home)], capture_output=True, check=False)
    doc = json.loads(done.stdout.decode("utf-8"))
    assert any(f["check"] == "uidlist.filename-wrong" for m in doc["mailboxes"]
               for f in m["findings"])


def test_log_seq_zero_is_a_warning_when_the_head_log_starts_the_index(tmp_path: Path) -> None:
    """maildir One has one log, which starts the index (prev_file_seq 0): Dovecot replays
    it from its start and says nothing, so log_file_seq 0 is a warning there (with a
    .log.2 before the head, as in mdbox INBOX, Dovecot fscks: index.log-seq-zero)."""
    store = copy_store(FIXTURES, "maildir", tmp_path)
    patch_u32(store.index("One"), header_offset("log_file_seq"), 0)
    found = {f.check: f.severity for f in store.findings() if f.severity != Severity.INFO}
    assert found == {"index.log-position-odd": Severity.WARNING}, found


def test_a_last_uidlist_line_cut_or_overwritten_blames_the_uidlist(tmp_path: Path) -> None:
    """The newest message (still in new/) loses the end of its uidlist line, cut or
    overwritten with bytes no maildir name holds: the uidlist is named, not the mail."""
    store = copy_store(FIXTURES, "maildir", tmp_path)
    path = store.uidlist("INBOX")
    name = uidlist(path).records[-1].filename
    at = path.read_bytes().rindex(name.encode()) + 20
    for tail in (b"", b"\x01\x15\xa4"):
        truncate(path, at)
        if tail:
            append(path, tail)
        wrong = [f for f in store.findings() if f.severity != Severity.INFO]
        assert [f.check for f in wrong] == ["uidlist.filename-wrong"], _show(wrong)
