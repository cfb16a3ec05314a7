"""Big-endian files: every real fixture, rewritten as a big-endian Dovecot would have.

Why: Dovecot writes each integer in its host's byte order, marked only by bit
0x01 of ``compat_flags`` in the index and the log (the cache follows its
index). Every committed fixture comes from an x86 (little-endian) machine, so a
parser that ignored the mark, or honoured it for some fields only, would pass
every other test. ``tests/byteswap.py`` turns each real file into its big-endian
twin; here we check that the twin really differs, is detected as big-endian,
and decodes to the same documents: index header, extensions, records, log
records, cache chains, and the state the log replay builds.

Raw byte views in the documents (``hex``, ``header_hex``, ``payload_hex``, the
raw data of ext-hdr and ext-rec log updates) are byte-order dependent by nature
and are left out of the comparison; each has a decoded counterpart that is
compared instead (the ext updates' data is decoded by the replays).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from byteswap import (
    CACHE_SUFFIX,
    INDEX_SUFFIXES,
    LOG_SUFFIXES,
    sequential_walk,
    swap_index_files,
)
from conftest import NOT_STORES
from dovecot_index_tool import dump
from dovecot_index_tool.format.cache import CacheFile, parse_cache
from dovecot_index_tool.format.index import HEADER_FIELDS, HEADER_OFFSETS, IndexFile, parse_index
from dovecot_index_tool.format.log import LogFile, parse_log
from dovecot_index_tool.format.replay import Replay, replay

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PREFIXES = ("dovecot.index", "dovecot.list.index", "dovecot.map.index", "dovecot.index.pvt")
SUFFIXES = (*INDEX_SUFFIXES, *LOG_SUFFIXES, CACHE_SUFFIX)
ORDERS = {"little": "<", "big": ">"}
NO_FIXTURES = "tests/fixtures has no Dovecot index, log or cache files (run scripts/make-fixtures)"


# fixtures ----------------------------------------------------------------
def _discover(root: Path) -> dict[str, dict[str, Path]]:
    """Index prefixes (as paths relative to ``root``) -> their files by suffix."""
    found: dict[str, dict[str, Path]] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.relative_to(root).parts[0] in NOT_STORES:
            continue
        for prefix in PREFIXES:
            suffix = path.name[len(prefix) :] if path.name.startswith(prefix) else None
            if suffix in SUFFIXES:
                key = str(path.relative_to(root).with_name(prefix))
                found.setdefault(key, {})[suffix] = path
    return found


SETS = _discover(FIXTURES)


def _params(suffixes: tuple[str, ...]) -> list:
    params = [
        pytest.param(prefix, suffix, id=prefix + suffix)
        for prefix, files in SETS.items()
        for suffix in suffixes
        if suffix in files
    ]
    return params or [pytest.param(None, None, marks=pytest.mark.skip(reason=NO_FIXTURES))]


INDEX_FILES = _params(INDEX_SUFFIXES)
LOG_FILES = _params(LOG_SUFFIXES)
CACHE_FILES = _params((CACHE_SUFFIX,))
ALL_FILES = _params(SUFFIXES)


CACHE_GUESS_FILES = list(CACHE_FILES)
LOGGED_PREFIXES = [
    pytest.param(prefix, id=prefix)
    for prefix, files in SETS.items()
    if any(s in files for s in LOG_SUFFIXES)
] or [pytest.param(None, marks=pytest.mark.skip(reason=NO_FIXTURES))]



@dataclass(frozen=True)
class Twins:
    """One index prefix's files as Dovecot wrote them, and their big-endian twins."""

    prefix: str
    little: dict[str, bytes]
    big: dict[str, bytes]

    def files(self, order: str) -> dict[str, bytes]:
        return self.little if order == "little" else self.big


@cache
def twins(prefix: str) -> Twins:
    little = {suffix: path.read_bytes() for suffix, path in SETS[prefix].items()}
    return Twins(prefix, little, swap_index_files(little))


