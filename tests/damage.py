"""Damage real Dovecot files on a copy of a fixture store, one byte range at a time.

Why: a check is only proven by the damage it is meant to catch, and the only honest
damage is done to files the real Dovecot wrote. So nothing here builds a file: a
store of ``tests/fixtures`` is copied, and the helpers change bytes of its real
files at offsets found through the package's own parsers (the first log record of
a type, an extension's header, a message's record, its cache record ...).

Usage::

    store = copy_store(FIXTURES, "mdbox", tmp_path)
    index = store.index("INBOX")
    patch_u32(index, header_offset("seen_messages_count"), 11)
    findings = store.findings()
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from dovecot_index_tool.check.data import load_index
from dovecot_index_tool.check.findings import Finding
from dovecot_index_tool.check.target import check_path
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import encode_packed_offset, layout
from dovecot_index_tool.format.cache import CacheFile, CacheRecord, parse_cache, read_record
from dovecot_index_tool.format.index import HEADER_OFFSETS, Extension, IndexFile, parse_index
from dovecot_index_tool.format.log import LogFile, LogRecord, parse_log
from dovecot_index_tool.format.uidlist import Uidlist, parse_uidlist

LE = "<"  # every committed fixture was written on x86


# -- a copy of one store --------------------------------------------------------------
@dataclass(frozen=True)
class Store:
    """A copy of one store of ``tests/fixtures`` and the paths Dovecot gave its files."""

    base: Path  # the directory that stands for tests/fixtures
    info: dict  # the store's entry in stores.json

    @property
    def name(self) -> str:
        return self.info["store"]

    @property
    def format(self) -> str:
        return self.info["format"]

    def path(self, rel: str | None) -> Path | None:
        return None if rel is None else self.base / rel

    @property
    def home(self) -> Path:
        return self.base / self.info["home"]

    @property
    def root(self) -> Path:
        return self.base / self.info["root"]

    @property
    def index_root(self) -> Path | None:
        return self.path(self.info["index"])

    @property
    def control_root(self) -> Path | None:
        return self.path(self.info["control"])

    def index_dir(self, mailbox: str) -> Path:
        return self.base / self.info["index_dirs"][mailbox]

    def index(self, mailbox: str) -> Path:
        return self.index_dir(mailbox) / "dovecot.index"

    def log(self, mailbox: str) -> Path:
        return self.index_dir(mailbox) / "dovecot.index.log"

    def log2(self, mailbox: str) -> Path:
        return self.index_dir(mailbox) / "dovecot.index.log.2"

    def cache(self, mailbox: str) -> Path:
        return self.index_dir(mailbox) / "dovecot.index.cache"

    def mail_dir(self, mailbox: str) -> Path:
        """Where the messages are: maildir cur/new parent, dbox-Mails for sdbox."""
        if self.format != "maildir":
            return self.root / "mailboxes" / mailbox / "dbox-Mails"
        if mailbox == "INBOX":
            return self.root
        if self.info["layout"] == "fs":
            return self.root / mailbox
        return self.root / ("." + mailbox.replace("/", "."))

    def control_dir(self, mailbox: str) -> Path:
        """Where dovecot-uidlist and dovecot-keywords are (maildir)."""
        if self.control_root is None:
            return self.mail_dir(mailbox)
        return self.control_root / ("." + mailbox.replace("/", "."))

    def uidlist(self, mailbox: str) -> Path:
        return self.control_dir(mailbox) / "dovecot-uidlist"

    def list_index(self) -> Path:
        return self.base / self.info["list_index_dir"] / "dovecot.list.index"

    @property
    def storage_dir(self) -> Path:
        """mdbox ``m.N`` files (always under the mail root)."""
        return self.root / "storage"

    def map_index(self) -> Path:
        return (self.index_root or self.root) / "storage" / "dovecot.map.index"

    def check_args(self) -> tuple[Path, Path | None, Path | None]:
        return self.home, self.index_root, self.control_root

    def reports(self) -> list:
        home, index_root, control_root = self.check_args()
        return list(check_path(home, index_root=index_root, control_root=control_root))

    def findings(self) -> list[Finding]:
        return [f for report in self.reports() for f in report.findings]


def copy_store(fixtures: Path, store: str, dest: Path) -> Store:
    """Copy one store to ``dest`` and recreate the directories git does not keep.

    Empty directories are left out of the copy and then made again, so the copy is
    the same whether the fixtures come from a git checkout or from make-fixtures.
    """
    stores = json.loads((fixtures / "stores.json").read_text())
    info = next(s for s in stores if s["store"] == store)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(fixtures / store, dest / store, ignore=_empty_dirs, symlinks=True)
    copy = Store(dest, info)
    for mailbox in info["mailboxes"]:
        mail = copy.mail_dir(mailbox)
        subdirs = ("cur", "new", "tmp") if copy.format == "maildir" else ("",)
        for sub in subdirs:
            (mail / sub).mkdir(parents=True, exist_ok=True)
    return copy


def _empty_dirs(directory: str, names: list[str]) -> list[str]:
    skip = []
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path) and _is_empty_tree(path):
            skip.append(name)
    return skip


def _is_empty_tree(path: str) -> bool:
    return all(not files for _, _, files in os.walk(path))


# -- changing bytes -------------------------------------------------------------------
def patch_bytes(path: Path, offset: int, data: bytes) -> bytes:
    """Overwrite ``data`` at ``offset`` (inside the file); returns the old bytes."""
    raw = bytearray(path.read_bytes())
    if offset < 0 or offset + len(data) > len(raw):
        raise ValueError(f"{path}: {offset}+{len(data)} is outside {len(raw)} bytes")
    old = bytes(raw[offset : offset + len(data)])
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))
    return old


def read_u32(path: Path, offset: int, byteorder: str = LE) -> int:
    return layout(byteorder, "I").unpack_from(path.read_bytes(), offset)[0]


def read_u16(path: Path, offset: int, byteorder: str = LE) -> int:
    return layout(byteorder, "H").unpack_from(path.read_bytes(), offset)[0]


def patch_u32(path: Path, offset: int, value: int, byteorder: str = LE) -> int:
    """Write a u32; returns the old value."""
    old = read_u32(path, offset, byteorder)
    patch_bytes(path, offset, layout(byteorder, "I").pack(value))
    return old


def patch_u16(path: Path, offset: int, value: int, byteorder: str = LE) -> int:
    old = read_u16(path, offset, byteorder)
    patch_bytes(path, offset, layout(byteorder, "H").pack(value))
    return old


def patch_u8(path: Path, offset: int, value: int) -> int:
    old = path.read_bytes()[offset]
    patch_bytes(path, offset, bytes([value]))
    return old


def add_u32(path: Path, offset: int, delta: int, byteorder: str = LE) -> int:
    """Add ``delta`` to a u32 in place; returns the new value."""
    value = read_u32(path, offset, byteorder) + delta
    patch_u32(path, offset, value, byteorder)
    return value


def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def delete(path: Path) -> None:
    path.unlink()


def replace_text(path: Path, old: bytes, new: bytes) -> None:
    """Replace one exact occurrence of ``old`` (text files: uidlist, keywords)."""
    raw = path.read_bytes()
    if raw.count(old) != 1:
        raise ValueError(f"{path}: {old!r} occurs {raw.count(old)} times")
    path.write_bytes(raw.replace(old, new))


# -- finding places in real files, through the package's parsers ----------------------
def header_offset(name: str) -> int:
    """File offset of a base header field of dovecot.index (also list and map)."""
    return HEADER_OFFSETS[name][0]


def index_file(path: Path) -> IndexFile:
    return parse_index(path.read_bytes(), str(path))


def extension(path: Path, name: str) -> Extension:
    ext = index_file(path).extension(name)
    if ext is None:
        raise LookupError(f"{path} has no {name} extension")
    return ext


def record_offset(path: Path, uid: int) -> int:
    """File offset of the index record of ``uid``."""
    for rec in index_file(path).records:
        if rec.uid == uid:
            return rec.offset
    raise LookupError(f"{path} has no record for uid {uid}")


def uids(path: Path) -> list[int]:
    return [rec.uid for rec in index_file(path).records]


def ext_record_offset(path: Path, uid: int, name: str) -> int:
    """File offset of extension ``name``'s field in the record of ``uid``."""
    return record_offset(path, uid) + extension(path, name).record_offset


