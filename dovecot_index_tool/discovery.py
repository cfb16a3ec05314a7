"""Finding a Dovecot user's mailboxes on disk, and where each keeps its files.

Why this module exists: a check needs, for every mailbox, the directory of its index
files, of its mail and of its control files. Dovecot derives them from ``mail_location``
(format notes §11 and §13), which a scanner usually does not have: it only sees
directories. So the functions here recognise a store by what Dovecot leaves behind and
rebuild each path with Dovecot's own rules.

Three rules hold everywhere, because the tool may run on a live production server:

* read-only: only ``os.scandir`` and ``os.lstat``; no file is ever opened;
* no symlink below the path the caller gave is followed, so a link inside a store can
  neither lead the scan out of the tree nor into a loop;
* streaming: mailboxes come one at a time from generators. What is held in memory is one
  sorted directory listing per level of the hierarchy (sorting is what makes the order
  stable), never the list of all mailboxes, except that a Maildir++ root lists all its
  folders in that one directory.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = [
    "MailRoot",
    "MailboxLocation",
    "configured_root",
    "find_mail_root",
    "iter_mailboxes",
    "locate",
    "looks_like_index_dir",
    "noting_consulted",
]

StrPath = str | os.PathLike[str]

INBOX = "INBOX"
MAILDIR, SDBOX, MDBOX = "maildir", "sdbox", "mdbox"
MAILDIRPP, FS = "maildir++", "fs"

MAILDIR_SUBDIRS = ("cur", "new", "tmp")
MAILDIR_MAIL_SUBDIRS = ("cur", "new")  # not tmp: "/" and many homes have a tmp/
MAILBOXES_DIR = "mailboxes"  # MAILBOXDIR= default for dbox
DBOX_MAIL_DIR = "dbox-Mails"  # DIRNAME= default for dbox
STORAGE_DIR = "storage"
HOME_MAIL_DIRS = ("Maildir", "mdbox", "sdbox")

INDEX_FILES = ("dovecot.index", "dovecot.index.log")
MAP_INDEX_FILES = ("dovecot.map.index", "dovecot.map.index.log")
CONTROL_FILES = ("dovecot-uidlist", "dovecot-keywords")
MAILDIR_MARK_FILES = ("maildirfolder", "dovecot-uidlist")
ROOT_MARK_FILES = (
    "dovecot.list.index",
    "dovecot.list.index.log",
    "dovecot.mailbox.log",
    "dovecot-uidvalidity",
    "subscriptions",
)
SDBOX_FILE = re.compile(r"u\.\d+\Z")
MDBOX_FILE = re.compile(r"m\.\d+\Z")


class MailboxFormat(StrEnum):
    """What a location holds: a mailbox of one storage format, or one of a user's
    shared index files (reported and repaired as entries of their own)."""

    MAILDIR = "maildir"
    SDBOX = "sdbox"
    MDBOX = "mdbox"
    LIST_INDEX = "list-index"
    MDBOX_MAP = "mdbox-map"


@dataclass(frozen=True)
class MailboxLocation:
    """Where one mailbox keeps its files.

    ``index_dir`` is where Dovecot keeps (or would create) the mailbox's index files, so it
    may not exist. ``mail_dir`` is None when no mail directory is there, which is itself
    worth reporting. ``control_dir`` (maildir only: ``dovecot-uidlist``,
    ``dovecot-keywords``) is, like ``index_dir``, where Dovecot keeps or would keep them.
    """

    name: str
    format: str
    index_dir: Path
    mail_dir: Path | None
    control_dir: Path | None


@dataclass(frozen=True)
class MailRoot:
    """One user's mail store: the mail root and the INDEX= / CONTROL= trees beside it.

    ``index_root`` and ``control_root`` equal ``root`` when the files live beside the
    mail. ``storage_dir`` is None for an mdbox tree whose ``storage/`` holds the map index
    but no ``m.N`` file: that is what an INDEX= tree looks like (the mail is elsewhere),
    and checking the map against it would report every message as lost.
    """

    root: Path
    format: str
    layout: str
    index_root: Path
    control_root: Path
    list_index_dir: Path
    storage_dir: Path | None
    map_index_dir: Path | None
    inbox_dir: Path | None = None  # maildir INBOX= elsewhere than the root


# --- what is on disk (lstat / scandir only, symlinks never followed) --------------------


_DENIED = (errno.EACCES, errno.EPERM, errno.EIO)
_noting: ContextVar[dict[str, str] | None] = ContextVar("unreadable", default=None)


@contextmanager
def noting_unreadable() -> Iterator[dict[str, str]]:
    """The directories that could not be looked into while the block ran (path ->
    reason), for the caller to report: a mailbox behind them was not checked, which is
    never clean. Discovery itself stays a set of plain functions."""
    found: dict[str, str] = {}
    token = _noting.set(found)
    try:
        yield found
    finally:
        _noting.reset(token)


_consulted: ContextVar[set[str] | None] = ContextVar("consulted", default=None)


@contextmanager
def noting_consulted() -> Iterator[set[str]]:
    """The directories whose entries the block's discovery depended on: those it
    listed, those it looked up a name in, and the trees it asked to be directories.
    What discovery finds is a function of these directories' entries alone, so while
    none of them changed (a directory's mtime and ctime move with every entry added,
    removed or renamed) a listing made earlier still holds (see ``scan.listing``)."""
    found: set[str] = set()
    token = _consulted.set(found)
    try:
        yield found
    finally:
        _consulted.reset(token)


def _consult(directory: StrPath) -> None:
    found = _consulted.get()
    if found is not None:
        found.add(os.fspath(directory))


def _note(path: StrPath, err: OSError) -> None:
    found = _noting.get()
    if found is not None and err.errno in _DENIED:
        found.setdefault(str(path), err.strerror or str(err))


def _mode(path: StrPath) -> int:
    """The lstat mode, 0 when the path is missing or unreadable (the latter is noted).
    Discovery's helpers join plain strings: they run several times per mailbox, and
    pathlib costs more than the lstat calls."""
    _consult(os.path.dirname(path))
    try:
        return os.lstat(path).st_mode
    except OSError as err:
        _note(os.path.dirname(path), err)
        return 0
    except ValueError:
        return 0


def _is_dir(path: StrPath) -> bool:
    return stat.S_ISDIR(_mode(path))


def _followed_dir(path: StrPath) -> bool:
    """A tree the caller named is a directory, through links (the only place they are
    followed: the caller may have given a link)."""
    _consult(path)
    return os.path.isdir(path)


def _any_file(path: StrPath, names: Iterable[str]) -> bool:
    base = os.fspath(path)
    return any(stat.S_ISREG(_mode(f"{base}/{name}")) for name in names)


def _any_dir(path: StrPath, names: Iterable[str]) -> bool:
    base = os.fspath(path)
    return any(_is_dir(f"{base}/{name}") for name in names)


def _entries(path: Path) -> Iterator[os.DirEntry[str]]:
    """The directory's entries as the OS gives them; nothing when it cannot be listed."""
    _consult(path)
    try:
        with os.scandir(path) as entries:
            yield from entries
    except OSError as err:
        _note(path, err)
        return