@dataclass(frozen=True)
class Parsed:
    """Everything the dump builds from one prefix in one byte order."""

    index: IndexFile | None
    logs: tuple[LogFile, ...]
    state: IndexFile | None  # the replayed index (the stored one when there is no log)
    replayed: Replay | None
    cache: CacheFile | None


@cache
def parsed(prefix: str, order: str) -> Parsed:
    files = twins(prefix).files(order)
    index = parse_index(files[""], prefix) if "" in files else None
    logs = tuple(parse_log(files[s], prefix + s) for s in LOG_SUFFIXES if s in files)
    result = replay(index, logs, prefix) if logs else None
    state = result.index if result is not None else index
    cache_file = None
    if CACHE_SUFFIX in files:
        # as files.read_index_set does: the order of the index, else of the newest log
        newest = max(logs, key=lambda f: f.header.file_seq) if logs else None
        bo = index.byteorder if index else (newest.byteorder if newest else None)
        indexid = index.header.indexid if index else None
        cache_file = parse_cache(files[CACHE_SUFFIX], prefix + CACHE_SUFFIX, bo, indexid)
    return Parsed(index, logs, state, result, cache_file)


# comparing documents ------------------------------------------------------
HEADER_CODES = dict(HEADER_FIELDS)


def decoded(node: object, bo: str = "<", workarounds: bool = True) -> object:
    """A dump document without its byte-order dependent parts (see the module doc).

    With ``workarounds``, the values the dump keeps in a byte-order dependent
    form are decoded here: in the cache ``date.sent`` (``{u32 time; i32 tz}``,
    shown as one u64) and the ``flags`` bitmask (shown as raw hex); in log header
    updates ``day_first_uid`` (shown as one number).
    """
    if isinstance(node, list):
        return [decoded(item, bo, workarounds) for item in node]
    if not isinstance(node, dict):
        return node
    bo = ORDERS.get(node.get("byteorder"), bo)  # type: ignore[arg-type]
    node = dict(node)
    if workarounds and "type" in node and "hex" in node and "value" in node:
        node = _cache_value_workaround(node, bo)
    if "fields" in node and "offset" in node and "hex" in node:
        node = _header_update_decoded(node, bo, workarounds)
    out = {}
    for key, value in node.items():
        if key == "byteorder" or (key in ("hex", "payload_hex") and _has_decoded(node)):
            continue
        if key == "header_hex" and ("header" in node or node.get("name") == "keywords"):
            continue
        if key == "compat_flags":
            value &= ~0x01  # the byte-order mark itself: checked on its own
        out[key] = decoded(value, bo, workarounds)
    return out


def _has_decoded(node: dict) -> bool:
    return "value" in node or "error" in node


def _cache_value_workaround(node: dict, bo: str) -> dict:
    raw = bytes.fromhex(node["hex"])
    if node["type"] == "fix" and node.get("name") == "date.sent" and len(raw) == 8:
        node["value"] = list(struct.unpack(bo + "Ii", raw))
    elif node["type"] == "bit" and len(raw) in (2, 4, 8):
        node["value"] = int.from_bytes(raw, "little" if bo == "<" else "big")
    return node


def _header_update_decoded(node: dict, bo: str, workarounds: bool) -> dict:
    """A HEADER_UPDATE: its fields' decoded values, and the bytes after the last field.

    With ``workarounds``, array fields (``day_first_uid``, which the dump reads as
    one 256-bit number) are decoded element by element.
    """
    fields = []
    for field in node["fields"]:
        field = dict(field)
        code = HEADER_CODES[field["name"]]
        if workarounds and code[0].isdigit():
            field["value"] = list(struct.unpack(bo + code, bytes.fromhex(field["hex"])))
        fields.append(field)
    covered = sum(HEADER_OFFSETS[f["name"]][1] for f in fields)
    node["fields"] = fields
    node["rest_hex"] = node.pop("hex")[2 * covered :]
    return node


