"""The header's seen and deleted counters and their lowwater UIDs.

Dovecot keeps them up to date with every flag change and checks them as it
goes: a counter that would run below zero or past the message count is damage.
"""

from __future__ import annotations

from dovecot_index_tool.format.index import MAIL_DELETED, MAIL_SEEN
from dovecot_index_tool.format.replay.record_map import RecordMap
from dovecot_index_tool.format.replay.results import Corrupted


def count_flag_change(
    m: RecordMap, uid: int, old: int, new: int, check_next_uid: bool = True
) -> None:
    """Follow one message's flags going from ``old`` to ``new``."""
    next_uid = m.get("next_uid")
    if uid >= next_uid:
        if check_next_uid:
            raise Corrupted(f"uid {uid} >= next_uid {next_uid}")
        return
    changed = old ^ new
    if changed & MAIL_SEEN:
        _count_seen(m, bool(old & MAIL_SEEN), next_uid)
    if changed & MAIL_DELETED:
        _count_deleted(m, bool(old & MAIL_DELETED), next_uid)


def _count_seen(m: RecordMap, was_seen: bool, next_uid: int) -> None:
    seen = m.get("seen_messages_count")
    if was_seen:
        if seen == 0:
            raise Corrupted("Seen counter wrong")
        m.set("seen_messages_count", seen - 1)
        return
    if seen >= m.get("messages_count"):
        raise Corrupted("Seen counter wrong")
    m.set("seen_messages_count", seen + 1)
    if seen + 1 == m.get("messages_count"):
        m.set("first_unseen_uid_lowwater", next_uid)


def _count_deleted(m: RecordMap, was_deleted: bool, next_uid: int) -> None:
    deleted = m.get("deleted_messages_count")
    if not was_deleted:
        m.set("deleted_messages_count", deleted + 1)
        if deleted + 1 > m.get("messages_count"):
            raise Corrupted("Deleted counter wrong")
        return
    if deleted == 0 or deleted > m.get("messages_count"):
        raise Corrupted("Deleted counter wrong")
    m.set("deleted_messages_count", deleted - 1)
    if deleted - 1 == 0:
        m.set("first_deleted_uid_lowwater", next_uid)


def lower_lowwaters(m: RecordMap, uid: int, flags: int) -> None:
    """An unseen or deleted message below a lowwater moves the lowwater down to it."""
    if not flags & MAIL_SEEN and uid < m.get("first_unseen_uid_lowwater"):
        m.set("first_unseen_uid_lowwater", uid)
    if flags & MAIL_DELETED and uid < m.get("first_deleted_uid_lowwater"):
        m.set("first_deleted_uid_lowwater", uid)
