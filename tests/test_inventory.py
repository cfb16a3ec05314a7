"""The on-disk inventory a repair is verified against, on mailboxes written by real Dovecot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dovecot_index_tool.files import read_file
from dovecot_index_tool.format.uidlist import parse_uidlist
from dovecot_index_tool.repair.inventory import lost_since, take_inventory


@pytest.fixture
def maildir(fixtures_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "Maildir"
    shutil.copytree(fixtures_dir / "maildir" / "alice" / "Maildir", copy, symlinks=True)
    return copy


@pytest.fixture
def sdbox(fixtures_dir: Path, tmp_path: Path) -> Path:
    source = fixtures_dir / "sdbox" / "bob" / "sdbox" / "mailboxes" / "Lists" / "dovecot"
    copy = tmp_path / "dbox-Mails"
    shutil.copytree(source / "dbox-Mails", copy, symlinks=True)
    return copy


def test_maildir_inventory_finds_only_messages_the_uidlist_knows(maildir):
    uidlist = parse_uidlist(read_file(maildir / "dovecot-uidlist").data)
    inventory = take_inventory(maildir, "maildir")
    on_disk = {m.key for m in inventory.messages}
    listed = {name.partition(":2,")[0] for name in uidlist.uids()}
    assert len(on_disk) > 10 and on_disk <= listed
    assert inventory.problems == ()


def test_maildir_flags_come_from_the_file_name(maildir):
    name = next(n for n in os.listdir(maildir / "cur") if n.endswith(":2,FSabhi"))
    message = take_inventory(maildir, "maildir").by_key()[name.partition(":2,")[0]]
    assert message.flags == "FSabhi"
    assert message.size == (maildir / "cur" / name).stat().st_size


def test_a_deleted_message_file_is_reported_lost(maildir):
    before = take_inventory(maildir, "maildir")
    victim = before.messages[0]
    (maildir / victim.file).unlink()
    assert lost_since(before, take_inventory(maildir, "maildir")) == [
        f"{victim.file}: message no longer on disk"
    ]


def test_a_dropped_flag_is_reported_lost_but_a_move_to_cur_is_not(maildir):
    before = take_inventory(maildir, "maildir")
    flagged = next(m for m in before.messages if "S" in m.flags and m.file.startswith("cur/"))
    base, _, flags = flagged.file.partition(":2,")
    os.rename(maildir / flagged.file, maildir / f"{base}:2,{flags.replace('S', '')}")
    for message in before.messages:
        if message.file.startswith("new/"):
            os.rename(maildir / message.file, maildir / "cur" / Path(message.file).name)

    assert lost_since(before, take_inventory(maildir, "maildir")) == [
        f"{flagged.file}: flags S no longer set"
    ]


def test_sdbox_inventory_reads_uid_files_and_their_guids(sdbox):
    inventory = take_inventory(sdbox, "sdbox")
    names = sorted(n for n in os.listdir(sdbox) if n.startswith("u."))
    assert [m.key for m in inventory.messages] == names
    guids = [m.guid for m in inventory.messages]
    assert all(guids) and len(set(guids)) == len(guids)
    assert lost_since(inventory, take_inventory(sdbox, "sdbox")) == []


def test_a_damaged_sdbox_file_is_still_counted_and_its_problem_named(sdbox):
    victim = sorted(sdbox.glob("u.*"))[0]
    victim.write_bytes(b"garbage, not a dbox header")
    inventory = take_inventory(sdbox, "sdbox")
    assert victim.name in inventory.by_key()
    assert any(victim.name in problem for problem in inventory.problems)


def test_mdbox_has_no_per_directory_inventory(tmp_path):
    with pytest.raises(ValueError, match="mdbox"):
        take_inventory(tmp_path, "mdbox")
