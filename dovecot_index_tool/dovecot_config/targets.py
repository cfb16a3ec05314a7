"""What a command works on when Dovecot's configuration says where the mail is.

``scan`` gets every user of the userdb, grouped into volumes; ``check`` and
``repair`` get one user's mail root with its INDEX= and CONTROL= directories, in the
per-user form their ``PATH``, ``--index-root`` and ``--control-root`` already take.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dovecot_index_tool.dovecot_config.doveconf import Doveconf, read_config
from dovecot_index_tool.dovecot_config.model import UserMailStore, mail_root_of, user_stores
from dovecot_index_tool.errors import NotFound, UnknownUser, UsageProblem
from dovecot_index_tool.volumes import UserHome


def stores_of(doveconf: Doveconf) -> list[UserMailStore]:
    return list(user_stores(read_config(doveconf), doveconf.config))


def volume_of(path: Path) -> Path:
    """The mount point holding ``path`` (its nearest existing ancestor's): a volume is a
    file system, which is what per-volume repair limits and "volume missing" are about."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def _anchor(store: UserMailStore) -> Path | None:
    return store.mail_root or store.home


def scan_users(stores: Iterable[UserMailStore], volumes: tuple[Path, ...] = ()
               ) -> tuple[tuple[Path, ...], tuple[UserHome, ...]]:
    """The volumes to scan and their users. Given volumes keep the users whose mail is
    below one of them; without, each user's volume is the mount point of their mail."""
    users = []
    for store in stores:
        anchor = _anchor(store)
        volume = _given_volume(anchor, volumes) if volumes else (
            volume_of(anchor) if anchor else Path("/"))
        if volume is None:
            continue
        users.append(UserHome(volume, store.tenant, store.user, store.home or anchor or volume,
                              store.user, store.problem, mail_root_of(store), configured=True))
    found = tuple(dict.fromkeys(u.volume for u in users))
    return (volumes or found), tuple(users)


def _given_volume(anchor: Path | None, volumes: tuple[Path, ...]) -> Path | None:
    if anchor is None:
        return None
    return next((v for v in volumes if anchor.is_relative_to(v)), None)


def user_paths(doveconf: Doveconf, user: str | None, path: Path | None
               ) -> tuple[Path, Path | None, Path | None]:
    """PATH, INDEX= and CONTROL= directory of a user, for ``check`` and ``repair``:
    ``user`` by name, or the user whose mail ``path`` is in."""
    stores = stores_of(doveconf)
    store = _by_name(stores, user, doveconf) if user else _by_path(stores, path, doveconf)
    if store.problem:
        raise UsageProblem(f"user {store.user} in {doveconf.config}: {store.problem}")
    root = mail_root_of(store)
    if root is None:
        raise NotFound(f"no mail of user {store.user} at {_anchor(store)} "
                       f"(where {doveconf.config} puts it)")
    if path is not None and not _inside(path, store):
        raise UsageProblem(f"{path} is not in the mail of user {store.user} ({root.root})")
    index = None if root.index_root == root.root else root.index_root
    control = None if root.control_root == root.root else root.control_root
    return path or root.root, index, control


def _by_name(stores: list[UserMailStore], user: str, doveconf: Doveconf) -> UserMailStore:
    for store in stores:
        if store.user == user:
            return store
    raise UnknownUser(user, doveconf.config)


def _by_path(stores: list[UserMailStore], path: Path | None,
             doveconf: Doveconf) -> UserMailStore:
    for store in stores:
        if path is not None and _inside(path, store):
            return store
    raise UsageProblem(f"{path} is in the mail of no user of {doveconf.config}: give --user")


def _inside(path: Path, store: UserMailStore) -> bool:
    target = Path(os.path.abspath(path))
    trees = (store.mail_root, store.index_root, store.control_root, store.inbox, store.home)
    return any(tree is not None and target.is_relative_to(tree) for tree in trees)
