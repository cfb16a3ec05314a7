"""usable_at and complete_at: from the queue plan over the workers that serve the volume,
unknown with no worker, the actual times once the repairs are done (real Dovecot)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from damage import truncate
from dovecot_index_tool.cli import main
from dovecot_index_tool.jobqueue.store import JobQueue
from dovecot_index_tool.jobqueue.worker import work
from dovecot_index_tool.ledger.store import Ledger
from dovecot_index_tool.repair.job_action import JobRepair
from dovecot_index_tool.report import build_report
from mail_sandbox import Sandbox

MAILBOXES = ("INBOX", "One")


@pytest.fixture
def sandbox():
    box = Sandbox.create()
    yield box
    box.remove()


def _scan(db: str, volume, *options: str) -> None:
    result = CliRunner().invoke(main, ["scan", "--db", db, "-q", *options, str(volume)])
    assert result.exit_code in (0, 4), result.output


def _job_times(queue: JobQueue, job: int) -> dict:
    return queue.db.one("SELECT started, finished FROM jobs WHERE id=?", (job,))


def _seconds(queue: JobQueue, job: int) -> float:
    j = queue.job(job)
    return queue.cost_model().seconds(j.action, j.messages, j.bytes)


def test_a_worker_repairing_two_queued_mailboxes_gives_their_times_then_the_actual_ones(
        sandbox, ledger_target, tmp_path):
    store = sandbox.store("sdbox")
    for name in MAILBOXES:
        truncate(store.index(name), store.index(name).stat().st_size // 2)
    _scan(ledger_target, store.home.parent, "--enqueue")

    def queue() -> JobQueue:
        return JobQueue(Ledger.open(ledger_target))

    before = {r.mailbox: r for r in build_report(queue())}
    assert set(before) == set(MAILBOXES)
    for row in before.values():  # no worker runs: nobody can say when
        assert (row.state, row.usable_at, row.complete_at) == ("queued", None, None)
        assert row.times.reason == "no worker"

    seen: list[dict] = []
    repair = JobRepair(tmp_path / "backups", dovecot=sandbox.setup())

    def action(job):
        seen.append({r.job: r for r in build_report(queue())})
        return repair(job)

    summary = work(queue, action, "worker-1")
    assert [state for _, state in summary.results] == ["done", "done"]
    first, second = (job for job, _ in summary.results)
    q = queue()

    # while the first job ran: it is back at its start plus its estimate, the second
    # one after it (one repair at a time on the volume)
    during = seen[0]
    end_first = _job_times(q, first)["started"] + _seconds(q, first)
    assert during[first].state == "repairing" and during[second].state == "queued"
    assert during[first].times.kind == "estimate"
    assert during[first].usable_at == pytest.approx(end_first, abs=0.01)
    assert during[second].usable_at == pytest.approx(end_first + _seconds(q, second), abs=0.01)
    assert during[second].complete_at == during[second].usable_at

    # while the second ran, the first was done: its time is the actual one
    during = seen[1]
    assert during[first].times.kind == "actual"
    assert during[first].usable_at == _job_times(q, first)["finished"]
    assert during[second].usable_at == pytest.approx(
        _job_times(q, second)["started"] + _seconds(q, second), abs=0.01)

    _scan(ledger_target, store.home.parent)  # a scan reads the files: repaired
    after = {r.job: r for r in build_report(q)}
    for job in (first, second):
        assert after[job].state == "repaired" and after[job].times.kind == "actual"
        assert after[job].usable_at == after[job].complete_at == _job_times(q, job)["finished"]
