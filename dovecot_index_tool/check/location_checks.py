"""Whether the files a mailbox's state lives in are where its location says.

A maildir whose messages Dovecot has already handled (moved to ``cur/``, flagged in
their names) has a ``dovecot-uidlist`` and index files; an sdbox mailbox with ``u.N``
files has an index. When none of them is where the mailbox was found, they live
elsewhere (``INDEX=``, ``CONTROL=``) and nothing of the mailbox's state was read: that
is "could not check", never healthy, and a scan must not call old damage repaired.
A maildir that only ever received mail in ``new/`` (an MTA delivered it, Dovecot never
opened it) has no such files, and that is normal.
"""

from __future__ import annotations

from pathlib import Path

from dovecot_index_tool.check.data import MailboxData
from dovecot_index_tool.check.findings import Finding
from dovecot_index_tool.discovery import MailboxFormat

HINT = ("its index files live elsewhere (INDEX=/CONTROL=): give --index-root and "
        "--control-root, or --dovecot-config")


def check_state_files(data: MailboxData) -> list[Finding]:
    if data.index.files.exists:
        return []
    where = Path(data.index.path).parent
    if data.format == MailboxFormat.MAILDIR:
        if data.uidlist is not None or data.uidlist_error is not None:
            return []
        handled = [n for n in data.mail_files or () if n.startswith("cur/") or ":2," in n]
        missing = "no dovecot.index, log or dovecot-uidlist"
    elif data.format == MailboxFormat.SDBOX:
        handled = list(data.mail_files or ())
        missing = "no dovecot.index or log"
    else:
        return []
    if not handled:
        return []
    return [Finding(
        "scanner.state-elsewhere",
        str(where),
        f"{len(handled)} message(s) Dovecot has handled, but {missing} at {where}: {HINT}",
        field="files",
        expected="dovecot.index*",
        found="missing",
    )]