def _entry_is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _entry_is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _subdir_names(path: Path) -> list[str]:
    """Sorted names of the real subdirectories: the order must not depend on the disk."""
    return sorted(entry.name for entry in _entries(path) if _entry_is_dir(entry))


def _has_file_matching(path: Path, pattern: re.Pattern[str]) -> bool:
    return any(pattern.match(e.name) and _entry_is_file(e) for e in _entries(path))


Known = set[tuple[str, str]]  # (base, directory) pairs one listing found real


def _real_dir(base: StrPath, path: StrPath, known: Known | None = None) -> bool:
    """True if ``path`` is a directory reached from ``base`` through no symlink.

    lstat alone only refuses a link in the last component; a mailbox path built from a
    name found in another tree must not pass through a link in this one either.
    ``known`` holds what this listing already found real, so that the mailboxes of
    one user do not lstat the same parents again and again.
    """
    top, below = str(base), str(path)
    if below != top:
        current = top[:-1] if top.endswith("/") else top  # "/" itself: ""
        if not below.startswith(current + "/"):
            return False  # not under base (as Path.relative_to would refuse)
        for part in below[len(current) + 1 :].split("/"):
            current = f"{current}/{part}"
            if known is not None and (top, current) in known:
                continue
            if not stat.S_ISDIR(_mode(current)):
                return False
            if known is not None:
                known.add((top, current))
    if known is None:
        return _followed_dir(base)
    if (top, "") not in known:
        if not _followed_dir(base):
            return False
        known.add((top, ""))
    return True


