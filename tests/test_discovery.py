"""Discovery against the stores real Dovecot wrote (tests/fixtures, described by stores.json).

Each store is also checked as git checks it out (no empty directories) and with every
``cur/new/tmp`` gone, because discovery must not depend on directories git drops.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import FIXTURES
from dovecot_index_tool.discovery import (
    MailboxLocation,
    MailRoot,
    find_mail_root,
    iter_mailboxes,
    locate,
    looks_like_index_dir,
)

STORE_NAMES = ("maildir", "maildir-fs", "sdbox", "mdbox", "maildir-split", "mdbox-split")
VARIANTS = ("as-committed", "git-checkout", "no-cur-new-tmp")


def _stores() -> dict[str, dict]:
    path = FIXTURES / "stores.json"
    return {s["store"]: s for s in json.loads(path.read_text())} if path.exists() else {}


STORES = _stores()


def _copy_stores(dest: Path) -> Path:
    for name in STORE_NAMES:
        shutil.copytree(FIXTURES / name, dest / name, symlinks=True)
    return dest


def _drop_empty_dirs(base: Path) -> None:
    for dirpath, _dirs, _files in os.walk(base, topdown=False):
        if not os.listdir(dirpath):
            os.rmdir(dirpath)


def _drop_cur_new_tmp(base: Path) -> None:
    for path in sorted(base.rglob("*"), reverse=True):
        if path.name in ("cur", "new", "tmp") and path.is_dir():
            shutil.rmtree(path)


@pytest.fixture(scope="session")
def variant_bases(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    checkout = _copy_stores(tmp_path_factory.mktemp("git-checkout"))
    _drop_empty_dirs(checkout)
    bare = _copy_stores(tmp_path_factory.mktemp("no-cur-new-tmp"))
    _drop_cur_new_tmp(bare)
    return {"as-committed": fixtures_dir, "git-checkout": checkout, "no-cur-new-tmp": bare}


@pytest.fixture(params=STORE_NAMES)
def store(request: pytest.FixtureRequest, fixtures_dir: Path) -> dict:
    return STORES[request.param]


@pytest.fixture(params=VARIANTS)
def base(request: pytest.FixtureRequest, variant_bases: dict) -> Path:
    return variant_bases[request.param]


def _opt(base: Path, rel: str | None) -> Path | None:
    return None if rel is None else base / rel


def _root_of(base: Path, store: dict) -> MailRoot | None:
    return find_mail_root(
        base / store["home"], _opt(base, store["index"]), _opt(base, store["control"])
    )


def _name_order(names: list[str]) -> list[str]:
    rest = sorted((n for n in names if n != "INBOX"), key=lambda n: n.split("/"))
    return ["INBOX", *rest]


def _mail_path(base: Path, store: dict, name: str) -> Path:
    """Where §11 puts the mailbox's mail."""
    root = base / store["root"]
    if store["format"] != "maildir":
        return root.joinpath("mailboxes", *name.split("/"), "dbox-Mails")
    if name == "INBOX":
        return root
    if store["layout"] == "maildir++":
        return root / ("." + name.replace("/", "."))
    return root.joinpath(*name.split("/"))


def _control_path(base: Path, store: dict, name: str) -> Path | None:
    """§11: CONTROL= like INDEX= (INBOX gets ``.INBOX``); beside the mail otherwise."""
    if store["format"] != "maildir":
        return None
    if store["control"] is None:
        return _mail_path(base, store, name)
    return base / store["control"] / ("." + name.replace("/", "."))


def _by_name(root: MailRoot) -> dict[str, MailboxLocation]:
    return {m.name: m for m in iter_mailboxes(root)}


# --- the committed stores --------------------------------------------------------------


def test_stores_json_describes_exactly_the_stores_tested(fixtures_dir: Path) -> None:
    assert sorted(STORES) == sorted(STORE_NAMES)


def test_home_is_resolved_to_the_mail_root_with_format_and_layout(base: Path, store: dict) -> None:
    root = _root_of(base, store)
    assert root is not None
    assert (root.root, root.format, root.layout) == (
        base / store["root"],
        store["format"],
        store["layout"],
    )
    assert root.index_root == (_opt(base, store["index"]) or base / store["root"])
    assert root.control_root == (_opt(base, store["control"]) or base / store["root"])
    assert root.list_index_dir == base / store["list_index_dir"]


