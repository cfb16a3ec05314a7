"""Which log files a sync reads, and from which offset.

Follows ``mail_transaction_log_view_set``: the index's log position picks the
first file, a missing file or an impossible offset loses the view, and a log
that starts over (no previous file) resets the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dovecot_index_tool.format import log as L


@dataclass(frozen=True)
class View:
    """The files to read with their start offsets; or why there is nothing to read."""

    files: tuple[tuple[L.LogFile, int], ...] = ()
    lost: str | None = None
    reset_by: L.LogFile | None = None  # the reset log the view starts with, if any


def select_view(files: Sequence[L.LogFile], start: tuple[int, int]) -> View:
    """The view from the index's log position ``start`` to the head (the last file)."""
    head = files[-1]
    seq, offset = _follow_rotation(files, *start)
    if seq > head.header.file_seq:
        return View(lost=f"Requested newer log than exists: seq={seq}")
    chain = _chain(files, seq)
    if isinstance(chain, str):
        return View(lost=chain)
    tail = chain[0]
    if tail.header.file_seq != seq:
        offset = 0
    if offset == 0:
        offset = tail.header.hdr_size
    lost = _offset_problem(tail, seq, offset)
    if lost:
        return View(lost=lost)
    return _from_last_reset([(f, offset if f is tail else f.header.hdr_size) for f in chain])


def _follow_rotation(files: Sequence[L.LogFile], seq: int, offset: int) -> tuple[int, int]:
    """A position at the very end of a rotated file is the start of its successor."""
    for f in files:
        if f.header.prev_file_seq == seq and offset == f.header.prev_file_offset:
            return f.header.file_seq, f.header.hdr_size
    return seq, offset


def _chain(files: Sequence[L.LogFile], seq: int) -> list[L.LogFile] | str:
    """Consecutive files from ``seq`` to the head; a gap is bridged only by a reset log."""
    by_seq = {f.header.file_seq: f for f in files}
    head_seq = files[-1].header.file_seq
    chain: list[L.LogFile] = []
    s = seq
    while s <= head_seq:
        f = by_seq.get(s)
        if f is None:
            f = next(
                (x for x in files if x.header.file_seq >= s and x.header.prev_file_seq == 0),
                None,
            )
            if f is None:
                have = ",".join(str(x) for x in sorted(by_seq))
                return (
                    f"Missing middle file seq={s} (between {seq}..{head_seq}, "
                    f"we have seqs {have})"
                )
            chain = []
            s = f.header.file_seq
        chain.append(f)
        s += 1
    return chain


def _offset_problem(tail: L.LogFile, seq: int, offset: int) -> str | None:
    if offset < tail.header.hdr_size:
        return (
            f"Invalid min_file_offset: file_seq={seq}, min_file_offset ({offset}) "
            f"< hdr_size ({tail.header.hdr_size})"
        )
    if offset > tail.valid_end:
        return (
            f"Invalid offset: file_seq={seq}, min_file_offset ({offset}) "
            f"> sync_offset ({tail.valid_end})"
        )
    return None


def _from_last_reset(view: list[tuple[L.LogFile, int]]) -> View:
    """Nothing before the last reset log counts; the view reads all of that log."""
    for i in range(len(view) - 1, -1, -1):
        f, start = view[i]
        if f.header.prev_file_seq == 0 and (i > 0 or start == f.header.hdr_size):
            return View(((f, f.header.hdr_size), *view[i + 1 :]), reset_by=f)
    return View(tuple(view))


def head_tail_offset(head: L.LogFile) -> int:
    """The head log's ``max_tail_offset`` as Dovecot's log reader tracks it.

    Dovecot reads the head log from its start when it opens it, before the index
    is mapped. External transactions need no mailbox sync, so the tail moves over
    them while it is flush with the read position; external header updates of
    ``log_file_tail_offset`` move it explicitly (never backwards).
    """
    last_read = max_tail = 0
    external = L.EXTERNAL
    update, mask = L.EXTERNAL | L.HEADER_UPDATE, L.EXTERNAL | L.TYPE_MASK
    for rec in head.records:
        if not rec.type & external or rec.error is not None:
            continue
        value = None
        if rec.type & mask == update:
            value = L.tail_offset_update(rec, head.byteorder)
        if value is not None:
            if last_read <= value <= rec.offset + rec.size:
                last_read = value
                max_tail = max(max_tail, value)
            continue
        if max_tail == rec.offset:
            max_tail += rec.size
    return max_tail
