"""Index rebuilds through the real Dovecot: every message and flag the files held is back.

Each test damages a copy of a Dovecot-made store, repairs it with ``carry_out`` (the
code behind ``repair PATH``), and reads the result back through ``doveadm fetch``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES, ROOT
from damage import (
    STORE_AGES,
    Store,
    append,
    copy_store,
    header_offset,
    log_records,
    patch_u32,
    replace_text,
    truncate,
)
from dovecot_index_tool.check.catalogue import Repair
from dovecot_index_tool.cli import main
from dovecot_index_tool.repair import garbage
from dovecot_index_tool.repair import rebuild as rebuild_module
from dovecot_index_tool.repair.doveadm import DoveadmCommand, DovecotSetup
from dovecot_index_tool.repair.incident import carry_out, plan_path
from dovecot_index_tool.repair.locking import dovecot_lock
from dovecot_index_tool.repair.quarantine import file_sha256
from dovecot_index_tool.repair.reconcile import Verdict
from mail_sandbox import Sandbox, killed_half_way, mail_user

STORES = ["maildir", "sdbox", "mdbox", "maildir-split", "mdbox-split"]


@pytest.fixture(params=sorted(STORE_AGES))
def sandbox(request):
    """Each repair runs on a store whose recorded times are from now and from a month
    ago: Dovecot deletes an old ``.log.2`` while it repairs."""
    box = Sandbox.create(request.param)
    yield box
    box.remove()


def _repair(store: Store, backups: Path, setup: DovecotSetup):
    home, index_root, control_root = store.check_args()
    plans = list(plan_path(home, index_root, control_root))
    return plans, list(carry_out(plans, backups, 5, setup))


def _needs_repair(store: Store) -> list[str]:
    return [f.check for f in store.findings() if f.calls_for_repair]


def _files_owned_by_others(store: Store, uid: int) -> list[str]:
    return [
        os.path.join(d, n)
        for d, _, names in os.walk(store.base)
        for n in names
        if os.lstat(os.path.join(d, n)).st_uid != uid
    ]


def _index_sums(store: Store) -> dict[Path, str | None]:
    """Every file in INBOX's index directory, by checksum."""
    return {p: file_sha256(p) for p in store.index_dir("INBOX").iterdir() if p.is_file()}


