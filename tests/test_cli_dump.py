"""The ``dump`` command as a user runs it: JSON keys, filters, exit codes, damage."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from dovecot_index_tool.cli import main
from dump_compare import INDEX_HEADER_FIELDS

INBOX = FIXTURES / "maildir/alice/Maildir"
MDBOX_INBOX = FIXTURES / "mdbox/carol/mdbox/mailboxes/INBOX/dbox-Mails"
EMPTY = FIXTURES / "maildir/alice/Maildir/.Empty"
SDBOX = FIXTURES / "sdbox/bob/sdbox"

INDEX_HEADER_KEYS = set(INDEX_HEADER_FIELDS)
LOG_HEADER_KEYS = {
    "major_version", "minor_version", "hdr_size", "indexid", "file_seq", "prev_file_seq",
    "prev_file_offset", "create_stamp", "initial_modseq", "compat_flags",
}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["dump", *args])
    assert not isinstance(result.exception, (AssertionError, KeyError, IndexError, TypeError))
    return result.exit_code, result.output


def dump_json(*args: str) -> dict:
    code, out = run("--json", *args)
    assert code == 0, out
    return json.loads(out)


def test_index_json_has_the_documented_keys() -> None:
    doc = dump_json(str(INBOX))
    assert set(doc["header"]) >= INDEX_HEADER_KEYS
    ext_keys = {"name", "hdr_size", "reset_id", "record_offset", "record_size", "record_align"}
    assert doc["extensions"] and all(ext_keys <= set(e) for e in doc["extensions"])
    assert len(doc["keywords"]) >= 9
    assert doc["records"] and all({"seq", "uid", "flags"} <= set(r) for r in doc["records"])
    assert isinstance(doc["records"][0]["flags"], int)
    field_keys = {"name", "type", "size", "decision", "last_used"}
    assert doc["cache"]["header"] and all(field_keys <= set(f) for f in doc["cache"]["fields"])
    assert any(r.get("cache", {}).get("records") for r in doc["records"])


def test_log_json_names_record_types_as_doveadm_does() -> None:
    doc = dump_json(str(INBOX / "dovecot.index.log"))
    assert set(doc["header"]) >= LOG_HEADER_KEYS
    types = {r["type"] for r in doc["records"]}
    assert {"boundary", "flag-update", "header-update"} <= types
    assert all(isinstance(r["offset"], int) for r in doc["records"])


def test_uid_option_limits_the_records_to_one_message() -> None:
    full = dump_json(str(MDBOX_INBOX))
    uid = full["records"][1]["uid"]
    one = dump_json("--uid", str(uid), str(MDBOX_INBOX))
    assert [r["uid"] for r in one["records"]] == [uid]
    assert "mdbox" in one["records"][0]["extensions"]


def test_no_replay_shows_the_index_file_as_stored() -> None:
    replayed = dump_json(str(INBOX / "dovecot.index"))
    stored = dump_json("--no-replay", str(INBOX / "dovecot.index"))
    assert stored["replayed"] is False and replayed["replayed"] is True
    raw = (INBOX / "dovecot.index").read_bytes()
    assert stored["header"]["log_file_head_offset"] == int.from_bytes(raw[68:72], "little")
    assert replayed["header"]["log_file_head_offset"] >= stored["header"]["log_file_head_offset"]


def test_log_only_mailbox_is_dumped_from_its_log() -> None:
    assert not (EMPTY / "dovecot.index").exists()
    doc = dump_json(str(EMPTY))
    assert doc["index_file_present"] is False
    assert doc["header"]["uid_validity"] != 0
    assert doc["replay"]["lost"] is None


def test_uidlist_keywords_and_dbox_files_are_dumped() -> None:
    uidlist = dump_json(str(INBOX / "dovecot-uidlist"))
    assert uidlist["version"] == 3 and uidlist["records"]
    keywords = dump_json(str(INBOX / "dovecot-keywords"))
    assert keywords["keywords"][0]["letter"] == "a"
    mfile = next((FIXTURES / "mdbox/carol/mdbox/storage").glob("m.*"))
    dbox = dump_json(str(mfile))
    assert dbox["messages"] and all(m["guid"] for m in dbox["messages"])


def test_human_output_has_the_doveadm_sections() -> None:
    code, out = run(str(INBOX))
    assert code == 0
    for section in ("INDEX", "Extension", "Keywords", "CACHE", "RECORDS", "RECORD: seq=1"):
        assert section in out


def test_truncated_index_is_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "dovecot.index"
    bad.write_bytes((INBOX / "dovecot.index").read_bytes()[:50])
    code, out = run("--no-replay", str(bad))
    assert code == 8
    assert "dovecot.index" in out and "Traceback" not in out


def test_garbage_after_log_records_is_reported_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "dovecot.index.log"
    log.write_bytes((INBOX / "dovecot.index.log").read_bytes() + b"\x80\x80\x81")
    doc = dump_json(str(log))
    assert doc["trailing_bytes"] == 3
    assert doc["end_reason"] == "unfinished"


def test_broken_record_size_gives_problem_exit_status(tmp_path: Path) -> None:
    data = bytearray((INBOX / "dovecot.index.log").read_bytes())
    data[40:44] = bytes([0x80, 0x80, 0x80, 0x81])  # size 4: below the 8-byte record header
    log = tmp_path / "dovecot.index.log"
    log.write_bytes(bytes(data))
    code, out = run(str(log))
    assert code == 4
    assert "hdr.size too small" in out


def test_directory_without_index_files_is_an_operational_error(tmp_path: Path) -> None:
    code, out = run(str(tmp_path))
    assert code == 8
    assert "no Dovecot index files" in out


def test_dump_never_writes_to_the_mailstore(tmp_path: Path) -> None:
    copy = tmp_path / "Maildir"
    shutil.copytree(INBOX, copy)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in copy.rglob("*") if p.is_file()}
    run(str(copy))
    run("--json", str(copy / "dovecot.index.cache"))
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in copy.rglob("*") if p.is_file()}
    assert before == after


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dovecot_index_tool", "dump", "--help"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0
    assert "Exit status" in result.stdout


@pytest.mark.parametrize("store", ["maildir", "maildir-fs", "sdbox", "mdbox", "maildir-split"])
def test_every_store_inbox_dumps_without_problems(store: str, stores: list[dict]) -> None:
    entry = next(s for s in stores if s["store"] == store)
    doc = dump_json(str(FIXTURES / entry["index_dirs"]["INBOX"]))
    assert doc["problems"] == [] and doc["replay"]["issues"] == []


@pytest.mark.parametrize("seed", range(12))
def test_the_exit_status_of_dump_agrees_with_its_problems(tmp_path, seed):
    """Damage of any kind to a real sdbox index: exit 4 exactly when ``problems`` lists
    something, and every level's reason is in that one list."""
    box = tmp_path / "INBOX"
    shutil.copytree(SDBOX / "mailboxes/INBOX/dbox-Mails", box)
    rng = random.Random(seed)
    target = box / rng.choice(["dovecot.index", "dovecot.index.log", "dovecot.index.cache"])
    data = bytearray(target.read_bytes())
    start = rng.randrange(0, len(data) - 16)
    data[start : start + rng.randint(1, 16)] = rng.randbytes(16)[: rng.randint(1, 16)]
    target.write_bytes(bytes(data))

    result = CliRunner().invoke(main, ["dump", "--json", str(box / "dovecot.index")])

    assert result.exit_code in (0, 4, 8), result.output[-2000:]
    if result.exit_code != 8:
        problems = json.loads(result.stdout)["problems"]
        assert (result.exit_code == 4) == bool(problems), result.stdout[:2000]
