"""Per-record modseqs: kept only once the ``modseq`` extension is there.

Records changed by the log get the log's modseq; records that had none when
tracking started get the header's highest modseq; the header remembers the log
position its highest modseq is valid for.
"""

from __future__ import annotations

from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.replay.record_map import RecordMap
from dovecot_index_tool.format.replay.results import Corrupted


class Modseqs:
    """Whether modseqs are tracked yet, and the updates that keep them."""

    def __init__(self) -> None:
        self.on = False

    def start_if_present(self, m: RecordMap) -> None:
        """Dovecot re-checks for the modseq extension whenever it copies the map."""
        if not self.on and m.ext_index("modseq") is not None:
            self.on = True

    def touch(self, m: RecordMap, first: int, last: int, value: int) -> None:
        """Raise the records' modseqs to the current log modseq (``update_to_highest``)."""
        if not self.on:
            return
        idx = m.ext_index("modseq")
        if idx is None:
            return
        off = m.exts[idx].record_offset
        st = m.lay.u64
        for seq in range(first, last + 1):
            rec = m.records[seq]
            if st.unpack_from(rec, off)[0] < value:
                st.pack_into(rec, off, value)


def update_records(m: RecordMap, tracker: Modseqs, record: L.LogRecord) -> None:
    """A modseq-update record: raise single records to the given modseqs."""
    for u in record.items:
        if u.uid == 0:
            continue
        seq = m.seq_of(u.uid)
        if seq is None:
            continue
        idx = m.ext_index("modseq")
        if not tracker.on or idx is None:
            raise Corrupted("modseqs updated before they were enabled")
        off = m.exts[idx].record_offset
        st = m.lay.u64
        if st.unpack_from(m.records[seq], off)[0] <= u.modseq:
            st.pack_into(m.records[seq], off, u.modseq)


def _header(m: RecordMap) -> tuple[int, int, int] | None:
    """highest_modseq, log_seq, log_offset; None without a well-sized modseq header."""
    idx = m.ext_index("modseq")
    if idx is None or m.exts[idx].hdr_size != 16:
        return None
    return m.lay.modseq_header.unpack_from(m.hdr, m.exts[idx].hdr_offset)


def fill_missing(m: RecordMap, seq: int, offset: int) -> None:
    """Give records without a modseq the header's highest modseq (sync init)."""
    hdr = _header(m)
    if hdr is None:
        return
    highest, log_seq, log_offset = hdr
    if (seq, offset) <= (log_seq, log_offset):
        return
    off = m.exts[m.ext_index("modseq")].record_offset
    st = m.lay.u64
    for rec in m.records:
        if st.unpack_from(rec, off)[0] == 0:
            st.pack_into(rec, off, highest)


def update_header(m: RecordMap, seq: int, offset: int, modseq: int) -> None:
    """At the end of a sync, the header's highest modseq as of the head's end."""
    hdr = _header(m)
    if hdr is None:
        return
    _, log_seq, log_offset = hdr
    if (log_seq, log_offset) < (seq, offset):
        ext = m.exts[m.ext_index("modseq")]
        m.lay.modseq_header.pack_into(m.hdr, ext.hdr_offset, modseq, seq, offset)
