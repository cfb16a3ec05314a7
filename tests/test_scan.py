"""``scan`` over several volumes: discovery, workers, ledger, read-only, live mailboxes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from dovecot_index_tool.check.findings import Finding
from dovecot_index_tool.cli import main
from dovecot_index_tool.discovery import MailRoot
from dovecot_index_tool.ledger.lock import LedgerLock
from dovecot_index_tool.ledger.store import Ledger, MailboxRecord
from dovecot_index_tool.scan import listing


def copy_user(src: str, dest: Path) -> Path:
    shutil.copytree(FIXTURES / src, dest)
    return dest


def bump(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] += 1
    path.write_bytes(bytes(data))


@pytest.fixture
def volumes(tmp_path: Path) -> dict[str, Path]:
    """vol1: maildir and sdbox users under {domain}/{user}; vol2: mdbox users; vol3: split
    maildir (mail, index and control trees). One damaged mailbox on each volume."""
    vol1, vol2, vol3 = tmp_path / "vol1", tmp_path / "vol2", tmp_path / "vol3"
    copy_user("maildir/alice", vol1 / "example.org/alice")
    copy_user("sdbox/bob", vol1 / "example.org/bob")
    copy_user("sdbox/bob", vol1 / "example.net/bert")
    copy_user("mdbox/carol", vol2 / "example.org/carol")
    copy_user("mdbox/carol", vol2 / "example.com/cora")
    split = FIXTURES / "maildir-split"
    shutil.copytree(split / "home/erin", vol3 / "home/example.org/erin")
    shutil.copytree(split / "index/erin", vol3 / "index/example.org/erin")
    shutil.copytree(split / "control/erin", vol3 / "control/example.org/erin")
    bump(vol1 / "example.org/bob/sdbox/mailboxes/One/dbox-Mails/dovecot.index", 40)
    bump(vol2 / "example.com/cora/mdbox/mailboxes/INBOX/dbox-Mails/dovecot.index", 40)
    bump(vol3 / "index/example.org/erin/.INBOX/dovecot.index", 40)
    return {"vol1": vol1, "vol2": vol2, "vol3": vol3, "db": tmp_path / "ledger.sqlite3"}


def scan(
    v: dict[str, Path], *extra: str, vols: tuple[str, ...] = ("vol1", "vol2")
) -> tuple[int, list[dict]]:
    args = [
        "scan",
        "--db",
        str(v["db"]),
        "--layout",
        "{domain}/{user}",
        "-j",
        "2",
        "--format",
        "ndjson",
        *extra,
        *(str(v.get(n, v["db"].parent / n)) for n in vols),
    ]
    result = CliRunner().invoke(main, args)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, [
        json.loads(line) for line in result.output.splitlines() if line.startswith("{")
    ]


def affected_names(lines: list[dict]) -> set[tuple[str, str]]:
    return {
        (m["user"], m["mailbox"])
        for m in lines
        if m["type"] == "mailbox" and any(f["severity"] != "info" for f in m["findings"])
    }


def test_every_mailbox_found_and_only_damaged_ones_reported(volumes) -> None:
    code, lines = scan(volumes)
    assert code == 4
    boxes = [m for m in lines if m["type"] == "mailbox"]
    users = {m["user"] for m in boxes}
    assert users == {"alice", "bob", "bert", "carol", "cora"}
    per_user = {u: {m["mailbox"] for m in boxes if m["user"] == u} for u in users}
    assert {"INBOX", "Empty", "One", "Lists/dovecot"} <= per_user["alice"]
    assert "(mdbox map)" in per_user["carol"]
    assert affected_names(lines) == {("bob", "One"), ("cora", "INBOX")}
    tenants = {m["user"]: m["tenant"] for m in boxes}
    assert tenants["bert"] == "example.net"
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["affected"] == 2


def test_split_index_and_control_trees_are_paired_by_user(volumes) -> None:
    vol3 = volumes["vol3"]
    args = [
        "scan",
        "--db",
        str(volumes["db"]),
        "--layout",
        "home/{domain}/{user}",
        "-q",
        "--index-root",
        str(vol3 / "index"),
        "--control-root",
        str(vol3 / "control"),
        "--format",
        "ndjson",
        str(vol3),
    ]
    result = CliRunner().invoke(main, args)
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 4
    assert affected_names(lines) == {("erin", "INBOX")}
    inbox = next(m for m in lines if m.get("mailbox") == "INBOX")
    assert inbox["path"].endswith("index/example.org/erin/.INBOX")


def test_scan_changes_no_byte_and_no_mtime(volumes) -> None:
    def state(root: Path) -> dict[str, tuple]:
        out = {}
        for p in sorted(root.rglob("*")):
            st = p.lstat()
            digest = hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else None
            out[str(p)] = (st.st_mtime_ns, st.st_size, st.st_mode, digest)
        return out

    before = {n: state(volumes[n]) for n in ("vol1", "vol2")}
    scan(volumes)
    assert {n: state(volumes[n]) for n in ("vol1", "vol2")} == before


def test_ledger_knows_who_is_affected_since_when_and_resolves(volumes) -> None:
    scan(volumes)
    ledger = Ledger.open(volumes["db"])
    rows = ledger.affected(tenant="example.com")
    assert [(r["user"], r["name"]) for r in rows] == [("cora", "INBOX")]
    first_seen = rows[0]["since"]
    ledger.close()
    # the damage persists: first_seen is kept; bob's mailbox is repaired: resolved
    shutil.rmtree(volumes["vol1"] / "example.org/bob")
    copy_user("sdbox/bob", volumes["vol1"] / "example.org/bob")
    scan(volumes)
    ledger = Ledger.open(volumes["db"])
    assert ledger.affected(tenant="example.com")[0]["since"] == first_seen
    assert ledger.affected(tenant="example.org") == []
    resolved = ledger.db.one("SELECT COUNT(*) AS n FROM findings WHERE resolved IS NOT NULL")["n"]
    assert resolved >= 1
    assert len(ledger.runs()) == 2
    ledger.close()


def test_incremental_rerun_reads_nothing_unchanged_but_still_reports(volumes) -> None:
    scan(volumes)
    code, lines = scan(volumes, "--incremental")
    boxes = [m for m in lines if m["type"] == "mailbox" and not m["mailbox"].startswith("(")]
    assert boxes and not any(m["reread"] for m in boxes)
    assert code == 4
    assert affected_names(lines) == {("bob", "One"), ("cora", "INBOX")}
    bump(volumes["vol1"] / "example.org/alice/Maildir/dovecot.index", 40)
    code, lines = scan(volumes, "--incremental")
    reread = {
        (m["user"], m["mailbox"])
        for m in lines
        if m["type"] == "mailbox" and m["reread"] and not m["mailbox"].startswith("(")
    }
    assert reread == {("alice", "INBOX")}
    assert ("alice", "INBOX") in affected_names(lines)


def test_a_mailbox_that_changed_while_it_was_read_is_read_again_by_the_next_run(
        volumes, monkeypatch) -> None:
    """Healthy as read, but written to while it was read: what the run checked is the
    state before the change, so the next --incremental run reads the mailbox again."""
    from dovecot_index_tool.scan import worker

    inbox = volumes["vol1"] / "example.org/alice/Maildir"
    checked = worker._check

    def written_meanwhile(task, refs):
        report = checked(task, refs)
        if Path(task.location.index_dir) == inbox:
            log = inbox / "dovecot.index.log"
            st = log.stat()
            os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        return report

    monkeypatch.setattr(worker, "_check", written_meanwhile)  # forked workers see it
    scan(volumes)
    monkeypatch.setattr(worker, "_check", checked)
    _, lines = scan(volumes, "--incremental")
    reread = {(m["user"], m["mailbox"]) for m in lines
              if m["type"] == "mailbox" and m["reread"] and not m["mailbox"].startswith("(")}
    assert ("alice", "INBOX") in reread
    assert ("alice", "One") not in reread


def test_a_file_that_vanished_during_the_read_is_read_again_before_a_verdict(
        volumes, monkeypatch) -> None:
    """The damaged index is away while the first read runs and back (a new inode) after
    it: that read saw no index, which is no evidence that the damage is gone."""
    from dovecot_index_tool.scan import worker

    box = volumes["vol1"] / "example.org/bob/sdbox/mailboxes/One/dbox-Mails"
    index, aside = box / "dovecot.index", volumes["db"].parent / "aside"
    checked, away = worker._check, []

    def vanished_meanwhile(task, refs):
        if Path(task.location.index_dir) != box or away:
            return checked(task, refs)
        away.append(os.rename(index, aside))
        report = checked(task, refs)
        shutil.copy2(aside, index)
        return report

    monkeypatch.setattr(worker, "_check", vanished_meanwhile)  # forked workers see it
    code, lines = scan(volumes, "-j", "1")
    assert code & 4
    assert ("bob", "One") in affected_names(lines)


def test_a_file_whose_permissions_changed_since_the_last_run_is_read_again(volumes) -> None:
    """A chmod changes no byte, size or mtime but may make the file unreadable: the
    --incremental run reads the mailbox again rather than repeat the last verdict."""
    scan(volumes)
    (volumes["vol1"] / "example.org/alice/Maildir/.One/dovecot.index.log").chmod(0o600)
    _, lines = scan(volumes, "--incremental")
    reread = {(m["user"], m["mailbox"]) for m in lines
              if m["type"] == "mailbox" and m["reread"] and not m["mailbox"].startswith("(")}
    assert reread == {("alice", "One")}


def test_a_mailbox_that_could_not_be_checked_is_read_again_by_every_run(volumes) -> None:
    cache = volumes["vol1"] / "example.org/alice/Maildir/.One/dovecot.index.cache"
    cache.unlink()
    cache.mkdir()  # reading it fails with EISDIR, even as root
    for extra in ((), ("--incremental",), ("--incremental",)):
        code, lines = scan(volumes, *extra)
        one = next(m for m in lines if m["type"] == "mailbox"
                   and (m["user"], m["mailbox"]) == ("alice", "One"))
        assert one["reread"] and code & 8
    cache.rmdir()
    code, lines = scan(volumes, "--incremental")
    assert not code & 8


def test_damage_behind_a_directory_a_run_could_not_look_into_stays_open(volumes) -> None:
    """bob's home cannot be looked into for one run (a link loop where it was; a
    refused directory is the same to the ledger): his damage was not seen, but not seen
    gone either, and the next --incremental run still reports it."""
    scan(volumes)
    home, away = volumes["vol1"] / "example.org/bob", volumes["db"].parent / "bob.away"
    home.rename(away)
    home.symlink_to("bob")  # lstat of anything under it: ELOOP, not "missing"
    code, lines = scan(volumes)
    assert code & 8 and lines[-1]["could_not_check"]
    home.unlink()
    away.rename(home)
    code, lines = scan(volumes, "--incremental")
    assert code & 4
    assert ("bob", "One") in affected_names(lines)


def test_a_map_that_changed_while_it_was_read_is_read_again_by_the_next_run(
        volumes, monkeypatch) -> None:
    """The same for a user's files: the mdbox map is kept as it was before its read."""
    from dovecot_index_tool.check import runner

    storage = volumes["vol2"] / "example.org/carol/mdbox/storage"
    checked = runner.check_user_files

    def written_meanwhile(user, references, mailboxes=None):
        reports = checked(user, references, mailboxes)
        if user.map_index is not None and Path(user.map_index.path).parent == storage:
            log = storage / "dovecot.map.index.log"
            st = log.stat()
            os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        return reports

    monkeypatch.setattr(runner, "check_user_files", written_meanwhile)  # forked workers
    scan(volumes)
    monkeypatch.setattr(runner, "check_user_files", checked)
    _, lines = scan(volumes, "--incremental")
    reread = {(m["user"], m["mailbox"]) for m in lines
              if m["type"] == "mailbox" and m["reread"]}
    assert ("carol", "(mdbox map)") in reread
    assert ("cora", "(mdbox map)") not in reread


