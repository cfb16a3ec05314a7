"""The scan loop: stream users and mailboxes into a bounded pool, record what returns.

At most ``2 * jobs`` tasks are in flight, so memory does not grow with the store.
A user's shared files (list index, mdbox map) are checked once all its mailboxes
have returned, with the mdbox references they counted. Ctrl-C or SIGTERM stops
submitting, lets running tasks finish, and keeps everything recorded so far.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from dovecot_index_tool.check.findings import (
    Finding,
    could_not_check,
    status_for,
    stored_findings,
)
from dovecot_index_tool.check.runner import MailboxReport
from dovecot_index_tool.check.severity import worst as worst_of
from dovecot_index_tool.check.target import unreadable_report
from dovecot_index_tool.discovery import (
    MailboxFormat,
    find_mail_root,
    iter_mailboxes,
    noting_unreadable,
)
from dovecot_index_tool.exitcodes import Exit
from dovecot_index_tool.ledger.store import Ledger
from dovecot_index_tool.load.gate import LoadGate, LoadLimits
from dovecot_index_tool.load.probe import LoadProbe
from dovecot_index_tool.scan.worker import (
    MailboxBatch,
    Outcome,
    UserTask,
    fingerprint,
    index_bytes,
    prefix_fingerprint,
    scan_mailboxes,
    scan_user,
    worker_init,
)
from dovecot_index_tool.volumes import UserHome, VolumeError, iter_users, user_tree

BATCH = 8  # mailboxes of one user per task: fewer round trips, pauses stay frequent


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
    pending: int = 0
    complete: bool = False
    references: Counter = field(default_factory=Counter)
    all_reread: bool = True
    any_reread: bool = False
    recorded: int = 0
    known: dict[str, str] = field(default_factory=dict)  # stored fingerprints (--incremental)
    names: set[str] = field(default_factory=set)
    unchanged: list[Outcome] = field(default_factory=list)
    submitted: bool = False


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
        self.progress = progress
        self.weigh = bool(getattr(progress, "enabled", False))  # sizes only for a display
        # user, mailboxes in the task, the bytes it is expected to read (progress)
        self.inflight: dict[Future, tuple[_User, int, int]] = {}
        self.gate = LoadGate(options.load, probe, options.max_duration,
                             getattr(progress, "paused", None))
        self.result = ScanResult(0)
        self.last_commit = time.monotonic()

    def run(self) -> ScanResult:
        opts = self.options
        run_id = self.ledger.start_run([str(v) for v in opts.volumes], _options_doc(opts))
        self.result = ScanResult(run_id)
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
        try:
            with ProcessPoolExecutor(max_workers=opts.jobs, initializer=worker_init,
                                     initargs=(opts.load.io_idle,)) as pool:
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
            found = 0
            self._tell("users", len(users))
            try:
                for home in users:
                    self._admit(new_user=True)
                    found += self._feed_user(pool, volume, home)
                    self._tell("listed")
            except _StopFeeding as stop:
                self.result.status = str(stop)
                return
            if found == 0:
                self.result.volume_errors.append(f"volume {volume} holds no mailbox {self._of()}")

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

    def _feed_user(self, pool: ProcessPoolExecutor, volume: Path, home: UserHome) -> int:
        """Hand every mailbox of one user to the pool; returns how many there were."""
        if home.error:
            self._no_mail_root(volume, home)
            return 0
        with noting_unreadable() as unreadable:
            user = self._feed_mailboxes(pool, volume, home)
        if user is None:
            self._no_mail_root(volume, home)
            return 0
        self._record_unchanged(user)
        self._report_unreadable(volume, user, unreadable)
        user.complete = True
        self._maybe_user_task(pool, user)
        return max(1, user.pending + user.recorded)

    def _feed_mailboxes(self, pool: ProcessPoolExecutor, volume: Path, home: UserHome
                        ) -> _User | None:
        opts = self.options
        root = home.mail_root
        if not home.configured:
            root = find_mail_root(
                home.home, user_tree(opts.index_root, home), user_tree(opts.control_root, home)
            )
        if root is None:
            return None
        user = _User(home, str(volume), root.list_index_dir, root.map_index_dir, root.storage_dir)
        if opts.incremental:
            user.known = self.ledger.user_fingerprints(str(volume), home.tenant, home.user)
        batch: list = []
        expected = 0
        for location in iter_mailboxes(root):
            user.names.add(location.name)
            size = self._size(location, user)
            if size is None:
                continue
            batch.append(location)
            expected += size
            if len(batch) == BATCH:
                self._submit_batch(pool, user, root, batch, expected)
                batch, expected = [], 0
        if batch:
            self._submit_batch(pool, user, root, batch, expected)
        return user

    def _size(self, location, user: _User) -> int | None:
        """The bytes of index files a worker will read for the mailbox, from the stat
        calls --incremental makes anyway (or made only for a shown progress), or None
        when --incremental leaves the mailbox unread."""
        if self.options.incremental:
            digest, size = fingerprint(location)
            return None if self._unchanged(location, user, digest, size) else size
        return index_bytes(location) if self.weigh else 0

    def _submit_batch(self, pool: ProcessPoolExecutor, user: _User, root, locations: list,
                      expected: int) -> None:
        """Start a batch of the user's mailboxes, once the host and the window allow."""
        self._admit()
        task = MailboxBatch(user.volume, user.home.tenant, user.home.user, tuple(locations),
                            self.options.mailbox_timeout, root.map_index_dir, root.storage_dir)
        user.pending += len(locations)
        self._tell("expect", expected)
        self._submit(pool, pool.submit(scan_mailboxes, task), user, len(locations), expected)

    def _tell(self, what: str, *args) -> None:
        """Tell the progress display, if there is one."""
        if self.progress is not None:
            getattr(self.progress, what)(*args)

    def _report_unreadable(self, volume: Path, user: _User, unreadable: dict[str, str]) -> None:
        """Directories discovery could not look into: what is behind them was not checked."""
        for path, reason in unreadable.items():
            report = unreadable_report(path, reason)
            self._record(
                Outcome(str(volume), user.home.tenant, user.home.user, report, 0, None, True), user
            )

    def _no_mail_root(self, volume: Path, home: UserHome) -> None:
        """A user directory with no recognisable mail in it: could not check, never clean."""
        user = _User(home, str(volume))
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
        self._record(Outcome(str(volume), home.tenant, home.user, report, 0, None, True), user)
        self._tell("user_done")

    def _unchanged(self, location, user: _User, digest: str, size: int) -> bool:
        """--incremental: a mailbox whose files did not change is not handed to a worker."""
        if user.known.get(str(location.index_dir)) != digest:
            return False
        report = MailboxReport(str(location.index_dir), location.name, location.format)
        user.unchanged.append(
            Outcome(user.volume, user.home.tenant, user.home.user, report, size, digest, False)
        )
        user.all_reread = False
        return True

    def _record_unchanged(self, user: _User) -> None:
        """Unchanged mailboxes of a user: one update and one query, not one per mailbox."""
        if not user.unchanged:
            return
        paths = [o.report.path for o in user.unchanged]
        self.ledger.touch(self.result.run_id, paths)
        stored = self.ledger.open_findings_of(paths)
        for outcome in user.unchanged:
            user.recorded += 1
            self._report(outcome, [f.to_dict() for f in
                                   stored_findings(stored[outcome.report.path])])
        user.unchanged = []

    def _user_unchanged(self, user: _User) -> bool:
        """--incremental: the list index and map are skipped when nothing of the user changed."""
        shared = []
        if user.list_index_dir is not None:
            shared.append(
                (
                    Path(user.list_index_dir) / "dovecot.list.index",
                    None,
                    ("(mailbox list index)", MailboxFormat.LIST_INDEX),
                )
            )
        if user.map_index_dir is not None:
            shared.append(
                (
                    Path(user.map_index_dir) / "dovecot.map.index",
                    user.storage_dir,
                    ("(mdbox map)", MailboxFormat.MDBOX_MAP),
                )
            )
        digests = []
        for prefix, extra, kind in shared:
            digest, size = prefix_fingerprint(str(prefix), extra)
            if user.known.get(str(prefix)) != digest:
                return False
            digests.append((prefix, digest, size, kind))
        for prefix, digest, size, kind in digests:
            report = MailboxReport(str(prefix), *kind)
            user.unchanged.append(
                Outcome(user.volume, user.home.tenant, user.home.user, report, size, digest, False)
            )
        self._record_unchanged(user)
        return True

    def _admit(self, new_user: bool = False) -> None:
        """Wait while the host is busy; stop feeding outside the window or budget."""
        stop = self.gate.admit(new_user)
        if stop is not None:
            raise _StopFeeding(stop)

    def _submit(self, pool: ProcessPoolExecutor, future: Future, user: _User, mailboxes: int,
                expected: int) -> None:
        self.inflight[future] = (user, mailboxes, expected)
        self._drain(pool, until=2 * self.options.jobs)
        limit = self.options.per_volume
        while limit is not None and self._reading_on(user.volume) >= limit:
            self._drain(pool, until=len(self.inflight) - 1)

    def _reading_on(self, volume: str) -> int:
        return sum(1 for user, _, _ in self.inflight.values() if user.volume == volume)

    def _maybe_user_task(self, pool: ProcessPoolExecutor, user: _User) -> None:
        if not user.complete or user.pending or user.submitted:
            return
        user.submitted = True
        self._tell("user_done")
        if user.list_index_dir is None and user.map_index_dir is None:
            return
        if self.options.incremental and not user.any_reread and self._user_unchanged(user):
            return
        refs = user.references if user.all_reread else None
        task = UserTask(
            user.volume,
            user.home.tenant,
            user.home.user,
            user.list_index_dir,
            user.map_index_dir,
            user.storage_dir,
            refs,
            self.options.mailbox_timeout,
            frozenset(user.names),
        )
        self.inflight[pool.submit(scan_user, task)] = (user, 0, 0)

    # collecting ----------------------------------------------------------
    def _drain(self, pool: ProcessPoolExecutor, until: int, interrupted: bool = False) -> None:
        while len(self.inflight) > until:
            done, _ = wait(list(self.inflight), return_when=FIRST_COMPLETED)
            for future in done:
                user, mailboxes, expected = self.inflight.pop(future)
                if future.cancelled():
                    continue
                outcomes = self._outcomes(future, user, mailboxes)
                for outcome in outcomes:
                    self._record(outcome, user)
                self._tell("settle", expected, sum(o.bytes for o in outcomes if o.reread))
                if not interrupted:
                    self._maybe_user_task(pool, user)

    def _outcomes(self, future: Future, user: _User, mailboxes: int) -> list[Outcome]:
        try:
            value = future.result()
        except Exception as err:
            path = str(user.home.home)
            report = MailboxReport(
                path,
                "(worker)",
                "unknown",
                (Finding("scanner.error", path, f"worker failed: {type(err).__name__}: {err}"),),
            )
            user.all_reread = False
            user.pending -= mailboxes  # so the user's shared files are still checked
            return [Outcome(user.volume, user.home.tenant, user.home.user, report, 0, None, True)]
        if mailboxes:
            for outcome in value:
                self._counted(user, outcome)
        return value

    def _counted(self, user: _User, value: Outcome) -> None:
        """One mailbox of the user is back: its mdbox references, whether all were read."""
        user.pending -= 1
        user.any_reread = user.any_reread or value.reread
        user.references.update(value.references)
        if not value.reread or any(could_not_check(f.check) for f in value.report.findings):
            user.all_reread = False

    def _record(self, outcome: Outcome, user: _User) -> None:
        user.recorded += 1
        recorded = self.ledger.record(self.result.run_id, outcome.mailbox_record(),
                                      list(outcome.report.findings), outcome.reread)
        self._report(outcome, [f.to_dict() for f in recorded])

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
        r.findings.update(pairs)
        volume = r.volumes.setdefault(outcome.volume, Counter())
        volume["mailboxes"] += 1
        volume["bytes"] += outcome.bytes
        if any(could_not_check(check, sev) for check, sev in pairs):
            r.unchecked += 1
            volume["could_not_check"] += 1
        elif any(sev != "info" for _, sev in pairs):
            r.affected += 1
            worst = str(worst_of(s for _, s in pairs))
            volume[worst] += 1
        else:
            volume["healthy"] += 1

    def _finish(self) -> None:
        r = self.result
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


def _raise_interrupted(_signum, _frame) -> None:
    raise Interrupted
