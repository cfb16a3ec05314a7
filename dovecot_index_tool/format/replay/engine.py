"""One sync of the map from its log position to the end of the head log.

The engine holds what lasts across records (the map, the extension an intro
selected, whether modseqs are tracked) and hands each record to its handler;
a record that cannot be applied becomes an issue and the sync goes on.
"""

from __future__ import annotations

from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.index import HDR_FLAG_FSCKD, HDR_FLAG_HAVE_DIRTY, MAIL_DIRTY
from dovecot_index_tool.format.replay import ext_records, messages, modseqs
from dovecot_index_tool.format.replay.keywords import reset_keywords, update_keywords
from dovecot_index_tool.format.replay.record_map import RecordMap
from dovecot_index_tool.format.replay.results import Corrupted, ReplayIssue
from dovecot_index_tool.format.replay.view import View, head_tail_offset, select_view


class Engine:
    """Runs one sync of the map from its log position to the end of the head log."""

    def __init__(self, base: RecordMap, files: list[L.LogFile]) -> None:
        self.map = base
        self.files = files
        self.issues: list[ReplayIssue] = []
        self.applied = 0
        self.reset = False
        self.lost: str | None = None
        self.start = (base.get("log_file_seq"), base.get("log_file_head_offset"))
        self.end = self.start
        self.selected = ext_records.Selection()
        self.modseqs = modseqs.Modseqs()
        self.current: L.LogRecord | None = None
        self.current_file: L.LogFile | None = None

    def run(self) -> None:
        if not self.files:
            self.lost = "no transaction log"
            return
        view = select_view(self.files, self.start)
        if view.lost is not None:
            self.lost = view.lost
            return
        if view.reset_by is not None:
            self._reset(view.reset_by)
        head = self.files[-1]
        max_tail = head_tail_offset(head)
        had_dirty = bool(self.map.get("flags") & HDR_FLAG_HAVE_DIRTY)
        if had_dirty:
            self.map.set("flags", self.map.get("flags") & ~HDR_FLAG_HAVE_DIRTY)
        self._apply_view(view)
        if had_dirty and any(r[4] & MAIL_DIRTY for r in self.map.records):
            self.map.set("flags", self.map.get("flags") | HDR_FLAG_HAVE_DIRTY)
        self.end = (head.header.file_seq, head.valid_end)
        self._finish(head, max_tail)

    def _reset(self, first: L.LogFile) -> None:
        """A reset log starts the index over: only indexid, FSCKD and the log seq remain."""
        old = self.map
        self.reset = True
        fsckd = bool(old.get("flags") & HDR_FLAG_FSCKD)
        self.map = RecordMap.empty(old.bo, old.get("indexid"), fsckd)
        self.map.set("log_file_seq", first.header.file_seq)
        self.map.set("log_file_tail_offset", 0)

    def _apply_view(self, view: View) -> None:
        self.modseqs.on = self.map.ext_index("modseq") is not None
        if self.modseqs.on:
            first, offset = view.files[0]
            modseqs.fill_missing(self.map, first.header.file_seq, offset)
        for log_file, start in view.files:
            if not self._apply_file(log_file, start):
                break

    def _apply_file(self, log_file: L.LogFile, start: int) -> bool:
        """Apply the records from ``start``; False when a broken record ends the log."""
        self.current_file = log_file
        for record in log_file.records:
            if record.offset < start:
                continue
            if record.error is not None:
                self._issue(record, record.error.reason)
                return False
            self.current = record
            try:
                self._apply(record)
            except Corrupted as err:
                self._issue(record, str(err))
            self.applied += 1
        return True

    def _issue(self, record: L.LogRecord, reason: str) -> None:
        path = self.current_file.path if self.current_file else None
        self.issues.append(ReplayIssue(path, record.offset, reason))

    def _finish(self, head: L.LogFile, max_tail: int) -> None:
        m = self.map
        if self.modseqs.on:
            modseqs.update_header(m, head.header.file_seq, head.valid_end, head.end_modseq)
        if m.get("log_file_seq") != head.header.file_seq:
            m.set("log_file_seq", head.header.file_seq)
            m.set("log_file_tail_offset", 0)
        m.set("log_file_head_offset", head.valid_end)
        if m.get("log_file_tail_offset") < max_tail:
            m.set("log_file_tail_offset", max_tail)
        m.set("messages_count", len(m.records))

    def _position(self) -> tuple[int, int]:
        if self.current is None or self.current_file is None:
            return self.start
        return (self.current_file.header.file_seq, self.current.offset)

    # records -----------------------------------------------------------
    def _apply(self, record: L.LogRecord) -> None:
        handler = _MESSAGE_HANDLERS.get(record.base_code)
        if handler is not None:
            handler(self.map, self.modseqs, record)
            return
        method = _HANDLERS.get(record.base_code)
        if method is None:
            raise Corrupted(f"Unknown transaction record type 0x{record.code:x}")
        method(self, record)

    def _ext_intro(self, record: L.LogRecord) -> None:
        for intro in record.items:
            self.selected = ext_records.BROKEN
            self.selected = ext_records.introduce(self.map, intro)

    def _ext_reset(self, record: L.LogRecord) -> None:
        ext_records.reset(self.map, self.selected, record)

    def _ext_hdr_update(self, record: L.LogRecord) -> None:
        missing = "Extension header update without intro prefix"
        ext = ext_records.selected_ext(self.map, self.selected, missing)
        if ext is None:
            return
        for u in record.items:
            ext_records.write_header(self.map, ext, u)
            if ext.name == "modseq" and not self.modseqs.on:
                self.modseqs.on = True
                modseqs.fill_missing(self.map, *self._position())

    def _ext_rec_update(self, record: L.LogRecord) -> None:
        ext_records.update_records(self.map, self.selected, record)

    def _ext_atomic_inc(self, record: L.LogRecord) -> None:
        ext_records.increment_records(self.map, self.selected, record)

    def _keyword_update(self, record: L.LogRecord) -> None:
        try:
            update_keywords(self.map, self.modseqs, record)
        except Corrupted:
            self.selected = ext_records.BROKEN  # Dovecot's own keywords intro failed
            raise

    def _ignore(self, record: L.LogRecord) -> None:
        return None


# Records that need the map and the modseqs only; the rest use the intro's selection.
_MESSAGE_HANDLERS = {
    L.APPEND: messages.append,
    L.EXPUNGE: messages.expunge,
    L.EXPUNGE_GUID: messages.expunge,
    L.FLAG_UPDATE: messages.update_flags,
    L.HEADER_UPDATE: messages.update_header,
    L.KEYWORD_RESET: reset_keywords,
    L.MODSEQ_UPDATE: modseqs.update_records,
}

_HANDLERS = {
    L.EXT_INTRO: Engine._ext_intro,
    L.EXT_RESET: Engine._ext_reset,
    L.EXT_HDR_UPDATE: Engine._ext_hdr_update,
    L.EXT_HDR_UPDATE32: Engine._ext_hdr_update,
    L.EXT_REC_UPDATE: Engine._ext_rec_update,
    L.EXT_ATOMIC_INC: Engine._ext_atomic_inc,
    L.KEYWORD_UPDATE: Engine._keyword_update,
    L.INDEX_DELETED: Engine._ignore,
    L.INDEX_UNDELETED: Engine._ignore,
    L.BOUNDARY: Engine._ignore,
    L.ATTRIBUTE_UPDATE: Engine._ignore,
}
