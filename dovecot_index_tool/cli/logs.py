"""Logging on stderr, shared by the worker processes of a scan."""

from __future__ import annotations

import logging
import sys

_INSTALLED: list[bool] = []


def setup_logging(level: str) -> None:
    """Logs on stderr; worker processes log through the parent's handler."""
    import multiprocessing_logging

    logging.getLogger().setLevel(level.upper())
    if _INSTALLED:
        return  # once per process: each install would wrap the handlers again
    logging.basicConfig(
        stream=sys.stderr, format="%(asctime)s %(processName)s %(levelname)s %(message)s"
    )
    multiprocessing_logging.install_mp_handler()
    _INSTALLED.append(True)
