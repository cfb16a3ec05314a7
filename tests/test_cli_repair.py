"""``repair PATH`` as an engineer runs it in an incident: plan, confirm, repair, verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from damage import add_u32, copy_store, header_offset, patch_u32, truncate
from dovecot_index_tool.cli import main


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture
def store(tmp_path):
    return copy_store(FIXTURES, "maildir", tmp_path / "store")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_plan_names_the_action_and_changes_nothing(store, tmp_path):
    truncate(store.cache("INBOX"), 16)
    before = _files(store.home)

    code, out = run("repair", "--plan", "--json", str(store.home))

    plans = json.loads(out)["plans"]
    assert [(p["mailbox"], p["action"]) for p in plans] == [("INBOX", "cache-purge")]
    assert code == 4
    assert _files(store.home) == before


def test_damaged_cache_is_repaired_after_confirmation(store, tmp_path):
    truncate(store.cache("INBOX"), 16)
    backups = tmp_path / "backups"

    code, out = run("repair", "--backup-dir", str(backups), str(store.home), stdin="1\n")

    assert code == 1, out
    assert "1 repaired" in out
    assert not store.cache("INBOX").exists()
    assert len(list(backups.iterdir())) == 1
    assert run("check", str(store.home))[0] == 0


def test_wrong_confirmation_cancels_without_touching_anything(store, tmp_path):
    truncate(store.cache("INBOX"), 16)
    before = _files(store.home)

    code, _ = run("repair", "--backup-dir", str(tmp_path / "b"), str(store.home), stdin="yes\n")

    assert code != 0
    assert _files(store.home) == before
    assert not (tmp_path / "b").exists()


def test_a_dovecot_config_that_does_not_exist_stops_the_repair_before_any_backup(
        store, tmp_path):
    patch_u32(store.index("INBOX"), header_offset("next_uid"), 1)
    before = _files(store.home)
    backups = tmp_path / "b"

    code, out = run(
        "repair", "--yes", "--json", "--backup-dir", str(backups), "--dovecot-config",
        str(tmp_path / "no-such-dovecot.conf"), str(store.home)
    )

    outcomes = json.loads(out)["outcomes"]
    assert [o["state"] for o in outcomes] == ["failed"]
    assert outcomes[0]["setup_error"] is True
    assert "--dovecot-config" in outcomes[0]["reason"]
    assert "does not exist" in outcomes[0]["reason"]
    assert code == 12
    assert _files(store.home) == before
    assert not backups.exists()


def test_healthy_user_needs_nothing_and_exits_0(store, tmp_path):
    code, out = run("repair", "--yes", "--backup-dir", str(tmp_path / "b"), str(store.home))
    assert code == 0
    assert "nothing to repair" in out


def test_unusable_backup_dir_fails_the_repair_and_leaves_the_mailbox(store, tmp_path):
    truncate(store.cache("INBOX"), 16)
    before = _files(store.home)
    a_file = tmp_path / "backups"
    a_file.write_text("a file where the backup directory should go")
    backups = a_file / "dovecot-index-tool"

    code, out = run("repair", "--yes", "--json", "--backup-dir", str(backups), str(store.home))

    outcomes = json.loads(out)["outcomes"]
    assert [o["state"] for o in outcomes] == ["failed"]
    assert "left as it was" in outcomes[0]["reason"]
    assert code == 12
    assert _files(store.home) == before


def test_what_no_repair_changes_does_not_stay_a_warning(store, tmp_path):
    """A .log.2 that .log does not continue: Dovecot opens the mailbox and shows the
    same data, and no repair has anything to do, so check must not warn every night."""
    add_u32(store.log2("INBOX"), 8, -1)  # .log.2's file_seq

    code, out = run("check", "--json", str(store.home))
    findings = [f for m in json.loads(out)["mailboxes"] for f in m["findings"]]
    assert "log.rotated-sequence" in {f["check"] for f in findings}
    assert code == 0
    code, out = run("repair", "--yes", "--backup-dir", str(tmp_path / "b"), str(store.home))
    assert code == 0 and "nothing to repair" in out