# --- what the directories look like ----------------------------------------------------


def looks_like_index_dir(path: StrPath) -> bool:
    """True if ``path`` holds ``dovecot.index`` or ``dovecot.index.log``.

    The log alone counts: Dovecot writes ``dovecot.index`` only once a mailbox has seen
    enough changes, so small mailboxes have just the log.
    """
    return _any_file(path, INDEX_FILES)


def _has_maildir_mail(path: Path) -> bool:
    """Signs that ``path`` is a maildir mail directory.

    ``cur/new/tmp`` may be missing when empty (git keeps no empty directory; a careless
    copy may not either), so ``maildirfolder`` and ``dovecot-uidlist`` count too. A lone
    ``tmp/`` does not: ``/`` and many homes have one.
    """
    return _any_dir(path, MAILDIR_MAIL_SUBDIRS) or _any_file(path, MAILDIR_MARK_FILES)


def _is_maildir_folder(path: Path) -> bool:
    """A maildir mailbox in the mail, index or control tree."""
    return _has_maildir_mail(path) or looks_like_index_dir(path)


def _is_dbox_mailbox(path: Path) -> bool:
    """``mailboxes/<name>``: holds dbox-Mails, or the indexes themselves (INDEX=, 2.3)."""
    return _is_dir(os.path.join(path, DBOX_MAIL_DIR)) or looks_like_index_dir(path)


def _looks_like_mailbox(path: Path) -> bool:
    return path.name == DBOX_MAIL_DIR or _is_maildir_folder(path) or _is_dbox_mailbox(path)


def _has_root_marks(path: Path) -> bool:
    """Files and dirs Dovecot keeps once per user, never inside a mailbox."""
    return _any_file(path, ROOT_MARK_FILES) or _any_dir(path, (MAILBOXES_DIR, STORAGE_DIR))


def _has_mdbox_storage(storage: Path) -> bool:
    return _any_file(storage, MAP_INDEX_FILES) or _has_file_matching(storage, MDBOX_FILE)


def _is_maildirpp_folder(path: Path) -> bool:
    """A ``.Name`` folder; a dot-dir with user-level files (``~/.maildir``) is a root."""
    return _is_maildir_folder(path) and not _has_root_marks(path)


def _has_maildirpp_folders(path: Path) -> bool:
    return any(
        e.name.startswith(".") and _entry_is_dir(e) and _is_maildirpp_folder(Path(e.path))
        for e in _entries(path)
    )


def _is_fs_child(entry: os.DirEntry[str]) -> bool:
    name = entry.name
    return not name.startswith(".") and name not in MAILDIR_SUBDIRS and _entry_is_dir(entry)


def _has_fs_folders(path: Path) -> bool:
    return any(_is_fs_child(e) and _is_maildir_folder(Path(e.path)) for e in _entries(path))


# --- mail roots ------------------------------------------------------------------------


