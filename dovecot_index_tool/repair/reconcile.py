"""After Dovecot rebuilt an index: put back what it dropped, then check the result.

Both compare what Dovecot shows (``doveadm fetch``, ``mailbox status``) with what the
files held before (``expected.py``). Putting back goes through Dovecot too: flags and
keywords with ``doveadm flags add`` and ``flags remove`` (a rebuild from an older
index, or from damaged records, can show flags the message no longer had, and a
stray ``\\Deleted`` is deleted mail at the next EXPUNGE), UIDVALIDITY, next UID,
HIGHESTMODSEQ and the mailbox GUID with ``doveadm mailbox update``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from dovecot_index_tool.repair.doveadm import FetchedMessage, MailboxDoveadm
from dovecot_index_tool.repair.expected import Expected, ExpectedMessage, message_key


def restore_state(doveadm: MailboxDoveadm, expected: Expected) -> None:
    """Put back in Dovecot what the files held and the rebuild dropped."""
    status = doveadm.status()
    fetched = shown(doveadm, expected.format)
    validity = expected.uid_validity
    same_validity = validity == status.uidvalidity
    if validity and not same_validity and uids_kept(expected, fetched):
        same_validity = True  # every UID kept: the old UIDVALIDITY still holds
    else:
        validity = None
    doveadm.update(
        guid=expected.mailbox_guid if expected.mailbox_guid != status.guid else None,
        uid_validity=validity,
        min_next_uid=expected.next_uid
        if same_validity and (expected.next_uid or 0) > status.uidnext else None,
        min_modseq=expected.highest_modseq
        if (expected.highest_modseq or 0) > status.highest_modseq else None,
    )
    to_add: dict[frozenset[str], list[int]] = defaultdict(list)
    to_remove: dict[frozenset[str], list[int]] = defaultdict(list)
    for key, want in expected.by_key().items():
        have = fetched.get(key)
        if have is None or not want.restore:
            continue
        if missing := want.flags - have.flags:
            to_add[frozenset(missing)].append(have.uid)
        if extra := have.flags - want.flags:
            to_remove[frozenset(extra)].append(have.uid)
    for flags, uids in to_remove.items():
        doveadm.remove_flags(flags, uids)
    for flags, uids in to_add.items():
        doveadm.add_flags(flags, uids)


def shown(doveadm: MailboxDoveadm, mail_format: str) -> dict[str, FetchedMessage]:
    """What Dovecot shows of the mailbox now, by the key ``expected.py`` gives messages."""
    return {message_key(mail_format, m): m for m in doveadm.fetch()}


def moved(
    expected: Expected, fetched: dict[str, FetchedMessage]
) -> list[tuple[ExpectedMessage, int]]:
    """The expected messages Dovecot shows under another UID, with that UID."""
    return [
        (m, fetched[m.key].uid)
        for m in expected.messages
        if m.uid and m.key in fetched and fetched[m.key].uid != m.uid
    ]


def uids_kept(expected: Expected, fetched: dict[str, FetchedMessage]) -> bool:
    return not moved(expected, fetched)


NEW_UIDVALIDITY = 10**9  # the cost of a new UIDVALIDITY: every client fetches everything


@dataclass(frozen=True)
class Verdict:
    """What is wrong with the mailbox as Dovecot shows it (empty when it passes), and
    what its renumbering costs clients: 0 when every UID was kept, the number of
    messages with new UIDs above the old ones, or ``NEW_UIDVALIDITY``."""

    problems: list[str]
    cost: int


def verify(doveadm: MailboxDoveadm, expected: Expected,
           still_needed: Callable[[], tuple[str, ...]]) -> Verdict:
    """Dovecot's view of the mailbox now, read once, against what the files held. New
    UIDs above the old ones are not wrong (IMAP allows them); their cost is weighed by
    the caller."""
    fetched = shown(doveadm, expected.format)
    status = doveadm.status()
    renumbered = moved(expected, fetched)
    new_validity = bool(expected.uid_validity) and status.uidvalidity != expected.uid_validity
    return Verdict(_problems(expected, fetched, status, still_needed),
                   NEW_UIDVALIDITY if new_validity else len(renumbered))


def _problems(expected: Expected, fetched: dict, status, still_needed) -> list[str]:
    problems = _missing(expected, fetched)
    if uids_kept(expected, fetched):
        if expected.uid_validity and status.uidvalidity != expected.uid_validity:
            problems.append(f"UIDVALIDITY {status.uidvalidity}, was {expected.uid_validity}")
    elif status.uidvalidity == expected.uid_validity:
        problems += _uids_reused(expected, fetched)
    modseq = expected.highest_modseq or 0
    if status.uidvalidity == expected.uid_validity and status.highest_modseq < modseq:
        problems.append(f"HIGHESTMODSEQ {status.highest_modseq} went below {modseq}")
    if remaining := still_needed():
        problems.append("a rescan still finds " + ", ".join(remaining))
    return problems


def _uids_reused(expected: Expected, fetched: dict) -> list[str]:
    """Under an unchanged UIDVALIDITY a message may only get a new UID above every UID
    used before (clients then see it expunged and delivered again); a lower one may be
    a UID a client already knows for another message."""
    floor = expected.next_uid or 0
    reused = [f"{m.where}: UID {m.uid} became {uid}"
              for m, uid in moved(expected, fetched) if uid < floor]
    if not reused:
        return []
    return [f"{len(reused)} UID(s) changed below the old next UID {floor} under the same "
            f"UIDVALIDITY (first: {reused[0]})"]


def _missing(expected: Expected, fetched: dict) -> list[str]:
    lost, flags = [], []
    for want in expected.messages:
        have = fetched.get(want.key)
        if have is None:
            lost.append(want.where)
        elif want.flags_known and want.flags != have.flags:
            flags.append(f"{want.where}: {_difference(want.flags, have.flags)}")
    problems = []
    if lost:
        problems.append(f"{len(lost)} of {len(expected.messages)} message(s) not visible"
                        f" (first: {lost[0]})")
    if flags:
        problems.append(f"flags not kept on {len(flags)} message(s) (first: {flags[0]})")
    return problems


def _difference(want: frozenset[str], have: frozenset[str]) -> str:
    missing = " ".join(sorted(want - have))
    extra = " ".join(sorted(have - want))
    return "; ".join(part for part in (missing and f"without {missing}",
                                       extra and f"with {extra} it never had") if part)
