"""Damage that no file can show, told apart from a miss of ``check``.

Why: some bytes are the only record of what they hold. When one of them changes into
another valid value, Dovecot shows the new value without a word, and nothing on disk
contradicts it: the message itself (which ``check`` does not read) is the only
witness. scripts/oracle-damage counts such a trial as *out of reach*, with the
reason, instead of as a miss, and only when

* Dovecot's whole reaction is other data (no error, no refusal, no abort), or it is
  Dovecot deleting a cached value because the message it read says otherwise, and
* every byte that differs from the undamaged copy lies inside one of the values
  listed in ``REASONS``, located in that copy by the package's own parsers.

Anything else that Dovecot reacts to and ``check`` does not report stays a miss.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from dovecot_index_tool.check.data import load_index
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.cache import parse_cache
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.format.index import IndexFile, parse_index
from dovecot_index_tool.format.log import parse_log

OTHER_DATA = "other data than the undamaged store"
# Dovecot compared a cached value with the message it read, and the message won.
MESSAGE_CONTRADICTS = re.compile(r"Deleting corrupted cache record uid=\d+: UID \d+: Broken ")
DBOX = ("sdbox", "mdbox")
FLAGS_BYTE = 4  # of an index record: uid (4 bytes), then the flags
FLAG_UPDATE_ITEM = 12  # uid1, uid2, add_flags, remove_flags, modseq_inc_flag, padding
APPEND_ITEM = 8  # uid, then the record's flags and the bytes after them
NEXT_UID = (28, 32)
INITIAL_MODSEQ = (24, 32)
REASONS = {
    "cached value": "a value inside a cached field changed: only the message itself "
                    "(not read) could contradict it",
    "message": "a cached size or MIME structure that is valid in itself and that only "
               "the message body contradicts (check does not read bodies)",
    "record flags": "a flag or keyword bit of one message in a dbox index: the index is "
                    "the only place dbox keeps them",
    "keyword name": "a keyword's name in a dbox index header that no log record after "
                    "the index names: the index is its only record",
    "record values": "flags, keywords and the virtual size of one message in a dbox "
                     "index, beside fields the log replaces anyway: none has another home",
    "next_uid": "the index's next_uid raised, with no log append after it: a next UID "
                "above every UID on disk is also what a healthy index holds after "
                "expunges (the uidlist's may lag); Dovecot shows another UIDNEXT",
    "initial_modseq": "the log's initial_modseq with no .log.2 and no modseq header to "
                      "compare it with: Dovecot shows another HIGHESTMODSEQ",
    "logged flags": "a flag or keyword change in a dbox log (a flag update, a keyword "
                    "name, an appended message's flags): the log is its only record",
}

Span = tuple[int, int]


def out_of_reach(trial, pristine: Path, damaged: bytes) -> str:
    """The reason this miss is out of reach of any check, or "" when it is a miss."""
    if trial.span is None:
        return ""
    data = pristine.read_bytes()
    changed = [i for i in range(*trial.span) if i >= len(data) or i >= len(damaged)
               or data[i] != damaged[i]]
    if not changed:
        return ""
    if trial.file == "dovecot.index.cache":
        return _cache_reason(trial, pristine, data, damaged, changed)
    if not trial.dovecot.endswith(OTHER_DATA):
        return ""
    for kind, spans in _candidates(trial, pristine, data):
        if _all_in(changed, spans):
            return f"{kind}: {REASONS[kind]}"
    return ""


def _all_in(changed: list[int], spans) -> bool:
    spans = list(spans)
    return all(any(a <= i < b for a, b in spans) for i in changed)


def _candidates(trial, pristine: Path, data: bytes) -> Iterator[tuple[str, list[Span]]]:
    dbox = trial.store in DBOX
    if trial.file == "dovecot.index":
        index = parse_index(data, str(pristine))
        if dbox:
            yield "record flags", list(_record_flags(index))
            yield "keyword name", list(_unlogged_keyword_names(index, pristine))
            yield "record values", [*_record_flags(index), *_record_vsizes(index),
                                    *_superseded_fields(index, pristine)]
        yield "next_uid", [NEXT_UID]
    elif trial.file == "dovecot.index.log":
        if not pristine.with_name("dovecot.index.log.2").exists():
            yield "initial_modseq", [INITIAL_MODSEQ]
        if dbox:
            yield "logged flags", list(_logged_flags(parse_log(data, str(pristine))))


def _cache_reason(trial, path: Path, data: bytes, damaged: bytes, changed: list[int]) -> str:
    """A cache whose structure (field headers, every reached record and the place and
    size of each value) parses the same as the undamaged copy's differs only inside
    cached values, or in bytes nothing reads."""
    if _structure(path, data) != _structure(path, damaged):
        return ""
    if not any(a <= i < b for i in changed for a, b in _cached_values(path, data)):
        return ""
    if MESSAGE_CONTRADICTS.search(trial.dovecot):
        return f"cached value read against the message: {REASONS['message']}"
    if trial.dovecot.endswith(OTHER_DATA):
        return f"cached value: {REASONS['cached value']}"
    return ""


def _structure(path: Path, data: bytes) -> tuple:
    try:
        cache = _parse_cache(path, data)
    except FormatError:
        return ()
    headers = tuple((h.offset, h.next_offset, h.size, h.fields) for h in cache.field_headers)
    records = tuple((r.offset, r.prev_offset, r.size, r.past_eof, tuple(
        (v.field_index, v.offset, len(v.data)) for v in r.values)
        if isinstance(r.values, tuple) else None) for r in _reached_records(path, cache))
    h = cache.header  # the fields Dovecot checks; the counters only steer purging
    head = (h.major_version, h.compat_sizeof_uoff_t, h.indexid, h.file_seq,
            h.field_header_offset)
    return head, headers, records, cache.problems


def _parse_cache(path: Path, data: bytes):
    index = path.with_name("dovecot.index")
    indexid = parse_index(index.read_bytes()).header.indexid if index.exists() else None
    return parse_cache(data, str(path), indexid=indexid)


def _reached_records(path: Path, cache):
    state = load_index(path.with_name("dovecot.index")).state
    ext = state.extension("cache")
    for rec in state.records if ext is not None else ():
        raw = ext.record_value(rec.data)
        offset = int.from_bytes(raw[:4], "little") if raw and len(raw) >= 4 else 0
        yield from cache.chain(offset).records if offset else ()


def _cached_values(path: Path, data: bytes) -> Iterator[Span]:
    """The data bytes of every cached value any message's chain reaches, with the
    padding to the next 4-byte boundary that Dovecot skips."""
    for record in _reached_records(path, _parse_cache(path, data)):
        for value in record.values if isinstance(record.values, tuple) else ():
            yield value.offset, value.offset + (len(value.data) + 3) // 4 * 4


def _record_flags(index: IndexFile) -> Iterator[Span]:
    """Each record's flags byte and its keywords bitmap."""
    table, keywords = index.records, index.extension("keywords")
    for rec in table:
        yield rec.offset + FLAGS_BYTE, rec.offset + FLAGS_BYTE + 1
        if keywords is not None and keywords.record_size:
            start = rec.offset + keywords.record_offset
            yield start, start + keywords.record_size


