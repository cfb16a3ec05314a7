"""UIDVALIDITY of an sdbox or mdbox mailbox, against the two files that also record it.

A dbox mailbox keeps its UIDVALIDITY only in its index header: nothing in the mail
files says it, so a changed value is shown to every client, which then throws away
its cache and fetches all mail again. Two other files were written with it: the
mailbox list index (its ``list`` record of the mailbox) and the transaction log (the
header update that set it). When the list index disagrees with the index and the log
does not side with the index, the index is the one that moved.
"""

from __future__ import annotations

from collections.abc import Sequence

from dovecot_index_tool.check.data import MailboxData
from dovecot_index_tool.check.findings import Finding
from dovecot_index_tool.check.index_checks import effective_state
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.index import HEADER_OFFSETS

UID_VALIDITY_AT = HEADER_OFFSETS["uid_validity"][0]


def check_dbox_uid_validity(data: MailboxData, listed: int | None) -> list[Finding]:
    """``index.uidvalidity-mismatch`` when the list index and the log outvote the index."""
    state = effective_state(data.index)
    if state is None or listed is None or state.header.uid_validity in (listed, 0):
        return []
    logged = logged_uid_validity(data.index.files.logs)
    if logged is not None and logged != listed:
        return []  # the log sides with the index: nothing decides
    witnesses = "the list index" + (" and the log" if logged is not None else "")
    return [
        Finding(
            "index.uidvalidity-mismatch",
            data.index.path,
            f"UIDVALIDITY {state.header.uid_validity} differs from {listed}, which "
            f"{witnesses} recorded for this mailbox",
            offset=UID_VALIDITY_AT,
            field="header.uid_validity",
            expected=listed,
            found=state.header.uid_validity,
        )
    ]


def logged_uid_validity(logs: Sequence[L.LogFile]) -> int | None:
    """The last UIDVALIDITY a header update of the logs (in their read order) wrote."""
    value = None
    for log in logs:
        for rec in log.records:
            if rec.error is None and rec.base_code == L.HEADER_UPDATE:
                for u in rec.items:
                    written = L.header_u32_written(u, "uid_validity", log.byteorder)
                    value = written if written is not None else value
    return value
