"""The repair queue on SQLite: idempotent enqueues, priority, per-volume limits under
concurrent workers, leases that survive killed workers, retries and dead jobs."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from dovecot_index_tool.jobqueue.costs import CostModel
from dovecot_index_tool.jobqueue.plan import simulate
from dovecot_index_tool.jobqueue.priority import VipList
from dovecot_index_tool.jobqueue.store import Candidate, JobQueue, widest
from dovecot_index_tool.jobqueue.worker import work
from dovecot_index_tool.ledger.store import Ledger


def candidate(
    n: int,
    volume: str = "vol1",
    severity: str = "error",
    action: str = "index-rebuild",
    user: str | None = None,
    messages: int = 10,
) -> Candidate:
    return Candidate(
        f"/{volume}/u{n}/INBOX",
        volume,
        "example.org",
        user or f"u{n}",
        "INBOX",
        "sdbox",
        action,
        severity,
        ("index.seen-count-wrong",),
        1000,
        messages,
        time.time(),
    )


def open_queue(db: str, vip: VipList | None = None) -> JobQueue:
    return JobQueue(Ledger.open(db), vip)


def test_least_destructive_action_that_fixes_everything_is_chosen() -> None:
    assert widest(["none", "cache-purge", "index-rebuild"]) == "index-rebuild"
    assert widest(["force-resync", "cache-purge"]) == "force-resync"
    assert widest(["none"]) is None


def test_enqueue_is_idempotent_and_only_widens(ledger_target: str) -> None:
    q = open_queue(ledger_target)
    first = q.enqueue([candidate(1, action="cache-purge")])
    again = q.enqueue([candidate(1, action="cache-purge")])
    wider = q.enqueue([candidate(1, action="force-resync", severity="fatal")])
    narrower = q.enqueue([candidate(1, action="cache-purge")])
    assert [r[1] for r in (*first, *again, *wider, *narrower)] == [
        "new",
        "unchanged",
        "updated",
        "unchanged",
    ]
    (job,) = q.jobs()
    assert job.action == "force-resync" and job.severity == "fatal"


def _enqueue_same(db: str) -> None:
    JobQueue(Ledger.open(db)).enqueue([candidate(7)])


def test_concurrent_enqueues_of_one_mailbox_make_one_job(ledger_target: str) -> None:
    db = ledger_target
    Ledger.open(db).close()
    procs = [multiprocessing.Process(target=_enqueue_same, args=(db,)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert len(open_queue(db).jobs()) == 1


def test_priority_severity_then_vip_then_cheaper(ledger_target: str) -> None:
    q = open_queue(ledger_target, VipList(frozenset({"boss"})))
    q.enqueue(
        [
            candidate(1, severity="error", messages=50000),
            candidate(2, severity="error", messages=10),
            candidate(3, severity="fatal", messages=50000),
            candidate(4, severity="error", user="boss", messages=50000),
            candidate(5, severity="warning"),
        ]
    )
    order = [j.user for j in sorted(q.jobs(), key=lambda j: -j.priority)]
    assert order == ["u3", "boss", "u2", "u1", "u5"]
    q.set_limit("vol1", 5)
    claimed = [j.user for j in q.claim("w", batch=5)]
    assert claimed == order


class Recorder:
    """A fake repair action shared by processes: counts runs and concurrency per volume."""

    def __init__(self, path: Path, seconds: float = 0.02) -> None:
        self.path, self.seconds = path, seconds

    def _update(self, change) -> None:
        with open(self.path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            state = json.loads(f.read() or '{"runs": {}, "running": {}, "max": {}}')
            change(state)
            f.seek(0)
            f.truncate()
            f.write(json.dumps(state))

    def __call__(self, job) -> str:
        def start(s):
            s["runs"][str(job.id)] = s["runs"].get(str(job.id), 0) + 1
            s["running"][job.volume] = s["running"].get(job.volume, 0) + 1
            s["max"][job.volume] = max(s["max"].get(job.volume, 0), s["running"][job.volume])

        def end(s):
            s["running"][job.volume] -= 1

        self._update(start)
        time.sleep(self.seconds)
        self._update(end)
        return "ok"

    def state(self) -> dict:
        return json.loads(self.path.read_text())


def _worker(db: str, record: str, name: str) -> None:
    work(lambda: JobQueue(Ledger.open(db)), Recorder(Path(record)), name, batch=2)


def test_eight_workers_never_run_a_job_twice_nor_exceed_volume_limits(
    ledger_target: str, tmp_path: Path
) -> None:
    db, record = ledger_target, tmp_path / "record.json"
    q = open_queue(db)
    q.enqueue([candidate(n, volume=f"vol{n % 3}") for n in range(60)])
    q.set_limit("vol0", 1)
    q.set_limit("vol1", 2)
    q.set_limit("vol2", 3)
    procs = [
        multiprocessing.Process(target=_worker, args=(db, str(record), f"w{i}")) for i in range(8)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    state = Recorder(record).state()
    assert set(state["runs"].values()) == {1} and len(state["runs"]) == 60
    assert state["max"]["vol0"] <= 1 and state["max"]["vol1"] <= 2 and state["max"]["vol2"] <= 3
    assert {j.state for j in open_queue(db).jobs()} == {"done"}


def _stuck_worker(db: str, record: str) -> None:
    work(
        lambda: JobQueue(Ledger.open(db)),
        Recorder(Path(record), seconds=60),
        "stuck",
        lease=1.0,
    )


def test_killed_worker_loses_no_job(ledger_target: str, tmp_path: Path) -> None:
    db, record = ledger_target, tmp_path / "record.json"
    open_queue(db).enqueue([candidate(1)])
    proc = multiprocessing.Process(target=_stuck_worker, args=(db, str(record)))
    proc.start()
    deadline = time.time() + 20
    while time.time() < deadline and not open_queue(db).jobs(state="running"):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    time.sleep(1.2)  # the lease ends
    q = open_queue(db)
    summary = work(lambda: open_queue(db), Recorder(tmp_path / "r2.json", 0.0), "rescuer")
    (job,) = q.jobs()
    assert job.state == "done" and job.attempts == 2
    assert summary.done == 1
    states = [e["state"] for e in q.events(job.id)]
    assert states == ["queued", "running", "queued", "running", "done"]


def test_failures_back_off_then_die_and_a_dead_job_can_be_retried(ledger_target: str) -> None:
    db = ledger_target
    q = JobQueue(Ledger.open(db), max_attempts=2)
    q.enqueue([candidate(1)])

    def broken(_job):
        raise RuntimeError("disk on fire")

    now = time.time()
    (job,) = q.claim("w", now=now)
    assert q.finish(job, "w", False, "disk on fire", now=now) == "queued"
    assert q.claim("w", now=now + 1) == []  # backing off
    (job,) = q.claim("w", now=now + 31)
    assert q.finish(job, "w", False, "disk on fire", now=now + 31) == "dead"
    assert q.job(job.id).last_error == "disk on fire"
    assert q.retry(dead=True) == [job.id]
    summary = work(lambda: open_queue(db), broken, "w")
    assert summary.failed == 1 and q.job(job.id).state == "queued"


def test_pause_resume_and_cancel(ledger_target: str) -> None:
    q = open_queue(ledger_target)
    q.enqueue([candidate(1), candidate(2)])
    q.set_limit("vol1", paused=True)
    assert q.claim("w") == []
    q.set_limit("vol1", paused=False)
    assert q.cancel(q.jobs()[0].id)
    assert len(q.claim("w", batch=5)) == 1


def test_plan_compares_policies_and_priority_serves_urgent_and_vips_first(
    ledger_target: str,
) -> None:
    q = open_queue(ledger_target, VipList(frozenset({"boss"})))
    jobs = [candidate(n, volume="big", messages=200000) for n in range(5)]
    jobs += [candidate(10 + n, volume="small", messages=10) for n in range(5)]
    jobs.append(candidate(99, volume="big", severity="fatal", user="boss", messages=10))
    q.enqueue(jobs)
    queued = q.jobs()
    costs = CostModel.calibrate({})
    results = {
        p: simulate(queued, p, costs, {"big": 1, "small": 1})
        for p in ("priority", "fifo", "volume-at-a-time")
    }
    means = {p: r.metrics()["mean"] for p, r in results.items()}
    assert means["priority"] < means["volume-at-a-time"]
    vip = {p: r.metrics(vip_only=True)["mean"] for p, r in results.items()}
    assert vip["priority"] <= min(vip.values())


def test_cost_model_calibrates_on_measured_repairs() -> None:
    model = CostModel.calibrate({"index-rebuild": [(100, 10**6, 20.0)] * 3})
    assert "index-rebuild" in model.calibrated
    assert model.seconds("index-rebuild", 100, 10**6) == pytest.approx(20.0)


def test_scan_enqueue_turns_findings_into_jobs(ledger_target: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dovecot_index_tool.cli import main

    vol = tmp_path / "vol"
    shutil.copytree(FIXTURES / "sdbox/bob", vol / "bob")
    index = vol / "bob/sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index"
    data = bytearray(index.read_bytes())
    data[40] += 1
    index.write_bytes(bytes(data))
    db = ledger_target
    result = CliRunner().invoke(main, ["scan", "--db", db, "-q", "--enqueue", str(vol)])
    assert result.exit_code == 4, result.output
    result = CliRunner().invoke(main, ["queue", "list", "--db", str(db), "--format", "json"])
    jobs = json.loads(result.output)["jobs"]
    assert [(j["user"], j["mailbox"], j["action"]) for j in jobs] == [
        ("bob", "INBOX", "index-rebuild")
    ]


def test_a_mailbox_the_scan_could_not_read_gets_no_job(ledger_target: str,
                                                     tmp_path: Path) -> None:
    """Damage recorded earlier stays open while the mailbox cannot be read, but a
    repair of files nobody could read is not queued: the scan says it held it back."""
    from click.testing import CliRunner

    from dovecot_index_tool.cli import main

    vol = tmp_path / "vol"
    shutil.copytree(FIXTURES / "sdbox/bob", vol / "bob")
    index = vol / "bob/sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index"
    data = bytearray(index.read_bytes())
    data[40] += 1
    index.write_bytes(bytes(data))
    db = ledger_target
    assert CliRunner().invoke(main, ["scan", "--db", db, "-q", str(vol)]).exit_code == 4
    index.unlink()
    index.mkdir()  # reading it fails with EISDIR, even as root
    result = CliRunner().invoke(main, ["scan", "--db", db, "-q", "--enqueue", str(vol)])
    assert result.exit_code & 8, result.output
    assert "1 affected mailbox(es) not queued: could not be checked" in result.output
    listed = CliRunner().invoke(main, ["queue", "list", "--db", db, "--format", "json"])
    assert json.loads(listed.output)["jobs"] == []
    added = CliRunner().invoke(main, ["queue", "add", "--db", db])
    assert added.output.startswith("0 new jobs") and "1 affected mailbox(es)" in added.output


def test_retry_never_makes_a_second_active_job_for_a_mailbox(ledger_target: str) -> None:
    q = open_queue(ledger_target)
    ((old, _),) = q.enqueue([candidate(1)])
    assert q.cancel(old)
    q.enqueue([candidate(1)])  # a new job for the same mailbox
    assert q.retry(old) == []
    assert len(q.jobs(state="queued")) == 1


def test_success_after_an_expired_lease_counts_unless_another_worker_took_over(
    ledger_target: str,
) -> None:
    q = open_queue(ledger_target)
    q.enqueue([candidate(1), candidate(2, volume="vol2")])
    now = time.time()
    (first,) = q.claim("slow", volume="vol1", lease=1, now=now)
    (second,) = q.claim("slow", volume="vol2", lease=1, now=now)
    q.claim("x", volume="elsewhere", now=now + 5)  # only expires the leases
    (rescued,) = q.claim("rescuer", volume="vol2", now=now + 5)
    assert q.finish(first, "slow", True, "ok", now=now + 6) == "done"  # nobody else ran it
    assert q.finish(second, "slow", True, "ok", now=now + 6) == "running"  # the rescuer has it
    assert q.finish(rescued, "rescuer", True, "ok", now=now + 7) == "done"


def test_a_job_widened_while_it_ran_is_queued_again(ledger_target: str) -> None:
    q = open_queue(ledger_target)
    q.enqueue([candidate(1, action="cache-purge")])
    (job,) = q.claim("w")
    q.enqueue([candidate(1, action="force-resync")])
    assert q.finish(job, "w", True, "purged") == "queued"
    assert q.jobs()[0].action == "force-resync"


def test_a_db_that_is_neither_a_path_nor_postgresql_is_a_usage_error(tmp_path, monkeypatch):
    from dovecot_index_tool.cli import main

    monkeypatch.chdir(tmp_path)
    volume = tmp_path / "vol"
    shutil.copytree(FIXTURES / "maildir", volume)
    for db in ("mysql://localhost/x", str(tmp_path / "no/such/dir/x.sqlite3")):
        result = CliRunner().invoke(main, ["scan", "-q", "--db", db, str(volume)])
        assert result.exit_code == 16, result.output
        assert result.stderr.startswith("error: --db")
    assert not (tmp_path / "mysql:").exists() and not (tmp_path / "no").exists()


def test_unknown_volumes_and_checks_given_to_the_queue_are_usage_errors(tmp_path):
    from dovecot_index_tool.cli import main

    volume = tmp_path / "vol"
    shutil.copytree(FIXTURES / "maildir", volume)
    db = str(tmp_path / "l.sqlite3")
    CliRunner().invoke(main, ["scan", "-q", "--db", db, str(volume)])

    for args in (["pause", "/no/such/vol"], ["resume", "/no/such/vol"],
                 ["limit", "/no/such/vol", "2"], ["add", "--check", "no.such-check"]):
        result = CliRunner().invoke(main, ["queue", *args, "--db", db])
        assert result.exit_code == 16, (args, result.output)
        assert "unknown" in result.stderr
    assert CliRunner().invoke(main, ["queue", "pause", str(volume), "--db", db]).exit_code == 0
