"""What the incident view asks of the ledger: open damage with its signature, device
and times.

Why a module of its own: the question only reads, and reads columns no other
command needs; the store that writes scans stays as it is.
"""

from __future__ import annotations

from dovecot_index_tool.ledger.store import Ledger, and_equal

DAMAGE = (
    "SELECT m.volume, m.tenant, m.user_name AS user, m.name AS mailbox, m.path, "
    "f.check_id, f.signature, f.device, f.file_mtime, f.first_seen, f.last_seen "
    "FROM findings f JOIN mailboxes m ON m.id = f.mailbox_id "
    "WHERE f.resolved IS NULL AND f.severity != 'info' AND substr(f.check_id, 1, 8) != 'scanner.'"
)


def open_damage(ledger: Ledger, since: float | None = None,
                volume: str | None = None) -> list[dict]:
    """Open findings above info that are damage (not could-not-check), oldest first."""
    sql, args = DAMAGE, []
    if since is not None:
        sql += " AND f.first_seen >= ?"
        args.append(since)
    sql = and_equal(sql, args, {"m.volume": volume})
    return ledger.db.all(sql + " ORDER BY f.first_seen, f.id", args)

