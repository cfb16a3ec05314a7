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
from dovecot_index_tool.format.index import IndexFile, parse_index
from dovecot_index_tool.format.replay.engine import Engine
from dovecot_index_tool.format.replay.record_map import RecordMap
from dovecot_index_tool.format.replay.results import Replay, ReplayIssue

__all__ = ["Replay", "ReplayIssue", "replay"]


def replay(index: IndexFile | None, logs: Sequence[L.LogFile], path: str | None = None) -> Replay:
    """Replay ``logs`` (``.log.2`` and ``.log``, any order) over ``index`` (may be None)."""
    files = sorted(logs, key=lambda f: f.header.file_seq)
    head = files[-1] if files else None
    if index is not None:
        base = RecordMap.from_index(index)
        out_path = index.path
    else:
        bo = head.byteorder if head else LITTLE
        base = RecordMap.empty(bo, head.header.indexid if head else 0)
        out_path = path
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