def test_mdbox_roots_point_at_the_storage_and_the_map_index(base: Path, store: dict) -> None:
    root = _root_of(base, store)
    assert root is not None
    if store["format"] == "mdbox":
        assert root.storage_dir == base / store["root"] / "storage"
        assert root.map_index_dir == (base / (store["index"] or store["root"]) / "storage")
    else:
        assert (root.storage_dir, root.map_index_dir) == (None, None)


def test_the_mail_root_itself_gives_the_same_root_as_the_home(base: Path, store: dict) -> None:
    index, control = _opt(base, store["index"]), _opt(base, store["control"])
    from_root = find_mail_root(base / store["root"], index, control)
    assert from_root == _root_of(base, store)


def test_mailboxes_are_those_of_stores_json_inbox_first_then_by_name(
    base: Path, store: dict
) -> None:
    root = _root_of(base, store)
    assert root is not None
    names = [m.name for m in iter_mailboxes(root)]
    assert names == _name_order(store["mailboxes"])


def test_each_index_dir_is_the_one_in_stores_json(base: Path, store: dict) -> None:
    root = _root_of(base, store)
    assert root is not None
    found = {name: m.index_dir for name, m in _by_name(root).items()}
    assert found == {name: base / rel for name, rel in store["index_dirs"].items()}


def test_mail_and_control_dirs_are_where_dovecot_puts_them(base: Path, store: dict) -> None:
    root = _root_of(base, store)
    assert root is not None
    for name, box in _by_name(root).items():
        mail = _mail_path(base, store, name)
        assert box.mail_dir == (mail if mail.is_dir() else None), name
        assert box.control_dir == _control_path(base, store, name), name
        assert box.format == store["format"]


def test_dbox_mail_dirs_are_reported_missing_when_git_dropped_them(variant_bases: dict) -> None:
    base = variant_bases["git-checkout"]
    root = _root_of(base, STORES["mdbox-split"])
    assert root is not None
    assert {m.mail_dir for m in iter_mailboxes(root)} == {None}


def test_iter_mailboxes_is_a_lazy_iterator(fixtures_dir: Path) -> None:
    root = _root_of(fixtures_dir, STORES["maildir"])
    assert root is not None
    mailboxes = iter_mailboxes(root)
    assert isinstance(mailboxes, Iterator)
    assert not isinstance(mailboxes, list | tuple)
    assert next(mailboxes).name == "INBOX"


