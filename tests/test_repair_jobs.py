"""Queued repairs: a worker claims the jobs a scan queued and repairs what it can verify."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from conftest import FIXTURES
from damage import truncate
from dovecot_index_tool.cli import main
from dovecot_index_tool.jobqueue.store import JobQueue
from dovecot_index_tool.jobqueue.worker import work
from dovecot_index_tool.ledger.store import Ledger
from dovecot_index_tool.repair.job_action import JobRepair

INBOX = "bob/sdbox/mailboxes/INBOX/dbox-Mails"


def _scan_and_enqueue(db: str, volume: Path) -> None:
    result = CliRunner().invoke(main, ["scan", "--db", db, "-q", "--enqueue", str(volume)])
    assert result.exit_code == 4, result.output


def _volume(tmp_path: Path) -> Path:
    volume = tmp_path / "vol"
    shutil.copytree(FIXTURES / "sdbox/bob", volume / "bob")
    return volume


def _run_worker(db: str, backups: Path) -> list[tuple[int, str]]:
    summary = work(lambda: JobQueue(Ledger.open(db)), JobRepair(backups), "worker-1")
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


def test_job_needing_an_action_not_performed_fails_and_leaves_the_mailbox(ledger_target, tmp_path):
    volume = _volume(tmp_path)
    index = volume / INBOX / "dovecot.index"
    data = bytearray(index.read_bytes())
    data[40] += 1
    index.write_bytes(bytes(data))
    _scan_and_enqueue(ledger_target, volume)

    results = _run_worker(ledger_target, tmp_path / "backups")

    assert [state for _, state in results] != ["done"]
    assert index.read_bytes() == bytes(data)
    job = JobQueue(Ledger.open(ledger_target)).job(results[0][0])
    assert "does not perform" in (job.last_error or "")


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
