"""The ``check`` and ``rules`` commands as a user runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES, ROOT
from dovecot_index_tool.check.catalogue import RULES
from dovecot_index_tool.cli import main
from dovecot_index_tool.format.index import parse_index
from dovecot_index_tool.present.rules_view import markdown_catalogue

FINDING_KEYS = {"check", "severity", "file", "offset", "field", "expected", "found", "message",
                "repair"}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def copy_store(tmp_path: Path, store: str) -> Path:
    dest = tmp_path / store
    shutil.copytree(FIXTURES / store, dest)
    return dest


def test_healthy_user_prints_a_healthy_line_and_exits_0() -> None:
    code, out = run("check", str(FIXTURES / "sdbox/bob"))
    assert code == 0
    assert "healthy" in out


def test_split_index_and_control_trees_are_followed() -> None:
    base = FIXTURES / "maildir-split"
    code, out = run("check", "--json", str(base / "home/erin"), "--index-root",
                    str(base / "index/erin"), "--control-root", str(base / "control/erin"))
    assert code == 0
    names = {m["name"] for m in json.loads(out)["mailboxes"]}
    assert {"INBOX", "Empty", "One", "Lists/dovecot"} <= names


def test_damage_gives_json_findings_and_exit_4(tmp_path: Path) -> None:
    store = copy_store(tmp_path, "mdbox")
    index = store / "carol/mdbox/mailboxes/INBOX/dbox-Mails/dovecot.index"
    data = bytearray(index.read_bytes())
    data[40] += 1  # seen_messages_count, trusted by Dovecot without a check
    index.write_bytes(bytes(data))
    code, out = run("check", "--json", str(store / "carol"))
    assert code == 4
    doc = json.loads(out)
    inbox = next(m for m in doc["mailboxes"] if m["name"] == "INBOX")
    assert inbox["format"] == "mdbox"
    finding = next(f for f in inbox["findings"] if f["check"] == "index.seen-count-wrong")
    assert set(finding) >= FINDING_KEYS
    assert finding["file"] == str(index) and finding["offset"] == 40
    assert finding["expected"] == finding["found"] - 1


def test_unreadable_file_is_never_clean(tmp_path: Path) -> None:
    store = copy_store(tmp_path, "sdbox")
    cache = store / "bob/sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index.cache"
    cache.unlink()
    cache.mkdir()  # reading it fails with EISDIR, even as root
    code, out = run("check", "--json", str(store / "bob"))
    assert code & 8
    checks = {f["check"] for m in json.loads(out)["mailboxes"] for f in m["findings"]}
    assert "scanner.unreadable" in checks


def test_path_without_mailboxes_is_an_operational_error(tmp_path: Path) -> None:
    code, out = run("check", str(tmp_path))
    assert code == 8
    assert "no Dovecot mailbox" in out


def test_help_documents_the_exit_status() -> None:
    code, out = run("check", "--help")
    assert code == 0
    assert "4   warnings, errors or fatal damage" in out


def test_rules_json_lists_every_check() -> None:
    code, out = run("rules", "--json")
    assert code == 0
    doc = json.loads(out)
    assert {r["id"] for r in doc["rules"]} == set(RULES)
    assert all(r["repair"] and r["severity"] and r["dovecot"] for r in doc["rules"])


def test_generated_catalogue_document_is_up_to_date() -> None:
    committed = (ROOT / "docs/checks.md").read_text()
    hint = "run: dovecot-index-tool rules --markdown > docs/checks.md"
    assert committed == markdown_catalogue(), hint


def test_an_unexpected_error_exits_with_the_internal_error_bit_and_keeps_the_traceback(
        monkeypatch, tmp_path):
    from dovecot_index_tool.check import target

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(target, "check_path", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    result = CliRunner().invoke(main, ["check", str(FIXTURES / "maildir" / "alice")])

    assert result.exit_code == 128
    assert "internal error: ZeroDivisionError: a bug" in result.stderr
    saved = list(tmp_path.glob("dovecot-index-tool-crash-*.txt"))
    assert len(saved) == 1 and "ZeroDivisionError" in saved[0].read_text()


def test_a_path_without_a_mailbox_is_one_line_and_exit_8(tmp_path):
    result = CliRunner().invoke(main, ["check", str(tmp_path)])

    assert result.exit_code == 8
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error:")


def test_a_file_not_allowed_to_be_read_is_could_not_check_not_damage(tmp_path):
    """Checked as an unprivileged user against a log with mode 000: exit 8 and only
    scanner.unreadable; nothing that would queue a repair."""
    import multiprocessing
    import os
    import subprocess

    import pytest

    if os.geteuid() != 0:
        pytest.skip("needs root to check as another user")
    # the interpreter's own files may be out of that user's reach: load what runs first
    import dovecot_index_tool.check.target
    import dovecot_index_tool.present.check_view
    import dovecot_index_tool.present.json_out  # noqa: F401

    base = Path("/tmp") / f"dit-perm-{os.getpid()}"
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(FIXTURES / "sdbox" / "bob", base / "bob")
    subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
    (base / "bob/sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index.log").chmod(0)
    out = multiprocessing.get_context("fork").Queue()

    def as_nobody() -> None:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        result = CliRunner().invoke(main, ["check", "--json", str(base / "bob")])
        out.put((result.exit_code, result.stdout))

    child = multiprocessing.get_context("fork").Process(target=as_nobody)
    try:
        child.start()
        code, stdout = out.get(timeout=60)
        child.join(10)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    assert code == 8, stdout
    inbox = next(m for m in json.loads(stdout)["mailboxes"] if m["name"] == "INBOX")
    assert {f["check"] for f in inbox["findings"] if f["severity"] != "info"} == {
        "scanner.unreadable"}


def _partial_log_record(tmp_path) -> tuple[Path, Path]:
    from damage import append, copy_store, log_records

    store = copy_store(FIXTURES, "sdbox", tmp_path)
    log = store.log("INBOX")
    last = log_records(log)[-1]
    append(log, log.read_bytes()[last.offset : last.offset + last.size - 4])
    return store.home, log


def test_partial_bytes_no_writer_holds_are_garbage_dovecot_refuses(tmp_path):
    home, log = _partial_log_record(tmp_path)

    result = CliRunner().invoke(main, ["check", "--json", str(home)])

    checks = {f["check"]: f for m in json.loads(result.stdout)["mailboxes"]
              for f in m["findings"]}
    assert checks["log.garbage-at-eof"]["file"] == str(log)
    assert result.exit_code == 4


def test_partial_bytes_while_a_writer_holds_the_lock_are_a_write_in_progress(tmp_path):
    from dovecot_index_tool.repair.locking import dovecot_lock

    home, log = _partial_log_record(tmp_path)

    with dovecot_lock(log, 1):  # as Dovecot holds it while it appends
        result = CliRunner().invoke(main, ["check", "--json", str(home)])

    checks = {f["check"] for m in json.loads(result.stdout)["mailboxes"]
              for f in m["findings"]}
    assert "log.unfinished-write" in checks and "log.garbage-at-eof" not in checks
    assert result.exit_code == 0


@pytest.mark.parametrize("damaged", ["dovecot.index", "dovecot-uidlist"])
def test_a_uidvalidity_mismatch_names_the_file_the_list_index_contradicts(tmp_path, damaged):
    from damage import copy_store, header_offset, patch_u32, replace_text

    store = copy_store(FIXTURES, "maildir", tmp_path)
    index, uidlist = store.index("INBOX"), store.uidlist("INBOX")
    validity = parse_index(index.read_bytes()).header.uid_validity
    if damaged == "dovecot.index":
        patch_u32(index, header_offset("uid_validity"), validity + 5)
    else:
        replace_text(uidlist, f"V{validity} ".encode(), f"V{validity + 5} ".encode())

    result = CliRunner().invoke(main, ["check", "--json", str(store.home)])

    found = [f for m in json.loads(result.stdout)["mailboxes"] for f in m["findings"]
             if f["check"] == "maildir.uidvalidity-mismatch"]
    assert [Path(f["file"]).name for f in found] == [damaged]


def test_another_mailboxs_log_copied_in_names_the_log_not_its_index(tmp_path):
    from damage import copy_store

    store = copy_store(FIXTURES, "mdbox", tmp_path)
    shutil.copyfile(store.log("One"), store.log("INBOX"))

    result = CliRunner().invoke(main, ["check", "--json", str(store.home)])

    inbox = next(m for m in json.loads(result.stdout)["mailboxes"] if m["name"] == "INBOX")
    named = {f["check"]: Path(f["file"]).name for f in inbox["findings"]
             if f["severity"] != "info"}
    assert named["log.duplicate-sequence"] == "dovecot.index.log"
    assert named["index.log-lost"] == "dovecot.index.log"


def test_a_mailbox_guid_dovecot_cannot_parse_makes_the_uidlist_unusable(tmp_path):
    from damage import copy_store, replace_text, uidlist

    store = copy_store(FIXTURES, "maildir", tmp_path)
    path = store.uidlist("INBOX")
    guid = uidlist(path).guid
    replace_text(path, f"G{guid}".encode(), f"G{guid[:-1]}x".encode())

    result = CliRunner().invoke(main, ["check", "--json", str(store.home)])

    found = [f for m in json.loads(result.stdout)["mailboxes"] for f in m["findings"]
             if f["check"] == "uidlist.unusable"]
    assert [Path(f["file"]).name for f in found] == ["dovecot-uidlist"]
    assert "Invalid mailbox GUID" in found[0]["message"]
