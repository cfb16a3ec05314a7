"""The scan loop: stream users into a bounded pool, record what returns.

A worker finds a user's mailboxes and checks them (scan/home.py), so the parent only
lists users, records and reports; small users go a few to a task, since a task costs
the parent about as much CPU as a small user costs a worker. A large user's further
mailboxes come back to be handed out in batches, and its shared files (list index,
mdbox map) are checked once all of them have returned, with the mdbox references
they counted. At most a few tasks per worker are in flight (``_in_flight``), so
memory does not grow with the store. Ctrl-C or SIGTERM stops submitting, lets
running tasks finish, and keeps everything recorded so far.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from dovecot_index_tool.check.findings import (
    Finding,
    could_not_check,
    status_for,
    stored_finding_docs,
)
from dovecot_index_tool.check.report import MailboxReport, unreadable_report
from dovecot_index_tool.check.severity import worst as worst_of
from dovecot_index_tool.discovery import MailboxLocation, MailRoot
from dovecot_index_tool.exitcodes import Exit
from dovecot_index_tool.ledger.store import Ledger
from dovecot_index_tool.load.gate import LoadGate, LoadLimits
from dovecot_index_tool.load.probe import LoadProbe
from dovecot_index_tool.scan.home import (
    HomeFailed,
    HomeResult,
    HomeTask,
    Tally,
    scan_homes,
    unchanged_shared,
)
from dovecot_index_tool.scan.worker import (
    MailboxBatch,
    Outcome,
    UserTask,
    scan_mailboxes,
    scan_user,
    worker_init,
)
from dovecot_index_tool.volumes import UserHome, VolumeError, iter_users, user_tree

BATCH = 8  # mailboxes of a large user per task: fewer round trips, pauses stay frequent
HOMES = 8  # users per task at most: a task costs the parent about 0.3 ms of CPU
HOMES_UNCHANGED = 64  # --incremental: most users cost a worker a few stat calls
UNCHANGED_BATCH = 512  # unchanged mailboxes recorded together (--incremental)


@dataclass(frozen=True)
class ScanOptions:
    volumes: tuple[Path, ...]
    layout: str = "{user}"
    index_root: Path | None = None
    control_root: Path | None = None
    jobs: int = 1
    mailbox_timeout: float = 300.0
    incremental: bool = False
    max_duration: float | None = None
    users: tuple[UserHome, ...] = ()  # from --dovecot-config: every user and its mail root
    dovecot_config: str | None = None
    load: LoadLimits = field(default_factory=LoadLimits)
    per_volume: int | None = None  # at most this many mailboxes of a volume read at once


@dataclass
class ScanResult:
    run_id: int
    status: str = "complete"
    volume_errors: list[str] = field(default_factory=list)
    mailboxes: int = 0
    reread: int = 0
    bytes: int = 0
    findings: Counter = field(default_factory=Counter)  # (check, severity) -> mailboxes
    affected: int = 0
    unchecked: int = 0
    volumes: dict[str, Counter] = field(default_factory=dict)  # per volume, for monitoring
    started: float = field(default_factory=time.time)
    finished: float | None = None
    paused: Counter = field(default_factory=Counter)  # seconds waited, per reason
    # per volume, mailboxes damaged again after a verified repair (from the ledger)
    recurred: dict[str, int] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """Every mailbox read, nothing above info, every volume there."""
        return not self.affected and not self.unchecked and not self.volume_errors

    @property
    def exit_status(self) -> Exit:
        """The run's exit status: the bits of ``check``, plus 8 for a volume that could
        not be scanned and 32 when the scan was interrupted."""
        status = status_for(list(self.findings))
        if self.volume_errors:
            status |= Exit.OPERATIONAL_ERROR
        if self.status == "interrupted":
            status |= Exit.CANCELLED
        return status


@dataclass
class _User:
    home: UserHome
    volume: str
    list_index_dir: Path | None = None
    map_index_dir: Path | None = None
    storage_dir: Path | None = None
    pending: int = 0  # mailboxes handed out in batches and not back yet
    complete: bool = False  # every mailbox of the user handed out
    tally: Tally = field(default_factory=Tally)
    known: dict[str, str] | None = None  # stored fingerprints (--incremental)
    names: frozenset[str] = frozenset()
    unchanged: list[Outcome] = field(default_factory=list)
    submitted: bool = False  # its shared files handed out, or done


class _Kind(StrEnum):
    HOME = "home"  # a user's discovery and first mailboxes (scan/home.py)
    BATCH = "batch"  # more mailboxes of a large user
    SHARED = "shared"  # the shared files of a large user


@dataclass(frozen=True)
class _Inflight:
    user: _User  # of a HOME task: its first user
    kind: _Kind
    mailboxes: int = 0
    users: tuple[_User, ...] = ()  # of a HOME task: every user, in the order sent

    @property
    def every_user(self) -> tuple[_User, ...]:
        """The users this task was about: a HOME task's several, else its one."""
        return self.users or (self.user,)


