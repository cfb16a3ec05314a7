"""What repair reads from a damaged index before Dovecot rebuilds it (no Dovecot needed)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

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
