"""The job queue in the ledger database.

Every change of a job's state is written together with an event (time, worker,
detail) in one transaction. Claims run under ``BEGIN IMMEDIATE`` in SQLite, so the
per-volume limits hold however many workers claim at once.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path

from dovecot_index_tool.check.catalogue import Repair
from dovecot_index_tool.check.findings import UNCHECKED, could_not_check
from dovecot_index_tool.check.severity import rank
from dovecot_index_tool.jobqueue import presence, rechecks
from dovecot_index_tool.jobqueue.costs import CostModel
from dovecot_index_tool.jobqueue.priority import VipList, priority
from dovecot_index_tool.jobqueue.rechecks import JobKind
from dovecot_index_tool.ledger.store import Ledger


class JobState(StrEnum):
    """A job's state, in Python and in the SQL (spelled from here, never by hand)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"


QUEUED, RUNNING, DONE, FAILED, DEAD, CANCELLED = tuple(JobState)
ACTIVE = (QUEUED, RUNNING)
ENDED = (DEAD, FAILED, CANCELLED)  # what an operator may queue again


def sql_states(states) -> str:
    """``('queued','running')`` for ``state IN ...``: the enum's values, quoted."""
    return "(" + ",".join(f"'{JobState(s).value}'" for s in states) + ")"


ACTIVE_SQL, ENDED_SQL = sql_states(ACTIVE), sql_states(ENDED)
DEFAULT_LIMIT = 1
DEFAULT_LEASE = 300.0
BACKOFF_BASE = 30.0
BACKOFF_MAX = 3600.0


@dataclass(frozen=True)
class MailboxNeed:
    """Which mailbox needs which repair, and why: what a candidate and a job share."""

    path: str
    volume: str
    tenant: str | None
    user: str
    mailbox: str
    format: str
    action: str
    severity: str
    checks: tuple[str, ...]


@dataclass(frozen=True)
class Job(MailboxNeed):
    id: int
    vip: bool
    bytes: int
    messages: int
    priority: float
    state: str
    attempts: int
    max_attempts: int
    not_before: float
    lease_owner: str | None
    lease_until: float | None
    last_error: str | None
    created: float
    updated: float
    kind: str

    @classmethod
    def from_row(cls, row) -> Job:
        r = dict(row)
        values = {f.name: r[_COLUMNS.get(f.name, f.name)] for f in fields(cls)}
        values["checks"] = tuple(json.loads(values["checks"]))
        values["vip"] = bool(values["vip"])
        return cls(**values)

    def to_dict(self) -> dict[str, object]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


_COLUMNS = {"user": "user_name"}  # field name -> jobs column, where they differ


@dataclass(frozen=True)
class Candidate(MailboxNeed):
    """What one affected mailbox needs, from its open findings."""

    bytes: int
    messages: int
    last_used: float | None


def widest(actions) -> str | None:
    """The least destructive action that fixes everything: the widest one asked for."""
    ranked = [Repair(a) for a in actions if a != Repair.NONE.value]
    return max(ranked, key=lambda r: r.rank).value if ranked else None


