"""Progress as JSON lines on stderr under ``--log-json``, in the shape of borg's
``progress_percent`` messages, so that a supervisor (systemd, a job runner, a web
UI) can follow a scan without scraping a bar.

One line per redraw, at most twice a second (a pause and the last line at once):
``{"type": "progress_percent", "msgid": "scan", "operation": 1, "current": bytes,
"total": bytes, "finished": false, "message": ..., "users_done", "users",
"mailboxes", "time"}``. The last line has ``"finished": true``.
"""

from __future__ import annotations

import json
import time

from dovecot_index_tool.present.progress import REDRAW


class JsonProgress:
    def __init__(self, stream, clock=None) -> None:
        self.stream = stream
        self.clock = clock or time.monotonic
        self.last: float | None = None

    def show(self, progress, now: bool) -> None:
        moment = self.clock()
        if not now and self.last is not None and moment - self.last < REDRAW:
            return
        self.last = moment
        self._write(progress, finished=False)

    def close(self, progress) -> None:
        self._write(progress, finished=True)

    def _write(self, progress, finished: bool) -> None:
        record = {
            "type": "progress_percent",
            "msgid": "scan",
            "operation": 1,
            "current": progress.bytes.current,
            "total": progress.bytes.total,
            "finished": finished,
            "message": f"{progress.description()}: {progress.postfix()}",
            "users_done": progress.users_done,
            "users": progress.bytes.users,
            "mailboxes": progress.mailboxes,
            "time": time.time(),
        }
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()
