"""Scan progress: weighted by bytes, JSON lines under --log-json (borg's
``progress_percent``), at most twice a second, and nothing when stderr is not a
terminal and --log-json is not given."""

from __future__ import annotations

import io
import json
import logging
import time

from click.testing import CliRunner
from test_scan import volumes  # noqa: F401  (fixture)

from dovecot_index_tool.cli import main
from dovecot_index_tool.cli.logs import JsonFormatter, setup_logging
from dovecot_index_tool.present.progress import ByteTotal, ScanProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_users_not_yet_listed_count_at_the_average_of_those_listed() -> None:
    weights = ByteTotal(users=4)
    weights.listed, weights.expected = 2, 300
    assert weights.total == 600
    weights.current = 700  # never behind what was read
    assert weights.total == 700


def test_a_returned_task_replaces_its_estimate_with_what_it_read() -> None:
    progress = ScanProgress(enabled=False)
    progress.users(1)
    progress.expect(100)
    progress.listed()
    progress.settle(100, 120)
    progress.settle(0, 30)  # the list index: read, never estimated
    assert (progress.bytes.current, progress.bytes.total) == (150, 150)


def test_progress_json_lines_parse_and_come_at_most_twice_a_second() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = ScanProgress(enabled=False, json_stream=stream, clock=clock)
    progress.users(3)
    for _ in range(100):  # 100 mailboxes within 0.3 s: one line
        progress.expect(10)
        progress.settle(10, 10)
        progress.done(1)
        clock.now += 0.003
    assert len(_lines(stream)) == 1
    clock.now += 0.5
    progress.settle(0, 0)
    progress.paused("load 3.10 per CPU above 1.5")  # a pause is shown at once
    progress.close()
    lines = _lines(stream)
    assert len(lines) == 4
    assert {line["type"] for line in lines} == {"progress_percent"}
    assert [line["finished"] for line in lines] == [False, False, False, True]
    assert "paused (load 3.10" in lines[2]["message"]
    last = lines[-1]
    assert (last["current"], last["total"], last["mailboxes"]) == (1000, 1000, 100)
    assert isinstance(last["time"], float)


def test_scan_under_log_json_writes_only_json_lines_on_stderr(volumes) -> None:  # noqa: F811
    started = time.monotonic()
    result = CliRunner().invoke(main, [
        "scan", "--db", str(volumes["db"]), "--layout", "{domain}/{user}", "-j", "2",
        "--format", "ndjson", "--log-json", str(volumes["vol1"]), str(volumes["vol2"]),
    ])
    elapsed = time.monotonic() - started
    assert result.exit_code & 8 == 0, result.output
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    progress = [line for line in lines if line["type"] == "progress_percent"]
    assert progress and progress[-1]["finished"] and not any(p["finished"] for p in progress[:-1])
    read = sum(box["bytes"] for box in map(json.loads, result.stdout.splitlines())
               if box["type"] == "mailbox" and box["reread"])
    assert progress[-1]["current"] == progress[-1]["total"] == read > 0
    assert progress[-1]["users_done"] == progress[-1]["users"] == 5
    assert len(progress) <= 2 + elapsed / 0.5  # throttled, not one line per mailbox


def test_no_progress_when_stderr_is_not_a_terminal(volumes) -> None:  # noqa: F811
    result = CliRunner().invoke(main, [
        "scan", "--db", str(volumes["db"]), "--layout", "{domain}/{user}", "-j", "2",
        "--format", "ndjson", str(volumes["vol1"]),
    ])
    assert result.exit_code & 8 == 0, result.output
    assert result.stderr == ""


def test_log_messages_become_borg_style_json_lines() -> None:
    setup_logging("warning", as_json=True)
    try:
        assert all(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)
        record = logging.LogRecord("dovecot_index_tool.load", logging.WARNING, __file__, 1,
                                   "pausing: %s", ("load 3.10",), None)
        line = json.loads(JsonFormatter().format(record))
        assert line["type"] == "log_message" and line["levelname"] == "WARNING"
        assert line["message"] == "pausing: load 3.10" and line["time"] == record.created
    finally:
        setup_logging("warning")
