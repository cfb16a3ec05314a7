"""What the mailbox list index records of one mailbox: a third witness of UIDVALIDITY.

``dovecot.list.index`` keeps, per mailbox, its name, parent, GUID and UIDVALIDITY
(the ``list`` extension). It is written by another code path than the mailbox's own
index and ``dovecot-uidlist``, so when those two disagree it tells which one moved.
"""

from __future__ import annotations

from dovecot_index_tool.format.binary import layout
from dovecot_index_tool.format.extensions import decode_list_header
from dovecot_index_tool.format.index import IndexFile

LIST_RECORD_SIZE = 28  # name_id, parent_uid, guid[16], uid_validity
MAX_DEPTH = 100  # parents followed at most: a loop in damaged records must end


def listed_uid_validity(state: IndexFile | None, mailbox: str, separator: str = "/"
                        ) -> int | None:
    """UIDVALIDITY the list index ``state`` records for ``mailbox``; None when unknown."""
    ext = state.extension("list") if state is not None else None
    if ext is None or ext.record_size != LIST_RECORD_SIZE:
        return None
    names = decode_list_header(ext.data, state.byteorder)["names"]
    fields = layout(state.byteorder, "II16sI")
    entries = {}
    for record in state.records:
        raw = record.data[ext.record_offset : ext.record_offset + LIST_RECORD_SIZE]
        if len(raw) == LIST_RECORD_SIZE:
            name_id, parent, _, validity = fields.unpack(raw)
            entries[record.uid] = (names.get(name_id), parent, validity)
    for uid, (_, _, validity) in entries.items():
        if validity and _full_name(entries, uid, separator) == mailbox:
            return validity
    return None


def _full_name(entries: dict, uid: int, separator: str) -> str | None:
    parts = []
    for _ in range(MAX_DEPTH):
        name, parent, _ = entries.get(uid, (None, 0, 0))
        if name is None:
            return None
        parts.append(name)
        if not parent:
            return separator.join(reversed(parts))
        uid = parent
    return None
