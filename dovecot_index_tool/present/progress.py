"""A scan's progress on stderr, weighted by bytes as pg_amcheck weighs it by relation
size: a user with a thousand mailboxes is not one step like a user with one.

The total is the bytes of the index files the scan reads. The engine learns a
mailbox's size from the stat calls of listing it, before a worker reads it
(``expect``); when a task returns, its estimate is replaced by what it read
(``settle``), which also brings in the user-level files (list index, mdbox map) that
were not estimated. Users not yet listed are counted at the average of those
listed, so the total is meaningful early and converges as the scan goes on. Users
and mailboxes done are shown beside it.

On a terminal this is a tqdm bar; under ``--log-json`` JSON lines
(``progress_json.py``); elsewhere (cron, a pipe) nothing. Both redraw at most twice
a second, never once per mailbox.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

REDRAW = 0.5  # seconds between redraws, whatever the rate


@dataclass
class ByteTotal:
    """Where the scan stands in bytes, and what it expects to read in all."""

    users: int = 0  # users announced (listed per volume before their mailboxes)
    listed: int = 0  # users whose mailboxes were all listed
    expected: int = 0  # estimated bytes of the tasks handed out, corrected as they return
    current: int = 0  # bytes read by the tasks that returned

    @property
    def total(self) -> int:
        unlisted = max(0, self.users - self.listed)
        guess = self.expected * unlisted // self.listed if self.listed else 0
        return max(self.current, self.expected + guess)


class ScanProgress:
    """What the engine tells (users, bytes, mailboxes, pauses), for one renderer."""

    def __init__(self, enabled: bool, json_stream=None, clock=None) -> None:
        self.enabled = enabled or json_stream is not None
        self.bytes = ByteTotal()
        self.users_done = 0
        self.mailboxes = 0
        self.busy = None
        if json_stream is not None:
            from dovecot_index_tool.present.progress_json import JsonProgress

            self.view = JsonProgress(json_stream, clock)
        elif enabled:
            self.view = _Bar()
        else:
            self.view = _Hidden()

    def users(self, count: int) -> None:
        self.bytes.users += count
        self._show()

    def listed(self) -> None:
        """A user's mailboxes were all listed (and their sizes expected)."""
        self.bytes.listed += 1

    def expect(self, size: int) -> None:
        self.bytes.expected += size

    def settle(self, estimated: int, read: int) -> None:
        """A task returned: what it read replaces what was expected of it."""
        self.bytes.expected += read - estimated
        self.bytes.current += read
        self._show()

    def user_done(self) -> None:
        self.users_done += 1
        self._show()

    def done(self, count: int) -> None:
        self.mailboxes += count

    def paused(self, busy) -> None:
        """A pause between mailboxes (``busy`` says why) or, with None, its end: shown
        at once, since nothing else moves while the scan waits."""
        self.busy = busy
        self._show(now=True)

    def close(self) -> None:
        self.view.close(self)

    def postfix(self) -> str:
        return f"{self.users_done}/{self.bytes.users} users, {self.mailboxes} mailboxes"

    def description(self) -> str:
        return "scan" if self.busy is None else f"scan paused ({self.busy})"

    def _show(self, now: bool = False) -> None:
        if self.enabled:
            self.view.show(self, now)


class _Hidden:
    """No terminal and no JSON: nothing is drawn (and tqdm is not even imported)."""

    def show(self, progress: ScanProgress, now: bool) -> None:
        return None

    def close(self, progress: ScanProgress) -> None:
        return None


class _Bar:
    """tqdm in bytes; it redraws on its own clock (``mininterval``)."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=0, unit="B", unit_scale=True, unit_divisor=1024, desc="scan",
            file=sys.stderr, dynamic_ncols=True, smoothing=0.05,
            mininterval=REDRAW,
        )

    def show(self, progress: ScanProgress, now: bool) -> None:
        bar = self.bar
        bar.total = progress.bytes.total
        bar.set_postfix_str(progress.postfix(), refresh=False)
        bar.set_description(progress.description(), refresh=now)
        bar.update(progress.bytes.current - bar.n)  # draws when mininterval has passed

    def close(self, progress: ScanProgress) -> None:
        self.bar.close()