def _dbox_format(path: Path, index_root: Path | None) -> str:
    """mdbox has ``storage/`` (here, or its map under INDEX=); sdbox is Dovecot's default."""
    if _is_dir(path / STORAGE_DIR):
        return MDBOX
    if index_root is not None and _any_file(index_root / STORAGE_DIR, MAP_INDEX_FILES):
        return MDBOX
    return SDBOX


def _strong_format(path: Path, index_root: Path | None) -> str | None:
    """The format if ``path`` itself is clearly a mail root, else None.

    dbox roots have ``mailboxes/`` or an mdbox ``storage/`` (the only thing left of an
    INDEX= mdbox root after git dropped its empty dbox-Mails dirs); a maildir root has
    INBOX's mail in it.
    """
    if _is_dir(path / MAILBOXES_DIR) or _has_mdbox_storage(path / STORAGE_DIR):
        return _dbox_format(path, index_root)
    if _has_maildir_mail(path):
        return MAILDIR
    return None


def _ancestor_format(path: Path, index_root: Path | None) -> str | None:
    """Format of a root found above a mailbox; a Maildir++ INDEX= tree counts too."""
    fmt = _strong_format(path, index_root)
    if fmt is None and _has_maildirpp_folders(path):
        return MAILDIR
    return fmt


def _single_root_below(path: Path, index_root: Path | None) -> tuple[Path, str] | None:
    """The one subdirectory that is a mail root; None when there are none or several."""
    found = (
        (path / name, fmt)
        for name in _subdir_names(path)
        if (fmt := _strong_format(path / name, index_root)) is not None
    )
    first_two = list(itertools.islice(found, 2))
    return first_two[0] if len(first_two) == 1 else None


def _root_candidates(path: Path, index_root: Path | None) -> Iterator[tuple[Path, str]]:
    """Where the mail root may be, best guess first.

    The path itself when it is clearly a root; then a home's ``Maildir``/``mdbox``/
    ``sdbox``; then the path as a root shown only by its folders (an INDEX= tree, or an
    INBOX without mail); then a single subdirectory that is a root; then the path as a
    LAYOUT=fs root shown only by its folders. Weak signs come after a home's named dirs
    because a home's ``Maildir`` itself looks like a folder.
    """
    if not _followed_dir(path):
        return
    if fmt := _strong_format(path, index_root):
        yield path, fmt
    for sub in (path / name for name in HOME_MAIL_DIRS):
        if _is_dir(sub) and (fmt := _strong_format(sub, index_root) or _weak_format(sub)):
            yield sub, fmt
    if _has_maildirpp_folders(path):
        yield path, MAILDIR
    if single := _single_root_below(path, index_root):
        yield single
    if _has_fs_folders(path):
        yield path, MAILDIR


def _weak_format(path: Path) -> str | None:
    return MAILDIR if _has_maildirpp_folders(path) or _has_fs_folders(path) else None


def _layout_hint(base: Path) -> str | None:
    """maildir++ if a ``.Name`` folder is here, fs if a plain folder is, else None."""
    for entry in _entries(base):
        if not _entry_is_dir(entry) or entry.name in MAILDIR_SUBDIRS:
            continue
        path = Path(entry.path)
        if entry.name.startswith("."):
            if _is_maildir_folder(path):
                return MAILDIRPP
        elif _is_maildir_folder(path) or _has_fs_folders(path):
            return FS
    return None


def _maildir_layout(*trees: Path) -> str:
    """The first tree with a folder decides; a store with only INBOX gets the default."""
    for tree in _unique(trees):
        if layout := _layout_hint(tree):
            return layout
    return MAILDIRPP


def _storage_dir(root: Path, index_root: Path) -> Path | None:
    storage = root / STORAGE_DIR
    index_only = (
        index_root == root
        and _any_file(storage, MAP_INDEX_FILES)
        and not _has_file_matching(storage, MDBOX_FILE)
    )
    return None if index_only else storage