class Interrupted(Exception):
    pass


class _StopFeeding(Exception):
    """No new mailbox may start (outside the window, past the time budget): the run
    keeps what it did and its status says why."""


OnOutcome = Callable[[Outcome, list[dict[str, object]]], None]


class Scanner:
    def __init__(
        self, options: ScanOptions, ledger: Ledger, on_outcome: OnOutcome, progress=None,
        probe: LoadProbe | None = None,
    ) -> None:
        self.options = options
        self.ledger = ledger
        self.on_outcome = on_outcome
        # an output that holds lines back says when to write them: after each batch
        self.flush_output: Callable[[], None] = getattr(on_outcome, "flush", _nothing)
        self.progress = progress
        self.inflight: dict[Future, _Inflight] = {}
        # batches of large users' mailboxes not handed out yet
        self.backlog: deque[tuple[_User, MailRoot, tuple[MailboxLocation, ...]]] = deque()
        self.fed: list[str] = []  # volumes whose users were all handed out
        self.roots_found: Counter[str] = Counter()  # users with a mail root, per volume
        self.gate = LoadGate(options.load, probe, options.max_duration,
                             getattr(progress, "paused", None))
        self.result = ScanResult(0)
        self.last_commit = time.monotonic()
        self.known: dict[tuple[str | None, str], dict[str, str]] = {}  # this volume's
        self.unchanged: list[Outcome] = []  # not recorded yet (see _record_unchanged)
        self.listings: dict[tuple[str | None, str], str] = {}  # this volume's, last found
        self.found: list[tuple[str, str | None, str, str]] = []  # listings to keep

    def run(self) -> ScanResult:
        opts = self.options
        run_id = self.ledger.start_run([str(v) for v in opts.volumes], _options_doc(opts))
        self.result = ScanResult(run_id)
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
        if not opts.incremental:  # every mailbox is read: load the checks once, pre-fork
            importlib.import_module("dovecot_index_tool.check.runner")
        try:
            with ProcessPoolExecutor(max_workers=opts.jobs, initializer=worker_init,
                                     initargs=(opts.load.io_idle,),
                                     mp_context=multiprocessing.get_context("fork")) as pool:
                try:
                    self._feed(pool)
                    self._drain(pool, until=0)
                except (KeyboardInterrupt, Interrupted):
                    self.result.status = "interrupted"
                    for future in self.inflight:
                        future.cancel()
                    self._drain(pool, until=0, interrupted=True)
        finally:
            signal.signal(signal.SIGTERM, previous)
            self._finish()
        return self.result

    # feeding -----------------------------------------------------------
    def _feed(self, pool: ProcessPoolExecutor) -> None:
        for volume in self.options.volumes:
            try:
                users = self._ordered_users(volume)
            except VolumeError as err:
                self.result.volume_errors.append(str(err))
                continue
            self._tell("users", len(users))
            if self.options.incremental:
                self.known = self.ledger.volume_fingerprints(str(volume))
                self.listings = self.ledger.volume_listings(str(volume))
            per_task = self._users_per_task(len(users))
            homes: list[tuple[_User, HomeTask]] = []
            try:
                for home in users:
                    self._admit(new_user=True)
                    self._hand_out_backlog(pool)
                    self._add_user(volume, home, homes)
                    if len(homes) >= per_task:
                        self._submit_homes(pool, homes)
            except _StopFeeding as stop:
                self._submit_homes(pool, homes)  # admitted while the gate allowed
                self.result.status = str(stop)
                return
            self._submit_homes(pool, homes)
            self.fed.append(str(volume))
        try:
            self._hand_out_backlog(pool, until_done=True)
        except _StopFeeding as stop:
            self.result.status = str(stop)

    def _of(self) -> str:
        if self.options.dovecot_config:
            return f"of the users of {self.options.dovecot_config}"
        return f"under layout {self.options.layout!r}"

    def _ordered_users(self, volume: Path) -> list[UserHome]:
        """Users of a volume, least recently scanned first (never scanned before all)."""
        if self.options.dovecot_config:
            users = [u for u in self.options.users if u.volume == volume]
        else:
            users = list(iter_users(volume, self.options.layout))
        seen = self.ledger.last_scanned_users(str(volume))
        return sorted(users, key=lambda u: (seen.get((u.tenant, u.user), -1.0), u.key))

    def _in_flight(self) -> int:
        """Tasks handed out ahead of the results: eight per worker, so that a worker
        still has work while the parent records what came back (with two, workers
        waited a third of the time); two while load limits or a window are set, so
        that a pause holds back little work already handed out."""
        return (2 if self._limited() else 8) * self.options.jobs

    def _limited(self) -> bool:
        limits = self.options.load
        return (limits.max_load is not None or limits.max_io_pressure is not None
                or limits.window is not None)

    def _users_per_task(self, users: int) -> int:
        """Small users go out a few to a task, since each task costs the parent more
        than a small user costs a worker; under --incremental, where most users cost
        a worker a few stat calls, up to 64 (still eight tasks per worker at least);
        one each while load limits or a window are set (the gate is asked between
        tasks) and when there are too few users to keep every worker busy."""
        if self._limited():
            return 1
        most = HOMES_UNCHANGED if self.options.incremental else HOMES
        return max(1, min(most, users // (8 * self.options.jobs)))

    def _add_user(self, volume: Path, home: UserHome, homes: list[tuple[_User, HomeTask]]
                  ) -> None:
        """One user for the next task: a worker finds and checks its mailboxes."""
        user = _User(home, str(volume))
        if home.error:
            self._no_mail_root(user)
            return
        opts = self.options
        if opts.incremental:
            user.known = self.known.get((home.tenant, home.user), {})
        homes.append((user, HomeTask(str(volume), home, user_tree(opts.index_root, home),
                                     user_tree(opts.control_root, home),
                                     opts.mailbox_timeout, user.known,
                                     listing=self.listings.get((home.tenant, home.user)))))

    def _submit_homes(self, pool: ProcessPoolExecutor, homes: list[tuple[_User, HomeTask]]
                      ) -> None:
        """The users gathered so far, as one task."""
        if not homes:
            return
        users = tuple(user for user, _ in homes)
        future = pool.submit(scan_homes, tuple(task for _, task in homes))
        homes.clear()
        self._submit(pool, future, _Inflight(users[0], _Kind.HOME, users=users))

    def _home_done(self, user: _User, result: HomeResult) -> list[Outcome]:
        """A user's own task is back: keep its remaining mailboxes for batches (their
        shared files follow them) or, done whole, finish the user. Returns what is to
        be recorded, which the caller records with the task's other users."""
        self._tell("listed")
        root = result.root
        if root is None:
            self._no_mail_root(user)
            return []
        self.roots_found[user.volume] += 1
        if result.listing is not None:
            self._keep_listing(user, result.listing)
        user.list_index_dir, user.map_index_dir = root.list_index_dir, root.map_index_dir
        user.storage_dir, user.names = root.storage_dir, result.names
        self._report_unreadable(user, result.unreadable)
        for outcome in result.outcomes:
            user.tally.add(outcome)
        done = list(result.outcomes)
        if result.unchanged:
            user.tally.all_reread = False
            user.unchanged = list(result.unchanged)
            self._record_unchanged(user)
        user.complete = True
        if result.shared is not None:
            return done + self._shared_done(user, list(result.shared), result.shared_unchanged)
        locations = list(result.rest)
        for i in range(0, len(locations), BATCH):
            chunk = tuple(locations[i : i + BATCH])
            user.pending += len(chunk)
            self.backlog.append((user, root, chunk))
        return done

    def _keep_listing(self, user: _User, text: str) -> None:
        """A user's mailboxes as found now, for the next --incremental run (written
        with those of other users)."""
        self.found.append((user.volume, user.home.tenant, user.home.user, text))
        if len(self.found) >= UNCHANGED_BATCH:
            self.ledger.keep_listings(self.found)
            self.found = []

    def _shared_done(self, user: _User, outcomes: list[Outcome], unchanged: bool
                     ) -> list[Outcome]:
        """The user's shared files are back: unchanged ones join the unchanged
        mailboxes; the others are returned, to be recorded."""
        user.submitted = True
        self._tell("user_done")
        if unchanged:
            user.unchanged = outcomes
            self._record_unchanged(user)
            return []
        return outcomes

    def _hand_out_backlog(self, pool: ProcessPoolExecutor, until_done: bool = False) -> None:
        """Batches of large users' mailboxes, each once the host and the window allow;
        with ``until_done``, also those that the returning tasks still add."""
        while self.backlog or (until_done and self.inflight):
            if not self.backlog:
                self._drain(pool, until=len(self.inflight) - 1)
                continue
            user, root, locations = self.backlog.popleft()
            self._admit()
            task = MailboxBatch(user.volume, user.home.tenant, user.home.user, locations,
                                self.options.mailbox_timeout, root.map_index_dir,
                                root.storage_dir)
            self._submit(pool, pool.submit(scan_mailboxes, task),
                         _Inflight(user, _Kind.BATCH, len(locations)))

    def _tell(self, what: str, *args) -> None:
        """Tell the progress display, if there is one."""
        if self.progress is not None:
            getattr(self.progress, what)(*args)

    def _report_unreadable(self, user: _User, unreadable: dict[str, str]) -> None:
        """Directories discovery could not look into: what is behind them was not checked."""
        self._record([Outcome(user.volume, user.home.tenant, user.home.user,
                              unreadable_report(path, reason), 0, None, True)
                      for path, reason in unreadable.items()])

    def _no_mail_root(self, user: _User) -> None:
        """A user directory with no recognisable mail in it: could not check, never clean."""
        home = user.home
        path = str(home.home)
        why = "unreadable" if not os.access(path, os.R_OK | os.X_OK) else "no Dovecot mail root"
        if home.error:
            why = home.error
        hint = ("where the Dovecot configuration puts this user's mail" if home.configured
                else "wrong --layout or --index-root?")
        report = MailboxReport(
            path, "(user)", "unknown",
            (Finding("scanner.unreadable", path, f"{why} in {path} ({hint})"),),
        )
        self._record([Outcome(user.volume, home.tenant, home.user, report, 0, None, True)])
        user.submitted = True
        self._tell("user_done")

    def _record_unchanged(self, user: _User) -> None:
        """Unchanged mailboxes of a user, recorded with those of other users: one update
        and one query per ``UNCHANGED_BATCH`` mailboxes, not per user or mailbox."""
        self.unchanged += user.unchanged
        user.unchanged = []
        if len(self.unchanged) >= UNCHANGED_BATCH:
            self._flush_unchanged()

    def _flush_unchanged(self) -> None:
        if not self.unchanged:
            return
        batch, self.unchanged = self.unchanged, []
        paths = [o.report.path for o in batch]
        self.ledger.touch(self.result.run_id, paths)
        stored = self.ledger.open_findings_of(paths)
        for outcome in batch:
            self._report(outcome, stored_finding_docs(stored[outcome.report.path]))

    def _admit(self, new_user: bool = False) -> None:
        """Wait while the host is busy; stop feeding outside the window or budget."""
        stop = self.gate.admit(new_user)
        if stop is not None:
            raise _StopFeeding(stop)

    def _submit(self, pool: ProcessPoolExecutor, future: Future, task: _Inflight) -> None:
        self.inflight[future] = task
        self._drain(pool, until=self._in_flight())
        limit = self.options.per_volume
        while limit is not None and self._reading_on(task.user.volume) >= limit:
            self._drain(pool, until=len(self.inflight) - 1)

    def _reading_on(self, volume: str) -> int:
        return sum(1 for task in self.inflight.values() if task.user.volume == volume)

    def _maybe_shared_task(self, pool: ProcessPoolExecutor, user: _User) -> None:
        """A large user's shared files, once all its batches are back."""
        if not user.complete or user.pending or user.submitted:
            return
        user.submitted = True
        if self.options.incremental and not user.tally.any_reread:
            same = unchanged_shared(user.volume, user.home, user, user.known or {})
            if same is not None:
                self._shared_done(user, same, True)  # unchanged: nothing to record now
                return
        tally = user.tally
        task = UserTask(user.volume, user.home.tenant, user.home.user, user.list_index_dir,
                        user.map_index_dir, user.storage_dir,
                        tally.references if tally.all_reread else None,
                        self.options.mailbox_timeout, user.names)
        self.inflight[pool.submit(scan_user, task)] = _Inflight(user, _Kind.SHARED)

    # collecting ----------------------------------------------------------
    def _drain(self, pool: ProcessPoolExecutor, until: int, interrupted: bool = False) -> None:
        if len(self.inflight) > until:
            self._collect(pool, until, interrupted)
            self.flush_output()

    def _collect(self, pool: ProcessPoolExecutor, until: int, interrupted: bool) -> None:
        while len(self.inflight) > until:
            done, _ = wait(list(self.inflight), return_when=FIRST_COMPLETED)
            for future in done:
                task = self.inflight.pop(future)
                if future.cancelled():
                    continue
                self._returned(task, future)
                if not interrupted:
                    for user in task.every_user:
                        self._maybe_shared_task(pool, user)

    def _returned(self, task: _Inflight, future: Future) -> None:
        user = task.user
        try:
            value = future.result()
        except Exception as err:
            for one in task.every_user:
                self._worker_failed(replace(task, user=one), f"{type(err).__name__}: {err}")
            return
        if task.kind is _Kind.HOME:
            read, done = 0, []
            for one, result in zip(task.users, value, strict=True):
                if isinstance(result, HomeFailed):
                    self._worker_failed(_Inflight(one, _Kind.HOME), result.error)
                    continue
                done += self._home_done(one, result)
                read += (sum(o.bytes for o in result.outcomes)
                         + sum(o.bytes for o in result.shared or ()))
            self._record(done)  # the task's users together: a few statements, not each
        else:
            for outcome in value:
                if task.kind is _Kind.BATCH:
                    user.pending -= 1
                    user.tally.add(outcome)
            self._record(value)
            if task.kind is _Kind.SHARED:
                self._tell("user_done")
            read = sum(o.bytes for o in value if o.reread)
        self._tell("settle", 0, read)

    def _worker_failed(self, task: _Inflight, error: str) -> None:
        """A task that died (not a check that failed: those are findings of their own)."""
        user = task.user
        path = str(user.home.home)
        report = MailboxReport(
            path, "(worker)", "unknown",
            (Finding("scanner.error", path, f"worker failed: {error}"),),
        )
        user.tally.all_reread = False
        user.pending -= task.mailboxes  # so the user's shared files are still checked
        if task.kind is _Kind.HOME:
            user.complete = user.submitted = True  # nothing is known of its mailboxes
            self._tell("user_done")
        self._record([Outcome(user.volume, user.home.tenant, user.home.user, report, 0, None,
                              True)])

    def _record(self, outcomes: Sequence[Outcome]) -> None:
        """Store what came back from one task in the ledger together, then report each."""
        if not outcomes:
            return
        recorded = self.ledger.record_many(
            self.result.run_id,
            [(o.mailbox_record(), list(o.report.findings), o.reread) for o in outcomes])
        for outcome, findings in zip(outcomes, recorded, strict=True):
            self._report(outcome, [f.to_dict() for f in findings])

    def _report(self, outcome: Outcome, findings: list[dict[str, object]]) -> None:
        """Count, output and show progress for one recorded mailbox."""
        self._count(outcome, findings)
        self.on_outcome(outcome, findings)
        self._tell("done", 1)
        if time.monotonic() - self.last_commit > 1.0:
            self.ledger.commit()
            self.last_commit = time.monotonic()

    def _count(self, outcome: Outcome, findings: list[dict[str, object]]) -> None:
        r = self.result
        r.mailboxes += 1
        r.reread += int(outcome.reread)
        r.bytes += outcome.bytes
        pairs = {(str(f["check"]), str(f["severity"])) for f in findings}
        if pairs:
            r.findings.update(pairs)
        volume = r.volumes.get(outcome.volume)
        if volume is None:
            volume = r.volumes[outcome.volume] = Counter()
        volume["mailboxes"] += 1
        volume["bytes"] += outcome.bytes
        if not pairs:
            volume["healthy"] += 1
        elif any(could_not_check(check, sev) for check, sev in pairs):
            r.unchecked += 1
            volume["could_not_check"] += 1
        elif any(sev != "info" for _, sev in pairs):
            r.affected += 1
            worst = str(worst_of(s for _, s in pairs))
            volume[worst] += 1
        else:
            volume["healthy"] += 1

    def _finish(self) -> None:
        self._flush_unchanged()
        self.flush_output()
        if self.found:
            self.ledger.keep_listings(self.found)
            self.found = []
        r = self.result
        for volume in self.fed:
            if not self.roots_found[volume]:
                r.volume_errors.append(f"volume {volume} holds no mailbox {self._of()}")
        r.finished = time.time()
        r.paused = Counter(self.gate.paused)
        if r.volume_errors:
            r.unchecked += len(r.volume_errors)
        if r.status == "complete" and not r.volume_errors:
            self.ledger.retire_unseen(r.run_id, [str(v) for v in self.options.volumes])
        self.ledger.finish_run(
            r.run_id,
            r.status,
            {
                "mailboxes": r.mailboxes,
                "reread": r.reread,
                "affected": r.affected,
                "unchecked": r.unchecked,
                "bytes": r.bytes,
            },
            dict(r.paused),
        )


def _options_doc(opts: ScanOptions) -> dict[str, object]:
    return {
        "layout": opts.layout,
        "index_root": str(opts.index_root or ""),
        "control_root": str(opts.control_root or ""),
        "jobs": opts.jobs,
        "incremental": opts.incremental,
        "max_duration": opts.max_duration,
        "dovecot_config": opts.dovecot_config or "",
        "max_load": opts.load.max_load,
        "max_io_pressure": opts.load.max_io_pressure,
        "window": str(opts.load.window or ""),
        "io_idle": opts.load.io_idle,
        "per_volume": opts.per_volume,
    }


def _nothing() -> None:
    pass


def _raise_interrupted(_signum, _frame) -> None:
    raise Interrupted