def ext_record_u32(path: Path, uid: int, name: str) -> int:
    return read_u32(path, ext_record_offset(path, uid, name))


def cache_offset_of(index: Path, uid: int) -> int:
    """The offset of ``uid``'s newest cache record, as Dovecot sees it: from the index
    with its log replayed (the log may have moved it since dovecot.index was written)."""
    state = load_index(index).state
    ext = state.extension("cache")
    for rec in state.records:
        if rec.uid == uid:
            return layout(state.byteorder, "I").unpack(ext.record_value(rec.data))[0]
    raise LookupError(f"{index} has no record for uid {uid}")


def keyword_name_offset_at(path: Path, number: int) -> int:
    """File offset of keyword ``number``'s name_offset field in the keywords header."""
    return extension(path, "keywords").data_offset + 4 + 8 * number + 4


def log_file(path: Path) -> LogFile:
    return parse_log(path.read_bytes(), str(path))


def log_records(path: Path, code: int | None = None, after: int = 0) -> list[LogRecord]:
    """Records of a log (optionally of one base type code) starting at or after ``after``."""
    return [
        rec
        for rec in log_file(path).records
        if rec.offset >= after and (code is None or rec.base_code == code)
    ]


def first_record(path: Path, code: int, after: int = 0) -> LogRecord:
    found = log_records(path, code, after)
    if not found:
        raise LookupError(f"{path} has no record of type 0x{code:x} at or after {after}")
    return found[0]


