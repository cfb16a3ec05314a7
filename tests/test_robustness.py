"""Damaged bytes give a parse or a FormatError: never a crash, a hang, or a blow-up.

Every file Dovecot made for the fixtures is truncated at every offset (a dense
sample for large files) and mutated at random, and each variant goes through
the parser, the log replay and the dump document builder.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, store_files
from dovecot_index_tool import dump
from dovecot_index_tool.files import file_kind
from dovecot_index_tool.format.cache import parse_cache
from dovecot_index_tool.format.dbox import parse_dbox
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.format.index import parse_index
from dovecot_index_tool.format.log import parse_log
from dovecot_index_tool.format.replay import replay
from dovecot_index_tool.format.uidlist import parse_maildir_keywords, parse_uidlist

MUTATIONS = int(os.environ.get("DIT_MUTATIONS", "1000"))
MAX_TRUNCATIONS = 600
SLOW = 2.0  # seconds for one variant: far above normal, far below a hang
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF)


def _cache_offsets(path: Path) -> list[int]:
    """Record offsets the real index points at, so mutated caches get their chains walked."""
    index_path = path.with_name(path.name.removesuffix(".cache"))
    if not index_path.exists():
        return [32]
    try:
        idx = parse_index(index_path.read_bytes())
    except FormatError:
        return [32]
    ext = idx.extension("cache")
    if ext is None:
        return [32]
    offsets = {int.from_bytes(ext.record_value(r.data), "little") for r in idx.records}
    return sorted(o for o in offsets if o) or [32]


def exercise(kind: str, data: bytes, cache_offsets: list[int]) -> None:
    """Everything the tool does with one file's bytes."""
    if kind == "index":
        idx = parse_index(data, "x")
        dump.index_doc(idx)
        dump.index_doc(replay(idx, []).index)
    elif kind == "log":
        log = parse_log(data, "x")
        dump.log_doc(log)
        dump.index_doc(replay(None, [log]).index)
    elif kind == "cache":
        cache = parse_cache(data, "x")
        dump.cache_doc(cache)
        for offset in cache_offsets:
            chain = cache.chain(offset)
            for rec in chain.records:
                for value in rec.values:
                    fld = cache.fields[value.field_index]
                    dump._cache_value_doc(fld, value, cache.byteorder)
    elif kind == "uidlist":
        dump.uidlist_doc(parse_uidlist(data, "x"))
    elif kind == "keywords":
        dump.keywords_file_doc(parse_maildir_keywords(data, "x"))
    elif kind == "dbox":
        dump.dbox_doc(parse_dbox(data, "x"))


def _checked(kind: str, data: bytes, offsets: list[int], what: str) -> None:
    start = time.perf_counter()
    try:
        exercise(kind, data, offsets)
    except FormatError as err:
        assert err.reason, what
    elapsed = time.perf_counter() - start
    assert elapsed < SLOW, f"{what} took {elapsed:.2f}s"


def _files() -> list[Path]:
    if not FIXTURES.exists():
        return []
    return [p for p in store_files(FIXTURES) if file_kind(p) != "unknown"]


FILES = _files()
IDS = [str(p.relative_to(FIXTURES)) for p in FILES]


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_truncated_file_never_crashes(path: Path) -> None:
    data = path.read_bytes()
    kind = file_kind(path)
    offsets = _cache_offsets(path) if kind == "cache" else []
    step = max(1, len(data) // MAX_TRUNCATIONS)
    for cut in [*list(range(0, len(data), step)), len(data) - 1]:
        _checked(kind, data[:cut], offsets, f"{path} cut at {cut}")


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_mutated_file_never_crashes(path: Path) -> None:
    data = path.read_bytes()
    if not data:
        pytest.skip("empty file")
    kind = file_kind(path)
    offsets = _cache_offsets(path) if kind == "cache" else []
    rng = random.Random(f"{path.name}:{len(data)}")
    for i in range(MUTATIONS):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(buf))
            if rng.random() < 0.5:
                buf[pos] = rng.choice(INTERESTING)
            else:
                buf[pos] = rng.randrange(256)
        _checked(kind, bytes(buf), offsets, f"{path} mutation {i}")


def test_hostile_lengths_are_bounded_by_the_file() -> None:
    """Huge counts and sizes in tiny files must not allocate or loop by the length field."""
    header = bytearray(120)
    header[0], header[1] = 7, 3
    header[2:4] = (120).to_bytes(2, "little")
    header[4:8] = (0xFFFFFFF0).to_bytes(4, "little")  # header_size
    header[8:12] = (0xFFFFFFF0).to_bytes(4, "little")  # record_size
    header[12] = 1
    header[32:36] = (0xFFFFFFFF).to_bytes(4, "little")  # messages_count
    idx = parse_index(bytes(header))
    assert len(idx.records) == 0
    assert idx.problems
    log = bytearray(40)
    log[0], log[1], log[32] = 1, 3, 1
    log[2:4] = (40).to_bytes(2, "little")
    log += bytes([0xFF, 0xFF, 0xFF, 0xFF]) + (2).to_bytes(4, "little")  # 1 GiB record
    parsed = parse_log(bytes(log))
    assert parsed.records == ()
    assert parsed.end_reason == "unfinished"


def test_an_impossible_record_size_is_never_allocated(tmp_path):
    """A list index whose header says records are 4 GiB, replayed with a log that appends:
    Dovecot throws such an index away, and the replay must start from nothing, not
    allocate the size (run under a 1 GiB address-space limit)."""
    import subprocess
    import sys

    box = tmp_path / "sdbox"
    shutil.copytree(FIXTURES / "sdbox" / "bob" / "sdbox", box)
    index = box / "dovecot.list.index"
    data = bytearray(index.read_bytes())
    data[8:12] = b"\xff\xff\xff\xff"  # header.record_size
    data[68:72] = (40).to_bytes(4, "little")  # log_file_head_offset: replay every record
    index.write_bytes(bytes(data))
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
            "from dovecot_index_tool.cli import run; sys.argv[1:] = ['dump', '--json', "
            f"{str(index)!r}]; run()")

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)

    assert "MemoryError" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 4, done.stderr


def test_prefetch_never_blocks_and_changes_nothing(tmp_path) -> None:
    """Advice to the kernel before a read: a FIFO, a directory, a missing file and a
    symlink are passed over at once, and a real file keeps its bytes and times."""
    import threading

    from dovecot_index_tool.readahead import prefetch

    real = tmp_path / "dovecot.index.log"
    shutil.copy(FIXTURES / "maildir/alice/Maildir/dovecot.index.log", real)
    os.utime(real, ns=(1_000_000_000, 2_000_000_000))
    fifo = tmp_path / "dovecot.index"
    os.mkfifo(fifo)
    (tmp_path / "dovecot.index.cache").symlink_to(real)
    before = real.read_bytes()
    paths = [str(fifo), str(tmp_path), str(tmp_path / "missing"),
             str(tmp_path / "dovecot.index.cache"), str(real)]
    done = threading.Thread(target=prefetch, args=(paths,), daemon=True)
    done.start()
    done.join(timeout=10)
    assert not done.is_alive()
    st = real.stat()
    assert real.read_bytes() == before and st.st_mtime_ns == 2_000_000_000