def _make_root(root: Path, fmt: str, index: Path | None, control: Path | None,
               layout: str | None = None, inbox: Path | None = None) -> MailRoot:
    index_root = index or root
    control_root = control or root
    mdbox = fmt == MDBOX
    if layout is None:
        layout = _maildir_layout(root, index_root, control_root) if fmt == MAILDIR else FS
    return MailRoot(
        root=root,
        format=fmt,
        layout=layout,
        index_root=index_root,
        control_root=control_root,
        list_index_dir=index_root,
        storage_dir=_storage_dir(root, index_root) if mdbox else None,
        map_index_dir=index_root / STORAGE_DIR if mdbox else None,
        inbox_dir=inbox if fmt == MAILDIR and inbox != root else None,
    )


def configured_root(root: StrPath, fmt: str, layout: str | None, index_root: StrPath | None = None,
                    control_root: StrPath | None = None,
                    inbox: StrPath | None = None) -> MailRoot:
    """The mail root a Dovecot configuration describes: format and layout are known,
    so nothing is guessed from the directories (a layout of None is: read from them, as
    for a root found on disk); ``inbox`` is maildir's INBOX=."""
    return _make_root(_abs(root), fmt, _abs_or_none(index_root), _abs_or_none(control_root),
                      layout, _abs_or_none(inbox))


def find_mail_root(
    path: StrPath, index_root: StrPath | None = None, control_root: StrPath | None = None
) -> MailRoot | None:
    """The mail root at ``path`` (a mail root, or a home holding one), or None.

    ``index_root`` and ``control_root`` are this user's INDEX= and CONTROL= directories;
    None means the files are beside the mail. Paths are made absolute, not resolved.
    """
    index, control = _abs_or_none(index_root), _abs_or_none(control_root)
    for root, fmt in _root_candidates(_abs(path), index):
        return _make_root(root, fmt, index, control)
    return None


# --- mailbox names and paths (format notes §11) ----------------------------------------


def _name_key(name: str) -> tuple[str, ...]:
    """Hierarchy order: a mailbox's children come right after it, in every layout."""
    return tuple(name.split("/"))


def _maildirpp_name(dirname: str) -> str | None:
    """``.Lists.dovecot`` -> ``Lists/dovecot``; ``.INBOX`` (INDEX= trees) -> ``INBOX``."""
    parts = dirname[1:].split(".")
    return "/".join(parts) if dirname.startswith(".") and all(parts) else None


def _maildir_rel(layout: str, name: str) -> Path:
    if layout == MAILDIRPP:
        return Path("." + name.replace("/", "."))
    return Path(*name.split("/"))


def _maildir_dirs(mail_root: Path, tree: Path, rel: Path, name: str) -> list[Path]:
    """Where a maildir mailbox's index (or control) files are, most likely first.

    Beside the mail, INBOX's are in the root itself; in an INDEX=/CONTROL= tree INBOX gets
    its own ``.INBOX`` (``INBOX`` for fs), because that tree's root is the user's.
    """
    if name != INBOX:
        return [tree / rel]
    return [tree, tree / rel] if tree == mail_root else [tree / rel, tree]


def _pick(base: Path, candidates: list[Path], test: Callable[[Path], bool],
          known: Known | None = None) -> Path:
    """The first candidate that passes ``test``, else where Dovecot would create it."""
    for candidate in candidates:
        if _real_dir(base, candidate, known) and test(candidate):
            return candidate
    return candidates[0]


def _has_control_files(path: Path) -> bool:
    return _any_file(path, CONTROL_FILES)


