"""The list index's UIDVALIDITY of a mailbox, read from its directory for a repair."""

from __future__ import annotations

import os
from pathlib import Path

from dovecot_index_tool.check.data import load_index
from dovecot_index_tool.check.list_votes import listed_uid_validity
from dovecot_index_tool.format.errors import FormatError

LIST_INDEX = "dovecot.list.index"


def list_uid_validity(list_index_dir: str | os.PathLike[str] | None, mailbox: str) -> int | None:
    """UIDVALIDITY the list index in ``list_index_dir`` records for ``mailbox``."""
    if list_index_dir is None:
        return None
    try:
        state = load_index(Path(list_index_dir) / LIST_INDEX).state
    except (OSError, FormatError):
        return None
    return listed_uid_validity(state, mailbox)