def test_a_scan_forks_its_workers_where_python_would_start_them_otherwise(volumes) -> None:
    """Python 3.14 starts child processes with forkserver by default; the scan's
    workers and the logging relay they write through need fork."""
    program = (
        "import multiprocessing, sys\n"
        "multiprocessing.set_start_method('forkserver')\n"
        "from dovecot_index_tool.cli.app import main\n"
        "main.main(sys.argv[1:], prog_name='dovecot-index-tool')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, "scan", "--db", str(volumes["db"]), "--layout",
         "{domain}/{user}", "-j", "2", "--format", "ndjson", str(volumes["vol1"])],
        capture_output=True, text=True, timeout=120, check=False)
    assert "internal error" not in done.stderr, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    assert {m["user"] for m in lines if m["type"] == "mailbox"} == {"alice", "bob", "bert"}
    assert done.returncode == 4  # bob's damage, as under fork


def _names(lines: list[dict], user: str) -> set[str]:
    return {m["mailbox"] for m in lines if m["type"] == "mailbox" and m["user"] == user}


def _settled() -> None:
    """Past the time within which a listing is not trusted (a directory this new may
    have changed while it was read)."""
    time.sleep(listing.RACY_NS / 1e9 + 0.05)


def test_incremental_rerun_takes_each_users_mailboxes_from_the_last_listing(
        volumes, monkeypatch) -> None:
    _settled()
    _, full = scan(volumes)
    from dovecot_index_tool.scan import home

    def not_again(_root):
        raise AssertionError("mailboxes looked for again")

    monkeypatch.setattr(home, "iter_mailboxes", not_again)  # forked workers see it
    code, again = scan(volumes, "--incremental")
    assert code == 4
    assert _boxes(again) == _boxes(full) and len(_boxes(full)) > 10
    assert not any(m["reread"] for m in again if m["type"] == "mailbox")


