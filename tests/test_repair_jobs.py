"""Queued repairs: a worker claims the jobs a scan queued and repairs what it can verify."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from damage import STORE_AGES, truncate
from dovecot_index_tool.cli import main
from dovecot_index_tool.jobqueue.store import JobQueue
from dovecot_index_tool.jobqueue.worker import work
from dovecot_index_tool.ledger.store import Ledger
from dovecot_index_tool.repair.doveadm import DoveadmCommand, DovecotSetup
from dovecot_index_tool.repair.job_action import JobRepair
from mail_sandbox import Sandbox, killed_half_way

INBOX = "bob/sdbox/mailboxes/INBOX/dbox-Mails"


def _scan_and_enqueue(db: str, volume: Path) -> None:
    result = CliRunner().invoke(main, ["scan", "--db", db, "-q", "--enqueue", str(volume)])
    assert result.exit_code == 4, result.output


def _volume(tmp_path: Path) -> Path:
    volume = tmp_path / "vol"
    shutil.copytree(FIXTURES / "sdbox/bob", volume / "bob")
    return volume


def _run_worker(db: str, backups: Path, **options) -> list[tuple[int, str]]:
    action = JobRepair(backups, **options)
    summary = work(lambda: JobQueue(Ledger.open(db)), action, "worker-1")
    return summary.results


def test_worker_purges_a_damaged_cache_and_the_job_is_done(ledger_target, tmp_path):
    volume = _volume(tmp_path)
    cache = volume / INBOX / "dovecot.index.cache"
    truncate(cache, 16)
    _scan_and_enqueue(ledger_target, volume)

    results = _run_worker(ledger_target, tmp_path / "backups")

    assert [state for _, state in results] == ["done"]
    assert not cache.exists()
    job = JobQueue(Ledger.open(ledger_target)).job(results[0][0])
    assert job.state == "done"


def test_job_whose_repair_cannot_run_dovecot_fails_at_once_and_leaves_the_mailbox(
        ledger_target, tmp_path):
    volume = _volume(tmp_path)
    index = volume / INBOX / "dovecot.index"
    data = bytearray(index.read_bytes())
    data[40] += 1
    index.write_bytes(bytes(data))
    _scan_and_enqueue(ledger_target, volume)

    cannot_run = DovecotSetup(doveadm=DoveadmCommand(("/nonexistent/doveadm",)))
    results = _run_worker(ledger_target, tmp_path / "backups", dovecot=cannot_run)

    assert [state for _, state in results] == ["failed"]  # not retried: it cannot work
    assert index.read_bytes() == bytes(data)
    job = JobQueue(Ledger.open(ledger_target)).job(results[0][0])
    assert job.attempts == 1
    assert (job.last_error or "").startswith("setup: ")
    assert "/nonexistent/doveadm" in job.last_error
    assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").iterdir())


def test_repair_without_path_works_through_the_queue(ledger_target, tmp_path):
    volume = _volume(tmp_path)
    cache = volume / INBOX / "dovecot.index.cache"
    truncate(cache, 16)
    _scan_and_enqueue(ledger_target, volume)
    runner = CliRunner()

    planned = runner.invoke(main, ["repair", "--plan", "--json", "--db", ledger_target])
    assert [j["action"] for j in json.loads(planned.output)["jobs"]] == ["cache-purge"]
    assert cache.exists()

    backups = str(tmp_path / "backups")
    result = runner.invoke(
        main, ["repair", "--json", "--db", ledger_target, "--backup-dir", backups], input="1\n"
    )

    assert result.exit_code == 1, result.output
    assert [r["state"] for r in json.loads(result.stdout)["results"]] == ["done"]
    assert not cache.exists()


@pytest.fixture(params=sorted(STORE_AGES))
def sandbox(request):
    """Each repair runs on a store whose recorded times are from now and from a month
    ago: Dovecot deletes an old ``.log.2`` while it repairs."""
    box = Sandbox.create(request.param)
    yield box
    box.remove()


def _damaged_sdbox(sandbox: Sandbox):
    store = sandbox.store("sdbox")
    before = sandbox.fetch_untouched(store)
    index = store.index("INBOX")
    truncate(index, index.stat().st_size // 2)
    return store, before


def test_worker_rebuilds_a_truncated_index_through_dovecot(sandbox, tmp_path):
    store, before = _damaged_sdbox(sandbox)
    db = str(tmp_path / "ledger.sqlite3")
    _scan_and_enqueue(db, store.home.parent)

    results = _run_worker(db, tmp_path / "backups", dovecot=sandbox.setup())

    assert [state for _, state in results] == ["done"]
    assert sandbox.fetch(store) == before
    job = JobQueue(Ledger.open(db)).job(results[0][0])
    assert job.action == "index-rebuild"


def test_job_killed_half_way_is_retried_and_the_mailbox_repaired(sandbox, tmp_path):
    store, before = _damaged_sdbox(sandbox)
    db = str(tmp_path / "ledger.sqlite3")
    _scan_and_enqueue(db, store.home.parent)
    action = JobRepair(tmp_path / "backups", dovecot=sandbox.setup())

    def worker() -> None:
        work(lambda: JobQueue(Ledger.open(db)), action, "worker-1", lease=1)

    assert killed_half_way(worker) == 9
    assert not store.index("INBOX").exists()  # half-way: the damaged index moved aside
    time.sleep(1.5)  # the dead worker's lease runs out

    summary = work(lambda: JobQueue(Ledger.open(db)), action, "worker-2")

    assert [state for _, state in summary.results] == ["done"]
    job = JobQueue(Ledger.open(db)).job(summary.results[0][0])
    assert job.attempts == 2
    assert sandbox.fetch(store) == before


def test_job_of_a_split_store_finds_its_mail_through_the_ledger(sandbox, tmp_path):
    store = sandbox.store("maildir-split")
    before = sandbox.fetch_untouched(store)
    index = store.index("INBOX")
    truncate(index, index.stat().st_size // 2)
    db = str(tmp_path / "ledger.sqlite3")
    split = store.base / "maildir-split"
    result = CliRunner().invoke(main, [
        "scan", "--db", db, "-q", "--enqueue", "--index-root", str(split / "index"),
        "--control-root", str(split / "control"), str(split / "home"),
    ])
    assert result.exit_code == 4, result.output

    def scanned_dirs(path: str):
        return Ledger.open(db).mailbox_dirs(path)

    results = _run_worker(db, tmp_path / "backups", dovecot=sandbox.setup(),
                          scanned_dirs=scanned_dirs)

    assert [state for _, state in results] == ["done"], JobQueue(Ledger.open(db)).job(
        results[0][0])
    assert sandbox.fetch(store) == before


def test_jobs_of_shared_files_rebuild_the_list_index_and_the_mdbox_map(sandbox, tmp_path):
    sdbox, mdbox = sandbox.store("sdbox"), sandbox.store("mdbox")
    oracle = sandbox.throwaway(mdbox)
    before, validity = sandbox.fetch(oracle), sandbox.status(oracle, "uidvalidity")
    truncate(sdbox.list_index(), sdbox.list_index().stat().st_size // 2)
    map_log = mdbox.map_index().with_name("dovecot.map.index.log")
    truncate(map_log, map_log.stat().st_size // 2)
    db = str(tmp_path / "ledger.sqlite3")
    for store in (sdbox, mdbox):
        _scan_and_enqueue(db, store.home.parent)
    queued = JobQueue(Ledger.open(db)).jobs(state="queued")
    assert {"list-index", "mdbox-map"} <= {job.format for job in queued}

    results = _run_worker(db, tmp_path / "backups", dovecot=sandbox.setup())

    formats = {job.id: job.format for job in queued}
    states = {formats[job_id]: state for job_id, state in results}
    assert states["list-index"] == states["mdbox-map"] == "done"
    # a mailbox job may find its mailbox repaired already by the map's storage rebuild
    assert set(states.values()) <= {"done", "healthy"}
    after = sandbox.fetch(mdbox)  # an expunged message not yet purged may come back
    assert {g: after[g][1] for g in before if g in after} == {g: f for g, (_, f) in before.items()}
    renumbered = sandbox.status(mdbox, "uidvalidity") != validity
    assert renumbered or all(after[g][0] == uid for g, (uid, _) in before.items())
    for store in (sdbox, mdbox):
        assert [f.check for f in store.findings() if f.severity.value != "info"] == []
