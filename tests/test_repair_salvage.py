"""What repair reads from a damaged index before Dovecot rebuilds it (no Dovecot needed)."""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES
from damage import truncate
from dovecot_index_tool.check.data import load_index
from dovecot_index_tool.format.index import parse_index
from dovecot_index_tool.repair.doveadm import uid_set
from dovecot_index_tool.repair.salvage import SYSTEM_FLAGS, guid_128, salvage, system_flags

SDBOX_INBOX = FIXTURES / "sdbox/bob/sdbox/mailboxes/INBOX/dbox-Mails"
SYSTEM = frozenset(name for _, name in SYSTEM_FLAGS)
MDBOX_INBOX = FIXTURES / "mdbox/carol/mdbox/mailboxes/INBOX/dbox-Mails"


def _copy(src: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "box"
    shutil.copytree(src, dest)
    return dest


def test_salvage_of_a_healthy_index_is_the_state_dovecot_sees():
    saved = salvage(SDBOX_INBOX)
    state = load_index(SDBOX_INBOX / "dovecot.index").state
    assert saved.uid_validity == state.header.uid_validity
    records = {r.uid: system_flags(r.flags) for r in state.records}
    assert {m.uid: m.flags & SYSTEM for m in saved.messages if m.uid in records} == records


def test_truncated_index_still_gives_every_message_from_backup_and_log(tmp_path):
    box = _copy(SDBOX_INBOX, tmp_path)
    healthy = salvage(box).by_uid()
    index = box / "dovecot.index"
    truncate(index, index.stat().st_size // 2)

    saved = salvage(box)

    assert set(saved.by_uid()) >= set(healthy)
    for uid, message in healthy.items():
        assert saved.by_uid()[uid].flags == message.flags, uid


def test_zeroed_records_are_taken_from_another_source(tmp_path):
    box = _copy(SDBOX_INBOX, tmp_path)
    healthy = salvage(box).by_uid()
    index = box / "dovecot.index"
    data = bytearray(index.read_bytes())
    header_size = parse_index(bytes(data)).header.header_size
    data[header_size:] = bytes(len(data) - header_size)
    index.write_bytes(bytes(data))

    saved = salvage(box)

    assert {uid: m.flags for uid, m in saved.by_uid().items() if uid in healthy} == {
        uid: m.flags for uid, m in healthy.items()
    }
    assert all(m.source != "dovecot.index" for m in saved.messages)


def test_mdbox_guid_of_a_migrated_message_is_the_sha1_form_dovecot_stores():
    # doveadm fetch shows "1709990220.M1P1.fixtures" for the record whose guid
    # extension holds these 16 bytes (tests/fixtures dumps)
    assert guid_128("1709990220.M1P1.fixtures") == "576191a71fa4be00099a517e2ddaf5a3"
    hexed = hashlib.md5(b"x").hexdigest()
    assert guid_128(hexed) == hexed
    assert salvage(MDBOX_INBOX).by_uid()[1].guid == "576191a71fa4be00099a517e2ddaf5a3"


def test_uid_sets_are_ranges():
    assert uid_set([5, 1, 2, 3, 9, 10]) == "1:3,5,9:10"
    assert uid_set([]) == ""


def test_highest_modseq_never_drops_when_log_records_cannot_be_read(tmp_path):
    box = _copy(SDBOX_INBOX, tmp_path)
    healthy = salvage(box).highest_modseq
    log = box / "dovecot.index.log"
    data = bytearray(log.read_bytes())
    data[40:72] = b"\xff" * 32  # the first records: nothing after them can be framed
    log.write_bytes(bytes(data))

    assert healthy and salvage(box).highest_modseq >= healthy


def _garble_records(box: Path, seed: int) -> None:
    """Random bytes over the first records of the index (the issue's ``dd`` at 700)."""
    index = box / "dovecot.index"
    data = bytearray(index.read_bytes())
    start = parse_index(bytes(data)).header.header_size + 84
    data[start : start + 64] = random.Random(seed).randbytes(64)
    index.write_bytes(bytes(data))


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_over_records_never_give_flags_the_message_did_not_have(tmp_path, seed):
    box = _copy(SDBOX_INBOX, tmp_path)
    healthy = salvage(box).by_uid()
    _garble_records(box, seed)

    saved = salvage(box)

    for uid, message in saved.by_uid().items():
        if message.current:
            assert message.flags == healthy[uid].flags, (uid, message.source)


def test_a_keyword_bit_beyond_the_defined_keywords_is_not_evidence(tmp_path):
    box = _copy(SDBOX_INBOX, tmp_path)
    index = box / "dovecot.index"
    parsed = parse_index(index.read_bytes())
    ext = parsed.extension("keywords")
    record = parsed.records[0]
    data = bytearray(index.read_bytes())
    data[record.offset + ext.record_offset + ext.record_size - 1] |= 0x80
    index.write_bytes(bytes(data))

    saved = salvage(box)

    message = saved.by_uid()[record.uid]
    assert message.source.startswith("dovecot.index.backup")


def test_the_old_recent_bit_marks_a_record_as_damaged(tmp_path):
    box = _copy(SDBOX_INBOX, tmp_path)
    index = box / "dovecot.index"
    record = parse_index(index.read_bytes()).records[1]
    data = bytearray(index.read_bytes())
    data[record.offset + 4] |= 0x20
    index.write_bytes(bytes(data))

    assert salvage(box).by_uid()[record.uid].source.startswith("dovecot.index.backup")


def test_backup_whose_log_is_gone_is_an_older_state_and_not_current(tmp_path):
    box = _copy(SDBOX_INBOX, tmp_path)
    (box / "dovecot.index.log.2").unlink()  # what Dovecot does once .log.2 is old
    index = box / "dovecot.index"
    truncate(index, index.stat().st_size // 2)

    saved = salvage(box)

    assert saved.messages and not any(m.current for m in saved.messages)
    assert saved.rebuilt is None
    assert any("an older state" in told for told in saved.sources)


def test_a_truncated_index_is_rebuilt_from_backup_and_every_log(tmp_path):
    box = _copy(MDBOX_INBOX, tmp_path)
    healthy = salvage(box)
    index = box / "dovecot.index"
    truncate(index, index.stat().st_size // 2)

    saved = salvage(box)

    assert saved.rebuilt_from == "dovecot.index.backup + log"
    rebuilt = parse_index(saved.rebuilt)
    assert not rebuilt.problems
    assert [r.uid for r in rebuilt.records] == [m.uid for m in healthy.messages]
    assert rebuilt.header.uid_validity == healthy.uid_validity


def test_uidvalidity_is_what_most_files_record():
    from dovecot_index_tool.repair.salvage import majority

    assert majority((("dovecot.index", 7), ("dovecot.index.backup", 7), ("uidlist", 9)), 9) == 7
    assert majority((("dovecot.index", 7), ("uidlist", 9)), 9) == 9
    assert majority((), 5) == 5


def test_a_failed_repair_removes_only_the_directories_dovecot_made_empty(tmp_path):
    from dovecot_index_tool.repair.putback import directories_under, remove_new_directories

    (tmp_path / "Maildir" / "cur").mkdir(parents=True)
    before = directories_under(tmp_path)
    made = tmp_path / "%h" / "Maildir"
    made.mkdir(parents=True)
    (made / "dovecot.index.log").write_bytes(b"x")
    kept = tmp_path / "Maildir" / ".New" / "cur"
    kept.mkdir(parents=True)
    (kept / "1.M1.host:2,S").write_text("a message delivered meanwhile")

    removed = remove_new_directories(tmp_path, before)

    assert not (tmp_path / "%h").exists()
    assert kept.exists() and (tmp_path / "Maildir" / "cur").exists()
    assert str(made) in removed