def _maildir_location(root: MailRoot, name: str, known: Known | None = None
                      ) -> MailboxLocation:
    rel = _maildir_rel(root.layout, name)
    mail = root.root if name == INBOX else root.root / rel
    index_dirs = _maildir_dirs(root.root, root.index_root, rel, name)
    control_dirs = _maildir_dirs(root.root, root.control_root, rel, name)
    if name == INBOX and root.inbox_dir is not None:
        return _separate_inbox(root, root.inbox_dir, index_dirs, control_dirs, known)
    has_mail = _real_dir(root.root, mail, known) and _has_maildir_mail(mail)
    return MailboxLocation(
        name=name,
        format=MAILDIR,
        index_dir=_pick(root.index_root, index_dirs, looks_like_index_dir, known),
        mail_dir=mail if has_mail else None,
        control_dir=_pick(root.control_root, control_dirs, _has_control_files, known),
    )


def _separate_inbox(root: MailRoot, inbox: Path, index_dirs: list[Path],
                    control_dirs: list[Path], known: Known | None) -> MailboxLocation:
    """INBOX= elsewhere: its files are in that directory unless INDEX=/CONTROL= say."""
    index_base = inbox if root.index_root == root.root else root.index_root
    control_base = inbox if root.control_root == root.root else root.control_root
    return MailboxLocation(
        name=INBOX,
        format=MAILDIR,
        index_dir=inbox if index_base == inbox else
        _pick(index_base, index_dirs, looks_like_index_dir, known),
        mail_dir=inbox if _is_dir(inbox) and _has_maildir_mail(inbox) else None,
        control_dir=inbox if control_base == inbox else
        _pick(control_base, control_dirs, _has_control_files, known),
    )


def _dbox_location(root: MailRoot, name: str, known: Known | None = None) -> MailboxLocation:
    """dbox: 2.3 puts INDEX= indexes in ``mailboxes/<name>``, 2.4 in ``…/dbox-Mails``."""
    rel = Path(MAILBOXES_DIR, *name.split("/"))
    mail = root.root / rel / DBOX_MAIL_DIR
    index_box = root.index_root / rel
    if root.index_root == root.root:
        candidates = [mail, index_box]  # the second: an INDEX= tree given as the root
    else:
        candidates = [index_box, index_box / DBOX_MAIL_DIR]
    return MailboxLocation(
        name=name,
        format=root.format,
        index_dir=_pick(root.index_root, candidates, looks_like_index_dir, known),
        mail_dir=mail if _real_dir(root.root, mail, known) else None,
        control_dir=None,
    )


def _location(root: MailRoot, name: str, known: Known | None = None) -> MailboxLocation:
    if root.format == MAILDIR:
        return _maildir_location(root, name, known)
    return _dbox_location(root, name, known)


def _exists(location: MailboxLocation) -> bool:
    """Anything of the mailbox on disk: mail, indexes or control files."""
    control = location.control_dir
    return (
        location.mail_dir is not None
        or looks_like_index_dir(location.index_dir)
        or (control is not None and _has_control_files(control))
    )


# --- walking the trees -----------------------------------------------------------------


def _fs_names(
    base: Path, is_mailbox: Callable[[Path], bool], skip: tuple[str, ...], prefix: str = ""
) -> Iterator[str]:
    """Mailbox names of a tree where each hierarchy level is a directory, in name order.

    A directory that is not a mailbox (``Lists`` above ``Lists/dovecot``) is walked but
    not named, as Dovecot lists it \\NoSelect.
    """
    for child in _subdir_names(base):
        if child in skip or child.startswith("."):
            continue
        name = f"{prefix}{child}"
        if is_mailbox(base / child):
            yield name
        yield from _fs_names(base / child, is_mailbox, skip, f"{name}/")


def _maildirpp_names(base: Path) -> Iterator[str]:
    """Maildir++ keeps every folder as ``.Name`` directly in the root."""
    names = (_maildirpp_name(name) for name in _subdir_names(base))
    yield from sorted((name for name in names if name), key=_name_key)


