"""Damage that no file can show, told apart from a miss of ``check``.

Why: some bytes are the only record of what they hold. When one of them changes into
another valid value, Dovecot shows the new value without a word, and nothing on disk
contradicts it: the message itself (which ``check`` does not read) is the only
witness. scripts/oracle-damage counts such a trial as *out of reach*, with the
reason, instead of as a miss, and only when

* Dovecot's whole reaction is other data (no error, no refusal, no abort), or it is
  Dovecot deleting a cached value because the message it read says otherwise, and
* every changed byte lies inside one of the values listed here, located in the
  undamaged copy of the file by the package's own parsers.

Anything else that Dovecot reacts to and ``check`` does not report stays a miss.
"""

from __future__ import annotations

import re
from pathlib import Path

from dovecot_index_tool.check.data import load_index
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.cache import CacheFile, parse_cache
from dovecot_index_tool.format.index import IndexFile, parse_index
from dovecot_index_tool.format.log import parse_log

OTHER_DATA = "other data than the undamaged store"
# Dovecot compared a cached value with the message it read, and the message won.
MESSAGE_CONTRADICTS = re.compile(r"Deleting corrupted cache record uid=\d+: UID \d+: Broken ")
DBOX = ("sdbox", "mdbox")
FLAGS_BYTE = 4  # of an index record: uid (4 bytes), then the flags
FLAG_UPDATE_ITEM = 12  # uid1, uid2, add_flags, remove_flags, modseq_inc_flag, padding
FLAG_BYTES = (8, 10)  # add_flags and remove_flags of a flag-update item
REASONS = {
    "cached value": "a value inside a cached field changed: only the message itself "
                    "(not read) could contradict it",
    "record flags": "a flag or keyword bit of one message in a dbox index: the index is "
                    "the only place dbox keeps them",
    "next_uid": "the index's next_uid raised, with no log append after it: a next UID "
                "above every UID on disk is also what a healthy index holds after "
                "expunges (the uidlist's may lag); Dovecot shows another UIDNEXT",
    "initial_modseq": "the log's initial_modseq with no .log.2 and no modseq header to "
                      "compare it with: Dovecot shows another HIGHESTMODSEQ",
    "message": "a cached size or MIME structure that is valid in itself and that only "
               "the message body contradicts (check does not read bodies)",
    "logged flags": "a flag bit in a flag-update record of a dbox log: the log is the "
                    "only record of that change",
}


def out_of_reach(trial, pristine: Path) -> str:
    """The reason this miss is out of reach of any check, or "" when it is a miss."""
    if trial.span is None:
        return ""
    start, end = trial.span
    if MESSAGE_CONTRADICTS.search(trial.dovecot):
        if trial.file == "dovecot.index.cache" and _in_cached_value(
                pristine, pristine.read_bytes(), start, end):
            return f"cached value read against the message: {REASONS['message']}"
        return ""
    if not trial.dovecot.endswith(OTHER_DATA):
        return ""
    kind = _value_kind(trial, pristine, start, end)
    return f"{kind}: {REASONS[kind]}" if kind else ""


def _value_kind(trial, pristine: Path, start: int, end: int) -> str:
    data = pristine.read_bytes()
    if trial.file == "dovecot.index.cache":
        return "cached value" if _in_cached_value(pristine, data, start, end) else ""
    if trial.file == "dovecot.index":
        index = parse_index(data, str(pristine))
        if trial.store in DBOX and _in_record_flags(index, start, end):
            return "record flags"
        return "next_uid" if 28 <= start < end <= 32 else ""
    if trial.file == "dovecot.index.log":
        if 24 <= start < end <= 32 and not pristine.with_name("dovecot.index.log.2").exists():
            return "initial_modseq"
        if trial.store in DBOX and _in_logged_flags(parse_log(data, str(pristine)), start, end):
            return "logged flags"
    return ""


def _in_cached_value(path: Path, data: bytes, start: int, end: int) -> bool:
    cache = _cache(path, data)
    state = load_index(path.with_name("dovecot.index")).state
    ext = state.extension("cache")
    if ext is None:
        return False
    for rec in state.records:
        raw = ext.record_value(rec.data)
        offset = int.from_bytes(raw[:4], "little") if raw and len(raw) >= 4 else 0
        for record in cache.chain(offset).records if offset else ():
            for value in record.values if isinstance(record.values, tuple) else ():
                if value.offset <= start and end <= value.offset + len(value.data):
                    return True
    return False


def _cache(path: Path, data: bytes) -> CacheFile:
    index = path.with_name("dovecot.index")
    indexid = parse_index(index.read_bytes()).header.indexid if index.exists() else None
    return parse_cache(data, str(path), indexid=indexid)


def _in_record_flags(index: IndexFile, start: int, end: int) -> bool:
    """Inside one record's flags byte or its keywords bitmap."""
    table = index.records
    if not table.count or start < table.base or end > table.base + table.count * table.record_size:
        return False
    first = (start - table.base) // table.record_size
    if (end - 1 - table.base) // table.record_size != first:
        return False
    at, last = (start - table.base) % table.record_size, (end - 1 - table.base) % table.record_size
    if at == last == FLAGS_BYTE:
        return True
    keywords = index.extension("keywords")
    return keywords is not None and keywords.record_size > 0 and (
        keywords.record_offset <= at and last < keywords.record_offset + keywords.record_size)


def _in_logged_flags(log: L.LogFile, start: int, end: int) -> bool:
    """Inside the add/remove flag bytes of one flag-update item."""
    for record in log.records:
        payload = record.offset + L.RECORD_HEADER_SIZE
        if record.base_code != L.FLAG_UPDATE or not payload <= start < record.offset + record.size:
            continue
        at, last = (start - payload) % FLAG_UPDATE_ITEM, (end - 1 - payload) % FLAG_UPDATE_ITEM
        same_item = (start - payload) // FLAG_UPDATE_ITEM == (end - 1 - payload) // FLAG_UPDATE_ITEM
        return same_item and FLAG_BYTES[0] <= at and last < FLAG_BYTES[1]
    return False
