"""``incident``: damage of one layer lands in one group named after that layer, and a
repaired mailbox damaged again is a recurrence.

Why: an operator acts on the layer (call the storage vendor, swap memory, file a
Dovecot bug); a group that mixes layers or names the wrong one costs days. Each
volume is a file system of its own (a tmpfs, so ``st_dev`` differs, needs root) with
copies of real stores damaged the way each layer damages files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from damage import add_u32, header_offset, patch_bytes, patch_u32, read_u32
from dovecot_index_tool.cli import main
from dovecot_index_tool.jobqueue.store import JobQueue
from dovecot_index_tool.ledger.store import Ledger

INBOX = "Maildir/dovecot.index"
CACHE = "Maildir/dovecot.index.cache"


@pytest.fixture
def fleet(tmp_path: Path):
    """Three volumes on three file systems, two maildir users on each."""
    if os.geteuid() != 0:
        pytest.skip("a file system per volume needs root (tmpfs mounts)")
    vols = [tmp_path / f"vol{n}" for n in (1, 2, 3)]
    for vol in vols:
        vol.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(vol)], check=True)
        for user in ("ann", "ben"):
            shutil.copytree(FIXTURES / "maildir/alice", vol / "example.org" / user)
    yield vols
    for vol in vols:
        subprocess.run(["umount", str(vol)], check=False)


def _scan(db: Path, vols: list[Path]) -> None:
    result = CliRunner().invoke(main, ["scan", "-q", "--db", str(db), "--layout",
                                       "{domain}/{user}", "-j", "2", *map(str, vols)])
    assert result.exit_code in (0, 4), result.output


def _incident(db: Path, *args: str) -> dict:
    result = CliRunner().invoke(main, ["incident", "--db", str(db), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _flip_seen(path: Path) -> None:
    at = header_offset("seen_messages_count")
    patch_u32(path, at, read_u32(path, at) ^ 0x2)


def _zero_page(path: Path) -> None:
    patch_bytes(path, 0, bytes(4096))


def _by_kind(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for group in doc["groups"]:
        out.setdefault(group["signature"], []).append(group)
    return out


def test_each_layers_damage_is_one_group_with_that_layer(fleet, tmp_path: Path) -> None:
    vol1, vol2, vol3 = fleet
    for user in ("ann", "ben"):  # storage: aligned zeroed pages, one device, one hour
        _zero_page(vol1 / "example.org" / user / CACHE)
    for vol in (vol2, vol3):  # memory: one flipped bit, each on another device
        _flip_seen(vol / "example.org/ann" / INBOX)
        add_u32(vol / "example.org/ben" / INBOX, header_offset("seen_messages_count"), -1)
    db = tmp_path / "ledger.sqlite3"
    _scan(db, fleet)
    groups = _by_kind(_incident(db))
    assert {k: [g["layer"] for g in gs] for k, gs in groups.items()} == {
        "zeroed-run": ["storage"], "bit-flip": ["memory"], "logical": ["dovecot"]}
    storage = groups["zeroed-run"][0]
    assert storage["volume"] == str(vol1) and storage["device"] == os.stat(vol1).st_dev
    assert {m["user"] for m in storage["mailboxes"]} == {"ann", "ben"}
    assert len(groups["bit-flip"][0]["devices"]) == 2
    assert len(groups["logical"][0]["volumes"]) == 2
    assert _incident(db, "--volume", str(vol1))["groups"] == [storage]


def test_bit_flips_on_one_device_are_not_called_memory(fleet, tmp_path: Path) -> None:
    vol1 = fleet[0]
    for user in ("ann", "ben"):
        _flip_seen(vol1 / "example.org" / user / INBOX)
    db = tmp_path / "ledger.sqlite3"
    _scan(db, [vol1])
    assert [g["layer"] for g in _incident(db)["groups"]] == ["unknown"]


def test_damage_after_a_verified_repair_is_a_recurrence_with_its_signature(
        fleet, tmp_path: Path) -> None:
    vol1 = fleet[0]
    users = [vol1 / "example.org" / u for u in ("ann", "ben")]
    healthy = (users[0] / CACHE).read_bytes()
    for user in users:
        _zero_page(user / CACHE)
    db = tmp_path / "ledger.sqlite3"
    _scan(db, [vol1])
    queue = JobQueue(Ledger.open(db))
    queue.enqueue_volumes([str(vol1)])
    while jobs := queue.claim("w"):  # one at a time: the volume's limit
        assert queue.finish(jobs[0], "w", True, "repaired and verified") == "done"
    for user in users:  # what the repair put back
        (user / CACHE).write_bytes(healthy)
    _scan(db, [vol1])
    clean = _incident(db)
    assert [(r["repaired"], r["recurred"]) for r in clean.pop("recurrence_rates")] == [(2, 0)]
    assert clean == {"groups": [], "recurrences": [], "recurring_signatures": []}
    time.sleep(0.01)
    for user in users:
        _zero_page(user / CACHE)
    _scan(db, [vol1])
    doc = _incident(db)
    assert {(r["user"], tuple(r["signatures"])) for r in doc["recurrences"]} == {
        ("ann", ("zeroed-run",)), ("ben", ("zeroed-run",))}
    assert all(r["since_repair"] > 0 for r in doc["recurrences"])
    assert doc["recurring_signatures"] == [{"signature": "zeroed-run", "mailboxes": 2}]
    assert [(r["volume"], r["repaired"], r["recurred"], r["rate"])
            for r in doc["recurrence_rates"]] == [(str(vol1), 2, 2, 1.0)]
    text = CliRunner().invoke(main, ["incident", "--db", str(db)]).output
    assert "damaged again after a verified repair" in text and "zeroed-run" in text


def test_incident_without_a_ledger_is_one_line_and_exit_8(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["incident", "--db", str(tmp_path / "none.sqlite3")])
    assert result.exit_code == 8 and "no ledger" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_bad_since_is_a_usage_error(tmp_path: Path) -> None:
    Ledger.open(tmp_path / "l.sqlite3").close()
    result = subprocess.run([sys.executable, "-m", "dovecot_index_tool", "incident", "--db",
                             str(tmp_path / "l.sqlite3"), "--since", "yesterday"],
                            capture_output=True, text=True)
    assert result.returncode == 16 and "Traceback" not in result.stderr, result.stderr


def test_scan_counts_recurrences_in_its_summary_and_prometheus(fleet, tmp_path: Path) -> None:
    vol1 = fleet[0]
    user = vol1 / "example.org/ann"
    healthy = (user / CACHE).read_bytes()
    _zero_page(user / CACHE)
    db = tmp_path / "ledger.sqlite3"
    _scan(db, [vol1])
    queue = JobQueue(Ledger.open(db))
    queue.enqueue(queue.candidates(user="ann"))
    job = queue.claim("w")[0]
    (user / CACHE).write_bytes(healthy)
    queue.finish(job, "w", True, "repaired and verified")
    assert [j.not_before - j.created for j in queue.jobs(kind="recheck")] == [3600, 86400]
    assert [j.kind for j in queue.jobs()] == ["repair"]  # re-checks are not repairs
    _scan(db, [vol1])
    time.sleep(0.01)
    _zero_page(user / CACHE)
    prom = tmp_path / "scan.prom"
    result = CliRunner().invoke(main, ["scan", "--db", str(db), "--layout", "{domain}/{user}",
                                       "--format", "json", "--prometheus", str(prom),
                                       str(vol1)])
    summary = json.loads(result.output)["summary"]
    assert summary["recurred"] == 1 and summary["recurred_by_volume"] == {str(vol1): 1}
    assert f'dovecot_index_tool_recurred_mailboxes{{volume="{vol1}"}} 1' in prom.read_text()


def test_the_injected_fleet_gets_one_group_per_mixture_with_its_layer(tmp_path: Path) -> None:
    """scripts/incident-fleet: real stores from make-fixtures --scale, one tmpfs per
    volume, each layer's damage, and a recurrence found by the queue's re-check."""
    if os.geteuid() != 0 or shutil.which("doveadm") is None:
        pytest.skip("needs root (tmpfs mounts) and Dovecot (make-fixtures)")
    script = Path(__file__).resolve().parent.parent / "scripts/incident-fleet"
    result = subprocess.run([sys.executable, str(script), "--json", str(tmp_path / "fleet")],
                            capture_output=True, text=True, timeout=600)
    doc = json.loads(result.stdout)
    assert result.returncode == 0, (doc["problems"], result.stderr)
    assert {e: {g: n for g, n in row.items() if n} for e, row in doc["confusion"].items()} == {
        "storage": {"storage": 2}, "memory": {"memory": 1}, "dovecot": {"dovecot": 1},
        "unknown": {}}
    assert doc["recurred"] and doc["incident"]["recurrence_rates"][0]["rate"] == 1.0


def test_recheck_delays_are_a_setting_of_the_ledger(tmp_path: Path) -> None:
    db = tmp_path / "l.sqlite3"
    Ledger.open(db).close()
    run = CliRunner().invoke(main, ["queue", "rechecks", "--db", str(db), "30m", "2d"])
    assert run.exit_code == 0 and "0.5 h, 48 h" in run.output, run.output
    bad = CliRunner().invoke(main, ["queue", "rechecks", "--db", str(db), "soon"])
    assert bad.exit_code == 16
    off = CliRunner().invoke(main, ["queue", "rechecks", "--db", str(db), "--off"])
    assert "none" in off.output


def test_a_recheck_that_could_not_read_the_files_never_says_healthy(tmp_path: Path,
                                                                    monkeypatch) -> None:
    import dataclasses
    from types import SimpleNamespace

    from dovecot_index_tool.check.findings import Finding
    from dovecot_index_tool.ledger.store import Ledger
    from dovecot_index_tool.scan import recheck

    home = tmp_path / "vol" / "alice"
    shutil.copytree(FIXTURES / "maildir" / "alice", home)
    db = tmp_path / "ledger.sqlite3"
    job = SimpleNamespace(id=1, path=str(home / "Maildir"), mailbox="INBOX",
                          volume=str(tmp_path / "vol"), tenant=None, user="alice")
    action = recheck.Recheck(lambda: Ledger.open(str(db)))
    assert action(job).endswith(": healthy")

    real = recheck.scan_mailbox

    def unreadable(task):
        outcome = real(task)
        lost = Finding("scanner.unreadable", str(home / "Maildir" / "dovecot.index.log"),
                       "Permission denied")
        report = dataclasses.replace(outcome.report, findings=(lost,))
        return dataclasses.replace(outcome, report=report)

    monkeypatch.setattr(recheck, "scan_mailbox", unreadable)
    said = action(job)
    assert "could not check: scanner.unreadable" in said and "healthy" not in said
