"""One small interface over SQLite and PostgreSQL, so the ledger and the queue are written
once: ``?`` placeholders, rows as dicts, ``insert`` returning the new id, and an
exclusive transaction that serializes claims (``BEGIN IMMEDIATE`` in SQLite, a
transaction-scoped advisory lock in PostgreSQL, which holds across hosts)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ADVISORY_LOCK = 0x44495431  # "DIT1": the queue's claims, one at a time across hosts


def is_url(target: str | Path) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


def _dict_row(cursor: sqlite3.Cursor, row: tuple) -> dict:
    """Rows as dicts, the column names taken once per query rather than once per row
    (a query's ``description`` is the same object for all of its rows)."""
    description = cursor.description
    names = _NAMES.get(id(description))
    if names is None or names[0] is not description:
        names = _NAMES[id(description)] = (description, tuple(d[0] for d in description))
        if len(_NAMES) > 64:
            _NAMES.clear()
            _NAMES[id(description)] = names
    return dict(zip(names[1], row, strict=True))


_NAMES: dict[int, tuple[tuple, tuple[str, ...]]] = {}


class Database:
    def __init__(self, conn, dialect: str, target: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.target = target

    @classmethod
    def open(cls, target: str | Path) -> Database:
        if is_url(target):
            import psycopg
            from psycopg.rows import dict_row

            conn = psycopg.connect(str(target), row_factory=dict_row)
            return cls(conn, "postgresql", str(target))
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=60)
        conn.row_factory = _dict_row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.commit()
        return cls(conn, "sqlite", str(path))

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: tuple | list = ()):
        return self.conn.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        """One statement for many rows (a round trip, not one per row, on PostgreSQL)."""
        if self.dialect == "postgresql":
            with self.conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
            return
        self.conn.executemany(sql, rows)

    def one(self, sql: str, params: tuple | list = ()) -> dict | None:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple | list = ()) -> list[dict]:
        return list(self.execute(sql, params).fetchall())

    def insert(self, sql: str, params: tuple | list = ()) -> int:
        return int(self.execute(sql + " RETURNING id", params).fetchone()["id"])

    def concat(self, expression: str) -> str:
        """Distinct values joined with commas, in this dialect."""
        if self.dialect == "postgresql":
            return f"STRING_AGG(DISTINCT {expression}, ',')"
        return f"GROUP_CONCAT(DISTINCT {expression})"

    @contextmanager
    def exclusive(self) -> Iterator[Database]:
        """A transaction no other writer (or claimer) runs beside."""
        self.conn.commit()
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
        try:
            yield self
        except BaseException:
            self.conn.rollback()
            raise
        else:
            self.conn.commit()

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()
