"""A tqdm progress bar on stderr: users done of the users listed, with mailboxes and MB,
and why the scan waits while it is paused for a busy host.

Users are listed per volume before their mailboxes are read, so the total is known
early and the ETA is meaningful; mailboxes and bytes are shown beside it.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


class ScanProgress:
    def __init__(self, enabled: bool) -> None:
        self.bar = tqdm(
            total=0,
            unit="user",
            desc="scan",
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
            smoothing=0.05,
            mininterval=0.5,  # redraw at most twice a second, whatever the rate
        )
        self.mailboxes = 0
        self.bytes = 0

    def users(self, count: int) -> None:
        self.bar.total += count

    def user_done(self) -> None:
        self.bar.update(1)

    def done(self, count: int, size: int) -> None:
        self.mailboxes += count
        self.bytes += size
        # Shown at the bar's next timed redraw: a redraw per mailbox floods the terminal.
        self.bar.set_postfix_str(f"{self.mailboxes} mailboxes, {self.bytes / 1e6:.1f} MB",
                                 refresh=False)

    def paused(self, busy) -> None:
        """A pause between mailboxes (``busy`` says why) or, with None, its end: shown
        at once, since nothing else moves while the scan waits."""
        self.bar.set_description("scan" if busy is None else f"scan paused ({busy})",
                                 refresh=True)

    def close(self) -> None:
        self.bar.close()