class JobQueue:
    def __init__(self, ledger: Ledger, vip: VipList | None = None, max_attempts: int = 5) -> None:
        self.ledger = ledger
        self.db = ledger.db
        self.vip = vip or VipList()
        self.max_attempts = max_attempts

    def _event(self, job_id: int, state: str, worker: str | None, detail: str, now: float) -> None:
        self.db.insert(
            "INSERT INTO job_events (job_id, at, state, worker, detail) VALUES (?,?,?,?,?)",
            (job_id, now, state, worker, detail),
        )

    # enqueue -------------------------------------------------------------
    def candidates(
        self,
        volume: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        check: str | None = None,
        paths: list[str] | None = None,
    ) -> list[Candidate]:
        """Affected mailboxes from the ledger's open findings, with the filters given.
        A mailbox its last read could not check is left out (see ``held_back``)."""
        return self._affected(volume, tenant, user, check, paths)[0]

    def held_back(self, volume: str | None = None, tenant: str | None = None,
                  user: str | None = None, check: str | None = None,
                  paths: list[str] | None = None) -> list[str]:
        """Affected mailboxes that get no job: their last read could not check them
        (unreadable, unstable, timed out), so what a repair would fix is not known and
        the repair itself could not read them either."""
        return self._affected(volume, tenant, user, check, paths)[1]

    def _affected(self, volume, tenant, user, check, paths) -> tuple[list[Candidate], list[str]]:
        sql = (
            "SELECT m.path, m.volume, m.tenant, m.user_name, m.name, m.format, m.bytes, "
            "m.messages, m.index_dir, f.check_id, f.severity, f.repair FROM mailboxes m "
            "JOIN findings f ON f.mailbox_id = m.id WHERE f.resolved IS NULL "
            f"AND (f.repair != 'none' OR f.check_id IN ({', '.join('?' * len(UNCHECKED))}))"
        )
        args: list[object] = sorted(UNCHECKED)
        for column, value in (("m.volume", volume), ("m.tenant", tenant), ("m.user_name", user)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        rows = self.db.all(sql + " ORDER BY m.path", args)
        by_path: dict[str, list[dict]] = {}
        for row in rows:
            by_path.setdefault(row["path"], []).append(row)
        out, held = [], []
        for path, group in by_path.items():
            needs = [r for r in group if r["repair"] != Repair.NONE.value]
            if not needs or (paths is not None and path not in paths):
                continue
            if check is not None and not any(r["check_id"] == check for r in needs):
                continue
            if any(could_not_check(r["check_id"], r["severity"]) for r in group):
                held.append(path)
            else:
                out.append(_candidate(needs))
        return out, held

    def enqueue_volumes(self, volumes: list[str]) -> tuple[int, int, int]:
        """After a scan: a job for every affected mailbox of these volumes. Returns how
        many jobs are new, how many were already queued (or were widened), and how many
        affected mailboxes were held back because the scan could not check them."""
        results, held = [], 0
        for v in volumes:
            candidates, held_back = self._affected(v, None, None, None, None)
            results += self.enqueue(candidates)
            held += len(held_back)
        new = sum(1 for _, state in results if state == "new")
        return new, len(results) - new, held

    def enqueue(
        self, candidates: list[Candidate], costs: CostModel | None = None, now: float | None = None
    ) -> list[tuple[int, str]]:
        """One job per mailbox; an active job is widened or raised, never duplicated."""
        costs = costs or self.cost_model()
        now = time.time() if now is None else now
        results = []
        for c in candidates:
            vip = self.vip.matches(c.user, c.tenant)
            prio = priority(
                c.severity, vip, c.last_used, costs.seconds(c.action, c.messages, c.bytes), now
            )
            with self.db.exclusive():
                results.append(self._upsert(c, vip, prio, now))
        return results

    def _upsert(self, c: Candidate, vip: bool, prio: float, now: float) -> tuple[int, str]:
        row = self.db.one(
            f"SELECT * FROM jobs WHERE path=? AND kind='{JobKind.REPAIR}' "
            f"AND state IN {ACTIVE_SQL}", (c.path,)
        )
        if row is None:
            job_id = self.db.insert(
                "INSERT INTO jobs (path, volume, tenant, user_name, mailbox, format, action, "
                "severity,"
                " checks, vip, last_used, bytes, messages, priority, state, max_attempts,"
                " created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    c.path,
                    c.volume,
                    c.tenant,
                    c.user,
                    c.mailbox,
                    c.format,
                    c.action,
                    c.severity,
                    json.dumps(list(c.checks)),
                    int(vip),
                    c.last_used,
                    c.bytes,
                    c.messages,
                    prio,
                    QUEUED,
                    self.max_attempts,
                    now,
                    now,
                ),
            )
            self._event(job_id, QUEUED, None, f"enqueued: {c.action}", now)
            return job_id, "new"
        job = Job.from_row(row)
        action = widest([job.action, c.action])
        severity = max(job.severity, c.severity, key=rank)
        checks = sorted(set(job.checks) | set(c.checks))
        prio = max(prio, job.priority)
        vip = vip or job.vip
        if (action, severity, checks, prio, vip) == (
            job.action,
            job.severity,
            list(job.checks),
            job.priority,
            job.vip,
        ):
            return job.id, "unchanged"
        self.db.execute(
            "UPDATE jobs SET action=?, severity=?, checks=?, priority=?, vip=?, updated=? "
            "WHERE id=?",
            (action, severity, json.dumps(checks), prio, int(vip), now, job.id),
        )
        self._event(job.id, job.state, None, f"widened to {action}, priority {prio:.0f}", now)
        return job.id, "updated"

    # claims --------------------------------------------------------------
    def claim(
        self,
        worker: str,
        batch: int = 1,
        volume: str | None = None,
        lease: float = DEFAULT_LEASE,
        now: float | None = None,
    ) -> list[Job]:
        """Up to ``batch`` queued jobs of one volume, within its limit, leased to ``worker``."""
        now = time.time() if now is None else now
        with self.db.exclusive():
            self._expire_leases(now)
            presence.note(self.db, worker, volume, now)
            for vol in self._volumes_by_urgency(volume, now):
                free = self._free_slots(vol)
                if free <= 0:
                    continue
                rows = self.db.all(
                    f"SELECT * FROM jobs WHERE state='{QUEUED}' AND volume=? AND not_before<=? "
                    "ORDER BY priority DESC, id LIMIT ?" + self._skip_locked(),
                    (vol, now, min(batch, free)),
                )
                if rows:
                    return [self._start(Job.from_row(r), worker, lease, now) for r in rows]
        return []

    def _skip_locked(self) -> str:
        """PostgreSQL: rows another host is claiming are passed over, never waited for."""
        return " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""

    def _volumes_by_urgency(self, volume: str | None, now: float) -> list[str]:
        rows = self.db.all(
            f"SELECT volume, MAX(priority) AS best FROM jobs WHERE state='{QUEUED}' "
            "AND not_before<=? GROUP BY volume ORDER BY MAX(priority) DESC",
            (now,),
        )
        return [r["volume"] for r in rows if volume is None or r["volume"] == volume]

    def _free_slots(self, volume: str) -> int:
        row = self.db.one("SELECT max_running, paused FROM volume_limits WHERE volume=?", (volume,))
        limit, paused = (row["max_running"], row["paused"]) if row else (DEFAULT_LIMIT, 0)
        if paused:
            return 0
        running = self.db.one(
            f"SELECT COUNT(*) AS n FROM jobs WHERE state='{RUNNING}' AND volume=?", (volume,)
        )["n"]
        return limit - running

    def _start(self, job: Job, worker: str, lease: float, now: float) -> Job:
        self.db.execute(
            f"UPDATE jobs SET state='{RUNNING}', attempts=attempts+1, lease_owner=?, lease_until=?,"
            " started=?, updated=? WHERE id=?",
            (worker, now + lease, now, now, job.id),
        )
        self._event(job.id, RUNNING, worker, f"claimed (attempt {job.attempts + 1})", now)
        return Job.from_row(self.db.one("SELECT * FROM jobs WHERE id=?", (job.id,)))

    def _expire_leases(self, now: float) -> None:
        """A worker that died leaves its jobs running until their lease ends."""
        for row in self.db.all(
            f"SELECT * FROM jobs WHERE state='{RUNNING}' AND lease_until < ?", (now,)
        ):
            job = Job.from_row(row)
            self._retry_or_bury(job, f"lease of {job.lease_owner} expired", now, backoff=False)

    def heartbeat(
        self,
        worker: str,
        job_ids: list[int],
        lease: float = DEFAULT_LEASE,
        now: float | None = None,
    ) -> int:
        now = time.time() if now is None else now
        with self.db.exclusive():
            marks = ",".join("?" * len(job_ids)) or "NULL"
            cur = self.db.execute(
                f"UPDATE jobs SET lease_until=?, updated=? WHERE state='{RUNNING}' AND "
                f"lease_owner=? AND id IN ({marks})",
                (now + lease, now, worker, *job_ids),
            )
            return cur.rowcount

    # outcomes ------------------------------------------------------------
    def finish(
        self,
        job: Job,
        worker: str,
        ok: bool,
        detail: str = "",
        seconds: float | None = None,
        now: float | None = None,
        permanent: bool = False,
    ) -> str:
        """Record a job's result; a failure is retried with backoff, or the job is dead;
        a ``permanent`` failure (the setup cannot work) fails the job at once."""
        now = time.time() if now is None else now
        with self.db.exclusive():
            row = self.db.one("SELECT * FROM jobs WHERE id=?", (job.id,))
            current = Job.from_row(row)
            ours = current.state == RUNNING and current.lease_owner == worker
            # a lease that ran out while the repair still ran: a success nobody else is
            # working on still counts (the job must not be repaired twice)
            late_but_free = ok and current.state in (QUEUED, DEAD) and not current.lease_owner
            if not (ours or late_but_free):
                self._event(job.id, current.state, worker, f"late result ignored: {detail}", now)
                return current.state
            if ok and Repair(current.action).rank > Repair(job.action).rank:
                return self._retry_or_bury(
                    current,
                    f"widened to {current.action} while {job.action} ran",
                    now,
                    worker,
                    backoff=False,
                )
            if ok:
                self.db.execute(
                    f"UPDATE jobs SET state='{DONE}', lease_owner=NULL, lease_until=NULL, "
                    "finished=?, updated=? WHERE id=?",
                    (now, now, job.id),
                )
                self._event(job.id, DONE, worker, detail or "repaired and verified", now)
                if current.kind == JobKind.REPAIR:
                    self._schedule_rechecks(current, now)
                if seconds is not None and current.kind == JobKind.REPAIR:
                    self.db.insert(
                        "INSERT INTO repair_times (action, format, bytes, messages, seconds, at) "
                        "VALUES (?,?,?,?,?,?)",
                        (job.action, job.format, job.bytes, job.messages, seconds, now),
                    )
                return DONE
            if permanent:
                return self._end(job, FAILED, detail, now, worker,
                                 f"failed, not retried: {detail}")
            return self._retry_or_bury(current, detail or "failed", now, worker)

    def _schedule_rechecks(self, repaired: Job, now: float) -> None:
        """Read the mailbox again after each of the ledger's re-check delays (the
        re-checks of an earlier repair of it are superseded)."""
        self.db.execute(
            f"UPDATE jobs SET state='{CANCELLED}', updated=? WHERE path=? "
            f"AND kind='{JobKind.RECHECK}' AND state='{QUEUED}'", (now, repaired.path))
        for delay in rechecks.delays(self.db):
            job_id = self.db.insert(
                "INSERT INTO jobs (path, volume, tenant, user_name, mailbox, format, action, "
                "severity, checks, vip, bytes, messages, priority, state, max_attempts, "
                "not_before, created, updated, kind) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (repaired.path, repaired.volume, repaired.tenant, repaired.user,
                 repaired.mailbox, repaired.format, Repair.NONE.value, repaired.severity,
                 json.dumps(list(repaired.checks)), int(repaired.vip), repaired.bytes,
                 repaired.messages, rechecks.PRIORITY, QUEUED, self.max_attempts,
                 now + delay, now, now, JobKind.RECHECK.value),
            )
            self._event(job_id, QUEUED, None,
                        f"re-check {delay / 3600:g} h after repair job {repaired.id}", now)

    def _end(self, job: Job, state: str, detail: str, now: float, worker: str | None,
             event: str) -> str:
        """The job stops for good in ``state`` (failed or dead) with ``detail``."""
        self.db.execute(
            "UPDATE jobs SET state=?, last_error=?, lease_owner=NULL, lease_until=NULL, "
            "finished=?, updated=? WHERE id=?",
            (state, detail, now, now, job.id),
        )
        self._event(job.id, state, worker, event, now)
        return state

    def _retry_or_bury(
        self, job: Job, detail: str, now: float, worker: str | None = None, backoff: bool = True
    ) -> str:
        """Queue the job again (after a backoff when it failed) or, out of attempts, bury it."""
        if job.attempts >= job.max_attempts:
            return self._end(job, DEAD, detail, now, worker,
                             f"dead after {job.attempts} attempts: {detail}")
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, job.attempts - 1)) if backoff else 0
        self.db.execute(
            f"UPDATE jobs SET state='{QUEUED}', last_error=?, lease_owner=NULL, lease_until=NULL, "
            "not_before=?, updated=? WHERE id=?",
            (detail, now + delay, now, job.id),
        )
        self._event(job.id, QUEUED, worker, f"retry in {delay:.0f}s: {detail}", now)
        return QUEUED

    # operator actions ----------------------------------------------------
    def retry(self, job_id: int | None = None, dead: bool = False) -> list[int]:
        now = time.time()
        with self.db.exclusive():
            if job_id is not None:
                rows = self.db.all(
                    f"SELECT id FROM jobs WHERE id=? AND state IN {ENDED_SQL}",
                    (job_id,),
                )
            else:
                rows = self.db.all(f"SELECT id FROM jobs WHERE state='{DEAD}'") if dead else []
            ids = [r["id"] for r in rows if not self._has_active(r["id"])]
            for jid in ids:
                self.db.execute(
                    f"UPDATE jobs SET state='{QUEUED}', attempts=0, not_before=0, updated=? "
                    "WHERE id=?",
                    (now, jid),
                )
                self._event(jid, QUEUED, None, "retried by the operator", now)
        return ids

    def _has_active(self, job_id: int) -> bool:
        """Another queued or running job for the same mailbox (one active job per mailbox)."""
        row = self.db.one(
            "SELECT COUNT(*) AS n FROM jobs o JOIN jobs j ON o.path = j.path AND o.id != j.id "
            "AND o.kind = j.kind "
            f"WHERE j.id=? AND o.state IN {ACTIVE_SQL}",
            (job_id,),
        )
        return bool(row["n"])

    def cancel(self, job_id: int) -> bool:
        now = time.time()
        with self.db.exclusive():
            cur = self.db.execute(
                f"UPDATE jobs SET state='{CANCELLED}', lease_owner=NULL, updated=? "
                f"WHERE id=? AND state IN {ACTIVE_SQL}",
                (now, job_id),
            )
            if cur.rowcount:
                self._event(job_id, CANCELLED, None, "cancelled by the operator", now)
            return bool(cur.rowcount)

    def set_limit(
        self, volume: str, max_running: int | None = None, paused: bool | None = None
    ) -> None:
        with self.db.exclusive():
            self.db.execute(
                "INSERT INTO volume_limits (volume, max_running, paused) VALUES (?, ?, ?) "
                "ON CONFLICT(volume) DO NOTHING",
                (volume, DEFAULT_LIMIT, 0),
            )
            if max_running is not None:
                self.db.execute(
                    "UPDATE volume_limits SET max_running=? WHERE volume=?", (max_running, volume)
                )
            if paused is not None:
                self.db.execute(
                    "UPDATE volume_limits SET paused=? WHERE volume=?", (int(paused), volume)
                )

    # views ---------------------------------------------------------------
    def jobs(
        self,
        state: str | None = None,
        volume: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        kind: str | None = JobKind.REPAIR,
    ) -> list[Job]:
        """Jobs with the filters given; repairs only unless ``kind`` says otherwise
        (None: every kind)."""
        sql, args = "SELECT * FROM jobs WHERE 1=1", []
        for column, value in (
            ("kind", kind),
            ("state", state),
            ("volume", volume),
            ("tenant", tenant),
            ("user_name", user),
        ):
            if value is not None:
                sql += f" AND {column}=?"
                args.append(value)
        sql += (
            f" ORDER BY CASE state WHEN '{RUNNING}' THEN 0 WHEN '{QUEUED}' THEN 1 ELSE 2 END, "
            "priority DESC, id"
        )
        return [Job.from_row(r) for r in self.db.all(sql, args)]

    def job(self, job_id: int) -> Job | None:
        row = self.db.one("SELECT * FROM jobs WHERE id=?", (job_id,))
        return Job.from_row(row) if row else None

    def events(self, job_id: int) -> list[dict[str, object]]:
        return self.db.all(
            "SELECT at, state, worker, detail FROM job_events WHERE job_id=? ORDER BY id",
            (job_id,),
        )

    def stats(self, now: float | None = None) -> dict[str, object]:
        now = time.time() if now is None else now
        rows = self.db.all("SELECT volume, state, COUNT(*) AS n FROM jobs GROUP BY volume, state")
        per_state: dict[str, int] = {}
        per_volume: dict[str, dict[str, int]] = {}
        for r in rows:
            per_state[r["state"]] = per_state.get(r["state"], 0) + r["n"]
            per_volume.setdefault(r["volume"], {})[r["state"]] = r["n"]
        oldest = self.db.one(f"SELECT MIN(created) AS t FROM jobs WHERE state='{QUEUED}'")["t"]
        done_hour = self.db.one(
            f"SELECT COUNT(*) AS n FROM jobs WHERE state='{DONE}' AND finished >= ?", (now - 3600,)
        )["n"]
        limits = {
            r["volume"]: {"max_running": r["max_running"], "paused": bool(r["paused"])}
            for r in self.db.all("SELECT volume, max_running, paused FROM volume_limits")
        }
        return {
            "per_state": per_state,
            "per_volume": per_volume,
            "limits": limits,
            "oldest_queued": oldest,
            "done_last_hour": done_hour,
        }

    def cost_model(self) -> CostModel:
        samples: dict[str, list[tuple[int, int, float]]] = {}
        for r in self.db.all("SELECT action, messages, bytes, seconds FROM repair_times"):
            samples.setdefault(r["action"], []).append((r["messages"], r["bytes"], r["seconds"]))
        return CostModel.calibrate(samples)

    def limits(self) -> dict[str, int]:
        rows = self.db.all("SELECT volume, max_running FROM volume_limits")
        return {r["volume"]: r["max_running"] for r in rows}


def _candidate(group: list[dict]) -> Candidate:
    first = group[0]
    action = widest(r["repair"] for r in group) or Repair.INDEX_REBUILD.value
    severity = max((r["severity"] for r in group), key=rank)
    return Candidate(
        first["path"],
        first["volume"],
        first["tenant"],
        first["user_name"],
        first["name"],
        first["format"],
        action,
        severity,
        tuple(sorted({r["check_id"] for r in group})),
        first["bytes"] or 0,
        first["messages"] or 0,
        _last_used(first["index_dir"]),
    )


def _last_used(index_dir: str | None) -> float | None:
    """When the mailbox was last written: the mtime of its transaction log."""
    if not index_dir:
        return None
    logs = [f"{index_dir}.log"] if index_dir.endswith(".index") else []
    logs.append(str(Path(index_dir) / "dovecot.index.log"))
    for log in logs:
        try:
            return os.stat(log).st_mtime
        except OSError:
            continue
    return None