def _tree_names(root: MailRoot, tree: Path) -> Iterator[str]:
    if root.format != MAILDIR:
        return _fs_names(tree / MAILBOXES_DIR, _is_dbox_mailbox, (DBOX_MAIL_DIR,))
    if root.layout == MAILDIRPP:
        return _maildirpp_names(tree)
    return _fs_names(tree, _is_maildir_folder, MAILDIR_SUBDIRS)


def _union(streams: Iterable[Iterator[str]]) -> Iterator[str]:
    """Names found in any of the sorted streams, each once, still sorted."""
    merged = heapq.merge(*streams, key=_name_key)
    return (name for name, _ in itertools.groupby(merged))


def _trees(root: MailRoot) -> list[Path]:
    trees = [root.root, root.index_root]
    if root.format == MAILDIR:
        trees.append(root.control_root)
    return _unique(trees)


def iter_mailboxes(root: MailRoot) -> Iterator[MailboxLocation]:
    """Every mailbox of ``root``, INBOX first, then by name in hierarchy order.

    Mailboxes are the union of the mail tree and the INDEX= (and maildir CONTROL=) trees:
    a mailbox whose mail vanished but whose indexes remain is exactly what a check must
    report, so it is yielded with ``mail_dir=None``.
    """
    known: Known = set()  # directories found real during this listing
    inbox = _location(root, INBOX, known)
    if _exists(inbox):
        yield inbox
    for name in _union(_tree_names(root, tree) for tree in _trees(root)):
        if name != INBOX:
            yield _location(root, name, known)


# --- one path given by the user --------------------------------------------------------


def _dbox_name(parts: tuple[str, ...]) -> str | None:
    """The mailbox of ``mailboxes/<name>[/dbox-Mails]``; "" for the root's own dirs."""
    if parts in ((MAILBOXES_DIR,), (STORAGE_DIR,)):
        return ""
    if len(parts) < 2 or parts[0] != MAILBOXES_DIR:
        return None
    inner = parts[1:-1] if parts[-1] == DBOX_MAIL_DIR else parts[1:]
    return "/".join(inner) or None


def _maildir_name(layout: str, parts: tuple[str, ...]) -> str | None:
    if not parts:
        return INBOX
    if layout == MAILDIRPP:
        return _maildirpp_name(parts[0]) if len(parts) == 1 else None
    if any(part in MAILDIR_SUBDIRS or part.startswith(".") for part in parts):
        return None
    return "/".join(parts)


def _name_of(root: MailRoot, path: Path) -> str | None:
    """The mailbox whose mail, index or control dir ``path`` is, under ``root``."""
    for tree in _unique([root.root, root.index_root, root.control_root]):
        try:
            parts = path.relative_to(tree).parts
        except ValueError:
            continue
        name = _maildir_name(root.layout, parts) if root.format == MAILDIR else _dbox_name(parts)
        if name is not None:
            return name
    return None


def _owning_root(
    path: Path, index: Path | None, control: Path | None
) -> tuple[MailRoot, str] | None:
    """The root above ``path`` that has it as a mailbox, and the mailbox's name.

    Nested LAYOUT=fs folders look like roots themselves, so a root with user-level files
    (list index, subscriptions, uidvalidity, ``mailboxes/``) wins over a nearer one. A
    path that is no mailbox (a home, a \\NoSelect fs dir) is only taken as part of a root
    that has those files: any far ancestor would otherwise do for LAYOUT=fs.
    """
    mailbox = _looks_like_mailbox(path)
    first = None
    for parent in path.parents:
        fmt = _ancestor_format(parent, index)
        if fmt is None or not (mailbox or _has_root_marks(parent)):
            continue
        root = _make_root(parent, fmt, index, control)
        name = _name_of(root, path)
        if name is None:
            continue
        if _has_root_marks(parent):
            return root, name
        first = first or (root, name)
    return first