def log_decoded(doc: dict, workarounds: bool = True) -> object:
    """A log document, without the raw data of ext-hdr and ext-rec updates."""
    records = []
    for rec in doc["records"]:
        if rec["type"] in ("ext-hdr", "ext-hdr32", "ext-rec") and "updates" in rec:
            rec = dict(rec)
            rec["updates"] = [{k: v for k, v in u.items() if k != "data"} for u in rec["updates"]]
        records.append(rec)
    return decoded(doc | {"records": records}, workarounds=workarounds)


def index_set_doc(p: Parsed) -> dict:
    """What ``dump`` shows for the prefix: replayed index, cache and record chains."""
    return dump.index_doc(p.state, p.cache, p.replayed, None, p.index)


# 1. round trip ------------------------------------------------------------
@pytest.mark.parametrize(("prefix", "suffix"), ALL_FILES)
def test_swapping_a_file_twice_gives_back_the_bytes_dovecot_wrote(prefix, suffix):
    t = twins(prefix)
    assert swap_index_files(t.big)[suffix] == t.little[suffix]


# 2. the twin is big-endian --------------------------------------------------
@pytest.mark.parametrize(("prefix", "suffix"), INDEX_FILES)
def test_swapped_index_differs_and_is_read_as_big_endian(prefix, suffix):
    t = twins(prefix)
    assert t.big[suffix] != t.little[suffix]
    little, big = parse_index(t.little[suffix]), parse_index(t.big[suffix])
    assert (little.byteorder, big.byteorder) == ("<", ">")
    assert little.header.compat_flags & 0x01 and not big.header.compat_flags & 0x01


@pytest.mark.parametrize(("prefix", "suffix"), LOG_FILES)
def test_swapped_log_differs_and_is_read_as_big_endian(prefix, suffix):
    t = twins(prefix)
    assert t.big[suffix] != t.little[suffix]
    little, big = parse_log(t.little[suffix]), parse_log(t.big[suffix])
    assert (little.byteorder, big.byteorder) == ("<", ">")
    assert little.header.compat_flags & 0x01 and not big.header.compat_flags & 0x01


@pytest.mark.parametrize(("prefix", "suffix"), CACHE_FILES)
def test_swapped_cache_differs_and_is_read_in_the_order_of_its_index(prefix, suffix):
    t = twins(prefix)
    assert t.big[suffix] != t.little[suffix]
    assert parsed(prefix, "little").cache.byteorder == "<"
    assert parsed(prefix, "big").cache.byteorder == ">"


@pytest.mark.parametrize(("prefix", "suffix"), CACHE_GUESS_FILES)
def test_cache_byte_order_is_recognised_without_its_index(prefix, suffix):
    """``dump`` of a lone ``.cache`` file has no index to take the order from."""
    reference = decoded(index_set_doc(parsed(prefix, "little")))["cache"] | {"kind": "cache"}
    for order, bo in ORDERS.items():
        data = twins(prefix).files(order)[suffix]
        alone = parse_cache(data, prefix + suffix)
        assert alone.byteorder == bo
        assert decoded(dump.standalone_cache_doc(alone)) == reference


# 3. same documents ---------------------------------------------------------
@pytest.mark.parametrize(("prefix", "suffix"), INDEX_FILES)
def test_swapped_index_decodes_to_the_same_document(prefix, suffix):
    t = twins(prefix)
    little = dump.index_doc(parse_index(t.little[suffix], prefix + suffix))
    big = dump.index_doc(parse_index(t.big[suffix], prefix + suffix))
    assert (little["byteorder"], big["byteorder"]) == ("little", "big")
    assert decoded(big) == decoded(little)


