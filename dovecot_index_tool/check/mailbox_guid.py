"""A mailbox's GUID in its own files against the list index's record of it.

Why: the mailbox GUID lives in the maildir uidlist's header (``G``) or in the dbox
index header (``dbox-hdr``, ``mdbox-hdr``), and ``dovecot.list.index`` keeps a copy per
mailbox, written by another code path. Dovecot shows the mailbox's own value (doveadm,
dsync and the IMAP MAILBOXID use it), so when the two differ by a changed byte,
replication and clients see another mailbox. Either copy may be the changed one; the
mailbox's file is named, as a warning, with the list index's value beside it.
"""

from __future__ import annotations

from dovecot_index_tool.check.data import MailboxData
from dovecot_index_tool.check.findings import Finding
from dovecot_index_tool.check.index_checks import effective_state
from dovecot_index_tool.discovery import MailboxFormat

DBOX_HEADERS = {MailboxFormat.SDBOX: "dbox-hdr", MailboxFormat.MDBOX: "mdbox-hdr"}
GUID = slice(4, 20)  # of both dbox headers: a u32, then the mailbox GUID


def guid_differs(data: MailboxData, listed: bytes | None) -> list[Finding]:
    if listed is None:
        return []
    own = _own_guid(data)
    if own is None or own[0] == listed:
        return []
    value, path, offset, field = own
    return [Finding(
        "list.mailbox-guid-differs",
        path,
        f"mailbox GUID {value.hex() or 'missing'}, but the list index records "
        f"{listed.hex()} for this mailbox",
        offset=offset,
        field=field,
        expected=listed.hex(),
        found=value.hex() or "missing",
    )]


def _own_guid(data: MailboxData) -> tuple[bytes, str | None, int | None, str] | None:
    if data.format == MailboxFormat.MAILDIR:
        ul = data.uidlist
        if ul is None or ul.version != 3:
            return None
        if not ul.guid:  # a version 3 header always has one: its G field is gone
            return b"", ul.path, 0, "header.guid"
        try:
            return bytes.fromhex(ul.guid), ul.path, 0, "header.guid"
        except ValueError:
            return None
    name = DBOX_HEADERS.get(data.format)
    state = effective_state(data.index) if name else None
    ext = state.extension(name) if state is not None else None
    if ext is None or len(ext.data) < GUID.stop or not any(ext.data[GUID]):
        return None
    on_disk = data.index.files.index
    where = on_disk.extension(name) if on_disk is not None else None
    return (ext.data[GUID], data.index.path, where.data_offset + GUID.start if where else None,
            f"{name}.mailbox_guid")
