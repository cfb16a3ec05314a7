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
    if state is None:
        return None
    found = _validities(state, separator).get(mailbox)
    return found[0] if found else None


def listed_guid(state: IndexFile | None, mailbox: str, separator: str = "/") -> bytes | None:
    """The mailbox GUID the list index records for ``mailbox``; None when unknown."""
    if state is None:
        return None
    found = _validities(state, separator).get(mailbox)
    return found[1] if found and any(found[1]) else None


_last: tuple = (None, None, {})  # (state, separator, validities): read and replaced whole


def _validities(state: IndexFile, separator: str) -> dict[str, tuple[int, bytes]]:
    """Every mailbox name the list index records with its UIDVALIDITY and GUID, decoded
    once per list index (the cache holds the state itself, so its identity stays
    valid)."""
    global _last
    cached_state, cached_separator, cached = _last  # one read: safe beside other threads
    if cached_state is state and cached_separator == separator:
        return cached
    ext = state.extension("list")
    found: dict[str, tuple[int, bytes]] = {}
    if ext is not None and ext.record_size == LIST_RECORD_SIZE:
        names = decode_list_header(ext.data, state.byteorder)["names"]
        fields = layout(state.byteorder, "II16sI")
        entries = {}
        for record in state.records:
            raw = record.data[ext.record_offset : ext.record_offset + LIST_RECORD_SIZE]
            if len(raw) == LIST_RECORD_SIZE:
                name_id, parent, guid, validity = fields.unpack(raw)
                entries[record.uid] = (names.get(name_id), parent, (validity, guid))
        for uid, (_, _, (validity, guid)) in entries.items():
            name = _full_name(entries, uid, separator)
            if validity and name is not None:
                found.setdefault(name, (validity, guid))
    _last = (state, separator, found)
    return found


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
