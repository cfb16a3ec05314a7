"""The ``dump`` document: every parsed value as plain JSON-able data.

One builder per file kind. The same document feeds ``dump --json`` and the
human (rich) view, so both always show the same content.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from dovecot_index_tool.files import IndexSet
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import layout
from dovecot_index_tool.format.cache import CacheFile
from dovecot_index_tool.format.dbox import METADATA_NAMES, DboxFile
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.format.extensions import (
    decode_cache_value,
    decode_ext_header,
    decode_ext_record,
)
from dovecot_index_tool.format.index import HEADER_FIELDS, HEADER_OFFSETS, IndexFile
from dovecot_index_tool.format.replay import Replay, unusable
from dovecot_index_tool.format.uidlist import MaildirKeywords, Uidlist

FLAG_NAMES = (
    (0x08, "Seen"),
    (0x01, "Answered"),
    (0x02, "Flagged"),
    (0x04, "Deleted"),
    (0x10, "Draft"),
    (0x20, "Recent-old"),
    (0x40, "Backend"),
    (0x80, "Dirty"),
)
BYTEORDER_NAMES = {"<": "little", ">": "big"}
HEADER_CODES = {name: code for name, code in HEADER_FIELDS if name}
HEADER_FIELD_AT = {offset: (name, size) for name, (offset, size) in HEADER_OFFSETS.items()}


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES if flags & bit]


def problems_doc(problems: Iterable[FormatError]) -> list[dict[str, object]]:
    return [p.to_dict() for p in problems]


# index -----------------------------------------------------------------
def index_doc(
    index: IndexFile,
    cache: CacheFile | None = None,
    replay: Replay | None = None,
    uid: int | None = None,
    original: IndexFile | None = None,
) -> dict[str, object]:
    """An index (replayed or as stored), its cache, and its records."""
    doc: dict[str, object] = {
        "kind": "index",
        "path": index.path,
        "replayed": replay is not None,
        "byteorder": BYTEORDER_NAMES[index.byteorder],
        "header": index.header.to_dict(),
        "extensions": [_extension_doc(e, index.byteorder) for e in index.extensions],
        "keywords": list(index.keywords),
        "cache": cache_doc(cache) if cache is not None else None,
        "records": [
            _record_doc(index, rec, cache) for rec in index.records if uid is None or rec.uid == uid
        ],
        "problems": problems_doc(index.problems),
    }
    if replay is not None:
        doc["replay"] = replay_doc(replay, original)
    doc["problems"] += _replay_problems(replay, index.path) + _cache_problems(doc)
    return doc


def replay_doc(replay: Replay, original: IndexFile | None) -> dict[str, object]:
    return {
        "index_file": original.path if original else None,
        "start": {"file_seq": replay.start[0], "offset": replay.start[1]},
        "end": {"file_seq": replay.end[0], "offset": replay.end[1]},
        "records_applied": replay.applied,
        "reset": replay.reset,
        "lost": replay.lost,
        "issues": [dataclasses.asdict(i) for i in replay.issues],
    }


def _extension_doc(ext, bo: str) -> dict[str, object]:
    doc: dict[str, object] = {
        "name": ext.name,
        "hdr_size": ext.hdr_size,
        "reset_id": ext.reset_id,
        "record_offset": ext.record_offset,
        "record_size": ext.record_size,
        "record_align": ext.record_align,
        "offset": ext.offset,
        "header_hex": ext.data.hex(),
    }
    if ext.hdr_size and ext.name != "keywords":
        decoded = decode_ext_header(ext.name, ext.data, bo)
        if decoded is not None:
            doc["header"] = decoded
    return doc


def _record_doc(index: IndexFile, rec, cache: CacheFile | None) -> dict[str, object]:
    exts: dict[str, object] = {}
    cache_offset = None
    for ext in index.extensions:
        raw = ext.record_value(rec.data)
        if raw is None:
            continue
        value = decode_ext_record(ext.name, raw, index.byteorder, ext.record_align, index.keywords)
        exts[ext.name] = {"hex": raw.hex(), "value": value}
        if ext.name == "cache" and isinstance(value, int):
            cache_offset = value
    doc: dict[str, object] = {
        "seq": rec.seq,
        "uid": rec.uid,
        "flags": rec.flags,
        "flag_names": flag_names(rec.flags),
        "extensions": exts,
    }
    if cache is not None and cache_offset:
        doc["cache"] = _cache_chain_doc(index, cache, cache_offset)
    return doc


def _cache_chain_doc(index: IndexFile, cache: CacheFile, offset: int) -> dict[str, object]:
    ext = index.extension("cache")
    if ext is not None and ext.reset_id != cache.header.file_seq:
        return {"offset": offset, "stale": True, "records": [], "error": None}
    chain = cache.chain(offset)
    records = []
    for rec in chain.records:
        fields = []
        for value in rec.values:
            fld = cache.fields[value.field_index]
            fields.append(_cache_value_doc(fld, value, cache.byteorder))
        records.append(
            {
                "offset": rec.offset,
                "size": rec.size,
                "prev_offset": rec.prev_offset,
                "fields": fields,
            }
        )
    return {
        "offset": offset,
        "stale": False,
        "records": records,
        "error": chain.error.to_dict() if chain.error else None,
    }


def _cache_value_doc(fld, value, bo: str) -> dict[str, object]:
    try:
        decoded = decode_cache_value(fld.name, fld.type, value.data, bo)
    except FormatError as err:
        decoded = {"error": err.reason}
    return {
        "name": fld.name,
        "type": fld.type_name,
        "offset": value.offset,
        "hex": value.data.hex(),
        "value": decoded,
    }


def cache_doc(cache: CacheFile) -> dict[str, object]:
    return {
        "path": cache.path,
        "byteorder": BYTEORDER_NAMES[cache.byteorder],
        "header": cache.header.to_dict(),
        "fields": [
            {
                "index": f.index,
                "name": f.name,
                "type": f.type_name,
                "size": f.size if (f.fixed or f.size != 0xFFFFFFFF) else None,
                "decision": f.decision_name,
                "last_used": f.last_used,
            }
            for f in cache.fields
        ],
        "field_headers": [
            {
                "offset": h.offset,
                "next_offset": h.next_offset,
                "size": h.size,
                "fields_count": len(h.fields),
            }
            for h in cache.field_headers
        ],
        "problems": problems_doc(cache.problems),
    }


def index_set_doc(
    files: IndexSet, replay: Replay | None, uid: int | None = None
) -> dict[str, object]:
    """The whole index prefix: the replayed (or stored) index, plus read errors."""
    state = replay.index if replay is not None else files.index
    if state is None:
        return {
            "kind": "index",
            "path": files.prefix,
            "missing": True,
            "problems": problems_doc(files.errors),
        }
    doc = index_doc(state, files.cache, replay, uid, files.index)
    doc["path"] = files.prefix
    doc["index_file_present"] = files.index is not None
    doc["log_files"] = [f.path for f in files.logs]
    doc["problems"] = problems_doc(files.errors) + doc["problems"]  # type: ignore[operator]
    if replay is not None and files.index is not None:  # the stored file's own damage too
        stored = [*files.index.problems, *filter(None, [unusable(files.index)])]
        doc["problems"] += [p for p in problems_doc(stored) if p not in doc["problems"]]
    return doc


def _replay_problems(replay: Replay | None, path: str | None) -> list[dict[str, object]]:
    """What the replay met, as problems: every reason for the exit status is listed."""
    if replay is None:
        return []
    found = [FormatError(i.reason, file=i.file, offset=i.offset, field="log record")
             for i in replay.issues]
    if replay.lost:
        found.append(FormatError(f"Lost log: {replay.lost}", file=f"{path}.log",
                                 field="log position"))
    return problems_doc(found)


def _cache_problems(doc: dict[str, object]) -> list[dict[str, object]]:
    errors = [(r.get("cache") or {}).get("error") for r in doc.get("records", [])]
    return [e for e in errors if isinstance(e, dict)]


# log -------------------------------------------------------------------
def log_doc(log: L.LogFile, uid: int | None = None) -> dict[str, object]:
    records = [
        _log_record_doc(r, log.byteorder) for r in log.records if uid is None or _mentions(r, uid)
    ]
    return {
        "kind": "log",
        "path": log.path,
        "byteorder": BYTEORDER_NAMES[log.byteorder],
        "header": log.header.to_dict(),
        "records": records,
        "valid_end": log.valid_end,
        "end_reason": log.end_reason,
        "trailing_bytes": log.trailing,
        "end_modseq": log.end_modseq,
        "problems": problems_doc(log.problems),
    }


def _log_record_doc(rec: L.LogRecord, bo: str) -> dict[str, object]:
    doc: dict[str, object] = {
        "offset": rec.offset,
        "type": rec.name,
        "type_raw": rec.type,
        "external": rec.external,
        "sync": rec.sync,
        "size": rec.size,
        "modseq": rec.modseq,
    }
    doc.update(_payload_doc(rec, bo))
    if rec.error is not None:
        doc["error"] = rec.error.to_dict()
        doc["payload_hex"] = rec.data.hex()
    return doc


def _plain(item) -> dict[str, object]:
    out = {}
    for name, value in item._asdict().items():
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, tuple):
            value = [[r.uid1, r.uid2] for r in value]
        out[name] = value
    return out


def _payload_doc(rec: L.LogRecord, bo: str) -> dict[str, object]:
    items = rec.items
    code = rec.base_code
    if code in (L.EXPUNGE, L.KEYWORD_RESET):
        return {"uids": [[r.uid1, r.uid2] for r in items]}
    if code == L.HEADER_UPDATE:
        return {"updates": [_header_update_doc(u, bo) for u in items]}
    if code == L.EXT_RESET and items:
        return _plain(items[0])
    if code == L.BOUNDARY and items:
        return {"boundary_size": items[0].size}
    if code == L.KEYWORD_UPDATE and items:
        kw = items[0]
        return {
            "modify": kw.modify_type,
            "name": kw.name,
            "uids": [[r.uid1, r.uid2] for r in kw.ranges],
        }
    key = {L.APPEND: "uids", L.EXPUNGE_GUID: "uids", L.EXT_INTRO: "intros"}.get(code, "updates")
    return {key: [_plain(i) for i in items]} if items else {}


def _header_update_doc(u: L.HeaderUpdate, bo: str) -> dict[str, object]:
    doc: dict[str, object] = {"offset": u.offset, "size": u.size, "hex": u.data.hex()}
    fields = []
    pos = u.offset
    while pos < u.offset + u.size and pos in HEADER_FIELD_AT:
        name, size = HEADER_FIELD_AT[pos]
        chunk = u.data[pos - u.offset : pos - u.offset + size]
        if len(chunk) < size:
            break
        values = layout(bo, HEADER_CODES[name]).unpack(chunk)
        value = values[0] if len(values) == 1 else list(values)
        fields.append({"name": name, "hex": chunk.hex(), "value": value})
        pos += size
    if fields:
        doc["fields"] = fields
    return doc


def _mentions(rec: L.LogRecord, uid: int) -> bool:
    for item in rec.items:
        if getattr(item, "uid", None) == uid:
            return True
        if hasattr(item, "uid1") and item.uid1 <= uid <= item.uid2:
            return True
        for r in getattr(item, "ranges", ()):
            if r.uid1 <= uid <= r.uid2:
                return True
    return False


# others ----------------------------------------------------------------
def standalone_cache_doc(cache: CacheFile) -> dict[str, object]:
    doc = cache_doc(cache)
    doc["kind"] = "cache"
    return doc


def uidlist_doc(uidlist: Uidlist) -> dict[str, object]:
    return {
        "kind": "uidlist",
        "path": uidlist.path,
        "version": uidlist.version,
        "uid_validity": uidlist.uid_validity,
        "next_uid": uidlist.next_uid,
        "guid": uidlist.guid,
        "header_extensions": dict(uidlist.header_extensions),
        "records": [
            {"uid": r.uid, "filename": r.filename, "extensions": dict(r.extensions), "line": r.line}
            for r in uidlist.records
        ],
        "problems": problems_doc(uidlist.problems),
    }


def keywords_file_doc(keywords: MaildirKeywords) -> dict[str, object]:
    return {
        "kind": "maildir-keywords",
        "path": keywords.path,
        "keywords": [
            {"index": i, "letter": chr(ord("a") + i), "name": n} for i, n in keywords.names
        ],
        "problems": problems_doc(keywords.problems),
    }


def dbox_doc(dbox: DboxFile) -> dict[str, object]:
    return {
        "kind": "dbox",
        "path": dbox.path,
        "size": dbox.size,
        "version": dbox.version,
        "msg_header_size": dbox.msg_header_size,
        "create_stamp": dbox.create_stamp,
        "header_fields": dict(dbox.header_fields),
        "messages": [
            {
                "offset": m.offset,
                "type": m.type,
                "size": m.size,
                "body_offset": m.body_offset,
                "guid": m.guid,
                "metadata": {METADATA_NAMES.get(k, k): v for k, v in m.metadata},
            }
            for m in dbox.messages
        ],
        "problems": problems_doc(dbox.problems),
    }


# entry point -----------------------------------------------------------
def build_dump(path: str, replay: bool = True, uid: int | None = None) -> dict[str, object]:
    """Read ``path`` (a file or a mailbox index directory) and build its document.

    Raises FormatError when the file cannot be parsed at all, OSError when it
    cannot be read.
    """
    import os

    from dovecot_index_tool.files import file_kind, index_prefix_in, read_file, read_index_set
    from dovecot_index_tool.format.cache import parse_cache
    from dovecot_index_tool.format.dbox import parse_dbox
    from dovecot_index_tool.format.index import parse_index
    from dovecot_index_tool.format.log import parse_log
    from dovecot_index_tool.format.replay import replay as run_replay
    from dovecot_index_tool.format.uidlist import parse_maildir_keywords, parse_uidlist

    if os.path.isdir(path):
        prefix = index_prefix_in(path)
        if prefix is None:
            raise FileNotFoundError(f"no Dovecot index files in {path}")
        path = prefix
    kind = file_kind(path) if os.path.exists(path) else "index"
    if kind == "index":
        if path.endswith(".backup") or not replay:
            raw = read_file(path)
            return index_doc(parse_index(raw.data, raw.path), uid=uid)
        files = read_index_set(path)
        if not files.exists:
            raise FileNotFoundError(f"no index files for {path}")
        if files.index is None and not files.logs:
            raise files.errors[0]
        result = run_replay(files.index, files.logs, path) if files.logs else None
        return index_set_doc(files, result, uid)
    raw = read_file(path)
    if kind == "log":
        return log_doc(parse_log(raw.data, raw.path), uid)
    if kind == "cache":
        return standalone_cache_doc(parse_cache(raw.data, raw.path))
    if kind == "uidlist":
        return uidlist_doc(parse_uidlist(raw.data, raw.path))
    if kind == "keywords":
        return keywords_file_doc(parse_maildir_keywords(raw.data, raw.path))
    if kind == "dbox":
        return dbox_doc(parse_dbox(raw.data, raw.path))
    raise FormatError("not a Dovecot index, log, cache, uidlist or dbox file", file=path)


def has_problems(doc: dict[str, object]) -> bool:
    """Whether a document lists problems: parse problems, replay issues and broken cache
    chains are all in ``problems``, so the exit status and the document agree."""
    return bool(doc.get("problems"))
