"""The ledger schema, in one place, versioned; each migration moves one version up.

Add a migration at the end of ``MIGRATIONS``; never edit an applied one. The job
queue and other backends extend the same list.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: runs, mailboxes, findings
    (
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started REAL NOT NULL,
            finished REAL,
            status TEXT NOT NULL DEFAULT 'running',
            volumes TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            mailboxes INTEGER NOT NULL DEFAULT 0,
            reread INTEGER NOT NULL DEFAULT 0,
            affected INTEGER NOT NULL DEFAULT 0,
            unchecked INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE mailboxes (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            volume TEXT NOT NULL,
            tenant TEXT,
            user TEXT NOT NULL,
            name TEXT NOT NULL,
            format TEXT NOT NULL,
            index_dir TEXT,
            mail_dir TEXT,
            control_dir TEXT,
            messages INTEGER,
            bytes INTEGER NOT NULL DEFAULT 0,
            fingerprint TEXT,
            worst TEXT,
            last_scanned REAL,
            last_clean REAL,
            last_run INTEGER REFERENCES runs(id)
        )""",
        "CREATE INDEX mailboxes_tenant ON mailboxes(tenant, user)",
        "CREATE INDEX mailboxes_scanned ON mailboxes(volume, last_scanned)",
        """CREATE TABLE findings (
            id INTEGER PRIMARY KEY,
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
            check_id TEXT NOT NULL,
            severity TEXT NOT NULL,
            file TEXT,
            offset INTEGER,
            field TEXT,
            expected TEXT,
            found TEXT,
            message TEXT NOT NULL,
            repair TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            first_run INTEGER REFERENCES runs(id),
            last_run INTEGER REFERENCES runs(id),
            resolved REAL
        )""",
        "CREATE INDEX findings_open ON findings(mailbox_id, resolved)",
        "CREATE INDEX findings_check ON findings(check_id, resolved)",
    ),
)

VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return row[0] or 0


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration above the database's version, each in one transaction."""
    version = current_version(conn)
    if version > VERSION:
        raise RuntimeError(f"ledger schema {version} is newer than this tool ({VERSION})")
    for number in range(version + 1, VERSION + 1):
        with conn:
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    return VERSION
