"""Whose file is it, and from when: a mailbox's files vouching for one another.

Why: a whole, well-formed ``dovecot.index`` can still be the wrong one. A lost write
leaves an earlier version of the file in place (its indexid is this mailbox's, its
log sequence is behind the logs it should follow); a misdirected write or a restore
to the wrong place leaves another mailbox's file (its UIDVALIDITY or indexid is not
what this mailbox's other files say). FAST'08 calls both identity discrepancies.
Every finding on such a file follows from it, so the file's identity is its
signature. Pure: parsed data in, signatures per file path out.
"""

from __future__ import annotations

from dovecot_index_tool.check.data import MailboxData
from dovecot_index_tool.check.signatures import MAX_FLIPPED_BITS, Kind, Signature


def file_identities(data: MailboxData) -> dict[str, Signature]:
    """Signatures that explain a whole file of the mailbox, by path."""
    files = data.index.files
    idx = files.index
    if idx is None or not files.logs:
        return {}
    verdict = _foreign_index(data) or _stale_index(data)
    return {files.prefix: verdict} if verdict is not None else {}


def _stale_index(data: MailboxData) -> Signature | None:
    """The index names a log sequence older than every log, and the logs are its own."""
    files = data.index.files
    header = files.index.header
    if any(log.header.indexid != header.indexid for log in files.logs):
        return None
    oldest = min(log.header.file_seq for log in files.logs)
    if not _behind(header.log_file_seq, oldest, len(files.logs)) or _seq_flipped(data):
        return None
    return Signature(Kind.STALE_COPY, f"indexid {header.indexid} matches the logs, but "
                     f"log_file_seq {header.log_file_seq} (head offset "
                     f"{header.log_file_head_offset}) is older than the oldest log "
                     f"({oldest}): an earlier version of the file")


def _foreign_index(data: MailboxData) -> Signature | None:
    """The index's UIDVALIDITY or indexid is not what the mailbox's other files say."""
    files = data.index.files
    header = files.index.header
    log_ids = {log.header.indexid for log in files.logs}
    if len(log_ids) == 1 and _foreign(header.indexid, next(iter(log_ids))):
        return Signature(Kind.FOREIGN_BYTES, f"indexid {header.indexid} is not the logs' "
                         f"({next(iter(log_ids))}): another index's file")
    listed = data.uidlist.uid_validity if data.uidlist is not None else None
    if listed and header.uid_validity not in (0, listed) and (
            _foreign(header.uid_validity, listed) or _other_messages(data)):
        return Signature(Kind.FOREIGN_BYTES, f"UIDVALIDITY {header.uid_validity} is not "
                         f"this mailbox's ({listed} in dovecot-uidlist): another mailbox's "
                         "index")
    return None


def _behind(seq: int, oldest: int, logs: int) -> bool:
    """Older than every log. One sequence behind a lone ``.log`` is as likely a deleted
    ``.log.2`` as an old index, so that is not enough."""
    if seq == 0 or seq >= oldest:
        return False
    return oldest - seq >= 2 or logs >= 2


def _seq_flipped(data: MailboxData) -> bool:
    """A log a bit or two away from the index's sequence holds the index's head offset:
    a flipped ``log_file_seq`` in a current index, not an old index."""
    header = data.index.files.index.header
    return any(_flipped(header.log_file_seq, log.header.file_seq)
               and header.log_file_head_offset <= log.valid_end
               for log in data.index.files.logs)


def _other_messages(data: MailboxData) -> bool:
    """The index (after its logs) holds other UIDs than dovecot-uidlist: more than one
    field disagrees, so a close UIDVALIDITY (mailboxes made one after another get
    consecutive ones) is another mailbox's, not a flipped bit."""
    state = data.index.state
    if state is None or data.uidlist is None:
        return False
    return {r.uid for r in state.records} != {r.uid for r in data.uidlist.records}


def _foreign(found: int, expected: int) -> bool:
    return found != 0 and found != expected and not _flipped(found, expected)


def _flipped(a: int, b: int) -> bool:
    return (a ^ b).bit_count() <= MAX_FLIPPED_BITS
