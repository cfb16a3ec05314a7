"""Users on a mailstore volume, found by a path template such as ``{domain}/{user}``.

Each ``{placeholder}`` component of the template matches any directory at that
depth; other components must exist as written. ``{domain}`` (or ``{tenant}``)
names the tenant. A volume that is missing, unreadable or holds no user is an
error: an unmounted mount point looks exactly like an empty volume.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dovecot_index_tool.discovery import MailRoot

PLACEHOLDER = re.compile(r"^\{(user|domain|tenant|any)\}$")
DEFAULT_LAYOUT = "{user}"


class VolumeError(OSError):
    """A volume that cannot be scanned: missing, unreadable, or without any user."""


@dataclass(frozen=True)
class UserHome:
    volume: Path
    tenant: str | None
    user: str
    home: Path
    key: str  # the placeholder values as a path, e.g. "example.org/alice": its dir elsewhere
    error: str | None = None  # a directory of the tree that could not be listed
    # where the mail is when Dovecot's configuration says so (discovery then guesses
    # nothing); None with ``configured`` means the configured mail root is not there
    mail_root: MailRoot | None = None
    configured: bool = False


def parse_layout(layout: str) -> tuple[str, ...]:
    parts = tuple(p for p in layout.strip("/").split("/") if p)
    if not parts or not any(p == "{user}" for p in parts):
        raise ValueError(f"layout {layout!r} must contain a {{user}} component")
    for part in parts:
        if "{" in part and not PLACEHOLDER.match(part):
            raise ValueError(f"layout component {part!r}: use {{user}}, {{domain}} or {{any}}")
    return parts


def iter_users(volume: Path, layout: str = DEFAULT_LAYOUT) -> Iterator[UserHome]:
    """Every user home on ``volume``, in sorted order, streamed."""
    parts = parse_layout(layout)
    if not volume.is_dir():
        raise VolumeError(f"volume {volume} does not exist or is not a directory")
    try:
        os.listdir(volume)
    except OSError as err:
        raise VolumeError(f"volume {volume} cannot be read: {err.strerror}") from err
    found = False
    for user in _walk(volume, volume, parts, {}):
        found = True
        yield user
    if not found:
        raise VolumeError(f"volume {volume} holds no user for layout {layout!r} (not mounted?)")


def _walk(volume: Path, base: Path, parts: tuple[str, ...], values: dict[str, str]):
    if not parts:
        tenant = values.get("domain") or values.get("tenant")
        yield UserHome(volume, tenant, values["user"], base, "/".join(values.values()))
        return
    head, rest = parts[0], parts[1:]
    match = PLACEHOLDER.match(head)
    if not match:
        if (base / head).is_dir():
            yield from _walk(volume, base / head, rest, values)
        return
    try:
        names, broken = _subdirs(base)
    except OSError as err:
        yield _unlistable(volume, base, values, f"cannot list {base}: {err.strerror or err}")
        return
    for name, reason in broken:  # one bad entry is one finding; the others are scanned
        yield _unlistable(volume, base / name, values, f"cannot look into {base / name}: "
                          f"{reason}")
    for name in names:
        yield from _walk(volume, base / name, rest, {**values, match.group(1): name})


def _unlistable(volume: Path, path: Path, values: dict[str, str], error: str) -> UserHome:
    key = path.relative_to(volume).as_posix()
    return UserHome(volume, values.get("domain") or values.get("tenant"), key, path, key,
                    error=error)


def _subdirs(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Subdirectories, sorted; symlinked user directories are followed (read-only). An
    entry that cannot be followed (a symlink loop, a dangling mount) is returned apart,
    with the reason."""
    names, broken = [], []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=True):
                    names.append(entry.name)
            except OSError as err:
                broken.append((entry.name, err.strerror or str(err)))
    return sorted(names), sorted(broken)


def user_tree(root: Path | None, user: UserHome) -> Path | None:
    """The user's directory under an ``--index-root``/``--control-root`` tree."""
    if root is None:
        return None
    return root / user.key