def packed_size(size: int) -> bytes:
    """A log record's size field as Dovecot encodes it (any multiple of 4, even < 8)."""
    return encode_packed_offset(size)


def cache_file(path: Path, index: Path | None = None) -> CacheFile:
    idx = index_file(index) if index is not None and index.exists() else None
    return parse_cache(
        path.read_bytes(),
        str(path),
        byteorder=idx.byteorder if idx else LE,
        indexid=idx.header.indexid if idx else None,
    )


def cache_record(cache: Path, offset: int) -> CacheRecord:
    rec = read_record(cache_file(cache), offset)
    if not isinstance(rec, CacheRecord):
        raise LookupError(f"{cache}: no valid record at {offset}: {rec}")
    return rec


def uidlist(path: Path) -> Uidlist:
    return parse_uidlist(path.read_bytes(), str(path))


def uidlist_line(path: Path, uid: int) -> bytes:
    """The exact bytes of the uidlist line of ``uid`` (with its newline)."""
    for line in path.read_bytes().splitlines(keepends=True)[1:]:
        if line.split(b" ", 1)[0] == str(uid).encode():
            return line
    raise LookupError(f"{path} has no line for uid {uid}")


def maildir_file(store: Store, mailbox: str, base: str) -> Path:
    """The message file (in cur/ or new/) whose base name is ``base``."""
    mail = store.mail_dir(mailbox)
    for sub in ("cur", "new"):
        for entry in (mail / sub).iterdir():
            if entry.name.split(":", 1)[0] == base:
                return entry
    raise LookupError(f"no message file {base} in {mail}")


def map_entry_offset(map_index: Path, map_uid: int, ext: str) -> int:
    """File offset of the ``map`` or ``ref`` field of a map record."""
    return ext_record_offset(map_index, map_uid, ext)


__all__ = [
    "L",
    "Store",
    "add_u32",
    "append",
    "cache_file",
    "cache_offset_of",
    "cache_record",
    "copy_store",
    "delete",
    "ext_record_offset",
    "ext_record_u32",
    "extension",
    "first_record",
    "header_offset",
    "index_file",
    "keyword_name_offset_at",
    "log_file",
    "log_records",
    "maildir_file",
    "map_entry_offset",
    "packed_size",
    "patch_bytes",
    "patch_u8",
    "patch_u16",
    "patch_u32",
    "read_u16",
    "read_u32",
    "record_offset",
    "replace_text",
    "truncate",
    "uidlist",
    "uidlist_line",
    "uids",
]


# -- the times Dovecot acts on ----------------------------------------------------------
DAY = 86400
STORE_AGES = {"fresh": 0, "aged": 30 * DAY}  # how far back a store's recorded times go
INDEX_TIMES = ("log2_rotate_time", "day_stamp")
LOG_CREATE_STAMP = 20  # struct mail_transaction_log_header


def set_store_times(base: Path, when: int) -> list[Path]:
    """Move every time Dovecot records and acts on to ``when``: the index headers'
    ``log2_rotate_time`` (``.log.2`` is deleted once it is older than
    ``mail_index_log2_max_age``) and ``day_stamp``, and every log's ``create_stamp``.
    The committed fixtures carry the day they were made; a test that must not depend
    on today's date sets them to now, or to a month ago, first."""
    changed = []
    for path in sorted(p for p in Path(base).rglob("dovecot*") if p.is_file()):
        name = path.name
        if name.endswith((".log", ".log.2")):
            patch_u32(path, LOG_CREATE_STAMP, when)
        elif name.endswith((".index", ".index.backup")):
            for field in INDEX_TIMES:
                stamp = when - when % DAY if field == "day_stamp" else when
                patch_u32(path, header_offset(field), stamp)
        else:
            continue
        changed.append(path)
    return changed


def age_store(store: Store, age: str) -> Store:
    """``store`` with its recorded times set to now minus ``STORE_AGES[age]``."""
    set_store_times(store.base / store.name, int(time.time()) - STORE_AGES[age])
    return store
