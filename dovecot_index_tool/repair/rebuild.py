"""Index rebuild, force-resync and mdbox storage rebuild, through Dovecot.

Dovecot writes every index file; this module decides what Dovecot is asked to do and
checks the result against what the files held before:

1. Read what the mailbox holds (``expected.py``): the message files, the flags the
   damaged index, its backup and its log still hold, and what Dovecot shows of it
   (after which the files are put back as they were found).
2. Back up every file the action may touch, mark the backup "in progress", and under
   Dovecot's lock make sure none changed since the check.
3. Let Dovecot rebuild (``doveadm force-resync``), least destructive first: on the
   damaged files in place; then with the transaction logs moved aside (the index
   keeps its UIDs, the logs start anew); then with every index file moved aside, a
   fresh index built from the mail files. After each, put back what Dovecot dropped:
   flags and keywords (``doveadm flags add``), and UIDVALIDITY, next UID and mailbox
   GUID (``doveadm mailbox update``) where the UIDs were kept.
4. Verify: every expected message visible, with its flags; a UID may change only to
   one above every UID used before, or together with UIDVALIDITY; a rescan calls for
   no repair. When that fails (Dovecot dropped messages, reused UIDs, or aborted),
   the backup is put back before the next attempt.
5. When every attempt fails, the backup is put back: the mailbox is left as it was.

What it can lose: the cache (rebuilt on demand), modification sequences (clients
using CONDSTORE/QRESYNC resynchronise), the flags of a message whose record survives
in no index file (reported as lost), changes recorded only in the logs when the logs
must go, and for mdbox the UIDs of messages Dovecot has to add again (new UIDs above
the old ones, or a new UIDVALIDITY).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from dovecot_index_tool.atomic import replace_atomically
from dovecot_index_tool.check.catalogue import Repair
from dovecot_index_tool.discovery import MailboxFormat, MailboxLocation, MailRoot, iter_mailboxes
from dovecot_index_tool.repair.doveadm import (
    DoveadmError,
    DovecotSetup,
    FetchedMessage,
    MailboxDoveadm,
)
from dovecot_index_tool.repair.expected import (
    Expected,
    expected_state,
    with_view,
)
from dovecot_index_tool.repair.locking import LockTimeout, lock_if_present
from dovecot_index_tool.repair.outcome import RepairOutcome
from dovecot_index_tool.repair.preflight import check_setup, doveadm_for
from dovecot_index_tool.repair.putback import (
    directories_under,
    put_back,
    record_names,
    remove_new_directories,
)
from dovecot_index_tool.repair.quarantine import (
    Backup,
    MailboxChanged,
    file_sha256,
    mark_finished,
    mark_started,
    refuse_if_changed,
    take_backup,
)
from dovecot_index_tool.repair.reconcile import (
    NEW_UIDVALIDITY,
    moved,
    restore_state,
    shown,
    verify,
)
from dovecot_index_tool.repair.salvage import salvage

INDEX_SUFFIXES = ("", ".log", ".log.2", ".cache")
MAILBOX_FILES = tuple(f"dovecot.index{s}" for s in (*INDEX_SUFFIXES, ".backup"))
LIST_FILES = tuple(f"dovecot.list.index{s}" for s in INDEX_SUFFIXES[:3])
MAP_FILES = tuple(f"dovecot.map.index{s}" for s in INDEX_SUFFIXES[:3])
MAILDIR_CONTROL = ("dovecot-uidlist", "dovecot-keywords")


@dataclass(frozen=True)
class Attempt:
    """One way of letting Dovecot rebuild: which index files go first, and whether
    Dovecot starts from the index the salvage rebuilt of the files (``rebuilt``)."""

    name: str
    moved_aside: tuple[str, ...]
    done: str  # how the outcome tells it
    rebuilt: bool = False


ATTEMPTS = (
    Attempt("in place", (), "Dovecot's force-resync in place"),
    Attempt(
        "from the rebuilt index",
        ("dovecot.index",),
        "Dovecot's force-resync on the index rebuilt from its backup and logs",
        rebuilt=True,
    ),
    Attempt(
        "without the logs",
        ("dovecot.index.log", "dovecot.index.log.2"),
        "Dovecot's force-resync on the index with new logs",
    ),
    Attempt("fresh index", MAILBOX_FILES, "a fresh index built by Dovecot"),
)


@dataclass(frozen=True)
class RebuildJob:
    root: MailRoot
    location: MailboxLocation
    action: Repair
    findings: tuple[str, ...]
    job_id: int | None = None


@dataclass(frozen=True)
class Settings:
    dovecot: DovecotSetup
    backup_root: str
    lock_timeout: float
    reindex: bool = False


def rebuild(job: RebuildJob, settings: Settings, still_needed) -> RepairOutcome:
    """Repair one mailbox through Dovecot, verified, or leave it as it was.

    ``still_needed(location)`` rechecks the mailbox and names the findings that still
    call for a repair (empty when none)."""
    location = job.location
    doveadm = doveadm_for(settings.dovecot, job.root, location)
    check_setup(doveadm)  # before any backup: a setup that cannot work is said at once
    map_trusted = job.action is not Repair.STORAGE_REBUILD
    saved = salvage(location.index_dir)
    expected = expected_state(job.root, location, saved, map_trusted)
    paths = touched_files(job.root, location)
    backup = take_backup(location.index_dir, paths, settings.backup_root, job.findings,
                         job.job_id)
    mail_at_start = mail_files(job.root, location)
    home = job.root.root.parent
    directories = directories_under(home)
    record_names(backup, location)
    mark_started(backup)  # stays when this process dies or a put-back fails half-way
    failures: list[str] = []
    try:
        expected = _with_dovecots_view(expected, doveadm, backup, location)
        run = _Attempts(job, settings, backup, doveadm, expected, still_needed, saved.rebuilt)
        attempt = run.until_verified(failures)
        if attempt is not None:
            mark_finished(backup)
            try:
                outcome = _done(job, backup, paths, expected, attempt, failures, doveadm)
            except DoveadmError as err:  # verified already; only the details are missing
                outcome = RepairOutcome(location.name, job.action.value, True,
                                        backup.directory, reason=f"{attempt.done}; {err}")
            return _reindexed(outcome, doveadm) if settings.reindex else outcome
    except (MailboxChanged, LockTimeout):
        mark_finished(backup)  # raised before this attempt changed anything
        raise
    mark_finished(backup)
    leftovers = remove_new_directories(home, directories)
    remaining = still_needed(location)
    return RepairOutcome(
        location.name, job.action.value, False, backup.directory, (), (), remaining,
        " | ".join(failures) + "; the backup was put back"
        + (f", {len(leftovers)} directory(ies) Dovecot made were removed" if leftovers else "")
        + _arrivals(mail_at_start, mail_files(job.root, location), location.format),
    )


@dataclass
class _Attempts:
    """Runs the attempts in order until one verifies with every UID and UIDVALIDITY
    kept. When none does, the one that changed the fewest UIDs (new UIDs above the old
    ones under the same UIDVALIDITY before a new UIDVALIDITY) is run again and kept:
    clients then fetch only those messages again."""

    job: RebuildJob
    settings: Settings
    backup: Backup
    doveadm: MailboxDoveadm
    expected: Expected
    still_needed: object
    rebuilt: bytes | None

    def until_verified(self, failures: list[str]) -> Attempt | None:
        fallback: tuple[int, Attempt] | None = None
        for attempt in (a for a in ATTEMPTS if self.rebuilt or not a.rebuilt):
            problems, cost = self._run(attempt)
            if not problems and not cost:
                return attempt
            if not problems:
                problems = [_renumbering(cost)]
                if fallback is None or cost < fallback[0]:
                    fallback = (cost, attempt)
            failures.append(f"{attempt.name}: " + "; ".join(problems))
            put_back(self.backup, self.job.location)
        if fallback is None:
            return None
        problems, _ = self._run(fallback[1])
        if not problems:
            return fallback[1]
        failures.append(f"{fallback[1].name} again: " + "; ".join(problems))
        put_back(self.backup, self.job.location)
        return None

    def _run(self, attempt: Attempt) -> tuple[list[str], int]:
        """What is wrong after ``attempt``, and what its renumbering costs clients:
        0 when every UID was kept, the number of messages with new UIDs above the old
        ones, or ``NEW_UIDVALIDITY`` when the whole mailbox must be fetched again."""
        job, doveadm = self.job, self.doveadm
        with lock_if_present(Path(job.location.index_dir) / "dovecot.index.log",
                             self.settings.lock_timeout):
            refuse_if_changed(self.backup)
            _move_aside(job, attempt.moved_aside)
            if attempt.rebuilt and self.rebuilt is not None:
                _write_rebuilt(Path(job.location.index_dir), self.rebuilt, doveadm.owner)
        try:
            _force_resync(doveadm)
            restore_state(doveadm, self.expected)
            verdict = verify(doveadm, self.expected, lambda: self.still_needed(job.location))
            return verdict.problems, verdict.cost
        except DoveadmError as err:
            return [str(err)], 0


def _renumbering(cost: int) -> str:
    if cost >= NEW_UIDVALIDITY:
        return "Dovecot gave the mailbox a new UIDVALIDITY"
    return f"{cost} message(s) got new UIDs"


def mail_files(root: MailRoot, location: MailboxLocation) -> dict[str, int]:
    """The dbox message files and their sizes (for mdbox the user's ``m.N`` files).
    Maildir needs none: Dovecot lists ``cur/`` and ``new/`` at every sync."""
    if location.format == MailboxFormat.SDBOX:
        return _sizes(location.mail_dir, "u.*")
    if location.format == MailboxFormat.MDBOX:
        return _sizes(root.storage_dir, "m.*")
    return {}


def _sizes(directory, pattern: str) -> dict[str, int]:
    sizes = {}
    for path in Path(directory).glob(pattern) if directory is not None else ():
        with contextlib.suppress(OSError):
            sizes[path.name] = path.stat().st_size
    return sizes


def _arrivals(before: dict[str, int], after: dict[str, int], mail_format: str) -> str:
    """Mail delivered while the repair ran is on disk but not in the index put back."""
    grown = sorted(name for name, size in after.items() if size > before.get(name, -1))
    if not grown:
        return ""
    return (f"; {mail_format} files {', '.join(grown[:3])}{' ...' if len(grown) > 3 else ''} "
            "got mail during the repair: it is on disk but not in the index put back, so "
            "run `doveadm force-resync` on the mailbox once the damage is dealt with")


def _reindexed(outcome: RepairOutcome, doveadm: MailboxDoveadm) -> RepairOutcome:
    """``--reindex``: warm the cache (``doveadm index``); the repair stands either way."""
    try:
        doveadm.reindex()
    except DoveadmError as err:
        return replace(outcome, reason=f"{outcome.reason}; cache not warmed: {err}")
    return replace(outcome, reason=f"{outcome.reason}; cache warmed (doveadm index)")


def _with_dovecots_view(expected: Expected, doveadm: MailboxDoveadm, backup: Backup,
                        location: MailboxLocation) -> Expected:
    """Add what Dovecot shows of the damaged mailbox, where it can still open it.

    Opening it may already make Dovecot repair it on its own terms, so the backup is
    put back afterwards: the repair starts from the files as they were found."""
    try:
        shown = doveadm.fetch()
    except DoveadmError:
        shown = None
    put_back(backup, location)
    return expected if shown is None else with_view(expected, shown)


def touched_files(root: MailRoot, location: MailboxLocation) -> list[Path]:
    """Every file the repair may change: the mailbox's index files, the list index, the
    maildir control files, and for mdbox the map and every mailbox index of the user
    (a storage rebuild rewrites them all)."""
    paths = [Path(location.index_dir) / n for n in MAILBOX_FILES]
    paths += [Path(root.list_index_dir) / n for n in LIST_FILES]
    if location.format == MailboxFormat.MAILDIR:
        control = Path(location.control_dir or location.index_dir)
        paths += [control / n for n in MAILDIR_CONTROL]
    if location.format == MailboxFormat.MDBOX and root.map_index_dir is not None:
        paths += [Path(root.map_index_dir) / n for n in MAP_FILES]
        for other in iter_mailboxes(root):
            paths += [Path(other.index_dir) / n for n in MAILBOX_FILES]
    return list(dict.fromkeys(paths))


def _write_rebuilt(index_dir: Path, data: bytes, owner: tuple[int, int] | None) -> None:
    """Put the index the salvage rebuilt (the backup, or the index, with every log
    replayed: what Dovecot's own sync would have written) where the damaged one was,
    so that Dovecot starts from a complete index and keeps its UIDs."""
    def give_to_owner(temporary: str) -> None:
        if owner is not None and os.geteuid() == 0:
            os.chown(temporary, *owner)

    replace_atomically(index_dir / "dovecot.index", data, 0o600, give_to_owner)


def _force_resync(doveadm: MailboxDoveadm) -> None:
    """``doveadm force-resync``, run again once when Dovecot aborted: on a damaged
    index it may fail an assertion after marking the index corrupted, and its next
    run rebuilds from there, keeping more UIDs than a fresh index would."""
    try:
        doveadm.force_resync()
    except DoveadmError as err:
        if not err.killed:
            raise
        doveadm.force_resync()


def _done(job: RebuildJob, backup: Backup, paths: list[Path], expected: Expected,
          attempt: Attempt, failures: list[str], doveadm: MailboxDoveadm) -> RepairOutcome:
    status, fetched = doveadm.status(), shown(doveadm, expected.format)
    how = attempt.done
    if failures:
        how += " (after " + " | ".join(failures) + ")"
    if expected.uid_validity and status.uidvalidity != expected.uid_validity:
        how += (f"; Dovecot had to renumber: UIDVALIDITY {expected.uid_validity} became "
                f"{status.uidvalidity}, clients fetch the mailbox again")
    elif renumbered := moved(expected, fetched):
        which = ", ".join(f"{m.where}: UID {m.uid} is now {uid}" for m, uid in renumbered[:3])
        how += (f"; {len(renumbered)} message(s) came back under new UIDs above the old "
                f"ones ({which}{', ...' if len(renumbered) > 3 else ''}), because no "
                "attempt that keeps UIDs verified (see above); clients see them expunged "
                "and delivered again")
    changed = tuple(str(p) for p in paths if file_sha256(p) != _saved_sha(backup, p))
    verified = sum(1 for m in expected.messages if m.flags_known)
    unknown = _flags_unknown(expected, fetched)
    how += f"; {verified} message(s) verified with their flags"
    if unknown:
        how += f", {len(unknown)} with flags no current file records (see lost)"
    return RepairOutcome(job.location.name, job.action.value, True, backup.directory,
                         changed, unknown, (), how)


def _flags_unknown(expected: Expected, fetched: dict[str, FetchedMessage]) -> tuple[str, ...]:
    """Messages whose flags nothing independent of the damage records: only an older
    state of the index (put back, but changes after it are not known), or no record
    at all (dbox keeps flags only in the index)."""
    lost = [f"{m.where}: " + ("flags from an older state of the index, later changes "
                              "not known" if m.restore else "flags not known, no readable "
                              "index record")
            for m in expected.messages if not m.flags_known]
    if expected.format == MailboxFormat.MDBOX:
        known = expected.by_key()
        lost += [f"uid {m.uid} (guid {m.guid}): flags not known, no readable index record"
                 for key, m in fetched.items() if key not in known]
    return tuple(lost)


def _saved_sha(backup: Backup, path: Path) -> str | None:
    wanted = os.path.abspath(path)
    return next((f.sha256 for f in backup.files if f.path == wanted), None)


def _move_aside(job: RebuildJob, names: tuple[str, ...]) -> None:
    """Remove these index files of the mailbox (the backup holds them) so that Dovecot
    starts them anew; when every index file goes, for a storage rebuild the mdbox map
    goes too, which Dovecot rebuilds from the m.N files."""
    paths = [Path(job.location.index_dir) / name for name in names]
    map_dir = job.root.map_index_dir
    fresh = names == MAILBOX_FILES
    if fresh and job.action is Repair.STORAGE_REBUILD and map_dir is not None:
        paths += [Path(map_dir) / name for name in MAP_FILES]
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