def _record_vsizes(index: IndexFile) -> Iterator[Span]:
    """Each record's virtual size: derived from the message, held nowhere else."""
    ext = index.extension("vsize")
    for rec in index.records if ext is not None and ext.record_size else ():
        yield rec.offset + ext.record_offset, rec.offset + ext.record_offset + ext.record_size


def _superseded_fields(index: IndexFile, path: Path) -> Iterator[Span]:
    """Record fields whose value the log replaces (the replay ends with another one):
    Dovecot never uses the bytes the index holds there."""
    state = load_index(path).state
    replayed = {rec.uid: rec.data for rec in state.records}
    for ext in index.extensions:
        after = state.extension(ext.name)
        if not ext.record_size or after is None:
            continue
        for rec in index.records:
            now = replayed.get(rec.uid)
            if now is not None and after.record_value(now) != ext.record_value(rec.data):
                start = rec.offset + ext.record_offset
                yield start, start + ext.record_size


def _unlogged_keyword_names(index: IndexFile, path: Path) -> Iterator[Span]:
    """The name bytes of the keywords header, for names no log record after the
    index's tail offset brings again."""
    ext = index.extension("keywords")
    if ext is None:
        return
    logged = {item.name for log in _logs(path) for rec in log.records
              if rec.base_code == L.KEYWORD_UPDATE and rec.error is None
              and (log.header.file_seq, rec.offset) >= (index.header.log_file_seq,
                                                        index.header.log_file_tail_offset)
              for item in rec.items}
    count = len(index.keywords)
    names_at = ext.data_offset + 4 + 8 * count
    for number, name in enumerate(index.keywords):
        start = names_at + int.from_bytes(ext.data[8 + 8 * number:12 + 8 * number], "little")
        if name not in logged:
            yield start, start + len(name.encode())


def _logs(path: Path) -> Iterator[L.LogFile]:
    for name in ("dovecot.index.log.2", "dovecot.index.log"):
        log = path.with_name(name)
        if log.exists():
            yield parse_log(log.read_bytes(), str(log))


def _logged_flags(log: L.LogFile) -> Iterator[Span]:
    """Flag bytes of flag updates, names of keyword updates, flags of appends."""
    for record in log.records:
        payload = record.offset + L.RECORD_HEADER_SIZE
        if record.base_code == L.FLAG_UPDATE:
            for n in range(len(record.data) // FLAG_UPDATE_ITEM):
                yield payload + n * FLAG_UPDATE_ITEM + 8, payload + n * FLAG_UPDATE_ITEM + 10
        elif record.base_code == L.KEYWORD_UPDATE and len(record.data) >= 4:
            size = int.from_bytes(record.data[2:4], "little")
            yield payload + 4, payload + (4 + size + 3) // 4 * 4  # with its padding
        elif record.base_code == L.APPEND:
            for n in range(len(record.data) // APPEND_ITEM):
                yield payload + n * APPEND_ITEM + 4, payload + (n + 1) * APPEND_ITEM