def _boxes(lines: list[dict]) -> list[tuple]:
    return sorted((m["user"], m["mailbox"], m["path"], m["format"], m["bytes"],
                   tuple(f["check"] for f in m["findings"]))
                  for m in lines if m["type"] == "mailbox")


def test_incremental_rerun_finds_mailboxes_added_and_removed_since_the_last_listing(
        volumes) -> None:
    _settled()
    scan(volumes)
    maildir = volumes["vol1"] / "example.org/alice/Maildir"
    shutil.copytree(maildir / ".One", maildir / ".Two")
    shutil.rmtree(maildir / ".Empty")
    _, lines = scan(volumes, "--incremental")
    names = _names(lines, "alice")
    assert "Two" in names and "Empty" not in names and "One" in names
    assert {m["mailbox"] for m in lines if m["type"] == "mailbox" and m["reread"]
            and m["user"] == "alice"} >= {"Two"}


def test_listing_of_directories_changed_while_they_were_read_is_not_kept(tmp_path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    root = MailRoot(fresh, "maildir", "fs", fresh, fresh, fresh, None, None)
    asked = listing.inputs(fresh, None, None, None)
    assert listing.made(asked, {str(fresh)}, root, [], time.time_ns()) is None
    later = time.time_ns() + 2 * listing.RACY_NS
    kept = listing.made(asked, {str(fresh)}, root, [], later)
    assert kept is not None and listing.decode(listing.encode(kept)) == kept
    assert listing.still_holds(kept, asked)
    (fresh / "new-folder").mkdir()
    assert not listing.still_holds(kept, asked)


def _a_listing(tmp_path: Path) -> tuple[listing.Listing, tuple]:
    fresh = tmp_path / "fresh"
    fresh.mkdir(exist_ok=True)
    root = MailRoot(fresh, "maildir", "fs", fresh, fresh, fresh, None, None)
    asked = listing.inputs(fresh, None, None, None)
    kept = listing.made(asked, {str(fresh)}, root, [], time.time_ns() + 2 * listing.RACY_NS)
    assert kept is not None
    return kept, asked


def _garbled(kept: listing.Listing, **doc) -> str:
    return json.dumps({**json.loads(listing.encode(kept)), **doc})


def test_a_stored_listing_that_does_not_decode_is_no_listing(tmp_path) -> None:
    kept, _ = _a_listing(tmp_path)
    root = json.loads(listing.encode(kept))["root"]
    for text in (None, "", "{", "[]", '"x"', '{"version": 1}', "[" * 100_000,
                 _garbled(kept, root=5), _garbled(kept, root=None),
                 _garbled(kept, root={**root, "root": None}),
                 _garbled(kept, mailboxes=["abcde"]), _garbled(kept, mailboxes=[[1, 2]]),
                 _garbled(kept, dirs="abc"), _garbled(kept, version=2)):
        assert listing.decode(text) is None, text


def test_a_listing_whose_directories_cannot_be_stated_does_not_hold(tmp_path,
                                                                      monkeypatch) -> None:
    kept, asked = _a_listing(tmp_path)
    odd = listing.Listing(kept.inputs, ("bad\0name", "\udcff"), kept.stamps, kept.root, ())
    assert not listing.still_holds(odd, asked)

    def refused(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(listing.os, "stat", refused)
    assert not listing.still_holds(kept, asked)
    assert listing.made(asked, {str(tmp_path)}, kept.root, [], time.time_ns() * 2) is None


def test_a_listing_answers_only_for_the_same_absolute_trees(tmp_path, monkeypatch) -> None:
    for where in ("a", "b"):
        (tmp_path / where).mkdir()
    monkeypatch.chdir(tmp_path / "a")
    here = listing.inputs(Path("home"), Path("idx"), None, None)
    monkeypatch.chdir(tmp_path / "b")
    assert listing.inputs(Path("home"), Path("idx"), None, None) != here
    assert listing.inputs(tmp_path / "a/home", tmp_path / "a/idx", None, None) == here


def test_missing_or_empty_volume_is_never_clean(volumes, tmp_path: Path) -> None:
    empty = tmp_path / "mnt"
    empty.mkdir()
    for vol in (empty, tmp_path / "absent"):
        result = CliRunner().invoke(main, ["scan", "--db", str(volumes["db"]), "-q", str(vol)])
        assert result.exit_code & 8, result.output
        assert "volume" in result.output


def test_second_scan_on_a_locked_ledger_refuses(volumes) -> None:
    with LedgerLock(volumes["db"]):
        code, _ = scan(volumes)
    assert code == 8


def test_time_budget_stops_and_next_run_starts_with_the_least_recent(volumes) -> None:
    _, lines = scan(volumes, "--max-duration", "0")
    assert lines[-1]["status"] == "time budget reached"
    scan(volumes)
    ledger = Ledger.open(volumes["db"])
    assert ledger.runs()[0]["status"] == "time budget reached"
    ledger.close()


@pytest.mark.dovecot
def test_live_dovecot_writes_during_scan_give_no_false_alarm(tmp_path: Path) -> None:
    from live_writer import LiveWriter

    writer = LiveWriter(tmp_path)
    with writer.running():
        for _ in range(10):
            _, lines = _scan_plain(writer.volume, tmp_path / "db")
            bad = [
                (m["mailbox"], f["check"])
                for m in lines
                if m["type"] == "mailbox"
                for f in m["findings"]
                if f["severity"] != "info"
            ]
            assert not bad, bad
    assert writer.operations > 10
    assert not writer.errors, writer.errors[:3]


def _scan_plain(volume: Path, db: Path) -> tuple[int, list[dict]]:
    result = CliRunner().invoke(
        main, ["scan", "--db", str(db), "-j", "2", "--format", "ndjson", str(volume)]
    )
    return result.exit_code, [
        json.loads(line) for line in result.output.splitlines() if line.startswith("{")
    ]


os.environ.setdefault("COLUMNS", "200")


def test_mailbox_past_its_time_limit_becomes_a_finding_and_the_scan_goes_on(volumes) -> None:
    code, lines = scan(volumes, "--mailbox-timeout", "0.0001")
    checks = {f["check"] for m in lines if m["type"] == "mailbox" for f in m["findings"]}
    assert "scanner.timeout" in checks
    assert code & 8
    assert lines[-1]["mailboxes"] > 10


def test_a_crashing_check_becomes_a_finding_and_the_scan_goes_on(volumes, monkeypatch) -> None:
    from dovecot_index_tool.check import runner

    def broken(_index):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(runner, "check_cache", broken)  # workers are forked: they see it
    code, lines = scan(volumes)
    boxes = [m for m in lines if m["type"] == "mailbox" and not m["mailbox"].startswith("(")]
    assert boxes and all(any(f["check"] == "scanner.error" for f in m["findings"]) for m in boxes)
    assert code & 8


@pytest.mark.dovecot
def test_fresh_multi_volume_store_every_damage_found_and_no_healthy_one(
    fresh_store: Path, tmp_path: Path
) -> None:
    """A store made now by Dovecot (never seen by the tests): plain volumes and a split
    one; one mailbox damaged in each format; exactly those are reported."""
    vols = tmp_path / "vols"
    for name in ("maildir", "maildir-fs", "sdbox", "mdbox", "maildir-split"):
        shutil.copytree(fresh_store / name, vols / name)
    damaged = {
        ("alice", "INBOX"): vols / "maildir/alice/Maildir/dovecot.index",
        ("dave", "One"): vols / "maildir-fs/dave/Maildir/One/dovecot.index",
        ("bob", "INBOX"): vols / "sdbox/bob/sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index",
        ("carol", "One"): vols / "mdbox/carol/mdbox/mailboxes/One/dbox-Mails/dovecot.index",
        ("erin", "INBOX"): vols / "maildir-split/index/erin/.INBOX/dovecot.index",
    }
    for path in damaged.values():
        bump(path, 40)  # seen_messages_count: Dovecot trusts it, users see a wrong count
    db = str(tmp_path / "db")
    lines = []
    for args in (
        [str(vols / n) for n in ("maildir", "maildir-fs", "sdbox", "mdbox")],
        [
            "--layout",
            "home/{user}",
            "--index-root",
            str(vols / "maildir-split/index"),
            "--control-root",
            str(vols / "maildir-split/control"),
            str(vols / "maildir-split"),
        ],
    ):
        result = CliRunner().invoke(main, ["scan", "--db", db, "-q", "--format", "ndjson", *args])
        assert result.exit_code == 4, result.output
        lines += [json.loads(x) for x in result.output.splitlines() if x.startswith("{")]
    boxes = [m for m in lines if m["type"] == "mailbox" and not m["mailbox"].startswith("(")]
    assert len(boxes) == 5 * 4  # four mailboxes per user, all found
    assert affected_names(lines) == set(damaged)


def test_mailbox_that_cannot_be_looked_into_is_never_clean(tmp_path: Path) -> None:
    """Without root's override of permissions, an unreadable mailbox is reported (exit 8)."""
    import subprocess
    import sys
    import tempfile

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop the permission override")
    base = Path(tempfile.mkdtemp(prefix="unreadable-"))
    try:
        base.chmod(0o755)
        copy_user("sdbox/bob", base / "vol/bob")
        (base / "vol/bob/sdbox/mailboxes/INBOX").chmod(0)
        drop = [
            "setpriv",
            "--bounding-set",
            "-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
        ]
        done = subprocess.run(
            [
                *drop,
                sys.executable,
                "-m",
                "dovecot_index_tool",
                "scan",
                "--db",
                str(base / "db"),
                "-q",
                "--format",
                "ndjson",
                str(base / "vol"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
        checks = {f["check"] for m in lines if m["type"] == "mailbox" for f in m["findings"]}
        assert "scanner.unreadable" in checks, done.stdout + done.stderr
        assert done.returncode & 8
    finally:
        (base / "vol/bob/sdbox/mailboxes/INBOX").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_prometheus_textfile_is_written_atomically_and_parses(volumes, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    prom = tmp_path / "dovecot_index_tool.prom"
    code, _ = scan(volumes, "--prometheus", str(prom))
    assert code == 4
    families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    affected = {
        (s.labels["volume"], s.labels["severity"]): s.value
        for s in families["dovecot_index_tool_scan_affected_mailboxes"].samples
    }
    assert affected[(str(volumes["vol1"]), "error")] == 1
    assert affected[(str(volumes["vol2"]), "error")] == 1
    success = families["dovecot_index_tool_scan_last_success_timestamp_seconds"].samples[0].value
    assert success > 1.6e9
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dovecot_index_tool")]
    scan(volumes, "--prometheus", str(prom), vols=("vol1", "vol2", "missing"))
    again = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    kept = again["dovecot_index_tool_scan_last_success_timestamp_seconds"].samples[0].value
    assert kept == success  # a failed run keeps the last success time
    assert again["dovecot_index_tool_scan_volume_errors"].samples[0].value == 1


def test_silent_if_healthy_prints_only_when_something_needs_a_look(volumes) -> None:
    healthy = CliRunner().invoke(
        main,
        ["scan", "--db", str(volumes["db"]), "-q", "--silent-if-healthy", str(FIXTURES / "sdbox")],
    )
    assert healthy.exit_code == 0 and healthy.output == ""
    damaged = CliRunner().invoke(
        main,
        [
            "scan",
            "--db",
            str(volumes["db"]),
            "-q",
            "--silent-if-healthy",
            "--layout",
            "{domain}/{user}",
            str(volumes["vol1"]),
        ],
    )
    assert damaged.exit_code == 4 and "affected" in damaged.output


def test_ndjson_findings_have_one_schema_whether_read_again_or_taken_from_the_ledger(
        volumes) -> None:
    _, first = scan(volumes)
    _, again = scan(volumes, "--incremental")

    def findings(lines, reread):
        return [f for m in lines if m["type"] == "mailbox" and m["reread"] is reread
                for f in m["findings"]]

    read, stored = findings(first, True), findings(again, False)
    assert read and stored
    assert {tuple(sorted(f)) for f in read} == {tuple(sorted(f)) for f in stored}
    seen = {(f["check"], f["file"]): f["first_seen"] for f in read}
    assert all(seen[(f["check"], f["file"])] == f["first_seen"] for f in stored)


def test_a_ledger_that_cannot_be_reached_is_one_line_and_exit_8(volumes) -> None:
    result = CliRunner().invoke(main, ["scan", "-q", "--db", "postgresql://127.0.0.1:1/x",
                                       str(volumes["vol1"])])

    assert result.exit_code == 8, result.output
    assert result.stderr.startswith("error: ledger:") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_a_damaged_sqlite_ledger_is_one_line_and_exit_8(volumes) -> None:
    db = volumes["db"]
    scan(volumes)
    with open(db, "r+b") as f:  # four pages overwritten, as a failing disk would
        f.seek(4096 * 3)
        f.write(random.Random(3).randbytes(4096 * 4))

    for command in (["scan", "-q", "--db", str(db), str(volumes["vol1"])],
                    ["report", "--db", str(db), "--format", "json"]):
        result = CliRunner().invoke(main, command)
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 8), result.output
        if result.exit_code == 8:
            assert result.stderr.startswith("error: ledger:")


def test_a_user_symlink_loop_is_one_finding_and_the_rest_of_the_volume_is_scanned(
        tmp_path) -> None:
    volume = tmp_path / "vol"
    volume.mkdir()
    shutil.copytree(FIXTURES / "maildir" / "alice", volume / "alice", symlinks=True)
    (volume / "a").symlink_to("b")
    (volume / "b").symlink_to("a")

    result = CliRunner().invoke(main, ["scan", "-q", "--db", str(tmp_path / "l.sqlite3"),
                                       "--format", "ndjson", str(volume)])

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    boxes = [m for m in lines if m["type"] == "mailbox"]
    assert result.exit_code == 8, result.output
    assert {m["user"] for m in boxes} == {"alice", "a", "b"}
    assert all(f["check"] == "scanner.unreadable" for m in boxes if m["user"] in "ab"
               for f in m["findings"])
    assert lines[-1]["volume_errors"] == []


def _split_store_with_damage(tmp_path: Path) -> Path:
    store = tmp_path / "vs"
    shutil.copytree(FIXTURES / "maildir-split", store, symlinks=True)
    for sub in ("cur", "new", "tmp"):
        (store / "home/erin/Maildir" / sub).mkdir(exist_ok=True)
    os.truncate(store / "index/erin/.One/dovecot.index", 100)
    return store


def test_a_scan_that_misses_the_index_roots_could_not_check_and_resolves_nothing(
        tmp_path) -> None:
    store = _split_store_with_damage(tmp_path)
    db = str(tmp_path / "l.sqlite3")
    with_roots = ["scan", "-q", "--db", db, "--layout", "home/{user}", "--index-root",
                  str(store / "index"), "--control-root", str(store / "control"), str(store)]
    assert CliRunner().invoke(main, with_roots).exit_code == 4

    without = CliRunner().invoke(main, ["scan", "-q", "--db", db, "--layout", "home/{user}",
                                        "--format", "json", str(store)])

    assert without.exit_code == 8, without.output
    checks = {f["check"] for m in json.loads(without.stdout)["mailboxes"]
              for f in m["findings"]}
    assert "scanner.state-elsewhere" in checks
    report = json.loads(CliRunner().invoke(main, ["report", "--db", db, "--format", "json"])
                        .stdout)
    one = [r for r in report["mailboxes"] if r["mailbox"] == "One"]
    assert one and all(r["state"] != "repaired" for r in one), one


def test_index_root_means_a_tree_of_users_in_check_too(tmp_path) -> None:
    """The tree scan takes finds the user's own directory for check; the user's own
    directory works as before; one that fits neither is a usage error naming the option,
    and one user's directory given to scan is too."""
    store = _split_store_with_damage(tmp_path)
    home = str(store / "home/erin/Maildir")
    trees = ["--index-root", str(store / "index"), "--control-root", str(store / "control")]
    own = ["--index-root", str(store / "index/erin"),
           "--control-root", str(store / "control/erin")]
    outputs = []
    for roots in (trees, own):
        result = CliRunner().invoke(main, ["check", "--json", home, *roots])
        assert result.exit_code == 4, result.output
        outputs.append(json.loads(result.output))
    assert outputs[0] == outputs[1]
    (store / "other/nobody").mkdir(parents=True)
    result = CliRunner().invoke(main, ["check", home, "--index-root", str(store / "other")])
    assert result.exit_code == 16
    assert f"--index-root {store / 'other'}: neither one user's directory" in result.output
    result = CliRunner().invoke(main, ["scan", "-q", "--db", str(tmp_path / "l.sqlite3"),
                                       "--layout", "home/{user}", *own, str(store)])
    assert result.exit_code == 16 and "is one user's directory" in result.output


def _box(path: str, fingerprint: str = "f") -> MailboxRecord:
    return MailboxRecord(path, "/vol", None, "u", path.rsplit("/", 1)[-1], "maildir", path,
                         None, None, 1, 10, fingerprint)


def test_a_batch_of_mailboxes_is_recorded_as_one_by_one_would(ledger_target) -> None:
    """``record_many`` (a worker's results in a few statements) keeps each finding's first
    sighting, resolves what is gone, and answers in the order it was given."""
    ledger = Ledger.open(ledger_target)
    broken = Finding("index.header-sizes", "/vol/a/dovecot.index", "bad", field="hdr")
    gone = Finding("log.record-invalid", "/vol/b/dovecot.index.log", "bad", offset=24)
    run1 = ledger.start_run(["/vol"], {})
    first = ledger.record_many(run1, [(_box("/vol/a"), [broken], True),
                                      (_box("/vol/b"), [gone], True)])
    assert [[f.check for f in found] for found in first] == [[broken.check], [gone.check]]
    run2 = ledger.start_run(["/vol"], {})
    again = ledger.record_many(run2, [(_box("/vol/c"), [], True),
                                      (_box("/vol/b"), [], True),
                                      (_box("/vol/a"), [broken], True),
                                      (_box("/vol/d"), [], False)])
    assert [len(found) for found in again] == [0, 0, 1, 0]
    assert again[2][0].first_seen == first[0][0].first_seen
    assert [r["path"] for r in ledger.affected()] == ["/vol/a"]
    resolved = ledger.db.all("SELECT check_id FROM findings WHERE resolved IS NOT NULL")
    assert [r["check_id"] for r in resolved] == [gone.check]
    seen_again = ledger.db.all("SELECT last_run, resolved_run FROM findings WHERE check_id=?",
                               (broken.check,))
    assert seen_again == [{"last_run": run2, "resolved_run": None}]
    assert ledger.db.one("SELECT resolved_run FROM findings WHERE check_id=?",
                         (gone.check,))["resolved_run"] == run2
    runs = {r["path"]: r["last_run"] for r in ledger.db.all("SELECT path, last_run FROM mailboxes")}
    assert runs == {"/vol/a": run2, "/vol/b": run2, "/vol/c": run2, "/vol/d": run2}
    ledger.close()


def test_small_users_go_several_to_a_task_and_one_failing_user_fails_alone(
    tmp_path: Path, monkeypatch
) -> None:
    """A store of many small users is scanned a few users to a task; every user is
    recorded as a task of one would record it, and a user whose checks raise is that
    user's scanner.error alone, not its task-mates'."""
    from dovecot_index_tool.scan import home

    volume = tmp_path / "vol"
    for i in range(40):
        copy_user("maildir/alice" if i % 2 else "sdbox/bob", volume / f"example.org/u{i:02d}")
    from concurrent.futures import ProcessPoolExecutor

    tasks = []
    real_submit, real_home = ProcessPoolExecutor.submit, home.scan_home

    def counting(pool, fn, *args):
        tasks.append(args[0])
        return real_submit(pool, fn, *args)

    def failing_u07(task):
        if task.home.user == "u07":
            raise RuntimeError("simulated bug")
        return real_home(task)

    monkeypatch.setattr(ProcessPoolExecutor, "submit", counting)
    monkeypatch.setattr(home, "scan_home", failing_u07)
    v = {"vol": volume, "db": tmp_path / "ledger.sqlite3"}
    code, lines = scan(v, vols=("vol",))
    assert 1 < len(tasks) < 40 and max(len(t) for t in tasks) > 1
    boxes = [m for m in lines if m["type"] == "mailbox"]
    assert {m["user"] for m in boxes} == {f"u{i:02d}" for i in range(40)}
    failed = {m["user"] for m in boxes
              if any(f["check"] == "scanner.error" for f in m["findings"])}
    assert failed == {"u07"}
    mailboxes = {u: {m["mailbox"] for m in boxes if m["user"] == u} for u in ("u06", "u08")}
    assert {"INBOX", "One"} <= mailboxes["u06"] and {"INBOX", "One"} <= mailboxes["u08"]
    assert code & 8


class _CountingStream(io.StringIO):
    """A stdout that counts the writes reaching it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_ndjson_lines_go_out_a_batch_at_a_time_and_none_is_held_back(volumes) -> None:
    from dovecot_index_tool.present.scan_view import NdjsonOut
    from dovecot_index_tool.scan.engine import Scanner, ScanOptions

    stream = _CountingStream()
    out = NdjsonOut(stream)
    opts = ScanOptions((volumes["vol1"], volumes["vol2"]), "{domain}/{user}", jobs=2)
    ledger = Ledger.open(volumes["db"])
    try:
        result = Scanner(opts, ledger, out).run()
    finally:
        ledger.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == result.mailboxes > 10  # every line out before the summary
    assert all(m["type"] == "mailbox" for m in lines)
    assert stream.writes < result.mailboxes


def test_an_incremental_run_sends_more_users_to_a_task_than_a_full_one(tmp_path) -> None:
    from dovecot_index_tool.load.gate import LoadLimits
    from dovecot_index_tool.scan.engine import Scanner, ScanOptions

    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        def per_task(users: int, **options) -> int:
            opts = ScanOptions((tmp_path,), "{user}", jobs=2, **options)
            return Scanner(opts, ledger, lambda o, f: None)._users_per_task(users)

        assert per_task(2000) == 8
        assert per_task(2000, incremental=True) == 64
        assert per_task(200, incremental=True) == 12  # still eight tasks per worker
        assert per_task(2000, incremental=True, load=LoadLimits(max_load=1.0)) == 1
    finally:
        ledger.close()


def test_listings_are_kept_per_volume_and_user_and_replaced(ledger_target) -> None:
    ledger = Ledger.open(ledger_target)
    try:
        ledger.keep_listings([("/v1", None, "alice", "first"), ("/v1", "example.org", "alice",
                                                               "other tenant"),
                              ("/v2", None, "alice", "other volume")])
        ledger.keep_listings([("/v1", None, "alice", "second")])
        ledger.commit()
        assert ledger.volume_listings("/v1") == {(None, "alice"): "second",
                                                 ("example.org", "alice"): "other tenant"}
        assert ledger.volume_listings("/v3") == {}
    finally:
        ledger.close()
