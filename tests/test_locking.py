"""Dovecot's index lock: real Dovecot waits for it, and we wait for whoever holds it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dovecot_index_tool.files import read_file
from dovecot_index_tool.repair.locking import LockTimeout, dovecot_lock
from live_writer import LiveWriter

HOLD_CLASSIC_LOCK = """
import fcntl, sys, time
f = open(sys.argv[1], "r+b")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""
TRY_CLASSIC_LOCK = """
import fcntl, sys
f = open(sys.argv[1], "r+b")
try:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.exit(3)
"""


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "dovecot.index.log"
    path.write_bytes(b"\0" * 40)
    return path


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CLASSIC_LOCK, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _locked_for_others(path: Path) -> bool:
    done = subprocess.run([sys.executable, "-c", TRY_CLASSIC_LOCK, str(path)], check=False)
    return done.returncode == 3


def test_lock_held_by_another_process_times_out(log_file):
    holder = _hold(log_file, 5)
    try:
        started = time.monotonic()
        with pytest.raises(LockTimeout, match="still locked"), dovecot_lock(log_file, timeout=0.3):
            pass
        assert 0.3 <= time.monotonic() - started < 3
    finally:
        holder.kill()
        holder.wait()


def test_lock_is_taken_once_the_holder_lets_go(log_file):
    holder = _hold(log_file, 0.3)
    try:
        with dovecot_lock(log_file, timeout=10):
            assert _locked_for_others(log_file)
    finally:
        holder.wait()
    assert not _locked_for_others(log_file)


def test_reading_the_locked_file_again_keeps_the_lock(log_file):
    with dovecot_lock(log_file, timeout=1):
        read_file(log_file)  # opens and closes another descriptor of the same file
        assert _locked_for_others(log_file)


def test_missing_file_is_not_locked_but_reported(tmp_path):
    with pytest.raises(FileNotFoundError), dovecot_lock(tmp_path / "dovecot.index.log"):
        pass


def test_real_dovecot_waits_while_we_hold_the_index_lock(tmp_path):
    writer = LiveWriter(tmp_path)
    try:
        log = writer.volume / "alice" / "Maildir" / "dovecot.index.log"
        cmd, env = writer.command("alice", "flags", "add", "\\Flagged", "mailbox", "INBOX", "1")
        with dovecot_lock(log, timeout=5):
            change = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
            time.sleep(1.5)
            waited = change.poll() is None
        _, stderr = change.communicate(timeout=60)
        assert waited, f"doveadm did not wait for the lock (exit {change.returncode}: {stderr})"
        assert change.returncode == 0, stderr
    finally:
        shutil.rmtree(writer.base, ignore_errors=True)
