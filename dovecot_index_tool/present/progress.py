"""A tqdm progress bar on stderr: mailboxes done of those discovered so far, and bytes."""

from __future__ import annotations

import sys

from tqdm import tqdm


class ScanProgress:
    """The total grows while discovery streams; the rate and ETA follow it."""

    def __init__(self, enabled: bool) -> None:
        self.bar = tqdm(
            total=0,
            unit="mbox",
            desc="scan",
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        self.bytes = 0

    def discovered(self, count: int) -> None:
        self.bar.total += count
        self.bar.refresh()

    def done(self, count: int, size: int) -> None:
        self.bytes += size
        self.bar.update(count)
        self.bar.set_postfix_str(f"{self.bytes / 1e6:.1f} MB", refresh=False)

    def close(self) -> None:
        self.bar.close()