def test_discovery_never_opens_a_file(fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"discovery opened {args[0]!r}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    for store in STORES.values():
        root = _root_of(fixtures_dir, store)
        assert root is not None
        assert list(iter_mailboxes(root))
        locate(fixtures_dir / store["index_dirs"]["One"])


# --- locate: what `check PATH` is about ------------------------------------------------


@pytest.mark.parametrize("where", ["home", "root"])
def test_locate_a_home_or_mail_root_gives_the_root_and_leaves_listing_to_iter(
    base: Path, store: dict, where: str
) -> None:
    index, control = _opt(base, store["index"]), _opt(base, store["control"])
    root, mailboxes = locate(base / store[where], index, control)
    assert root == _root_of(base, store)
    assert mailboxes == []


@pytest.mark.parametrize("name", ["sdbox", "mdbox"])
def test_locate_a_dbox_mails_dir_gives_that_mailbox_and_its_root(
    fixtures_dir: Path, name: str
) -> None:
    store = STORES[name]
    mail = fixtures_dir / store["index_dirs"]["Lists/dovecot"]
    root, mailboxes = locate(mail)
    assert root == _root_of(fixtures_dir, store)
    assert [(m.name, m.format, m.index_dir, m.mail_dir) for m in mailboxes] == [
        ("Lists/dovecot", name, mail, mail)
    ]


def test_locate_a_dbox_mails_dir_with_index_root_finds_its_index_dir(base: Path) -> None:
    store = STORES["mdbox-split"]
    mail = base / store["root"] / "mailboxes" / "One" / "dbox-Mails"
    mail.mkdir(parents=True, exist_ok=True)
    root, mailboxes = locate(mail, base / store["index"])
    assert root == _root_of(base, store)
    assert [(m.name, m.index_dir, m.mail_dir) for m in mailboxes] == [
        ("One", base / store["index_dirs"]["One"], mail)
    ]


def test_locate_a_maildirpp_subfolder_gives_that_mailbox_and_its_root(base: Path) -> None:
    store = STORES["maildir"]
    folder = base / store["root"] / ".Lists.dovecot"
    root, mailboxes = locate(folder)
    assert root is not None and root.root == base / store["root"]
    assert [(m.name, m.index_dir, m.mail_dir, m.control_dir) for m in mailboxes] == [
        ("Lists/dovecot", folder, folder, folder)
    ]


def test_locate_a_split_maildir_subfolder_uses_the_index_and_control_trees(base: Path) -> None:
    store = STORES["maildir-split"]
    folder = base / store["root"] / ".One"
    root, mailboxes = locate(folder, base / store["index"], base / store["control"])
    assert root == _root_of(base, store)
    assert [(m.index_dir, m.mail_dir, m.control_dir) for m in mailboxes] == [
        (base / store["index_dirs"]["One"], folder, base / store["control"] / ".One")
    ]


def test_locate_a_nested_fs_folder_finds_the_top_root_not_its_parent(base: Path) -> None:
    store = STORES["maildir-fs"]
    folder = base / store["root"] / "Lists" / "dovecot"
    root, mailboxes = locate(folder)
    assert root is not None and root.root == base / store["root"]
    assert [m.name for m in mailboxes] == ["Lists/dovecot"]


def test_locate_an_fs_dir_that_is_no_mailbox_gives_the_mailboxes_below(base: Path) -> None:
    store = STORES["maildir-fs"]
    root, mailboxes = locate(base / store["root"] / "Lists")
    assert root is not None and root.root == base / store["root"]
    assert [m.name for m in mailboxes] == ["Lists/dovecot"]


@pytest.mark.parametrize("sub", ["mailboxes", "storage"])
def test_locate_a_dbox_roots_own_dir_gives_the_whole_store(base: Path, sub: str) -> None:
    store = STORES["mdbox"]
    assert locate(base / store["root"] / sub) == (_root_of(base, store), [])


def test_locate_a_maildir_index_dir_in_an_index_tree_gives_that_tree(base: Path) -> None:
    store = STORES["maildir-split"]
    index_tree = base / store["index"]
    root, mailboxes = locate(index_tree / ".One")
    assert root is not None
    assert (root.root, root.list_index_dir, root.format) == (index_tree, index_tree, "maildir")
    assert [(m.name, m.index_dir, m.mail_dir) for m in mailboxes] == [
        ("One", index_tree / ".One", None)
    ]


def test_locate_an_mdbox_index_dir_in_an_index_tree_gives_its_map_not_its_storage(
    base: Path,
) -> None:
    store = STORES["mdbox-split"]
    index_tree = base / store["index"]
    root, mailboxes = locate(index_tree / "mailboxes" / "Lists" / "dovecot")
    assert root is not None
    assert root.format == "mdbox"
    assert root.map_index_dir == index_tree / "storage"
    assert root.storage_dir is None  # the m.N files are in the mail tree, not here
    assert [(m.name, m.index_dir, m.mail_dir) for m in mailboxes] == [
        ("Lists/dovecot", base / store["index_dirs"]["Lists/dovecot"], None)
    ]


def test_an_index_tree_given_as_root_lists_its_mailboxes(base: Path) -> None:
    for name in ("maildir-split", "mdbox-split"):
        store = STORES[name]
        root = find_mail_root(base / store["index"])
        assert root is not None
        found = {m.name: m.index_dir for m in iter_mailboxes(root)}
        assert found == {n: base / rel for n, rel in store["index_dirs"].items()}


def test_locate_a_lone_index_dir_guesses_a_maildir_mailbox(tmp_path: Path) -> None:
    lone = tmp_path / "copied"
    shutil.copytree(FIXTURES / STORES["maildir-split"]["index_dirs"]["One"], lone)
    assert locate(lone) == (None, [MailboxLocation("copied", "maildir", lone, None, lone)])


@pytest.mark.parametrize("name", ["sdbox", "mdbox"])
def test_locate_a_lone_dbox_mails_dir_guesses_the_dbox_format(tmp_path: Path, name: str) -> None:
    lone = tmp_path / "INBOX" / "dbox-Mails"
    shutil.copytree(FIXTURES / STORES[name]["index_dirs"]["INBOX"], lone)
    assert locate(lone) == (None, [MailboxLocation("INBOX", name, lone, lone, None)])


def test_locate_a_dir_without_mail_finds_nothing(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    (tmp_path / "photos").mkdir()
    assert locate(tmp_path) == (None, [])
    assert find_mail_root(tmp_path / "missing") is None


# --- damaged or unusual stores ---------------------------------------------------------


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    return _copy_stores(tmp_path)


def test_maildir_folder_whose_mail_vanished_is_still_found_by_its_indexes(copy: Path) -> None:
    store = STORES["maildir"]
    folder = copy / store["root"] / ".One"
    for path in folder.iterdir():
        if not path.name.startswith("dovecot.index"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    box = _by_name(_root_of(copy, store))["One"]
    assert (box.index_dir, box.mail_dir) == (folder, None)


@pytest.mark.parametrize("name", ["maildir-split", "mdbox-split"])
def test_split_mailbox_whose_mail_vanished_is_found_in_the_index_tree(
    copy: Path, name: str
) -> None:
    store = STORES[name]
    mail = _mail_path(copy, store, "One")
    shutil.rmtree(mail.parent if store["format"] == "mdbox" else mail, ignore_errors=True)
    box = _by_name(_root_of(copy, store))["One"]
    assert (box.index_dir, box.mail_dir) == (copy / store["index_dirs"]["One"], None)


def test_mailbox_without_indexes_gets_the_index_dir_dovecot_would_create(copy: Path) -> None:
    store = STORES["mdbox-split"]
    shutil.rmtree(copy / store["index_dirs"]["One"])
    mail = _mail_path(copy, store, "One")
    mail.mkdir(parents=True, exist_ok=True)
    box = _by_name(_root_of(copy, store))["One"]
    assert (box.index_dir, box.mail_dir) == (copy / store["index_dirs"]["One"], mail)


def test_dovecot_24_index_dirs_under_dbox_mails_are_accepted(copy: Path) -> None:
    store = STORES["mdbox-split"]
    old = copy / store["index_dirs"]["One"]
    new = old / "dbox-Mails"
    new.mkdir()
    for path in old.glob("dovecot.index*"):
        path.rename(new / path.name)
    box = _by_name(_root_of(copy, store))["One"]
    assert box.index_dir == new


def test_dbox_root_without_messages_is_mdbox_only_with_a_storage_dir(tmp_path: Path) -> None:
    (tmp_path / "mailboxes" / "INBOX" / "dbox-Mails").mkdir(parents=True)
    assert find_mail_root(tmp_path).format == "sdbox"
    (tmp_path / "storage").mkdir()
    assert find_mail_root(tmp_path).format == "mdbox"


def test_maildir_with_only_inbox_defaults_to_maildirpp(tmp_path: Path) -> None:
    (tmp_path / "Maildir" / "cur").mkdir(parents=True)
    root = find_mail_root(tmp_path)
    assert root is not None and (root.root, root.layout) == (tmp_path / "Maildir", "maildir++")
    assert [m.name for m in iter_mailboxes(root)] == ["INBOX"]


def test_a_home_with_one_mail_root_under_another_name_is_found(copy: Path) -> None:
    store = STORES["sdbox"]
    home = copy / store["home"]
    (home / "sdbox").rename(home / "mail")
    root = find_mail_root(home)
    assert root is not None and (root.root, root.format) == (home / "mail", "sdbox")


def test_symlinks_inside_a_store_are_not_followed(copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    shutil.copytree(FIXTURES / STORES["maildir"]["root"] / ".One", outside / ".Evil")
    maildir_root = copy / STORES["maildir"]["root"]
    (maildir_root / ".Evil").symlink_to(outside / ".Evil")
    (copy / STORES["maildir-fs"]["root"] / "Evil").symlink_to(outside / ".Evil")
    (copy / STORES["sdbox"]["root"] / "mailboxes" / "Evil").symlink_to(outside)
    for name in ("maildir", "maildir-fs", "sdbox"):
        root = _root_of(copy, STORES[name])
        assert "Evil" not in _by_name(root), name
    home = tmp_path / "home"
    home.mkdir()
    (home / "Maildir").symlink_to(maildir_root)
    assert find_mail_root(home) is None


def test_looks_like_index_dir_needs_the_index_or_its_log(fixtures_dir: Path) -> None:
    split = STORES["maildir-split"]
    assert looks_like_index_dir(fixtures_dir / split["index_dirs"]["Empty"])  # log only
    assert looks_like_index_dir(str(fixtures_dir / split["index_dirs"]["INBOX"]))
    assert not looks_like_index_dir(fixtures_dir / split["index"])  # list index only
    assert not looks_like_index_dir(fixtures_dir / "no-such-dir")
