"""``--index-root`` and ``--control-root``: one meaning in every command.

Given to ``scan`` they are a tree with one directory per user, laid out as the
users are (``--layout``). ``check`` and ``repair`` take that tree too, and find the
user's directory in it from PATH; or the user's own INDEX=/CONTROL= directory (the
per-user form). A directory that fits neither is said to be wrong up front, because
checking a user against the wrong tree finds nothing there and would look healthy.
"""

from __future__ import annotations

import os
from pathlib import Path

from dovecot_index_tool.discovery import (
    CONTROL_FILES,
    INDEX_FILES,
    MAILBOXES_DIR,
    ROOT_MARK_FILES,
    STORAGE_DIR,
)
from dovecot_index_tool.errors import UsageProblem

USER_FILES = (*ROOT_MARK_FILES, *INDEX_FILES, *CONTROL_FILES)
USER_DIRS = (MAILBOXES_DIR, STORAGE_DIR, "INBOX", ".INBOX")
KEY_LEVELS = 4  # PATH and its parents tried as the user's place in the tree


def looks_like_one_user(path: Path) -> bool:
    """A user's INDEX=/CONTROL= directory: Dovecot's per-user files, an INBOX or dbox
    directory, ``.Name`` maildir folders; or nothing yet (Dovecot creates it)."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    if not names:
        return True
    return any(name in USER_FILES or name in USER_DIRS or name.startswith(".")
               for name in names)


def _keys(path: Path) -> list[str]:
    """Where a user of PATH could sit in a tree: the last one or two components of
    PATH and of its parents (``example.org/alice`` before ``alice``)."""
    keys = []
    current = Path(os.path.abspath(path))
    for _ in range(KEY_LEVELS):
        parts = current.parts[1:]
        keys += ["/".join(parts[-2:]), parts[-1]] if len(parts) > 1 else list(parts)
        current = current.parent
    return list(dict.fromkeys(keys))


def user_dir(option: str, given: Path | None, path: Path) -> Path | None:
    """The user's own directory for ``check``/``repair`` PATH, from either form."""
    if given is None or looks_like_one_user(given):
        return given
    keys = _keys(path)
    for key in keys:
        if (given / key).is_dir() and looks_like_one_user(given / key):
            return given / key
    raise UsageProblem(
        f"{option} {given}: neither one user's directory (no Dovecot file or mailbox "
        f"directory in it) nor a tree with a directory for the user of {path} "
        f"(looked for {', '.join(keys[:4])})")


def require_tree(option: str, given: Path | None) -> None:
    """``scan`` takes a tree of users: one user's directory there would match nobody."""
    if given is not None and os.listdir(given) and looks_like_one_user(given):
        raise UsageProblem(
            f"{option} {given} is one user's directory; scan takes a tree with one "
            "directory per user, laid out as --layout (give it to check or repair)")
