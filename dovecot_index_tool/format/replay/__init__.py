"""Mailbox state = ``dovecot.index`` + the log records after its head offset.

This replays the transaction log over the index the way Dovecot does when it
opens an index (``mail_index_sync_map`` for the head): it works on the same byte
layout Dovecot keeps in memory (header buffer, extension headers, fixed-size
records), so the result is the ``dovecot.index`` Dovecot would write next, and
it is parsed back with :func:`parse_index`. Where a record contradicts the state
(an append below ``next_uid``, a flag change of a UID past ``next_uid``) the
problem is recorded with its file and offset instead of being repaired.
"""

from __future__ import annotations

from collections.abc import Sequence

from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import LITTLE
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.format.index import (
    BASE_HEADER_SIZE,
    RECORD_MIN_SIZE,
    IndexFile,
    parse_index,
)
from dovecot_index_tool.format.replay.engine import Engine
from dovecot_index_tool.format.replay.record_map import RecordMap
from dovecot_index_tool.format.replay.results import Replay, ReplayIssue

__all__ = ["Replay", "ReplayIssue", "replay", "unusable"]


MAX_RECORD_SIZE = 1 << 16  # far above any record Dovecot writes (each extension < 32 KiB)


def unusable(index: IndexFile) -> FormatError | None:
    """Why Dovecot would not map this index at all, or None: a header whose sizes are
    impossible makes it throw the file away (``mail_index_map_check_header``), so a
    replay must not start from it either (a record size of 4 GiB is not a size to
    allocate)."""
    h = index.header
    if h.major_version != 7:
        return _unusable(index, 0, "header.major_version", 7, h.major_version)
    if not RECORD_MIN_SIZE <= h.record_size <= MAX_RECORD_SIZE:
        return _unusable(index, 8, "header.record_size",
                         f"{RECORD_MIN_SIZE}..{MAX_RECORD_SIZE}", h.record_size)
    if not BASE_HEADER_SIZE <= h.base_header_size <= h.header_size <= index.size:
        return _unusable(index, 2, "header.header_size",
                         f"{BASE_HEADER_SIZE} <= base <= header <= {index.size}",
                         f"base {h.base_header_size}, header {h.header_size}")
    return None


def _unusable(index: IndexFile, offset: int, field: str, expected, found) -> FormatError:
    return FormatError("Dovecot throws this index away: the replay starts without it",
                       file=index.path, offset=offset, field=field, expected=expected,
                       found=found)


def _read_order(logs: Sequence[L.LogFile]) -> list[L.LogFile]:
    """The logs in the order a sync reads them, the head last. The head is the file
    named ``.log`` (else the highest sequence); an older log counts only with a lower
    sequence than the head's (Dovecot never looks for the others)."""
    named = [f for f in logs if f.path and f.path.endswith(".log")]
    head = named[0] if named else max(logs, key=lambda f: f.header.file_seq, default=None)
    if head is None:
        return []
    older = [f for f in logs if f is not head and f.header.file_seq < head.header.file_seq]
    return [*sorted(older, key=lambda f: f.header.file_seq), head]


def replay(index: IndexFile | None, logs: Sequence[L.LogFile], path: str | None = None) -> Replay:
    """Replay ``logs`` (``.log.2`` and ``.log``, any order) over ``index`` (may be None)."""
    files = _read_order(logs)
    head = files[-1] if files else None
    if index is not None and unusable(index) is None:
        base = RecordMap.from_index(index)
        out_path = index.path
    else:  # no index, or one Dovecot throws away: it starts from an empty map
        bo = index.byteorder if index is not None else head.byteorder if head else LITTLE
        indexid = index.header.indexid if index is not None else 0
        base = RecordMap.empty(bo, indexid or (head.header.indexid if head else 0))
        out_path = index.path if index is not None else path
    engine = Engine(base, files)
    engine.run()
    data = engine.map.to_bytes()
    state = parse_index(data, out_path)
    return Replay(
        state,
        engine.start,
        engine.end,
        engine.applied,
        engine.reset,
        engine.lost,
        tuple(engine.issues),
        data,
    )