def _is_lone_mailbox(path: Path) -> bool:
    """A mailbox dir that is not a root: dbox-Mails, indexes alone, a ``.Name`` folder."""
    if path.name == DBOX_MAIL_DIR:
        return True
    if looks_like_index_dir(path) and _strong_format(path, None) is None:
        return True
    dot_folder = path.name.startswith(".") and _is_maildirpp_folder(path)
    return dot_folder and not _has_maildirpp_folders(path)


def _guess_dbox_format(mail: Path) -> str:
    """sdbox keeps ``u.N`` beside the indexes; indexes with no message file mean mdbox."""
    if _has_file_matching(mail, SDBOX_FILE):
        return SDBOX
    return MDBOX if looks_like_index_dir(mail) else SDBOX


def _guess_location(path: Path) -> MailboxLocation:
    """One mailbox with no root found: everything is in ``path``, format from its files."""
    if path.name == DBOX_MAIL_DIR:
        name = path.parent.name
        return MailboxLocation(name, _guess_dbox_format(path), path, path, None)
    name = _maildirpp_name(path.name) or path.name
    mail = path if _has_maildir_mail(path) else None
    return MailboxLocation(name, MAILDIR, path, mail, path)


def _within(root: MailRoot, name: str) -> list[MailboxLocation]:
    """The mailboxes below a directory that is not itself a mailbox (fs ``Lists``).

    ``mailboxes/`` or ``storage/`` of a dbox root (name "") stands for the whole store.
    """
    if not name:
        return []
    prefix = f"{name}/"
    return [m for m in iter_mailboxes(root) if m.name == name or m.name.startswith(prefix)]


def locate(
    path: StrPath, index_root: StrPath | None = None, control_root: StrPath | None = None
) -> tuple[MailRoot | None, list[MailboxLocation]]:
    """What ``check PATH`` is about: a whole store, or one mailbox.

    * a home or a mail root: ``(root, [])``; the empty list means "all of them", to be
      streamed with ``iter_mailboxes(root)`` rather than held here;
    * one mailbox's mail or index dir: ``(root, [mailbox])`` with the root found by
      walking up, so that user-level files (list index, mdbox map) are checked too; a
      mailbox in an INDEX= tree gets that tree as its root, which holds those files;
    * a directory above some mailboxes of a LAYOUT=fs tree: ``(root, those mailboxes)``;
      a dbox root's ``mailboxes/`` or ``storage/``: ``(root, [])``, the whole store;
    * a mailbox with no root above it: ``(None, [mailbox])``, format guessed from its files;
    * nothing recognisable: ``(None, [])``.
    """
    target = _abs(path)
    index, control = _abs_or_none(index_root), _abs_or_none(control_root)
    owner = _owning_root(target, index, control)
    if owner is not None:
        root, name = owner
        if _looks_like_mailbox(target):
            return root, [_location(root, name)]
        return root, _within(root, name)
    if _is_lone_mailbox(target):
        return None, [_guess_location(target)]
    root = find_mail_root(target, index, control)
    if root is not None:
        return root, []
    if _looks_like_mailbox(target):
        return None, [_guess_location(target)]
    return None, []


# --- small helpers ---------------------------------------------------------------------


def _abs(path: StrPath) -> Path:
    """Absolute without resolving links: reported paths stay the ones the user knows."""
    return Path(os.path.abspath(os.fspath(path)))


def _abs_or_none(path: StrPath | None) -> Path | None:
    return None if path is None else _abs(path)


def _unique(paths: Iterable[Path]) -> list[Path]:
    return list(dict.fromkeys(paths))


def find_mailbox(index_dir: StrPath, name: str) -> tuple[MailRoot | None, MailboxLocation] | None:
    """The mailbox named ``name`` whose files are at ``index_dir`` and the mail root
    above it, as a queued job names it (None when it is not there)."""
    root, mailboxes = locate(index_dir)
    for location in mailboxes or (iter_mailboxes(root) if root is not None else ()):
        if location.name == name:
            return root, location
    return None