def _truncated_sdbox(sandbox: Sandbox) -> tuple[Store, dict[Path, str | None]]:
    store = sandbox.store("sdbox")
    index = store.index("INBOX")
    truncate(index, index.stat().st_size // 2)
    return store, _index_sums(store)


@pytest.mark.parametrize("name", STORES)
def test_truncated_index_is_rebuilt_with_every_message_flag_and_uid(sandbox, name, tmp_path):
    store = sandbox.store(name)
    oracle = sandbox.throwaway(store)
    before, validity = sandbox.fetch(oracle), sandbox.status(oracle, "uidvalidity")
    modseq = sandbox.status(oracle, "highestmodseq")
    index = store.index("INBOX")
    truncate(index, index.stat().st_size // 2)

    plans, outcomes = _repair(store, tmp_path / "backups", sandbox.setup())

    assert plans[0].location.name == "INBOX"
    assert [o.state for o in outcomes] == ["repaired"] * len(plans), outcomes
    assert sandbox.fetch(store) == before
    assert sandbox.status(store, "uidvalidity") == validity
    assert sandbox.status(store, "highestmodseq") >= modseq
    assert outcomes[0].lost == ()
    assert _needs_repair(store) == []
    assert _files_owned_by_others(store, sandbox.uid) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes_in_the_index_come_back_with_exactly_the_flags_the_files_hold(
        sandbox, tmp_path, seed):
    store = sandbox.store("sdbox")
    before = sandbox.fetch_untouched(store)
    index = store.index("INBOX")
    data = bytearray(index.read_bytes())
    data[700:764] = random.Random(seed).randbytes(64)
    index.write_bytes(bytes(data))

    _, outcomes = _repair(store, tmp_path / "backups", sandbox.setup())

    assert [o.state for o in outcomes] == ["repaired"], outcomes
    assert sandbox.fetch(store) == before  # no flag lost, none gained (a stray \Deleted)


def test_flags_only_an_older_index_holds_are_reported_not_verified(tmp_path):
    """Dovecot deleted the old ``.log.2`` while the index was still whole; then the
    index was damaged. The backup is older than the log that is left: what it says is
    put back, but the repair does not call it verified."""
    box = Sandbox.create("aged")
    try:
        store = box.store("sdbox")
        box.fetch(store), box.status(store, "uidvalidity")  # Dovecot syncs: .log.2 goes
        assert not store.log2("INBOX").exists()
        index = store.index("INBOX")
        truncate(index, index.stat().st_size // 2)

        _, outcomes = _repair(store, tmp_path / "backups", box.setup())

        assert [o.state for o in outcomes] == ["repaired"], outcomes
        assert outcomes[0].lost and all("not known" in line for line in outcomes[0].lost)
        assert any("older state" in line for line in outcomes[0].lost)
        assert "0 message(s) verified" in outcomes[0].reason
    finally:
        box.remove()


@pytest.mark.parametrize("name", ["maildir", "sdbox", "mdbox"])
@pytest.mark.parametrize("gone", [("dovecot.index.log",),
                                  ("dovecot.index.log", "dovecot.index.log.2")])
def test_lost_logs_never_lower_highestmodseq_and_unknown_flags_are_named(
        sandbox, tmp_path, name, gone):
    store = sandbox.store(name)
    oracle = sandbox.throwaway(store)
    before, modseq = sandbox.fetch(oracle), sandbox.status(oracle, "highestmodseq")
    for file in gone:
        (store.index_dir("INBOX") / file).unlink(missing_ok=True)

    _, outcomes = _repair(store, tmp_path / "backups", sandbox.setup())

    assert [o.state for o in outcomes] == ["repaired"], outcomes
    assert sandbox.status(store, "highestmodseq") >= modseq
    after = sandbox.fetch(store)
    changed = [guid for guid, shown in before.items() if after.get(guid) != shown]
    assert len(outcomes[0].lost) >= len(changed), (changed, outcomes[0].lost)
    assert _needs_repair(store) == []


@pytest.mark.parametrize("damaged", ["dovecot-uidlist", "dovecot.index"])
def test_uidvalidity_is_what_most_files_record_whichever_file_is_wrong(
        sandbox, tmp_path, damaged):
    store = sandbox.store("maildir")
    oracle = sandbox.throwaway(store)
    before, validity = sandbox.fetch(oracle), sandbox.status(oracle, "uidvalidity")
    if damaged == "dovecot-uidlist":
        replace_text(store.uidlist("INBOX"), f"V{validity} ".encode(),
                     f"V{validity + 5} ".encode())
    else:
        patch_u32(store.index("INBOX"), header_offset("uid_validity"), validity + 5)
    assert "maildir.uidvalidity-mismatch" in _needs_repair(store)

    _, outcomes = _repair(store, tmp_path / "backups", sandbox.setup())

    assert [o.state for o in outcomes] == ["repaired"], outcomes
    assert sandbox.status(store, "uidvalidity") == validity  # clients keep their cache
    assert sandbox.fetch(store) == before
    assert _needs_repair(store) == []


def test_wrong_seen_counter_is_rebuilt_and_the_cache_warmed(sandbox, tmp_path):
    store = sandbox.store("maildir")
    before = sandbox.fetch_untouched(store)
    index = store.index("INBOX")
    data = bytearray(index.read_bytes())
    data[40] += 3  # seen_messages_count
    index.write_bytes(bytes(data))
    assert "index.seen-count-wrong" in _needs_repair(store)
    home, index_root, control_root = store.check_args()
    plans = list(plan_path(home, index_root, control_root))

    outcomes = list(carry_out(plans, tmp_path / "backups", 5, sandbox.setup(), reindex=True))

    assert [o.state for o in outcomes] == ["repaired"]
    assert "cache warmed" in outcomes[0].reason
    assert sandbox.fetch(store) == before
    assert _needs_repair(store) == []


def test_repair_that_cannot_run_dovecot_says_so_before_any_backup(sandbox, tmp_path):
    store, sums = _truncated_sdbox(sandbox)

    cannot_run = DovecotSetup(doveadm=DoveadmCommand(("/nonexistent",)))
    _, outcomes = _repair(store, tmp_path / "backups", cannot_run)

    assert [o.state for o in outcomes] == ["failed"]
    assert outcomes[0].setup_error
    assert outcomes[0].reason == ("not started: cannot run /nonexistent: not found; install "
                                  "dovecot-core (or give the full path of doveadm)")
    assert not (tmp_path / "backups").exists()
    assert _index_sums(store) == sums


def test_mail_owned_by_root_is_a_setup_error_that_names_the_fix(sandbox, tmp_path):
    store, sums = _truncated_sdbox(sandbox)
    subprocess.run(["chown", "-R", "0:0", str(store.base)], check=True)

    _, outcomes = _repair(store, tmp_path / "backups", sandbox.setup())

    assert outcomes[0].setup_error
    assert "belong to root" in outcomes[0].reason and "chown" in outcomes[0].reason
    assert _index_sums(store) == sums


def test_a_doveadm_that_fails_during_the_repair_is_put_back_byte_for_byte(sandbox, tmp_path):
    store, sums = _truncated_sdbox(sandbox)
    failing = sandbox.base / "failing-doveadm"  # answers the setup check, fails the rest
    failing.write_text('#!/bin/sh\ncase "$*" in *" config "*) exec doveadm "$@";; esac\n'
                       'echo "doveadm: Error: made to fail" >&2\nexit 75\n')
    failing.chmod(0o755)
    setup = DovecotSetup(config=str(sandbox.conf), doveadm=DoveadmCommand((str(failing),)))

    _, outcomes = _repair(store, tmp_path / "backups", setup)

    assert [o.state for o in outcomes] == ["failed"]
    assert not outcomes[0].setup_error
    assert "made to fail" in outcomes[0].reason and "put back" in outcomes[0].reason
    assert _index_sums(store) == sums


def test_a_user_database_that_does_not_answer_is_a_setup_error(sandbox, tmp_path):
    store, sums = _truncated_sdbox(sandbox)  # the sandbox runs no auth service
    setup = DovecotSetup(config=str(sandbox.conf), auth=True)

    _, outcomes = _repair(store, tmp_path / "backups", setup)

    assert outcomes[0].setup_error
    assert "user database does not answer" in outcomes[0].reason
    assert "--userdb" in outcomes[0].reason
    assert _index_sums(store) == sums


def test_a_mail_location_with_dovecots_variables_is_expanded_for_doveadm(sandbox, tmp_path):
    store, _ = _truncated_sdbox(sandbox)
    home = store.home
    before = set(home.rglob("*"))
    setup = DovecotSetup(config=str(sandbox.conf), mail_location="sdbox:%h/sdbox")

    _, outcomes = _repair(store, tmp_path / "backups", setup)

    assert [o.state for o in outcomes] == ["repaired"], outcomes
    assert not any("%" in p.name for p in set(home.rglob("*")) - before)


def test_a_repair_killed_half_way_is_undone_and_done_again(sandbox, tmp_path):
    store = sandbox.store("sdbox")
    before = sandbox.fetch_untouched(store)
    index = store.index("INBOX")
    truncate(index, index.stat().st_size // 2)
    damaged = index.read_bytes()
    backups = tmp_path / "backups"
    home, _, _ = store.check_args()
    plans = list(plan_path(home))

    def repair() -> None:
        list(carry_out(plans, backups, 5, sandbox.setup()))

    assert killed_half_way(repair) == 9
    assert not index.exists()  # half-way: the damaged index moved aside, nothing written

    result = CliRunner().invoke(
        main,
        ["repair", str(home), "--yes", "--json", "--backup-dir", str(backups),
         "--dovecot-config", str(sandbox.conf)],
    )

    assert "undone an unfinished repair" in result.stderr, result.output
    assert [o["state"] for o in json.loads(result.stdout)["outcomes"]] == ["repaired"]
    assert result.exit_code == 1, result.output  # repaired
    after = sandbox.fetch(store)
    assert after == before
    assert not index.exists() or index.read_bytes() != damaged


def test_log_garbage_still_there_under_dovecots_lock_calls_for_a_rebuild(tmp_path, monkeypatch):
    store = copy_store(FIXTURES, "sdbox", tmp_path)
    log = store.log("INBOX")
    last = log_records(log)[-1]
    append(log, log.read_bytes()[last.offset : last.offset + last.size - 4])
    home, _, _ = store.check_args()
    monkeypatch.setattr(garbage, "LOCK_WAIT", 0.2)

    with dovecot_lock(log, 1):  # a writer holds the lock: the bytes may be its write
        assert list(plan_path(home)) == []
    plans = list(plan_path(home))

    assert [(p.location.name, p.action) for p in plans] == [("INBOX", Repair.INDEX_REBUILD)]
    assert "log.garbage-at-eof" in plans[0].findings


def test_repair_keeps_more_than_force_resync_on_mailboxes_never_seen(tmp_path):
    """scripts/compare-repair builds new stores with Dovecot, ages them a month (so
    Dovecot deletes .log.2 while it repairs), damages them, and repairs one copy with
    plain doveadm force-resync and one with repair."""
    mail_user()
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare-repair"), "--messages", "40",
         "--age-days", "30", "--seed", "7", "--json"],
        capture_output=True, text=True, timeout=1200, check=False,
    )
    cases = json.loads(done.stdout)["cases"]
    assert done.returncode == 0, done.stderr[-2000:]
    compared = [c for c in cases if "skipped" not in c]
    assert len(compared) >= 30
    for case in compared:
        ours, plain, total = case["ours"], case["plain"], case["total"]
        assert ours["visible"] == total, case
        assert ours["flags_kept"] + ours["flags_reported"] >= total, case  # kept or named
        assert ours["flags_kept"] >= plain["flags_kept"], case
        assert ours["renumbered"] <= plain["renumbered"] and ours["uids_reused"] == 0, case
        assert ours["uidvalidity_kept"] and ours["modseq_kept"] and ours["clean"], case
    assert any(c["ours"]["flags_kept"] > c["plain"]["flags_kept"] for c in compared)
    assert any(c["ours"]["renumbered"] < c["plain"]["renumbered"] for c in compared)


def test_rebuild_waits_for_dovecots_lock_and_gives_up_without_a_change(sandbox, tmp_path):
    store, sums = _truncated_sdbox(sandbox)
    backups = tmp_path / "backups"
    home, _, _ = store.check_args()
    plans = list(plan_path(home))

    with dovecot_lock(store.log("INBOX"), 1):
        false = DovecotSetup(doveadm=DoveadmCommand(("/bin/false",)))
        outcomes = list(carry_out(plans, backups, 0.2, false))

    assert [o.state for o in outcomes] == ["failed"]
    assert "not started" in outcomes[0].reason
    assert _index_sums(store) == sums
    assert not list(backups.glob("*/in-progress"))


def test_damaged_list_index_is_rebuilt_by_dovecot_with_every_mailbox(sandbox, tmp_path):
    store = sandbox.store("sdbox")
    listed = sandbox.doveadm(store, "mailbox", "list").stdout.split()
    truncate(store.list_index(), store.list_index().stat().st_size // 2)

    plans, outcomes = _repair(store, tmp_path / "backups", sandbox.setup())

    assert [(p.location.name, o.state) for p, o in zip(plans, outcomes, strict=True)] == [
        ("(mailbox list index)", "repaired")
    ]
    assert sorted(sandbox.doveadm(store, "mailbox", "list").stdout.split()) == sorted(listed)
    assert _needs_repair(store) == []


def test_an_unexpected_error_fails_that_mailbox_and_is_undone_next_time(sandbox, tmp_path,
                                                                        monkeypatch):
    store, _ = _truncated_sdbox(sandbox)
    backups = tmp_path / "backups"

    def broken(*args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(rebuild_module, "restore_state", broken)
    _, outcomes = _repair(store, backups, sandbox.setup())
    assert [o.state for o in outcomes] == ["failed"]
    assert "ZeroDivisionError" in outcomes[0].reason
    monkeypatch.undo()

    result = CliRunner().invoke(main, ["repair", str(store.home), "--yes", "--backup-dir",
                                       str(backups), "--dovecot-config", str(sandbox.conf)])
    assert "undone an unfinished repair" in result.output
    assert result.exit_code == 1, result.output


def test_mail_delivered_during_a_failed_repair_is_reported(sandbox, tmp_path, monkeypatch):
    store, _ = _truncated_sdbox(sandbox)

    def deliver_then_fail(*args):
        sandbox.doveadm(store, "save", "-m", "INBOX", input="Subject: new\n\nbody\n")
        return Verdict(["made to fail"], 0)

    monkeypatch.setattr(rebuild_module, "verify", deliver_then_fail)
    _, outcomes = _repair(store, tmp_path / "backups", sandbox.setup())

    assert [o.state for o in outcomes] == ["failed"]
    assert "got mail during the repair" in outcomes[0].reason
    assert "force-resync" in outcomes[0].reason
