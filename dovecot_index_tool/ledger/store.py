"""Recording scans in the ledger and asking it who is affected since when.

A finding is identified within its mailbox by (check, file, field, offset). A later
scan that still sees it updates ``last_seen``; one that no longer sees it marks it
``resolved``; nothing is deleted. The same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from dovecot_index_tool.check.findings import Finding, could_not_check, stored_findings
from dovecot_index_tool.check.severity import Severity, worst
from dovecot_index_tool.ledger.db import Database
from dovecot_index_tool.ledger.schema import migrate


def default_path() -> Path:
    """``/var/lib/dovecot-index-tool`` for root, the XDG state directory otherwise."""
    if os.geteuid() == 0:
        return Path("/var/lib/dovecot-index-tool/ledger.sqlite3")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local/state")
    return Path(state) / "dovecot-index-tool" / "ledger.sqlite3"


@dataclass(frozen=True)
class MailboxRecord:
    """What the ledger keeps about one mailbox from one scan."""

    path: str
    volume: str
    tenant: str | None
    user: str
    name: str
    format: str
    index_dir: str | None
    mail_dir: str | None
    control_dir: str | None
    messages: int | None
    bytes: int
    fingerprint: str | None


def worst_of(severities: Iterable[str]) -> str | None:
    found = worst(severities)
    return None if found is None else str(found)


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def open(cls, target: str | Path) -> Ledger:
        """A SQLite file path, or a ``postgresql://`` URL."""
        db = Database.open(target)
        migrate(db)
        return cls(db)

    @property
    def path(self) -> str:
        return self.db.target

    def close(self) -> None:
        self.db.close()

    def commit(self) -> None:
        self.db.commit()

    # runs --------------------------------------------------------------
    def start_run(self, volumes: list[str], options: dict[str, object]) -> int:
        run_id = self.db.insert(
            "INSERT INTO runs (started, volumes, options) VALUES (?, ?, ?)",
            (time.time(), json.dumps(volumes), json.dumps(options, default=str)),
        )
        self.db.commit()
        return run_id

    def finish_run(self, run_id: int, status: str, counts: dict[str, int],
                   paused: dict[str, float] | None = None) -> None:
        """The run's end: its status, counts and the seconds it waited, per reason."""
        paused = paused or {}
        self.db.execute(
            "UPDATE runs SET finished=?, status=?, mailboxes=?, reread=?, affected=?, "
            "unchecked=?, bytes=?, paused_seconds=?, pauses=? WHERE id=?",
            (
                time.time(),
                status,
                counts.get("mailboxes", 0),
                counts.get("reread", 0),
                counts.get("affected", 0),
                counts.get("unchecked", 0),
                counts.get("bytes", 0),
                sum(paused.values()),
                json.dumps(paused),
                run_id,
            ),
        )
        self.db.commit()

    def runs(self) -> list[dict]:
        return self.db.all("SELECT * FROM runs ORDER BY id")

    # mailboxes -----------------------------------------------------------
    def fingerprint(self, path: str) -> str | None:
        row = self.db.one("SELECT fingerprint FROM mailboxes WHERE path=?", (path,))
        return row["fingerprint"] if row else None

    def volume_fingerprints(self, volume: str) -> dict[tuple[str | None, str], dict[str, str]]:
        """Every stored fingerprint of a volume by (tenant, user), in one query (for
        --incremental: one query per user cost more than the stat calls it saves)."""
        out: dict[tuple[str | None, str], dict[str, str]] = {}
        for r in self.db.all(
            "SELECT path, tenant, user_name, fingerprint FROM mailboxes WHERE volume=?",
            (volume,),
        ):
            if r["fingerprint"]:
                out.setdefault((r["tenant"], r["user_name"]), {})[r["path"]] = r["fingerprint"]
        return out

    def volume_listings(self, volume: str) -> dict[tuple[str | None, str], str]:
        """Each user's mailboxes as last found (``scan.listing``), by (tenant, user)."""
        out: dict[tuple[str | None, str], str] = {}
        for r in self.db.all("SELECT user_key, listing FROM listings WHERE volume=?",
                             (volume,)):
            tenant, user = json.loads(r["user_key"])
            out[tenant, user] = r["listing"]
        return out

    def keep_listings(self, rows: list[tuple[str, str | None, str, str]]) -> None:
        """(volume, tenant, user, listing) of users whose mailboxes were found anew."""
        self.db.executemany(
            "INSERT INTO listings (volume, user_key, listing) VALUES (?, ?, ?) "
            "ON CONFLICT (volume, user_key) DO UPDATE SET listing=excluded.listing",
            [(volume, json.dumps([tenant, user]), text) for volume, tenant, user, text in rows])

    def touch(self, run_id: int, paths: list[str]) -> None:
        """Unchanged mailboxes were seen by this run (without being read again)."""
        for chunk in _chunks(paths):
            self.db.execute(
                f"UPDATE mailboxes SET last_run=? WHERE path IN ({_marks(chunk)})",
                (run_id, *chunk),
            )

    def open_findings_of(self, paths: list[str]) -> dict[str, list[dict]]:
        """The open findings of these mailboxes, with the columns output shows
        (``stored_finding_docs``): an --incremental run asks this of every mailbox."""
        out: dict[str, list[dict]] = {p: [] for p in paths}
        for chunk in _chunks(paths):
            for row in self.db.all(
                f"SELECT m.path AS mailbox_path, {SHOWN_FINDING_COLUMNS} FROM findings f "
                "JOIN mailboxes m "
                f"ON m.id = f.mailbox_id WHERE f.resolved IS NULL AND m.path IN "
                f"({_marks(chunk)}) ORDER BY f.id",
                chunk,
            ):
                out[row["mailbox_path"]].append(row)
        return out

    def last_scanned_users(self, volume: str) -> dict[tuple[str | None, str], float]:
        """Oldest scan time per (tenant, user) of a volume, to scan the least recent first."""
        rows = self.db.all(
            "SELECT tenant, user_name, MIN(COALESCE(last_scanned, 0)) AS oldest "
            "FROM mailboxes WHERE volume=? GROUP BY tenant, user_name",
            (volume,),
        )
        return {(r["tenant"], r["user_name"]): r["oldest"] for r in rows}

    def record(self, run_id: int, box: MailboxRecord, findings: list[Finding], reread: bool
               ) -> list[Finding]:
        """Store one mailbox's scan. Findings are merged, not replaced; returns the
        mailbox's open findings as the ledger has them (with their first-seen time)."""
        return self.record_many(run_id, [(box, findings, reread)])[0]

    def record_many(self, run_id: int, scans: list[tuple[MailboxRecord, list[Finding], bool]]
                    ) -> list[list[Finding]]:
        """``record`` for several mailboxes (a user's, as a worker returns them) in a few
        statements: the mailboxes read are written with one ``executemany`` and their
        ids and open findings fetched with one query each, since a scan records
        thousands and, on PostgreSQL, every statement is a round trip."""
        now = time.time()
        out: list[list[Finding]] = [[] for _ in scans]
        read = [i for i, (_, _, reread) in enumerate(scans) if reread]
        if len({scans[i][0].path for i in read}) != len(read):
            return [self.record_many(run_id, [scan])[0] for scan in scans]  # a path twice
        for i, (box, _, reread) in enumerate(scans):
            if not reread:
                self._touch_mailbox(run_id, box, now)
                out[i] = stored_findings(self.open_findings(box.path))
        if not read:
            return out
        worsts = [worst_of(f.severity.value for f in scans[i][1]) for i in read]
        ids = self._upsert_mailboxes(run_id, [scans[i][0] for i in read], now, worsts)
        open_rows = self._open_rows(list(ids.values()))
        writes = _FindingWrites()
        for i in read:
            box, findings, _ = scans[i]
            mailbox_id = ids[box.path]
            first_seen = _merge_findings(mailbox_id, run_id, findings, now,
                                         open_rows.get(mailbox_id, {}), writes)
            out[i] = [replace(f, first_seen=seen)
                      for f, seen in zip(findings, first_seen, strict=True)]
        self._write_findings(writes)
        return out

    def _write_findings(self, writes: _FindingWrites) -> None:
        """The findings' rows of a batch of mailboxes, one statement of each kind."""
        if writes.updates:
            self.db.executemany(
                "UPDATE findings SET severity=?, byte_offset=?, expected=?, found=?, "
                "message=?, repair=?, signature=?, device=?, file_mtime=?, last_seen=?, "
                "last_run=? WHERE id=?", writes.updates)
        if writes.inserts:
            self.db.executemany(
                "INSERT INTO findings (mailbox_id, check_id, file, field, severity, "
                "byte_offset, expected, found, message, repair, signature, device, "
                "file_mtime, first_seen, last_seen, first_run, last_run) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", writes.inserts)
        if writes.resolves:
            self.db.executemany("UPDATE findings SET resolved=?, resolved_run=? WHERE id=?",
                                writes.resolves)

    def _upsert_mailboxes(self, run_id: int, boxes: list[MailboxRecord], now: float,
                          worsts: list[str | None]) -> dict[str, int]:
        """What each mailbox read is, what was worst in it, and when it was last clean;
        their ids by path."""
        self.db.executemany(
            "INSERT INTO mailboxes (volume, tenant, user_name, name, format, index_dir, "
            "mail_dir, control_dir, messages, bytes, fingerprint, path, last_scanned, "
            "last_run, worst, last_clean) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (path) DO UPDATE SET volume=excluded.volume, tenant=excluded.tenant, "
            "user_name=excluded.user_name, name=excluded.name, format=excluded.format, "
            "index_dir=excluded.index_dir, mail_dir=excluded.mail_dir, "
            "control_dir=excluded.control_dir, messages=excluded.messages, "
            "bytes=excluded.bytes, fingerprint=excluded.fingerprint, "
            "last_scanned=excluded.last_scanned, last_run=excluded.last_run, "
            "worst=excluded.worst, "
            "last_clean=COALESCE(excluded.last_clean, mailboxes.last_clean)",
            [(*_mailbox_values(box), box.path, now, run_id, worst,
              now if worst in (None, "info") else None)
             for box, worst in zip(boxes, worsts, strict=True)],
        )
        ids: dict[str, int] = {}
        paths = [box.path for box in boxes]
        for chunk in _chunks(paths):
            for row in self.db.all(
                f"SELECT id, path FROM mailboxes WHERE path IN ({_marks(chunk)})", chunk
            ):
                ids[row["path"]] = row["id"]
        return ids

    def _open_rows(self, mailbox_ids: list[int]) -> dict[int, dict[tuple, list[tuple[int, float]]]]:
        """The open findings of these mailboxes, by mailbox and identity, oldest first."""
        out: dict[int, dict[tuple, list[tuple[int, float]]]] = {}
        for chunk in _chunks(mailbox_ids):
            for r in self.db.all(
                "SELECT id, mailbox_id, check_id, file, field, byte_offset, first_seen "
                f"FROM findings WHERE mailbox_id IN ({_marks(chunk)}) AND resolved IS NULL "
                "ORDER BY id",
                chunk,
            ):
                key = (r["check_id"], r["file"], r["field"], r["byte_offset"])
                out.setdefault(r["mailbox_id"], {}).setdefault(key, []).append(
                    (r["id"], r["first_seen"]))
        return out

    def _touch_mailbox(self, run_id: int, box: MailboxRecord, now: float) -> None:
        """A mailbox seen but not read this run: known, never re-judged."""
        row = self.db.one("SELECT id FROM mailboxes WHERE path=?", (box.path,))
        if row is not None:
            self.db.execute("UPDATE mailboxes SET last_run=? WHERE id=?", (run_id, row["id"]))
            return
        self.db.insert(
            "INSERT INTO mailboxes (volume, tenant, user_name, name, format, index_dir, "
            "mail_dir, control_dir, messages, bytes, fingerprint, path, last_scanned, "
            "last_run) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (*_mailbox_values(box), box.path, now, run_id),
        )

    def retire_unseen(self, run_id: int, volumes: list[str]) -> int:
        """After a complete run: findings of mailboxes that no longer exist are resolved.
        A mailbox this run did not see but whose directory is still there was not read
        (other roots, another layout): its findings stay open, never "repaired"; so do
        those of a mailbox behind a directory this run could not look into."""
        marks = ",".join("?" * len(volumes))
        unseen = self.db.all(
            f"SELECT id, path FROM mailboxes WHERE volume IN ({marks}) AND "
            "(last_run IS NULL OR last_run != ?)",
            (*volumes, run_id),
        )
        gone = [row["id"] for row in unseen if _gone(str(row["path"]))]
        resolved, now = 0, time.time()
        for i in range(0, len(gone), 500):
            chunk = gone[i : i + 500]
            cur = self.db.execute(
                "UPDATE findings SET resolved=? WHERE resolved IS NULL AND mailbox_id IN "
                f"({','.join('?' * len(chunk))})",
                (now, *chunk),
            )
            resolved += cur.rowcount
        self.db.commit()
        return resolved

    # questions -----------------------------------------------------------
    def mailbox_dirs(self, path: str) -> tuple[str | None, str | None]:
        """The mail and control directories a scan found for the mailbox at ``path``
        (its index directory); (None, None) when it was never scanned."""
        row = self.db.one("SELECT mail_dir, control_dir FROM mailboxes WHERE path=?", (path,))
        return (row["mail_dir"], row["control_dir"]) if row else (None, None)

    def volumes(self) -> list[str]:
        """Every volume a scan has recorded."""
        return [r["volume"] for r in self.db.all(
            "SELECT DISTINCT volume FROM mailboxes ORDER BY volume")]

    def open_findings(self, path: str) -> list[dict[str, object]]:
        return self.db.all(
            "SELECT f.* FROM findings f JOIN mailboxes m ON m.id = f.mailbox_id "
            "WHERE m.path=? AND f.resolved IS NULL ORDER BY f.id",
            (path,),
        )

    def affected(
        self, tenant: str | None = None, volume: str | None = None, min_severity: str = "warning"
    ) -> list[dict[str, object]]:
        """Mailboxes with open findings at or above ``min_severity``, and since when."""
        levels = [str(s) for s in Severity if s >= Severity.of(min_severity)]
        marks = ",".join("?" * len(levels))
        sql = (
            "SELECT m.volume, m.tenant, m.user_name AS user, m.name, m.path, m.format, "
            "MIN(f.first_seen) AS since, MAX(f.last_seen) AS last_seen, "
            f"{self.db.concat('f.check_id')} AS checks, COUNT(*) AS findings "
            f"FROM mailboxes m JOIN findings f ON f.mailbox_id = m.id "
            f"WHERE f.resolved IS NULL AND f.severity IN ({marks})"
        )
        args: list[object] = list(levels)
        sql = and_equal(sql, args, {"m.tenant": tenant, "m.volume": volume})
        sql += " GROUP BY m.id, m.volume, m.tenant, m.user_name, m.name, m.path, m.format"
        return self.db.all(sql + " ORDER BY since", args)


