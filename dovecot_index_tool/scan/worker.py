"""What a worker process does with one task: check a mailbox (or a user's shared files)
on a stable read, under a time limit.

Dovecot keeps writing while we scan. The mailbox's files are fingerprinted (inode,
size, mtime) before the checks, and that fingerprint is what the ledger keeps: a
change during the read is the next run's to read. Damage is only reported when a
second fingerprint after the checks agrees; otherwise the mailbox is read again, a
bounded number of times.

The checks and the parsers under them are imported where a mailbox is first read, not
with this module: an ``--incremental`` run that reads nothing never loads them (a
full scan loads them in the parent before the workers fork, see ``Scanner.run``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from dovecot_index_tool.check.findings import Finding, could_not_check
from dovecot_index_tool.check.report import MailboxReport, References
from dovecot_index_tool.discovery import MailboxFormat, MailboxLocation
from dovecot_index_tool.files import noting_missing
from dovecot_index_tool.ledger.store import MailboxRecord
from dovecot_index_tool.load.priority import go_idle
from dovecot_index_tool.readahead import prefetch

if TYPE_CHECKING:
    from dovecot_index_tool.check.data import UserData

log = logging.getLogger(__name__)

STABLE_TRIES = 3
STABLE_PAUSE = 0.2
INDEX_FILES = ("dovecot.index", "dovecot.index.log", "dovecot.index.log.2", "dovecot.index.cache")
CONTROL_FILES = ("dovecot-uidlist", "dovecot-keywords")
PREFIX_SUFFIXES = ("", ".log", ".log.2", ".cache")  # the files of one index prefix


class MailboxTimeout(Exception):
    pass


@dataclass(frozen=True)
class MailboxTask:
    volume: str
    tenant: str | None
    user: str
    location: MailboxLocation
    previous_fingerprint: str | None = None
    timeout: float = 0.0
    map_index_dir: Path | None = None  # mdbox: the map the mailbox's records point into
    storage_dir: Path | None = None


@dataclass(frozen=True)
class MailboxBatch:
    """Several mailboxes of one user in one task: one round trip to a worker instead of
    one per mailbox (the pool's pickling and wake-ups cost as much as a small check)."""

    volume: str
    tenant: str | None
    user: str
    locations: tuple[MailboxLocation, ...]
    timeout: float = 0.0
    map_index_dir: Path | None = None
    storage_dir: Path | None = None

    def tasks(self) -> list[MailboxTask]:
        return [MailboxTask(self.volume, self.tenant, self.user, loc, None, self.timeout,
                            self.map_index_dir, self.storage_dir) for loc in self.locations]


@dataclass(frozen=True)
class UserTask:
    volume: str
    tenant: str | None
    user: str
    list_index_dir: Path | None
    map_index_dir: Path | None
    storage_dir: Path | None
    references: Counter | None
    timeout: float = 0.0
    mailboxes: frozenset[str] | None = None  # every mailbox name found, for the list index


@dataclass(frozen=True)
class Outcome:
    """One checked mailbox (or user-level file) as the parent records it."""

    volume: str
    tenant: str | None
    user: str
    report: MailboxReport
    bytes: int
    fingerprint: str | None
    reread: bool
    references: Counter | None = None  # mdbox map references counted (None: none)
    mail_dir: str | None = None
    control_dir: str | None = None

    def mailbox_record(self) -> MailboxRecord:
        """What the ledger keeps of this mailbox (a scan and a re-check record alike).
        A mailbox that could not be checked keeps no fingerprint: the next
        --incremental run reads it again instead of repeating what it could not see."""
        r = self.report
        unchecked = any(could_not_check(f.check, f.severity) for f in r.findings)
        return MailboxRecord(r.path, self.volume, self.tenant, self.user, r.name, r.format,
                             r.path, self.mail_dir, self.control_dir, r.messages, self.bytes,
                             None if unchecked else self.fingerprint)


def worker_init(io_idle: bool = False) -> None:
    """Workers leave Ctrl-C and SIGTERM (sent to the whole group by systemd or timeout)
    to the parent, which stops the pool cleanly; with ``io_idle`` they read in the idle
    I/O class at the lowest CPU priority, so Dovecot's own reads go first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if io_idle and not go_idle():
        log.warning("--io-idle: the I/O class of worker %d could not be set", os.getpid())


def _index_and_control_files(location: MailboxLocation) -> list[tuple[str, str]]:
    """(name, path) of the index and control files a mailbox may have; plain strings,
    since this runs for every mailbox and pathlib costs more than the stat calls."""
    index = str(location.index_dir)
    named = [(n, f"{index}/{n}") for n in INDEX_FILES]
    if location.control_dir is not None:
        control = str(location.control_dir)
        named += [(n, f"{control}/{n}") for n in CONTROL_FILES]
    return named


def _stats(location: MailboxLocation) -> list[tuple[str, int, int, int, int]]:
    """(name, inode, size, mtime, ctime) of the mailbox's files, before and after its
    read. The ctime moves with a chmod or chown too, which may make a file unreadable
    (or readable again) without changing its contents."""
    named = _index_and_control_files(location)
    if location.mail_dir is not None:
        mail = os.path.normpath(str(location.mail_dir))
        if location.format == MailboxFormat.MAILDIR:
            named += [("cur", f"{mail}/cur"), ("new", f"{mail}/new")]
        else:
            named.append((os.path.basename(mail), mail))
    out = []
    for name, path in named:
        try:
            st = os.stat(path)
        except OSError:
            continue
        out.append((name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return out


def prefetch_mailboxes(locations, prefixes: tuple[str, ...] = ()) -> None:
    """Start the disk on the files of mailboxes about to be read, and on the index
    ``prefixes`` (list index, map) after them (see ``readahead.prefetch``)."""
    paths = [path for location in locations for _, path in _index_and_control_files(location)]
    paths += [f"{p}{suffix}" for p in prefixes for suffix in PREFIX_SUFFIXES]
    prefetch(paths)


def fingerprint(location: MailboxLocation) -> tuple[str, int]:
    """A digest of the mailbox files' identity, and the bytes they hold."""
    return _digest(_stats(location))


def _digest(stats: list[tuple[str, int, int, int, int]]) -> tuple[str, int]:
    return hashlib.sha1(repr(stats).encode()).hexdigest(), _index_size(stats)


def _read_whole(before: list[tuple], after: list[tuple], missing: set[str]) -> bool:
    """A read that changed files may still stand for a healthy verdict: Dovecot appends
    to its logs and renames whole files into place, and each file was read whole. Not
    when a file was there before and after the read but the read found it missing, or
    when files vanished or appeared: then the read saw another mailbox than either."""
    names = {s[0] for s in before}
    return names == {s[0] for s in after} and not names & {
        os.path.basename(path) for path in missing}


def _index_size(stats: list[tuple[str, int, int, int, int]]) -> int:
    return sum(s[2] for s in stats if s[0] not in ("cur", "new", "dbox-Mails"))


def prefix_fingerprint(prefix: str, extra_dir: Path | None = None) -> tuple[str, int]:
    """The same digest for a user-level index (list index, mdbox map) and its files."""
    paths = [f"{prefix}{suffix}" for suffix in PREFIX_SUFFIXES]
    stats, size = [], 0
    for path in [*paths, *([str(extra_dir)] if extra_dir else [])]:
        try:
            st = os.stat(path)
        except OSError:
            continue
        stats.append((os.path.basename(path), st.st_ino, st.st_size, st.st_mtime_ns,
                      st.st_ctime_ns))
        size += st.st_size if path in paths else 0
    return hashlib.sha1(repr(stats).encode()).hexdigest(), size


def _with_timeout(seconds: float, run):
    if seconds <= 0:
        return run()

    def expired(_signum, _frame):
        raise MailboxTimeout

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return run()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def scan_mailbox(task: MailboxTask) -> Outcome:
    loc = task.location
    stats = _stats(loc)
    before, size = _digest(stats)
    common = {
        "volume": task.volume,
        "tenant": task.tenant,
        "user": task.user,
        "mail_dir": str(loc.mail_dir) if loc.mail_dir else None,
        "control_dir": str(loc.control_dir) if loc.control_dir else None,
    }
    if task.previous_fingerprint is not None and before == task.previous_fingerprint:
        report = MailboxReport(str(loc.index_dir), loc.name, loc.format)
        return Outcome(report=report, bytes=size, fingerprint=before, reread=False, **common)
    log.debug("checking %s (%s)", loc.index_dir, loc.format)
    for attempt in range(STABLE_TRIES):
        refs = Counter()
        try:
            with noting_missing() as missing:
                report = _with_timeout(task.timeout, partial(_check, task, refs))
        except MailboxTimeout:
            log.warning("%s: checks ran past %g s", loc.index_dir, task.timeout)
            report = _single(
                loc,
                Finding(
                    "scanner.timeout", str(loc.index_dir), f"checks ran past {task.timeout:g} s"
                ),
            )
            return Outcome(report=report, bytes=size, fingerprint=None, reread=True, **common)
        now = _stats(loc)
        after, size = _digest(now)
        if after == before or (not _damaged(report) and _read_whole(stats, now, missing)):
            return Outcome(  # kept as it was before the read: a change is the next run's
                report=report, bytes=size, fingerprint=before, reread=True,
                references=refs or None, **common
            )
        log.info("%s changed while it was read; reading it again", loc.index_dir)
        stats, before = now, after
        if attempt + 1 < STABLE_TRIES:
            time.sleep(STABLE_PAUSE)
    report = _single(
        loc,
        Finding(
            "scanner.unstable",
            str(loc.index_dir),
            f"the mailbox changed during each of {STABLE_TRIES} reads: what it holds was "
            "not confirmed",
        ),
    )
    return Outcome(report=report, bytes=size, fingerprint=None, reread=True, **common)


def scan_mailboxes(batch: MailboxBatch) -> list[Outcome]:
    """Each mailbox of the batch as ``scan_mailbox`` does it; one that fails is a
    ``scanner.error`` of its own, and the others are still checked."""
    tasks = batch.tasks()
    prefetch_mailboxes(task.location for task in tasks)
    return [check_one(task) for task in tasks]


def check_one(task: MailboxTask) -> Outcome:
    try:
        return scan_mailbox(task)
    except Exception as err:
        loc = task.location
        finding = Finding("scanner.error", str(loc.index_dir),
                          f"worker failed: {type(err).__name__}: {err}")
        return Outcome(task.volume, task.tenant, task.user, _single(loc, finding), 0, None,
                       True)


_MAP_CACHE: dict[tuple, UserData] = {}


def _map_of(task: MailboxTask) -> UserData | None:
    if task.location.format != "mdbox" or task.map_index_dir is None:
        return None
    return _cached_map(task.map_index_dir, task.storage_dir)


def _cached_map(map_index_dir: Path, storage_dir: Path | None) -> UserData:
    """The user's mdbox map, loaded once per worker while its files stay unchanged:
    every mdbox mailbox of the user and then its shared-file checks ask for it."""
    prefix = Path(map_index_dir) / "dovecot.map.index"
    key = (str(prefix), *_file_ids(prefix, ("", ".log", ".log.2")), str(storage_dir))
    if key not in _MAP_CACHE:
        _MAP_CACHE.clear()
        from dovecot_index_tool.check.data import load_user

        _MAP_CACHE[key] = load_user(None, map_index_dir, storage_dir)
    return _MAP_CACHE[key]


def _user_data(task: UserTask) -> UserData:
    """The list index read now; the map as the mailboxes' checks read it."""
    from dovecot_index_tool.check.data import load_user

    if task.map_index_dir is None:
        return load_user(task.list_index_dir, None, None)
    listed = load_user(task.list_index_dir, None, None)
    mapped = _cached_map(task.map_index_dir, task.storage_dir)
    return replace(mapped, list_index=listed.list_index,
                   read_errors=listed.read_errors + mapped.read_errors)


def _file_ids(prefix: Path, suffixes: tuple[str, ...]) -> list[tuple[int, int, int]]:
    out = []
    for suffix in suffixes:
        try:
            st = os.stat(f"{prefix}{suffix}")
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((0, 0, 0))
    return out


def _check(task: MailboxTask, refs: Counter) -> MailboxReport:
    collected = References()
    from dovecot_index_tool.check.runner import check_mailbox

    report = check_mailbox(task.location, _map_of(task), collected)
    refs.update(collected.counts)
    return report


def _damaged(report: MailboxReport) -> bool:
    return any(f.severity.value != "info" for f in report.findings)


def _single(loc: MailboxLocation, finding: Finding) -> MailboxReport:
    return MailboxReport(str(loc.index_dir), loc.name, loc.format, (finding,))


def scan_user(task: UserTask) -> list[Outcome]:
    """The list index and mdbox map of one user (after all its mailboxes), each with
    the fingerprint its files had before they were read (as ``scan_mailbox`` keeps)."""
    before = {prefix: prefix_fingerprint(prefix, extra)
              for prefix, extra, _ in shared_indexes(task)}

    def run() -> list[MailboxReport]:
        user = _user_data(task)
        names = set(task.mailboxes) if task.mailboxes is not None else None
        from dovecot_index_tool.check.runner import check_user_files

        return check_user_files(user, task.references, names)

    try:
        reports = _with_timeout(task.timeout, run)
    except MailboxTimeout:
        path = str(task.map_index_dir or task.list_index_dir)
        reports = [
            MailboxReport(
                path,
                "(user files)",
                "user",
                (Finding("scanner.timeout", path, f"checks ran past {task.timeout:g} s"),),
            )
        ]
    out = []
    for report in reports:
        extra = task.storage_dir if report.format == MailboxFormat.MDBOX_MAP else None
        digest, size = before.get(report.path) or prefix_fingerprint(report.path, extra)
        out.append(Outcome(task.volume, task.tenant, task.user, report, size, digest, True))
    return out


def shared_indexes(dirs) -> list[tuple[str, Path | None, tuple[str, MailboxFormat]]]:
    """The user's shared indexes (where ``dirs``, a MailRoot, a UserTask or the
    parent's record of the user, says they are): prefix, the directory whose identity
    goes into its fingerprint, and the name and format it is reported under."""
    shared = []
    if dirs.list_index_dir is not None:
        shared.append((os.path.join(dirs.list_index_dir, "dovecot.list.index"), None,
                       ("(mailbox list index)", MailboxFormat.LIST_INDEX)))
    if dirs.map_index_dir is not None:
        shared.append((os.path.join(dirs.map_index_dir, "dovecot.map.index"),
                       dirs.storage_dir, ("(mdbox map)", MailboxFormat.MDBOX_MAP)))
    return shared
