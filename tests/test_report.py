"""``report``: states from the ledger and queue, formats, and untrusted names escaped."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from conftest import FIXTURES
from dovecot_index_tool.cli import main

HOSTILE = 'eve<script>alert("x")<&'


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code in (0, 4), result.output
    return result.output


def damage(index: Path) -> None:
    data = bytearray(index.read_bytes())
    data[40] += 1
    index.write_bytes(bytes(data))


def test_states_follow_the_incident_from_affected_to_repaired(tmp_path: Path) -> None:
    vol, db = tmp_path / "vol", str(tmp_path / "db")
    shutil.copytree(FIXTURES / "sdbox/bob", vol / "bob")
    shutil.copytree(FIXTURES / "sdbox/bob", vol / HOSTILE)
    for user in ("bob", HOSTILE):
        damage(vol / user / "sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index")
    run("scan", "--db", db, "-q", str(vol))
    rows = json.loads(run("report", "--db", db, "--format", "json"))["mailboxes"]
    assert {(r["user"], r["state"], r["worst"]) for r in rows} == {
        ("bob", "affected", "error"),
        (HOSTILE, "affected", "error"),
    }
    run("queue", "add", "--db", db, "--user", "bob")
    rows = json.loads(run("report", "--db", db, "--format", "json", "--state", "queued"))
    (queued,) = rows["mailboxes"]
    assert queued["user"] == "bob" and queued["evidence"]["job"] is not None
    shutil.rmtree(vol / "bob")
    shutil.copytree(FIXTURES / "sdbox/bob", vol / "bob")  # repaired by hand
    run("scan", "--db", db, "-q", str(vol))
    states = {
        r["user"]: r["state"]
        for r in json.loads(run("report", "--db", db, "--format", "json"))["mailboxes"]
    }
    assert states == {"bob": "repaired", HOSTILE: "affected"}
    table = list(csv.DictReader(io.StringIO(run("report", "--db", db, "--format", "csv"))))
    assert {r["user"] for r in table} == {"bob", HOSTILE}


def test_html_page_escapes_every_untrusted_name(tmp_path: Path) -> None:
    vol, db = tmp_path / "vol", str(tmp_path / "db")
    shutil.copytree(FIXTURES / "sdbox/bob", vol / HOSTILE)
    damage(vol / HOSTILE / "sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index")
    run("scan", "--db", db, "-q", str(vol))
    page = run("report", "--db", db, "--format", "html")
    assert "<script>" not in page
    assert "eve&lt;script&gt;alert(&quot;x&quot;)&lt;&amp;" in page
    assert 'id="summary"' in page and 'id="chart"' in page


def _incident(tmp_path: Path) -> tuple[Path, str]:
    """bob's INBOX index damaged and scanned into a new ledger."""
    vol, db = tmp_path / "vol", str(tmp_path / "db")
    shutil.copytree(FIXTURES / "sdbox/bob", vol / "bob")
    damage(vol / "bob/sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index")
    run("scan", "--db", db, "-q", str(vol))
    return vol, db


def _repair_by_hand_and_scan(vol: Path, db: str) -> None:
    shutil.rmtree(vol / "bob")
    shutil.copytree(FIXTURES / "sdbox/bob", vol / "bob")
    run("scan", "--db", db, "-q", str(vol))


def _bob(db: str) -> dict:
    rows = json.loads(run("report", "--db", db, "--format", "json"))["mailboxes"]
    return next(r for r in rows if r["user"] == "bob" and r["mailbox"] == "INBOX")


def test_checks_are_a_list_of_check_ids(tmp_path: Path) -> None:
    _, db = _incident(tmp_path)
    row = _bob(db)
    assert isinstance(row["checks"], list) and row["checks"]
    assert all("," not in check for check in row["checks"])


def test_a_queued_mailbox_with_no_worker_has_no_time_back_and_says_why(tmp_path: Path) -> None:
    _, db = _incident(tmp_path)
    run("queue", "add", "--db", db, "--user", "bob")
    for _ in range(2):
        row = _bob(db)
        assert row["state"] == "queued"
        assert row["usable_at"] is None and row["complete_at"] is None
        assert row["times_reason"] == "no worker"
    status = json.loads(run("report", "--db", db, "--format", "status"))
    (component,) = [c for c in status["components"] if not c["group"]]
    assert component["usable_at"] is None and component["times_reason"] == "no worker"


def test_repaired_carries_the_scan_that_read_the_files_and_what_was_repaired(
        tmp_path: Path) -> None:
    vol, db = _incident(tmp_path)
    affected = _bob(db)
    _repair_by_hand_and_scan(vol, db)
    row = _bob(db)
    assert row["state"] == "repaired"
    assert row["worst"] == affected["worst"] == "error"
    assert row["checks"] == affected["checks"]
    assert row["evidence"]["run"] == 2 and row["usable_at"] == row["since"]
    assert row["times"] == "actual"
    assert [h["state"] for h in row["history"]] == ["affected", "repaired"]


def test_a_mailbox_whose_files_went_away_is_not_checked_never_repaired(tmp_path: Path) -> None:
    vol, db = _incident(tmp_path)
    shutil.copytree(FIXTURES / "sdbox/bob", vol / "carol")  # the volume is not empty
    shutil.rmtree(vol / "bob")
    run("scan", "--db", db, "-q", str(vol))
    row = _bob(db)
    assert row["state"] == "not-checked"
    assert row["usable_at"] is None and row["times_reason"] == "not checked"


def test_damage_seen_again_after_a_repair_is_recurred(tmp_path: Path) -> None:
    vol, db = _incident(tmp_path)
    _repair_by_hand_and_scan(vol, db)
    damage(vol / "bob/sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index")
    run("scan", "--db", db, "-q", str(vol))
    row = _bob(db)
    assert row["state"] == "recurred"
    assert [h["state"] for h in row["history"]] == ["affected", "repaired", "recurred"]


def test_every_output_says_the_state_and_never_none(tmp_path: Path) -> None:
    vol, db = _incident(tmp_path)
    _repair_by_hand_and_scan(vol, db)
    for fmt in ("table", "csv", "html", "atom"):
        out = run("report", "--db", db, "--format", fmt)
        assert "None" not in out and "repaired" in out, fmt
    feed = run("report", "--db", db, "--format", "atom")
    assert "has no damage" not in feed and "damaged (None)" not in feed
    table = list(csv.DictReader(io.StringIO(run("report", "--db", db, "--format", "csv"))))
    assert table[0]["state"] == "repaired" and table[0]["worst"] == "error"


def test_the_feed_has_one_entry_per_state_change_with_a_stable_id(tmp_path: Path) -> None:
    import feedparser

    vol, db = _incident(tmp_path)
    run("queue", "add", "--db", db, "--user", "bob")
    _repair_by_hand_and_scan(vol, db)
    first = feedparser.parse(run("report", "--db", db, "--format", "atom"))
    again = feedparser.parse(run("report", "--db", db, "--format", "atom"))
    titles = [e.title for e in first.entries if e.title.startswith("bob INBOX")]
    assert titles == ["bob INBOX: repaired (was queued)", "bob INBOX: queued (was affected)",
                      "bob INBOX: affected"]
    ids = [e.id for e in first.entries]
    assert ids == [e.id for e in again.entries] and len(set(ids)) == len(ids)