SHOWN_FINDING_COLUMNS = ", ".join(
    f"f.{c}" for c in ("check_id", "file", "byte_offset", "field", "expected", "found",
                       "message", "first_seen", "signature", "device", "file_mtime"))
CHUNK = 500  # values per IN (...): well below SQLite's limit on parameters


def _chunks(values: list) -> list[list]:
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def _marks(values: list) -> str:
    return ",".join("?" * len(values))


def _mailbox_values(box: MailboxRecord) -> tuple:
    return (box.volume, box.tenant, box.user, box.name, box.format, box.index_dir,
            box.mail_dir, box.control_dir, box.messages, box.bytes, box.fingerprint)


def and_equal(sql: str, args: list[object], columns: dict[str, object | None]) -> str:
    """``sql`` narrowed to each column equal to its value, for the values given (not
    None); the values are appended to ``args``."""
    for column, value in columns.items():
        if value is not None:
            sql += f" AND {column} = ?"
            args.append(value)
    return sql


@dataclass
class _FindingWrites:
    """The findings' rows a batch of scans changes, written together (record_many)."""

    updates: list[tuple] = field(default_factory=list)
    inserts: list[tuple] = field(default_factory=list)
    resolves: list[tuple] = field(default_factory=list)


def _merge_findings(mailbox_id: int, run_id: int, findings: list[Finding], now: float,
                    open_rows: dict[tuple, list[tuple[int, float]]],
                    writes: _FindingWrites) -> list[float]:
    """Match this scan's findings to the open ones (``open_rows``, by check, file,
    field and offset); unmatched open ones are resolved, unless the scan itself
    could not finish. Returns each finding's first-seen time."""
    first_seen = []
    for f in findings:
        d = f.to_dict()
        detail = (
            d["severity"],
            d["offset"],
            _text(d["expected"]),
            _text(d["found"]),
            d["message"],
            d["repair"],
            f.signature.to_json() if f.signature is not None else None,
            f.device,
            f.file_mtime,
        )
        ids = open_rows.get((f.check, f.file, f.field, f.offset))
        if ids:
            finding_id, seen = ids.pop(0)
            writes.updates.append((*detail, now, run_id, finding_id))
            first_seen.append(seen)
        else:
            first_seen.append(now)
            writes.inserts.append((mailbox_id, f.check, f.file, f.field, *detail, now, now,
                                   run_id, run_id))
    if any(could_not_check(f.check) for f in findings):
        return first_seen  # a check that did not finish proves nothing is repaired
    for ids in open_rows.values():
        writes.resolves.extend((now, run_id, finding_id) for finding_id, _ in ids)
    return first_seen


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _gone(path: str) -> bool:
    """The path is known not to exist. A refused or failed lstat (a home or directory
    made unreadable, an I/O error) tells nothing: the mailbox may still be there."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except (OSError, ValueError):
        return False
    return False
