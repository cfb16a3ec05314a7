"""Damage signatures, read from the bytes of real damaged copies of Dovecot's files.

Why: the incident view names a layer from the signatures, so a signature that calls
a zeroed page a bit flip (or a counter edit a flip) sends the engineer to the wrong
team. Each case damages a copy of a fixture store the way that layer does and asserts
the kind and its evidence on the finding the damage causes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES
from damage import (
    add_u32,
    copy_store,
    header_offset,
    patch_bytes,
    patch_u32,
    read_u32,
    truncate,
)
from dovecot_index_tool.check.findings import Finding
from dovecot_index_tool.check.signatures import Kind, Signature
from dovecot_index_tool.ledger.store import Ledger


def _one(findings: list[Finding], check: str) -> Finding:
    hits = [f for f in findings if f.check == check]
    assert hits, [f.check for f in findings]
    return hits[0]


def test_a_zeroed_page_is_an_aligned_zeroed_run(tmp_path: Path) -> None:
    store = copy_store(FIXTURES, "maildir", tmp_path)
    patch_bytes(store.cache("INBOX"), 0, bytes(4096))
    sig = _one(store.findings(), "cache.version").signature
    assert (sig.kind, sig.start, sig.length, sig.aligned) == (Kind.ZEROED_RUN, 0, 4096, 4096)


def test_a_zeroed_sector_next_to_zeros_is_still_aligned(tmp_path: Path) -> None:
    store = copy_store(FIXTURES, "maildir", tmp_path)
    patch_bytes(store.index("INBOX"), 0, bytes(512))
    sig = _one(store.findings(), "index.major-version").signature
    assert sig.kind is Kind.ZEROED_RUN and sig.aligned == 512 and sig.length >= 512


def test_a_run_of_ff_bytes_is_an_ff_run(tmp_path: Path) -> None:
    store = copy_store(FIXTURES, "maildir", tmp_path)
    patch_bytes(store.index("INBOX"), 256, b"\xff" * 64)
    sig = _one(store.findings(), "index.keywords-header-invalid").signature
    assert (sig.kind, sig.start, sig.length, sig.aligned) == (Kind.FF_RUN, 256, 64, None)


def test_one_flipped_bit_in_a_header_counter_is_a_bit_flip_of_distance_one(
        tmp_path: Path) -> None:
    store = copy_store(FIXTURES, "maildir", tmp_path)
    path, at = store.index("INBOX"), header_offset("seen_messages_count")
    patch_u32(path, at, read_u32(path, at) ^ 0x2)
    sig = _one(store.findings(), "index.seen-count-wrong").signature
    assert (sig.kind, sig.distance, sig.bits_set, sig.bits_cleared) == (Kind.BIT_FLIP, 1, 1, 0)


def test_a_log_cut_inside_its_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    store = copy_store(FIXTURES, "maildir", tmp_path)
    log = store.log("INBOX")
    truncate(log, log.stat().st_size - 7)
    finding = _one(store.findings(), "log.garbage-at-eof")
    sig = finding.signature
    assert sig.kind is Kind.TORN_TAIL
    assert sig.start == finding.offset and sig.start + sig.length == log.stat().st_size


def test_a_seen_counter_off_by_one_is_logical(tmp_path: Path) -> None:
    """12 seen recorded as 11: three bits differ, a value some writer computed."""
    store = copy_store(FIXTURES, "maildir", tmp_path)
    add_u32(store.index("INBOX"), header_offset("seen_messages_count"), -1)
    sig = _one(store.findings(), "index.seen-count-wrong").signature
    assert sig.kind is Kind.LOGICAL and sig.distance is None


def test_another_mailboxs_index_is_foreign_bytes(tmp_path: Path) -> None:
    store = copy_store(FIXTURES, "maildir", tmp_path)
    shutil.copy(store.index("One"), store.index("INBOX"))
    findings = [f for f in store.findings() if Path(f.file or "") == store.index("INBOX")]
    assert findings
    assert {f.signature.kind for f in findings} == {Kind.FOREIGN_BYTES}
    assert "UIDVALIDITY" in findings[0].signature.evidence


def test_an_older_copy_of_the_index_is_a_stale_copy(tmp_path: Path) -> None:
    """The index as it was, put back after real Dovecot rotated the logs twice."""
    from damage import index_file
    from mail_sandbox import Sandbox

    sandbox = Sandbox.create()
    try:
        store = sandbox.store("maildir")
        old = store.index("INBOX").read_bytes()
        rotate = ["-o", "mail_index_log_rotate_min_size=1", "-o",
                  "mail_index_log_rotate_max_size=1", "-o",
                  "mail_index_log_rotate_min_time=0", "-o", "mail_index_rewrite_min_log_bytes=1"]
        for _ in range(3):
            sandbox.doveadm(store, *rotate, "flags", "add", "\\Flagged", "mailbox", "INBOX", "all")
        assert index_file(store.index("INBOX")).header.log_file_seq >= 5
        store.index("INBOX").write_bytes(old)
        sig = _one(store.findings(), "index.log-lost").signature
        assert sig.kind is Kind.STALE_COPY and "matches the logs" in sig.evidence
    finally:
        sandbox.remove()


def test_every_finding_of_a_damaged_store_has_a_signature_in_its_json(tmp_path: Path) -> None:
    store = copy_store(FIXTURES, "mdbox", tmp_path)
    patch_bytes(store.index("INBOX"), 0, bytes(512))
    docs = [f.to_dict() for f in store.findings()]
    assert docs and all(d["signature"]["kind"] in set(Kind) for d in docs)
    assert all(isinstance(d["device"], int) for d in docs if d["file"])


def test_the_ledger_keeps_the_signature_device_and_mtime(tmp_path: Path) -> None:
    from dovecot_index_tool.ledger.store import MailboxRecord

    store = copy_store(FIXTURES, "maildir", tmp_path / "s")
    patch_bytes(store.cache("INBOX"), 0, bytes(4096))
    findings = store.findings()
    ledger = Ledger.open(tmp_path / "l.sqlite3")
    run = ledger.start_run(["v"], {})
    box = MailboxRecord("p", "v", None, "u", "INBOX", "maildir", None, None, None, 0, 0, None)
    ledger.record(run, box, findings, reread=True)
    back = [Finding.from_row(r) for r in ledger.open_findings("p")]
    assert [f.signature for f in back] == [f.signature for f in findings]
    assert [(f.device, f.file_mtime) for f in back] == [(f.device, f.file_mtime)
                                                         for f in findings]


@pytest.mark.parametrize("text", [None, "", "{", '{"kind": "melted"}', "[1]"])
def test_a_stored_signature_this_version_cannot_read_is_none(text) -> None:
    assert Signature.from_json(text) is None