@pytest.mark.parametrize(("prefix", "suffix"), LOG_FILES)
def test_swapped_log_decodes_to_the_same_document(prefix, suffix):
    t = twins(prefix)
    little = dump.log_doc(parse_log(t.little[suffix], prefix + suffix))
    big = dump.log_doc(parse_log(t.big[suffix], prefix + suffix))
    assert (little["byteorder"], big["byteorder"]) == ("little", "big")
    assert log_decoded(big) == log_decoded(little)


@pytest.mark.parametrize(("prefix", "suffix"), CACHE_FILES)
def test_swapped_cache_decodes_to_the_same_fields_and_record_chains(prefix, suffix):
    little, big = parsed(prefix, "little"), parsed(prefix, "big")
    little_doc, big_doc = decoded(index_set_doc(little)), decoded(index_set_doc(big))
    assert big_doc["cache"] == little_doc["cache"]
    assert big_doc["records"] == little_doc["records"]


def test_cache_values_in_the_dump_do_not_depend_on_the_byte_order():
    prefixes = [param.values[0] for param in CACHE_FILES if param.values[0] is not None]
    if not prefixes:
        pytest.skip(NO_FIXTURES)
    for prefix in prefixes:
        little = decoded(index_set_doc(parsed(prefix, "little")), workarounds=False)
        big = decoded(index_set_doc(parsed(prefix, "big")), workarounds=False)
        assert big["records"] == little["records"], prefix


def test_log_values_in_the_dump_do_not_depend_on_the_byte_order():
    files = [param.values for param in LOG_FILES if param.values[0] is not None]
    if not files:
        pytest.skip(NO_FIXTURES)
    for prefix, suffix in files:
        t = twins(prefix)
        little = dump.log_doc(parse_log(t.little[suffix], prefix + suffix))
        big = dump.log_doc(parse_log(t.big[suffix], prefix + suffix))
        assert log_decoded(big, workarounds=False) == log_decoded(little, workarounds=False)


@pytest.mark.parametrize(("prefix", "suffix"), CACHE_FILES)
def test_every_cache_record_is_reached_by_walking_the_file(prefix, suffix):
    """The helper swaps what it finds: the walk over the file must reach its end."""
    for order in ("little", "big"):
        cache_file = parsed(prefix, order).cache
        _, end = sequential_walk(cache_file)
        assert end == cache_file.size


def test_the_fixtures_give_the_comparisons_something_to_compare():
    """Equal documents prove nothing when they are empty: the fixtures as a whole
    must hold cache record chains and log records of the kinds with ext data."""
    if not SETS:
        pytest.skip(NO_FIXTURES)
    chains = sum(
        len(rec.get("cache", {}).get("records", []))
        for param in CACHE_FILES
        for rec in index_set_doc(parsed(param.values[0], "little"))["records"]
    )
    assert chains > 0
    kinds = {
        rec.name
        for prefix in SETS
        for log_file in parsed(prefix, "little").logs
        for rec in log_file.records
    }
    assert {"ext-intro", "ext-rec", "ext-hdr", "header-update", "append"} <= kinds


# 4. the replay -------------------------------------------------------------
@pytest.mark.parametrize("prefix", LOGGED_PREFIXES)
def test_replaying_the_logs_gives_the_same_state_in_both_byte_orders(prefix):
    little, big = parsed(prefix, "little"), parsed(prefix, "big")
    assert (little.state.byteorder, big.state.byteorder) == ("<", ">")
    assert decoded(index_set_doc(big)) == decoded(index_set_doc(little))


@pytest.mark.parametrize("prefix", LOGGED_PREFIXES)
def test_replaying_the_whole_log_chain_gives_the_same_state_in_both_byte_orders(prefix):
    """From an empty index, so that every log record is applied, not only the
    ones after the stored index's head offset."""
    docs = []
    for order in ("little", "big"):
        p = parsed(prefix, order)
        result = replay(None, p.logs, prefix)
        docs.append(dump.index_doc(result.index, None, result))
    assert decoded(docs[1]) == decoded(docs[0])
