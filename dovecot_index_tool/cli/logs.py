"""Logging on stderr, shared by the worker processes of a scan; with ``--log-json``
one JSON object per line, in the shape of borg's ``log_message``, so that a
supervisor reads messages and progress (``present/progress_json.py``) alike."""

from __future__ import annotations

import json
import logging
import sys

_INSTALLED: list[bool] = []
TEXT = "%(asctime)s %(processName)s %(levelname)s %(message)s"


class JsonFormatter(logging.Formatter):
    """``{"type": "log_message", "time", "levelname", "name", "process", "message"}``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # workers send it formatted, without exc_info
            message += "\n" + record.exc_text
        return json.dumps({
            "type": "log_message", "time": record.created, "levelname": record.levelname,
            "name": record.name, "process": record.processName, "message": message,
        })


def setup_logging(level: str, as_json: bool = False) -> None:
    """Logs on stderr; worker processes log through the parent's handler."""
    import multiprocessing_logging

    root = logging.getLogger()
    root.setLevel(level.upper())
    if not _INSTALLED:  # once per process: each install would wrap the handlers again
        _fork_workers()
        logging.basicConfig(stream=sys.stderr, format=TEXT)
        multiprocessing_logging.install_mp_handler()
        _INSTALLED.append(True)
    formatter = JsonFormatter() if as_json else logging.Formatter(TEXT)
    for handler in root.handlers:  # multiprocessing_logging's passes it to its stream's
        handler.setFormatter(formatter)


def _fork_workers() -> None:
    """Worker processes are forked: multiprocessing-logging relays only the records of
    forked children (it refuses to install otherwise), and Python 3.14 starts children
    with forkserver unless told."""
    import multiprocessing

    if multiprocessing.get_start_method(allow_none=True) != "fork":
        multiprocessing.set_start_method("fork", force=True)


def workers_finished() -> None:
    """The worker processes are gone: write what they logged and log directly again.

    multiprocessing_logging's receiving thread looks for its end only between polls of
    0.2 s, and its close at exit waits for that poll: a fifth of a second on every run.
    Once the pool is shut down every record the workers sent is in the queue, so they
    are written here, and the wrapped handlers take over again."""
    import queue

    import multiprocessing_logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        if not isinstance(handler, multiprocessing_logging.MultiProcessingHandler):
            continue
        handler._is_closed = True  # its thread stops at its next poll; no join at exit
        while True:
            try:
                handler.sub_handler.handle(handler.queue.get_nowait())
            except (queue.Empty, EOFError, OSError):
                break
    multiprocessing_logging.uninstall_mp_handler(root)
    _INSTALLED.clear()
