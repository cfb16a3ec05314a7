"""One user as one worker task: find the mail root and the mailboxes there, in the
worker, and check them, then the user's shared files with what the mailboxes counted.

Why in the worker: listing a user's directories costs as much as checking a small
mailbox, and in the parent it ran on one core while the workers waited. A user whose
mailboxes fit in one task (most do) comes back whole, list index and mdbox map
included, with the map read once. A larger user sends the mailboxes past the first
``first`` back, for the parent to hand out in batches, so that pauses for the host's
load still come between a few mailboxes, never after a whole user.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dovecot_index_tool.check.findings import could_not_check
from dovecot_index_tool.check.report import MailboxReport
from dovecot_index_tool.discovery import (
    MailboxLocation,
    MailRoot,
    find_mail_root,
    iter_mailboxes,
    noting_consulted,
    noting_unreadable,
)
from dovecot_index_tool.scan import listing, worker
from dovecot_index_tool.scan.worker import MailboxTask, Outcome, UserTask
from dovecot_index_tool.volumes import UserHome

FIRST = 16  # mailboxes checked in the user's own task; the rest go out in batches


@dataclass
class Tally:
    """What a user's returned mailboxes tell its shared-file checks: the mdbox
    references they counted, and whether every mailbox was read this run (only then
    are the references complete)."""

    references: Counter = field(default_factory=Counter)
    all_reread: bool = True
    any_reread: bool = False

    def add(self, outcome: Outcome) -> None:
        self.any_reread = self.any_reread or outcome.reread
        if outcome.references:
            self.references.update(outcome.references)
        if not outcome.reread or any(could_not_check(f.check) for f in outcome.report.findings):
            self.all_reread = False


@dataclass(frozen=True)
class HomeTask:
    volume: str
    home: UserHome
    index_tree: Path | None  # this user's INDEX= and CONTROL= trees, if given
    control_tree: Path | None
    timeout: float = 0.0
    known: dict[str, str] | None = None  # --incremental: the fingerprints stored last run
    first: int = FIRST
    listing: str | None = None  # --incremental: the user's mailboxes as last found


@dataclass(frozen=True)
class HomeResult:
    root: MailRoot | None  # None: no Dovecot mail root where the user's mail should be
    outcomes: tuple[Outcome, ...] = ()  # mailboxes checked here
    unchanged: tuple[Outcome, ...] = ()  # --incremental: mailboxes left unread
    rest: tuple[MailboxLocation, ...] = ()  # for the parent to hand out in batches
    names: frozenset[str] = frozenset()  # every mailbox found, for the list index
    unreadable: dict[str, str] = field(default_factory=dict)  # directories not looked into
    shared: tuple[Outcome, ...] | None = None  # list index and map, when done here
    shared_unchanged: bool = False
    listing: str | None = None  # the mailboxes as found now, to keep (see scan.listing)


@dataclass(frozen=True)
class HomeFailed:
    """A user whose checks raised, in a task of several: the others still count."""

    error: str  # the exception's type and message


def scan_homes(tasks: tuple[HomeTask, ...]) -> list[HomeResult | HomeFailed]:
    """Several users as one task (see the engine: a task costs the parent more than a
    small user costs here); one user's failure is that user's alone."""
    out: list[HomeResult | HomeFailed] = []
    for task in tasks:
        try:
            out.append(scan_home(task))
        except Exception as err:  # reported as this user's worker failure
            out.append(HomeFailed(f"{type(err).__name__}: {err}"))
    return out


def scan_home(task: HomeTask) -> HomeResult:
    """Discovery and checks of one user (see the module's docstring)."""
    found = _mailboxes(task)
    if found is None:
        return HomeResult(None)
    root, locations, unreadable, keep = found
    names = frozenset(loc.name for loc in locations)
    unchanged, to_read = _split_unchanged(task, locations)
    first, rest = to_read[: task.first], to_read[task.first :]
    if first:  # an --incremental run with nothing changed reads nothing to prefetch
        worker.prefetch_mailboxes(first, _shared_prefixes(root) if not rest else ())
    outcomes = tuple(worker.check_one(_task(task, root, loc)) for loc in first)
    if rest:
        return HomeResult(root, outcomes, tuple(unchanged), tuple(rest), names, unreadable,
                          listing=keep)
    tally = Tally(all_reread=not unchanged)
    for outcome in outcomes:
        tally.add(outcome)
    shared, same = shared_files(task.volume, task.home, root, tally, names, task.timeout,
                                task.known)
    return HomeResult(root, outcomes, tuple(unchanged), (), names, unreadable,
                      tuple(shared), same, keep)


def _mailboxes(task: HomeTask) -> tuple[MailRoot, list[MailboxLocation], dict[str, str],
                                         str | None] | None:
    """The user's mail root and mailboxes, the directories that could not be looked
    into, and the listing to keep for the next --incremental run (None: nothing new to
    keep). Under --incremental, the last run's listing while it still holds."""
    home = task.home
    asked = listing.inputs(home.home, task.index_tree, task.control_tree,
                           home.mail_root if home.configured else None)
    if task.known is not None:
        last = listing.decode(task.listing)
        if last is not None and listing.still_holds(last, asked):
            return last.root, list(last.locations), {}, None
    started = time.time_ns()
    with noting_unreadable() as unreadable, noting_consulted() as consulted:
        root = _root(task)
        if root is None:
            return None
        locations = list(iter_mailboxes(root))
    keep = None
    if not unreadable:
        made = listing.made(asked, consulted, root, locations, started)
        keep = listing.encode(made) if made is not None else None
    return root, locations, dict(unreadable), keep


def _shared_prefixes(root: MailRoot) -> tuple[str, ...]:
    """The index prefixes of the user's list index and mdbox map."""
    return tuple(prefix for prefix, _, _ in worker.shared_indexes(root))


def _root(task: HomeTask) -> MailRoot | None:
    home = task.home
    if home.configured:
        return home.mail_root
    return find_mail_root(home.home, task.index_tree, task.control_tree)


def _task(task: HomeTask, root: MailRoot, location: MailboxLocation) -> MailboxTask:
    home = task.home
    return MailboxTask(task.volume, home.tenant, home.user, location, None, task.timeout,
                       root.map_index_dir, root.storage_dir)


def _split_unchanged(task: HomeTask, locations: list[MailboxLocation]
                     ) -> tuple[list[Outcome], list[MailboxLocation]]:
    """--incremental: mailboxes whose files did not change are not read again."""
    if task.known is None:
        return [], locations
    unchanged, to_read = [], []
    for location in locations:
        digest, size = worker.fingerprint(location)
        if task.known.get(str(location.index_dir)) != digest:
            to_read.append(location)
            continue
        report = MailboxReport(str(location.index_dir), location.name, location.format)
        unchanged.append(Outcome(task.volume, task.home.tenant, task.home.user, report, size,
                                 digest, False))
    return unchanged, to_read


def shared_files(volume: str, home: UserHome, root_dirs, tally: Tally, names: frozenset[str],
                 timeout: float, known: dict[str, str] | None) -> tuple[list[Outcome], bool]:
    """The user's list index and mdbox map (where ``root_dirs``, a MailRoot or the
    parent's record of the user, says they are): checked with the references the
    mailboxes counted, or, under --incremental when no mailbox and none of these files
    changed, left unread (True)."""
    if known is not None and not tally.any_reread:
        same = unchanged_shared(volume, home, root_dirs, known)
        if same is not None:
            return same, True
    task = UserTask(volume, home.tenant, home.user, root_dirs.list_index_dir,
                    root_dirs.map_index_dir, root_dirs.storage_dir,
                    tally.references if tally.all_reread else None, timeout, names)
    return worker.scan_user(task), False


def unchanged_shared(volume: str, home: UserHome, root_dirs, known: dict[str, str]
                     ) -> list[Outcome] | None:
    """The user's shared files as unchanged outcomes, or None when one of them changed."""
    out = []
    for prefix, extra, kind in worker.shared_indexes(root_dirs):
        digest, size = worker.prefix_fingerprint(prefix, extra)
        if known.get(prefix) != digest:
            return None
        out.append(Outcome(volume, home.tenant, home.user, MailboxReport(prefix, *kind), size,
                           digest, False))
    return out
