"""The ledger schema, in one place, versioned; each migration moves one version up.

Add a migration at the end of ``MIGRATIONS``; never edit an applied one. The SQL is
written once for every backend: ``{id}`` is the auto-numbered primary key and
``{real}`` a double, rendered per dialect by :func:`render`.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: runs, mailboxes, findings
    (
        """CREATE TABLE runs (
            id {id},
            started {real} NOT NULL,
            finished {real},
            status TEXT NOT NULL DEFAULT 'running',
            volumes TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            mailboxes INTEGER NOT NULL DEFAULT 0,
            reread INTEGER NOT NULL DEFAULT 0,
            affected INTEGER NOT NULL DEFAULT 0,
            unchecked INTEGER NOT NULL DEFAULT 0,
            bytes BIGINT NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE mailboxes (
            id {id},
            path TEXT NOT NULL UNIQUE,
            volume TEXT NOT NULL,
            tenant TEXT,
            user_name TEXT NOT NULL,
            name TEXT NOT NULL,
            format TEXT NOT NULL,
            index_dir TEXT,
            mail_dir TEXT,
            control_dir TEXT,
            messages INTEGER,
            bytes BIGINT NOT NULL DEFAULT 0,
            fingerprint TEXT,
            worst TEXT,
            last_scanned {real},
            last_clean {real},
            last_run {ref} REFERENCES runs(id)
        )""",
        "CREATE INDEX mailboxes_tenant ON mailboxes(tenant, user_name)",
        "CREATE INDEX mailboxes_scanned ON mailboxes(volume, last_scanned)",
        """CREATE TABLE findings (
            id {id},
            mailbox_id {ref} NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
            check_id TEXT NOT NULL,
            severity TEXT NOT NULL,
            file TEXT,
            byte_offset BIGINT,
            field TEXT,
            expected TEXT,
            found TEXT,
            message TEXT NOT NULL,
            repair TEXT NOT NULL,
            first_seen {real} NOT NULL,
            last_seen {real} NOT NULL,
            first_run {ref} REFERENCES runs(id),
            last_run {ref} REFERENCES runs(id),
            resolved {real}
        )""",
        "CREATE INDEX findings_open ON findings(mailbox_id, resolved)",
        "CREATE INDEX findings_check ON findings(check_id, resolved)",
    ),
    # 2: the repair queue
    (
        """CREATE TABLE jobs (
            id {id},
            path TEXT NOT NULL,
            volume TEXT NOT NULL,
            tenant TEXT,
            user_name TEXT NOT NULL,
            mailbox TEXT NOT NULL,
            format TEXT NOT NULL,
            action TEXT NOT NULL,
            severity TEXT NOT NULL,
            checks TEXT NOT NULL,
            vip INTEGER NOT NULL DEFAULT 0,
            last_used {real},
            bytes BIGINT NOT NULL DEFAULT 0,
            messages INTEGER NOT NULL DEFAULT 0,
            priority {real} NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 5,
            not_before {real} NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_until {real},
            last_error TEXT,
            created {real} NOT NULL,
            updated {real} NOT NULL,
            started {real},
            finished {real}
        )""",
        "CREATE UNIQUE INDEX jobs_one_active ON jobs(path) WHERE state IN ('queued', 'running')",
        "CREATE INDEX jobs_claim ON jobs(state, volume, priority)",
        """CREATE TABLE job_events (
            id {id},
            job_id {ref} NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            at {real} NOT NULL,
            state TEXT NOT NULL,
            worker TEXT,
            detail TEXT
        )""",
        "CREATE INDEX job_events_job ON job_events(job_id, id)",
        """CREATE TABLE volume_limits (
            volume TEXT PRIMARY KEY,
            max_running INTEGER NOT NULL DEFAULT 1,
            paused INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE repair_times (
            id {id},
            action TEXT NOT NULL,
            format TEXT NOT NULL,
            bytes BIGINT NOT NULL,
            messages INTEGER NOT NULL,
            seconds {real} NOT NULL,
            at {real} NOT NULL
        )""",
    ),
    # 3: one user's mailboxes at once (--incremental)
    ("CREATE INDEX mailboxes_user ON mailboxes(volume, user_name)",),
    # 4: which run resolved a finding by reading the files (NULL: resolved without a
    # read, e.g. the files are gone), and the workers seen polling the queue
    (
        "ALTER TABLE findings ADD COLUMN resolved_run {ref} REFERENCES runs(id)",
        # before this column, a finding resolved by a read was resolved when its
        # mailbox was last read, or earlier
        """UPDATE findings SET resolved_run = last_run WHERE resolved IS NOT NULL AND
            resolved <= (SELECT last_scanned FROM mailboxes m WHERE m.id = findings.mailbox_id)""",
        """CREATE TABLE workers (
            name TEXT PRIMARY KEY,
            volume TEXT,
            seen {real} NOT NULL,
            until {real} NOT NULL
        )""",
    ),
    # 5: tenants' webhook subscriptions, the events owed to each, every attempt
    (
        """CREATE TABLE webhooks (
            id {id},
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            created {real} NOT NULL
        )""",
        """CREATE TABLE webhook_deliveries (
            id {id},
            webhook_id {ref} NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
            event_id TEXT NOT NULL,
            body TEXT NOT NULL,
            created {real} NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at {real} NOT NULL,
            delivered {real},
            given_up {real},
            UNIQUE (webhook_id, event_id)
        )""",
        "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(delivered, next_at)",
        """CREATE TABLE webhook_attempts (
            id {id},
            delivery_id {ref} NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
            at {real} NOT NULL,
            status INTEGER,
            error TEXT
        )""",
    ),
    # 6: each finding's damage signature, and the device and mtime of its file (incident)
    (
        "ALTER TABLE findings ADD COLUMN signature TEXT",
        "ALTER TABLE findings ADD COLUMN device BIGINT",
        "ALTER TABLE findings ADD COLUMN file_mtime {real}",
    ),
    # 7: how long a run waited for a busy host, and why (--max-load, --max-io-pressure)
    (
        "ALTER TABLE runs ADD COLUMN paused_seconds {real} NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN pauses TEXT NOT NULL DEFAULT '{}'",
    ),
    # 8: a job's kind (a repair, or a read-only re-check after one) and the queue's
    # settings (when re-checks follow a repair)
    (
        "ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'repair'",
        "DROP INDEX jobs_one_active",
        "CREATE UNIQUE INDEX jobs_one_active ON jobs(path) "
        "WHERE state IN ('queued', 'running') AND kind = 'repair'",
        "CREATE UNIQUE INDEX jobs_one_recheck ON jobs(path, not_before) "
        "WHERE state IN ('queued', 'running') AND kind = 'recheck'",
        "CREATE TABLE queue_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    # 9: each user's mailboxes as a scan last found them, with the state of the
    # directories they were found in (scan.listing), for --incremental
    (
        """CREATE TABLE listings (
            volume TEXT NOT NULL,
            user_key TEXT NOT NULL,
            listing TEXT NOT NULL,
            PRIMARY KEY (volume, user_key)
        )""",
    ),
)

VERSION = len(MIGRATIONS)

TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY", "real": "REAL", "ref": "INTEGER"},
    "postgresql": {
        "id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "real": "DOUBLE PRECISION",
        "ref": "BIGINT",
    },
}


def render(statement: str, dialect: str = "sqlite") -> str:
    for name, sql_type in TYPES[dialect].items():
        statement = statement.replace("{" + name + "}", sql_type)
    return statement


def migrate(db) -> int:
    """Apply every migration above the database's version, under the exclusive lock (two
    processes opening a new ledger at once must not both create it), one transaction."""
    with db.exclusive():
        version = current_version(db)
        if version > VERSION:
            raise RuntimeError(f"ledger schema {version} is newer than this tool ({VERSION})")
        for number in range(version + 1, VERSION + 1):
            for statement in MIGRATIONS[number - 1]:
                db.execute(render(statement, db.dialect))
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    return VERSION


def current_version(db) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.one("SELECT MAX(version) AS version FROM schema_version")
    return (row or {}).get("version") or 0
