"""One writer per ledger: an exclusive ``flock`` on ``<ledger>.lock``, never waited for."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from dovecot_index_tool.errors import ToolError
from dovecot_index_tool.ledger.db import is_url


class LedgerBusy(ToolError, RuntimeError):
    """Another scan holds the ledger (two cron runs overlapping)."""


SCAN_LOCK_KEY = 0x44495430  # "DIT0": one scan per PostgreSQL ledger, across hosts


class LedgerLock:
    """A lock file beside a SQLite ledger, or a session advisory lock in PostgreSQL."""

    def __init__(self, db_path: Path | str) -> None:
        self.url = str(db_path) if is_url(db_path) else None
        self.path = Path(f"{db_path}.lock")
        self.fd: int | None = None
        self.pg = None

    def __enter__(self) -> LedgerLock:
        if self.url is not None:
            return self._pg_enter()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LedgerBusy(f"another scan is writing {self.path.with_suffix('')}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def _pg_enter(self) -> LedgerLock:
        import psycopg

        self.pg = psycopg.connect(self.url, autocommit=True)
        (got,) = self.pg.execute("SELECT pg_try_advisory_lock(%s)", (SCAN_LOCK_KEY,)).fetchone()
        if not got:
            self.pg.close()
            self.pg = None
            raise LedgerBusy("another scan is writing this PostgreSQL ledger")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pg is not None:
            self.pg.close()  # ends the session, and with it the advisory lock
            self.pg = None
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
