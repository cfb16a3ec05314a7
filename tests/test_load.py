"""Load control: pauses under a busy host (injected readings), the window (injected
clock), the idle I/O class of the worker processes, per-volume reads."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_scan import volumes  # noqa: F401  (the fixture)

from dovecot_index_tool.cli import main
from dovecot_index_tool.ledger.store import Ledger
from dovecot_index_tool.load.gate import TIME_BUDGET, LoadGate, LoadLimits
from dovecot_index_tool.load.priority import IOPRIO_CLASS_IDLE, LOWEST_NICE, io_class
from dovecot_index_tool.load.probe import LoadProbe, io_pressure
from dovecot_index_tool.load.window import Window, WindowError
from dovecot_index_tool.present.prometheus import render
from dovecot_index_tool.scan import worker
from dovecot_index_tool.scan.engine import Scanner, ScanOptions
from dovecot_index_tool.scan.worker import scan_mailbox, worker_init


class FakeHost:
    """A clock that only the gate's sleep advances, and readings that follow a script:
    ``load[i]`` is the reading after ``i`` sleeps (the last one stays)."""

    def __init__(self, load=(None,), pressure=(None,), start=datetime(2024, 5, 1, 2, 0),
                 tick: timedelta = timedelta(0)) -> None:
        self.load, self.pressure = list(load), list(pressure)
        self.sleeps, self.clock, self.start, self.tick = 0, 0.0, start, tick
        self.reads = 0

    def _at(self, script: list):
        return script[min(self.sleeps, len(script) - 1)]

    def now(self) -> datetime:
        self.reads += 1
        return self.start + self.tick * self.reads

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.clock += seconds

    def probe(self) -> LoadProbe:
        return LoadProbe(lambda: self._at(self.load), lambda: self._at(self.pressure),
                         self.now, lambda: self.clock, self.sleep)


def test_window_parses_and_runs_past_midnight() -> None:
    night = Window.parse("22:00-06:00")
    assert str(night) == "22:00-06:00"
    assert night.contains(datetime(2024, 1, 1, 23, 30)) and night.contains(datetime(2024, 1, 2, 5))
    assert not night.contains(datetime(2024, 1, 1, 6, 0)) and not night.contains(
        datetime(2024, 1, 1, 12))
    day = Window.parse("1:00-5:30")
    assert day.contains(datetime(2024, 1, 1, 1, 0))
    assert not day.contains(datetime(2024, 1, 1, 5, 30))
    for bad in ("25:00-01:00", "01:00", "01:00-01:00", "1-2", ""):
        with pytest.raises(WindowError):
            Window.parse(bad)


def test_io_pressure_reads_some_avg10(tmp_path: Path) -> None:
    psi = tmp_path / "io"
    psi.write_text("some avg10=42.50 avg60=10.00 avg300=1.00 total=123\n"
                   "full avg10=30.00 avg60=5.00 avg300=0.50 total=100\n")
    assert io_pressure(str(psi)) == 42.5
    assert io_pressure(str(tmp_path / "missing")) is None
    psi.write_text("garbage")
    assert io_pressure(str(psi)) is None


def test_gate_waits_while_busy_and_records_why() -> None:
    host = FakeHost(load=(3.0, 2.5, 0.2), pressure=(None, None, 80.0, 80.0, 1.0))
    told = []
    gate = LoadGate(LoadLimits(max_load=1.0, max_io_pressure=20, recheck=5), host.probe(),
                    on_pause=told.append)
    assert gate.admit() is None
    assert gate.paused == {"load": 10.0, "io-pressure": 10.0}
    assert gate.pauses == 1 and str(told[0]) == "load 3.00 per CPU above 1" and told[-1] is None
    assert gate.admit() is None and gate.pauses == 1  # not busy any more: no new pause


def test_a_pause_that_outlasts_the_time_budget_ends_the_run() -> None:
    host = FakeHost(load=(9.0,))
    gate = LoadGate(LoadLimits(max_load=1.0, recheck=5), host.probe(), deadline=12)
    assert gate.admit() == TIME_BUDGET
    assert gate.paused["load"] == 15.0


def _scanner(v, host: FakeHost, **options) -> tuple[Scanner, Ledger, list]:
    ledger = Ledger.open(v["db"])
    seen: list = []
    opts = ScanOptions((v["vol1"], v["vol2"]), "{domain}/{user}", jobs=2, **options)
    return Scanner(opts, ledger, lambda o, f: seen.append(o), probe=host.probe()), ledger, seen


def _full_count(v) -> int:
    _code, lines = _cli_scan(v, "--db", str(v["db"].parent / "other.sqlite3"))
    return next(m for m in lines if m["type"] == "summary")["mailboxes"]


def _cli_scan(v, *extra: str):
    args = ["scan", "--layout", "{domain}/{user}", "-j", "2", "--format", "ndjson",
            *extra, str(v["vol1"]), str(v["vol2"])]
    if "--db" not in extra:
        args[1:1] = ["--db", str(v["db"])]
    result = CliRunner().invoke(main, args)
    return result.exit_code, [json.loads(x) for x in result.output.splitlines()
                              if x.startswith("{")]


def test_scan_pauses_under_synthetic_load_and_pressure_then_goes_on(volumes) -> None:  # noqa: F811
    host = FakeHost(load=(4.0, 4.0, 4.0, 0.1), pressure=(None, None, None, 55.0, 0.5))
    scanner, ledger, seen = _scanner(
        volumes, host, load=LoadLimits(max_load=1.5, max_io_pressure=10, recheck=30))
    result = scanner.run()
    assert result.status == "complete" and result.mailboxes == len(seen) == _full_count(volumes)
    assert result.paused == {"load": 90.0, "io-pressure": 30.0}
    run = ledger.runs()[-1]
    assert run["paused_seconds"] == 120.0 and json.loads(run["pauses"]) == result.paused
    ledger.close()
    text = render(result, None)
    assert 'dovecot_index_tool_scan_paused_seconds{reason="load"} 90' in text
    assert 'dovecot_index_tool_scan_paused_seconds{reason="io-pressure"} 30' in text


def test_window_stops_after_the_current_mailbox_and_keeps_what_was_done(volumes) -> None:  # noqa: F811
    # the clock passes 05:00 after a few mailboxes of a 01:00-05:00 window
    host = FakeHost(start=datetime(2024, 5, 1, 4, 57), tick=timedelta(minutes=1))
    limits = LoadLimits(window=Window.parse("01:00-05:00"))
    scanner, ledger, seen = _scanner(volumes, host, load=limits)
    result = scanner.run()
    assert result.status == "outside window 01:00-05:00"
    assert 0 < result.mailboxes == len(seen) < _full_count(volumes)
    assert not result.exit_status & 32  # cut short by the schedule, not cancelled
    run = ledger.runs()[-1]
    assert run["status"] == "outside window 01:00-05:00" and run["mailboxes"] == result.mailboxes
    kept = ledger.db.one("SELECT COUNT(*) AS n FROM mailboxes WHERE fingerprint IS NOT NULL")
    assert kept["n"] >= len([o for o in seen if o.fingerprint])
    ledger.close()


def test_a_window_that_is_closed_starts_nothing(volumes) -> None:  # noqa: F811
    code, lines = _cli_scan(volumes, "--window", "00:00-00:01" if datetime.now().hour else
                            "12:00-12:01")
    summary = lines[-1]
    assert summary["status"].startswith("outside window") and summary["mailboxes"] == 0
    assert code == 0


def test_a_bad_window_is_a_usage_error(volumes) -> None:  # noqa: F811
    code, _ = _cli_scan(volumes, "--window", "6-2")
    assert code not in (0, 4)


def _priorities(_):
    return io_class(), os.getpriority(os.PRIO_PROCESS, 0)


def test_io_idle_workers_read_in_the_idle_class_at_the_lowest_cpu_priority() -> None:
    with ProcessPoolExecutor(1, initializer=worker_init, initargs=(True,)) as pool:
        klass, nice = pool.submit(_priorities, None).result()
    assert klass == IOPRIO_CLASS_IDLE and nice == LOWEST_NICE
    assert io_class() != IOPRIO_CLASS_IDLE  # the parent is left as it was


def _recording_scan(task):
    with open(os.environ["DIT_TEST_PRIORITIES"], "a") as f:
        f.write(json.dumps([os.getpid(), *_priorities(None)]) + "\n")
    return scan_mailbox(task)


def test_scan_with_io_idle_reads_every_mailbox_in_idle_workers(volumes, monkeypatch,  # noqa: F811
                                                                  tmp_path) -> None:
    record = tmp_path / "priorities"
    monkeypatch.setenv("DIT_TEST_PRIORITIES", str(record))
    monkeypatch.setattr(worker, "scan_mailbox", _recording_scan)  # workers are forked
    _code, lines = _cli_scan(volumes, "--io-idle")
    rows = [json.loads(x) for x in record.read_text().splitlines()]
    assert rows and all(pid != os.getpid() for pid, _, _ in rows)
    assert {(klass, nice) for _, klass, nice in rows} == {(IOPRIO_CLASS_IDLE, LOWEST_NICE)}
    assert lines[-1]["status"] == "complete"


def test_per_volume_limit_reads_at_most_n_mailboxes_of_a_volume_at_once(volumes) -> None:  # noqa: F811
    host = FakeHost()
    scanner, ledger, _seen = _scanner(volumes, host, per_volume=1)
    widest = []
    original = scanner._submit

    def submit(pool, future, task):
        original(pool, future, task)
        widest.append(scanner._reading_on(task.user.volume))

    scanner._submit = submit
    result = scanner.run()
    ledger.close()
    assert result.status == "complete" and max(widest) <= 1


def test_queue_workers_pause_while_busy_and_claim_nothing_outside_the_window(
        ledger_target: str) -> None:
    from test_queue import candidate

    from dovecot_index_tool.jobqueue.store import JobQueue
    from dovecot_index_tool.jobqueue.worker import work

    def queue() -> JobQueue:
        return JobQueue(Ledger.open(ledger_target))

    queue().enqueue([candidate(n) for n in range(1, 5)])
    done = []
    # busy for two readings, then quiet; the window closes after the first job
    host = FakeHost(load=(5.0, 5.0, 0.0), start=datetime(2024, 5, 1, 3, 59, 20),
                    tick=timedelta(seconds=10))
    limits = LoadLimits(max_load=2.0, window=Window.parse("03:00-04:00"), recheck=10)
    summary = work(queue, lambda job: done.append(job.id) or "ok", "w", load=limits,
                   probe=host.probe())
    assert summary.paused == {"load": 20.0}
    assert summary.stopped == "outside window 03:00-04:00"
    assert 0 < len(done) < 4 and summary.done == len(done)
    assert len(queue().jobs(state="queued")) == 4 - len(done)  # left for the next window
